#!/bin/bash
# callbacks.sh - wire test: every callback reaches a plugin with the
# arguments the MTA sent, in the right order.  The real daemon runs the
# recorder test plugin (tests/plugins/recorder.c), which logs each call as
# one "rec ..." line; miltertest (callbacks.lua) and, for the unix address
# family that miltertest cannot send, "mtaclient script" play the MTA.
# Each scenario's lines of the log are compared with the expected ones,
# exactly and in order.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99
. "$here/callbacks_lib.sh" || exit 99

wire_init callbacks
wire_need_miltertest
script=$here/callbacks.lua

ini=$(wire_config callbacks <<EOF
[plugin:rec]
module = $REC_PLUGINS/recorder.so
EOF
) || exit 99
wire_start "$ini" || wire_exit

# ---- connect: address families -----------------------------------------

rec_mark
wire_miltertest "$script" MH_WIRE_SCENARIO=ipv4 >/dev/null
rec_expect "connect from an IPv4 client" rec <<'EOF'
rec connect host=v4.example.test family=4 addr=192.0.2.1 sa=192.0.2.1 port 12345
rec close
EOF

rec_mark
wire_miltertest "$script" MH_WIRE_SCENARIO=ipv6 >/dev/null
rec_expect "connect from an IPv6 client" rec <<'EOF'
rec connect host=v6.example.test family=6 addr=2001:db8::25 sa=2001:db8::25 port 12345
rec close
EOF

rec_mark
wire_miltertest "$script" MH_WIRE_SCENARIO=unspec >/dev/null
rec_expect "connect from an unknown address family" rec <<'EOF'
rec connect host=unknown.example.test family=none addr=NULL sa=NULL
rec close
EOF

# miltertest knows families 4, 6 and unknown only; Postfix sends "L" with
# the socket path for a local client.
rec_mark
rec_client <<'EOF'
negotiate	6	0x1ff	0x1fffff
connect	localhost	L	0	/var/spool/postfix/public/cleanup
quit
EOF
rec_expect "connect from a unix-domain client" rec <<'EOF'
rec connect host=localhost family=unix addr=/var/spool/postfix/public/cleanup sa=/var/spool/postfix/public/cleanup
rec close
EOF

# ---- one message through every stage -----------------------------------

# The body: 7 bytes, then 60000, then 10000 (70007 > 64 KB in all), of
# CRLF lines.
body_lines() {
	awk -v n="$1" -v tag="$2" 'BEGIN {
		line = sprintf("%s %076d", tag, 0)
		for (i = 0; i * 80 < n; i++) {
			s = substr(sprintf("%s %06d %s", tag, i, line), 1, 78)
			printf "%s\r\n", s
		}
	}' | head -c "$1"
}
printf 'Hello\r\n' >"$WIRE_TMP/chunk1"
body_lines 60000 two >"$WIRE_TMP/chunk2"
body_lines 10000 three >"$WIRE_TMP/chunk3"
sums=()
for n in 1 2 3; do
	sums+=("$(seq -f "$WIRE_TMP/chunk%g" 1 "$n" | xargs cat |
	    cksum | cut -d' ' -f1)")
done
[ "$(cat "$WIRE_TMP"/chunk[123] | wc -c)" -eq 70007 ] ||
    wire_error "the body chunks are not 70007 bytes"

rec_mark
wire_miltertest "$script" MH_WIRE_SCENARIO=transaction \
    MH_WIRE_DIR="$WIRE_TMP" >/dev/null
rec_expect "a whole message: every stage and its arguments" rec <<EOF
rec connect host=client.example.test family=4 addr=192.0.2.7 sa=192.0.2.7 port 12345
rec helo helo.example.test
rec unknown XFOO bar baz
rec envfrom <a@example.test> args=[SIZE=100|BODY=8BITMIME]
rec envrcpt <b@example.test> args=[NOTIFY=SUCCESS,FAILURE|ORCPT=rfc822;b@example.test]
rec envrcpt <c@example.test> args=[]
rec data
rec header From="A <a@example.test>"
rec header Subject="first line\\n\\tsecond line\\n third"
rec header X-Lead=" leading space"
rec header X-Empty=""
rec eoh
rec body len=7 total=7 cksum=${sums[0]}
rec body len=60000 total=60007 cksum=${sums[1]}
rec body len=10000 total=70007 cksum=${sums[2]}
rec eom total=70007 cksum=${sums[2]}
rec close
EOF

# ---- several messages on one connection --------------------------------

rec_mark
wire_miltertest "$script" MH_WIRE_SCENARIO=messages >/dev/null
# miltertest sends DATA by itself before the first header.
rec_message() {
	cat <<EOF
rec envfrom <m$1@example.test> args=[]
rec envrcpt <r@example.test> args=[]
rec data
rec header Subject="message $1"
rec eoh
rec body len=$(( ${#1} + 7 )) total=$(( ${#1} + 7 )) cksum=$(printf 'body %s\r\n' "$1" | cksum | cut -d' ' -f1)
EOF
}
rec_expect "several messages, RSET and a new HELO on one connection" rec <<EOF
rec connect host=client.example.test family=4 addr=192.0.2.8 sa=192.0.2.8 port 12345
rec helo first.example.test
$(rec_message 1)
rec eom total=8 cksum=$(printf 'body 1\r\n' | cksum | cut -d' ' -f1)
$(rec_message 2)
rec eom total=8 cksum=$(printf 'body 2\r\n' | cksum | cut -d' ' -f1)
$(rec_message 3)
rec abort
rec envfrom <m4@example.test> args=[]
rec envrcpt <r@example.test> args=[]
rec abort
rec helo second.example.test
$(rec_message 5)
rec eom total=8 cksum=$(printf 'body 5\r\n' | cksum | cut -d' ' -f1)
rec close
EOF

wire_stop
wire_exit
