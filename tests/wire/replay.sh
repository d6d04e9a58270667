#!/bin/bash
# replay.sh - milterhost-replay and the daemon driven over the wire give
# the same decisions and the same changes.
#
# For each case, the same configuration file and message go to the
# running daemon through tests/wire/mtaclient (eml mode: Postfix's side
# of the protocol, its own reading of the message file) and through
# milterhost-replay; the "answer" and "change" lines of both (replay's
# without the message number and the instance) must be equal, and must
# hold the line the case is about, so that no case passes by hearing
# nothing.  The cases cover every decision at every stage where it is
# allowed, with single- and multi-line replies (the scripted test plugin,
# a scenario per connection by its host name), on_error reject, accept,
# continue and tempfail, dry_run, every kind of change (with and without
# HDR_LEADSPC), and the bundled plugins addheader, rcptlimit, bcc and
# rules.  For the recorder test plugins, what the plugins were handed
# (headers with their leading spaces, folds and tabs, body chunks and
# their checksums, macros per stage) is compared as well.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init replay
client=$abs_top_builddir/tests/wire/mtaclient
replay=$abs_top_builddir/src/milterhost-replay
plugins=$abs_top_builddir/tests/plugins/.libs
for f in "$client" "$replay" "$plugins/scripted.so" "$plugins/recorder.so"; do
	[ -e "$f" ] || wire_error "$f is missing: run make check"
done

# ---- the messages -----------------------------------------------------------

msg=$WIRE_TMP/msg.eml
{
	printf 'Return-Path: <sender@example.test>\n'
	printf 'From: Sender <sender@example.test>\n'
	printf 'To: b@example.test, c@example.test\n'
	printf 'Subject: hello there\n'
	printf 'X-Del: first\n'
	printf 'X-Folded: one\n\ttwo\n  three\n'
	printf 'X-Del: second\n'
	printf 'X-Originating-IP: 198.51.100.7\n'
	printf 'X-Tab:\tafter a tab\n'
	printf 'X-Empty:\n'
	printf 'X-Two-Spaces:  two\n'
	printf '\n'
	# 150,000 bytes of lines: three body chunks
	i=0
	while [ $i -lt 2000 ]; do
		printf 'line %04d of the body, to make it long enough........\n' $i
		i=$((i + 1))
	done
	printf 'please send a wire transfer\n'
	printf 'last line without an end'
} >"$msg"
# The same with CR LF line ends.
sed 's/$/\r/' "$msg" >"$WIRE_TMP/crlf.eml"
grep -v 'wire transfer' "$msg" >"$WIRE_TMP/clean.eml"
sed 's/^Subject: .*/Subject: you won the LOTTERY/' "$WIRE_TMP/clean.eml" \
    >"$WIRE_TMP/lottery.eml"
sed 's/^Subject: .*/Subject: held for review/' "$WIRE_TMP/clean.eml" \
    >"$WIRE_TMP/held.eml"

# ---- the comparison -----------------------------------------------------------

# compare NAME INI EXPECTED OPTION... FILE...: the same message (options
# -a -n -H -f -r -D, then the files, on one connection) through the daemon
# already running INI and through milterhost-replay -k -c INI; their
# answer and change lines must be equal and hold the line EXPECTED.
compare() {
	local name=$1 ini=$2 expected=$3 out=$WIRE_TMP/$1 rc
	shift 3

	if ! "$client" eml "$WIRE_SOCKET" "$@" >"$out.wire" 2>"$out.err"; then
		wire_fail "$name: mtaclient eml failed: $(cat "$out.err")"
		return 1
	fi
	"$replay" -k -c "$ini" "$@" >"$out.trace" 2>"$out.log"
	rc=$?
	if [ "$rc" -gt 7 ]; then
		wire_fail "$name: milterhost-replay exited $rc:"
		cat "$out.log"
		return 1
	fi
	sed -n -e 's/^\(answer\) [0-9]* /\1 /p' \
	    -e 's/^change [0-9]* \[[^]]*\] /change /p' \
	    "$out.trace" >"$out.replay"
	if ! diff "$out.wire" "$out.replay" >"$out.diff"; then
		wire_fail "$name: replay and the daemon differ (< wire, > replay)"
		cat "$out.diff"
		return 1
	fi
	if ! grep -qxF -- "$expected" "$out.wire"; then
		wire_fail "$name: no line '$expected' in:"
		cat "$out.wire"
		return 1
	fi
	echo "ok: $name: the same $(grep -c . "$out.wire") answers and" \
	    "changes, with: $expected"
}

# scen NAME EXPECTED [OPTION...]: compare the scenario NAME of the
# scripted plugins (the client's host name selects it) with msg.eml.
scen() {
	local name=$1 expected=$2
	shift 2
	compare "$name" "$ini" "$expected" -n "$name" -f '<sender@example.test>' \
	    -r '<b@example.test>' -r '<c@example.test>' -D i=4F2A1B3C0D "$@" \
	    "$msg"
}

# ---- decisions: the scripted plugin -----------------------------------------

ini=$(wire_config decisions <<EOF
[plugin:p1]
module = $plugins/scripted.so
do = @reject_connect connect reject 554 5.7.1 go away
do = @tempfail_helo helo tempfail 421 4.7.0 closing down
do = @reject_envfrom envfrom reject 550 5.7.1 sender refused
do = @tempfail_envfrom envfrom tempfail 451 4.7.1 try later
do = @discard_envfrom envfrom discard
do = @reject_rcpt envrcpt:<b@example.test> reject 550 5.1.1 no such user
do = @tempfail_rcpt envrcpt:<c@example.test> tempfail 452 4.5.3 too many
do = @no_rcpt envrcpt:<b@example.test> reject 550 5.1.1 nobody here
do = @no_rcpt envrcpt:<c@example.test> tempfail 450 4.2.0 mailbox busy
do = @discard_rcpt envrcpt:<c@example.test> discard
do = @reject_data data reject 554 5.7.1 no data today
do = @reject_header header:X-Folded reject 550 5.7.1 bad header
do = @discard_eoh eoh discard
do = @tempfail_body body:2 tempfail 451 4.3.0 body later
do = @reject_eom_ml eom reply_ml 550 5.7.1 first line|second line
do = @reject_eom_ml eom reject
do = @ml_no_xcode eom reply_ml 550 - one|two|three
do = @ml_no_xcode eom reject
do = @percent eom reject 550 5.7.1 100% sure, 50%% less
do = @tempfail_eom eom tempfail 451 4.7.1 not now
do = @discard_eom eom discard
do = @default_reply envfrom reject
do = @fail_tempfail envfrom fail
do = @bad_status eom return 99
do = @accept_all envfrom accept
do = @accept_all_rcpt envrcpt accept
do = @accept_all_conn connect accept
do = @skip_all body skip
do = @late_accept data accept

[plugin:p2]
module = $plugins/scripted.so
on_error = reject
do = @fail_reject envrcpt:<b@example.test> fail
do = @accept_all envfrom accept
do = @accept_all_rcpt envrcpt accept
do = @accept_all_conn connect accept
do = @skip_all body skip
do = @late_accept data accept

[plugin:p3]
module = $plugins/scripted.so
on_error = accept
do = @fail_accept data fail
do = @accept_all envfrom accept
do = @accept_all_rcpt envrcpt accept
do = @accept_all_conn connect accept
do = @skip_all body skip
do = @late_accept data accept

[plugin:p4]
module = $plugins/scripted.so
on_error = continue
do = @fail_continue eom fail
do = @fail_continue eom add_header X-After-Failure kept?
do = @accept_all envfrom accept
do = @accept_all_rcpt envrcpt accept
do = @accept_all_conn connect accept
do = @skip_all body skip
do = @late_accept data accept

[plugin:p5]
module = $plugins/scripted.so
dry_run = yes
do = @dry envfrom reject 550 5.7.1 dry
do = @dry eom add_header X-Dry 1
do = @accept_all envfrom accept
do = @accept_all_rcpt envrcpt accept
do = @accept_all_conn connect accept
do = @skip_all body skip
do = @late_accept data accept
EOF
) || exit 99

if wire_start "$ini"; then
	scen reject_connect 'answer connect reject "554 5.7.1 go away"'
	scen tempfail_helo 'answer helo tempfail "421 4.7.0 closing down"'
	scen accept_all_conn 'answer connect accept'
	scen reject_envfrom 'answer envfrom reject "550 5.7.1 sender refused"'
	scen tempfail_envfrom 'answer envfrom tempfail "451 4.7.1 try later"'
	scen discard_envfrom 'answer envfrom discard'
	scen accept_all 'answer envfrom accept'
	scen default_reply 'answer envfrom reject'
	scen reject_rcpt 'answer envrcpt reject "550 5.1.1 no such user"'
	scen tempfail_rcpt 'answer envrcpt tempfail "452 4.5.3 too many"'
	scen no_rcpt 'answer envrcpt tempfail "450 4.2.0 mailbox busy"'
	scen discard_rcpt 'answer envrcpt discard'
	scen accept_all_rcpt 'answer envrcpt accept'
	scen reject_data 'answer data reject "554 5.7.1 no data today"'
	scen late_accept 'answer data accept'
	scen reject_header 'answer eoh reject "550 5.7.1 bad header"'
	scen discard_eoh 'answer eoh discard'
	scen tempfail_body 'answer body tempfail "451 4.3.0 body later"'
	scen skip_all 'answer body skip'
	scen reject_eom_ml \
	    'answer eom reject "550-5.7.1 first line\r\n550 5.7.1 second line"'
	scen ml_no_xcode \
	    'answer eom reject "550-5.0.0 one\r\n550-5.0.0 two\r\n550 5.0.0 three"'
	scen percent 'answer eom reject "550 5.7.1 100% sure, 50%% less"'
	scen tempfail_eom 'answer eom tempfail "451 4.7.1 not now"'
	scen discard_eom 'answer eom discard'
	scen fail_tempfail 'answer envfrom tempfail'
	scen fail_reject 'answer envrcpt reject'
	scen fail_accept 'answer data continue'
	scen fail_continue 'answer eom continue'
	scen bad_status 'answer eom tempfail'
	scen dry 'answer eom continue'
	if grep -q 'X-Dry' "$WIRE_TMP/dry.replay"; then
		wire_fail "dry: a dry-run instance's change was sent"
	fi
	# Two messages on one connection: the second is filtered afresh.
	compare two_messages "$ini" 'answer envfrom reject "550 5.7.1 sender refused"' \
	    -n reject_envfrom -f '<s@example.test>' -r '<b@example.test>' \
	    "$msg" "$WIRE_TMP/clean.eml"
	[ "$(grep -c '^answer envfrom' "$WIRE_TMP/two_messages.wire")" = 2 ] ||
	    wire_fail "two_messages: not two messages on the connection"
	wire_stop
fi

# ---- every change, with and without HDR_LEADSPC ---------------------------------

changes='do = eom add_header X-A 1
do = eom insert_header 0 X-B v
do = eom change_header Subject 1 new subject
do = eom delete_header X-Del 2
do = eom delete_header X-Del 1
do = eom change_header X-Folded 1 folded\n\tagain
do = eom replace_body new body\r\nsecond line\r\n
do = eom add_rcpt <added@example.test>
do = eom add_rcpt_args <args@example.test> NOTIFY=NEVER ORCPT=rfc822;args@example.test
do = eom delete_rcpt <b@example.test>
do = eom change_from <new@example.test> RET=HDRS
do = eom quarantine held for test
do = envfrom add_header X-Early from envfrom'
for lead in plain leadspc; do
	extra=
	[ "$lead" = leadspc ] && extra="
[plugin:lead]
module = $plugins/recorder_lead.so"
	ini=$(wire_config "changes_$lead" <<EOF
[plugin:changes]
module = $plugins/scripted.so
$changes
$extra
EOF
) || exit 99
	if wire_start "$ini"; then
		compare "changes_$lead" "$ini" \
		    'change quarantine "held for test"' \
		    -f '<sender@example.test>' -r '<b@example.test>' \
		    -r '<c@example.test>' "$msg"
		n=$(grep -c '^change' "$WIRE_TMP/changes_$lead.wire")
		[ "$n" = 13 ] ||
		    wire_fail "changes_$lead: $n changes, not 13"
		# With HDR_LEADSPC the MTA adds no space: the engine does,
		# for a plugin that did not ask for the leading space.
		if [ "$lead" = leadspc ]; then
			grep -qxF 'change add_header X-A " 1"' \
			    "$WIRE_TMP/changes_$lead.wire" ||
			    wire_fail "changes_leadspc: the value lacks the" \
			    "space the MTA no longer adds"
		fi
		wire_stop
	fi
done

# ---- the bundled plugins ------------------------------------------------------

ini=$(wire_config bundled <<'EOF'
[plugin:limit]
module = rcptlimit
max = 2

[plugin:rules]
module = rules
rule = client_addr /^203\.0\.113\./ reject 554 5.7.1 Bad network
rule = helo /^bad\.example$/ tempfail Go away
rule = sender /^spam@/ reject 550 5.7.1 Spammer
rule = recipient /^nobody@/ reject Unknown user
rule = header:X-Originating-IP // delete
rule = header:Subject /lottery/i discard
rule = header:Subject /held/ quarantine suspicious
rule = body /wire transfer/ tempfail 451 4.7.1 Checking

[plugin:archive]
module = bcc
rcpt = archive@example.test
args = NOTIFY=NEVER

[plugin:tag]
module = addheader
header = X-Tag
value = %{j} %{i}

[plugin:top]
module = addheader
header = X-Top
value = on top
position = 0
EOF
) || exit 99
bundled() {
	local name=$1 expected=$2
	shift 2
	compare "$name" "$ini" "$expected" -D j=mx.example.test \
	    -D i=4F2A1B3C0D "$@"
}
if wire_start "$ini"; then
	bundled delivered 'change add_rcpt <archive@example.test> NOTIFY=NEVER' \
	    -f '<s@example.test>' -r '<a@example.test>' -r '<b@example.test>' \
	    -r '<c@example.test>' "$WIRE_TMP/clean.eml"
	grep -qxF 'answer envrcpt tempfail "452 4.5.3 Too many recipients"' \
	    "$WIRE_TMP/delivered.wire" ||
	    wire_fail "delivered: rcptlimit did not refuse the third recipient"
	grep -qxF 'change delete_header X-Originating-IP 1' \
	    "$WIRE_TMP/delivered.wire" ||
	    wire_fail "delivered: X-Originating-IP was not deleted"
	bundled bad_network 'answer connect reject "554 5.7.1 Bad network"' \
	    -a 203.0.113.9 -f '<s@example.test>' -r '<a@example.test>' "$msg"
	bundled bad_helo 'answer helo tempfail "451 4.7.1 Go away"' \
	    -H bad.example -f '<s@example.test>' -r '<a@example.test>' "$msg"
	bundled spammer 'answer envfrom reject "550 5.7.1 Spammer"' \
	    -f '<spam@example.test>' -r '<a@example.test>' "$msg"
	bundled nobody 'answer envrcpt reject "550 5.7.1 Unknown user"' \
	    -f '<s@example.test>' -r '<nobody@example.test>' \
	    -r '<a@example.test>' "$WIRE_TMP/clean.eml"
	bundled lottery 'answer body discard' \
	    -f '<s@example.test>' -r '<a@example.test>' "$WIRE_TMP/lottery.eml"
	bundled transfer 'answer body tempfail "451 4.7.1 Checking"' \
	    -f '<s@example.test>' -r '<a@example.test>' "$msg"
	bundled held 'change quarantine "suspicious"' \
	    -f '<s@example.test>' -r '<a@example.test>' "$WIRE_TMP/held.eml"
	wire_stop
fi

# ---- what the plugins are handed ------------------------------------------------

# rec_lines FILE: the recorder lines of a log, from the instance on.
rec_lines() {
	grep -o '\[rec[a-z]*\] rec .*' "$1"
}

ini=$(wire_config seen <<EOF
[plugin:rec]
module = $plugins/recorder.so

[plugin:reclead]
module = $plugins/recorder_lead.so

[plugin:recmac]
module = $plugins/recorder_macros.so
show = connect:j connect:{rec_conn} helo:{rec_helo} envfrom:i
  envfrom:{auth_authen} envfrom:{rec_from} envrcpt:i envrcpt:{rec_rcpt}
  data:{rec_data} eoh:{rec_eoh} eom:{rec_eom} eom:i eom:{auth_authen}
EOF
) || exit 99
for m in msg crlf; do
	if wire_start "$ini"; then
		before=$(wc -l <"$WIRE_LOG")
		compare "seen_$m" "$ini" 'answer eom continue' \
		    -n client.example.test -H helo.example.test \
		    -f '<s@example.test> SIZE=1000' \
		    -r '<a@example.test> NOTIFY=NEVER' -r '<b@example.test>' \
		    -D j=mx.example.test -D rec_conn=conn-value \
		    -D rec_helo=helo-value -D i=4F2A1B3C0D \
		    -D auth_authen=alice -D rec_from=from-value \
		    -D rec_rcpt=rcpt-value -D rec_data=data-value \
		    -D rec_eoh=eoh-value -D rec_eom=eom-value "$WIRE_TMP/$m.eml"
		wire_stop
		tail -n +"$((before + 1))" "$WIRE_LOG" >"$WIRE_TMP/seen_$m.daemon"
		rec_lines "$WIRE_TMP/seen_$m.daemon" >"$WIRE_TMP/seen_$m.rw"
		rec_lines "$WIRE_TMP/seen_$m.log" >"$WIRE_TMP/seen_$m.rr"
		n=$(grep -c . "$WIRE_TMP/seen_$m.rw")
		if ! diff "$WIRE_TMP/seen_$m.rw" "$WIRE_TMP/seen_$m.rr"; then
			wire_fail "seen_$m: the plugins were handed something else" \
			    "(< daemon, > replay)"
		elif [ "$n" -lt 60 ] ||
		    ! grep -q 'rec header X-Folded=" one\\n\\ttwo\\n  three"' \
		    "$WIRE_TMP/seen_$m.rw" ||
		    ! grep -q 'rec macro eom i=4F2A1B3C0D' "$WIRE_TMP/seen_$m.rw"
		then
			wire_fail "seen_$m: the recorders' lines lack what they" \
			    "should show:"
			cat "$WIRE_TMP/seen_$m.rw"
		else
			echo "ok: seen_$m: the plugins were handed the same" \
			    "$n things (headers, body chunks, macros)"
		fi
	fi
done
wire_exit
