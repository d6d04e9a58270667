#!/bin/bash
# ratelimit.sh - wire test of the bundled ratelimit plugin in the real
# daemon, over a unix socket, driven by "mtaclient script" (which shows
# every answer with its reply text).
#
#  1. milterhost -t refuses each bad setting, naming the key.
#  2. key = sender, fixed window (limit 3, window 3s): the fourth and
#     fifth MAIL FROM of a sender are tempfailed with the configured
#     reply, another sender is not, the null sender is never counted;
#     after the window the sender is let through again; senders too long
#     for a key are counted apart by their hash.
#  3. key = client_address with ipv4_prefix = 24: two addresses of one
#     /24 share the count, another network has its own; exempt_networks
#     is never counted; an IPv6 client counts per /64; a client known
#     only by the macro {client_addr} (no connect event) is counted.
#  4. count = recipients: RCPT decides, across messages.
#  5. key = recipient_domain counting messages: the first recipient of a
#     domain counts the message, the others of the domain follow it.
#  6. key = auth_user: unauthenticated clients are not counted;
#     exempt_authenticated = yes exempts authenticated clients of a
#     sender limit.
#  7. window_type = sliding (limit 2, window 8s), timed against the
#     window periods: just after a period ends the previous one still
#     weighs (tempfail), late in the next period it weighs little
#     (accept); refused attempts are taken back.
#  8. On a Redis the test starts (kv = unix:...), when redis-server is
#     installed: the limit holds; Redis killed: fail_open = yes lets the
#     message through and fail_open = no tempfails it, both within
#     kv_timeout_ms; the daemon lives and, Redis back, counts again.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init ratelimit
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"
REPLY="451 4.7.1 Slow down"

# ---- 1. configuration checks -------------------------------------------

refused() {
	local name=$1 key=$2 text=$3 body=$4

	printf '[plugin:t]\nmodule = ratelimit\n%b\n' "$body" |
	    wire_expect_refused "$name" "$key" "$text"
}
refused no-key key "missing" "limit = 1"
refused bad-key key "bad value 'ip'" "key = ip\nlimit = 1"
refused no-limit limit "missing" "key = sender"
refused limit-zero limit "bad number '0'" "key = sender\nlimit = 0"
refused bad-count count "bad value 'bytes'" \
    "key = sender\nlimit = 1\ncount = bytes"
refused bad-window window "bad duration '5x'" \
    "key = sender\nlimit = 1\nwindow = 5x"
refused long-window window "out of range" \
    "key = sender\nlimit = 1\nwindow = 31d"
refused bad-type window_type "bad value 'rolling'" \
    "key = sender\nlimit = 1\nwindow_type = rolling"
refused v4-prefix ipv4_prefix "bad number '33'" \
    "key = client_address\nlimit = 1\nipv4_prefix = 33"
refused prefix-sender ipv4_prefix "only for key = client_address" \
    "key = sender\nlimit = 1\nipv4_prefix = 24"
refused reply-5xx reply "reply code 550 is permanent" \
    "key = sender\nlimit = 1\nreply = 550 5.7.1 No"
refused auth-exempt exempt_authenticated "would exempt everything" \
    "key = auth_user\nlimit = 1\nexempt_authenticated = yes"
refused bad-net exempt_networks "'10.0.0.300' is not an IPv4" \
    "key = sender\nlimit = 1\nexempt_networks = 10.0.0.0/8, 10.0.0.300"
refused bad-fail fail_open "expected yes or no" \
    "key = sender\nlimit = 1\nfail_open = maybe"
refused bad-ns namespace "bad namespace 'a b'" "key = sender\nlimit = 1\nnamespace = a b"
refused unknown-key burst "ratelimit takes" "key = sender\nlimit = 1\nburst = 2"

# ---- helpers -------------------------------------------------------------

# run CONFIG: (re)start the daemon with the [plugin:rl] lines of stdin.
run() {
	local ini

	wire_stop
	ini=$(wire_config "$1") || exit 99
	wire_start "$ini" || wire_exit
}

# session ADDR [-u USER] FROM RCPT...: one SMTP session with one message
# (MAIL, the RCPTs, abort); prints "mail ANSWER" and "rcpt ANSWER" lines,
# ANSWER being the reply letter and its text ("c", "y 451 4.7.1 ...").
session() {
	local addr=$1 user= family=4
	shift
	if [ "$1" = -u ]; then
		user=$2
		shift 2
	fi
	case $addr in *:*) family=6 ;; esac
	{
		printf 'negotiate\t6\t0x1ff\t0x100f7f\nmta\n'
		printf 'connect\tclient.test\t%s\t4321\t%s\n' "$family" "$addr"
		printf 'helo\tclient.test\n'
		[ -n "$user" ] && printf 'macro\tM\t{auth_authen}\t%s\n' "$user"
		printf 'mail\t<%s>\n' "$1"
		shift
		for r in "$@"; do
			printf 'rcpt\t<%s>\n' "$r"
		done
		printf 'abort\nquit\n'
	} | "$client" script "$WIRE_SOCKET" 2>&1 |
	    sed -n 's/^reply \(mail\|rcpt\) /\1 /p'
}

# answers ...: session's answers on one line, e.g. "mail c rcpt c".
answers() {
	session "$@" | tr '\n' ' ' | sed 's/ $//'
}

T="y $REPLY"

# ---- 2. per sender, fixed window -----------------------------------------

run sender <<EOF
[plugin:rl]
module = ratelimit
key = sender
limit = 3
window = 3s
reply = $REPLY
EOF
for i in 1 2 3; do
	wire_expect "sender, message $i" "mail c rcpt c" \
	    "$(answers 192.0.2.1 A@Example.COM r@example.net)"
done
wire_expect "sender, message 4 (any case)" "mail $T" \
    "$(answers 192.0.2.2 a@example.com r@example.net)"
wire_expect "sender, message 5" "mail $T" \
    "$(answers 192.0.2.1 a@example.com r@example.net)"
wire_expect "another sender" "mail c rcpt c" \
    "$(answers 192.0.2.1 b@example.com r@example.net)"
for i in 1 2 3 4; do
	got=$(answers 192.0.2.1 "" r@example.net)
	[ "$got" = "mail c rcpt c" ] || break
done
wire_expect "the null sender, 4 times" "mail c rcpt c" "$got"
# Addresses too long for a key are counted by a hash of the whole
# address: two that differ only at their end have counts of their own.
long=$(printf 'x%.0s' $(seq 300))
for i in 1 2 3; do
	answers 192.0.2.1 "${long}1@example.com" r@example.net >/dev/null
done
wire_expect "a long sender, message 4" "mail $T" \
    "$(answers 192.0.2.1 "${long}1@example.com" r@example.net)"
wire_expect "another long sender, same beginning" "mail c rcpt c" \
    "$(answers 192.0.2.1 "${long}2@example.com" r@example.net)"
grep -q "\[rl\] sender #[0-9a-f]\{16\}: 4 messages" "$WIRE_LOG" ||
    wire_fail "no log line naming the long sender's hash"
grep -q "\[rl\] sender a@example.com: 4 messages in a fixed window of 3s (limit 3): $REPLY" \
    "$WIRE_LOG" || wire_fail "no log line for the refused message"
sleep 3.2
wire_expect "sender, after the window" "mail c rcpt c" \
    "$(answers 192.0.2.1 a@example.com r@example.net)"

# ---- 3. per client network ------------------------------------------------

run client <<EOF
[plugin:rl]
module = ratelimit
key = client_address
ipv4_prefix = 24
limit = 2
exempt_networks = 198.51.100.7 203.0.113.0/24
exempt_networks = 2001:db8:ffff::/48
EOF
D="y 451 4.7.1 Rate limit exceeded, please try again later"
wire_expect "client 192.0.2.1" "mail c rcpt c" \
    "$(answers 192.0.2.1 s@x.test r@y.test)"
wire_expect "client 192.0.2.200" "mail c rcpt c" \
    "$(answers 192.0.2.200 s@x.test r@y.test)"
wire_expect "client 192.0.2.3, over (default reply)" "mail $D" \
    "$(answers 192.0.2.3 s@x.test r@y.test)"
wire_expect "client 192.0.3.1" "mail c rcpt c" \
    "$(answers 192.0.3.1 s@x.test r@y.test)"
# Without a connect event (no instance takes it, so Postfix would not
# send it), the client is the macro {client_addr} of MAIL FROM.
no_connect() {
	printf 'negotiate\t6\t0x1ff\t0x100f7f\nmta\n'
	printf 'macro\tM\t{client_addr}\t%s\n' "$1"
	printf 'mail\t<s@x.test>\nabort\nquit\n'
}
no_connect 192.0.3.2 | "$client" script "$WIRE_SOCKET" >/dev/null 2>&1
wire_expect "client 192.0.3.3 by {client_addr}, third of its /24" "mail $D" \
    "$(no_connect 192.0.3.3 | "$client" script "$WIRE_SOCKET" 2>&1 |
    sed -n 's/^reply \(mail\) /\1 /p')"
for i in 1 2 3; do
	got=$(answers 203.0.113.9 s@x.test r@y.test)
	[ "$got" = "mail c rcpt c" ] || break
done
wire_expect "exempt network, 3 times" "mail c rcpt c" "$got"
for i in 1 2 3; do
	got=$(answers 2001:db8:ffff::1 s@x.test r@y.test)
	[ "$got" = "mail c rcpt c" ] || break
done
wire_expect "exempt IPv6 network, 3 times" "mail c rcpt c" "$got"
answers 2001:db8:1:1::1 s@x.test r@y.test >/dev/null
answers 2001:db8:1:1::2 s@x.test r@y.test >/dev/null
wire_expect "IPv6 client, third of its /64" "mail $D" \
    "$(answers 2001:db8:1:1:ffff::3 s@x.test r@y.test)"
wire_expect "IPv6 client of another /64" "mail c rcpt c" \
    "$(answers 2001:db8:1:2::1 s@x.test r@y.test)"

# ---- 4. counting recipients -----------------------------------------------

run recipients <<EOF
[plugin:rl]
module = ratelimit
key = sender
count = recipients
limit = 3
reply = $REPLY
EOF
wire_expect "recipients 1-2" "mail c rcpt c rcpt c" \
    "$(answers 192.0.2.1 s@x.test a@y.test b@y.test)"
wire_expect "recipients 3-5" "mail c rcpt c rcpt $T rcpt $T" \
    "$(answers 192.0.2.1 s@x.test c@y.test d@y.test e@y.test)"

# ---- 5. per recipient domain, counting messages ---------------------------

run domains <<EOF
[plugin:rl]
module = ratelimit
key = recipient_domain
limit = 1
reply = $REPLY
EOF
wire_expect "domains, message 1" "mail c rcpt c rcpt c rcpt c" \
    "$(answers 192.0.2.1 s@x.test a@one.test b@ONE.test c@two.test)"
wire_expect "domains, message 2" "mail c rcpt $T rcpt c rcpt $T rcpt $T" \
    "$(answers 192.0.2.1 s@x.test a@one.test z@three.test b@one.test c@two.test)"

# ---- 6. authenticated users -----------------------------------------------

run users <<EOF
[plugin:rl]
module = ratelimit
key = auth_user
limit = 1
reply = $REPLY

[plugin:senders]
module = ratelimit
key = sender
limit = 1
exempt_authenticated = yes
reply = $REPLY
EOF
wire_expect "user u1, message 1" "mail c rcpt c" \
    "$(answers 192.0.2.1 -u u1 s@x.test r@y.test)"
wire_expect "user u1, message 2" "mail $T" \
    "$(answers 192.0.2.1 -u u1 s@x.test r@y.test)"
wire_expect "user u2" "mail c rcpt c" \
    "$(answers 192.0.2.1 -u u2 s@x.test r@y.test)"
wire_expect "unauthenticated, sender limit 1" "mail c rcpt c" \
    "$(answers 192.0.2.1 t@x.test r@y.test)"
wire_expect "unauthenticated, sender over" "mail $T" \
    "$(answers 192.0.2.1 t@x.test r@y.test)"

# ---- 7. sliding window ----------------------------------------------------

run sliding <<EOF
[plugin:rl]
module = ratelimit
key = sender
limit = 2
window = 8s
window_type = sliding
reply = $REPLY
EOF
# at_phase MS: sleep until MS milliseconds into the current 8 s period of
# the wall clock (the plugin's periods start at multiples of 8 s);
# next_period MS: until MS milliseconds into the next one.  The checks
# below hold with seconds to spare on either side, so that a loaded
# machine's delays do not move them into another period.
into_period() {
	echo $((($(date +%s%N) / 1000000) % 8000))
}
sleep_ms() {
	sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"
}
at_phase() {
	local into

	into=$(into_period)
	[ "$into" -lt "$1" ] && sleep_ms $(($1 - into))
}
next_period() {
	local into

	into=$(into_period)
	sleep_ms $((8000 - into + $1))
}
next_period 100
wire_expect "sliding, message 1" "mail c rcpt c" \
    "$(answers 192.0.2.1 s@x.test r@y.test)"
wire_expect "sliding, message 2" "mail c rcpt c" \
    "$(answers 192.0.2.1 s@x.test r@y.test)"
wire_expect "sliding, message 3" "mail $T" \
    "$(answers 192.0.2.1 s@x.test r@y.test)"
wire_expect "sliding, message 4" "mail $T" \
    "$(answers 192.0.2.1 s@x.test r@y.test)"
# 0.3 s into the next period the previous one weighs 2 x 0.96 (refused
# up to 4 s into it).
next_period 300
wire_expect "sliding, next period, early" "mail $T" \
    "$(answers 192.0.2.1 s@x.test r@y.test)"
# 6 s into it, 2 x 0.25: one more fits (the refused ones were taken
# back; counted, they would hold the sender over the limit), and then,
# until the period ends, no other.
at_phase 6000
wire_expect "sliding, next period, late" "mail c rcpt c" \
    "$(answers 192.0.2.1 s@x.test r@y.test)"
wire_expect "sliding, then over" "mail $T" \
    "$(answers 192.0.2.1 s@x.test r@y.test)"

# ---- 8. on Redis ----------------------------------------------------------

if ! command -v redis-server >/dev/null 2>&1; then
	echo "SKIP (part 8): redis-server is not installed" \
	    "(on Debian: apt-get install redis-server)"
	wire_stop
	wire_exit
fi
wire_redis_start
run redis <<EOF
kv = unix:$WIRE_REDIS_SOCK
kv_timeout_ms = 200

[plugin:open]
module = ratelimit
key = sender
limit = 2
reply = 451 4.7.1 Open

[plugin:closed]
module = ratelimit
key = client_address
limit = 100
fail_open = no
reply = 451 4.7.1 Closed
exempt_networks = 192.0.2.0/24
EOF
wire_expect "redis, message 1" "mail c rcpt c" \
    "$(answers 198.51.100.1 s@x.test r@y.test)"
wire_expect "redis, message 2" "mail c rcpt c" \
    "$(answers 198.51.100.1 s@x.test r@y.test)"
wire_expect "redis, message 3" "mail y 451 4.7.1 Open" \
    "$(answers 198.51.100.1 s@x.test r@y.test)"
wire_redis_stop
start=$(date +%s%N)
wire_expect "redis down, fail_open = yes (exempt from the closed one)" \
    "mail c rcpt c" "$(answers 192.0.2.1 s@x.test r@y.test)"
wire_expect "redis down, fail_open = no" "mail y 451 4.7.1 Closed" \
    "$(answers 198.51.100.1 t@x.test r@y.test)"
ms=$((($(date +%s%N) - start) / 1000000))
echo "two sessions with Redis down took $ms ms (kv_timeout_ms = 200)"
[ "$ms" -lt 2000 ] || wire_fail "sessions took $ms ms with Redis down"
grep -q "\[open\] sender s@x.test not counted: the store failed (.*): let through (fail_open = yes)" \
    "$WIRE_LOG" || wire_fail "no log line for the fail-open answer"
grep -q "\[closed\] client_address 198.51.100.1 not counted: the store failed (.*): tempfailed (fail_open = no)" \
    "$WIRE_LOG" || wire_fail "no log line for the fail-closed answer"
wire_alive || wire_fail "milterhost died when Redis went away"
wire_redis_start
# Each daemon thread that saw Redis fail waits out its own backoff (at
# most 5 s) before it tries again, answering as Redis is away meanwhile;
# libmilter picks the thread of each session, so the counts are exact
# only once every thread is past it.
sleep 5.2
wire_expect "Redis back (empty), counting again" "mail c rcpt c" \
    "$(answers 198.51.100.1 s@x.test r@y.test)"
wire_expect "Redis back, message 2" "mail c rcpt c" \
    "$(answers 198.51.100.1 s@x.test r@y.test)"
wire_expect "Redis back, message 3" "mail y 451 4.7.1 Open" \
    "$(answers 198.51.100.1 s@x.test r@y.test)"

wire_stop
wire_exit
