#!/bin/bash
# quitnc.sh - SMTP sessions on a reused milter connection.  An MTA may end
# one SMTP session with SMFIC_QUIT_NC and run the next on the same milter
# connection, without a new negotiation; libmilter then calls close and
# connect again.  Every such session must be filtered exactly like the
# first: a recipient the plugin rejects is rejected, its header change is
# made, and each plugin gets connect and close once per session, with a
# fresh connection slot.  When the connection finally ends after a
# QUIT_NC, libmilter calls close once more: plugins must not see it.
# With a plugin that takes only the end of the message (the MTA then
# sends no connect, helo, MAIL or RCPT), the later sessions start at the
# end of their message, and are filtered too.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init quitnc
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"
WIRE_PLUGIN_DIR=$abs_top_builddir/tests/plugins/.libs

ini=$(wire_config quitnc <<'EOF2'
[plugin:rec]
module = recorder

[plugin:filter]
module = scripted
do = envrcpt:<reject@example.test> reject
do = eom add_header X-Filtered yes
EOF2
) || exit 99

# run END: three sessions on one connection, ended by QUIT or by a last
# QUIT_NC and the socket's close; then check what the plugins saw.
run() {
	local end=$1 from to closes connects

	from=$(wc -l <"$WIRE_LOG")
	if "$client" quitnc "$WIRE_SOCKET" 3 "$end"; then
		echo "ok ($end): every session rejected the recipient and" \
		    "got the header"
	else
		wire_fail "($end) a session on the reused connection was not" \
		    "filtered like the first"
	fi
	# The daemon logs the last close after the client went away.
	sleep 0.3
	to=$(wc -l <"$WIRE_LOG")
	sed -n "$((from + 1)),${to}p" "$WIRE_LOG" >"$WIRE_TMP/run.log"
	connects=$(grep -o "rec connect host=session[0-9]*" "$WIRE_TMP/run.log" |
	    sed 's/.*host=//' | tr '\n' ' ')
	closes=$(grep -c "\[rec\] rec close" "$WIRE_TMP/run.log")
	if [ "$connects" = "session1 session2 session3 " ]; then
		echo "ok ($end): connect once per session, in order"
	else
		wire_fail "($end) the recorder saw connects: $connects"
	fi
	if [ "$closes" -eq 3 ]; then
		echo "ok ($end): close once per session"
	else
		wire_fail "($end) the recorder saw $closes closes, expected 3"
	fi
	if grep -q "rec error" "$WIRE_TMP/run.log"; then
		wire_fail "($end) $(grep "rec error" "$WIRE_TMP/run.log")"
	fi
}

if wire_start "$ini"; then
	run quit
	run eof
	wire_stop
fi

eom_ini=$(wire_config quitnc_eom <<'EOF2'
[plugin:hdr]
module = $abs_top_builddir/plugins/.libs/addheader.so
header = X-Filtered
value = yes
EOF2
) || exit 99
sed -i "s|\$abs_top_builddir|$abs_top_builddir|" "$eom_ini"
if wire_start "$eom_ini"; then
	if "$client" quitnc "$WIRE_SOCKET" 3 quit noreject; then
		echo "ok: end of message only: every session got the header"
	else
		wire_fail "end of message only: a later session was not" \
		    "filtered"
	fi
	wire_stop
fi
wire_exit
