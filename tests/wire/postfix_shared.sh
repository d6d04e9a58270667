#!/bin/bash
# postfix_shared.sh - two hosts, one Redis, real Postfix: the state the
# bundled ratelimit and greylist plugins keep in the key-value store is
# shared across hosts.  One redis-server of the test's own (a unix
# socket, no persistence); two milterhost daemons, A and B, both with
# kv = unix:REDIS-SOCKET and the same configuration; each behind its own
# private Postfix instance (tests/postfix/instance.sh: its own directory,
# smtpd port and smtp-sink), which swaks talks to.  The configuration:
#
#   [persender]  ratelimit key = sender, limit = 5, window = 1h (fixed)
#                if_sender = ^rl@        (only the rate-limit messages)
#   [grey]       greylist delay = 3s, retry_window = 1m, nothing exempt
#                if_rcpt = ^grey@        (only the greylist messages)
#
#  1. Rate limit across hosts: 10 messages from rl@milterhost.test, sent
#     alternately through Postfix A and Postfix B.  Exactly the first 5
#     are accepted (250 at MAIL FROM, queued: 3 through A, 2 through B)
#     and the last 5 tempfailed at MAIL FROM with the plugin's reply
#     "451 4.7.1 Rate limit exceeded" (the sixth through B, which had
#     accepted only 2 itself: each host alone would have taken all 10).
#     The accepted ones reach their instance's smtp-sink, the refused ones
#     none; each daemon logs the refusals it made with the shared count;
#     Redis holds the counter persender:f:rl@milterhost.test = 10 with a
#     TTL of at most the window (where redis-cli is installed).
#  2. Greylisting across hosts: a message to grey@example.net through A
#     is tempfailed ("451 4.7.1 Greylisted" at RCPT; A logs the first
#     attempt); at once through B: tempfailed again (B logs "retry too
#     early"); 3 s later through B: accepted and delivered (B logs the
#     pass, and never logged a first attempt of its own); then the same
#     triplet through A: accepted at once and delivered (A finds the pass
#     B wrote).  Redis holds the pass grey:t:NET/SENDER/RCPT and no
#     longer the first attempt (where redis-cli is installed).
#  3. Neither Postfix logged a deferral, bounce, fatal error or warning,
#     each sent what it took; neither daemon died, both exit 0 at SIGTERM.
#
# Skipped (exit 77, with the reason) when Postfix, swaks or redis-server is
# not installed or the test does not run as root.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_need_redis
wire_postfix_init postfix_shared

pf_a=$pf pf_b=$WIRE_TMP/pf2

shared_cleanup() {
	local status=$?

	pf_stop "$pf_a"
	pf_stop "$pf_b"
	(exit "$status")
	wire_cleanup
}
trap shared_cleanup EXIT

# Four loopback ports nothing listens on: A's sink and smtpd, B's.
base=$(pf_free_ports 4)
port_a=$((base + 1)) port_b=$((base + 3))

wire_redis_start
sock_a=$WIRE_SOCKET sock_b=$WIRE_SECOND_SOCKET

pf_create "$pf_a" "$base" dump || wire_error "cannot make Postfix instance A"
pf_smtpd "$pf_a" "$port_a" "smtpd_milters=unix:$sock_a"
pf_create "$pf_b" $((base + 2)) dump ||
    wire_error "cannot make Postfix instance B"
pf_smtpd "$pf_b" "$port_b" "smtpd_milters=unix:$sock_b"
pf_start "$pf_a" || wire_error "Postfix instance A did not start"
pf_start "$pf_b" || wire_error "Postfix instance B did not start"
echo "ok: two private Postfix $(postconf -d -h mail_version) instances:" \
    "A on port $port_a, B on port $port_b"

ini=$(wire_config shared <<EOF
socket_mode = 0666
kv = unix:$WIRE_REDIS_SOCK
kv_timeout_ms = 500

[plugin:persender]
module = ratelimit
key = sender
limit = 5
window = 1h
if_sender = ^rl@

[plugin:grey]
module = greylist
delay = 3s
retry_window = 1m
if_rcpt = ^grey@
EOF
) || exit 99

# Daemon B: the same file on the second socket (wire_start_second); then
# daemon A.
wire_start_second "$ini" || wire_exit
wire_start "$ini" || wire_exit
log_a=$WIRE_LOG log_b=$WIRE_SECOND_LOG

# send NAME HOST FROM RCPT: one message with swaks through Postfix HOST (a
# or b); the transcript is in $WIRE_TMP/NAME.swaks.
send() {
	local port=$port_a

	[ "$2" = b ] && port=$port_b
	swaks --server 127.0.0.1 --port "$port" --from "$3" --to "$4" \
	    --header "Subject: $1" --header "X-Test: $1" \
	    --body "body of $1" >"$WIRE_TMP/$1.swaks" 2>&1
}

# heard NAME PATTERN: the client's transcript has a server line matching
# the extended regular expression PATTERN (after swaks's "<- " or "<** ").
heard() {
	grep -Eq "^<(-|\*\*) +$2" "$WIRE_TMP/$1.swaks"
}

# reply_to NAME COMMAND: the first line the server answered to the
# client's COMMAND (MAIL, RCPT), without swaks's marks.
reply_to() {
	awk -v cmd="$2" '$1 == "->" && $2 ~ "^" cmd { want = 1; next }
	    want && /^<(-|\*\*) / { sub(/^<(-|\*\*) +/, ""); print; exit }' \
	    "$WIRE_TMP/$1.swaks" | tr -d '\r'
}

# sunk NAME: the smtp-sinks (of both instances) that received NAME:
# "a", "b", "a b" or "".
sunk() {
	local where= h d

	for h in a b; do
		[ "$h" = a ] && d=$pf_a || d=$pf_b
		if grep -lq "^X-Test: $1\r\{0,1\}\$" "$d"/sink/* 2>/dev/null
		then
			where="$where $h"
		fi
	done
	echo "${where# }"
}

# ---- 1. one sender's rate limit, across hosts ------------------------------

rl_ok=0 rl_refused=0
for i in $(seq 10); do
	[ $((i % 2)) -eq 1 ] && host=a || host=b
	send "rl$i" "$host" rl@milterhost.test "r$i@example.net"
	mail=$(reply_to "rl$i" MAIL)
	if [ "$i" -le 5 ]; then
		if [ "${mail%% *}" = 250 ] && heard "rl$i" '250 2\.0\.0 Ok: queued'
		then
			rl_ok=$((rl_ok + 1))
		else
			wire_fail "rl$i (through $host): not accepted: MAIL" \
			    "heard '$mail'"
			sed 's/^/    /' "$WIRE_TMP/rl$i.swaks"
		fi
	else
		if [ "$mail" = "451 4.7.1 Rate limit exceeded, please try again later" ] &&
		    ! heard "rl$i" '250 2\.0\.0 Ok'; then
			rl_refused=$((rl_refused + 1))
		else
			wire_fail "rl$i (through $host): not refused at MAIL by" \
			    "the rate limit: MAIL heard '$mail'"
			sed 's/^/    /' "$WIRE_TMP/rl$i.swaks"
		fi
	fi
done
if [ $rl_ok -eq 5 ] && [ $rl_refused -eq 5 ]; then
	echo "ok: 10 messages from rl@ alternately through A and B: 5" \
	    "accepted, then 5 refused at MAIL with" \
	    "'$(reply_to rl6 MAIL)'"
fi

pf_wait_empty "$pf_a" 30 || wire_fail "Postfix A's queue did not empty"
pf_wait_empty "$pf_b" 30 || wire_fail "Postfix B's queue did not empty"
bad=
for i in $(seq 10); do
	[ $((i % 2)) -eq 1 ] && host=a || host=b
	[ "$i" -le 5 ] && want=$host || want=
	got=$(sunk "rl$i")
	[ "$got" = "$want" ] || bad="$bad rl$i:'$got'(want '$want')"
done
if [ -z "$bad" ]; then
	echo "ok: rl1, rl3, rl5 reached A's smtp-sink, rl2, rl4 B's; rl6 to" \
	    "rl10 none"
else
	wire_fail "what reached the smtp-sinks:$bad"
fi

# Each host logged its own refusals, with the count both hosts made.
bad=
for i in 6 7 8 9 10; do
	[ $((i % 2)) -eq 1 ] && log=$log_a h=A || log=$log_b h=B
	grep -q "\[persender\] sender rl@milterhost.test: $i messages in a fixed window of 3600s (limit 5): 451 4.7.1 Rate limit exceeded" \
	    "$log" || bad="$bad $i($h)"
done
if [ -z "$bad" ]; then
	echo "ok: A logged its refusals at the shared counts 7 and 9, B at" \
	    "6, 8 and 10"
else
	wire_fail "refusals not logged with the shared count:$bad"
fi

if command -v redis-cli >/dev/null 2>&1; then
	key=persender:f:rl@milterhost.test
	count=$(redis-cli -s "$WIRE_REDIS_SOCK" --raw get "$key")
	ttl=$(redis-cli -s "$WIRE_REDIS_SOCK" --raw ttl "$key")
	if [ "$count" = 10 ] && [ "$ttl" -gt 0 ] 2>/dev/null &&
	    [ "$ttl" -le 3600 ]; then
		echo "ok: Redis holds $key = $count (refused attempts stay" \
		    "counted in a fixed window), TTL ${ttl}s"
	else
		wire_fail "Redis: $key = '$count' (want 10), TTL '$ttl'" \
		    "(want 1 to 3600)"
		redis-cli -s "$WIRE_REDIS_SOCK" --raw keys '*' |
		    sed 's/^/    /'
	fi
else
	echo "(redis-cli is not installed: the counter in Redis is not" \
	    "looked at)"
fi

# ---- 2. greylisting, across hosts ------------------------------------------

triplet='127.0.0.0/24 <g@milterhost.test> <grey@example.net>'
greylisted='451 4.7.1 Greylisted, please try again later'

send g1 a g@milterhost.test grey@example.net
after_first=$(date +%s)
got=$(reply_to g1 RCPT)
if [ "$got" = "$greylisted" ] &&
    grep -qF "[grey] $triplet: first attempt, greylisted for 3s" "$log_a"
then
	echo "ok: g1 through A: '$got' at RCPT, A logged the first attempt"
else
	wire_fail "g1 through A: RCPT heard '$got', want '$greylisted'" \
	    "and A logging the first attempt"
	sed 's/^/    /' "$WIRE_TMP/g1.swaks"
fi

send g2 b g@milterhost.test grey@example.net
got=$(reply_to g2 RCPT)
if [ "$got" = "$greylisted" ] &&
    grep -qF "[grey] $triplet: retry too early" "$log_b"; then
	echo "ok: g2 through B before the delay: '$got', B logged" \
	    "'$(grep -oF 'retry too early' "$log_b")'"
else
	wire_fail "g2 through B: RCPT heard '$got', want '$greylisted'" \
	    "and B logging 'retry too early'"
	sed 's/^/    /' "$WIRE_TMP/g2.swaks"
fi

# The first attempt's time (whole seconds) is at most after_first: from
# after_first + 3 on, the retry is past the delay on every count.
while [ "$(date +%s)" -lt $((after_first + 3)) ]; do
	sleep 0.2
done

send g3 b g@milterhost.test grey@example.net
got=$(reply_to g3 RCPT)
if [ "${got%% *}" = 250 ] && heard g3 '250 2\.0\.0 Ok: queued' &&
    grep -qF "[grey] $triplet: passed, retried after" "$log_b" &&
    ! grep -qF "[grey] $triplet: first attempt" "$log_b"; then
	echo "ok: g3 through B after the delay: accepted, B logged" \
	    "'$(grep -oF "passed, retried after" "$log_b") ...' (from A's" \
	    "first attempt: B never logged one)"
else
	wire_fail "g3 through B after the delay: RCPT heard '$got', not" \
	    "queued, not logged as passed, or B logged a first attempt"
	sed 's/^/    /' "$WIRE_TMP/g3.swaks"
fi
if command -v redis-cli >/dev/null 2>&1; then
	key=127.0.0.0/24/g@milterhost.test/grey@example.net
	t=$(redis-cli -s "$WIRE_REDIS_SOCK" --raw exists "grey:t:$key")
	s=$(redis-cli -s "$WIRE_REDIS_SOCK" --raw exists "grey:s:$key")
	if [ "$t" = 1 ] && [ "$s" = 0 ]; then
		echo "ok: Redis holds the pass grey:t:$key, the first" \
		    "attempt grey:s:... is gone"
	else
		wire_fail "Redis: grey:t:$key exists '$t' (want 1)," \
		    "grey:s:... exists '$s' (want 0)"
		redis-cli -s "$WIRE_REDIS_SOCK" --raw keys '*' |
		    sed 's/^/    /'
	fi
fi

send g4 a g@milterhost.test grey@example.net
got=$(reply_to g4 RCPT)
if [ "${got%% *}" = 250 ] && heard g4 '250 2\.0\.0 Ok: queued' &&
    grep -qF "[grey] $triplet: passed before, the pass renewed" "$log_a"
then
	echo "ok: g4 through A: accepted at once, A found the pass B wrote"
else
	wire_fail "g4 through A: RCPT heard '$got', not queued or A did" \
	    "not log the pass as found"
	sed 's/^/    /' "$WIRE_TMP/g4.swaks"
fi

pf_wait_empty "$pf_a" 30 || wire_fail "Postfix A's queue did not empty"
pf_wait_empty "$pf_b" 30 || wire_fail "Postfix B's queue did not empty"
bad=
for m in g1:"" g2:"" g3:b g4:a; do
	got=$(sunk "${m%%:*}")
	[ "$got" = "${m#*:}" ] || bad="$bad ${m%%:*}:'$got'(want '${m#*:}')"
done
if [ -z "$bad" ]; then
	echo "ok: g3 reached B's smtp-sink, g4 A's, g1 and g2 none"
else
	wire_fail "what reached the smtp-sinks:$bad"
fi

# ---- 3. both hosts healthy ---------------------------------------------------

wire_alive || wire_fail "daemon A died"
wire_second_alive || wire_fail "daemon B died"
wire_stop
wire_stop_second

# A took rl1, rl3, rl5 and g4; B rl2, rl4 and g3.
for h in A:4 B:3; do
	[ "${h%%:*}" = A ] && d=$pf_a || d=$pf_b
	want=${h#*:}
	pf_wait_count "$d" ' status=sent ' "$want" 10
	sent=$(pf_count "$d" ' status=sent ')
	bad=$(pf_trouble "$d")
	if [ "$sent" -eq "$want" ] && [ "$bad" -eq 0 ]; then
		echo "ok: Postfix ${h%%:*}'s log: $sent messages sent, no" \
		    "deferral, bounce or warning"
	else
		wire_fail "Postfix ${h%%:*}'s log: $sent sent (want $want)," \
		    "$bad deferred, bounced, fatal or warnings"
		sed 's/^/    /' "$d/maillog"
	fi
done
wire_redis_stop
wire_exit
