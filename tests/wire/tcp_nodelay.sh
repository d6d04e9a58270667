#!/bin/bash
# tcp_nodelay.sh - end-of-message answers with modifications must not
# stall on Nagle's algorithm over TCP.
#
# libmilter does not set TCP_NODELAY; an answer of several packets (an
# added header, then the verdict) then waits ~40 ms for the MTA's delayed
# ACK.  The daemon runs with addheader on 127.0.0.1, and mtaclient
# (a protocol client that itself sets TCP_NODELAY) sends 30 messages on
# one connection; the slowest end of message must take under 20 ms.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init tcp_nodelay
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"

# Is something listening on 127.0.0.1:$1?
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Start the daemon on a free port; sets port.
start_tcp() {
	local tries

	for attempt in 1 2 3 4 5; do
		port=$((20000 + (RANDOM % 20000)))
		listening "$port" && continue
		ini=$WIRE_TMP/tcp.ini
		cat >"$ini" <<EOF2
[milterhost]
socket = inet:$port@127.0.0.1
plugin_dir = $WIRE_PLUGIN_DIR
log_level = debug
log_destination = stderr

[plugin:tag]
module = addheader
header = X-Nodelay
value = checked
EOF2
		echo "==== milterhost -f -c $ini (port $port)" >>"$WIRE_LOG"
		"$WIRE_DAEMON" -f -c "$ini" >>"$WIRE_LOG" 2>&1 &
		WIRE_PID=$!
		tries=100
		while [ "$tries" -gt 0 ] && wire_alive; do
			listening "$port" && return 0
			sleep 0.1
			tries=$((tries - 1))
		done
		# Port taken meanwhile, or no start: try another one.
		kill -KILL "$WIRE_PID" 2>/dev/null
		wait "$WIRE_PID" 2>/dev/null
		WIRE_PID=
	done
	wire_error "cannot start milterhost on a TCP port"
}

start_tcp
if "$client" nodelay 127.0.0.1 "$port" 30 20; then
	echo "ok: no Nagle stall at end of message"
else
	wire_fail "end of message stalled (or failed) over TCP"
fi
wire_stop
wire_exit
