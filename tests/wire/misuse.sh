#!/bin/bash
# misuse.sh - wire test of host functions misused by a plugin, in the
# running daemon: the misuse test plugin (tests/plugins/misuse.c), as two
# instances, starts a thread per connection that logs with the
# connection's context and calls host functions only a callback may call,
# while the session runs; calls host functions with NULL and impossible
# arguments and with a NULL context on the session's thread; logs a value
# with LFs and a 60 KB one.
#
# Four miltertest clients at once drive 5 connections of 4 messages each
# (misuse.lua), with the queue id changing and sent before every command;
# then mtaclient checks that mh_body_replace(ctx, NULL, 0) reaches the MTA
# as an empty replacement body.  The daemon must survive it all, answer
# as the instances' on_error settings say where bad arguments failed a
# callback (and as usual elsewhere: the threads' refused calls fail
# nothing), log every refusal, never split a line, and exit 0 at SIGTERM.
#
# MISUSE_CLIENTS, MISUSE_CONNS and MISUSE_MSGS override the load.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init misuse
client=$abs_top_builddir/tests/wire/mtaclient
plugin=$abs_top_builddir/tests/plugins/.libs/misuse.so
[ -x "$client" ] || wire_error "$client is missing: build it first"
[ -f "$plugin" ] || wire_error "$plugin is missing: run make check"

clients=${MISUSE_CLIENTS:-4}
conns=${MISUSE_CONNS:-5}
msgs=${MISUSE_MSGS:-4}
# Every miltertest message, and mtaclient's one connection and message.
all_msgs=$((clients * conns * msgs + 1))
all_conns=$((clients * conns + 1))

ini=$(wire_config misuse <<EOF
[plugin:mis]
module = $plugin
on_error = reject
thread = yes
bad_rcpt = <bad@x>
null_ctx = yes
log_lf = yes
empty_body_rcpt = <b@example.test>

[plugin:mis_tf]
module = $plugin
on_error = tempfail
thread = yes
bad_rcpt = <bad-tf@x>
EOF
) || exit 99

# expect_count N WHAT GREP-ARGS...: the log has N lines matching.
expect_count() {
	local want=$1 what=$2 got
	shift 2

	got=$(grep -c "$@" "$WIRE_LOG")
	if [ "$got" -eq "$want" ]; then
		echo "ok: $what: $got lines"
	else
		wire_fail "$what: $got lines in the log, expected $want"
	fi
}

run_clients() {
	local i pid pids=

	for i in $(seq 1 "$clients"); do
		env MH_WIRE_SOCKET="unix:$WIRE_SOCKET" MH_TAG="p$i" \
		    MH_CONNS="$conns" MH_MSGS="$msgs" \
		    "$MILTERTEST" -s "$here/misuse.lua" \
		    >"$WIRE_TMP/client$i.out" 2>&1 &
		pids="$pids $!"
	done
	i=0
	for pid in $pids; do
		i=$((i + 1))
		wait "$pid" || wire_fail "miltertest client $i failed"
		cat "$WIRE_TMP/client$i.out"
	done
}

check_log() {
	local fn bad calls

	# One log call, one line: nothing but the daemon's lines and the
	# test's run markers (a sanitizer's report would show up here too).
	bad=$(grep -v -c -E '^(milterhost: |==== run )' "$WIRE_LOG")
	if [ "$bad" -eq 0 ]; then
		echo "ok: every line of the log is one of milterhost's"
	else
		wire_fail "$bad lines of the log are not milterhost's:"
		grep -v -E '^(milterhost: |==== run )' "$WIRE_LOG" | head -20
	fi
	expect_count "$all_msgs" "a value with LFs logged as one line" \
	    -x 'milterhost: info: [^ ]*: \[mis\] misuse: value with LFs: one\\ntwo\\nthree'
	expect_count "$all_msgs" "a 60 KB value logged as one cut line" \
	    -E '\[mis\] misuse: big value: (b{76}\\n\\t)+b*\.\.\.$'
	if awk 'length($0) > 2048 { exit 1 }' "$WIRE_LOG"; then
		echo "ok: no line longer than 2048 bytes"
	else
		wire_fail "a log line is longer than 2048 bytes"
	fi

	# The threads: every call refused, and each kind of refusal logged.
	expect_count $((2 * all_conns)) "threads joined, no call went through" \
	    -E 'misuse: thread: [0-9]+ calls, 0 not refused$'
	calls=$(sed -n 's/.*misuse: thread: \([0-9]*\) calls.*/\1/p' \
	    "$WIRE_LOG" | awk '{ n += $1 } END { print n + 0 }')
	if [ "$calls" -ge $((2 * all_conns)) ]; then
		echo "ok: the threads made $calls calls"
	else
		wire_fail "the threads made only $calls calls"
	fi
	for fn in mh_header_add mh_set_reply mh_set_reply_lines mh_rcpt_add \
	    mh_body_replace mh_quarantine mh_progress mh_macro mh_queue_id \
	    mh_set_conn_data mh_conn_data mh_set_msg_data mh_msg_data \
	    mh_current_stage; do
		grep -q -E "^milterhost: error: [^ ]+: \[mis(_tf)?\] $fn called outside a callback of its context: refused$" \
		    "$WIRE_LOG" ||
		    wire_fail "no refusal of $fn from a thread in the log"
	done
	# Their log lines carry a whole queue id: a message's or NOQUEUE.
	bad=$(grep -F 'misuse thread ' "$WIRE_LOG" | grep -v -c -x -E \
	    'milterhost: info: (NOQUEUE|MQp[0-9]+x[0-9]+): \[mis(_tf)?\] misuse thread [0-9]+')
	if [ "$bad" -eq 0 ]; then
		echo "ok: the threads' lines have whole queue ids"
	else
		wire_fail "$bad lines of the threads have a bad queue id"
	fi

	# Bad arguments and NULL contexts on the session's thread.
	expect_count $((all_msgs - 1)) "[mis] bad arguments, all refused" \
	    -E '\[mis\] misuse: bad arguments: [0-9]+ calls, 0 not refused$'
	expect_count $((all_msgs - 1)) "[mis_tf] bad arguments, all refused" \
	    -E '\[mis_tf\] misuse: bad arguments: [0-9]+ calls, 0 not refused$'
	expect_count $((all_msgs - 1)) "[mis] envrcpt failed, on_error reject" \
	    -E '\[mis\] envrcpt: refused request: .*; on_error = reject$'
	expect_count $((all_msgs - 1)) "[mis_tf] envrcpt failed, on_error tempfail" \
	    -E '\[mis_tf\] envrcpt: refused request: .*; on_error = tempfail$'
	grep -q '\[mis\] envrcpt: refused: NULL header name (invalid argument)$' \
	    "$WIRE_LOG" || wire_fail "no refusal of a NULL header name"
	grep -q '\[mis\] envrcpt: refused: bad reply: 3 lines at a NULL array' \
	    "$WIRE_LOG" || wire_fail "no refusal of a NULL reply array"
	expect_count "$all_msgs" "NULL contexts, all refused" \
	    -E '\[mis\] misuse: NULL context: [0-9]+ calls, 0 not refused$'
	grep -q -x 'milterhost: error: mh_header_add called with a NULL context: refused' \
	    "$WIRE_LOG" || wire_fail "no refusal of a NULL context"
	expect_count "$all_msgs" "lines logged without a context" \
	    -x 'milterhost: info: misuse: a line without a context'
	expect_count 0 "host calls that went through" \
	    -E ' [1-9][0-9]* not refused$'
}

if wire_start "$ini"; then
	run_clients
	if "$client" bigbody "$WIRE_SOCKET" 1000 0; then
		echo "ok: mh_body_replace(ctx, NULL, 0) sent an empty body"
	else
		wire_fail "mh_body_replace(ctx, NULL, 0) did not send an empty body"
	fi
	wire_alive || wire_fail "milterhost died"
	wire_stop
	check_log
fi
wire_exit
