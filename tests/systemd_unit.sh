#!/bin/sh
# systemd_unit.sh - contrib/milterhost.service, as make generated it from
# contrib/milterhost.service.in: its commands use the configured paths
# ($(sbindir)/milterhost, $(confdir)/milterhost.ini), and
# "systemd-analyze verify" takes it without printing a word.
#
# systemd-analyze verify needs every Exec*= program to exist: it checks a
# copy of the unit in which the installed daemon's path is replaced by the
# built one (nothing else changes).  It is skipped, saying why, when
# systemd-analyze is not installed (Debian: systemd), when it cannot check
# a plain unit here without complaint (no /proc in a chroot, say), or when
# /bin/kill, ExecReload's program, is missing (Debian: procps).  The path
# check runs in every case.
#
# Exit statuses follow automake: 0 pass, 1 fail, 77 skip, 99 hard error.

: "${abs_top_builddir:?run the test with make check}"
: "${sbindir:?run the test with make check}"
: "${confdir:?run the test with make check}"
unit=$abs_top_builddir/contrib/milterhost.service
built=$abs_top_builddir/src/milterhost
[ -f "$unit" ] || { echo "ERROR: $unit is missing (make builds it)"; exit 99; }
[ -x "$built" ] || { echo "ERROR: $built is missing"; exit 99; }

# ---- the paths ------------------------------------------------------------
status=0
expect() {
	if grep -qxF "$1" "$unit"; then
		echo "ok: $1"
	else
		echo "FAIL: $unit has no line \"$1\""
		status=1
	fi
}
expect "ExecStartPre=$sbindir/milterhost -t -c $confdir/milterhost.ini"
expect "ExecStart=$sbindir/milterhost -f -c $confdir/milterhost.ini"
expect "ExecReload=/bin/kill -USR1 \$MAINPID"
if grep -n '@[A-Za-z_]*@' "$unit"; then
	echo "FAIL: $unit keeps a placeholder (above)"
	status=1
fi
[ $status -eq 0 ] || exit 1

# ---- systemd-analyze verify -----------------------------------------------
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze is not installed (Debian: apt-get install" \
	    "systemd); the unit's paths are right"
	exit 77
fi
if [ ! -x /bin/kill ]; then
	echo "SKIP: /bin/kill (ExecReload's program; Debian: procps) is" \
	    "missing, and systemd-analyze verify would refuse the unit for it"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/milterhost-unit.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
SYSTEMD_PAGER=cat SYSTEMD_COLORS=0
export SYSTEMD_PAGER SYSTEMD_COLORS

# Can systemd-analyze verify a plain unit here, without a word?
mkdir "$tmp/probe" || exit 99
cat >"$tmp/probe/milterhost-probe.service" <<'EOF'
[Unit]
Description=a unit systemd-analyze must take without complaint
After=network.target

[Service]
Type=exec
ExecStart=/bin/sh -c true

[Install]
WantedBy=multi-user.target
EOF
out=$(systemd-analyze verify "$tmp/probe/milterhost-probe.service" 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
	echo "SKIP: systemd-analyze verify cannot check units here: for a" \
	    "plain unit it exits $rc and says:"
	printf '%s\n' "$out"
	exit 77
fi

# The unit with the built daemon in place of the installed one.
awk -v from="$sbindir/milterhost" -v to="$built" '{
	out = ""
	while ((i = index($0, from)) > 0) {
		out = out substr($0, 1, i - 1) to
		$0 = substr($0, i + length(from))
	}
	print out $0
}' "$unit" >"$tmp/milterhost.service" || exit 99
n=$(grep -c "^Exec[A-Za-z]*=$built " "$tmp/milterhost.service")
[ "$n" -eq 2 ] || { echo "ERROR: the copy has $n commands of $built"; exit 99; }

out=$(systemd-analyze verify "$tmp/milterhost.service" 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
	echo "FAIL: systemd-analyze verify exits $rc on the unit (the built" \
	    "daemon in place of $sbindir/milterhost) and says:"
	printf '%s\n' "$out"
	exit 1
fi
echo "PASS: systemd-analyze verify takes $unit without a word"
exit 0
