#!/bin/sh
# package.sh - the Debian packages, built, installed, used, removed and
# purged on this machine (make check-package; not part of make check).
#
#	[srcdir=DIR] sh tests/package.sh milterhost-VERSION.tar.gz
#
# The dist tarball is unpacked in a temporary directory (where srcdir is a
# git checkout, it must hold every file of its debian/), and built there
# with dpkg-buildpackage -us -uc -b (nocheck: make check runs the tests;
# the nocheck profile leaves out the test-only build dependencies).  Then
# milterhost and milterhost-dev are installed with dpkg -i and checked:
# the system user milterhost, the configuration as a conffile that
# milterhost -t takes, the version, the manual pages, the systemd unit
# and the packaged daemon serving as milterhost, started
# by hand and as the unit starts it (RUNTIME_DIRECTORY made by root, the
# unit's commands in order; where systemd runs, the service it started at
# install).  A plugin written here, built with pkg-config against
# milterhost-dev and put in the plugin directory pkg-config names, is
# loaded by milterhost -t.  dpkg -r then keeps only the configuration,
# and dpkg -P leaves no file of either package.
#
# It changes this machine's packages, so it runs only as root, and not
# where a milterhost is installed already (a package it did not install,
# or files in the packages' paths): it skips (exit 77, saying why) rather
# than touch them.  Whatever happens, it purges what it installed, kills
# the daemons it started, removes the user and group the install created
# (purge leaves them, as Debian packages commonly do) and its temporary
# directory.
#
# Each check prints "ok: ..." or "FAIL: ...".  Exit statuses: 0 pass,
# 1 fail, 77 skip, 99 hard error.

set -u

tarball=${1:?usage: package.sh milterhost-VERSION.tar.gz}
case $tarball in /*) ;; *) tarball=$PWD/$tarball ;; esac
[ -f "$tarball" ] || { echo "ERROR: $tarball: no such file"; exit 99; }
srcdir=${srcdir:+$(cd "$srcdir" && pwd)}
version=${tarball##*/milterhost-}
version=${version%.tar.gz}

INI=/etc/milterhost/milterhost.ini
UNIT=/lib/systemd/system/milterhost.service
WANTS=/etc/systemd/system/multi-user.target.wants/milterhost.service
# milterhost-dev depends on milterhost: purged first.
PACKAGES="milterhost-dev milterhost"

skip() {
	echo "SKIP: $*"
	exit 77
}

# ---- may it run here? -------------------------------------------------------
[ "$(id -u)" -eq 0 ] ||
    skip "not root: the test installs and purges packages with dpkg"
command -v dpkg-buildpackage >/dev/null 2>&1 ||
    skip "dpkg-buildpackage is missing (Debian: apt-get install dpkg-dev)"
command -v dh >/dev/null 2>&1 ||
    skip "debhelper is missing (Debian: apt-get install debhelper)"

# The package's status ("installed", "config-files", ...); nothing for a
# package dpkg does not know.
status() {
	dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null
}
for p in $PACKAGES; do
	case $(status "$p") in
	"" | not-installed) ;;
	*) skip "package $p is on this machine ($(status "$p")), not" \
	    "installed by this test: refusing to touch it" ;;
	esac
done
for f in /etc/milterhost /usr/sbin/milterhost "$UNIT" \
    /usr/include/milterhost; do
	if [ -e "$f" ] || [ -L "$f" ]; then
		skip "$f exists (a milterhost installed otherwise?): the" \
		    "packages would overwrite it and the purge remove it"
	fi
done

# ---- clean-up, whatever happens -------------------------------------------
user_existed=no
group_existed=no
getent passwd milterhost >/dev/null && user_existed=yes
getent group milterhost >/dev/null && group_existed=yes
installing=no
daemon_pid=
test_plugin=
tmp=$(mktemp -d "${TMPDIR:-/tmp}/milterhost-package.XXXXXX") || exit 99
# The daemon, as milterhost, must reach the runtime directory made in it.
chmod 755 "$tmp" || exit 99

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	if [ -n "$daemon_pid" ]; then
		kill -KILL "$daemon_pid" 2>/dev/null
		wait "$daemon_pid" 2>/dev/null
	fi
	if [ "$installing" = yes ]; then
		[ -z "$test_plugin" ] || rm -f "$test_plugin"
		for p in $PACKAGES; do
			case $(status "$p") in
			"" | not-installed) ;;
			*) dpkg -P "$p" >/dev/null 2>&1 ||
			    echo "ERROR: dpkg -P $p failed: purge it by hand" ;;
			esac
		done
	fi
	if [ "$user_existed" = no ] && getent passwd milterhost >/dev/null
	then
		userdel milterhost ||
		    echo "ERROR: userdel milterhost failed: remove it by hand"
	fi
	if [ "$group_existed" = no ] && getent group milterhost >/dev/null
	then
		groupdel milterhost ||
		    echo "ERROR: groupdel milterhost failed: remove it by hand"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

failures=0
ok() {
	echo "ok: $*"
}
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
# Indented, for the output of a failed command.
show() {
	sed 's/^/    /' "$@"
}

# ---- build ----------------------------------------------------------------
cd "$tmp" || exit 99
tar -xzf "$tarball" || { echo "ERROR: cannot unpack $tarball"; exit 99; }
cd "milterhost-$version" || exit 99
# In a git checkout: is every file of debian/ in the tarball?
if [ -n "${srcdir:-}" ] &&
    git -C "$srcdir" ls-files debian >"$tmp/debian.git" 2>/dev/null &&
    [ -s "$tmp/debian.git" ]; then
	missing=$(while read -r f; do [ -e "$f" ] || echo "$f"; done \
	    <"$tmp/debian.git")
	if [ -z "$missing" ]; then
		ok "the dist tarball has all $(wc -l <"$tmp/debian.git") files" \
		    "of debian/"
	else
		fail "not in the dist tarball (add them to DEBIAN_FILES in" \
		    "Makefile.am): $(echo "$missing" | tr '\n' ' ')"
	fi
fi
start=$(date +%s)
if ! DEB_BUILD_OPTIONS=nocheck DEB_BUILD_PROFILES=nocheck \
    dpkg-buildpackage -us -uc -b -j2 >"$tmp/build.log" 2>&1; then
	fail "dpkg-buildpackage -us -uc -b exits non-zero; the end of its" \
	    "output:"
	tail -n 40 "$tmp/build.log" | show
	exit 1
fi
cd "$tmp" || exit 99
debs=
for p in $PACKAGES; do
	set -- "$tmp/${p}_${version}"-*.deb
	if [ $# -ne 1 ] || [ ! -f "$1" ]; then
		fail "dpkg-buildpackage made no ${p}_${version}-*.deb"
		exit 1
	fi
	debs="$debs $1"
done
ok "dpkg-buildpackage -us -uc -b built $(cd "$tmp" && echo *.deb) in" \
    "$(($(date +%s) - start)) s"

# ---- install --------------------------------------------------------------
installing=yes
# shellcheck disable=SC2086 # $debs: one word per file, no blanks in them
if dpkg -i $debs >"$tmp/dpkg-i.log" 2>&1; then
	ok "dpkg -i installs milterhost and milterhost-dev"
else
	fail "dpkg -i exits non-zero:"
	show "$tmp/dpkg-i.log"
	exit 1
fi
for p in $PACKAGES; do
	dpkg -L "$p" >"$tmp/$p.list" || exit 99
done

if pw=$(getent passwd milterhost); then
	uid=$(echo "$pw" | cut -d: -f3)
	gid=$(getent group milterhost | cut -d: -f3)
	home=$(echo "$pw" | cut -d: -f6)
	shell=$(echo "$pw" | cut -d: -f7)
	if [ -n "$gid" ] && [ "$(echo "$pw" | cut -d: -f4)" = "$gid" ] &&
	    [ "$uid" -lt 1000 ] && [ "$home" = /nonexistent ] &&
	    [ "$shell" = /usr/sbin/nologin ]; then
		ok "system user milterhost (uid $uid, group milterhost, gid" \
		    "$gid, home $home, shell $shell)"
	else
		fail "user milterhost is not a system user with its group," \
		    "no home and no shell: $pw, group id '$gid'"
	fi
else
	fail "no user milterhost after the install"
	uid=none gid=none
fi

if dpkg-query -W -f='${Conffiles}\n' milterhost | grep -q "^ $INI "; then
	ok "$INI is a conffile of milterhost"
else
	fail "$INI is not among milterhost's conffiles:"
	dpkg-query -W -f='${Conffiles}\n' milterhost | show
fi

if /usr/sbin/milterhost -t -c "$INI" >"$tmp/t.out" 2>&1 &&
    grep -q "^$INI: configuration ok" "$tmp/t.out"; then
	ok "milterhost -t -c $INI: $(head -n 1 "$tmp/t.out")"
else
	fail "milterhost -t -c $INI does not take the packaged configuration:"
	show "$tmp/t.out"
fi

pkg_version=$(dpkg-query -W -f='${Version}' milterhost)
v=$(/usr/sbin/milterhost -V 2>&1)
case $v in
"milterhost ${pkg_version%-*} "*)
	if [ "${pkg_version%-*}" = "$version" ]; then
		ok "milterhost -V: $v (package $pkg_version)"
	else
		fail "package version $pkg_version (debian/changelog) is not" \
		    "$version (configure.ac)"
	fi ;;
*) fail "milterhost -V prints \"$v\", not version ${pkg_version%-*}" ;;
esac

plugindir=$(dirname "$(grep '/addheader\.so$' "$tmp/milterhost.list")")
for page in 8:milterhost:"$INI" 5:milterhost.ini:"$INI" \
    3:milterhost-plugin:"$plugindir"; do
	sec=${page%%:*} rest=${page#*:}
	name=${rest%%:*} path=${rest#*:}
	if command -v man >/dev/null 2>&1; then
		file=$(man -w "$sec" "$name" 2>/dev/null)
	else
		file=/usr/share/man/man$sec/$name.$sec.gz
	fi
	if [ -z "$file" ] || [ ! -f "$file" ]; then
		fail "no manual page $name($sec) installed"
	elif zcat -f "$file" | grep -qF "$path"; then
		ok "manual page $name($sec) installed ($file), naming $path"
	else
		fail "manual page $name($sec) ($file) does not name $path"
	fi
done

if grep -qx "ExecStart=/usr/sbin/milterhost -f -c $INI" "$UNIT" 2>/dev/null
then
	ok "$UNIT runs /usr/sbin/milterhost -f -c $INI"
else
	fail "$UNIT is missing or does not run /usr/sbin/milterhost with $INI"
fi
if [ -L "$WANTS" ]; then
	ok "milterhost.service is enabled ($WANTS)"
else
	fail "milterhost.service is not enabled: no $WANTS"
fi
# systemd-analyze verify, where it takes a plain unit without a word.
mkdir "$tmp/probe" || exit 99
printf '%s\n' '[Unit]' 'Description=probe' '[Service]' 'Type=exec' \
    'ExecStart=/bin/sh -c true' >"$tmp/probe/milterhost-probe.service"
if command -v systemd-analyze >/dev/null 2>&1 &&
    [ -z "$(systemd-analyze verify \
    "$tmp/probe/milterhost-probe.service" 2>&1)" ]
then
	out=$(env SYSTEMD_PAGER=cat systemd-analyze verify "$UNIT" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$out" ]; then
		ok "systemd-analyze verify takes $UNIT"
	else
		fail "systemd-analyze verify $UNIT exits $rc and says:"
		printf '%s\n' "$out" | show
	fi
else
	echo "skip: systemd-analyze verify cannot check units here"
fi

# ---- the daemon -----------------------------------------------------------
socket=$(sed -n 's/^socket = //p' "$INI")
case $socket in
inet:*@*) port=${socket#inet:} port=${port%@*} host=${socket#*@} ;;
*) fail "the packaged socket is \"$socket\", not inet:PORT@HOST"
   exit 1 ;;
esac
# connects: does HOST:PORT take a connection?
connects() {
	perl -MIO::Socket::INET -e \
	    'IO::Socket::INET->new(PeerAddr => $ARGV[0], Timeout => 2) or exit 1' \
	    "$host:$port"
}
# ids PID: "UID GID", the real, effective, saved and file ids all alike.
ids() {
	awk '/^Uid:/ { u = ($2 == $3 && $3 == $4 && $4 == $5) ? $2 : "mixed" }
	    /^Gid:/ { g = ($2 == $3 && $3 == $4 && $4 == $5) ? $2 : "mixed" }
	    END { print u, g }' "/proc/$1/status"
}

if [ -d /run/systemd/system ]; then
	if systemctl is-active --quiet milterhost; then
		pid=$(systemctl show -p MainPID --value milterhost)
		if [ "$(ids "$pid")" = "$uid $gid" ]; then
			ok "systemd started milterhost.service at the install;" \
			    "it runs as milterhost"
		else
			fail "milterhost.service runs as uid/gid $(ids "$pid")"
		fi
	else
		fail "milterhost.service is not active after the install:"
		systemctl status milterhost 2>&1 | show
	fi
	systemctl stop milterhost
else
	echo "skip: systemd does not run here: the service's start at the" \
	    "install is not checked"
fi

# serve LABEL RUNDIR COMMAND...: start the daemon with COMMAND, in the
# background; it logs "ready", takes a connection on the packaged socket,
# runs as milterhost (its plugin links, unless RUNDIR is "-", in a
# directory of its own in RUNDIR) and exits 0 at SIGTERM.
serve() {
	label=$1 rundir=$2
	shift 2
	log=$tmp/daemon.log
	if connects; then
		fail "$label: $host:$port is taken by another process"
		return
	fi
	"$@" >"$log" 2>&1 &
	daemon_pid=$!
	tries=0
	while ! grep -q " ready on $socket " "$log"; do
		tries=$((tries + 1))
		if ! kill -0 "$daemon_pid" 2>/dev/null || [ $tries -gt 100 ]
		then
			fail "$label: no \"ready\" within 10 s; its log:"
			show "$log"
			kill -KILL "$daemon_pid" 2>/dev/null
			wait "$daemon_pid" 2>/dev/null
			daemon_pid=
			return
		fi
		sleep 0.1
	done
	if connects; then
		ok "$label: ready, $host:$port takes a connection"
	else
		fail "$label: ready, but $host:$port refuses a connection"
	fi
	if [ "$(ids "$daemon_pid")" = "$uid $gid" ]; then
		ok "$label: runs as user and group milterhost"
	else
		fail "$label: runs as uid/gid $(ids "$daemon_pid"), not" \
		    "$uid $gid"
	fi
	if [ "$rundir" != - ]; then
		set -- "$rundir"/milterhost-so.*
		if [ -d "$1" ] && [ "$(stat -c %U "$1")" = milterhost ]; then
			ok "$label: links its plugins in $1"
		else
			fail "$label: no plugin directory of milterhost's in" \
			    "$rundir"
		fi
	fi
	kill -TERM "$daemon_pid"
	wait "$daemon_pid"
	rc=$?
	daemon_pid=
	if [ $rc -eq 0 ] && grep -q ': stopped$' "$log"; then
		ok "$label: stops at SIGTERM, exit 0"
	else
		fail "$label: exit $rc at SIGTERM; its log:"
		show "$log"
	fi
}

serve "milterhost -f -c $INI" - /usr/sbin/milterhost -f -c "$INI"

# As the unit starts it: /run/milterhost made by root, mode 0755, in
# $RUNTIME_DIRECTORY; the unit's ExecStartPre commands ("+" would run
# them as root, as every command here), then ExecStart.
rt=$tmp/run-milterhost
mkdir -m 755 "$rt" || exit 99
sed -n 's/^ExecStartPre=+\{0,1\}//p' "$UNIT" |
    sed "s|/run/milterhost|$rt|g" >"$tmp/pre.cmds"
pre_ok=yes
while IFS= read -r cmd; do
	if ! RUNTIME_DIRECTORY=$rt sh -c "$cmd" >"$tmp/pre.out" 2>&1; then
		fail "as the unit starts it: ExecStartPre $cmd fails:"
		show "$tmp/pre.out"
		pre_ok=no
	fi
done <"$tmp/pre.cmds"
start_cmd=$(sed -n 's/^ExecStart=//p' "$UNIT")
if [ "$pre_ok" = yes ]; then
	# shellcheck disable=SC2086 # the unit's command, split into words
	serve "as the unit starts it" "$rt" \
	    env RUNTIME_DIRECTORY="$rt" $start_cmd
fi

# ---- a plugin built against milterhost-dev ---------------------------------
pc_dir=$(pkg-config --variable=pluginsdir milterhost 2>&1)
if [ "$pc_dir" = "$plugindir" ]; then
	ok "pkg-config --variable=pluginsdir milterhost: $pc_dir, where" \
	    "addheader.so is"
else
	fail "pkg-config's pluginsdir is \"$pc_dir\", the bundled plugin is" \
	    "in $plugindir"
fi
cat >"$tmp/pkgtest.c" <<'EOF'
/* pkgtest - a plugin built out of tree against milterhost-dev. */
#include <string.h>

#include <milterhost/plugin.h>

static int
pt_init(const struct mh_init *init, void **state)
{
	if (init->nsettings > 0)
		return mh_init_error(init, init->settings[0].key,
		    "unknown key");
	mh_log(NULL, MH_LOG_INFO, "pkgtest ready");
	*state = NULL;
	return 0;
}

static mh_status
pt_helo(mh_ctx *ctx, const char *name)
{
	if (strlen(name) > 255)
		mh_log(ctx, MH_LOG_NOTICE, "long HELO name");
	return MH_CONTINUE;
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "pkgtest",
	.version = "1.0",
	.description = "built out of tree by tests/package.sh",
	.init = pt_init,
	.helo = pt_helo,
};
EOF
cc=${CC:-cc}
# shellcheck disable=SC2046 # pkg-config's flags, one word each
if $cc -Wall -Wextra -Werror -shared -fPIC \
    $(pkg-config --cflags milterhost) -o "$tmp/pkgtest.so" \
    "$tmp/pkgtest.c" >"$tmp/cc.out" 2>&1; then
	ok "$cc -shared -fPIC \$(pkg-config --cflags milterhost) builds a" \
	    "plugin without a warning"
	test_plugin=$plugindir/pkgtest.so
	install -m 644 "$tmp/pkgtest.so" "$test_plugin" || exit 99
	printf '%s\n' '[milterhost]' 'user = milterhost' \
	    '[plugin:hello]' 'module = pkgtest' >"$tmp/pkgtest.ini"
	if /usr/sbin/milterhost -t -c "$tmp/pkgtest.ini" >"$tmp/t.out" \
	    2>&1 &&
	    grep -qF "[plugin:hello] pkgtest 1.0 ($test_plugin)" "$tmp/t.out"
	then
		ok "milterhost -t loads and inits it from $test_plugin"
	else
		fail "milterhost -t with the plugin built out of tree:"
		show "$tmp/t.out"
	fi
	rm -f "$test_plugin"
	test_plugin=
else
	fail "the plugin does not build against milterhost-dev:"
	show "$tmp/cc.out"
fi

# ---- remove, purge ----------------------------------------------------------
# leftovers LIST...: the listed paths still there that no other package
# owns (directories such as /usr/share/man stay, owned by others).
leftovers() {
	sort -u "$@" | while read -r path; do
		[ "$path" != /. ] || continue
		[ -e "$path" ] || [ -L "$path" ] || continue
		dpkg -S "$path" >/dev/null 2>&1 || echo "$path"
	done
}
if dpkg -r milterhost-dev milterhost >"$tmp/dpkg.log" 2>&1; then
	ok "dpkg -r removes milterhost-dev and milterhost"
else
	fail "dpkg -r exits non-zero:"
	show "$tmp/dpkg.log"
fi
if [ "$(status milterhost)" = config-files ] && [ -f "$INI" ]; then
	ok "after dpkg -r, only the configuration is left ($INI)"
else
	fail "after dpkg -r milterhost is \"$(status milterhost)\", and $INI" \
	    "$([ -f "$INI" ] && echo is there || echo is gone)"
fi
grep -v '^/etc/milterhost' "$tmp/milterhost.list" >"$tmp/milterhost.nonconf"
left=$(leftovers "$tmp/milterhost.nonconf" "$tmp/milterhost-dev.list")
[ -z "$left" ] ||
    fail "after dpkg -r, these are left: $(echo "$left" | tr '\n' ' ')"

if dpkg -P milterhost milterhost-dev >"$tmp/dpkg.log" 2>&1; then
	ok "dpkg -P purges milterhost and milterhost-dev"
else
	fail "dpkg -P exits non-zero:"
	show "$tmp/dpkg.log"
fi
gone=yes
for p in $PACKAGES; do
	case $(status "$p") in
	"" | not-installed) ;;
	*) fail "after dpkg -P, $p is \"$(status "$p")\""; gone=no ;;
	esac
done
[ "$gone" = no ] || ok "dpkg -l lists neither package any more"
left=$(leftovers "$tmp/milterhost.list" "$tmp/milterhost-dev.list")
for f in /etc/milterhost "$WANTS" \
    /var/lib/systemd/deb-systemd-helper-enabled/milterhost.service.dsh-also
do
	if [ -e "$f" ] || [ -L "$f" ]; then
		left="$left $f"
	fi
done
if [ -z "$left" ]; then
	ok "after dpkg -P no file of either package is left, nor" \
	    "/etc/milterhost, nor the unit's enablement"
else
	fail "after dpkg -P these are left: $(echo "$left" | tr '\n' ' ')"
fi

if getent passwd milterhost >/dev/null; then
	if [ "$user_existed" = no ]; then
		ok "dpkg -P leaves the user milterhost, as Debian packages do;" \
		    "this test removes it (and its group)"
	else
		ok "the user milterhost (there before the test) is kept"
	fi
else
	fail "dpkg -P removed the user milterhost"
fi
installing=no

[ $failures -eq 0 ] || exit 1
exit 0
