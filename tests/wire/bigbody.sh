#!/bin/bash
# bigbody.sh - large bodies both ways, which miltertest cannot carry (it
# reads replies into a 1 KB buffer): a 200 KB body reaches the plugins in
# 64 KB chunks, and a 200 KB replacement body made in several calls by one
# plugin, and in several by a plugin before it, goes to the MTA as the
# later plugin's body alone, in one contiguous run of 64 KB chunks.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init bigbody
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"
WIRE_PLUGIN_DIR=$abs_top_builddir/tests/plugins/.libs

ini=$(wire_config bigbody <<'EOF2'
[plugin:early]
module = scripted
do = eom replace_body early body

[plugin:late]
module = scripted
do = eom replace_body_size 200000
EOF2
) || exit 99
if wire_start "$ini"; then
	if "$client" bigbody "$WIRE_SOCKET" 200000 200000; then
		echo "ok: the later plugin's 200000-byte body arrived whole, in one run"
	else
		wire_fail "the replacement body did not arrive as expected"
	fi
	chunks=$(grep -c "\[late\] .*call body" "$WIRE_LOG")
	if [ "$chunks" -eq 4 ]; then
		echo "ok: the 200000-byte body reached the plugin in 4 chunks"
	else
		wire_fail "the plugin saw $chunks body chunks, expected 4"
	fi
	grep -q "requests to replace body" "$WIRE_LOG" ||
	    wire_fail "no warning about two body replacements"
	wire_stop
fi
wire_exit
