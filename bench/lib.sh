# lib.sh - what the benchmark scripts (run.sh, kv.sh, postfix.sh) measure
# with, sourced by each.
#
#	cpu_ticks PID...	utime + stime of the processes, summed, in
#				clock ticks (getconf CLK_TCK)
#	rss_kb PID...		their VmRSS, summed, in kB
#	median			the median of the numbers on stdin, one a line
#	field NAME FILE		the value of NAME= on loadgen's machine line
#				in FILE
#	run_rounds		$rounds rounds of the caller's "measure CASE
#				CONNS ROUND" for every case of $cases at 1
#				and at 4 connections, interleaved (A B C ...
#				A B C ...) so that drift hits every case alike
#	stop_servers		kill and reap the processes in $pids, and
#				remove the directory $tmp (for the EXIT trap)

cpu_ticks() {
	t=0
	for p in "$@"; do
		# The fields after the command name "(...)": utime is the
		# 12th, stime the 13th.
		set -- $(sed 's/^.*) //' "/proc/$p/stat")
		t=$((t + ${12} + ${13}))
	done
	echo $t
}

rss_kb() {
	t=0
	for p in "$@"; do
		t=$((t + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status")))
	done
	echo $t
}

median() {
	sort -g | awk '
	    { v[NR] = $1 }
	    END {
		if (NR % 2)
			print v[(NR + 1) / 2]
		else
			print (v[NR / 2] + v[NR / 2 + 1]) / 2
	    }'
}

field() {
	sed -n "s/^msgs=.* $1=\\([^ ]*\\).*/\\1/p; s/^$1=\\([^ ]*\\) .*/\\1/p" \
	    "$2"
}

run_rounds() {
	start=$(date +%s)
	r=1
	while [ $r -le "$rounds" ]; do
		for conns in 1 4; do
			for c in $cases; do
				measure "$c" $conns $r
			done
		done
		echo "round $r of $rounds done ($(($(date +%s) - start)) s)"
		r=$((r + 1))
	done
}

stop_servers() {
	for p in $pids; do
		kill "$p" 2>/dev/null || :
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || :
	done
	rm -rf "$tmp"
}
