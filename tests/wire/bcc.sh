#!/bin/bash
# bcc.sh - wire test of the bundled bcc plugin in the real daemon, over a
# unix socket.
#
#  1. milterhost -t refuses each bad bcc setting, naming the key: rcpt
#     missing, empty (<>) or not one address; args empty or not ESMTP
#     parameters; a bad sender or recipient pattern, with PCRE2's reason
#     and where in the pattern; match without both patterns or with a bad value; an
#     unknown key.  It accepts a good one, declaring "add recipients"
#     without args and "add recipients with arguments" with, and the
#     commented-out examples of conf/milterhost.ini once uncommented.
#  2. "filters", driven by miltertest (bcc.lua): five instances with
#     different patterns add their addresses to six messages on one
#     connection, exactly where sender and recipients call for it
#     (case-insensitively; match = all and any), not when the address is
#     already a recipient, and nothing is left of an aborted message.
#  3. "args" ("mtaclient script", which shows the ESMTP arguments
#     miltertest cannot): the recipient is added once, with its arguments
#     (SMFIR_ADDRCPT_PAR), though two recipients match; the instance asks
#     only for SMFIF_ADDRCPT_PAR; a message without a matching recipient
#     gets nothing.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init bcc
wire_need_miltertest
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"

# ---- 1. configuration checks -------------------------------------------

wire_expect_refused no-rcpt rcpt "missing" <<'EOF'
[plugin:t]
module = bcc
sender = x
EOF
wire_expect_refused null-rcpt rcpt "needs an address" <<'EOF'
[plugin:t]
module = bcc
rcpt = <>
EOF
wire_expect_refused two-rcpts rcpt "bad address 'a@example.test b@example.test'" <<'EOF'
[plugin:t]
module = bcc
rcpt = a@example.test b@example.test
EOF
wire_expect_refused open-bracket rcpt "bad address '<a@example.test'" <<'EOF'
[plugin:t]
module = bcc
rcpt = <a@example.test
EOF
wire_expect_refused bad-args args "bad ESMTP argument 'NOTIFY='" <<'EOF'
[plugin:t]
module = bcc
rcpt = a@example.test
args = ORCPT=rfc822;a@example.test NOTIFY=
EOF
wire_expect_refused empty-args args "is empty" <<'EOF'
[plugin:t]
module = bcc
rcpt = a@example.test
args =
EOF
wire_expect_refused bad-sender sender \
    "bad pattern /@(example.org/: missing closing parenthesis at its end" <<'EOF'
[plugin:t]
module = bcc
rcpt = a@example.test
sender = @(example.org
EOF
wire_expect_refused bad-recipient recipient "bad pattern /^*sales/: quantifier does not follow a repeatable item at character 2 of the pattern" <<'EOF'
[plugin:t]
module = bcc
rcpt = a@example.test
recipient = ^*sales
EOF
wire_expect_refused empty-sender sender "is empty" <<'EOF'
[plugin:t]
module = bcc
rcpt = a@example.test
sender =
EOF
wire_expect_refused lone-match match "needs both sender and recipient" <<'EOF'
[plugin:t]
module = bcc
rcpt = a@example.test
sender = @example\.org$
match = any
EOF
wire_expect_refused bad-match match "bad value 'either'" <<'EOF'
[plugin:t]
module = bcc
rcpt = a@example.test
sender = @example\.org$
recipient = ^sales
match = either
EOF
wire_expect_refused unknown-key to \
    "unknown key: bcc takes rcpt, args, sender, recipient and match" <<'EOF'
[plugin:t]
module = bcc
rcpt = a@example.test
to = b@example.test
EOF

# expect_actions NAME TEXT: milterhost -t accepts the config on stdin and
# shows the instance's actions as TEXT.
expect_actions() {
	local ini

	ini=$(wire_config "$1") || exit 99
	if ! wire_check_config "$ini"; then
		wire_fail "$1: milterhost -t refused it"
		sed 's/^/    /' "$WIRE_OUT"
	elif ! grep -qx "    actions: $2" "$WIRE_OUT"; then
		wire_fail "$1: the actions are not '$2'"
		sed 's/^/    /' "$WIRE_OUT"
	elif ! grep -qx "    observes: envfrom, envrcpt" "$WIRE_OUT"; then
		wire_fail "$1: -t does not say it observes at MAIL and RCPT"
		sed 's/^/    /' "$WIRE_OUT"
	else
		echo "ok: $1: accepted, actions: $2; observes: envfrom, envrcpt"
	fi
}

expect_actions plain "add recipients" <<'EOF'
[plugin:t]
module = bcc
rcpt = archive@example.test
EOF
expect_actions with-args "add recipients with arguments" <<'EOF'
[plugin:t]
module = bcc
rcpt = <archive@example.test>
args = NOTIFY=NEVER
EOF

# The commented-out examples of conf/milterhost.ini, taken in: both
# plugins' sections load.
examples=$(wire_conf_ini examples \
    '/^; ---- plugin instances/,$ s/^;\(\[plugin:\|[a-z_]* = \)/\1/') ||
    exit 99
if wire_check_config "$examples" &&
    grep -q '^  [0-9]*\. \[plugin:limit\] rcptlimit ' "$WIRE_OUT" &&
    grep -q '^  [0-9]*\. \[plugin:archive\] bcc ' "$WIRE_OUT"; then
	echo "ok: the examples in conf/milterhost.ini, uncommented, load"
else
	wire_fail "the examples in conf/milterhost.ini, uncommented, do not" \
	    "load"
	sed 's/^/    /' "$WIRE_OUT"
fi

# ---- 2. which messages get which copy ----------------------------------

filters=$(wire_config filters <<'EOF'
[plugin:all]
module = bcc
rcpt = all@archive.test

[plugin:from]
module = bcc
rcpt = <from@archive.test>
sender = @example\.org$

[plugin:to]
module = bcc
rcpt = to@archive.test
recipient = ^sales

[plugin:both]
module = bcc
rcpt = both@archive.test
sender = @example\.org$
recipient = ^sales

[plugin:either]
module = bcc
rcpt = either@archive.test
sender = @example\.org$
recipient = ^sales
match = any
EOF
) || exit 99
if wire_start "$filters"; then
	wire_miltertest "$here/bcc.lua"
	wire_stop
fi

# ---- 3. ESMTP arguments, one copy ----------------------------------------

args=$(wire_config args <<'EOF'
[plugin:journal]
module = bcc
rcpt = journal@archive.test
args = NOTIFY=NEVER   ORCPT=rfc822;journal@archive.test
recipient = @example\.net$
EOF
) || exit 99
if wire_start "$args"; then
	# No "no reply" bits offered: every event is answered.
	printf '%s\n' 'negotiate	6	0x1ff	0x100f7f' \
	    'connect	client.example.test	4	25	192.0.2.7' \
	    'helo	client.example.test' 'mail	<s@example.test>' \
	    'rcpt	<a@example.net>' 'rcpt	<b@EXAMPLE.NET>' 'eom' \
	    'mail	<s@example.test>' 'rcpt	<c@example.com>' 'eom' 'quit' |
	    "$client" script "$WIRE_SOCKET" >"$WIRE_TMP/args.out" 2>&1 ||
	    wire_fail "args: mtaclient script failed"
	want='mod 2 <journal@archive.test>|NOTIFY=NEVER ORCPT=rfc822;journal@archive.test|
reply eom c
reply eom c'
	got=$(grep -E '^(mod|reply eom)' "$WIRE_TMP/args.out")
	if [ "$got" = "$want" ]; then
		echo "ok: args: added once with its arguments to the" \
		    "message with matching recipients, not to the other"
	else
		wire_fail "args: the end-of-message answers differ"
		diff <(echo "$want") <(echo "$got") | sed 's/^/    /'
	fi
	if grep -q '^optneg .* actions=0x80 ' "$WIRE_TMP/args.out"; then
		echo "ok: args: milterhost asks for SMFIF_ADDRCPT_PAR only"
	else
		wire_fail "args: the negotiated actions are not 0x80"
		sed 's/^/    /' "$WIRE_TMP/args.out"
	fi
	wire_stop
fi

wire_exit
