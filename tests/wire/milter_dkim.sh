#!/bin/bash
# milter_dkim.sh - OpenDKIM, a real external milter, signing mail end to
# end, once beside milterhost and once inside its chain through the
# bundled "milter" plugin.  A private Postfix (tests/postfix/instance.sh)
# takes mail from swaks as sender@milterhost.test and relays it to
# smtp-sink, which keeps every message; opendkim (tests/wire/opendkim_lib.sh:
# its own key, configuration and log in the test's directory) signs the
# mail of milterhost.test from 127.0.0.1, relaxed/relaxed, with the
# header fields it signs by default plus X-Added ("SignHeaders *,+X-Added":
# by default OpenDKIM signs only the fields RFC 6376 says SHOULD be
# signed, no X- field); tests/wire/dkim_verify.py checks each delivered
# signature with the key itself, without DNS.  milterhost's addheader
# instance adds "X-Added: by milterhost for QUEUE-ID" at the end of the
# message.
#
# What order means for a signature: a signer covers the header fields
# present when it signs, and the message it signs must reach the verifier
# unchanged in what the signature covers.  A header added BEFORE the
# signer runs is in the signed message: the signature covers it (when the
# signer signs that field), and it verifies.  A header added AFTER the
# signer is not in h=: the signature still verifies (a verifier hashes
# only the fields h= names), but it vouches for nothing in that header.
# A body change after the signer would break the signature (the body
# hash); no plugin here changes the body.  So in a chain, the instances
# that add or change what should be signed come before the signing milter,
# and those that may change what it covers do not come after it.  Inside
# milterhost, a plugin sees the message as received; the milter plugin
# shows its milter the message as the instances before it left it
# (see_earlier_changes = yes, its default), as Postfix does for a milter
# listed after another; with see_earlier_changes = no the milter signs
# the message as received, as if it came first.
#
#  a. Direct: Postfix's smtpd_milters lists milterhost (addheader alone)
#     and then opendkim: Postfix hands each milter the message as the
#     earlier ones changed it, so opendkim sees X-Added.  The delivered
#     message carries one signature, which verifies and covers x-added.
#  b. Through milterhost: Postfix lists only milterhost, whose chain is
#     addheader and then the milter plugin talking to opendkim.  The
#     delivered message carries one signature, which verifies and covers
#     x-added.  With the order reversed (the milter plugin first, then
#     addheader), the signature verifies and does not cover x-added, and
#     X-Added is delivered all the same.  addheader first again, with
#     the milter instance's see_earlier_changes = no: the same as reversed.
#  c. a and b alike: the same d=, s= and c=, and the same h= set (b's
#     reversed order and see_earlier_changes = no: the same without
#     x-added).
#  d. OpenDKIM stopped while Postfix and milterhost run on: with the milter
#     instance's on_error = tempfail the client hears 4xx for the message
#     and nothing is queued or delivered; with on_error = continue the
#     message is delivered unsigned (with X-Added); each time, once
#     opendkim is started again, mail is signed again by the same
#     milterhost process, never restarted.
#  Then Postfix's log: exactly the messages above sent, nothing deferred,
#  bounced or warned about.
#
# Skipped (exit 77, with the reason) when Postfix or swaks is not installed,
# the test does not run as root, or OpenDKIM (opendkim, opendkim-genkey)
# or python3's dkim module is missing; CI installs them all.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99
. "$here/opendkim_lib.sh" || exit 99

wire_postfix_init milter_dkim
odk_need milter_dkim
[ -f "$WIRE_PLUGIN_DIR/milter.so" ] ||
    wire_error "$WIRE_PLUGIN_DIR/milter.so is missing: build the plugins first"
trap 'st=$?; odk_kill; pf_stop "$pf"; (exit $st); wire_cleanup' EXIT

# Loopback ports nothing listens on: the sink, the smtpd with milterhost
# and opendkim (a), the smtpd with milterhost alone (b, d), opendkim.
base=$(pf_free_ports 4)
port_direct=$((base + 1))
port_chain=$((base + 2))
port_dkim=$((base + 3))

odk_init "$WIRE_TMP/opendkim"
odk_genkey
odk_config "$port_dkim" "SignHeaders		*,+X-Added"
odk_start || exit 1
echo "ok: $(opendkim -V 2>&1 | sed -n "1s/^opendkim: //p") signs for $ODK_DOMAIN on" \
    "127.0.0.1:$port_dkim"

pf_create "$pf" "$base" dump || wire_error "cannot make the Postfix instance"
pf_smtpd "$pf" "$port_direct" \
    "smtpd_milters=unix:$WIRE_SOCKET,inet:127.0.0.1:$port_dkim"
pf_smtpd "$pf" "$port_chain" "smtpd_milters=unix:$WIRE_SOCKET"
pf_start "$pf" || wire_error "the private Postfix instance did not start"
echo "ok: private Postfix $(postconf -d -h mail_version) runs in $pf"

# The milterhost instances, as ini sections.
add_section='
[plugin:add]
module = addheader
header = X-Added
value = by milterhost for %{i}
'
# dkim_section ON_ERROR [LINE]: the milter instance, with LINE added.
dkim_section() {
	printf '\n[plugin:dkim]\nmodule = milter\nsocket = inet:%s@127.0.0.1\non_error = %s\n%s\n' \
	    "$port_dkim" "$1" "${2:-}"
}
# config NAME SECTIONS...: a milterhost configuration on the test socket.
config() {
	local name=$1
	shift
	{
		echo "socket_mode = 0666"
		printf '%s\n' "$@"
	} | wire_config "$name"
}

# send NAME PORT: one message with swaks, "Subject: NAME"; the transcript
# is in $WIRE_TMP/NAME.swaks, the status is swaks's.
sent=0
send() {
	swaks --server 127.0.0.1 --port "$2" \
	    --from "sender@$ODK_DOMAIN" --to "rcpt@example.net" \
	    --header "Subject: $1" --body "body of $1" \
	    >"$WIRE_TMP/$1.swaks" 2>&1
}

# heard NAME PATTERN: the client's transcript has a server line matching
# the extended regular expression PATTERN (after swaks's "<- " or "<** ").
heard() {
	grep -Eq "^<(-|\*\*) +$2" "$WIRE_TMP/$1.swaks"
}

# delivered NAME: print the smtp-sink file holding the message "Subject:
# NAME"; 1 unless there is exactly one.
delivered() {
	local files n

	files=$(grep -lxE "Subject: $1"$'\r?' "$pf"/sink/* 2>/dev/null)
	n=$(printf '%s' "$files" | grep -c .)
	[ "$n" -eq 1 ] || return 1
	printf '%s\n' "$files"
}

# deliver NAME PORT: send NAME, which must be queued and reach smtp-sink;
# then $msg is its file.  1 (having said why) if not.
deliver() {
	msg=
	send "$1" "$2"
	if ! heard "$1" '250 2\.0\.0 Ok: queued'; then
		wire_fail "$1: the message was not queued"
		sed 's/^/    /' "$WIRE_TMP/$1.swaks"
		return 1
	fi
	sent=$((sent + 1))
	pf_wait_empty "$pf" 30 ||
	    wire_fail "$1: Postfix's queue did not empty"
	if ! msg=$(delivered "$1"); then
		wire_fail "$1: not one message 'Subject: $1' reached smtp-sink"
		return 1
	fi
	return 0
}

# count_header FILE NAME: how many NAME: fields FILE's header has.
count_header() {
	sed -e 's/\r$//' -e '/^$/q' "$1" | grep -ci "^$2:" || :
}

# expect_signed NAME PORT [dkim_verify.py options]: NAME is delivered with
# one DKIM signature, which verifies (and covers as the options say) and
# one X-Added header; the verifier's output is in $WIRE_TMP/NAME.verify.
expect_signed() {
	local name=$1 port=$2 n
	shift 2

	deliver "$name" "$port" || return 1
	n=$(count_header "$msg" DKIM-Signature)
	if odk_verify "$msg" "$@" >"$WIRE_TMP/$name.verify" 2>&1 &&
	    [ "$n" -eq 1 ] && [ "$(count_header "$msg" X-Added)" -eq 1 ]; then
		echo "ok: $name: delivered with X-Added and one DKIM" \
		    "signature, which verifies${*:+ ($*)}:"
		sed 's/^/    /' "$WIRE_TMP/$name.verify"
		return 0
	fi
	wire_fail "$name: not delivered with one X-Added header and one" \
	    "DKIM signature that verifies${*:+ ($*)}"
	sed 's/^/    /' "$WIRE_TMP/$name.verify" "$msg"
	return 1
}

# sig_line NAME / sig_h NAME: the verified signature's d=, s= and c=, and
# its h= as a sorted list, one field a line.
sig_line() {
	sed -n 's/^signature 1 of 1: \(.*\): verifies$/\1/p' \
	    "$WIRE_TMP/$1.verify" 2>/dev/null
}
sig_h() {
	sed -n 's/^  h=//p' "$WIRE_TMP/$1.verify" 2>/dev/null | tr ':' '\n' |
	    sort
}

# ---- a. opendkim beside milterhost, after it in smtpd_milters --------------

ini=$(config direct "$add_section") || exit 99
wire_start "$ini" || exit 1
expect_signed direct "$port_direct" --covers X-Added
wire_stop

# ---- b. opendkim inside milterhost's chain ----------------------------------

ini=$(config chain "$add_section" "$(dkim_section tempfail)") || exit 99
wire_start "$ini" || exit 1
expect_signed chain "$port_chain" --covers X-Added
wire_stop

ini=$(config reversed "$(dkim_section tempfail)" "$add_section") || exit 99
wire_start "$ini" || exit 1
expect_signed reversed "$port_chain" --not-covers X-Added
wire_stop

ini=$(config unseen "$add_section" \
    "$(dkim_section tempfail 'see_earlier_changes = no')") || exit 99
wire_start "$ini" || exit 1
expect_signed unseen "$port_chain" --not-covers X-Added
wire_stop

# ---- c. the signatures of a and b alike ------------------------------------

line=$(sig_line direct)
if [ -n "$line" ] && [ "$line" = "$(sig_line chain)" ] &&
    [ "$line" = "$(sig_line reversed)" ] &&
    [ "$line" = "$(sig_line unseen)" ]; then
	echo "ok: direct, chain, reversed and unseen signatures alike: $line"
else
	wire_fail "the signatures differ: direct '$line', chain" \
	    "'$(sig_line chain)', reversed '$(sig_line reversed)', unseen" \
	    "'$(sig_line unseen)'"
fi
h_direct=$(sig_h direct)
h_less=$(printf '%s\n' "$h_direct" | grep -vx x-added)
if [ -n "$h_direct" ] && [ "$h_direct" = "$(sig_h chain)" ] &&
    [ "$h_less" = "$(sig_h reversed)" ] &&
    [ "$h_less" = "$(sig_h unseen)" ]; then
	echo "ok: the same h= set direct and through milterhost" \
	    "($(printf '%s' "$h_direct" | tr '\n' ' ')), reversed and" \
	    "unseen the same without x-added"
else
	wire_fail "h= sets differ: direct '$(sig_h direct | tr '\n' ' ')'," \
	    "chain '$(sig_h chain | tr '\n' ' ')', reversed" \
	    "'$(sig_h reversed | tr '\n' ' ')', unseen" \
	    "'$(sig_h unseen | tr '\n' ' ')'"
fi

# ---- d. opendkim stopped while mail flows ------------------------------------

# back_again NAME PID: opendkim started again, NAME is signed, and the
# milterhost serving it is still process PID.
back_again() {
	odk_start || return 1
	expect_signed "$1" "$port_chain" --covers X-Added
	if [ "$WIRE_PID" = "$2" ] && wire_alive; then
		echo "ok: $1: the same milterhost process ($2) throughout"
	else
		wire_fail "$1: milterhost is not the process $2 any more"
	fi
}

# on_error = tempfail: a 4xx, nothing queued or delivered.
ini=$(config tempfail "$add_section" "$(dkim_section tempfail)") || exit 99
wire_start "$ini" || exit 1
pid=$WIRE_PID
expect_signed tempfail-before "$port_chain" --covers X-Added
odk_stop || exit 1
echo "ok: opendkim stopped"
rejected=$(pf_count "$pf" 'milter-reject: .* 4[0-9][0-9] ')
send tempfail-down "$port_chain"
pf_wait_count "$pf" 'milter-reject: .* 4[0-9][0-9] ' $((rejected + 1)) 10
if heard tempfail-down '4[0-9][0-9][ -]' &&
    ! heard tempfail-down '250 2\.0\.0 Ok: queued' &&
    [ "$(pf_queued "$pf")" -eq 0 ] && ! delivered tempfail-down >/dev/null &&
    [ "$(pf_count "$pf" 'milter-reject: .* 4[0-9][0-9] ')" -gt "$rejected" ]; then
	echo "ok: tempfail-down: the client heard" \
	    "'$(grep -Em 1 '^<(-|\*\*) +4' "$WIRE_TMP/tempfail-down.swaks" |
	    sed -E 's/^<(-|\*\*) +//')'; Postfix logged" \
	    "'$(grep -Eo 'milter-reject: .* 4[0-9][0-9] .*' "$pf/maillog" |
	    tail -n 1)'; nothing queued or delivered"
else
	wire_fail "tempfail-down: the client did not hear 4xx, or the" \
	    "message was queued or delivered"
	sed 's/^/    /' "$WIRE_TMP/tempfail-down.swaks"
fi
back_again tempfail-after "$pid"
wire_stop

# on_error = continue: delivered unsigned.
ini=$(config continue "$add_section" "$(dkim_section continue)") || exit 99
wire_start "$ini" || exit 1
pid=$WIRE_PID
odk_stop || exit 1
echo "ok: opendkim stopped"
if deliver continue-down "$port_chain"; then
	if [ "$(count_header "$msg" DKIM-Signature)" -eq 0 ] &&
	    [ "$(count_header "$msg" X-Added)" -eq 1 ]; then
		echo "ok: continue-down: delivered unsigned, with X-Added"
	else
		wire_fail "continue-down: not delivered unsigned with one" \
		    "X-Added header"
		sed 's/^/    /' "$msg"
	fi
fi
back_again continue-after "$pid"
wire_stop

# ---- Postfix's log -------------------------------------------------------------

pf_wait_count "$pf" ' status=sent ' "$sent" 10
got=$(pf_count "$pf" ' status=sent ')
bad=$(pf_trouble "$pf")
if [ "$got" -eq "$sent" ] && [ "$bad" -eq 0 ]; then
	echo "ok: Postfix's log: $sent messages sent, no deferral, bounce" \
	    "or warning"
else
	wire_fail "Postfix's log: $got messages sent (want $sent), $bad" \
	    "deferred, bounced, fatal or warnings"
	sed 's/^/    /' "$pf/maillog"
fi
if [ "$WIRE_STATUS" -ne 0 ]; then
	odk_show_log
fi
wire_exit
