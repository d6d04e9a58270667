#!/bin/bash
# header.sh - the public header include/milterhost/plugin.h is portable:
# it compiles without a warning as C99 and as C++17 (-pedantic -Wall
# -Wextra), compiler extensions appear in it only for the compilers that
# have them (preprocessed as for a compiler without __GNUC__ and
# __clang__, no reserved __ identifier is left), and the README sections
# it names exist.
#
# CC and CXX are the compilers configure found; the C++ check is skipped,
# saying so, without a C++ compiler.  Exit statuses follow automake:
# 0 pass, 1 fail, 77 skip, 99 hard error.

if [ -z "${abs_top_srcdir:-}" ]; then
	echo "ERROR: abs_top_srcdir must be set (run the test with make check)" >&2
	exit 99
fi
header=$abs_top_srcdir/include/milterhost/plugin.h
readme=$abs_top_srcdir/README.md
cc=${CC:-cc}
cxx=${CXX:-c++}
status=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/milterhost-header.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*"
	status=1
}

# The options below are GCC's (clang takes them too).
printf 'int main(void) { return 0; }\n' >"$tmp/probe.c"
if ! $cc -std=c99 -pedantic -Wall -Wextra -Werror -E -P -undef -nostdinc \
    "$tmp/probe.c" >/dev/null 2>&1; then
	echo "SKIP: header: CC=$cc does not take GCC's options" \
	    "(-std=c99 -pedantic -Werror -undef -nostdinc)"
	exit 77
fi

printf '#include <milterhost/plugin.h>\nint main(void) { return 0; }\n' \
    >"$tmp/h.c"
printf '#include <milterhost/plugin.h>\nint main() { return 0; }\n' \
    >"$tmp/h.cc"

if $cc -std=c99 -pedantic -Wall -Wextra -Werror -I"$abs_top_srcdir/include" \
    -c -o "$tmp/h.o" "$tmp/h.c"; then
	echo "ok: $cc -std=c99 -pedantic -Wall -Wextra: no warning"
else
	fail "the header does not compile cleanly as C99 with $cc"
fi

have_cxx=no
if ! command -v "${cxx%% *}" >/dev/null 2>&1; then
	echo "skipped: the C++ checks (CXX=$cxx is not installed)"
elif $cxx -std=c++17 -pedantic -Wall -Wextra -Werror \
    -I"$abs_top_srcdir/include" -c -o "$tmp/h.o" "$tmp/h.cc"; then
	echo "ok: $cxx -std=c++17 -pedantic -Wall -Wextra: no warning"
	have_cxx=yes
else
	fail "the header does not compile cleanly as C++17 with $cxx"
fi

# Preprocess the header alone (its system headers replaced by empty ones,
# which would hide GNU extensions of their own), with no predefined macro
# but the standard ones: what is left is all another compiler sees.
mkdir -p "$tmp/stub/sys" || exit 99
for h in $(sed -n 's/^#include <\(.*\)>.*/\1/p' "$header"); do
	: >"$tmp/stub/$h" || exit 99
done
preprocess() { # LANG COMPILER SOURCE
	if ! $2 -E -P -undef -nostdinc -I"$tmp/stub" \
	    -I"$abs_top_srcdir/include" "$3" >"$tmp/pp.out"; then
		fail "$2 -E -undef cannot preprocess the header"
	elif grep -n '__' "$tmp/pp.out"; then
		fail "unguarded extensions in the header as $1 for a" \
		    "compiler without __GNUC__ (lines above)"
	else
		echo "ok: as $1 without __GNUC__: no extension left"
	fi
}
preprocess C "$cc" "$tmp/h.c"
[ "$have_cxx" = yes ] && preprocess C++ "$cxx" "$tmp/h.cc"

# Every README section the header names ('README "Title"' or
# 'README ("Title")', also across a line break) is a heading there.
names=$(sed 's/^ *\* *//' "$header" | tr '\n' ' ' |
    grep -o 'README (\?"[^"]*"' | sed 's/^README (\{0,1\}"//; s/"$//' |
    tr -s ' ')
[ -n "$names" ] || fail "the header names no README section any more"
while IFS= read -r name; do
	[ -n "$name" ] || continue
	if grep -qx "##* $name" "$readme"; then
		echo "ok: README section \"$name\" exists"
	else
		fail "the header names README section \"$name\", which" \
		    "README.md does not have"
	fi
done <<EOF2
$names
EOF2

[ "$status" -eq 0 ] && echo "PASS: header"
exit "$status"
