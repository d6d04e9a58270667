#!/bin/bash
# postfix_rules.sh - the bundled rules plugin end to end, through a real
# Postfix: a private instance on loopback (tests/postfix/instance.sh)
# takes mail from swaks, hands it to milterhost running the README's
# privacy-stripping rules and a few others, and relays it to smtp-sink.
#
#  1. A submitted message with two X-Originating-IP headers and a
#     User-Agent arrives without them, every other header and the body
#     intact, with the header a client_addr rule adds to each message.
#  2. A body rule refuses a phrase: the client hears the rule's 550 at
#     the end of DATA, nothing is queued or delivered.
#  3. A recipient rule refuses one recipient: the client hears the
#     rule's 550 for it, the message goes to the other one only.
#  4. Nothing is lost: Postfix's log shows the two messages sent and
#     nothing deferred or bounced.
#
# Skipped (exit 77, with the reason) when Postfix or swaks is missing or
# the test does not run as root.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_postfix_init postfix_rules

base=$(pf_free_ports 2)
port=$((base + 1))

pf_create "$pf" "$base" dump || wire_error "cannot make the Postfix instance"
pf_smtpd "$pf" "$port" "smtpd_milters=unix:$WIRE_SOCKET"
pf_start "$pf" || wire_error "the private Postfix instance did not start"

ini=$(wire_config rules <<'EOF'
socket_mode = 0666

[plugin:privacy]
module = rules
rule = header:X-Originating-IP // delete
rule = header:User-Agent // delete
rule = client_addr /^127\.0\.0\.1$/ addheader X-Submitted-Locally yes
rule = body /buy cheap pills/i reject 550 5.7.1 No pills here
rule = recipient /^nobody@/ reject 550 5.1.1 No such user here
EOF
) || exit 99
wire_start "$ini" || exit 1

# send NAME TO FILE: send FILE (a message) with swaks; the transcript is
# in $WIRE_TMP/NAME.swaks, the status is swaks's.
send() {
	swaks --server 127.0.0.1 --port "$port" --from sender@milterhost.test \
	    --to "$2" --data "$3" >"$WIRE_TMP/$1.swaks" 2>&1
}

# delivered RCPT: the files in which smtp-sink kept a message for RCPT.
delivered() {
	pf_wait_empty "$pf" 30 || return 1
	grep -l "^X-Rcpt-Args: <$1>" "$pf"/sink/* 2>/dev/null
}

# The headers of a message file: up to its first empty line.
headers_of() {
	sed '/^\r\{0,1\}$/q' "$1"
}

# The body of a message file: what follows its first empty line.
body_of() {
	sed '1,/^\r\{0,1\}$/d' "$1" | tr -d '\r'
}

# ---- 1. privacy stripping ---------------------------------------------------

msg=$WIRE_TMP/privacy.eml
cat >"$msg" <<'EOF'
From: Sender <sender@milterhost.test>
To: <rcpt-privacy@example.net>
Subject: privacy
X-Originating-IP: [10.1.2.3]
User-Agent: Foo Mail 1.0
X-Originating-IP: [10.4.5.6]
X-Keep: yes

first line of the body
X-Originating-IP: [10.7.8.9] is body text, not a header
last line
EOF
if ! send privacy rcpt-privacy@example.net "$msg"; then
	wire_fail "privacy: swaks failed"
	sed 's/^/    /' "$WIRE_TMP/privacy.swaks"
else
	f=$(delivered rcpt-privacy@example.net)
	if [ -z "$f" ]; then
		wire_fail "privacy: accepted but not delivered"
	elif headers_of "$f" | grep -qi '^X-Originating-IP:\|^User-Agent:'; then
		wire_fail "privacy: a header to strip was delivered"
		sed 's/^/    /' "$f"
	elif [ "$(headers_of "$f" | grep -c '^X-Keep: yes\|^Subject: privacy\|^From: Sender <sender@milterhost.test>\|^To: <rcpt-privacy@example.net>')" -ne 4 ]; then
		wire_fail "privacy: another header was lost"
		sed 's/^/    /' "$f"
	elif [ "$(body_of "$f")" != "$(body_of "$msg")" ]; then
		wire_fail "privacy: the body changed"
		diff <(body_of "$msg") <(body_of "$f") | sed 's/^/    /'
	elif ! headers_of "$f" | grep -q '^X-Submitted-Locally: yes'; then
		wire_fail "privacy: no X-Submitted-Locally header"
	else
		echo "ok: privacy: delivered without X-Originating-IP (both)" \
		    "and User-Agent, other headers and the body intact," \
		    "with X-Submitted-Locally"
	fi
fi

# ---- 2. a body rule -----------------------------------------------------------

msg=$WIRE_TMP/pills.eml
printf 'Subject: offer\n\nHello,\nBuy cheap PILLS today.\n' >"$msg"
if send pills rcpt-pills@example.net "$msg"; then
	wire_fail "pills: Postfix accepted the message"
elif ! grep -q '^<\*\* *550 5\.7\.1 No pills here' "$WIRE_TMP/pills.swaks"; then
	wire_fail "pills: the client did not hear the rule's reply"
	sed 's/^/    /' "$WIRE_TMP/pills.swaks"
else
	echo "ok: pills: $(grep -m1 '^<\*\* *550' "$WIRE_TMP/pills.swaks")"
fi
if [ -n "$(delivered rcpt-pills@example.net)" ]; then
	wire_fail "pills: the refused message was delivered"
fi

# ---- 3. a recipient rule ------------------------------------------------------

msg=$WIRE_TMP/two.eml
printf 'Subject: two recipients\n\nfor ok only\n' >"$msg"
send two nobody@example.net,rcpt-ok@example.net "$msg"
if ! grep -q '^<\*\* *550 5\.1\.1 No such user here' "$WIRE_TMP/two.swaks"; then
	wire_fail "two: the client did not hear the recipient rule's reply"
	sed 's/^/    /' "$WIRE_TMP/two.swaks"
elif ! grep -q '^<- *250 .*queued as' "$WIRE_TMP/two.swaks"; then
	wire_fail "two: the message was not accepted for the other recipient"
	sed 's/^/    /' "$WIRE_TMP/two.swaks"
else
	f=$(delivered rcpt-ok@example.net)
	if [ -z "$f" ]; then
		wire_fail "two: not delivered to rcpt-ok@example.net"
	elif grep -q '^X-Rcpt-Args: <nobody@example.net>' "$f"; then
		wire_fail "two: delivered to the refused recipient too"
	else
		echo "ok: two: nobody@ refused with the rule's 550 5.1.1," \
		    "delivered to rcpt-ok@ alone"
	fi
fi

# ---- 4. nothing lost ----------------------------------------------------------

pf_wait_empty "$pf" 30 || wire_fail "Postfix's queue did not empty"
sent=$(pf_count "$pf" ' status=sent ')
bad=$(pf_count "$pf" ' status=(deferred|bounced)|fatal:|panic:')
if [ "$sent" -ne 2 ] || [ "$bad" -ne 0 ]; then
	wire_fail "Postfix's log: $sent messages sent (want 2), $bad" \
	    "deferred, bounced or fatal"
	sed 's/^/    /' "$pf/maillog"
else
	echo "ok: Postfix's log: 2 messages sent, none deferred or bounced"
fi
wire_stop
wire_exit
