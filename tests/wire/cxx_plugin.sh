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
. "$here/example_lib.sh" || exit 99

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

check_example "$so" rejectdomain_cxx "the C++ example"
wire_exit
