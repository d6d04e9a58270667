#!/bin/bash
# milter.sh - the bundled milter plugin's configuration and failure
# behaviour, through the real daemon, with an external milter that is
# bench/bare_milter -H (libmilter; adds "X-Bench: bare" to every message)
# or a broken one (tests/wire/milter_listener.py).
#
#  1. Configuration: "milterhost -t" refuses a missing socket (naming the
#     section), a malformed one, a timeout that is not 1 to 3600000 ms and
#     an unknown key, naming the key.
#  2. The milter not running at start: milterhost starts all the same,
#     with a warning that every action and stage is declared; once the
#     milter runs, a message gets its header.
#  3. The milter running at start: "milterhost -t" and the start-up log
#     show what the probe negotiated (its actions and steps: add headers,
#     no unknown command); a message gets the header.
#  4. Failures, answered by the instance's on_error, logged with the
#     instance, the stage and the reason, the client waiting about the
#     configured timeout and never more:
#     a. the milter stopped: cannot connect: tempfail (on_error =
#        tempfail), or the message accepted without the header (continue);
#        a milter whose listen queue is full: cannot connect within
#        connect_timeout_ms;
#     b. a milter that accepts and never answers: "timed out" after
#        command_timeout_ms;
#     c. the milter killed and started again within one session: between
#        two messages (the next one is served), while it is down for one
#        message (that one gets on_error, the next is served), and in the
#        middle of a message (that one gets on_error, the next session is
#        served), milterhost running throughout;
#     d. a milter answering the negotiation with garbage: the protocol
#        error logged, on_error applies.
#  5. dry_run = yes: the milter's header is logged as what would have been
#     done and not added, and its failure as what would have been answered.
#
# The MTA is tests/wire/mtaclient: "mods" prints the changes, "eml" every
# event's answer ("answer connect tempfail") and every change.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

# This test configures the plugin itself: never relayed.
MH_WIRE_RELAY=no
python=/usr/bin/python3
if [ ! -x "$python" ]; then
	echo "SKIP: milter: this test needs /usr/bin/python3 for its broken" \
	    "milters (Debian: apt-get install python3)"
	exit 77
fi

wire_init milter
client=$abs_top_builddir/tests/wire/mtaclient
bare=$abs_top_builddir/bench/bare_milter
listener=$abs_top_srcdir/tests/wire/milter_listener.py
[ -x "$client" ] || wire_error "$client is missing: build it first"
[ -x "$bare" ] || wire_error "$bare is missing: build it first (make check" \
    "builds it)"
[ -f "$listener" ] || wire_error "$listener is missing"

# The external milter's socket, the pid of what listens there.
msock=$WIRE_TMP/milter.sock
MPID=
trap 'st=$?; milter_stop KILL; (exit $st); wire_cleanup' EXIT

msg=$WIRE_TMP/msg.eml
printf 'Subject: test\nFrom: <a@example.test>\n\nhello\n' >"$msg"

now_ms() {
	local t=${EPOCHREALTIME:-}

	if [ -n "$t" ]; then
		t=${t//[.,]/}
		echo $((10#$t / 1000))
	else
		echo $(($(date +%s%N) / 1000000))
	fi
}

# wait_ready: until the current run logs that it is ready (its probe
# done), 10 s at most.
wait_ready() {
	local i

	for i in $(seq 200); do
		run_log
		grep -qF "ready on unix:$WIRE_SOCKET" "$WIRE_TMP/run.log" &&
		    return 0
		sleep 0.05
	done
	wire_fail "milterhost did not log 'ready on' within 10 s"
	return 1
}

# milter_start bare [OPTION...] | milter_start MODE: start the external
# milter on $msock (no descriptor of ours but the standard ones open in
# it), and wait until it listens.
milter_start() {
	local i

	[ -z "$MPID" ] || wire_error "milter_start: a milter already runs"
	rm -f "$msock"
	if [ "$1" = bare ]; then
		shift
		"$bare" -p "unix:$msock" "$@" </dev/null 3>&- 4>&- \
		    >>"$WIRE_TMP/milter.log" 2>&1 &
	else
		"$python" "$listener" "$1" "$msock" </dev/null 3>&- 4>&- \
		    >>"$WIRE_TMP/milter.log" 2>&1 &
	fi
	MPID=$!
	for i in $(seq 100); do
		[ -S "$msock" ] && return 0
		kill -0 "$MPID" 2>/dev/null || break
		sleep 0.05
	done
	wire_error "the external milter ($*) did not listen on $msock"
}

# milter_stop [SIGNAL]: stop it (TERM by default) and wait for it.
milter_stop() {
	[ -n "$MPID" ] || return 0
	kill -"${1:-TERM}" "$MPID" 2>/dev/null
	wait "$MPID" 2>/dev/null
	MPID=
}

# start_mh NAME [SETTING...]: milterhost with one instance [plugin:ext] of
# the milter plugin on $msock and the settings given (one a word, "KEY =
# VALUE"), up and ready (its probe done); the log from this run on in
# $WIRE_TMP/run.log.
start_mh() {
	local name=$1 ini s
	shift

	ini=$({
		printf '[plugin:ext]\nmodule = milter\nsocket = unix:%s\n' \
		    "$msock"
		for s in "$@"; do echo "$s"; done
	} | wire_config "$name") || exit 99
	RUN_START=$(wc -l <"$WIRE_LOG")
	wire_start "$ini" || return 1
	wait_ready
}

# run_log: the log of the current run, in $WIRE_TMP/run.log.
run_log() {
	tail -n +"$((RUN_START + 1))" "$WIRE_LOG" >"$WIRE_TMP/run.log"
}

# logged WHAT TEXT: the run's log must have TEXT (fixed string).
logged() {
	run_log
	if grep -qF -- "$2" "$WIRE_TMP/run.log"; then
		echo "ok: $1: logged: $(grep -F -- "$2" "$WIRE_TMP/run.log" |
		    head -n 1 | sed 's/^milterhost: //')"
	else
		wire_fail "$1: the log has no '$2'"
		sed 's/^/    /' "$WIRE_TMP/run.log"
	fi
}

# eml OUT: one session of one message (mtaclient eml), its output in OUT,
# the time it took in $took (ms).
eml() {
	local out=$1 t0
	shift

	t0=$(now_ms)
	"$client" eml "$WIRE_SOCKET" -f '<a@example.test>' \
	    -r '<b@example.test>' "$msg" "$@" >"$out" 2>&1
	took=$(($(now_ms) - t0))
}

# has WHAT OUT LINE: OUT must have LINE.
has() {
	if grep -qxF -- "$3" "$2"; then
		echo "ok: $1: $3"
	else
		wire_fail "$1: no '$3' in the client's output:"
		sed 's/^/    /' "$2"
	fi
}

# within WHAT MIN MAX: $took must be from MIN to MAX ms.
within() {
	if [ "$took" -ge "$2" ] && [ "$took" -le "$3" ]; then
		echo "ok: $1: the client waited $took ms (expected $2 to $3)"
	else
		wire_fail "$1: the client waited $took ms, not $2 to $3"
	fi
}

# ---- 1. configuration ----------------------------------------------------

ini=$(wire_config nosocket <<EOF
[plugin:ext]
module = milter
EOF
) || exit 99
if wire_check_config "$ini"; then
	wire_fail "no socket: milterhost -t accepted it"
elif grep -qF "[plugin:ext] socket is required" "$WIRE_OUT"; then
	echo "ok: no socket refused: $(grep -F "socket is required" \
	    "$WIRE_OUT" | head -n 1)"
else
	wire_fail "no socket: the error does not name [plugin:ext] and" \
	    "say 'socket is required'"
	sed 's/^/    /' "$WIRE_OUT"
fi

wire_expect_refused tcp socket "tcp:1@x: not inet:PORT@HOST" <<EOF
[plugin:ext]
module = milter
socket = tcp:1@x
EOF
wire_expect_refused nohost socket "inet:8891: want inet:PORT@HOST" <<EOF
[plugin:ext]
module = milter
socket = inet:8891
EOF
wire_expect_refused badport socket "port 99999 out of range" <<EOF
[plugin:ext]
module = milter
socket = inet:99999@127.0.0.1
EOF
for key in connect_timeout_ms command_timeout_ms eom_timeout_ms; do
	for value in 0 abc 99999999; do
		wire_expect_refused "$key-$value" "$key" \
		    "'$value' is not a number of milliseconds from 1 to" <<EOF
[plugin:ext]
module = milter
socket = unix:$msock
$key = $value
EOF
	done
done
wire_expect_refused unknown frobnicate "unknown key: milter takes socket" \
    <<EOF
[plugin:ext]
module = milter
socket = unix:$msock
frobnicate = 1
EOF

# ---- 2. the milter not running at start --------------------------------

ini=$(wire_config absent <<EOF
[plugin:ext]
module = milter
socket = unix:$msock
EOF
) || exit 99
if ! wire_check_config "$ini"; then
	wire_fail "absent milter: milterhost -t refused the configuration"
	sed 's/^/    /' "$WIRE_OUT"
elif grep -qF "warning: [ext] unix:$msock: cannot connect" "$WIRE_OUT" &&
    grep -qF "every action and stage is declared" "$WIRE_OUT" &&
    grep -q "stages: connect, helo, envfrom, envrcpt, data, unknown," \
    "$WIRE_OUT" && grep -q "actions: .*add headers.*quarantine" \
    "$WIRE_OUT"; then
	echo "ok: absent milter: milterhost -t accepts it, warns and declares" \
	    "every stage and action: $(grep -F "warning:" "$WIRE_OUT" |
	    head -n 1)"
else
	wire_fail "absent milter: milterhost -t has no warning naming the" \
	    "socket, or does not declare every stage and action"
	sed 's/^/    /' "$WIRE_OUT"
fi

start_mh absent || wire_exit
logged "absent milter: start-up" "warning: [ext] unix:$msock: cannot connect"
logged "absent milter: start-up" "every action and stage is declared"
milter_start bare -H
out=$WIRE_TMP/absent.out
"$client" mods "$WIRE_SOCKET" >"$out" 2>&1 ||
    wire_fail "absent milter, started since: mtaclient mods failed"
has "absent milter, started since" "$out" "mod h X-Bench|bare"
wire_stop

# ---- 3. the bare libmilter milter --------------------------------------

ini=$(wire_config bare <<EOF
[plugin:ext]
module = milter
socket = unix:$msock
EOF
) || exit 99
if ! wire_check_config "$ini"; then
	wire_fail "bare: milterhost -t refused the configuration"
	sed 's/^/    /' "$WIRE_OUT"
else
	probe=$(grep -oE "\[ext\] unix:[^ ]*: actions 0x[0-9a-f]+, steps 0x[0-9a-f]+" \
	    "$WIRE_OUT")
	steps=${probe##*steps }
	if [ -n "$probe" ] && [ "${probe#*actions 0x1, }" != "$probe" ] &&
	    [ $((steps & 0x100)) -ne 0 ] &&
	    grep -qx "    actions: add headers" "$WIRE_OUT" &&
	    grep -q "^    stages: " "$WIRE_OUT" &&
	    ! grep "^    stages: " "$WIRE_OUT" | grep -q unknown; then
		echo "ok: bare: milterhost -t shows the probe: $probe;" \
		    "$(grep "^    stages: " "$WIRE_OUT" | sed 's/^ *//');" \
		    "$(grep "^    actions: " "$WIRE_OUT" | sed 's/^ *//')"
	else
		wire_fail "bare: milterhost -t does not show actions 0x1 (add" \
		    "headers) and no unknown command (SMFIP_NOUNKNOWN)"
		sed 's/^/    /' "$WIRE_OUT"
	fi
fi
start_mh bare || wire_exit
logged "bare: start-up" "info: [ext] unix:$msock: actions 0x1, steps 0x"
out=$WIRE_TMP/bare.out
"$client" mods "$WIRE_SOCKET" >"$out" 2>&1 ||
    wire_fail "bare: mtaclient mods failed"
has "bare" "$out" "mod h X-Bench|bare"

# ---- 4c. killed and started again within a session ----------------------
# Two or three messages on one connection (mtaclient eml): the second
# message file is a FIFO, so the client waits for it after the first
# message, and opening its other end tells us it got there.

fifo1=$WIRE_TMP/fifo1
fifo2=$WIRE_TMP/fifo2
mkfifo "$fifo1" "$fifo2" || wire_error "cannot make the FIFOs"
out=$WIRE_TMP/between.out
"$client" eml "$WIRE_SOCKET" -f '<a@example.test>' -r '<b@example.test>' \
    "$msg" "$fifo1" >"$out" 2>&1 &
cpid=$!
exec 3>"$fifo1"
milter_stop KILL
milter_start bare -H
cat "$msg" >&3
exec 3>&-
wait "$cpid" || wire_fail "between messages: mtaclient eml failed"
if [ "$(grep -cxF 'change add_header X-Bench "bare"' "$out")" -eq 2 ] &&
    ! grep -q "tempfail" "$out"; then
	echo "ok: between messages: killed and started again, both messages" \
	    "of the session got X-Bench"
else
	wire_fail "between messages: not both messages got X-Bench:"
	sed 's/^/    /' "$out"
fi
logged "between messages" "[ext] unix:$msock closed the connection since the last message: opening a new one"

out=$WIRE_TMP/down.out
"$client" eml "$WIRE_SOCKET" -f '<a@example.test>' -r '<b@example.test>' \
    "$msg" "$fifo1" "$fifo2" >"$out" 2>&1 &
cpid=$!
exec 3>"$fifo1"
milter_stop KILL
cat "$msg" >&3
exec 3>&-
exec 4>"$fifo2"
milter_start bare -H
cat "$msg" >&4
exec 4>&-
wait "$cpid" || wire_fail "down for a message: mtaclient eml failed"
# The answers of the three messages, one line each.
got=$(awk '/^answer envfrom/ { n++ }
    /^change add_header X-Bench/ { h[n] = 1 }
    /^answer envfrom tempfail/ { t[n] = 1 }
    END {
	for (i = 1; i <= n; i++) {
		if (i > 1)
			printf " "
		if (h[i])
			printf "X-Bench"
		else if (t[i])
			printf "tempfail"
		else
			printf "none"
	}
    }' "$out")
if [ "$got" = "X-Bench tempfail X-Bench" ]; then
	echo "ok: down for a message: the three messages of one session:" \
	    "$got"
else
	wire_fail "down for a message: the three messages got '$got', not" \
	    "'X-Bench tempfail X-Bench':"
	sed 's/^/    /' "$out"
fi
logged "down for a message" "[ext] envfrom: unix:$msock: cannot connect"
logged "down for a message" "[ext] envfrom: the callback failed; on_error = tempfail"

# In the middle of a message: paused after MAIL FROM, the milter killed
# and started again, then the recipient.
out=$WIRE_TMP/middle.out
coproc PAUSED { "$client" pause "$WIRE_SOCKET" 2>&1; }
IFS= read -r -t 10 line <&"${PAUSED[0]}"
[ "$line" = paused ] || wire_fail "middle: the paused client said: $line"
milter_stop KILL
milter_start bare -H
echo go >&"${PAUSED[1]}"
timeout 10 cat <&"${PAUSED[0]}" >"$out"
wait "$PAUSED_PID" 2>/dev/null
has "middle of a message: the recipient" "$out" \
    "mtaclient: event R answered t, not c"
logged "middle of a message" "[ext] envrcpt: the callback failed; on_error = tempfail"
if grep -qE "error: .*\[ext\] envrcpt: unix:$msock: (write|read): " \
    "$WIRE_TMP/run.log"; then
	echo "ok: middle of a message: logged: $(grep -E "\[ext\] envrcpt: " \
	    "$WIRE_TMP/run.log" | head -n 1 | sed 's/^milterhost: //')"
else
	wire_fail "middle of a message: no '[ext] envrcpt: unix:$msock:" \
	    "write/read: ...' in the log"
fi
out=$WIRE_TMP/after.out
"$client" mods "$WIRE_SOCKET" >"$out" 2>&1 ||
    wire_fail "after the middle: mtaclient mods failed"
has "middle of a message: the next session" "$out" "mod h X-Bench|bare"
wire_alive || wire_fail "milterhost is not running any more"
wire_stop

# ---- 4a. the milter stopped before a session -----------------------------

milter_stop TERM
start_mh stopped "on_error = tempfail" "connect_timeout_ms = 1000" ||
    wire_exit
out=$WIRE_TMP/stopped.out
eml "$out"
has "stopped, on_error = tempfail" "$out" "answer connect tempfail"
within "stopped, on_error = tempfail" 0 1000
logged "stopped, on_error = tempfail" "[ext] connect: unix:$msock: cannot connect: "
logged "stopped, on_error = tempfail" "[ext] connect: the callback failed; on_error = tempfail"
wire_stop

start_mh stopped_continue "on_error = continue" \
    "connect_timeout_ms = 1000" || wire_exit
out=$WIRE_TMP/stopped_continue.out
eml "$out"
has "stopped, on_error = continue" "$out" "answer eom continue"
if grep -q "^change" "$out" || grep -qv "continue\|noreply" "$out"; then
	wire_fail "stopped, on_error = continue: not every event continued" \
	    "without a change:"
	sed 's/^/    /' "$out"
else
	echo "ok: stopped, on_error = continue: every event continued, no" \
	    "header added"
fi
within "stopped, on_error = continue" 0 1000
logged "stopped, on_error = continue" "[ext] connect: the callback failed; on_error = continue"
wire_stop

# A milter too busy to accept: the connection waits connect_timeout_ms.
milter_start full
start_mh full "connect_timeout_ms = 400" "command_timeout_ms = 5000" ||
    wire_exit
out=$WIRE_TMP/full.out
eml "$out"
has "listen queue full" "$out" "answer connect tempfail"
within "listen queue full, connect_timeout_ms = 400" 390 1400
logged "listen queue full" "[ext] connect: unix:$msock: cannot connect: timed out"
wire_stop
milter_stop

# ---- 4b. a milter that never answers -------------------------------------

milter_start silent
start_mh silent "command_timeout_ms = 300" || wire_exit
logged "silent: start-up" "[ext] unix:$msock: read: timed out; starting without knowing"
out=$WIRE_TMP/silent.out
eml "$out"
has "silent, command_timeout_ms = 300" "$out" "answer connect tempfail"
within "silent, command_timeout_ms = 300" 290 1300
logged "silent" "[ext] connect: unix:$msock: read: timed out"
logged "silent" "[ext] connect: the callback failed; on_error = tempfail"
wire_stop
milter_stop

# ---- 4d. a milter answering garbage --------------------------------------

for mode in garbage badopt; do
	case $mode in
	garbage) why="a packet of 1213486160 bytes" ;;
	badopt) why="negotiation answered 'O' with 2 bytes" ;;
	esac
	milter_start "$mode"
	start_mh "$mode" || wire_exit
	out=$WIRE_TMP/$mode.out
	eml "$out"
	has "$mode" "$out" "answer connect tempfail"
	within "$mode" 0 1000
	logged "$mode" "[ext] connect: unix:$msock: $why"
	logged "$mode" "[ext] connect: the callback failed; on_error = tempfail"
	wire_stop
	milter_stop
done

# ---- 5. dry run ------------------------------------------------------------

milter_start bare -H
start_mh dry "dry_run = yes" || wire_exit
out=$WIRE_TMP/dry.out
"$client" mods "$WIRE_SOCKET" >"$out" 2>&1 ||
    wire_fail "dry run: mtaclient mods failed"
if grep -q "^mod " "$out"; then
	wire_fail "dry run: the header was added:"
	sed 's/^/    /' "$out"
else
	echo "ok: dry run: no header added"
fi
logged "dry run" "[ext] dry run: would add header X-Bench (index 0): bare"
milter_stop
out=$WIRE_TMP/dry_stopped.out
eml "$out"
has "dry run, the milter stopped" "$out" "answer eom continue"
logged "dry run, the milter stopped" "[ext] connect: dry run: would have answered tempfail"
wire_stop

wire_exit
