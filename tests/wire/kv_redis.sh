#!/bin/bash
# kv_redis.sh - kv = unix:/PATH of a redis-server the test starts (no
# persistence, in the test's directory): two milterhost daemons on one
# Redis share the count the scripted plugin keeps (kv_count, at eom),
# which outlives a restart of a daemon; Redis stopped: the messages get
# no header, at once, the daemon logs it and lives; Redis back: the
# count goes on by itself.  Skips (77) without redis-server.
here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99
wire_need_redis
wire_init kv_redis
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"
WIRE_PLUGIN_DIR=$abs_top_builddir/tests/plugins/.libs

# count SOCKET: the X-Count header a new connection's message gets there.
count() {
	"$client" mods "$1" 2>&1 | sed -n "s/^mod h X-Count|//p" | tr -d ' '
}

wire_redis_start
redis_sock=$WIRE_REDIS_SOCK
ini=$(wire_config kv_redis <<EOF
kv = unix:$redis_sock
kv_timeout_ms = 200

[plugin:count]
module = scripted
do = eom kv_count n X-Count
EOF
) || exit 99

# The second daemon: the same file on the second socket.
sock_a=$WIRE_SOCKET sock_b=$WIRE_SECOND_SOCKET
wire_start_second "$ini" || wire_exit
wire_start "$ini" || wire_exit

wire_expect "first message, daemon A" 1 "$(count "$sock_a")"
wire_expect "second message, daemon B" 2 "$(count "$sock_b")"
wire_expect "third message, daemon A" 3 "$(count "$sock_a")"
wire_expect "fourth message, daemon B" 4 "$(count "$sock_b")"

# A restart of daemon A: the count is in Redis.
wire_stop
wire_start "$ini" || wire_exit
wire_expect "after a restart of A" 5 "$(count "$sock_a")"

# Redis gone: the messages get no header, fast.
wire_redis_stop
start=$(date +%s%N)
wire_expect "Redis stopped, daemon A" "" "$(count "$sock_a")"
wire_expect "Redis stopped, daemon B" "" "$(count "$sock_b")"
ms=$((($(date +%s%N) - start) / 1000000))
echo "two messages with Redis stopped took $ms ms"
[ "$ms" -lt 3000 ] || wire_fail "messages took $ms ms with Redis stopped"
grep -q "kv: Redis at unix:$redis_sock unavailable" "$WIRE_LOG" ||
    wire_fail "no log line saying Redis is unavailable"
wire_alive || wire_fail "daemon A died when Redis went away"

# Redis back (empty: no persistence): counting starts again by itself,
# after the backoff.
wire_redis_start
got=
for i in $(seq 50); do
	got=$(count "$sock_a")
	[ -n "$got" ] && break
	sleep 0.2
done
wire_expect "Redis back, daemon A" 1 "$got"
got=
for i in $(seq 50); do
	got=$(count "$sock_b")
	[ -n "$got" ] && break
	sleep 0.2
done
wire_expect "Redis back, daemon B" 2 "$got"

wire_stop
wire_stop_second
wire_redis_stop
wire_exit
