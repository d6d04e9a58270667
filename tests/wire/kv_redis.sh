#!/bin/bash
# kv_redis.sh - kv = unix:/PATH of a redis-server the test starts (no
# persistence, in the test's directory): two milterhost daemons on one
# Redis share the count the scripted plugin keeps (kv_count, at eom),
# which outlives a restart of a daemon; Redis stopped: the messages get
# no header, at once, the daemon logs it and lives; Redis back: the
# count goes on by itself.  Skips (77) without redis-server.
here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99
if ! command -v redis-server >/dev/null 2>&1; then
	echo "SKIP: redis-server is not installed (on Debian: apt-get install redis-server)"
	exit 77
fi
wire_init kv_redis
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"
WIRE_PLUGIN_DIR=$abs_top_builddir/tests/plugins/.libs
redis_sock=$WIRE_TMP/redis.sock
REDIS_PID= OTHER_PID=

kv_cleanup() {
	local status=$?

	for pid in "$REDIS_PID" "$OTHER_PID"; do
		if [ -n "$pid" ]; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		fi
	done
	if [ "$status" -ne 0 ] && [ -s "$WIRE_TMP/other.log" ]; then
		echo "---- the second milterhost's log ----"
		cat "$WIRE_TMP/other.log"
		echo "---- end of log ----"
	fi
	(exit "$status")
	wire_cleanup
}
trap kv_cleanup EXIT

redis_start() {
	local i

	rm -f "$redis_sock"
	redis-server --port 0 --unixsocket "$redis_sock" --save '' \
	    --appendonly no --daemonize no --dir "$WIRE_TMP" \
	    >>"$WIRE_TMP/redis.log" 2>&1 &
	REDIS_PID=$!
	for i in $(seq 200); do
		[ -S "$redis_sock" ] && return 0
		sleep 0.05
	done
	wire_error "redis-server did not create $redis_sock within 10 s"
}

redis_stop() {
	kill -KILL "$REDIS_PID" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
	REDIS_PID=
}

# count SOCKET: the X-Count header a new connection's message gets there.
count() {
	"$client" mods "$1" 2>&1 | sed -n "s/^mod h X-Count|//p" | tr -d ' '
}

# expect WHAT WANT GOT
expect() {
	if [ "$3" = "$2" ]; then
		echo "ok: $1: '$3'"
	else
		wire_fail "$1: '$3', expected '$2'"
	fi
}

redis_start
ini=$(wire_config kv_redis <<EOF
kv = unix:$redis_sock
kv_timeout_ms = 200

[plugin:count]
module = scripted
do = eom kv_count n X-Count
EOF
) || exit 99

# The second daemon: the same file but its socket, started by wire_start
# and then set aside.
sock_a=$WIRE_SOCKET sock_b=$WIRE_TMP/other.sock
ini_b=$WIRE_TMP/other.ini
sed "s|^socket = .*|socket = unix:$sock_b|" "$ini" >"$ini_b"
WIRE_SOCKET=$sock_b WIRE_LOG=$WIRE_TMP/other.log
: >"$WIRE_LOG"
wire_start "$ini_b" || wire_exit
OTHER_PID=$WIRE_PID WIRE_PID=
WIRE_SOCKET=$sock_a WIRE_LOG=$WIRE_TMP/milterhost.log
wire_start "$ini" || wire_exit

expect "first message, daemon A" 1 "$(count "$sock_a")"
expect "second message, daemon B" 2 "$(count "$sock_b")"
expect "third message, daemon A" 3 "$(count "$sock_a")"
expect "fourth message, daemon B" 4 "$(count "$sock_b")"

# A restart of daemon A: the count is in Redis.
wire_stop
wire_start "$ini" || wire_exit
expect "after a restart of A" 5 "$(count "$sock_a")"

# Redis gone: the messages get no header, fast.
redis_stop
start=$(date +%s%N)
expect "Redis stopped, daemon A" "" "$(count "$sock_a")"
expect "Redis stopped, daemon B" "" "$(count "$sock_b")"
ms=$((($(date +%s%N) - start) / 1000000))
echo "two messages with Redis stopped took $ms ms"
[ "$ms" -lt 3000 ] || wire_fail "messages took $ms ms with Redis stopped"
grep -q "kv: Redis at unix:$redis_sock unavailable" "$WIRE_LOG" ||
    wire_fail "no log line saying Redis is unavailable"
wire_alive || wire_fail "daemon A died when Redis went away"

# Redis back (empty: no persistence): counting starts again by itself,
# after the backoff.
redis_start
got=
for i in $(seq 50); do
	got=$(count "$sock_a")
	[ -n "$got" ] && break
	sleep 0.2
done
expect "Redis back, daemon A" 1 "$got"
got=
for i in $(seq 50); do
	got=$(count "$sock_b")
	[ -n "$got" ] && break
	sleep 0.2
done
expect "Redis back, daemon B" 2 "$got"

wire_stop
kill -TERM "$OTHER_PID"
wait "$OTHER_PID" || wire_fail "daemon B exited with status $? after SIGTERM"
OTHER_PID=
redis_stop
wire_exit
