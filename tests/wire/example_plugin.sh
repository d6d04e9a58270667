#!/bin/bash
# example_plugin.sh - the README's "writing a plugin" example works as
# documented: built out of tree with the public header only, named by
# absolute path in a config, checked by milterhost -t, and doing its job in
# the running daemon (driven by miltertest).

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99
. "$here/example_lib.sh" || exit 99

wire_init example_plugin
wire_need_miltertest
src=$abs_top_srcdir/contrib/examples/rejectdomain.c
so=$WIRE_TMP/rejectdomain.so

# The README's command, with the source tree's include directory standing
# in for $(pkg-config --cflags milterhost).
if ! ${CC:-cc} -shared -fPIC -I"$abs_top_srcdir/include" -o "$so" "$src"; then
	wire_fail "the example plugin does not build"
	wire_exit
fi
# The README shows the file from its first #include on, unchanged.
if [ "$(sed -n '/^```c$/,/^```$/p' "$abs_top_srcdir/README.md" | sed '1d;$d')" != \
    "$(sed -n '/^#include/,$p' "$src")" ]; then
	wire_fail "README.md's example differs from contrib/examples/rejectdomain.c"
fi

check_example "$so" rejectdomain "the example plugin"
wire_exit
