#!/bin/bash
# postfix_conditions.sh - instance conditions end to end through a real
# Postfix.  A private instance (tests/postfix/instance.sh) has two smtpd
# services, each naming itself to milters as the README says
# (milter_macro_daemon_name): "submission" and "mx".  milterhost, on a
# unix socket, runs the bundled plugins under conditions:
#
#   [sub]      addheader X-Submission                   if_daemon = submission
#   [archive]  bcc archive@example.net                  if_daemon = submission
#   [limit]    rcptlimit max = 1                        if_daemon = mx,
#                                                      if_rcpt = @example\.org$
#   [partner]  addheader X-Partner                      if_rcpt = @partner\.example$
#   [local]    addheader X-Local                        if_client = 127.0.0.0/8
#   [remote]   addheader X-Remote                       if_client = !127.0.0.0/8
#   [alice]    addheader X-Alice                        if_sender = ^alice@
#   [strip]    rules: delete X-Mailer                   if_daemon = submission
#   [spam]     rules: Subject "spam" scores 11,         if_daemon = mx
#              "meh" 3
#   with score_reject = 10 and its reply, and score_header X-Score.
#
#  1. Through submission, from alice: delivered with X-Submission,
#     X-Local and X-Alice, without X-Partner and X-Remote and without the
#     X-Mailer swaks adds, and the archive copy reached smtp-sink.
#  2. Through mx, from carol, to a@example.org, b@example.org and
#     c@partner.example: the limit counts only example.org recipients, so
#     the client hears 250, 452 4.5.3, 250; the message reaches a and c with
#     X-Partner and X-Local (c matched [partner]'s if_rcpt), and no
#     X-Submission, no archive copy.
#  3. The same recipients in another order (c, b, a): the same outcome,
#     b refused, a and c delivered with the same headers.
#  4. Through mx, to d@example.net only: X-Local alone, X-Mailer kept.
#  5. Scores: a message with the subject "spam" through mx is refused
#     with score_reject's reply (and milterhost logs the score's decision),
#     the same message through submission is delivered without a score
#     header (the rule's instance does not run there), and one with the
#     subject "meh" through mx is delivered with the score header.
#  6. Nothing lost: Postfix sent what the client was told it took, and
#     logged no warning.
#
# Skipped (77, with the reason) when Postfix or swaks is not installed or
# the test does not run as root.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_postfix_init postfix_conditions
base=$(pf_free_ports 3)
port_sub=$((base + 1))
port_mx=$((base + 2))

pf_create "$pf" "$base" dump || wire_error "cannot make the Postfix instance"
pf_smtpd "$pf" "$port_sub" "smtpd_milters=unix:$WIRE_SOCKET" \
    "milter_macro_daemon_name=submission"
pf_smtpd "$pf" "$port_mx" "smtpd_milters=unix:$WIRE_SOCKET" \
    "milter_macro_daemon_name=mx"
pf_start "$pf" || wire_error "the private Postfix instance did not start"
echo "ok: private Postfix $(postconf -d -h mail_version) runs in $pf"

ini=$(wire_config conditions <<'EOF'
socket_mode = 0666
score_reject = 10
score_reject_reply = 550 5.7.1 Scored as spam
score_header = X-Score

[plugin:sub]
module = addheader
header = X-Submission
value = yes
if_daemon = submission

[plugin:archive]
module = bcc
rcpt = archive@example.net
if_daemon = submission

[plugin:limit]
module = rcptlimit
max = 1
if_daemon = mx
if_rcpt = @example\.org$

[plugin:partner]
module = addheader
header = X-Partner
value = yes
if_rcpt = @partner\.example$

[plugin:local]
module = addheader
header = X-Local
value = yes
if_client = 127.0.0.0/8

[plugin:remote]
module = addheader
header = X-Remote
value = yes
if_client = !127.0.0.0/8

[plugin:alice]
module = addheader
header = X-Alice
value = yes
if_sender = ^alice@

[plugin:strip]
module = rules
if_daemon = submission
rule = header:X-Mailer /./ delete

[plugin:spam]
module = rules
if_daemon = mx
rule = header:Subject /^spam$/ score 11 the subject says so
rule = header:Subject /^meh$/ score 3 a dull subject
EOF
) || exit 99
wire_start "$ini" || exit 1

# send NAME PORT FROM RCPTS [SUBJECT]: one message with swaks (subject:
# NAME by default); its transcript is in $WIRE_TMP/NAME.swaks.
send() {
	swaks --server 127.0.0.1 --port "$2" --from "$3" --to "$4" \
	    --header "Subject: ${5:-$1}" --header "X-Test: $1" \
	    --body "body of $1" >"$WIRE_TMP/$1.swaks" 2>&1
}

# replies NAME: the codes the client heard for its RCPT commands, in order.
replies() {
	awk '/^ -> RCPT TO:/ { want = 1; next }
	    want && /^<(-|\*\*) / { print $2; want = 0 }' "$WIRE_TMP/$1.swaks" |
	    tr '\n' ' '
}

# copy NAME: the file in which smtp-sink kept the message NAME.
copy() {
	grep -l "^X-Test: $1\r\{0,1\}\$" "$pf"/sink/* 2>/dev/null
}

# expect_headers NAME "X-A X-B" "X-C": the copy of NAME has the first
# headers and none of the second.
expect_headers() {
	local f h missing= extra=

	f=$(copy "$1")
	if [ -z "$f" ]; then
		wire_fail "$1: nothing reached smtp-sink"
		return 1
	fi
	for h in $2; do
		grep -q "^$h: " "$f" || missing="$missing $h"
	done
	for h in $3; do
		grep -q "^$h: " "$f" && extra="$extra $h"
	done
	if [ -n "$missing$extra" ]; then
		wire_fail "$1: missing:${missing:- none}, unwanted:${extra:- none}"
		sed 's/^/    /' "$f"
		return 1
	fi
	echo "ok: $1: delivered with $2, without $3"
}

# expect_rcpts NAME "a@x b@y": the recipients smtp-sink got for NAME.
expect_rcpts() {
	local got

	got=$(copy "$1" | xargs cat 2>/dev/null | tr -d '\r' |
	    sed -n 's/^X-Rcpt-Args: <\([^>]*\)>.*/\1/p' | sort | tr '\n' ' ')
	if [ "$got" = "$2 " ]; then
		echo "ok: $1: smtp-sink got the recipients $2"
	else
		wire_fail "$1: smtp-sink got the recipients '$got', want '$2 '"
	fi
}

# ---- 1. submission, from alice ----------------------------------------------

send sub1 "$port_sub" alice@milterhost.test bob@example.net
pf_wait_empty "$pf" 30 || wire_fail "sub1: Postfix's queue did not empty"
expect_headers sub1 "X-Submission X-Local X-Alice" \
    "X-Partner X-Remote X-Mailer X-Score"
expect_rcpts sub1 "archive@example.net bob@example.net"

# ---- 2. mx, three recipients ------------------------------------------------

send mx1 "$port_mx" carol@milterhost.test \
    a@example.org,b@example.org,c@partner.example
if [ "$(replies mx1)" = "250 452 250 " ] &&
    grep -q '452 4\.5\.3 Too many recipients' "$WIRE_TMP/mx1.swaks"; then
	echo "ok: mx1: the client heard 250 452 250: only example.org" \
	    "recipients count for [limit]"
else
	wire_fail "mx1: RCPT replies '$(replies mx1)', want '250 452 250 '"
	sed 's/^/    /' "$WIRE_TMP/mx1.swaks"
fi
pf_wait_empty "$pf" 30 || wire_fail "mx1: Postfix's queue did not empty"
expect_headers mx1 "X-Partner X-Local" "X-Submission X-Alice X-Remote"
expect_rcpts mx1 "a@example.org c@partner.example"

# ---- 3. the same recipients in another order -------------------------------

send mx2 "$port_mx" carol@milterhost.test \
    c@partner.example,b@example.org,a@example.org
if [ "$(replies mx2)" = "250 250 452 " ]; then
	echo "ok: mx2: in another order the second example.org recipient is" \
	    "the one refused"
else
	wire_fail "mx2: RCPT replies '$(replies mx2)', want '250 250 452 '"
	sed 's/^/    /' "$WIRE_TMP/mx2.swaks"
fi
pf_wait_empty "$pf" 30 || wire_fail "mx2: Postfix's queue did not empty"
expect_headers mx2 "X-Partner X-Local" "X-Submission X-Alice X-Remote"
expect_rcpts mx2 "b@example.org c@partner.example"

# ---- 4. mx, no condition but the client's -----------------------------------

send mx3 "$port_mx" carol@milterhost.test d@example.net
pf_wait_empty "$pf" 30 || wire_fail "mx3: Postfix's queue did not empty"
expect_headers mx3 "X-Local X-Mailer" \
    "X-Submission X-Alice X-Partner X-Remote X-Score"
expect_rcpts mx3 "d@example.net"

# ---- 5. scores ------------------------------------------------------------

send spam-mx "$port_mx" carol@milterhost.test e@example.net spam
if grep -Eq '^<\*\* +550 5\.7\.1 Scored as spam' "$WIRE_TMP/spam-mx.swaks" &&
    grep -q "score 11 >= 10: \[spam\] 11: rejected" "$WIRE_LOG"; then
	echo "ok: spam-mx: the client heard '550 5.7.1 Scored as spam', the" \
	    "log says 'score 11 >= 10: [spam] 11: rejected'"
else
	wire_fail "spam-mx: not refused by the score"
	sed 's/^/    /' "$WIRE_TMP/spam-mx.swaks"
fi
send spam-sub "$port_sub" carol@milterhost.test e@example.net spam
pf_wait_empty "$pf" 30 || wire_fail "spam-sub: Postfix's queue did not empty"
expect_headers spam-sub "X-Submission" "X-Score X-Mailer"
[ -z "$(copy spam-mx)" ] || wire_fail "spam-mx: it reached smtp-sink"
send meh-mx "$port_mx" carol@milterhost.test e@example.net meh
pf_wait_empty "$pf" 30 || wire_fail "meh-mx: Postfix's queue did not empty"
if expect_headers meh-mx "X-Score X-Local" "X-Submission"; then
	score=$(sed -n '/^X-Score:/,/^[^ \t]/p' "$(copy meh-mx)" | sed '$d' |
	    tr -d '\r' | tr '\n\t' '  ' | tr -s ' ' | sed 's/ $//')
	if [ "$score" = "X-Score: total 3; [spam] 3 a dull subject" ]; then
		echo "ok: meh-mx: $score"
	else
		wire_fail "meh-mx: the score header is '$score'"
	fi
fi

wire_stop

# ---- 6. nothing lost -------------------------------------------------------

# 7 recipients above, spam-sub's and its archive copy, meh-mx's.
pf_wait_count "$pf" ' status=sent ' 10 10
sent=$(pf_count "$pf" ' status=sent ')
bad=$(pf_trouble "$pf")
if [ "$sent" -eq 10 ] && [ "$bad" -eq 0 ]; then
	echo "ok: Postfix's log: 10 recipients sent, no deferral, bounce or" \
	    "warning"
else
	wire_fail "Postfix's log: $sent recipients sent (want 10), $bad" \
	    "deferred, bounced, fatal or warnings"
	sed 's/^/    /' "$pf/maillog"
fi
wire_exit
