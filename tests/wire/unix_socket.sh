#!/bin/bash
# unix_socket.sh - milterhost on a unix socket inside Postfix's queue
# directory, set up as the README describes: a directory
# queue/milterhost owned by the user milterhost runs as (nobody here) and
# the group postfix, mode 0750; socket_mode = 0660 and group = postfix;
# Postfix's smtpd names the socket relative to its queue directory
# (smtpd_milters = unix:milterhost/milterhost.sock), as a chrooted smtpd
# must.  Started as root, milterhost makes the socket and the pidfile, then
# runs as nobody.
#
#  1. A stale socket left at the path (its server gone) is replaced; the
#     new socket has mode 0660 and group postfix; the pidfile holds the
#     daemon's pid; no warning that a file could not be removed.
#  2. Mail through Postfix reaches milterhost over that socket.
#  3. A second milterhost on the same socket is refused (in use), and the
#     first one goes on serving.
#  4. A clean stop (SIGTERM) removes the socket and the pidfile.
#  5. A file at the path that is not a socket is refused and left alone.
#  6. A socket in a directory the user cannot write to: milterhost warns
#     at start-up that it cannot remove it at a stop, it stays after the
#     stop, and the next start replaces it.
#
# Skipped (77, with the reason) unless run as root with Postfix, swaks and
# the user nobody.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

if ! id nobody >/dev/null 2>&1; then
	echo "SKIP: unix_socket: the test needs the user nobody"
	exit 77
fi

wire_postfix_init unix_socket
base=$(pf_free_ports 2)
port=$((base + 1))

pf_create "$pf" "$base" dump || wire_error "cannot make the Postfix instance"
pf_smtpd "$pf" "$port" "smtpd_milters=unix:milterhost/milterhost.sock"
dir=$pf/queue/milterhost
sock=$dir/milterhost.sock
pidfile=$dir/milterhost.pid
install -d -o nobody -g postfix -m 750 "$dir" || wire_error "cannot make $dir"
pf_start "$pf" || wire_error "the private Postfix instance did not start"

# The plugins where nobody may read them (and strict_modes accepts them).
plugins=$WIRE_TMP/plugins
install -d -m 755 "$plugins" &&
    install -m 644 "$WIRE_PLUGIN_DIR/addheader.so" "$plugins/" ||
    wire_error "cannot install the plugin"
ini=$(wire_config unix_socket <<EOF
user = nobody
group = postfix
socket_mode = 0660
pidfile = $pidfile

[plugin:tag]
module = addheader
header = X-MH-Socket
value = through the socket for %{i}
EOF
) || exit 99
sed -i -e "s|^socket = .*|socket = unix:$sock|" \
    -e "s|^plugin_dir = .*|plugin_dir = $plugins|" "$ini"

# start INI: milterhost in the foreground until it says it is ready.
start() {
	local i before

	before=$(grep -c " ready on " "$WIRE_LOG")
	WIRE_RUNS=$((WIRE_RUNS + 1))
	echo "==== run $WIRE_RUNS: milterhost -f -c $1" >>"$WIRE_LOG"
	"$WIRE_DAEMON" -f -c "$1" >>"$WIRE_LOG" 2>&1 &
	WIRE_PID=$!
	for i in $(seq 100); do
		[ "$(grep -c " ready on " "$WIRE_LOG")" -gt "$before" ] &&
		    return 0
		wire_alive || break
		sleep 0.1
	done
	wire_fail "milterhost -c $1 did not get ready"
	return 1
}

# stale PATH: a unix socket file whose server has gone.
stale() {
	perl -MSocket -e 'socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die $!;
	    bind($s, pack_sockaddr_un($ARGV[0])) or die "$ARGV[0]: $!"' "$1"
}

# ---- 1. a stale socket replaced; mode, group, pidfile ------------------------

stale "$sock" || wire_error "cannot make a stale socket"
if start "$ini"; then
	if grep -q "$sock: replacing a stale socket" "$WIRE_LOG" &&
	    [ -S "$sock" ]; then
		echo "ok: the stale socket was replaced"
	else
		wire_fail "the stale socket was not replaced"
	fi
	got=$(stat -c '%a %U %G' "$sock")
	if [ "$got" = "660 root postfix" ]; then
		echo "ok: the socket: mode 0660, made by root, group postfix"
	else
		wire_fail "the socket: mode, owner, group: $got"
	fi
	uid=$(awk '/^Uid:/ { print $3 }' "/proc/$WIRE_PID/status")
	[ "$uid" = "$(id -u nobody)" ] && echo "ok: the daemon runs as nobody" ||
	    wire_fail "the daemon runs as uid $uid"
	if [ "$(cat "$pidfile" 2>/dev/null)" = "$WIRE_PID" ]; then
		echo "ok: the pidfile holds the daemon's pid"
	else
		wire_fail "the pidfile holds '$(cat "$pidfile" 2>&1)'," \
		    "not $WIRE_PID"
	fi
	grep -q "cannot be removed" "$WIRE_LOG" &&
	    wire_fail "a warning that a file cannot be removed"
fi

# ---- 2. mail through Postfix over the socket --------------------------------

# send NAME: one message through the smtpd; 0 if it was delivered with the
# plugin's header naming Postfix's queue id.
send() {
	local f qid

	swaks --server 127.0.0.1 --port "$port" --from sender@milterhost.test \
	    --to "rcpt-$1@example.net" --header "Subject: $1" \
	    --body "body of $1" >"$WIRE_TMP/$1.swaks" 2>&1 || return 1
	pf_wait_empty "$pf" 30 || return 1
	f=$(grep -l "^X-Rcpt-Args: <rcpt-$1@example.net>" "$pf"/sink/*) ||
	    return 1
	qid=$(sed -n 's/.*(Postfix) with E\{0,1\}SMTP id \([0-9A-F]*\)$/\1/p' \
	    "$f" | head -n 1)
	grep -qx "X-MH-Socket: through the socket for $qid" "$f"
}

if send first; then
	echo "ok: mail through Postfix got milterhost's header over" \
	    "unix:milterhost/milterhost.sock"
else
	wire_fail "first: not delivered with milterhost's header"
	sed 's/^/    /' "$WIRE_TMP/first.swaks"
fi

# ---- 3. a second milterhost on the same socket ------------------------------

ino=$(stat -c %i "$sock")
"$WIRE_DAEMON" -f -c "$ini" >"$WIRE_TMP/second.out" 2>&1
st=$?
if [ "$st" -eq 1 ] && grep -q "$sock is in use" "$WIRE_TMP/second.out"; then
	echo "ok: a second milterhost: $(head -n 1 "$WIRE_TMP/second.out")"
else
	wire_fail "a second milterhost on the socket: exit $st," \
	    "$(cat "$WIRE_TMP/second.out")"
fi
if [ "$(stat -c %i "$sock" 2>/dev/null)" = "$ino" ] && send second; then
	echo "ok: the first milterhost serves on, on its own socket"
else
	wire_fail "after the second start, the first no longer serves"
fi

# ---- 4. a clean stop removes the socket and the pidfile ---------------------

if wire_stop; then
	if [ ! -e "$sock" ] && [ ! -e "$pidfile" ]; then
		echo "ok: the stop removed the socket and the pidfile"
	else
		wire_fail "left after the stop: $(ls "$dir")"
	fi
fi

# ---- 5. not a socket --------------------------------------------------------

echo "not a socket" >"$sock"
"$WIRE_DAEMON" -f -c "$ini" >"$WIRE_TMP/file.out" 2>&1
st=$?
if [ "$st" -eq 1 ] &&
    grep -q "$sock exists and is not a socket" "$WIRE_TMP/file.out" &&
    [ "$(cat "$sock")" = "not a socket" ] && [ ! -e "$pidfile" ]; then
	echo "ok: a file that is not a socket: refused, left alone"
else
	wire_fail "a file that is not a socket: exit $st," \
	    "$(cat "$WIRE_TMP/file.out")"
fi
rm -f "$sock"

# ---- 6. a directory the user cannot write to --------------------------------

rootdir=$WIRE_TMP/rootdir
install -d -m 755 "$rootdir" || wire_error "cannot make $rootdir"
sed -e "s|^socket = .*|socket = unix:$rootdir/mh.sock|" \
    -e "/^pidfile = /d" -e "s/^socket_mode = .*/socket_mode = 0666/" \
    "$ini" >"$WIRE_TMP/rootdir.ini"
if start "$WIRE_TMP/rootdir.ini"; then
	if grep -q "socket $rootdir/mh.sock cannot be removed at a stop: its directory $rootdir is not writable by user nobody" "$WIRE_LOG"; then
		echo "ok: warned at start-up that the socket cannot be removed"
	else
		wire_fail "no warning that the socket cannot be removed"
	fi
	wire_stop
	if [ -S "$rootdir/mh.sock" ] && start "$WIRE_TMP/rootdir.ini" &&
	    grep -q "$rootdir/mh.sock: replacing a stale socket" "$WIRE_LOG"
	then
		echo "ok: the socket left by the stop is replaced at the next start"
	else
		wire_fail "the socket left in $rootdir was not replaced"
	fi
	wire_stop
fi
wire_exit
