#!/bin/bash
# envelope.sh - envelope changes arrive at end of message with their ESMTP
# arguments, which miltertest cannot show: a recipient added with
# arguments (SMFIR_ADDRCPT_PAR), a plain one, a deleted one, and the
# change of sender with arguments (only the later of two plugins' changes
# goes out), in chain order.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init envelope
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"
WIRE_PLUGIN_DIR=$abs_top_builddir/tests/plugins/.libs

ini=$(wire_config envelope <<'EOF2'
[plugin:first]
module = scripted
do = envrcpt add_rcpt_args <c@example.test> NOTIFY=NEVER ORCPT=rfc822;c@example.test
do = eom change_from <bounce@example.test>
do = eom add_header X-First 1

[plugin:second]
module = scripted
do = eom delete_rcpt <b@example.test>
do = eom change_from <new@example.test> RET=HDRS ENVID=abc
do = eom add_rcpt <d@example.test>
EOF2
) || exit 99
expected='mod 2 <c@example.test>|NOTIFY=NEVER ORCPT=rfc822;c@example.test
mod h X-First|1
mod - <b@example.test>
mod e <new@example.test>|RET=HDRS ENVID=abc
mod + <d@example.test>'
if wire_start "$ini"; then
	if got=$("$client" mods "$WIRE_SOCKET"); then
		if [ "$got" = "$expected" ]; then
			echo "ok: envelope changes arrive whole, in chain order"
		else
			wire_fail "envelope changes differ"
			diff <(echo "$expected") <(echo "$got")
		fi
	else
		wire_fail "mtaclient mods failed"
	fi
	wire_stop
fi
wire_exit
