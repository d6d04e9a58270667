#!/bin/bash
# kv_concurrency.sh - counts made by 64 connections at once are exact:
# bench/loadgen sends 1500 messages over 64 concurrent milter connections
# through the bundled ratelimit plugin (key = sender, every message from
# one sender, limit = 1000, a fixed window of an hour): exactly 1000 are
# accepted and 500 tempfailed, with no protocol error.  On the memory
# store, then on a redis-server of the test's own (skipped, saying so,
# without one), where Redis's counter must then hold 1500: every attempt
# counted once (with redis-cli).

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init kv_concurrency
loadgen=$abs_top_builddir/bench/loadgen
[ -x "$loadgen" ] || wire_error "$loadgen is missing: run make check"
CONNS=64
MESSAGES=1500
LIMIT=1000

# run NAME KV: the daemon on store KV, the messages, the counts checked.
run() {
	local name=$1 ini out=$WIRE_TMP/$1.out

	ini=$(wire_config "$name" <<CONF
kv = $2

[plugin:rl]
module = ratelimit
key = sender
limit = $LIMIT
window = 1h
fail_open = no
CONF
) || exit 99
	wire_start "$ini" || wire_exit
	if ! "$loadgen" --connections "$CONNS" --per-conn 5 \
	    --messages "$MESSAGES" --target "unix:$WIRE_SOCKET" >"$out" \
	    2>"$WIRE_TMP/$name.err"; then
		wire_fail "$name: loadgen failed: $(cat "$out" \
		    "$WIRE_TMP/$name.err")"
	fi
	sed 's/^/    /' "$out"
	accepted=$(wire_loadgen_field accepted "$out")
	tempfailed=$(wire_loadgen_field tempfailed "$out")
	if [ "$accepted" = "$LIMIT" ] &&
	    [ "$tempfailed" = $((MESSAGES - LIMIT)) ]; then
		echo "ok: $name: $CONNS connections: $accepted accepted," \
		    "$tempfailed tempfailed"
	else
		wire_fail "$name: $accepted accepted and $tempfailed" \
		    "tempfailed, expected $LIMIT and $((MESSAGES - LIMIT))"
	fi
	wire_stop
}

run memory memory

if ! command -v redis-server >/dev/null 2>&1; then
	echo "SKIP (Redis): redis-server is not installed" \
	    "(on Debian: apt-get install redis-server)"
	wire_exit
fi
wire_redis_start
run redis "unix:$WIRE_REDIS_SOCK"
if command -v redis-cli >/dev/null 2>&1; then
	n=$(redis-cli -s "$WIRE_REDIS_SOCK" --raw get rl:f:sender@example.test)
	if [ "$n" = "$MESSAGES" ]; then
		echo "ok: redis: the counter holds $n"
	else
		wire_fail "redis: the counter holds '$n', expected $MESSAGES"
	fi
fi
wire_redis_stop
wire_exit
