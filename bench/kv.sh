#!/bin/sh
# kv.sh - the benchmark of the key-value store through the bundled
# ratelimit plugin: what counting every message in the store adds to a
# message's latency, on the memory store and on a Redis on loopback.
#
#	make bench-kv	(also part of make bench; or: sh bench/kv.sh from
#			the build directory)
#
# It starts, in a temporary directory, on unix sockets, milterhost with
# one no-op plugin (bench/noop.c, every stage: the baseline, no plugin
# that counts), and milterhost with the same no-op plugin followed by an
# instance of ratelimit (plugins/.libs/ratelimit.so, through plugin_dir)
# counting per sender (limit 1000000000, window 1h: never refuses;
# fail_open = no, so that a store that fails shows as tempfailed messages,
# an error here), one on kv = memory and one on kv = redis://127.0.0.1:PORT,
# a redis-server of the script's own (--save '' --appendonly no, in the
# temporary directory, on a free loopback port; killed at the end).  The
# no-op plugin is in every case so that every case negotiates the same
# stages: the difference to the baseline is ratelimit's work alone.
# For information: key = client_address on both stores, count =
# recipients (at RCPT instead of MAIL) on both, and Redis on its unix
# socket.  Without redis-server, the Redis cases are skipped (said so).
#
# Round after round it runs every case at 1 and at 4 connections,
# interleaved as run.sh does, each after its own warm-up, and prints per
# case the medians over the rounds of msgs/s, p50 and p99 latency, the
# ratio of msgs/s to the baseline's, the latency added to the baseline's
# (the median over the rounds of case minus baseline in the same round),
# and the CPU per message of milterhost and of redis-server (utime +
# stime from /proc/PID/stat, over all rounds).  Then the target of the
# benchmark as a PASS or MISS line: ratelimit on Redis adds at most 0.3 ms at
# p50 per message at 4 connections; INFO lines for the rest.  With
# redis-cli, the count Redis holds for each Redis case is checked against
# the messages sent, and Redis's own figures are shown (connections
# opened, EVAL calls and their time).
#
# Environment (defaults in brackets; BENCH_LONG=1 changes them to
# 9 rounds of 10000 messages), as run.sh's:
#	BENCH_ROUNDS [5]	rounds
#	BENCH_MESSAGES [2000]	messages per case and round
#	BENCH_WARMUP [200]	messages before each measured run
#	BENCH_PER_CONN [10]	messages per milter connection (SMTP session)
#	BENCH_SIZE [4096]	body bytes per message
#	BENCH_KV_TARGET_MS [0.3]	the target: added p50 at 4 connections
#	REDIS_SERVER [redis-server]	the Redis to start
#	BUILDDIR [.]		where loadgen, src/milterhost,
#				bench/.libs/noop.so and
#				plugins/.libs/ratelimit.so were built
#
# Exit status: 0 if every run was free of errors (whether the target was
# met or not is in the output), 1 if a run had errors: a run with errors
# is not a result.
set -eu

if [ "${BENCH_LONG:-0}" = 1 ]; then
	rounds=${BENCH_ROUNDS:-9}
	msgs=${BENCH_MESSAGES:-10000}
else
	rounds=${BENCH_ROUNDS:-5}
	msgs=${BENCH_MESSAGES:-2000}
fi
warm=${BENCH_WARMUP:-200}
per_conn=${BENCH_PER_CONN:-10}
size=${BENCH_SIZE:-4096}
target_ms=${BENCH_KV_TARGET_MS:-0.3}
redis=${REDIS_SERVER:-redis-server}
b=$(cd "${BUILDDIR:-.}" && pwd)
loadgen=$b/bench/loadgen
milterhost=$b/src/milterhost
noop_so=$b/bench/.libs/noop.so
plugin_dir=$b/plugins/.libs
for f in "$loadgen" "$milterhost" "$noop_so" "$plugin_dir/ratelimit.so"; do
	if [ ! -e "$f" ]; then
		echo "kv.sh: $f is missing: run make bench-kv" >&2
		exit 1
	fi
done

. "$(cd "${srcdir:-$(dirname "$0")/..}" && pwd)/bench/lib.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/milterhost-bench-kv.XXXXXX")
pids=
trap stop_servers EXIT
trap 'exit 1' INT TERM HUP

# ---- servers ----------------------------------------------------------------

# wait_ready SPEC: until one message goes through it.
wait_ready() {
	tries=0
	until "$loadgen" --messages 1 --target "$1" >/dev/null 2>&1; do
		tries=$((tries + 1))
		if [ $tries -gt 100 ]; then
			echo "kv.sh: nothing answers on $1; logs:" >&2
			cat "$tmp"/*.log >&2
			exit 1
		fi
		sleep 0.1
	done
}

# start_redis: a redis-server of our own on a free loopback port (the
# first of ten that it could listen on) and on $tmp/redis.sock; sets
# redis_port and pid_redis, or returns 1.
start_redis() {
	# Below Linux's ephemeral ports (32768 on), as run.sh's.
	redis_port=$((20000 + ($$ + 7) % 12000))
	tries=0
	while [ $tries -lt 10 ]; do
		: >"$tmp/redis.log"
		"$redis" --port "$redis_port" --bind 127.0.0.1 \
		    --unixsocket "$tmp/redis.sock" --save '' --appendonly no \
		    --daemonize no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
		pid_redis=$!
		pids="$pids $pid_redis"
		w=0
		while [ $w -lt 100 ]; do
			if grep -q 'Ready to accept connections' \
			    "$tmp/redis.log"; then
				return 0
			fi
			kill -0 "$pid_redis" 2>/dev/null || break
			sleep 0.1
			w=$((w + 1))
		done
		kill "$pid_redis" 2>/dev/null || :
		wait "$pid_redis" 2>/dev/null || :
		echo "kv.sh: redis-server on port $redis_port did not start:" >&2
		tail -n 3 "$tmp/redis.log" >&2
		redis_port=$((redis_port + 1))
		tries=$((tries + 1))
	done
	return 1
}

# start_mh NAME KV [RATELIMIT-SETTINGS]: milterhost with the no-op plugin
# and, with settings, a ratelimit instance named NAME (its namespace);
# sets pid_NAME.
start_mh() {
	{
		printf '[milterhost]\nsocket = unix:%s\nplugin_dir = %s\n' \
		    "$tmp/$1.sock" "$plugin_dir"
		printf 'kv = %s\n' "$2"
		printf '[plugin:noop]\nmodule = %s\n' "$noop_so"
		if [ -n "${3:-}" ]; then
			printf '[plugin:%s]\nmodule = ratelimit\n' "$1"
			printf 'limit = 1000000000\nwindow = 1h\n'
			printf 'fail_open = no\n%s\n' "$3"
		fi
	} >"$tmp/$1.ini"
	"$milterhost" -f -c "$tmp/$1.ini" 2>"$tmp/$1.log" &
	eval "pid_$1=$!"
	pids="$pids $!"
	wait_ready "unix:$tmp/$1.sock"
}

# The cases: base (the no-op plugin alone); mem_* on the memory store,
# redis_* on Redis over loopback TCP, unix_sender on its unix socket.
# *_sender: key = sender; *_client: key = client_address; *_rcpt: key =
# sender, count = recipients.
start_mh base memory
start_mh mem_sender memory 'key = sender'
start_mh mem_client memory 'key = client_address'
start_mh mem_rcpt memory "$(printf 'key = sender\ncount = recipients')"
cases="base mem_sender mem_client mem_rcpt"
have_redis=no
if ! command -v "$redis" >/dev/null 2>&1; then
	echo "kv.sh: $redis is not installed: the Redis cases are skipped" \
	    "(on Debian: apt-get install redis-server)"
elif ! start_redis; then
	echo "kv.sh: $redis did not start on any of 10 ports: the Redis" \
	    "cases are skipped" >&2
else
	have_redis=yes
	rkv=redis://127.0.0.1:$redis_port
	start_mh redis_sender "$rkv" 'key = sender'
	start_mh redis_client "$rkv" 'key = client_address'
	start_mh redis_rcpt "$rkv" "$(printf 'key = sender\ncount = recipients')"
	start_mh unix_sender "unix:$tmp/redis.sock" 'key = sender'
	cases="$cases redis_sender redis_client redis_rcpt unix_sender"
fi

# ---- measuring --------------------------------------------------------------

# loadgen_run FILE ARGS...: run loadgen; on errors, show them and stop.
loadgen_run() {
	out=$1
	shift
	if ! "$loadgen" "$@" >"$out" 2>"$out.err"; then
		echo "kv.sh: loadgen $*: failed; a run with errors is not a" \
		    "result:" >&2
		cat "$out" "$out.err" >&2
		exit 1
	fi
}

results=$tmp/results
: >"$results"
# sent_CASE: the messages each case got (warm-up included), for the check
# of Redis's counts.
for c in $cases; do
	eval "sent_$c=1"
done
# measure CASE CONNS ROUND: a results line "case conns round rate p50 p99
# max mh_ticks redis_ticks messages".
measure() {
	n=$msgs
	t="--target unix:$tmp/$1.sock"
	eval "pm=\$pid_$1"
	pr=
	case $1 in
	redis_* | unix_*) pr=$pid_redis ;;
	esac
	common="--connections $2 --per-conn $per_conn --size $size"
	# shellcheck disable=SC2086
	loadgen_run "$tmp/warm" $common --messages "$warm" $t
	mh0=$(cpu_ticks "$pm")
	r0=0
	[ -z "$pr" ] || r0=$(cpu_ticks "$pr")
	# shellcheck disable=SC2086
	loadgen_run "$tmp/out" $common --messages "$n" $t
	mh1=$(cpu_ticks "$pm")
	r1=0
	[ -z "$pr" ] || r1=$(cpu_ticks "$pr")
	got=$(field msgs "$tmp/out")
	acc=$(field accepted "$tmp/out")
	if [ "$got" != "$n" ] || [ "$acc" != "$n" ]; then
		echo "kv.sh: $1 at $2 connection(s): $got of $n messages," \
		    "$acc accepted (the store failed?):" >&2
		cat "$tmp/out" >&2
		tail -n 5 "$tmp/$1.log" >&2
		exit 1
	fi
	eval "sent_$1=\$((sent_$1 + n + warm))"
	echo "$1 $2 $3 $(field rate "$tmp/out") $(field p50_ms "$tmp/out")" \
	    "$(field p99_ms "$tmp/out") $(field max_ms "$tmp/out")" \
	    "$((mh1 - mh0)) $((r1 - r0)) $n" >>"$results"
}

echo "milterhost key-value store benchmark (ratelimit): $rounds rounds," \
    "$msgs messages of $size body bytes per case and round, $per_conn per" \
    "session, $warm of warm-up before each; $(nproc) CPU(s), load" \
    "average $(cut -d' ' -f1-3 /proc/loadavg)"
run_rounds

# ---- the table --------------------------------------------------------------

tck=$(getconf CLK_TCK)
summary=$tmp/summary
# Per case and connections: median rate, p50, p99; median over the rounds
# of the p50 and p99 added to the baseline's of the same round; CPU us/msg
# of milterhost and of redis-server over all rounds.
for conns in 1 4; do
	awk -v n="$conns" '$1 == "base" && $2 == n' "$results" >"$tmp/base"
	for c in $cases; do
		awk -v c="$c" -v n="$conns" '$1 == c && $2 == n' "$results" \
		    >"$tmp/one"
		med() {
			cut -d' ' -f"$1" "$tmp/one" | median
		}
		# added COLUMN: case minus base, round by round, median.
		added() {
			awk -v k="$1" 'NR == FNR { b[$3] = $k; next }
			    { printf "%.4f\n", $k - b[$3] }' \
			    "$tmp/base" "$tmp/one" | median
		}
		cpu=$(awk -v tck="$tck" '{ t += $8; r += $9; m += $10 }
		    END { printf "%.0f %.0f", t / tck * 1e6 / m,
		    r / tck * 1e6 / m }' "$tmp/one")
		echo "$c $conns $(med 4) $(med 5) $(med 6) $(added 5)" \
		    "$(added 6) $cpu"
	done
done >"$summary"

echo
printf '%-13s %5s %8s %6s %7s %7s %8s %8s %6s %6s\n' case conns msgs/s \
    ratio p50_ms p99_ms +p50_ms +p99_ms mh_us rd_us
awk '{ if ($1 == "base") f[$2] = $3; row[NR] = $0 }
END {
	for (i = 1; i <= NR; i++) {
		split(row[i], v, " ")
		rd = v[1] ~ /^(redis|unix)_/ ? sprintf("%6d", v[9]) : "     -"
		printf "%-13s %5d %8.0f %6.2f %7.3f %7.3f %+8.3f %+8.3f %6d %s\n",
		    v[1], v[2], v[3], v[3] / f[v[2]], v[4], v[5], v[6], v[7],
		    v[8], rd
	}
}' "$summary"
echo "(medians over $rounds rounds; ratio: msgs/s over base's at the same" \
    "connections; +p50, +p99: the median over the rounds of the case's" \
    "latency minus base's in the same round; mh_us, rd_us: CPU" \
    "(utime+stime) per message of milterhost and of redis-server over all" \
    "rounds, tick $((1000 / tck)) ms.  base: milterhost with a no-op" \
    "plugin; the others add ratelimit counting every message (per sender;" \
    "_client: per client address; _rcpt: recipients, at RCPT) on the" \
    "memory store (mem_), Redis over loopback TCP (redis_) or its unix" \
    "socket (unix_))"

# ---- Redis's own figures ----------------------------------------------------

if [ $have_redis = yes ] && command -v redis-cli >/dev/null 2>&1; then
	rcli() {
		redis-cli -s "$tmp/redis.sock" "$@"
	}
	echo
	bad=0
	for c in $cases; do
		case $c in
		redis_client) k="$c:f:192.0.2.7" ;;
		redis_* | unix_*) k="$c:f:sender@example.test" ;;
		*) continue ;;
		esac
		got=$(rcli GET "$k")
		eval "want=\$sent_$c"
		# wait_ready's tries before the daemon listened sent nothing.
		if [ "${got:-0}" -gt "$want" ] || [ "${got:-0}" -lt $((want - 1)) ]; then
			echo "kv.sh: $c: Redis holds $k = '$got', sent $want" \
			    "messages" >&2
			bad=1
		fi
		echo "INFO  $c: Redis counted $got messages in $k ($want sent)"
	done
	rcli INFO stats | tr -d '\r' >"$tmp/rstats"
	rcli INFO commandstats | tr -d '\r' >"$tmp/rcmds"
	conns=$(sed -n 's/^total_connections_received://p' "$tmp/rstats")
	sessions=0
	for c in $cases; do
		case $c in
		redis_* | unix_*) eval "sessions=\$((sessions + sent_$c / per_conn))" ;;
		esac
	done
	echo "INFO  Redis: $conns connections received for about $sessions" \
	    "milter sessions (one per milterhost thread that used the" \
	    "store, redis-cli's included); EVAL:" \
	    "$(sed -n 's/^cmdstat_eval:calls=\([0-9]*\),usec=[0-9]*,usec_per_call=\([0-9.]*\).*/\1 calls, \2 us each in Redis/p' "$tmp/rcmds")"
	if [ $bad = 1 ]; then
		echo "kv.sh: Redis's counts do not match the messages sent" >&2
		exit 1
	fi
fi

# ---- targets ----------------------------------------------------------------

# get CASE CONNS COLUMN (3 rate, 4 p50, 5 p99, 6 +p50, 7 +p99, 8 mh cpu,
# 9 redis cpu)
get() {
	awk -v c="$1" -v n="$2" -v k="$3" '$1 == c && $2 == n { print $k }' \
	    "$summary"
}
ratio() {
	awk "BEGIN { printf \"%.2f\", $1 / $2 }"
}
# signed NUMBER: with its sign, 3 decimals.
signed() {
	awk "BEGIN { printf \"%+.3f\", $1 }"
}

echo
if [ $have_redis = yes ]; then
	a=$(get redis_sender 4 6)
	if awk "BEGIN { exit !($a <= $target_ms) }"; then
		v=PASS
	else
		v=MISS
	fi
	echo "$v  ratelimit on Redis (loopback TCP) adds at most $target_ms ms" \
	    "at p50 per message at 4 conn.: $(signed "$a") ms (p50 $(get redis_sender 4 4)" \
	    "vs $(get base 4 4) ms; msgs/s x$(ratio "$(get redis_sender 4 3)" "$(get base 4 3)"))"
else
	echo "SKIP  ratelimit on Redis (loopback TCP) adds at most $target_ms" \
	    "ms at p50 per message at 4 conn.: no redis-server (above)"
fi
for n in 1 4; do
	for c in $cases; do
		[ "$c" != base ] || continue
		[ "$c" != redis_sender ] || [ $n != 4 ] || continue
		echo "INFO  $c at $n conn.: $(signed "$(get "$c" $n 6)") ms p50," \
		    "$(signed "$(get "$c" $n 7)") ms p99, msgs/s x$(ratio "$(get "$c" $n 3)" "$(get base $n 3)")," \
		    "CPU/msg milterhost $(get "$c" $n 8) us (base $(get base $n 8))$(
		    case $c in redis_* | unix_*) echo ", redis-server $(get "$c" $n 9) us" ;; esac)"
	done
done
echo "total $(($(date +%s) - start)) s"
