#!/bin/bash
# cxx_plugin.sh - a plugin can be written in C++17: the C++ example
# (contrib/examples/rejectdomain_cxx.cc), which fills its descriptor
# without designated initializers and exports it with C linkage, builds
# out of tree with the public header only, without a warning, is loaded by
# milterhost -t and in the running daemon behaves as the C example does
# (the same miltertest script as example_plugin.sh).
#
# CXX is the C++ compiler configure found.  Skipped (exit 77, saying why)
# if there is none, or it cannot compile C++17.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init cxx_plugin
wire_need_miltertest
src=$abs_top_srcdir/contrib/examples/rejectdomain_cxx.cc
so=$WIRE_TMP/rejectdomain_cxx.so
cxx=${CXX:-c++}

# configure sets CXX to g++ when it finds no C++ compiler at all.
if ! command -v "${cxx%% *}" >/dev/null 2>&1; then
	echo "SKIP: cxx_plugin: this test needs a C++ compiler; CXX=$cxx" \
	    "is not installed (Debian: apt-get install g++, then re-run" \
	    "configure)"
	exit 77
fi
printf 'int main() { if constexpr (true) return 0; }\n' >"$WIRE_TMP/probe.cc"
if ! $cxx -std=c++17 -o "$WIRE_TMP/probe" "$WIRE_TMP/probe.cc" \
    >"$WIRE_TMP/probe.out" 2>&1; then
	cat "$WIRE_TMP/probe.out"
	echo "SKIP: cxx_plugin: CXX=$cxx cannot compile C++17 (-std=c++17)"
	exit 77
fi
# Warnings are errors here if the compiler takes GCC's options (g++ and
# clang++ do): the public header must compile cleanly as C++.
warn="-Wall -Wextra -pedantic -Werror"
if ! $cxx -std=c++17 $warn -o "$WIRE_TMP/probe" "$WIRE_TMP/probe.cc" \
    >/dev/null 2>&1; then
	warn=
fi

# As the example's comment says, with the source tree's include directory
# standing in for $(pkg-config --cflags milterhost).
if $cxx -std=c++17 $warn -shared -fPIC -I"$abs_top_srcdir/include" \
    -o "$so" "$src"; then
	echo "ok: the C++ example builds with $cxx -std=c++17 $warn"
else
	wire_fail "the C++ example plugin does not build with $cxx"
	wire_exit
fi

ini=$(wire_config cxx <<EOF2
[plugin:no-spammers]
module = $so
domain = spam.example
EOF2
) || exit 99
if wire_check_config "$ini" && grep -q "rejectdomain_cxx" "$WIRE_OUT"; then
	echo "ok: milterhost -t loads the C++ example"
else
	cat "$WIRE_OUT"
	wire_fail "milterhost -t refuses the C++ example plugin"
fi

missing=$(wire_config missing <<EOF2
[plugin:no-spammers]
module = $so
EOF2
) || exit 99
if wire_check_config "$missing"; then
	wire_fail "the C++ example accepted a config without domain"
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
