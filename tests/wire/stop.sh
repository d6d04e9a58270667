#!/bin/bash
# stop.sh - a stop serves the open sessions to their end and is quick when
# nothing is open.
#
#  1. SIGTERM with a session open (MAIL sent): new connections are refused
#     at once, the open session's message and one more on the same
#     session are answered normally, and the daemon exits 0 as soon as
#     the session ends.
#  2. SIGTERM, SIGHUP and SIGINT on an idle daemon: it is gone within
#     0.5 s, has removed its unix socket and pidfile, and exited 0.
#  3. A session that outlives stop_timeout: the daemon exits when the
#     time is up, saying how many sessions it closed, and the client's
#     connection is closed (the MTA applies its milter_default_action at
#     once instead of waiting for its command timeout).
#  4. A second SIGTERM ends the wait at once.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init stop
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"
WIRE_PLUGIN_DIR=$abs_top_builddir/tests/plugins/.libs

ini=$(wire_config stop <<EOF2
pidfile = $WIRE_TMP/mh.pid
stop_timeout = 2

[plugin:filter]
module = scripted
do = eom add_header X-Filtered yes
EOF2
) || exit 99

now_ms() {
	date +%s%3N
}

# Wait up to $1 ms for the daemon to exit; its status in $status.
wait_exit() {
	local limit=$1 start

	start=$(now_ms)
	while wire_alive && [ $(($(now_ms) - start)) -lt "$limit" ]; do
		sleep 0.01
	done
	if wire_alive; then
		return 1
	fi
	wait "$WIRE_PID"
	status=$?
	WIRE_PID=
	return 0
}

# held_open: wait until the "hold" client on fd 3 has its session open.
held_open() {
	local line

	IFS= read -r -t 10 line <&3
	[ "$line" = "mtaclient: holding" ] ||
	    wire_fail "the holding client said: $line"
}

# 1. A session open at SIGTERM completes.
if wire_start "$ini"; then
	if "$client" stop "$WIRE_SOCKET" "$WIRE_PID"; then
		echo "ok: the session open at SIGTERM was served to its end"
	else
		wire_fail "the session open at SIGTERM was not served"
	fi
	if wait_exit 1000 && [ "$status" -eq 0 ]; then
		echo "ok: exited 0 once the session had ended"
	else
		wire_fail "did not exit 0 within 1 s of the session's end"
	fi
	grep -q "session.* still open" "$WIRE_LOG" &&
	    wire_fail "the stop gave up on a session"
	[ "$(grep -c "\[filter\] .*eom add_header" "$WIRE_LOG")" -eq 2 ] ||
	    wire_fail "the plugin did not see both messages to their end"
fi

# 2. Idle stops, by each stop signal.
for sig in TERM HUP INT; do
	wire_start "$ini" || break
	# The socket comes first, the pidfile a moment later.
	for i in $(seq 50); do
		[ -f "$WIRE_TMP/mh.pid" ] && break
		sleep 0.02
	done
	[ -f "$WIRE_TMP/mh.pid" ] || wire_fail "no pidfile"
	start=$(now_ms)
	kill -"$sig" "$WIRE_PID"
	if wait_exit 500; then
		took=$(($(now_ms) - start))
		if [ "$status" -eq 0 ]; then
			echo "ok: SIG$sig on an idle daemon: gone in $took ms"
		else
			wire_fail "SIG$sig: exit status $status"
		fi
	else
		wire_fail "SIG$sig: still running 500 ms after the signal"
		wire_stop
	fi
	[ -e "$WIRE_SOCKET" ] && wire_fail "SIG$sig: the socket is left"
	[ -e "$WIRE_TMP/mh.pid" ] && wire_fail "SIG$sig: the pidfile is left"
done

# 3. A session longer than stop_timeout (2 s): the client holds it open.
if wire_start "$ini"; then
	exec 3< <("$client" hold "$WIRE_SOCKET" 10 2>&1)
	held_open
	start=$(now_ms)
	kill -TERM "$WIRE_PID"
	if wait_exit 4000; then
		took=$(($(now_ms) - start))
		if [ "$took" -ge 1900 ] && [ "$status" -eq 0 ]; then
			echo "ok: waited $took ms for the held session, then exited"
		else
			wire_fail "exited after $took ms with status $status"
		fi
	else
		wire_fail "still running 4 s after SIGTERM with stop_timeout 2"
		wire_stop
	fi
	grep -q "1 session still open: closing it" "$WIRE_LOG" ||
	    wire_fail "no warning about the session it closed"
	out=$(timeout 5 cat <&3)
	exec 3<&-
	case $out in
	*"connection closed"*) echo "ok: the held session's connection was closed" ;;
	*) wire_fail "the held session's client said: $out" ;;
	esac
fi

# 4. A second SIGTERM ends the wait.
if wire_start "$ini"; then
	exec 3< <("$client" hold "$WIRE_SOCKET" 10 2>&1)
	held_open
	kill -TERM "$WIRE_PID"
	sleep 0.2
	start=$(now_ms)
	kill -TERM "$WIRE_PID"
	if wait_exit 500; then
		echo "ok: a second SIGTERM ended the wait in $(($(now_ms) - start)) ms"
	else
		wire_fail "a second SIGTERM did not end the wait"
		wire_stop
	fi
	timeout 5 cat <&3 >/dev/null
	exec 3<&-
fi
wire_exit
