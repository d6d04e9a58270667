#!/bin/sh
# plugin_exports.sh - each bundled plugin exports its descriptor,
# milterhost_plugin, and nothing else (plugins/plugin.sym): the functions
# of plugins/support.c and plugins/pattern.c, linked into several plugin
# files, stay inside each of them.
#
# Reads the dynamic symbol tables of the build's plugins/.libs/*.so with
# nm; skipped (exit 77, saying why) without nm.  Exit statuses follow
# automake: 0 pass, 1 fail, 77 skip, 99 hard error.

if [ -z "${abs_top_builddir:-}" ]; then
	echo "ERROR: abs_top_builddir must be set (run the test with make" \
	    "check)" >&2
	exit 99
fi
if ! command -v nm >/dev/null 2>&1; then
	echo "SKIP: plugin_exports: the test needs nm (binutils)"
	exit 77
fi
status=0
for name in addheader rcptlimit greylist bcc rules; do
	so=$abs_top_builddir/plugins/.libs/$name.so
	if [ ! -f "$so" ]; then
		echo "ERROR: $so is missing: build the plugins first" >&2
		exit 99
	fi
	exports=$(nm -D --defined-only "$so" | awk '{ print $NF }' |
	    tr '\n' ' ') || exit 99
	if [ "$exports" = "milterhost_plugin " ]; then
		echo "ok: $name.so exports milterhost_plugin only"
	else
		echo "FAIL: $name.so exports $exports"
		status=1
	fi
done
exit $status
