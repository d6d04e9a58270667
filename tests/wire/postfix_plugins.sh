#!/bin/bash
# postfix_plugins.sh - the bundled rcptlimit and bcc plugins end to end
# through a real Postfix: a private instance on loopback
# (tests/postfix/instance.sh) takes mail from swaks, asks milterhost
# (over a unix socket) running rcptlimit (max = 2) and then bcc (rcpt
# archive@example.net, args NOTIFY=NEVER), and relays to smtp-sink, which
# keeps every transaction it receives, with an X-Rcpt-Args header per
# recipient (the address and its ESMTP arguments).
#
#  1. A message to three recipients: the client hears 250 for the first
#     two and "452 4.5.3 Too many recipients" for the third, and the
#     message is queued.  What reaches smtp-sink: one copy for each of
#     the two recipients and one for archive@example.net, passed on with
#     NOTIFY=NEVER (Postfix keeps the added recipient's DSN argument, and
#     adds an ORCPT as for every recipient), and nothing for the third
#     recipient.
#  2. The client sends the third recipient again, in a transaction of its
#     own: it is delivered, with a second archive copy.  So nothing was
#     lost: every recipient got the message exactly once.
#  3. Postfix's log: five recipients sent, nothing deferred, bounced or
#     warned about (no "ignoring ESMTP arguments").
#
# Skipped (exit 77, with the reason) when Postfix or swaks is not
# installed or the test does not run as root.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_postfix_init postfix_plugins

# Two loopback ports nothing listens on: the sink and the smtpd.
base=$(pf_free_ports 2)
port=$((base + 1))

pf_create "$pf" "$base" dump || wire_error "cannot make the Postfix instance"
pf_smtpd "$pf" "$port" "smtpd_milters=unix:$WIRE_SOCKET"
pf_start "$pf" || wire_error "the private Postfix instance did not start"
echo "ok: private Postfix $(postconf -d -h mail_version) runs in $pf"

ini=$(wire_config plugins <<'EOF'
socket_mode = 0666

[plugin:limit]
module = rcptlimit
max = 2

[plugin:archive]
module = bcc
rcpt = archive@example.net
args = NOTIFY=NEVER
EOF
) || exit 99
wire_start "$ini" || exit 1

# send NAME RCPTS: one message with swaks to the comma-separated RCPTS;
# the transcript is in $WIRE_TMP/NAME.swaks, the status is swaks's.
send() {
	swaks --server 127.0.0.1 --port "$port" \
	    --from "sender@milterhost.test" --to "$2" \
	    --header "Subject: $1" --body "body of $1" \
	    >"$WIRE_TMP/$1.swaks" 2>&1
}

# heard NAME PATTERN: the client's transcript has a server line matching
# the extended regular expression PATTERN (after swaks's "<- " or "<** ").
heard() {
	grep -Eq "^<(-|\*\*) +$2" "$WIRE_TMP/$1.swaks"
}

# rcpt_args ADDRESS: the X-Rcpt-Args lines smtp-sink wrote for ADDRESS,
# over every transaction it received, one a line.
rcpt_args() {
	cat "$pf"/sink/* 2>/dev/null | tr -d '\r' |
	    grep "^X-Rcpt-Args: <$1>" || :
}

# ---- 1. three recipients, two taken, the archive copy added -----------------

send three "r1@example.net,r2@example.net,r3@example.net"
if [ "$(grep -Ec '^<- +250 2\.1\.5 ' "$WIRE_TMP/three.swaks")" -eq 2 ] &&
    heard three '452 4\.5\.3 Too many recipients$' &&
    heard three '250 2\.0\.0 Ok: queued'; then
	echo "ok: three: the client heard 250 for two recipients, then" \
	    "'$(grep -Eo '452 4\.5\.3 .*' "$WIRE_TMP/three.swaks")'"
else
	wire_fail "three: the client did not hear 250, 250, 452 4.5.3" \
	    "and the message queued"
	sed 's/^/    /' "$WIRE_TMP/three.swaks"
fi
pf_wait_empty "$pf" 30 || wire_fail "three: Postfix's queue did not empty"

# expect_copies ADDRESS N [ARGS]: smtp-sink got N copies for ADDRESS, each
# with the ESMTP arguments ARGS: by default the ORCPT Postfix adds.
expect_copies() {
	local got want n

	got=$(rcpt_args "$1")
	n=$(printf '%s' "$got" | grep -c .)
	want="X-Rcpt-Args: <$1> ${3:-ORCPT=rfc822;$1}"
	if [ "$n" -ne "$2" ]; then
		wire_fail "$1: $n copies reached smtp-sink, expected $2"
	elif [ "$2" -gt 0 ] && [ "$(printf '%s\n' "$got" | sort -u)" != "$want" ]; then
		wire_fail "$1: smtp-sink got '$got', expected '$want'"
	else
		[ "$2" -eq 1 ] && n="1 copy" || n="$2 copies"
		echo "ok: $1: $n reached smtp-sink${3:+, with $3}"
		return 0
	fi
	cat "$pf"/sink/* 2>/dev/null | sed 's/^/    /'
	return 1
}

expect_copies r1@example.net 1
expect_copies r2@example.net 1
expect_copies r3@example.net 0
expect_copies archive@example.net 1 \
    'ORCPT=rfc822;archive@example.net NOTIFY=NEVER'

# ---- 2. the client sends the third recipient again ---------------------------

send again "r3@example.net"
if heard again '250 2\.1\.5 ' && heard again '250 2\.0\.0 Ok: queued'; then
	echo "ok: again: the third recipient taken in a transaction of its own"
else
	wire_fail "again: the third recipient was not taken"
	sed 's/^/    /' "$WIRE_TMP/again.swaks"
fi
pf_wait_empty "$pf" 30 || wire_fail "again: Postfix's queue did not empty"
expect_copies r1@example.net 1
expect_copies r2@example.net 1
expect_copies r3@example.net 1
expect_copies archive@example.net 2 \
    'ORCPT=rfc822;archive@example.net NOTIFY=NEVER'

wire_stop

# ---- 3. Postfix's log --------------------------------------------------------

pf_wait_count "$pf" ' status=sent ' 5 10
sent=$(pf_count "$pf" ' status=sent ')
bad=$(pf_trouble "$pf")
if [ "$sent" -eq 5 ] && [ "$bad" -eq 0 ]; then
	echo "ok: Postfix's log: 5 recipients sent, no deferral, bounce or" \
	    "warning"
else
	wire_fail "Postfix's log: $sent recipients sent (want 5), $bad" \
	    "deferred, bounced, fatal or warnings"
	sed 's/^/    /' "$pf/maillog"
fi
wire_exit
