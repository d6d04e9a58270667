#!/bin/bash
# replay_cli.sh - milterhost-replay's command line, trace and output:
#
#  - exit statuses: 0 accepted, 1 rejected, 2 tempfailed, 4 discarded,
#    their sum over several messages, 8 for a message not replayed, 64
#    for a usage error, 78 for a configuration that does not load;
#  - -o: every kind of header change and the body replacement applied as
#    the MTA applies them, in an LF file and in a CR LF one;
#  - the envelope taken from the headers (Return-Path, From, To, Cc,
#    Bcc: display names, comments, groups, duplicates), an mbox "From "
#    line skipped;
#  - -k (one connection), -A (an aborted transaction first: rcptlimit
#    counts afresh), Maildir and directory arguments, -q, -o -;
#  - -x (what the MTA does not offer), -D, -u and the macros of each
#    stage as Postfix sends them (the queue id only after a recipient).
#  - stages an instance declares unused (ABI 1.3): not called, not
#    traced, not asked for when no other instance takes them.
#  - the key-value store (ABI 1.4): a memory store of the replay's own,
#    shared by the messages of one run, empty at the next.
#
# Exit statuses follow automake: 0 pass, 1 fail, 99 hard error.

if [ -z "${abs_top_builddir:-}" ]; then
	echo "ERROR: abs_top_builddir must be set (run the test with make" \
	    "check)" >&2
	exit 99
fi
replay=$abs_top_builddir/src/milterhost-replay
plugins=$abs_top_builddir/tests/plugins/.libs
for f in "$replay" "$plugins/scripted.so" "$plugins/recorder.so"; do
	if [ ! -e "$f" ]; then
		echo "ERROR: $f is missing: run make check" >&2
		exit 99
	fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/milterhost-replay-cli.XXXXXX") || exit 99
trap '[ "${KEEP:-}" = yes ] || rm -rf "$tmp"' EXIT
status=0 failures=0
fail() {
	echo "FAIL: $*"
	status=1
	failures=$((failures + 1))
}
# ok TEXT: print "ok: TEXT" if no check failed since the last call.
section_failures=0
ok() {
	[ "$failures" -eq "$section_failures" ] && echo "ok: $*"
	section_failures=$failures
}

# config NAME: $tmp/NAME.ini from stdin, after a [milterhost] section.
config() {
	{
		echo "[milterhost]"
		echo "plugin_dir = $abs_top_builddir/plugins/.libs"
		echo "strict_modes = no"
		echo "log_level = notice"
		echo
		cat
	} >"$tmp/$1.ini"
}

# run NAME WANT ARG...: milterhost-replay ARG... must exit WANT; its
# output in $tmp/NAME.out, its standard error in $tmp/NAME.err.
run() {
	local name=$1 want=$2 rc
	shift 2

	"$replay" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		return 0
	fi
	fail "$name: exit status $rc, not $want"
	sed 's/^/    /' "$tmp/$name.out" "$tmp/$name.err" | tail -20
	return 1
}

# has NAME LINE: the output of run NAME holds LINE.
has() {
	if grep -qxF -- "$2" "$tmp/$1.out"; then
		return 0
	fi
	fail "$1: no line '$2' in its output"
	sed 's/^/    /' "$tmp/$1.out" | tail -20
	return 1
}

printf 'From: Sender <s@example.test>\nTo: r@example.test\nSubject: hi\n\nbody\n' \
    >"$tmp/plain.eml"

# ---- exit statuses -------------------------------------------------------------

config decide <<EOF
[plugin:p]
module = $plugins/scripted.so
do = envfrom:<reject@example.test> reject 550 5.7.1 no
do = envfrom:<tempfail@example.test> tempfail 451 4.7.1 later
do = envfrom:<discard@example.test> discard
do = header:Subject reject 554 5.7.1 bad subject
EOF
printf 'From: s@example.test\nTo: r@example.test\n\nbody\n' >"$tmp/nosubject.eml"
c="-c $tmp/decide.ini"
run accept 0 $c "$tmp/nosubject.eml" &&
    has accept 'result 1 accepted at eom changes=0 rcpts=1/1'
run reject 1 $c -f reject@example.test "$tmp/nosubject.eml" &&
    has reject 'result 1 rejected at envfrom by [p] "550 5.7.1 no" rcpts=0/0'
run tempfail 2 $c -f tempfail@example.test "$tmp/nosubject.eml" &&
    has tempfail \
    'result 1 tempfailed at envfrom by [p] "451 4.7.1 later" rcpts=0/0'
run discard 4 $c -f discard@example.test "$tmp/nosubject.eml" &&
    has discard 'result 1 discarded at envfrom by [p] rcpts=0/0'
run header 1 $c "$tmp/plain.eml" &&
    has header 'result 1 rejected at eoh by [p] "554 5.7.1 bad subject" rcpts=1/1'
sed '1i\
Return-Path: <tempfail@example.test>' "$tmp/nosubject.eml" >"$tmp/later.eml"
run several 3 $c -q "$tmp/later.eml" "$tmp/plain.eml" &&
    grep -q '^total 2 accepted=0 rejected=1 tempfailed=1 discarded=0 failed=0' \
    "$tmp/several.out" || fail "several: not the expected total line"
run sum 1 $c -q "$tmp/nosubject.eml" "$tmp/plain.eml" "$tmp/nosubject.eml" &&
    grep -q '^total 3 accepted=2 rejected=1 tempfailed=0 discarded=0 failed=0 peak_rss=[0-9]*kB$' \
    "$tmp/sum.out" || fail "sum: not the expected total line"
run missing 9 $c -q "$tmp/plain.eml" "$tmp/no-such.eml" &&
    has missing 'result 2 failed'
printf 'From: s@example.test\nSubject: x\n\nbody\n' >"$tmp/norcpt.eml"
run norcpt 8 $c "$tmp/norcpt.eml" &&
    grep -q 'no recipient' "$tmp/norcpt.err" ||
    fail "norcpt: no 'no recipient' on standard error"
run usage_option 64 $c -Z "$tmp/plain.eml"
run usage_feature 64 $c -x frobnicate "$tmp/plain.eml"
run usage_stage 64 $c -A eom "$tmp/plain.eml"
run usage_client 64 $c -a 999.1.1.1 "$tmp/plain.eml"
run usage_none 64 $c
run usage_out 64 $c -o "$tmp/plain.out" "$tmp/plain.eml" "$tmp/plain.eml"
run config_missing 78 -c "$tmp/none.ini" "$tmp/plain.eml"
config badkey <<EOF
[plugin:limit]
module = rcptlimit
max = lots
EOF
run config_bad 78 -c "$tmp/badkey.ini" "$tmp/plain.eml" &&
    grep -q "badkey.ini:[0-9]*: \[plugin:limit\] max" "$tmp/config_bad.err" ||
    fail "config_bad: the error does not name the file, line and key"
# A recipient refused by an instance, the message by the score: the
# result names the score, not the instance.
cat >"$tmp/score.ini" <<EOF
[milterhost]
plugin_dir = $abs_top_builddir/plugins/.libs
strict_modes = no
log_level = err
score_reject = 5
score_reject_reply = 550 5.7.1 Too spammy

[plugin:rules]
module = rules
rule = recipient /^carol@/ reject Nope
rule = header:Subject /hi/ score 6 greeting
EOF
run score 1 -q -c "$tmp/score.ini" -r carol@example.test -r r@example.test \
    "$tmp/plain.eml" &&
    has score 'result 1 rejected at eom by score "6 >= 5: [rules] 6" "550 5.7.1 Too spammy" rcpts=1/2'
run score_rcpt 1 -q -c "$tmp/score.ini" -r carol@example.test \
    "$tmp/plain.eml" &&
    has score_rcpt 'result 1 rejected at envrcpt (no recipient taken) by [rules] "550 5.7.1 Nope" rcpts=0/1'
ok "exit statuses 0, 1, 2, 4, their sum, 8, 9, 64 and 78; who decided"

# ---- -o: every header change and the body ----------------------------------------

config changes <<EOF
[plugin:changes]
module = $plugins/scripted.so
do = eom add_header X-A 1
do = eom insert_header 0 X-B v
do = eom insert_header 999 X-End end
do = eom change_header Subject 1 new subject
do = eom delete_header X-Del 2
do = eom delete_header X-Del 1
do = eom change_header X-Folded 1 folded\n\tagain
do = eom change_header X-Missing 1 added by a change
do = eom delete_header X-Nothing 1
do = eom replace_body new body\r\nsecond line\r\nno end
do = eom add_rcpt <added@example.test>
do = eom add_rcpt_args <args@example.test> NOTIFY=NEVER
do = eom delete_rcpt <B@example.test>
do = eom change_from <new@example.test> RET=HDRS
do = eom quarantine held for test
EOF
printf 'From: s@example.test\nTo: b@example.test, c@example.test\nX-Del: one\nSubject: old\nX-Folded: a\n\tb\nX-Del: two\nX-Keep:  two spaces\n\nold body\n' \
    >"$tmp/changes.eml"
printf 'X-B: v\nFrom: s@example.test\nTo: b@example.test, c@example.test\nSubject: new subject\nX-Folded: folded\n\tagain\nX-Keep:  two spaces\nX-A: 1\nX-End: end\nX-Missing: added by a change\n\nnew body\nsecond line\nno end\n' \
    >"$tmp/changes.want"
for eol in lf crlf; do
	in=$tmp/changes.eml want=$tmp/changes.want
	if [ $eol = crlf ]; then
		sed 's/$/\r/' "$tmp/changes.eml" >"$tmp/changes_crlf.eml"
		sed 's/$/\r/' "$tmp/changes.want" >"$tmp/changes_crlf.want"
		in=$tmp/changes_crlf.eml want=$tmp/changes_crlf.want
	fi
	run "changes_$eol" 0 -c "$tmp/changes.ini" -o "$tmp/changes_$eol.got" \
	    "$in" || continue
	if cmp -s "$want" "$tmp/changes_$eol.got"; then
		echo "ok: -o applies every header change and the body ($eol)"
	else
		fail "-o ($eol): the delivered message differs (< wanted)"
		diff "$want" "$tmp/changes_$eol.got"
	fi
done
has changes_lf 'envelope 1 from <new@example.test> RET=HDRS'
has changes_lf 'envelope 1 to <c@example.test>'
has changes_lf 'envelope 1 to <added@example.test>'
has changes_lf 'envelope 1 to <args@example.test> NOTIFY=NEVER'
has changes_lf 'envelope 1 held "held for test"'
grep -q '^envelope 1 to <b@example.test>' "$tmp/changes_lf.out" &&
    fail "changes: the deleted recipient is still in the envelope"
has changes_lf 'change 1 [changes] replace_body 29 bytes "new body\r\nsecond line\r\nno end"'
grep -Eq '^call 1 eom \[changes\] continue changes=15 [0-9]+us$' \
    "$tmp/changes_lf.out" || fail "changes: no call line with 15 changes"
run rejected_out 1 -c "$tmp/decide.ini" -o "$tmp/never.eml" "$tmp/plain.eml"
[ -e "$tmp/never.eml" ] && fail "-o wrote a rejected message"
run stdout_out 0 -c "$tmp/changes.ini" -o - "$tmp/changes.eml" &&
    cmp -s "$tmp/changes.want" "$tmp/stdout_out.out" &&
    grep -q '^result 1 accepted' "$tmp/stdout_out.err" ||
    fail "-o -: the message is not on stdout with the trace on stderr"

# ---- the envelope from the headers ---------------------------------------------

config pass <<EOF
[plugin:rec]
module = $plugins/recorder.so
EOF

printf 'From MAILER-DAEMON Thu Jan  1 00:00:00 2026\nReturn-Path: <bounce@example.test>\nFrom: "Doe, John" <john@example.test>\nTo: Team: a@example.test, "B (b)" <b@example.test>;, c@example.test (comment)\nCc: <A@example.test>, d@example.test\nBcc: e@example.test\nSubject: x\n\nbody\n' \
    >"$tmp/envelope.eml"
run envelope 0 -c "$tmp/pass.ini" -f '' -r x@example.test "$tmp/plain.eml" &&
    has envelope 'event 1 envfrom <>'
run headers 0 -c "$tmp/pass.ini" "$tmp/envelope.eml" &&
    has headers 'message 1 '"$tmp"'/envelope.eml headers=6 from <bounce@example.test> to <a@example.test> to <b@example.test> to <c@example.test> to <d@example.test> to <e@example.test>'
sed '/^Return-Path/d' "$tmp/envelope.eml" >"$tmp/noreturn.eml"
run from_header 0 -c "$tmp/pass.ini" "$tmp/noreturn.eml" &&
    has from_header 'event 1 envfrom <john@example.test>'
run args 0 -c "$tmp/pass.ini" -f 's@example.test SIZE=10' \
    -r '<r@example.test> NOTIFY=NEVER' "$tmp/plain.eml" &&
    has args 'event 1 envfrom <s@example.test> SIZE=10' &&
    has args 'event 1 envrcpt <r@example.test> NOTIFY=NEVER'

ok "-o's files and the envelope from the headers"

# ---- connections, aborts, inputs ---------------------------------------------------

config limit <<EOF
[plugin:rec]
module = $plugins/recorder.so

[plugin:limit]
module = rcptlimit
max = 1
EOF
run one_conn 0 -k -c "$tmp/limit.ini" "$tmp/plain.eml" "$tmp/plain.eml" &&
    [ "$(grep -c '^event [0-9] connect' "$tmp/one_conn.out")" = 1 ] &&
    [ "$(grep -c '^event [0-9] close' "$tmp/one_conn.out")" = 1 ] ||
    fail "-k: not one connection for both messages"
run two_conns 0 -c "$tmp/limit.ini" "$tmp/plain.eml" "$tmp/plain.eml" &&
    [ "$(grep -c '^event [0-9] connect' "$tmp/two_conns.out")" = 2 ] ||
    fail "without -k: not a connection per message"
run aborted 0 -A envrcpt -c "$tmp/limit.ini" "$tmp/plain.eml" &&
    has aborted 'partial 1 up to envrcpt, then abort' &&
    grep -A1 -m1 '^event 1 abort' "$tmp/aborted.out" |
    grep -Eq '^call 1 abort \[rec\] [0-9]+us$' ||
    fail "-A: no abort call after the partial transaction"
has aborted 'result 1 accepted at eom changes=0 rcpts=1/1'
[ "$(grep -c '^answer 1 envrcpt continue' "$tmp/aborted.out")" = 2 ] ||
    fail "-A: rcptlimit did not count afresh after the abort"
mkdir -p "$tmp/md/new" "$tmp/md/cur" "$tmp/md/tmp" "$tmp/dir"
cp "$tmp/plain.eml" "$tmp/md/cur/1.a"
cp "$tmp/nosubject.eml" "$tmp/md/new/2.b"
cp "$tmp/plain.eml" "$tmp/md/tmp/3.c"
cp "$tmp/plain.eml" "$tmp/dir/b.eml"
cp "$tmp/nosubject.eml" "$tmp/dir/a.eml"
touch "$tmp/dir/.hidden"
run maildir 1 -c "$tmp/decide.ini" "$tmp/md" &&
    has maildir "message 1 $tmp/md/new/2.b headers=2 from <s@example.test> to <r@example.test>" &&
    has maildir "message 2 $tmp/md/cur/1.a headers=3 from <s@example.test> to <r@example.test>"
grep -q "/md/tmp/" "$tmp/maildir.out" && fail "maildir: tmp/ was read"
run directory 1 -c "$tmp/decide.ini" -q "$tmp/dir" &&
    has directory 'result 1 accepted at eom changes=0 rcpts=1/1' &&
    has directory 'result 2 rejected at eoh by [p] "554 5.7.1 bad subject" rcpts=1/1'
[ "$(grep -c . "$tmp/directory.out")" = 3 ] ||
    fail "-q: more than the result and total lines"
mkdir "$tmp/delivered"
run out_dir 0 -c "$tmp/changes.ini" -q -o "$tmp/delivered" "$tmp/dir" &&
    grep -q '^X-A: 1$' "$tmp/delivered/a.eml" &&
    grep -q '^X-A: 1$' "$tmp/delivered/b.eml" &&
    [ "$(ls "$tmp/delivered" | wc -l)" = 2 ] ||
    fail "-o DIR: not one delivered file per message"

ok "-k, -A, Maildir and directory arguments, -q, -o DIR"

# ---- what the MTA offers and sends --------------------------------------------------

config offer <<EOF
[plugin:tag]
module = addheader
header = X-Tag
value = %{j}/%{auth_authen}/%{client_addr}

[plugin:lead]
module = $plugins/recorder_lead.so

[plugin:rec]
module = $plugins/recorder.so
show = connect:{auth_authen} envfrom:{auth_authen} envfrom:i
  envrcpt:i envrcpt:{rcpt_addr} data:i
EOF
run offer 0 -c "$tmp/offer.ini" -u alice -a 198.51.100.4 -D j=mx.test \
    "$tmp/plain.eml" &&
    has offer 'change 1 [tag] add_header X-Tag " mx.test/alice/198.51.100.4"' &&
    grep -q '^negotiate 1 actions=add_headers,setsymlist .*options=skip,leadspc$' \
    "$tmp/offer.out" || fail "offer: not the expected negotiation"
# Postfix: {auth_authen} is sent with MAIL (and here at the end of the
# message, where addheader asked for it), not at connect; the queue id is
# known from the first accepted recipient on.
for line in 'rec macro connect {auth_authen}=NULL' \
    'rec macro envfrom {auth_authen}=alice' 'rec macro envfrom i=NULL' \
    'rec macro envrcpt i=NULL' 'rec macro envrcpt {rcpt_addr}=r@example.test' \
    'rec macro data i=0000000001' \
    'rec connect host=[198.51.100.4] family=4 addr=198.51.100.4 sa=198.51.100.4 port 54321'
do
	grep -qF "[rec] $line" "$tmp/offer.err" ||
	    fail "offer: the recorder did not log '$line'"
done
run no_leadspc 0 -c "$tmp/offer.ini" -x leadspc -x noreply -D j -D i=QID \
    "$tmp/plain.eml" &&
    has no_leadspc 'change 1 [tag] add_header X-Tag "//192.0.2.1"' &&
    grep -q '^negotiate 1 .* noreply=none options=skip$' \
    "$tmp/no_leadspc.out" &&
    grep -qF '[rec] rec macro envfrom i=QID' "$tmp/no_leadspc.err" ||
    fail "-x leadspc -x noreply -D: not as expected"
run no_action 0 -c "$tmp/offer.ini" -x add_headers "$tmp/plain.eml" &&
    ! grep -q '^change' "$tmp/no_action.out" &&
    grep -q 'needs actions 0x1 that the MTA does not offer' \
    "$tmp/no_action.err" ||
    fail "-x add_headers: the instance was not switched off"
ok "-x, -D, -u and the macros of each stage"

# ---- stages an instance declares unused (ABI 1.3) ------------------------

# "some" has every callback but declares envrcpt and body unused: the
# trace shows no call of it there, while "all" is called as before.
config unused <<EOF
[plugin:some]
module = $plugins/recorder.so
unused = envrcpt
unused = body

[plugin:all]
module = $plugins/recorder.so
EOF
run unused 0 -c "$tmp/unused.ini" "$tmp/plain.eml" &&
    grep -Eq '^call 1 envrcpt \[all\] continue [0-9]+us$' "$tmp/unused.out" &&
    grep -Eq '^call 1 body \[all\] continue [0-9]+us$' "$tmp/unused.out" &&
    grep -Eq '^call 1 envfrom \[some\] continue [0-9]+us$' "$tmp/unused.out" ||
    fail "unused: not the calls expected"
grep -Eq '^call 1 (envrcpt|body) \[some\]' "$tmp/unused.out" &&
    fail "unused: [some] traced at a stage it declared unused"
grep -Eq '\[some\] rec (envrcpt|body)' "$tmp/unused.err" &&
    fail "unused: [some] was called at a stage it declared unused"
# Alone, it has the MTA send neither.
config unused_alone <<EOF
[plugin:some]
module = $plugins/recorder.so
unused = envrcpt
unused = body
EOF
run unused_alone 0 -c "$tmp/unused_alone.ini" "$tmp/plain.eml" &&
    grep -q '^negotiate 1 actions=none events=connect,helo,envfrom,data,unknown,header,eoh,eom ' \
    "$tmp/unused_alone.out" ||
    fail "unused alone: envrcpt and body not negotiated away"
ok "stages declared unused: not called, not traced, not asked for"

# ---- the key-value store (ABI 1.4) ----------------------------------------

config kv <<EOF
[plugin:count]
module = $plugins/scripted.so
do = eom kv_count n X-Count
EOF
run kv 0 -c "$tmp/kv.ini" "$tmp/plain.eml" "$tmp/plain.eml" &&
    has kv 'change 1 [count] add_header X-Count "1"' &&
    has kv 'change 2 [count] add_header X-Count "2"'
run kv_again 0 -c "$tmp/kv.ini" "$tmp/plain.eml" &&
    has kv_again 'change 1 [count] add_header X-Count "1"'
ok "the key-value store: one per run, shared by its messages"

[ $status -eq 0 ] && echo "PASS: replay_cli"
exit $status
