#!/bin/bash
# greylist.sh - wire test of the bundled greylist plugin in the real
# daemon, over a unix socket, driven by "mtaclient script" (which shows
# the reply texts).
#
#  1. milterhost -t refuses each bad greylist setting, naming the key:
#     a bad duration, one out of range, retry_window not longer than
#     delay, a 5xx reply, a bad exempt network, bad prefixes, a bad
#     pass_scope, fail_open or namespace, an unknown key.
#  2. The memory store, delay = 2s, retry_window = 6s: the first attempt
#     of a triplet hears the configured 451 reply; a retry before the
#     delay (also from another address of the client's /24) is
#     tempfailed again; a first attempt known only by the {client_addr}
#     macro (no connect, as from Postfix when no instance takes it) and
#     one from IPv6; after the delay the retry passes, while a new
#     recipient of the same message is tempfailed; the passed triplet
#     passes again at once (written in other case); after the window a
#     triplet never retried is new again, the passed one still passes; an
#     exempt network, an authenticated client and a client without an IP
#     address pass at once (MAIL FROM answered accept: the instance is
#     done with the message).  The log says each decision.
#  3. pass_scope = network: after one passing retry a new triplet from
#     the same /24 passes at once, one from another network does not.
#  4. kv = unix:SOCKET of a redis-server the test starts (skipped, saying
#     why, without redis-server): greylisting on Redis in the namespace
#     declared (the keys seen with redis-cli where it is installed);
#     Redis killed: fail_open = no tempfails with the reply, fail_open =
#     yes lets both recipients of a message through with one warning
#     (the second does not ask the store again), each answer within 2 s
#     (kv_timeout_ms = 200); Redis back: greylisting works again without
#     a restart; Redis stopped (SIGSTOP, no answer): fail_open = yes lets
#     through within 2 s, and after SIGCONT greylisting works again.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init greylist
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"

# ---- 1. configuration checks -------------------------------------------

refused() {
	local name=$1 key=$2 text=$3 line=$4

	printf '[plugin:t]\nmodule = greylist\n%s\n' "$line" |
	    wire_expect_refused "$name" "$key" "$text"
}

refused delay-word delay "bad duration '5x'" "delay = 5x"
refused delay-long delay "duration '2d' out of range: from 1s to 86400s" \
    "delay = 2d"
refused delay-zero delay "duration '0' out of range" "delay = 0"
refused window-short retry_window \
    "retry_window (300s) must be longer than delay (300s)" \
    "retry_window = 5m"
refused window-default delay \
    "retry_window (86400s) must be longer than delay (86400s)" "delay = 1d"
refused window-long retry_window "duration '31d' out of range" \
    "retry_window = 31d"
refused pass-for pass_for "bad duration '1y'" "pass_for = 1y"
refused reply-5xx reply "reply code 550 is permanent" \
    "reply = 550 5.7.1 Go away"
refused reply-class reply "bad enhanced status code '5.7.1'" \
    "reply = 451 5.7.1 Later"
refused network exempt_networks "'192.0.2.0/33': the prefix length" \
    "exempt_networks = 10.0.0.0/8, 192.0.2.0/33"
refused network-word exempt_networks "'mx.example' is not an IPv4 or IPv6" \
    "exempt_networks = mx.example"
refused v4-prefix ipv4_prefix "bad number '33': expected a number from 0 to 32" \
    "ipv4_prefix = 33"
refused v6-prefix ipv6_prefix "bad number '129': expected a number from 0 to 128" \
    "ipv6_prefix = 129"
refused scope pass_scope "bad value 'domain': expected triplet or network" \
    "pass_scope = domain"
refused fail-open fail_open "bad value 'maybe': expected yes or no" \
    "fail_open = maybe"
refused exempt-auth exempt_authenticated "bad value 'sure'" \
    "exempt_authenticated = sure"
refused namespace namespace "bad namespace 'a:b'" "namespace = a:b"
refused unknown-key window "unknown key: greylist takes delay, retry_window" \
    "window = 1d"

# ---- helpers -------------------------------------------------------------

# msg OUT ADDR SENDER RCPT...: one message through "mtaclient script";
# its output goes to $WIRE_TMP/OUT.  ADDR: an IPv4 or IPv6 address
# (connect carries it), "macro:ADDR" (no connect: {client_addr} at MAIL
# FROM, as Postfix sends it when asked), "unix" (a unix-socket client).
# With AUTH set, {auth_authen} goes with MAIL FROM.  Prints the answers
# to the recipients, separated by ';': "pass", or the 4xx reply; or
# "accepted at MAIL" when MAIL FROM was answered accept (the instance is
# done with the message: an MTA sends it no recipients then, so give
# none).
msg() {
	local out=$WIRE_TMP/$1 addr=$2 sender=$3 r
	shift 3

	{
		printf 'negotiate\t6\t0x1ff\t0x100f7f\n'
		case $addr in
		macro:*) ;;
		unix) printf 'connect\tlocalhost\tL\t0\t/run/local.sock\n' ;;
		*:*) printf 'connect\tclient.example.test\t6\t25\t%s\n' "$addr" ;;
		*) printf 'connect\tclient.example.test\t4\t25\t%s\n' "$addr" ;;
		esac
		printf 'helo\tclient.example.test\n'
		case $addr in
		macro:*) printf 'macro\tM\t{client_addr}\t%s\n' "${addr#macro:}" ;;
		esac
		[ -n "${AUTH:-}" ] &&
		    printf 'macro\tM\t{auth_authen}\t%s\n' "$AUTH"
		printf 'mail\t%s\n' "$sender"
		for r in "$@"; do
			printf 'rcpt\t%s\n' "$r"
		done
		printf 'abort\nquit\n'
	} | "$client" script "$WIRE_SOCKET" >"$out" 2>&1 ||
	    echo "mtaclient failed: $(tr '\n' ' ' <"$out")"
	sed -n 's/^reply mail a$/accepted at MAIL/p; s/^reply rcpt [ca]$/pass/p
	    s/^reply rcpt [ty] *//p' "$out" | paste -sd';' -
}

# sleep_until T: wait until the clock's second T (unix time).
sleep_until() {
	local now

	now=$(date +%s)
	[ "$now" -ge "$1" ] || sleep $(($1 - now))
}

# logged WHAT TEXT [COUNT]: the daemon's log has TEXT (COUNT times).
logged() {
	local n

	n=$(grep -cF -- "$2" "$WIRE_LOG")
	if [ -n "${3:-}" ] && [ "$n" -ne "$3" ]; then
		wire_fail "$1: the log has '$2' $n times, expected $3"
	elif [ "$n" -eq 0 ]; then
		wire_fail "$1: no log line with '$2'"
	else
		echo "ok: $1: logged"
	fi
}

# ---- 2. the memory store, pass_scope = triplet ----------------------------

G='451 4.7.1 Test greylisting'
ini=$(wire_config memory <<'EOF'
[plugin:grey]
module = greylist
delay = 2s
retry_window = 6s
reply = 451 4.7.1 Test greylisting
exempt_networks = 198.51.100.0/24
exempt_networks = 2001:db8:ffff::/48, 203.0.113.9
EOF
) || exit 99
if wire_start "$ini"; then
	t0=$(date +%s)
	wire_expect "first attempt" "$G" \
	    "$(msg a1 192.0.2.7 '<a@example.test>' '<r1@example.test>')"
	logged "first attempt" "[grey] 192.0.2.0/24 <a@example.test> <r1@example.test>: first attempt, greylisted for 2s"
	wire_expect "a triplet never retried, first attempt" "$G" \
	    "$(msg a2 192.0.2.7 '<a@example.test>' '<r3@example.test>')"
	wire_expect "retry too early" "$G" \
	    "$(msg a3 192.0.2.7 '<a@example.test>' '<r1@example.test>')"
	wire_expect "retry too early from another address of the /24" "$G" \
	    "$(msg a4 192.0.2.99 '<a@example.test>' '<r1@example.test>')"
	logged "retry too early" "<a@example.test> <r1@example.test>: retry too early, " 2
	wire_expect "client known by {client_addr} only" "$G" \
	    "$(msg a5 macro:192.0.2.7 '<b@example.test>' '<r1@example.test>')"
	logged "client known by {client_addr} only" \
	    "[grey] 192.0.2.0/24 <b@example.test> <r1@example.test>: first attempt"
	wire_expect "IPv6 client, first attempt" "$G" \
	    "$(msg a6 2001:db8:1:2::5 '<>' '<r1@example.test>')"
	logged "IPv6 client's /64, the null sender" \
	    "[grey] 2001:db8:1:2::/64 <> <r1@example.test>: first attempt"
	wire_expect "exempt network" "accepted at MAIL" \
	    "$(msg a7 198.51.100.20 '<a@example.test>')"
	wire_expect "exempt network (second value, IPv6)" "accepted at MAIL" \
	    "$(msg a8 2001:db8:ffff:1::1 '<a@example.test>')"
	wire_expect "exempt address" "accepted at MAIL" \
	    "$(msg a8 203.0.113.9 '<a@example.test>')"
	wire_expect "next to the exempt address" "$G" \
	    "$(msg a8 203.0.113.10 '<a@example.test>' '<r1@example.test>')"
	logged "exempt network" "not greylisted: client 198.51.100.20 is in exempt_networks"
	wire_expect "authenticated client" "accepted at MAIL" \
	    "$(AUTH=alice msg a9 192.0.2.7 '<a@example.test>')"
	logged "authenticated client" "not greylisted: the client authenticated as alice"
	wire_expect "client without an IP address" "accepted at MAIL" \
	    "$(msg a10 unix '<a@example.test>')"
	logged "client without an IP address" \
	    "not greylisted: the client has no IP address (/run/local.sock) to key on"

	# After the delay: the retry passes, a new recipient beside it not.
	sleep_until $((t0 + 3))
	wire_expect "retry after the delay, with a new recipient" "pass;$G" \
	    "$(msg b1 192.0.2.7 '<a@example.test>' '<r1@example.test>' '<r2@example.test>')"
	logged "retry after the delay" \
	    "[grey] 192.0.2.0/24 <a@example.test> <r1@example.test>: passed, retried after "
	logged "the new recipient" \
	    "[grey] 192.0.2.0/24 <a@example.test> <r2@example.test>: first attempt" 1
	wire_expect "the passed triplet again, in other case, other address" "pass" \
	    "$(msg b2 192.0.2.200 '<A@Example.TEST>' '<R1@EXAMPLE.test>')"
	wire_expect "the /24 did not pass (pass_scope = triplet)" "$G" \
	    "$(msg b3 192.0.2.7 '<c@example.test>' '<r1@example.test>')"

	# After the window: the triplet never retried is new again.
	sleep_until $((t0 + 7))
	wire_expect "after the window, never retried" "$G" \
	    "$(msg c1 192.0.2.7 '<a@example.test>' '<r3@example.test>')"
	logged "after the window, a first attempt again" \
	    "[grey] 192.0.2.0/24 <a@example.test> <r3@example.test>: first attempt" 2
	wire_expect "after the window, the passed triplet" "pass" \
	    "$(msg c2 192.0.2.7 '<a@example.test>' '<r1@example.test>')"
	wire_stop
fi

# ---- 3. pass_scope = network --------------------------------------------

ini=$(wire_config network <<'EOF'
[plugin:grey]
module = greylist
delay = 1s
retry_window = 6s
pass_scope = network
EOF
) || exit 99
D='451 4.7.1 Greylisted, please try again later'
if wire_start "$ini"; then
	t0=$(date +%s)
	wire_expect "network scope, first attempt (default reply)" "$D" \
	    "$(msg n1 192.0.2.7 '<a@example.test>' '<r1@example.test>')"
	sleep_until $((t0 + 2))
	wire_expect "network scope, retry after the delay" "pass;pass" \
	    "$(msg n2 192.0.2.7 '<a@example.test>' '<r1@example.test>' '<r2@example.test>')"
	wire_expect "network scope, a new triplet from the network" "pass" \
	    "$(msg n3 192.0.2.77 '<z@other.test>' '<r9@example.test>')"
	logged "network scope, the pass renewed" \
	    "network 192.0.2.0/24 passed before: the message passes, the pass renewed"
	wire_expect "network scope, another network" "$D" \
	    "$(msg n4 192.0.3.1 '<a@example.test>' '<r1@example.test>')"
	wire_stop
fi

# ---- 4. Redis, killed and back -----------------------------------------

# timed WHAT WANT ARGS...: msg ARGS, expecting WANT, within 2 s.
timed() {
	local what=$1 want=$2 start ms got
	shift 2

	start=$(date +%s%N)
	got=$(msg "$@")
	ms=$((($(date +%s%N) - start) / 1000000))
	wire_expect "$what" "$want" "$got"
	if [ "$ms" -lt 2000 ]; then
		echo "ok: $what: answered in $ms ms"
	else
		wire_fail "$what: answered in $ms ms, not within 2 s"
	fi
}

# Not wire_need_redis: without Redis the checks above still count.
if ! command -v redis-server >/dev/null 2>&1; then
	echo "SKIP: the Redis part: redis-server is not installed (on" \
	    "Debian: apt-get install redis-server)"
	wire_exit
fi
wire_redis_start
ini=$(wire_config redis <<EOF
kv = unix:$WIRE_REDIS_SOCK
kv_timeout_ms = 200

[plugin:grey]
module = greylist
delay = 1s
retry_window = 6s
namespace = shared-grey
fail_open = no
EOF
) || exit 99
ini_open=$WIRE_TMP/redis_open.ini
sed 's/^fail_open = no$/fail_open = yes/' "$ini" >"$ini_open"
if wire_start "$ini"; then
	t0=$(date +%s)
	wire_expect "Redis: first attempt" "$D" \
	    "$(msg r1 192.0.2.7 '<a@example.test>' '<r1@example.test>')"
	cli=no
	command -v redis-cli >/dev/null 2>&1 && cli=yes
	[ "$cli" = yes ] ||
	    echo "(redis-cli is not installed: the keys are not looked at)"
	triplet=192.0.2.0/24/a@example.test/r1@example.test
	if [ "$cli" = yes ]; then
		wire_expect "Redis: the first attempt's key, in the namespace" \
		    "shared-grey:s:$triplet" \
		    "$(redis-cli -s "$WIRE_REDIS_SOCK" --raw keys '*')"
		ttl=$(redis-cli -s "$WIRE_REDIS_SOCK" --raw ttl "shared-grey:s:$triplet")
		if [ "$ttl" -ge 4 ] && [ "$ttl" -le 6 ]; then
			echo "ok: the first attempt lives retry_window: ttl $ttl"
		else
			wire_fail "the first attempt's ttl is '$ttl', not 4..6"
		fi
	fi
	sleep_until $((t0 + 2))
	wire_expect "Redis: retry after the delay" "pass" \
	    "$(msg r2 192.0.2.7 '<a@example.test>' '<r1@example.test>')"
	if [ "$cli" = yes ]; then
		wire_expect "Redis: the pass replaced the first attempt" \
		    "shared-grey:t:$triplet" \
		    "$(redis-cli -s "$WIRE_REDIS_SOCK" --raw keys '*')"
		ttl=$(redis-cli -s "$WIRE_REDIS_SOCK" --raw ttl "shared-grey:t:$triplet")
		# pass_for's default, 36 days
		if [ "$ttl" -ge 3110000 ] && [ "$ttl" -le 3110400 ]; then
			echo "ok: the pass lives pass_for: ttl $ttl"
		else
			wire_fail "the pass's ttl is '$ttl', not 36 days"
		fi
	fi

	wire_redis_stop
	timed "Redis killed, fail_open = no" "$D" \
	    r3 192.0.2.7 '<a@example.test>' '<r4@example.test>'
	logged "Redis killed, fail_open = no" \
	    "[grey] the store failed (triplet pass: the key-value store did not answer in time): tempfailing the message's recipients (fail_open = no)"
	wire_alive || wire_fail "the daemon died when Redis went away"
	wire_stop
fi
if wire_start "$ini_open"; then
	timed "Redis killed, fail_open = yes" "pass;pass" \
	    r4 192.0.2.7 '<a@example.test>' '<r5@example.test>' '<r6@example.test>'
	logged "Redis killed, fail_open = yes, one warning for the message" \
	    "letting through the message's recipients (fail_open = yes)" 1

	# Redis back (empty): greylisting again, after the backoff.
	wire_redis_start
	got=
	for i in $(seq 50); do
		got=$(msg r5 192.0.2.7 '<a@example.test>' "<back$i@example.test>")
		[ "$got" = "$D" ] && break
		sleep 0.2
	done
	wire_expect "Redis back: a new triplet greylisted again" "$D" "$got"

	wire_stop
fi

# Redis stopped (SIGSTOP): it takes the connection and never answers, so
# a call waits kv_timeout_ms (a daemon started afresh: no thread of it
# is waiting out an earlier failure), and greylisting comes back by
# itself after SIGCONT.
kill -STOP "$WIRE_REDIS_PID"
if wire_start "$ini_open"; then
	timed "Redis not answering, fail_open = yes" "pass;pass" \
	    r6 192.0.2.7 '<a@example.test>' '<r7@example.test>' '<r8@example.test>'
	if grep -qF "r8@example.test'" "$WIRE_LOG"; then
		wire_fail "the second recipient asked the store again"
	else
		echo "ok: the second recipient did not ask the store again"
	fi
	kill -CONT "$WIRE_REDIS_PID"
	got=
	for i in $(seq 50); do
		got=$(msg r7 192.0.2.7 '<a@example.test>' "<cont$i@example.test>")
		[ "$got" = "$D" ] && break
		sleep 0.2
	done
	wire_expect "Redis answering again: a new triplet greylisted" "$D" "$got"
	wire_stop
fi
wire_redis_stop
wire_exit
