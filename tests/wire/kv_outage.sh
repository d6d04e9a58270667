#!/bin/bash
# kv_outage.sh - Redis killed while mail flows.  milterhost runs the
# bundled ratelimit plugin (key = sender, a limit never reached) on a
# redis-server of the test's own (kv = unix:..., kv_timeout_ms = 200);
# bench/loadgen sends mail at 4 connections at a steady rate; Redis is
# killed a second into the run and started again (empty) two seconds
# later.  Twice:
#
#  1. fail_open = yes: every message is accepted, none waits much longer
#     than one timeout (max latency under a second), loadgen sees no
#     protocol error or timeout, the daemon lives; it logged the outage
#     ("unavailable"), the plugin logged
#     messages let through uncounted, and the counter is in Redis again
#     after the outage: counting resumed by itself.
#  2. fail_open = no: the messages during the outage are tempfailed, those
#     before and after it accepted; none lost (accepted + tempfailed =
#     sent), no error, the same bound on latency.
#
# Skipped (77) without redis-server.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_need_redis
wire_init kv_outage
loadgen=$abs_top_builddir/bench/loadgen
[ -x "$loadgen" ] || wire_error "$loadgen is missing: run make check"

RATE=400         # messages a second, over the 4 connections
MESSAGES=1600    # 4 s of mail
LOAD_PID=

# run_outage NAME FAIL_OPEN: the daemon, a run of mail with Redis killed
# and back in its middle; loadgen's report in $WIRE_TMP/NAME.out.
run_outage() {
	local name=$1 ini status

	WIRE_LOG=$WIRE_TMP/$name.log
	: >"$WIRE_LOG"
	wire_redis_start
	ini=$(wire_config "$name" <<EOF
kv = unix:$WIRE_REDIS_SOCK
kv_timeout_ms = 200

[plugin:rl]
module = ratelimit
key = sender
limit = 1000000000
fail_open = $2
EOF
) || exit 99
	wire_start "$ini" || wire_exit
	"$loadgen" --connections 4 --per-conn 10 --rate "$RATE" \
	    --messages "$MESSAGES" --target "unix:$WIRE_SOCKET" \
	    >"$WIRE_TMP/$name.out" 2>"$WIRE_TMP/$name.err" &
	LOAD_PID=$!
	sleep 1
	wire_redis_stop
	echo "$name: Redis killed"
	sleep 2
	wire_redis_start
	echo "$name: Redis started again"
	wait "$LOAD_PID"
	status=$?
	LOAD_PID=
	sed 's/^/    /' "$WIRE_TMP/$name.out"
	[ "$status" -eq 0 ] || wire_fail "$name: loadgen exited with" \
	    "status $status: $(cat "$WIRE_TMP/$name.err")"
	[ "$(wire_loadgen_field errors "$WIRE_TMP/$name.out")" = 0 ] ||
	    wire_fail "$name: loadgen saw errors"
	[ "$(wire_loadgen_field msgs "$WIRE_TMP/$name.out")" = \
	    "$MESSAGES" ] ||
	    wire_fail "$name: not every message was sent"
	max=$(wire_loadgen_field max_ms "$WIRE_TMP/$name.out")
	if [ "${max%.*}" -lt 1000 ]; then
		echo "ok: $name: the slowest message took $max ms"
	else
		wire_fail "$name: a message took $max ms with Redis away"
	fi
	wire_alive || wire_fail "$name: milterhost died"
	grep -q "kv: Redis at unix:$WIRE_REDIS_SOCK unavailable" "$WIRE_LOG" ||
	    wire_fail "$name: no log line saying Redis is unavailable"
	# "answers again" is logged by a thread that logged the outage when
	# it gets through again; libmilter picks the thread of each session,
	# so whether one of those has a call after the outage is chance: the
	# count in Redis below is the proof that the calls went through.
	if command -v redis-cli >/dev/null 2>&1; then
		n=$(redis-cli -s "$WIRE_REDIS_SOCK" --raw get \
		    rl:f:sender@example.test)
		if [ -n "$n" ] && [ "$n" -gt 0 ]; then
			echo "ok: $name: counted again after the outage ($n)"
		else
			wire_fail "$name: no count in Redis after the outage"
		fi
	fi
	wire_stop
	wire_redis_stop
}

outage_cleanup() {
	local status=$?

	if [ -n "$LOAD_PID" ]; then
		kill -KILL "$LOAD_PID" 2>/dev/null
		wait "$LOAD_PID" 2>/dev/null
	fi
	(exit "$status")
	wire_cleanup
}
trap outage_cleanup EXIT

# ---- 1. fail open ------------------------------------------------------

run_outage open yes
accepted=$(wire_loadgen_field accepted "$WIRE_TMP/open.out")
if [ "$accepted" = "$MESSAGES" ]; then
	echo "ok: open: all $accepted messages accepted"
else
	wire_fail "open: $accepted of $MESSAGES accepted"
fi
grep -q "\[rl\] sender sender@example.test not counted: the store failed (.*): let through (fail_open = yes)" \
    "$WIRE_LOG" || wire_fail "open: no log line for the messages let through"

# ---- 2. fail closed ------------------------------------------------------

run_outage closed no
accepted=$(wire_loadgen_field accepted "$WIRE_TMP/closed.out")
tempfailed=$(wire_loadgen_field tempfailed "$WIRE_TMP/closed.out")
if [ "$tempfailed" -gt 0 ] && [ "$accepted" -gt 0 ] &&
    [ $((accepted + tempfailed)) -eq "$MESSAGES" ]; then
	echo "ok: closed: $accepted accepted, $tempfailed tempfailed"
else
	wire_fail "closed: $accepted accepted and $tempfailed tempfailed" \
	    "of $MESSAGES"
fi

wire_exit
