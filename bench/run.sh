#!/bin/sh
# run.sh - the benchmark: milterhost against a bare libmilter milter and
# against milters chained by the MTA, measured in one run.
#
#	make bench	(or: sh bench/run.sh from the build directory)
#
# It starts, in a temporary directory, on unix sockets: the floor (a bare
# libmilter milter that continues everywhere), milterhost with 1, 5 and 10
# no-op plugins, milterhost with 10 no-op plugins and /metrics on
# (metrics_listen: every callback counted and timed), and 10 more bare
# milters for the chains of 5 and 10 that
# the load generator runs as Postfix runs smtpd_milters = a, b, c; and on
# loopback TCP: the bare milter adding a header at the end of the message
# (libmilter without TCP_NODELAY; like the header plugin it takes only the
# end of the message) and milterhost with the header plugin.  A group of
# cases sends 30 headers per message instead of 6: the floor (which answers
# every header), a bare milter with SMFIP_NR_HDR (it answers no header, so
# the load generator sends them without waiting, as Postfix does), and
# milterhost with its 5 no-op plugins (each implements header).  And the
# milter plugin (issue 17): milterhost with one instance of it relaying to
# a bare milter of its own (mh_relay1: the servers' CPU counts both),
# against the floor: the cost of the relay's second hop.
# Then, round after round, it runs every case at 1 and at 4 connections,
# interleaved (A B C ... A B C ...) so that drift hits every case alike,
# each case after its own warm-up.  It prints per case the medians over the
# rounds, the ratio of msgs/s to the floor's, the servers' CPU per message
# (utime + stime from /proc/PID/stat, summed over the chain's servers,
# over all rounds) and their RSS (VmRSS, summed), then checks the targets
# of issue 5, of issue 13 for 30 headers, and of issue 17 for the relay
# (0.85 of the floor's msgs/s), and prints PASS or MISS for each.  Last, it runs
# BENCH_RSS_MESSAGES messages through milterhost with 10 plugins and
# reports how much its RSS grew.
#
# Environment (defaults in brackets; BENCH_LONG=1 changes them to
# 9 rounds of 10000 messages):
#	BENCH_ROUNDS [5]	rounds
#	BENCH_MESSAGES [2000]	messages per case and round (the stalling
#				bare header milter gets a twentieth, and a
#				twentieth of the warm-up)
#	BENCH_WARMUP [200]	messages before each measured run
#	BENCH_PER_CONN [10]	messages per milter connection (SMTP session)
#	BENCH_SIZE [4096]	body bytes per message
#	BENCH_RSS_MESSAGES [100000]	messages of the RSS check (0: none)
#	BUILDDIR [.]		where loadgen, bare_milter, src/milterhost and
#				bench/.libs/{noop,hdr}.so were built
#
# Exit status: 0 if every run was free of errors (whether targets were met
# or not is in the output), 1 if a run had errors: a run with errors is not
# a result.
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
rss_msgs=${BENCH_RSS_MESSAGES:-100000}
b=$(cd "${BUILDDIR:-.}" && pwd)
loadgen=$b/bench/loadgen
bare=$b/bench/bare_milter
milterhost=$b/src/milterhost
milter_so=$b/plugins/.libs/milter.so
for f in "$loadgen" "$bare" "$milterhost" "$b/bench/.libs/noop.so" \
    "$b/bench/.libs/hdr.so" "$milter_so"; do
	if [ ! -e "$f" ]; then
		echo "run.sh: $f is missing: run make bench" >&2
		exit 1
	fi
done

. "$(cd "${srcdir:-$(dirname "$0")/..}" && pwd)/bench/lib.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/milterhost-bench.XXXXXX")
pids=
trap stop_servers EXIT
trap 'exit 1' INT TERM HUP

# Two loopback ports, probably free.
# Below Linux's ephemeral ports (32768 on), which a client's connection
# (ours, to the port before) may hold.
port1=$((20000 + $$ % 12000))
port2=$((port1 + 1))

# ---- servers ----------------------------------------------------------------

# wait_ready SPEC: until one message goes through it.
wait_ready() {
	tries=0
	until "$loadgen" --messages 1 --target "$1" >/dev/null 2>&1; do
		tries=$((tries + 1))
		if [ $tries -gt 100 ]; then
			echo "run.sh: nothing answers on $1; logs:" >&2
			cat "$tmp"/*.log >&2
			exit 1
		fi
		sleep 0.1
	done
}

# start_bare NAME SPEC [OPTION...]: sets pid_NAME.
start_bare() {
	sb_name=$1
	sb_spec=$2
	shift 2
	"$bare" -p "$sb_spec" "$@" 2>"$tmp/$sb_name.log" &
	eval "pid_$sb_name=$!"
	pids="$pids $!"
	wait_ready "$sb_spec"
}

# start_mh NAME SPEC MODULE COUNT [HOST-LINE]: sets pid_NAME; HOST-LINE
# goes into [milterhost].
start_mh() {
	{
		printf '[milterhost]\nsocket = %s\nplugin_dir = %s\n%s\n' \
		    "$2" "$b/bench/.libs" "${5:-}"
		k=1
		while [ $k -le "$4" ]; do
			printf '[plugin:%s%d]\nmodule = %s\n' "$3" $k "$3"
			k=$((k + 1))
		done
	} >"$tmp/$1.ini"
	"$milterhost" -f -c "$tmp/$1.ini" 2>"$tmp/$1.log" &
	eval "pid_$1=$!"
	pids="$pids $!"
	wait_ready "$2"
}

start_bare floor "unix:$tmp/floor.sock"
start_mh mh1 "unix:$tmp/mh1.sock" noop 1
start_mh mh5 "unix:$tmp/mh5.sock" noop 5
start_mh mh10 "unix:$tmp/mh10.sock" noop 10
# The same with /metrics on (issue 16: at least 0.97 of mh10's msgs/s).
start_mh mh10m "unix:$tmp/mh10m.sock" noop 10 \
    "metrics_listen = 127.0.0.1:$((port2 + 1))"
chain5= chain10= chain5_pids= chain10_pids=
for i in 1 2 3 4 5 6 7 8 9 10; do
	start_bare "c$i" "unix:$tmp/c$i.sock"
	eval "p=\$pid_c$i"
	chain10="$chain10 --target unix:$tmp/c$i.sock"
	chain10_pids="$chain10_pids $p"
	if [ $i -le 5 ]; then
		chain5="$chain5 --target unix:$tmp/c$i.sock"
		chain5_pids="$chain5_pids $p"
	fi
done
start_bare barehdr "inet:$port1@127.0.0.1" -H -E
start_mh mhhdr "inet:$port2@127.0.0.1" hdr 1
start_bare nrhdr "unix:$tmp/nrhdr.sock" -N
# The milter plugin (issue 17): milterhost relaying to a bare milter of
# its own, started first (the plugin probes it at start-up).
start_bare relayb "unix:$tmp/relayb.sock"
printf '[milterhost]\nsocket = unix:%s\n[plugin:relay]\nmodule = %s\nsocket = unix:%s\n' \
    "$tmp/mh_relay1.sock" "$milter_so" "$tmp/relayb.sock" \
    >"$tmp/mh_relay1.ini"
"$milterhost" -f -c "$tmp/mh_relay1.ini" 2>"$tmp/mh_relay1.log" &
pid_mh_relay1=$!
pids="$pids $!"
wait_ready "unix:$tmp/mh_relay1.sock"

# The cases: name, servers, loadgen targets.  The h30_ cases send 30
# headers per message: h30_bare to the floor, h30_nr to the bare milter
# with NR_HDR, h30_mh5 to milterhost with 5 no-op plugins; mh_relay1 to
# milterhost relaying to its bare milter.  (A case named *hdr* must get a
# header change per message.)
cases="floor mh_relay1 mh1 mh5 mh10 mh10m chain5 chain10 barehdr_tcp mhhdr_tcp"
cases="$cases h30_bare h30_nr h30_mh5"
case_pids() {
	case $1 in
	floor | h30_bare) echo "$pid_floor" ;;
	mh1 | mh5 | mh10 | mh10m) eval "echo \$pid_$1" ;;
	mh_relay1) echo "$pid_mh_relay1 $pid_relayb" ;;
	chain5) echo "$chain5_pids" ;;
	chain10) echo "$chain10_pids" ;;
	barehdr_tcp) echo "$pid_barehdr" ;;
	mhhdr_tcp) echo "$pid_mhhdr" ;;
	h30_nr) echo "$pid_nrhdr" ;;
	h30_mh5) echo "$pid_mh5" ;;
	esac
}
case_targets() {
	case $1 in
	floor | mh_relay1 | mh1 | mh5 | mh10 | mh10m)
		echo "--target unix:$tmp/$1.sock" ;;
	chain5) echo "$chain5" ;;
	chain10) echo "$chain10" ;;
	barehdr_tcp) echo "--target inet:$port1@127.0.0.1" ;;
	mhhdr_tcp) echo "--target inet:$port2@127.0.0.1" ;;
	h30_bare) echo "--target unix:$tmp/floor.sock" ;;
	h30_nr) echo "--target unix:$tmp/nrhdr.sock" ;;
	h30_mh5) echo "--target unix:$tmp/mh5.sock" ;;
	esac
}
case_headers() {
	case $1 in
	h30_*) echo 30 ;;
	*) echo 6 ;;
	esac
}
case_msgs() {
	case $1 in
	barehdr_tcp) echo $((msgs / 20 > 20 ? msgs / 20 : 20)) ;;
	*) echo "$msgs" ;;
	esac
}
case_warm() {
	case $1 in
	barehdr_tcp) echo $((warm / 20 > 5 ? warm / 20 : 5)) ;;
	*) echo "$warm" ;;
	esac
}

# ---- measuring --------------------------------------------------------------

# loadgen_run FILE ARGS...: run loadgen; on errors, show them and stop.
loadgen_run() {
	out=$1
	shift
	if ! "$loadgen" "$@" >"$out" 2>"$out.err"; then
		echo "run.sh: loadgen $*: failed; a run with errors is not a" \
		    "result:" >&2
		cat "$out" "$out.err" >&2
		exit 1
	fi
}

results=$tmp/results
: >"$results"
# measure CASE CONNS ROUND
measure() {
	n=$(case_msgs "$1")
	p=$(case_pids "$1")
	t=$(case_targets "$1")
	h=$(case_headers "$1")
	common="--connections $2 --per-conn $per_conn --size $size --headers $h"
	# shellcheck disable=SC2086
	loadgen_run "$tmp/warm" $common --messages "$(case_warm "$1")" $t
	# shellcheck disable=SC2086
	before=$(cpu_ticks $p)
	# shellcheck disable=SC2086
	loadgen_run "$tmp/out" $common --messages "$n" $t
	# shellcheck disable=SC2086
	after=$(cpu_ticks $p)
	# shellcheck disable=SC2086
	rss=$(rss_kb $p)
	got=$(field msgs "$tmp/out")
	changes=$(field changes "$tmp/out")
	case $1 in
	*hdr*) want=$got ;;
	*) want=0 ;;
	esac
	if [ "$got" != "$n" ] || [ "$changes" != "$want" ]; then
		echo "run.sh: $1 at $2 connection(s): $got of $n messages," \
		    "$changes header changes (want $want):" >&2
		cat "$tmp/out" >&2
		exit 1
	fi
	# The bare milters' header replies are what the case says: all of
	# them (the floor), none (NR_HDR).  milterhost's are reported.
	noreply=$(field noreply "$tmp/out")
	case $1 in
	h30_nr) want=$((n * h)) ;;
	mh* | h30_mh5) want=$noreply ;;
	*) want=0 ;;
	esac
	if [ "$noreply" != "$want" ]; then
		echo "run.sh: $1 at $2 connection(s): $noreply events sent" \
		    "without a reply (want $want):" >&2
		cat "$tmp/out" >&2
		exit 1
	fi
	echo "$1 $2 $3 $(field rate "$tmp/out") $(field p50_ms "$tmp/out")" \
	    "$(field p99_ms "$tmp/out") $(field max_ms "$tmp/out")" \
	    "$((after - before)) $n $rss $noreply" >>"$results"
}

echo "milterhost benchmark: $rounds rounds, $msgs messages of $size body" \
    "bytes per case and round, $per_conn per session, $warm of warm-up" \
    "before each; $(nproc) CPU(s)"
run_rounds

# ---- the table --------------------------------------------------------------

tck=$(getconf CLK_TCK)
summary=$tmp/summary
# Per case and connections: median rate, p50, p99, max; CPU us/msg over all
# rounds; RSS of the last round.
for conns in 1 4; do
	for c in $cases; do
		awk -v c="$c" -v n="$conns" '$1 == c && $2 == n' "$results" \
		    >"$tmp/one"
		med() {
			cut -d' ' -f"$1" "$tmp/one" | median
		}
		worst() {
			cut -d' ' -f"$1" "$tmp/one" | sort -g | tail -n 1
		}
		cpu=$(awk -v tck="$tck" '{ t += $8; m += $9 }
		    END { printf "%.0f", t / tck * 1e6 / m }' "$tmp/one")
		rss=$(tail -n 1 "$tmp/one" | cut -d' ' -f10)
		echo "$c $conns $(med 4) $(med 5) $(med 6) $(worst 6)" \
		    "$(worst 7) $cpu $rss"
	done
done >"$summary"

echo
printf '%-12s %5s %9s %6s %8s %8s %9s %9s %9s %8s\n' case conns msgs/s \
    ratio p50_ms p99_ms worst_p99 worst_max cpu_us/msg rss_MB
awk '{ if ($1 == "floor" || $1 == "h30_bare") f[$1, $2] = $3; row[NR] = $0 }
END {
	for (i = 1; i <= NR; i++) {
		split(row[i], v, " ")
		base = v[1] ~ /^h30_/ ? "h30_bare" : "floor"
		printf "%-12s %5d %9.0f %6.2f %8.3f %8.3f %9.3f %9.3f %9d %8.1f\n",
		    v[1], v[2], v[3], v[3] / f[base, v[2]], v[4], v[5], v[6],
		    v[7], v[8], v[9] / 1024
	}
}' "$summary"
echo "(medians over $rounds rounds; worst_*: the worst round; ratio:" \
    "msgs/s over the floor's at the same connections, for the h30_ cases" \
    "(30 headers a message) over h30_bare's; cpu: all rounds'" \
    "server utime+stime over their messages, tick $((1000 / tck)) ms;" \
    "rss: VmRSS after the last round, summed over a chain's servers)"

# ---- targets ----------------------------------------------------------------

# get CASE CONNS COLUMN (3 rate, 5 p99, 6 worst p99, 8 cpu)
get() {
	awk -v c="$1" -v n="$2" -v k="$3" '$1 == c && $2 == n { print $k }' \
	    "$summary"
}
# verdict TEXT CONDITION-IN-AWK
verdict() {
	if awk "BEGIN { exit !($2) }"; then
		echo "PASS  $1"
	else
		echo "MISS  $1"
	fi
}

echo
for n in 1 4; do
	fl=$(get floor $n 3)
	m10=$(get mh10 $n 3)
	verdict "milterhost+10 noop >= 0.9 x floor msgs/s at $n conn.: $m10 vs $fl (x$(awk "BEGIN { printf \"%.2f\", $m10 / $fl }"))" \
	    "$m10 >= 0.9 * $fl"
done
# Metrics on against off: a ratio of 0.97 is smaller than the drift
# between runs on a small machine, so it is measured in pairs, one run of
# each right after the other (in turn which first), and the median of
# the pairs' ratios is the result.
pairs=${BENCH_PAIRS:-9}
for n in 1 4; do
	common="--connections $n --per-conn $per_conn --size $size --headers 6"
	k=1
	: >"$tmp/ratios"
	while [ $k -le "$pairs" ]; do
		if [ $((k % 2)) = 1 ]; then order="mh10 mh10m"; else
			order="mh10m mh10"; fi
		for c in $order; do
			# shellcheck disable=SC2086
			loadgen_run "$tmp/pair_$c" $common --messages "$((msgs * 2))" \
			    --target "unix:$tmp/$c.sock"
		done
		echo "$(field rate "$tmp/pair_mh10m") $(field rate "$tmp/pair_mh10")" |
		    awk '{ printf "%.4f\n", $1 / $2 }' >>"$tmp/ratios"
		k=$((k + 1))
	done
	r=$(median <"$tmp/ratios")
	verdict "milterhost+10 noop with metrics >= 0.97 x without at $n conn., median of $pairs paired runs: x$r (pairs: $(sort -g "$tmp/ratios" | tr '\n' ' '); issue 16)" \
	    "$r >= 0.97"
done
for n in 1 4; do
	m5=$(get mh5 $n 3)
	c5=$(get chain5 $n 3)
	verdict "milterhost+5 noop >= 4 x 5-chain msgs/s at $n conn.: $m5 vs $c5 (x$(awk "BEGIN { printf \"%.2f\", $m5 / $c5 }"))" \
	    "$m5 >= 4 * $c5"
done
hp=$(get mhhdr_tcp 1 6)
bp=$(get barehdr_tcp 1 6)
verdict "header plugin over TCP at 1 conn.: p99 < 5 ms in every round: worst p99 $hp ms (bare libmilter header milter: $bp ms)" \
    "$hp < 5"
for n in 1 4; do
	fc=$(get floor $n 8)
	mc=$(get mh10 $n 8)
	verdict "CPU/msg of milterhost+10 <= 1.2 x floor at $n conn.: $mc us vs $fc us (x$(awk "BEGIN { printf \"%.2f\", $mc / $fc }"))" \
	    "$mc <= 1.2 * $fc"
done
# The milter plugin: milterhost relaying to a bare milter against that
# milter directly; CPU per message counts milterhost and its bare milter.
# Reported, with no target: here the floor is all the work there is and
# the relay adds a whole milter's worth and a round trip per event; the
# target (0.85) is the end-to-end one, through Postfix (postfix.sh).
for n in 1 4; do
	fl=$(get floor $n 3)
	rl=$(get mh_relay1 $n 3)
	fc=$(get floor $n 8)
	rc=$(get mh_relay1 $n 8)
	echo "INFO  milterhost+milter plugin relaying to a bare milter vs that milter directly at $n conn.: $rl vs $fl msgs/s (x$(awk "BEGIN { printf \"%.2f\", $rl / $fl }")); CPU/msg $rc us vs $fc us (x$(awk "BEGIN { printf \"%.2f\", $rc / $fc }")); no target at this level"
done


# 30 headers: the ratios, and issue 13's target for the coming work that
# lets milterhost claim SMFIP_NR_HDR (until then it answers every header).
echo
echo "30 headers per message (h30_ cases; ratios within this run):"
for n in 1 4; do
	hb=$(get h30_bare $n 3)
	hn=$(get h30_nr $n 3)
	hm=$(get h30_mh5 $n 3)
	# Events milterhost took without answering, per message.
	nr=$(awk -v n=$n '$1 == "h30_mh5" && $2 == n { t += $11; m += $9 }
	    END { printf "%.1f", t / m }' "$results")
	echo "  $n conn.: bare milter answering every header $hb msgs/s;" \
	    "bare milter with NR_HDR $hn (x$(awk "BEGIN { printf \"%.2f\", $hn / $hb }"));" \
	    "milterhost+5 header plugins $hm (x$(awk "BEGIN { printf \"%.2f\", $hm / $hb }")," \
	    "x$(awk "BEGIN { printf \"%.2f\", $hm / $hn }") of NR_HDR;" \
	    "$nr events a message sent without a reply)"
done
for n in 1 4; do
	hb=$(get h30_bare $n 3)
	hm=$(get h30_mh5 $n 3)
	verdict "milterhost+5 header plugins >= 1.5 x bare milter answering every header, 30 headers, at $n conn.: $hm vs $hb (x$(awk "BEGIN { printf \"%.2f\", $hm / $hb }"); issue 13, for the NR_HDR work)" \
	    "$hm >= 1.5 * $hb"
done

# ---- RSS over many messages -------------------------------------------------

if [ "$rss_msgs" -gt 0 ]; then
	common="--connections 4 --per-conn $per_conn --size $size"
	# shellcheck disable=SC2086
	loadgen_run "$tmp/warm" $common --messages 2000 \
	    --target "unix:$tmp/mh10.sock"
	r0=$(rss_kb "$pid_mh10")
	# shellcheck disable=SC2086
	loadgen_run "$tmp/out" $common --messages "$rss_msgs" \
	    --target "unix:$tmp/mh10.sock"
	r1=$(rss_kb "$pid_mh10")
	echo "RSS of milterhost+10 over $rss_msgs messages after warm-up:" \
	    "$r0 kB -> $r1 kB ($(sed -n 's/^loadgen: //p' "$tmp/out"))"
	verdict "RSS growth of milterhost+10 over $rss_msgs messages <= 1 MB: $((r1 - r0)) kB" \
	    "$r1 - $r0 <= 1024"
fi
echo "total $(($(date +%s) - start)) s"
