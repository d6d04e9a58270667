#!/bin/sh
# readme_table.sh - the README's table "How the chain decides" says what
# the engine's stage table (src/stage.c) does: tests/stage_table prints
# the table from it, and the README must hold exactly that table.
# On a difference, replace the README's table with stage_table's output.

prog=${abs_top_builddir:?run the test with make check}/tests/stage_table
readme=${abs_top_srcdir:?}/README.md
[ -x "$prog" ] || { echo "ERROR: $prog is missing"; exit 99; }
want=$("$prog") || exit 99
got=$(sed -n '/^| a plugin returns at\.\.\. |/,/^[^|]/p' "$readme" |
    grep '^|')
if [ "$got" = "$want" ]; then
	echo "PASS: README's decision table matches src/stage.c"
	exit 0
fi
echo "FAIL: README's table \"How the chain decides\" differs from the" \
    "stage table; tests/stage_table prints:"
echo "$want"
echo "---- README has:"
echo "$got"
exit 1
