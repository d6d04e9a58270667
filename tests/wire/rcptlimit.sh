#!/bin/bash
# rcptlimit.sh - wire test of the bundled rcptlimit plugin in the real
# daemon, over a unix socket.
#
#  1. milterhost -t refuses each bad rcptlimit setting, naming the key:
#     max missing, 0, not a number, over 100000; a 5xx reply, a reply
#     code that is not 4xx, an enhanced code of another class, a reply
#     without text; an unknown key.
#  2. "limit" (max = 2), driven by miltertest (rcptlimit.lua): two
#     recipients of a message pass, the third and fourth are tempfailed;
#     a second message on the connection starts counting again, and so
#     does one after an aborted message (RSET).  The log names the
#     recipients refused and the count.
#  3. The reply on the wire ("mtaclient script", which shows the text
#     miltertest cannot): the configured "452 4.5.3" and text, and the
#     default reply when none is configured.
#  4. "chain": a recipient an earlier instance refused does not count.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init rcptlimit
wire_need_miltertest
script=$here/rcptlimit.lua
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"

# ---- 1. configuration checks -------------------------------------------

wire_expect_refused no-max max "missing" <<'EOF'
[plugin:t]
module = rcptlimit
EOF
wire_expect_refused max-zero max "bad number '0'" <<'EOF'
[plugin:t]
module = rcptlimit
max = 0
EOF
wire_expect_refused max-word max "bad number 'ten'" <<'EOF'
[plugin:t]
module = rcptlimit
max = ten
EOF
wire_expect_refused max-sign max "bad number '-1'" <<'EOF'
[plugin:t]
module = rcptlimit
max = -1
EOF
wire_expect_refused max-big max "bad number '100001'" <<'EOF'
[plugin:t]
module = rcptlimit
max = 100001
EOF
wire_expect_refused reply-5xx reply "reply code 550 is permanent" <<'EOF'
[plugin:t]
module = rcptlimit
max = 10
reply = 550 5.5.3 Too many recipients
EOF
wire_expect_refused reply-2xx reply "reply code 250 is not 4xx" <<'EOF'
[plugin:t]
module = rcptlimit
max = 10
reply = 250 fine
EOF
wire_expect_refused reply-class reply \
    "bad enhanced status code '5.5.3': write 4.X.Y, X and Y of 1 to 3 digits, to go with 452" <<'EOF'
[plugin:t]
module = rcptlimit
max = 10
reply = 452 5.5.3 Too many recipients
EOF
wire_expect_refused reply-notext reply "the reply 452 needs a text after its code" <<'EOF'
[plugin:t]
module = rcptlimit
max = 10
reply = 452 4.5.3
EOF
wire_expect_refused reply-garbage reply "bad reply 'too many'" <<'EOF'
[plugin:t]
module = rcptlimit
max = 10
reply = too many
EOF
wire_expect_refused unknown-key limit "unknown key: rcptlimit takes max and reply" \
    <<'EOF'
[plugin:t]
module = rcptlimit
max = 10
limit = 20
EOF

# ---- 2. and 3. two recipients per message -----------------------------

limit=$(wire_config limit <<'EOF'
[plugin:limit]
module = rcptlimit
max = 2
reply = 452 4.5.3 Only two recipients at a time, please
EOF
) || exit 99

# client_rcpts OUT: one message with three recipients through
# "mtaclient script" (no "no reply" bits offered: every event is
# answered); its output goes to $WIRE_TMP/OUT.
client_rcpts() {
	printf '%s\n' 'negotiate	6	0x1ff	0x100f7f' \
	    'connect	client.example.test	4	25	192.0.2.7' \
	    'helo	client.example.test' 'mail	<s@example.test>' \
	    'rcpt	<r1@example.test>' 'rcpt	<r2@example.test>' \
	    'rcpt	<r3@example.test>' 'abort' 'quit' |
	    "$client" script "$WIRE_SOCKET" >"$WIRE_TMP/$1" 2>&1
}

# expect_rcpt_replies OUT NAME THIRD: the first two recipients continue,
# the third is answered THIRD (a reply line of "mtaclient script").
expect_rcpt_replies() {
	local got

	got=$(grep '^reply rcpt ' "$WIRE_TMP/$1")
	if [ "$got" = "reply rcpt c
reply rcpt c
$3" ]; then
		echo "ok: $2: the third recipient hears '${3#reply rcpt y }'"
	else
		wire_fail "$2: the recipients were answered otherwise"
		sed 's/^/    /' "$WIRE_TMP/$1"
	fi
}

if wire_start "$limit"; then
	wire_miltertest "$script" MH_WIRE_SCENARIO=limit
	if client_rcpts limit.out; then
		expect_rcpt_replies limit.out "configured reply" \
		    "reply rcpt y 452 4.5.3 Only two recipients at a time, please"
	else
		wire_fail "mtaclient script failed"
		sed 's/^/    /' "$WIRE_TMP/limit.out"
	fi
	wire_stop
	# The fourth recipient of the first message: the count stayed at
	# two, the recipients tempfailed do not count.
	if grep -qF '[limit] recipient <r4@example.test>: the message has 2 already (max 2): 452 4.5.3 Only two recipients at a time, please' \
	    "$WIRE_LOG"; then
		echo "ok: the log names the recipient tempfailed and the count"
	else
		wire_fail "no log line for <r4@example.test> with the count 2"
	fi
fi

default=$(wire_config default <<'EOF'
[plugin:limit]
module = rcptlimit
max = 2
EOF
) || exit 99
if wire_start "$default"; then
	if client_rcpts default.out; then
		expect_rcpt_replies default.out "default reply" \
		    "reply rcpt y 452 4.5.3 Too many recipients"
	else
		wire_fail "mtaclient script failed"
		sed 's/^/    /' "$WIRE_TMP/default.out"
	fi
	wire_stop
fi

# ---- 4. a recipient refused earlier in the chain ------------------------

chain=$(wire_config chain <<EOF
[plugin:refuse]
module = $abs_top_builddir/tests/plugins/.libs/scripted.so
do = envrcpt:<bad@x> reject

[plugin:limit]
module = rcptlimit
max = 2
EOF
) || exit 99
if wire_start "$chain"; then
	wire_miltertest "$script" MH_WIRE_SCENARIO=chain
	wire_stop
fi

wire_exit
