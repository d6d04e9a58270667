# callbacks_lib.sh - helpers for the wire tests that check what reached
# the recorder test plugin (callbacks.sh, negotiation.sh).  Source after
# lib.sh.
#
#	REC_PLUGINS		the directory of the built test plugins
#	rec_mark		start a scenario: later rec_* calls look only
#				at the log lines written after this
#	rec_lines INST		the "rec ..." lines instance INST logged since
#				the mark, without the prefix
#	rec_wait INST N		wait (up to 5 s) until INST logged N closes
#	rec_expect NAME INST [N] <lines
#				wait for N (default 1) closes of INST, then
#				compare its lines with stdin: prints
#				"ok: NAME" or fails with a diff
#	rec_client <commands	run "mtaclient script" on the daemon's
#				socket; its output is in $WIRE_TMP/client.out

REC_PLUGINS=$abs_top_builddir/tests/plugins/.libs
REC_MARK=0

rec_mark() {
	REC_MARK=$(wc -l <"$WIRE_LOG")
}

rec_lines() {
	tail -n "+$((REC_MARK + 1))" "$WIRE_LOG" |
	    awk -v tag="[$1] rec " '{
		i = index($0, tag)
		if (i > 0)
			print substr($0, i + length(tag) - 4)
	}'
}

rec_wait() {
	local tries=50

	while [ "$tries" -gt 0 ]; do
		[ "$(rec_lines "$1" | grep -c '^rec close$')" -ge "$2" ] &&
		    return 0
		sleep 0.1
		tries=$((tries - 1))
	done
	return 1
}

rec_expect() {
	local name=$1 inst=$2 closes=${3:-1}

	cat >"$WIRE_TMP/expected"
	rec_wait "$inst" "$closes"
	rec_lines "$inst" >"$WIRE_TMP/got"
	if cmp -s "$WIRE_TMP/expected" "$WIRE_TMP/got"; then
		echo "ok: $name"
		return 0
	fi
	wire_fail "$name: [$inst] got other calls (- expected, + got):"
	diff -u "$WIRE_TMP/expected" "$WIRE_TMP/got" | tail -n +3 |
	    sed 's/^/    /'
	return 1
}

rec_client() {
	if ! "$abs_top_builddir/tests/wire/mtaclient" script "$WIRE_SOCKET" \
	    >"$WIRE_TMP/client.out" 2>&1; then
		sed 's/^/    /' "$WIRE_TMP/client.out"
		wire_fail "mtaclient script failed"
		return 1
	fi
	return 0
}
