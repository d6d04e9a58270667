#!/bin/bash
# privileges.sh - started as root with user and group set, milterhost
# opens its socket as root, then drops privileges before it loads the
# plugins (so a reload loads them the same way): the daemon runs as that
# user and group, its plugins load under a $RUNTIME_DIRECTORY that
# belongs to root (as systemd makes it for the unit), and a plugin file
# only root may read cannot be loaded.
# Skipped (77) unless run as root with a user "nobody" and a group
# "nogroup" (Debian's).

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: privileges: the test must run as root"
	exit 77
fi
if ! id nobody >/dev/null 2>&1 || ! getent group nogroup >/dev/null; then
	echo "SKIP: privileges: needs the user nobody and the group nogroup"
	exit 77
fi
wire_init privileges
plugins=$WIRE_TMP/plugins
mkdir "$plugins" && chmod 755 "$WIRE_TMP" "$plugins" ||
    wire_error "cannot make $plugins"
install -m 644 "$abs_top_builddir/tests/plugins/.libs/gen1.so" \
    "$plugins/gen.so" || wire_error "cannot install the test plugin"

ini=$(wire_config privileges <<EOF
user = nobody
group = nogroup
socket_mode = 0666

[plugin:gen]
module = gen
EOF
) || exit 99
sed -i "s|^plugin_dir = .*|plugin_dir = $plugins|" "$ini"

if wire_start "$ini"; then
	uid=$(awk '/^Uid:/ { print $3 }' "/proc/$WIRE_PID/status")
	gid=$(awk '/^Gid:/ { print $3 }' "/proc/$WIRE_PID/status")
	if [ "$uid" = "$(id -u nobody)" ] &&
	    [ "$gid" = "$(getent group nogroup | cut -d: -f3)" ]; then
		echo "ok: the daemon runs as nobody:nogroup (uid $uid, gid $gid)"
	else
		wire_fail "the daemon runs as uid $uid gid $gid"
	fi
	wire_stop
fi

# As systemd starts it: $RUNTIME_DIRECTORY made for root (the unit has no
# User=).  The directory the plugins are linked from is made there before
# the drop, for nobody: the plugins load.
rundir=$WIRE_TMP/run
install -d -m 755 "$rundir" || wire_error "cannot make $rundir"
if RUNTIME_DIRECTORY=$rundir wire_start "$ini"; then
	links=$(find "$rundir" -mindepth 1 -maxdepth 1 -name 'milterhost-so.*' \
	    -user nobody)
	if [ -n "$links" ]; then
		echo "ok: under a root-owned \$RUNTIME_DIRECTORY the plugins" \
		    "load, linked from $links (owned by nobody)"
	else
		wire_fail "no directory of nobody's in $rundir: $(ls -l "$rundir")"
	fi
	wire_stop
fi

# Readable by root only: loaded after the drop, it cannot be read.
chmod 600 "$plugins/gen.so"
"$WIRE_DAEMON" -f -c "$ini" >"$WIRE_TMP/refused.out" 2>&1 &
pid=$!
wait "$pid"
status=$?
if [ "$status" -ne 0 ] &&
    grep -q "cannot read $plugins/gen.so: Permission denied" \
    "$WIRE_TMP/refused.out"; then
	echo "ok: a plugin only root may read is refused: plugins load as" \
	    "nobody"
else
	wire_fail "a plugin only root may read: exit $status," \
	    "$(cat "$WIRE_TMP/refused.out")"
fi
wire_exit
