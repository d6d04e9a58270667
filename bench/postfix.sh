#!/bin/sh
# postfix.sh - the end-to-end benchmark: mail sent with smtp-source through
# a private Postfix instance on loopback, with no milter, with one bare
# libmilter milter, with milterhost running 5 no-op plugins, with 5 bare
# milters chained in smtpd_milters, and, over TCP, a bare libmilter milter
# adding a header against milterhost with a header-adding plugin, measured
# in one run.
#
#	make bench-postfix	(make bench runs it after run.sh)
#	sh bench/postfix.sh	from the build directory
#
# One Postfix instance (tests/postfix/instance.sh: its own configuration,
# queue and data directories in a temporary directory, relaying to
# smtp-sink) has one smtpd per case, on its own loopback port, each with
# its own smtpd_milters, so the cases differ in nothing else and run
# without a reload in between.  The no-op milters listen on unix sockets,
# as they would beside a real Postfix; the header-adding ones on loopback
# TCP, where libmilter's missing TCP_NODELAY costs a bare milter ~40 ms per
# message.  milter_default_action = tempfail, so a milter that cannot be
# reached fails the run instead of being skipped.
#
# Round after round, every case runs interleaved (A B C D A B C D ...), each
# after its own warm-up and with Postfix's queue empty at its start:
# smtp-source sends BENCH_PF_MESSAGES messages over BENCH_PF_SESSIONS
# parallel SMTP sessions, one message per session (Postfix opens a new
# connection to each milter for every session).  The time is from the
# first connection to the last message's "250" after DATA, which Postfix
# gives only once every milter has answered the end of the message.  Mail
# goes on to smtp-sink while the next messages come in, as in real life.
#
# It prints per case the median msgs/s over the rounds and its ratio to
# the case without a milter, the milters' CPU per message (utime + stime
# from /proc, summed over a chain's processes, over all rounds), the whole
# machine's CPU per message (busy ticks of /proc/stat: Postfix, milters,
# smtp-source and smtp-sink together), and the milters' RSS.  Last, it
# checks Postfix's log: every message sent was delivered to smtp-sink, and
# nothing was deferred, bounced, rejected or warned about.
#
# Environment (defaults in brackets):
#	BENCH_PF_ROUNDS [3]		rounds
#	BENCH_PF_MESSAGES [1000]	messages per case and round
#	BENCH_PF_WARMUP [100]		messages before each measured run
#	BENCH_PF_SESSIONS [10]		parallel SMTP sessions
#	BENCH_PF_SIZE [4096]		body bytes per message
#	BUILDDIR [.]			where bench/bare_milter, src/milterhost
#					and bench/.libs/{noop,hdr}.so were built
#	srcdir [the script's ..]	the source tree (for instance.sh)
#
# Exit status: 0 if every run went through without an error, 1 if not (a
# run with errors is not a result), 77 if Postfix is not installed or we
# are not root (with the reason).
set -eu

rounds=${BENCH_PF_ROUNDS:-3}
msgs=${BENCH_PF_MESSAGES:-1000}
warm=${BENCH_PF_WARMUP:-100}
sessions=${BENCH_PF_SESSIONS:-10}
size=${BENCH_PF_SIZE:-4096}
b=$(cd "${BUILDDIR:-.}" && pwd)
src=${srcdir:-$(dirname "$0")/..}
src=$(cd "$src" && pwd)

. "$src/tests/postfix/instance.sh"
. "$src/bench/lib.sh"

if ! pf_available; then
	echo "postfix.sh: SKIPPED, the end-to-end benchmark needs Postfix:" \
	    "$PF_WHY" >&2
	exit 77
fi
bare=$b/bench/bare_milter
milterhost=$b/src/milterhost
for f in "$bare" "$milterhost" "$b/bench/.libs/noop.so" \
    "$b/bench/.libs/hdr.so"; do
	if [ ! -e "$f" ]; then
		echo "postfix.sh: $f is missing: run make bench-postfix" >&2
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/milterhost-bench-pf.XXXXXX")
# Postfix's daemons (user postfix) must reach the queue and the sockets.
chmod 755 "$tmp"
pf=$tmp/postfix
pids=
cleanup() {
	pf_stop "$pf" 2>/dev/null || :
	stop_servers
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Nine loopback ports that nothing listens on: the sink (base), six smtpds
# (base+1..6) and the two header milters (base+7, base+8).
base=$(pf_free_ports 9)

# ---- milters ----------------------------------------------------------------

# is_up WHERE: a unix socket path exists, or a loopback port listens.
is_up() {
	case $1 in
	/*) [ -S "$1" ] ;;
	*) pf_listening "$1" ;;
	esac
}

# wait_up WHERE PID: until the milter with that pid is up at WHERE.
wait_up() {
	n=0
	until is_up "$1"; do
		n=$((n + 1))
		if [ $n -gt 100 ] || ! kill -0 "$2" 2>/dev/null; then
			echo "postfix.sh: nothing listens at $1; logs:" >&2
			cat "$tmp"/*.log >&2
			exit 1
		fi
		sleep 0.1
	done
}

# start_bare NAME: sets pid_NAME; socket $tmp/NAME.sock, mode 0666 (the
# umask of the milter's process).
start_bare() {
	(umask 000 && exec "$bare" -p "unix:$tmp/$1.sock") 2>"$tmp/$1.log" &
	eval "pid_$1=$!"
	pids="$pids $!"
	wait_up "$tmp/$1.sock" $!
}

start_bare bare
{
	printf '[milterhost]\nsocket = unix:%s\nsocket_mode = 0666\n' \
	    "$tmp/mh5.sock"
	printf 'plugin_dir = %s\n' "$b/bench/.libs"
	for k in 1 2 3 4 5; do
		printf '[plugin:noop%d]\nmodule = noop\n' $k
	done
} >"$tmp/mh5.ini"
"$milterhost" -f -c "$tmp/mh5.ini" 2>"$tmp/mh5.log" &
pid_mh5=$!
pids="$pids $!"
wait_up "$tmp/mh5.sock" $pid_mh5
# The header adders, over TCP: the bare one takes only the end of the
# message, as the header plugin does.
"$bare" -p "inet:$((base + 7))@127.0.0.1" -H -E 2>"$tmp/barehdr.log" &
pid_barehdr=$!
pids="$pids $!"
wait_up $((base + 7)) $pid_barehdr
printf '[milterhost]\nsocket = inet:%d@127.0.0.1\nplugin_dir = %s\n' \
    $((base + 8)) "$b/bench/.libs" >"$tmp/mhhdr.ini"
printf '[plugin:hdr]\nmodule = hdr\n' >>"$tmp/mhhdr.ini"
"$milterhost" -f -c "$tmp/mhhdr.ini" 2>"$tmp/mhhdr.log" &
pid_mhhdr=$!
pids="$pids $!"
wait_up $((base + 8)) $pid_mhhdr
chain5= chain5_pids=
for i in 1 2 3 4 5; do
	start_bare "c$i"
	eval "p=\$pid_c$i"
	chain5="$chain5${chain5:+,}unix:$tmp/c$i.sock"
	chain5_pids="$chain5_pids $p"
done

# ---- Postfix ----------------------------------------------------------------

cases="none bare mh5 chain5 barehdr_tcp mhhdr_tcp"
case_port() {
	case $1 in
	none) echo $((base + 1)) ;;
	bare) echo $((base + 2)) ;;
	mh5) echo $((base + 3)) ;;
	chain5) echo $((base + 4)) ;;
	barehdr_tcp) echo $((base + 5)) ;;
	mhhdr_tcp) echo $((base + 6)) ;;
	esac
}
case_pids() {
	case $1 in
	none) ;;
	bare) echo "$pid_bare" ;;
	mh5) echo "$pid_mh5" ;;
	chain5) echo "$chain5_pids" ;;
	barehdr_tcp) echo "$pid_barehdr" ;;
	mhhdr_tcp) echo "$pid_mhhdr" ;;
	esac
}

pf_create "$pf" "$base"
# No throttling of the clients while the queue manager catches up: measure
# the way in, not the way out.
pf_main "$pf" in_flow_delay=0
pf_smtpd "$pf" "$(case_port none)" smtpd_milters=
pf_smtpd "$pf" "$(case_port bare)" "smtpd_milters=unix:$tmp/bare.sock"
pf_smtpd "$pf" "$(case_port mh5)" "smtpd_milters=unix:$tmp/mh5.sock"
pf_smtpd "$pf" "$(case_port chain5)" "smtpd_milters=$chain5"
pf_smtpd "$pf" "$(case_port barehdr_tcp)" \
    "smtpd_milters=inet:127.0.0.1:$((base + 7))"
pf_smtpd "$pf" "$(case_port mhhdr_tcp)" \
    "smtpd_milters=inet:127.0.0.1:$((base + 8))"
pf_start "$pf" || exit 1

# ---- measuring --------------------------------------------------------------

# busy_ticks: the machine's busy time (user nice system irq softirq steal).
busy_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

sent=0
# send CASE COUNT: send COUNT messages through the case's smtpd.
send() {
	if ! smtp-source -s "$sessions" -m "$2" -l "$size" \
	    -f sender@milterhost.test -t rcpt@example.net \
	    "127.0.0.1:$(case_port "$1")" >"$tmp/source.out" 2>&1; then
		echo "postfix.sh: smtp-source through $1 failed; a run with" \
		    "errors is not a result:" >&2
		cat "$tmp/source.out" >&2
		tail -n 20 "$pf/maillog" >&2
		exit 1
	fi
	sent=$((sent + $2))
}

# drain: wait until Postfix has passed everything on to smtp-sink.
drain() {
	if ! pf_wait_empty "$pf" 120; then
		echo "postfix.sh: Postfix's queue did not empty in 120 s" \
		    "($(pf_queued "$pf") messages left)" >&2
		tail -n 20 "$pf/maillog" >&2
		exit 1
	fi
}

now_ns() {
	date +%s%N
}

results=$tmp/results
: >"$results"
# measure CASE ROUND
measure() {
	p=$(case_pids "$1")
	send "$1" "$warm"
	drain
	# shellcheck disable=SC2086
	before=$(cpu_ticks $p)
	busy0=$(busy_ticks)
	t0=$(now_ns)
	send "$1" "$msgs"
	t1=$(now_ns)
	busy1=$(busy_ticks)
	# shellcheck disable=SC2086
	after=$(cpu_ticks $p)
	# shellcheck disable=SC2086
	rss=$(rss_kb $p)
	drain
	echo "$1 $2 $(awk "BEGIN { printf \"%.1f\", $msgs / (($t1 - $t0) / 1e9) }")" \
	    "$((after - before)) $((busy1 - busy0)) $msgs $rss" >>"$results"
}

echo "milterhost end-to-end benchmark through Postfix" \
    "$(postconf -d -h mail_version 2>/dev/null): $rounds rounds," \
    "$msgs messages of $size body bytes per case and round over $sessions" \
    "SMTP sessions, one message each, $warm of warm-up before each;" \
    "$(nproc) CPU(s)"
start=$(date +%s)
r=1
while [ $r -le "$rounds" ]; do
	for c in $cases; do
		measure "$c" $r
	done
	echo "round $r of $rounds done ($(($(date +%s) - start)) s)"
	r=$((r + 1))
done

# ---- Postfix's log ----------------------------------------------------------

delivered=$(pf_count "$pf" ' status=sent ')
# Warnings about milters count; others (a clock skew, say) are Postfix's.
trouble=' status=(deferred|bounced|expired)|warning:.*[Mm]ilter|error:|fatal:|panic:|milter-reject|NOQUEUE'
bad=$(pf_count "$pf" "$trouble")
if [ "$delivered" -ne "$sent" ] || [ "$bad" -ne 0 ]; then
	echo "postfix.sh: Postfix delivered $delivered of $sent messages" \
	    "to smtp-sink, and logged $bad milter warnings, errors or" \
	    "rejections:" >&2
	grep -E "$trouble" "$pf/maillog" | head -n 20 >&2
	exit 1
fi
for p in $pids; do
	if ! kill -0 "$p" 2>/dev/null; then
		echo "postfix.sh: a milter (pid $p) died; logs:" >&2
		cat "$tmp"/*.log >&2
		exit 1
	fi
done

# ---- the table --------------------------------------------------------------

tck=$(getconf CLK_TCK)
summary=$tmp/summary
for c in $cases; do
	awk -v c="$c" '$1 == c' "$results" >"$tmp/one"
	rate=$(cut -d' ' -f3 "$tmp/one" | median)
	awk -v c="$c" -v rate="$rate" -v tck="$tck" '
	    { m += $4; b += $5; n += $6; rss = $7 }
	    END {
		printf "%s %s %.0f %.0f %d\n", c, rate, m / tck * 1e6 / n,
		    b / tck * 1e6 / n, rss
	    }' "$tmp/one"
done >"$summary"

echo
printf '%-12s %9s %6s %15s %15s %9s\n' case msgs/s ratio milter_us/msg \
    machine_us/msg milter_MB
awk '{ if ($1 == "none") f = $2; row[NR] = $0 }
END {
	for (i = 1; i <= NR; i++) {
		split(row[i], v, " ")
		printf "%-12s %9.0f %6.2f %15d %15d %9.1f\n", v[1], v[2],
		    v[2] / f, v[3], v[4], v[5] / 1024
	}
}' "$summary"
echo "(none: no milter; bare: one bare libmilter milter; mh5: milterhost" \
    "with 5 no-op plugins; chain5: 5 bare milters in smtpd_milters;" \
    "*hdr_tcp: adding a header, over TCP, bare libmilter or milterhost." \
    "msgs/s: median over $rounds rounds; ratio: over none's; milter CPU:" \
    "utime+stime of the milter processes, machine CPU: all busy time," \
    "both over all rounds' messages, tick $((1000 / tck)) ms; all" \
    "$delivered messages reached smtp-sink)"
m=$(awk '$1 == "mh5" { print $2 }' "$summary")
c=$(awk '$1 == "chain5" { print $2 }' "$summary")
mc=$(awk '$1 == "mh5" { print $3 }' "$summary")
cc=$(awk '$1 == "chain5" { print $3 }' "$summary")
echo "milterhost with 5 plugins against 5 chained milters:" \
    "x$(awk "BEGIN { printf \"%.2f\", $m / $c }") msgs/s," \
    "x$(awk "BEGIN { printf \"%.2f\", ($mc > 0 ? $cc / $mc : 0) }") less" \
    "milter CPU per message"
h=$(awk '$1 == "mhhdr_tcp" { print $2 }' "$summary")
hb=$(awk '$1 == "barehdr_tcp" { print $2 }' "$summary")
echo "milterhost adding a header over TCP against a bare libmilter milter" \
    "doing the same: x$(awk "BEGIN { printf \"%.2f\", $h / $hb }") msgs/s"
echo "total $(($(date +%s) - start)) s"
