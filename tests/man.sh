#!/bin/sh
# man.sh - the manual pages cannot silently fall behind the code:
#
#  - every key of src/config.c's tables host_keys[] and plugin_keys[] is
#    an item (".It Cm KEY") of milterhost.ini.5;
#  - every mh_ function include/milterhost/plugin.h declares is in the
#    synopsis (".Fn NAME" or ".Fo NAME") of milterhost-plugin.3;
#  - the example in milterhost-plugin.3 is contrib/examples/rejectdomain.c
#    without its first comment (as in the README);
#  - mandoc -T lint -W warning (or, with only man-db, man --warnings -l)
#    says nothing about any page.
#
# The pages checked are the ones make built (man/*, paths substituted).
# Without mandoc and man the lint is skipped (exit 77, saying why) after
# the other checks passed.  Exit statuses follow automake: 0 pass, 1 fail,
# 77 skip, 99 hard error.

if [ -z "${abs_top_srcdir:-}" ] || [ -z "${abs_top_builddir:-}" ]; then
	echo "ERROR: abs_top_srcdir and abs_top_builddir must be set" \
	    "(run the test with make check)" >&2
	exit 99
fi
src=$abs_top_srcdir
man=$abs_top_builddir/man
pages="$man/milterhost.8 $man/milterhost.ini.5 $man/milterhost-plugin.3
    $man/milterhost-replay.1"
status=0

fail() {
	echo "FAIL: $*"
	status=1
}

for page in $pages; do
	if [ ! -f "$page" ]; then
		echo "ERROR: $page is missing (make builds it)" >&2
		exit 99
	fi
done

# The names of the keys in the two tables of src/config.c.
keys=$(awk '/^static const struct host_key (host|plugin)_keys\[\] = \{/ \
    { t = 1; next } t && /^\};/ { t = 0 } t' "$src/src/config.c" |
    sed -n 's/^[[:space:]]*{ "\([a-z_]*\)".*/\1/p' | sort -u)
nkeys=$(echo "$keys" | grep -c .)
if [ "$nkeys" -lt 15 ]; then
	fail "found only $nkeys keys in src/config.c's tables: has their form changed?"
fi
missing=0
for k in $keys; do
	if ! grep -Eq "^\\.It Cm $k( |\$)" "$man/milterhost.ini.5"; then
		fail "milterhost.ini.5 does not describe the key '$k' (.It Cm $k)"
		missing=$((missing + 1))
	fi
done
[ "$missing" -eq 0 ] && echo "ok: milterhost.ini.5 describes all $nkeys keys"

# Declarations start at the left margin; comments and fields do not.
funcs=$(grep -E '^[a-z]' "$src/include/milterhost/plugin.h" |
    grep -oE '\bmh_[a-z_]+\(' | tr -d '(' | sort -u)
nfuncs=$(echo "$funcs" | grep -c .)
if [ "$nfuncs" -lt 30 ]; then
	fail "found only $nfuncs mh_ functions in plugin.h: has its form changed?"
fi
missing=0
for f in $funcs; do
	if ! grep -Eq "^\\.F[no] $f( |\$)" "$man/milterhost-plugin.3"; then
		fail "milterhost-plugin.3 does not declare $f (.Fn or .Fo $f)"
		missing=$((missing + 1))
	fi
done
[ "$missing" -eq 0 ] &&
    echo "ok: milterhost-plugin.3 declares all $nfuncs host functions"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/milterhost-man.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
sed -n '/^\.\\" BEGIN rejectdomain\.c$/,/^\.\\" END rejectdomain\.c$/p' \
    "$man/milterhost-plugin.3" | sed '1d;$d' | sed 's/\\e/\\/g' \
    >"$tmp/page.c"
awk 'body { print; next } /^ \*\/$/ { body = 1 }' \
    "$src/contrib/examples/rejectdomain.c" >"$tmp/example.c"
if [ ! -s "$tmp/page.c" ]; then
	fail "milterhost-plugin.3 has no example between its BEGIN and END lines"
elif diff -u "$tmp/example.c" "$tmp/page.c"; then
	echo "ok: the example in milterhost-plugin.3 is rejectdomain.c"
else
	fail "the example in milterhost-plugin.3 differs from" \
	    "contrib/examples/rejectdomain.c (diff above)"
fi

if command -v mandoc >/dev/null 2>&1; then
	for page in $pages; do
		out=$(mandoc -T lint -W warning "$page" 2>&1)
		rc=$?
		if [ $rc -ne 0 ] || [ -n "$out" ]; then
			printf '%s\n' "$out"
			fail "mandoc -T lint -W warning: ${page##*/} (exit $rc)"
		else
			echo "ok: mandoc -T lint -W warning: ${page##*/}"
		fi
	done
elif command -v man >/dev/null 2>&1; then
	for page in $pages; do
		out=$(LC_ALL=C MANPAGER=cat man --warnings -l "$page" 2>&1 \
		    >/dev/null)
		rc=$?
		if [ $rc -ne 0 ] || [ -n "$out" ]; then
			printf '%s\n' "$out"
			fail "man --warnings -l: ${page##*/} (exit $rc)"
		else
			echo "ok: man --warnings -l: ${page##*/}"
		fi
	done
elif [ $status -eq 0 ]; then
	echo "SKIP: the lint of the man pages: neither mandoc nor man is" \
	    "installed (Debian: apt-get install mandoc)"
	exit 77
fi
exit $status
