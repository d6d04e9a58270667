#!/bin/bash
# mods.sh - wire test of message changes: the running daemon with two
# instances (p1, p2) of the scripted test plugin, driven by miltertest
# over a unix socket.
#
# Every kind of change arrives at end of message; changes queued at
# earlier stages arrive then too; the merged list is in chain order and
# each plugin's in call order; two body replacements: the later plugin's
# (warning); quarantine: the first; sender: the last (warning); a refused,
# tempfailed or discarded message gets no change, nor does the next one;
# progress does not disturb the session.  The checks are in mods.lua.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init mods
wire_need_miltertest
plugin=$abs_top_builddir/tests/plugins/.libs/scripted.so
[ -f "$plugin" ] || wire_error "$plugin is missing: run make check"

ini=$(wire_config mods <<EOF
[plugin:p1]
module = $plugin
do = @every_kind eom add_header X-A 1
do = @every_kind eom insert_header 0 X-B v
do = @every_kind eom change_header Subject 1 new
do = @every_kind eom delete_header X-Del 1
do = @every_kind eom replace_body new body\r\n
do = @every_kind eom add_rcpt <c@x>
do = @every_kind eom add_rcpt_args <d@x> NOTIFY=NEVER
do = @every_kind eom delete_rcpt <b@x>
do = @every_kind eom change_from <n@x> RET=HDRS
do = @every_kind eom quarantine held for test
do = @every_kind eom progress
do = @order eom add_header X-Order p1 first
do = @order eom add_header X-Order p1 second
do = @early envfrom add_header X-Early envfrom
do = @early envrcpt:<b@x> add_rcpt <early@x>
do = @early header:Subject add_header X-Early header
do = @early header:Subject change_header Subject 1 from header
do = @early body:1 add_header X-Early body
do = @early body:1 replace_body from body\r\n
do = @early eom add_header X-Early eom
do = @dropped_reject envfrom add_header X-Drop 1
do = @dropped_reject envfrom add_rcpt <drop@x>
do = @dropped_reject eom replace_body dropped\r\n
do = @dropped_tempfail envfrom add_header X-Drop 1
do = @dropped_tempfail eom quarantine dropped
do = @dropped_discard envfrom add_header X-Drop 1
do = @dropped_discard eom change_header Subject 1 dropped
do = @dropped_next#1 envfrom add_header X-Drop 1
do = @dropped_next#1 envfrom add_rcpt <drop@x>
do = @dropped_next#1 envfrom delete_header X-Del 1
do = @two_bodies eom replace_body p1 body\r\n
do = @body_appends eom replace_body part one\r\n
do = @body_appends eom replace_body part two\r\n
do = @singles eom change_from <p1@x>
do = @singles eom quarantine p1 reason
do = @progress eom progress
do = @progress eom progress
do = @progress eom add_header X-After-Progress yes

[plugin:p2]
module = $plugin
do = @order envfrom add_header X-Order p2 early
do = @dropped_reject eom reject
do = @dropped_tempfail eom tempfail
do = @dropped_discard eom discard
do = @dropped_next#1 envrcpt:<b@x> discard
do = @two_bodies eom replace_body p2 body\r\n
do = @singles eom change_from <p2@x>
do = @singles eom quarantine p2 reason
EOF
) || exit 99

if wire_start "$ini"; then
	wire_miltertest "$here/mods.lua" MH_WIRE_LOG="$WIRE_LOG"
	if grep -q "cannot send" "$WIRE_LOG"; then
		wire_fail "libmilter refused to send a change (see the log)"
	fi
	wire_stop
fi
wire_exit
