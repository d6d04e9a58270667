# lib.sh - what the benchmark scripts (run.sh, postfix.sh) measure with,
# sourced by both.
#
#	cpu_ticks PID...	utime + stime of the processes, summed, in
#				clock ticks (getconf CLK_TCK)
#	rss_kb PID...		their VmRSS, summed, in kB
#	median			the median of the numbers on stdin, one a line
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

stop_servers() {
	for p in $pids; do
		kill "$p" 2>/dev/null || :
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || :
	done
	rm -rf "$tmp"
}
