#!/bin/bash
# observe.sh - stages only observed get no answer (plugin ABI 1.1,
# mh_declare_observer).  When every instance taking a stage declared it
# only observes there, milterhost claims the stage's "no reply" bit and
# the MTA sends its events without waiting; the end of the message is
# still answered.  An observer that decides anyway fails: its on_error
# (tempfail here) answers at the next answered event, the end of the
# message.  One instance taking a stage without observing keeps the
# stage answered (headers stay unanswered: milterhost always claims
# that bit).

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init observe
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"
WIRE_PLUGIN_DIR=$abs_top_builddir/tests/plugins/.libs

observe='observe = connect
observe = helo
observe = envfrom
observe = envrcpt
observe = data
observe = header
observe = eoh
observe = body'

# run NAME WANT: run the client against the config NAME (on stdin) and
# compare its line with WANT.
run() {
	local ini out

	ini=$(wire_config "$1") || exit 99
	wire_start "$ini" || return
	out=$("$client" observe "$WIRE_SOCKET" 2>&1)
	if [ "$out" = "$2" ]; then
		echo "ok: $1: $out"
	else
		wire_fail "$1: the client said '$out', expected '$2'"
	fi
	wire_stop
}

run observed 'unanswered 8 eom c headers 1' <<EOF
[plugin:watch]
module = scripted
$observe
do = eom add_header X-Seen yes
EOF

run deciding 'unanswered 8 eom t headers 0' <<EOF
[plugin:watch]
module = scripted
$observe
do = envrcpt reject
do = eom add_header X-Seen yes
EOF
grep -q "\[watch\] envrcpt: returned reject where it declared it only observes; on_error = tempfail" \
    "$WIRE_LOG" || wire_fail "deciding: no log line about the observer's decision"

run mixed 'unanswered 1 eom c headers 1' <<EOF
[plugin:watch]
module = scripted
$observe

[plugin:other]
module = scripted
do = eom add_header X-Seen yes
EOF
wire_exit
