#!/bin/bash
# example_plugin.sh - the README's "writing a plugin" example works as
# documented: built out of tree with the public header only, named by
# absolute path in a config, checked by milterhost -t, and doing its job in
# the running daemon (driven by miltertest).

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

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

ini=$(wire_config example <<EOF2
[plugin:no-spammers]
module = $so
domain = spam.example
EOF2
) || exit 99
if wire_check_config "$ini" && grep -q "rejectdomain" "$WIRE_OUT"; then
	echo "ok: milterhost -t loads the example"
else
	cat "$WIRE_OUT"
	wire_fail "milterhost -t refuses the example plugin"
fi

missing=$(wire_config missing <<EOF2
[plugin:no-spammers]
module = $so
EOF2
) || exit 99
if wire_check_config "$missing"; then
	wire_fail "the example plugin accepted a config without domain"
elif grep -q "domain" "$WIRE_OUT"; then
	echo "ok: $(cat "$WIRE_OUT")"
else
	cat "$WIRE_OUT"
	wire_fail "the error for a missing domain does not name the key"
fi

if wire_start "$ini"; then
	wire_miltertest "$here/example_plugin.lua"
	grep -q "refusing <someone@spam.example>" "$WIRE_LOG" ||
	    wire_fail "the plugin's log line is not in the daemon's log"
	wire_stop
fi
wire_exit
