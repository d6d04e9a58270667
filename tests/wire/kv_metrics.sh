#!/bin/bash
# kv_metrics.sh - the key-value store's metrics on /metrics, read over
# HTTP and checked exactly after a known sequence of calls by the scripted
# plugin (kv_count, kv_get, kv_set, kv_add, kv_delete at eom).  The memory
# store: every operation by result (all of them shown, 0 included), the
# time histogram's counts, the backend, the store's bound, entries and
# evictions (none).  Then, with a redis-server the test starts (skipped,
# saying so, without one): the calls by result while Redis is up, killed
# (unavailable) and back, and the connects by result and connections
# open, as far as libmilter's choice of worker thread leaves them known.
# promtool (Debian: prometheus) must accept both outputs (skipped, saying
# so, without it).
here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init kv_metrics
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"
WIRE_PLUGIN_DIR=$abs_top_builddir/tests/plugins/.libs
[ -f "$WIRE_PLUGIN_DIR/scripted.so" ] ||
    wire_error "$WIRE_PLUGIN_DIR/scripted.so is missing: run make check"

port=$(wire_free_port)

# expect_ops 'OP RESULT N'...: milterhost_kv_operations_total, every one
# of the 30 series: the ones given have N, the others 0.
expect_ops() {
	local op r want spec ok=yes

	for op in get set add incr delete; do
		for r in ok notfound exists invalid unavailable nomem; do
			want=0
			for spec in "$@"; do
				[ "$spec" = "${spec#$op $r }" ] ||
				    want=${spec#$op $r }
			done
			wire_expect_metrics "milterhost_kv_operations_total{op=\"$op\",result=\"$r\"} $want" ||
			    ok=no
		done
	done
	[ $ok = yes ]
}

# expect_counts 'OP N'...: the time histogram's count and +Inf bucket.
expect_counts() {
	local spec op n ok=yes

	for spec in "$@"; do
		op=${spec% *} n=${spec#* }
		wire_expect_metrics "milterhost_kv_operation_seconds_count{op=\"$op\"} $n" \
		    "milterhost_kv_operation_seconds_bucket{op=\"$op\",le=\"+Inf\"} $n" ||
		    ok=no
	done
	[ $ok = yes ]
}

promcheck() {
	if ! command -v promtool >/dev/null 2>&1; then
		echo "skip: promtool is not installed (Debian: apt-get install" \
		    "prometheus): the format is not checked by it"
	elif promtool check metrics <"$WIRE_TMP/metrics.txt" \
	    >"$WIRE_TMP/promtool.out" 2>&1; then
		echo "ok: promtool check metrics accepts the output ($1)"
	else
		wire_fail "promtool check metrics ($1):" \
		    "$(cat "$WIRE_TMP/promtool.out")"
	fi
}

# message: one message on a new connection; its X-Count header, if any.
message() {
	"$client" mods "$WIRE_SOCKET" 2>&1 | sed -n "s/^mod h X-Count|//p" |
	    tr -d ' '
}

# ---- the memory store ------------------------------------------------------
ini=$(wire_config kv_metrics <<CONF
metrics_listen = 127.0.0.1:$port
kv_memory_max_bytes = 8M

[plugin:k]
module = scripted
do = eom kv_count n X-Count
do = eom kv_get n
do = eom kv_get missing
do = eom kv_add once 1
do = eom kv_set s v
do = eom kv_count s X-Bad
do = eom kv_delete gone
CONF
) || exit 99
wire_start "$ini" || wire_exit

wire_scrape "$port"
expect_ops && wire_expect_metrics 'milterhost_kv_backend_info{backend="memory"} 1' \
    "milterhost_kv_memory_entries 0" "milterhost_kv_memory_bytes 0" &&
    echo "ok: before any call: backend memory, every operation and" \
    "result at 0, the store empty"
n=$(grep -c '^milterhost_kv_operations_total{' "$WIRE_TMP/metrics.txt")
[ "$n" = 30 ] || wire_fail "$n series of milterhost_kv_operations_total," \
    "expected 30 (5 operations, 6 results)"

got=
for i in 1 2 3; do
	got="$got${got:+ }$(message)"
done
[ "$got" = "1 2 3" ] || wire_fail "X-Count of three messages: '$got'," \
    "expected '1 2 3'"

# Per message: incr ok (n) and invalid (s holds "v"), get ok (n) and
# notfound, set ok, delete ok (of nothing); add ok once, then exists.
wire_scrape "$port"
expect_ops "get ok 3" "get notfound 3" "set ok 3" "add ok 1" "add exists 2" \
    "incr ok 3" "incr invalid 3" "delete ok 3" &&
    echo "ok: three messages: get ok 3, notfound 3; set ok 3; add ok 1," \
    "exists 2; incr ok 3, invalid 3; delete ok 3; the other 23 series 0"
expect_counts "get 6" "set 3" "add 3" "incr 6" "delete 3" &&
    echo "ok: the time histogram counts every call (get 6, set 3, add 3," \
    "incr 6, delete 3)"
# Memory calls take microseconds: all of them within 10 ms here.
le=$(grep -F 'milterhost_kv_operation_seconds_bucket{op="get",le="0.01"}' \
    "$WIRE_TMP/metrics.txt" | sed 's/.* //')
[ "$le" = 6 ] && echo "ok: the 6 gets took 10 ms or less each" ||
    wire_fail "gets within 10 ms: '$le', expected 6"
wire_expect_metrics "milterhost_kv_memory_max_bytes 8388608" \
    "milterhost_kv_memory_entries 3" \
    "milterhost_kv_memory_evictions_total 0" &&
    echo "ok: memory store: bound 8388608 bytes, 3 entries (n, once, s)," \
    "no evictions"
bytes=$(grep '^milterhost_kv_memory_bytes ' "$WIRE_TMP/metrics.txt" |
    sed 's/.* //')
if [ -n "$bytes" ] && [ "$bytes" -gt 0 ] && [ "$bytes" -lt 4096 ]; then
	echo "ok: memory store: $bytes bytes counted for 3 small entries"
else
	wire_fail "milterhost_kv_memory_bytes '$bytes', expected 1..4095"
fi
if grep -q '^milterhost_kv_redis' "$WIRE_TMP/metrics.txt"; then
	wire_fail "Redis metrics served for the memory store"
fi
promcheck "memory store"
wire_stop

# ---- Redis -------------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
	echo "skip: redis-server is not installed (on Debian: apt-get" \
	    "install redis-server): no Redis case"
	wire_exit
fi

# value NAME: the value of the series whose line starts with NAME and a
# space.
value() {
	grep -F -- "$1 " "$WIRE_TMP/metrics.txt" | grep -v '^#' | sed 's/.* //'
}

wire_redis_start
ini=$(wire_config kv_metrics_redis <<CONF
metrics_listen = 127.0.0.1:$port
kv = unix:$WIRE_REDIS_SOCK
kv_timeout_ms = 200

[plugin:k]
module = scripted
do = eom kv_count n X-Count
CONF
) || exit 99
wire_start "$ini" || wire_exit

wire_scrape "$port"
wire_expect_metrics 'milterhost_kv_backend_info{backend="redis"} 1' \
    'milterhost_kv_redis_connects_total{result="ok"} 0' \
    'milterhost_kv_redis_connects_total{result="failed"} 0' \
    "milterhost_kv_redis_connections 0" &&
    echo "ok: before any call: backend redis, no connection yet"
if grep -q '^milterhost_kv_memory' "$WIRE_TMP/metrics.txt"; then
	wire_fail "memory store metrics served for Redis"
fi

# Sessions run on libmilter's worker threads, each with a connection of
# its own, opened at its first call: which worker takes a session is
# libmilter's choice, so two sessions open one or two connections.
got="$(message) $(message)"
[ "$got" = "1 2" ] || wire_fail "X-Count with Redis: '$got', expected '1 2'"
wire_scrape "$port"
ok=$(value 'milterhost_kv_redis_connects_total{result="ok"}')
open=$(value milterhost_kv_redis_connections)
expect_ops "incr ok 2" && expect_counts "incr 2" &&
    wire_expect_metrics 'milterhost_kv_redis_connects_total{result="failed"} 0' &&
    if [ "$ok" = "$open" ] && [ "$ok" -ge 1 ] && [ "$ok" -le 2 ]; then
	echo "ok: Redis up: incr ok 2; $ok connects, all ok, $open open"
    else
	wire_fail "Redis up: $ok connects ok, $open connections open," \
	    "expected 1 or 2 of each, equal"
    fi

# Redis killed: a worker's connection is found closed and reopening it
# is refused, or a worker in its backoff tries nothing: every call is
# unavailable, at least one attempt failed, none succeeded.
wire_redis_stop
got="$(message)$(message)"
[ -z "$got" ] || wire_fail "X-Count with Redis killed: '$got', expected none"
wire_scrape "$port"
failed=$(value 'milterhost_kv_redis_connects_total{result="failed"}')
expect_ops "incr ok 2" "incr unavailable 2" && expect_counts "incr 4" &&
    wire_expect_metrics "milterhost_kv_redis_connects_total{result=\"ok\"} $ok" &&
    if [ "$failed" -ge 1 ] && [ "$failed" -le 2 ]; then
	echo "ok: Redis killed: incr unavailable 2; $failed connects" \
	    "failed, none more ok"
    else
	wire_fail "Redis killed: $failed connects failed, expected 1 or 2"
    fi
# Within the timeout: no unavailable call took more than 0.25 s.
le=$(value 'milterhost_kv_operation_seconds_bucket{op="incr",le="0.25"}')
[ "$le" = 4 ] && echo "ok: the 4 incrs took 250 ms or less each" ||
    wire_fail "incrs within 250 ms: '$le', expected 4"

# Back, after the backoffs (100 ms, 200 ms after a second failure): the
# call reconnects once, whichever worker takes it.  Counting starts from
# nothing (no persistence).
wire_redis_start
sleep 0.5
got=$(message)
[ "$got" = 1 ] || wire_fail "X-Count with Redis back: '$got', expected 1"
wire_scrape "$port"
expect_ops "incr ok 3" "incr unavailable 2" &&
    wire_expect_metrics "milterhost_kv_redis_connects_total{result=\"ok\"} $((ok + 1))" \
    "milterhost_kv_redis_connects_total{result=\"failed\"} $failed" &&
    echo "ok: Redis back: incr ok 3, one connect more ok ($((ok + 1)))"
promcheck "Redis store"
wire_stop
wire_redis_stop
wire_exit
