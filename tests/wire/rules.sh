#!/bin/bash
# rules.sh - wire test of the bundled rules plugin in the real daemon,
# driven by miltertest (rules.lua) and, for what miltertest cannot see
# (reply texts before the end of the message, header indexes), by
# "mtaclient script".
#
#  1. milterhost -t takes conf/milterhost.ini and its commented rules
#     example, and refuses every bad rule, key and rules file, naming the
#     key and (for a file) the file and line.
#  2. MAIN: one instance with rules on every where and every action, and
#     score_reject / score_header in [milterhost]: each rule as the MTA
#     hears it (rules.lua), the replies' texts, the deleted headers'
#     indexes, the log lines.
#  3. WHOLE: body_limit = 0, the body rule from a rules file named by a
#     relative path: a match after 100 KB, long lines in pieces.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init rules
wire_need_miltertest
script=$here/rules.lua

# ---- 1. configuration checks -------------------------------------------

bundled=$(wire_conf_ini bundled) || exit 99
if wire_check_config "$bundled"; then
	echo "ok: milterhost -t accepts conf/milterhost.ini"
else
	cat "$WIRE_OUT"
	wire_fail "milterhost -t refuses conf/milterhost.ini"
fi
# The commented [plugin:privacy] example, uncommented.
example=$(wire_conf_ini example '/^;\[plugin:privacy\]$/,/^$/s/^;//') ||
    exit 99
if ! grep -q '^\[plugin:privacy\]$' "$example"; then
	wire_fail "conf/milterhost.ini has no ';[plugin:privacy]' example"
elif wire_check_config "$example" && grep -q 'rules 1\.0' "$WIRE_OUT"; then
	echo "ok: milterhost -t accepts the rules example of" \
	    "conf/milterhost.ini"
else
	cat "$WIRE_OUT"
	wire_fail "milterhost -t refuses the rules example of" \
	    "conf/milterhost.ini"
fi

# bad_rule NAME TEXT RULE: the section's second rule, RULE, is refused
# with TEXT, and the message names it and its line (10: the wire config's
# [milterhost] lines come first).
bad_rule() {
	wire_expect_refused "$1" rule ":10: [plugin:t] rule: rule 2, '$3': $2" <<EOF
[plugin:t]
module = rules
rule = sender /^ok@/ accept
rule = $3
EOF
}

bad_rule unknown-where "unknown where 'sendr'" 'sendr /x/ reject'
bad_rule no-pattern "expected a pattern between slashes after 'sender'" \
    'sender x reject'
bad_rule unterminated "the pattern /a\/b reject has no closing '/'" \
    'sender /a\/b reject'
bad_rule bad-pattern \
    "bad pattern /a(b/: missing closing parenthesis at its end" \
    'sender /a(b/ reject'
bad_rule bad-pattern-offset "bad pattern /a+*/: quantifier does not follow a repeatable item at character 3 of the pattern" \
    'sender /a+*/ reject'
bad_rule unknown-flag "unknown flag 'g' after the pattern" 'sender /x/ig reject'
bad_rule no-action "an action is missing after the pattern" 'sender /x/i'
bad_rule unknown-action "unknown action 'bounce'" 'sender /x/ bounce'
bad_rule reject-4xx "reject takes a 5xx reply code, not 451" \
    'sender /x/ reject 451 4.7.1 no'
bad_rule tempfail-5xx "tempfail takes a 4xx reply code, not 550" \
    'sender /x/ tempfail 550 no'
bad_rule bad-xcode "bad enhanced status code '4.7.1'" \
    'sender /x/ reject 550 4.7.1 no'
bad_rule code-no-text "the reply 550 needs a text after its code" \
    'sender /x/ reject 550 5.7.1'
bad_rule delete-sender "delete works on headers only" 'sender /x/ delete'
bad_rule delete-body "delete works on headers only" 'body /x/ delete'
bad_rule score-no-points "score needs points and a reason" \
    'sender /x/ score'
bad_rule score-not-number "bad points 'many'" 'sender /x/ score many x'
bad_rule score-too-many "bad points '1000.5'" 'sender /x/ score 1000.5 x'
bad_rule score-no-reason "score 5 needs a reason after the points" \
    'sender /x/ score 5'
bad_rule quarantine-no-reason "quarantine needs a reason" \
    'sender /x/ quarantine'
bad_rule addheader-no-value "addheader needs a header name and a value" \
    'sender /x/ addheader X-Flag'
bad_rule addheader-bad-name "bad header name 'X:Flag'" \
    'sender /x/ addheader X:Flag yes'
bad_rule bad-header-where "bad header name 'X:Y' in 'header:X:Y'" \
    'header:X:Y /x/ delete'
bad_rule accept-arguments "accept takes no arguments, but 'now' follows it" \
    'sender /x/ accept now'
wire_expect_refused unknown-key colour \
    "unknown key: rules takes rule, rules_file and body_limit" <<'EOF'
[plugin:t]
module = rules
rule = sender /x/ reject
colour = red
EOF
wire_expect_refused no-rules rule "no rules" <<'EOF'
[plugin:t]
module = rules
body_limit = 10k
EOF
wire_expect_refused bad-body-limit body_limit "bad size '2g'" <<'EOF'
[plugin:t]
module = rules
rule = body /x/ reject
body_limit = 2g
EOF
wire_expect_refused empty-rule rule "rule 1, '': empty rule" <<'EOF'
[plugin:t]
module = rules
rule =
EOF

# Files of rules, named relative to the configuration's directory.
printf '# comment\n\n  sender /x/ reject\nhelo /x/ score 1 h\r\n' \
    >"$WIRE_TMP/good.rules"
printf '# comment\nsender /x/ reject\nheader:X /y/ score x y\n' \
    >"$WIRE_TMP/bad.rules"
printf 'sender /x/ reject\n\nbody /(/ reject\n' >"$WIRE_TMP/badpat.rules"
printf 'sender /x/ reject\nsender /\0/ reject\n' >"$WIRE_TMP/nul.rules"
mkdir "$WIRE_TMP/dir.rules"

good=$(wire_config good-file <<'EOF'
[plugin:t]
module = rules
rules_file = good.rules
rule = sender /y/ accept
EOF
) || exit 99
if wire_check_config "$good"; then
	echo "ok: a rules file with comments, blanks and a CRLF line is taken"
else
	wire_fail "good-file: milterhost -t refused it"
	sed 's/^/    /' "$WIRE_OUT"
fi
wire_expect_refused file-bad-rule rules_file \
    "$WIRE_TMP/bad.rules:3: bad points 'x'" <<'EOF'
[plugin:t]
module = rules
rules_file = bad.rules
EOF
wire_expect_refused file-bad-pattern rules_file \
    "$WIRE_TMP/badpat.rules:3: bad pattern /(/: missing closing parenthesis" <<'EOF'
[plugin:t]
module = rules
rules_file = badpat.rules
EOF
wire_expect_refused file-nul rules_file \
    "$WIRE_TMP/nul.rules:2: the line holds a NUL byte" <<'EOF'
[plugin:t]
module = rules
rules_file = nul.rules
EOF
wire_expect_refused file-missing rules_file \
    "$WIRE_TMP/none.rules: cannot open it: No such file or directory" <<'EOF'
[plugin:t]
module = rules
rules_file = none.rules
EOF
wire_expect_refused file-directory rules_file \
    "$WIRE_TMP/dir.rules: not a regular file" <<'EOF'
[plugin:t]
module = rules
rules_file = dir.rules
EOF
# The second of two rules files is read too, after the rule between.
wire_expect_refused file-second rules_file "$WIRE_TMP/bad.rules:3:" <<'EOF'
[plugin:t]
module = rules
rules_file = good.rules
rule = sender /y/ accept
rules_file = bad.rules
EOF

# ---- 2. MAIN: every where and action --------------------------------------

main=$(wire_config main <<'EOF'
score_reject = 10
score_reject_reply = 550 5.7.1 Too many points
score_header = X-Score

[plugin:rules]
module = rules
body_limit = 4k
rule = client_addr /^192\.0\.2\.66$/ reject 554 5.7.1 Go away
rule = client /^blocked\./ tempfail
rule = client_name /\.dialup\.example$/ score 2 dialup client
rule = client_name /^trusted\.example$/ accept
rule = client_name /^blackhole\.example$/ discard
rule = helo /^\[?\d+\.\d+\.\d+\.\d+\]?$/ score 4 bare IP helo
rule = sender /@spam\.example$/i score 5 sender domain listed
rule = sender /@later\.example$/ tempfail 451 4.7.1 Try later
rule = sender /^$/ addheader X-Null-Sender yes
rule = sender !/^$|@/ reject Sender needs a domain
rule = recipient /^nobody@/ reject 550 5.1.1 No such user
rule = recipient /^abuse@/ accept
rule = recipient /^trash@/ discard
rule =
    header:X-Originating-IP /^10\./ delete
    header:user-agent // delete
rule = header:* /^Subject:.*viagra/i score 3 subject
rule = header /^X-Quarantine: yes$/ quarantine held by a rule
rule = body /click here now/i tempfail 451 4.7.1 Body says no
rule = body /^discard me$/ discard
EOF
) || exit 99

# client NAME WANT... <commands: run "mtaclient script"; each WANT must
# be a line of its output.
client() {
	local name=$1 out=$WIRE_TMP/$1.client line
	shift

	if ! "$abs_top_builddir/tests/wire/mtaclient" script \
	    "$WIRE_SOCKET" >"$out" 2>&1; then
		wire_fail "$name: mtaclient script failed"
		sed 's/^/    /' "$out"
		return 1
	fi
	for line in "$@"; do
		if ! grep -qxF -- "$line" "$out"; then
			wire_fail "$name: no line '$line' in what the MTA got"
			sed 's/^/    /' "$out"
			return 1
		fi
	done
	echo "ok: $name: $*"
}

# Every event is answered: no "no reply" bits offered.
NEG=$(printf 'negotiate\t6\t0x1ff\t0xf7f')
conn() {
	printf '%s\nconnect\t%s\t4\t25\t%s\n' "$NEG" "$1" "$2"
}

if wire_start "$main"; then
	wire_miltertest "$script" MH_WIRE_SCENARIO=main

	{ conn bad.example 192.0.2.66; echo quit; } |
	    client reply-connect 'reply connect y 554 5.7.1 Go away'
	{ conn host.example 198.51.100.40; printf 'helo\tc.example\n'
	  printf 'mail\t<x@later.example>\nquit\n'; } |
	    client reply-sender 'reply mail y 451 4.7.1 Try later'
	{ conn host.example 198.51.100.41; printf 'helo\tc.example\n'
	  printf 'mail\t<user>\nquit\n'; } |
	    client reply-default 'reply mail y 550 5.7.1 Sender needs a domain'
	{ conn host.example 198.51.100.42; printf 'helo\tc.example\n'
	  printf 'mail\t<a@example.org>\nrcpt\t<nobody@example.org>\n'
	  printf 'rcpt\t<ok@example.org>\nquit\n'; } |
	    client reply-recipient 'reply rcpt y 550 5.1.1 No such user' \
	    'reply rcpt c'
	{ conn host.example 198.51.100.43; printf 'helo\tc.example\n'
	  printf 'mail\t<a@example.org>\nrcpt\t<r@example.org>\n'
	  printf 'header\tSubject\thello\n'
	  printf 'body\tfirst\\r\\nplease Click He\n'
	  printf 'body\tre now\\r\\n\nquit\n'; } |
	    client reply-body 'reply body c' \
	    'reply body y 451 4.7.1 Body says no'

	# Three X-Originating-IP headers, the first and third from 10/8:
	# both deleted, the later one first; the second one kept.
	{ conn host.example 198.51.100.44; printf 'helo\tc.example\n'
	  printf 'mail\t<a@example.org>\nrcpt\t<r@example.org>\n'
	  printf 'header\tX-Originating-IP\t10.1.2.3\n'
	  printf 'header\tUser-Agent\tFoo/1.0\n'
	  printf 'header\tX-Originating-IP\t192.0.2.1\n'
	  printf 'header\tx-originating-ip\t10.9.9.9\n'
	  printf 'body\thello\\r\\n\neom\nquit\n'; } |
	    client delete-index 'mod m 3|x-originating-ip||' \
	    'mod m 1|X-Originating-IP||' 'mod m 1|User-Agent||'
	out=$WIRE_TMP/delete-index.client
	if [ -f "$out" ]; then
		order=$(grep '^mod m ' "$out" | grep -i 'originating' |
		    cut -d'|' -f1 | tr '\n' ' ')
		if [ "$order" = "mod m 3 mod m 1 " ]; then
			echo "ok: delete-index: index 3 deleted before 1, 2 kept"
		else
			wire_fail "delete-index: X-Originating-IP deletions" \
			    "'$order', expected index 3, then 1"
		fi
	fi

	for line in \
	    "[rules] rule 1: client 'bad.example [192.0.2.66]': reject" \
	    "[rules] rule 8: sender 'x@later.example': tempfail" \
	    "[rules] rule 14: header 'X-Originating-IP: 10.1.2.3': delete" \
	    "[rules] rule 15: header 'User-Agent: Foo/1.0': delete" \
	    "[rules] rule 17: header 'X-Quarantine: yes': quarantine" \
	    "[rules] rule 18: body line 'please Click Here now': tempfail" \
	    "[rules] rule 5: discarding the message, as the connection's rule said"
	do
		if grep -qF -- "$line" "$WIRE_LOG"; then
			echo "ok: logged: $line"
		else
			wire_fail "not logged: $line"
		fi
	done
	wire_stop
fi

# ---- 3. WHOLE: no body limit, rules from a file -----------------------------

printf '# the body rule of rules.lua\nbody /click here now/i tempfail 451 4.7.1 Body says no\n' \
    >"$WIRE_TMP/body.rules"
whole=$(wire_config whole <<'EOF'
[plugin:rules]
module = rules
body_limit = 0
rules_file = body.rules
EOF
) || exit 99
if wire_start "$whole"; then
	wire_miltertest "$script" MH_WIRE_SCENARIO=whole
	if grep -qF "[rules] $WIRE_TMP/body.rules:2: body line" "$WIRE_LOG"; then
		echo "ok: a file's rule is named by its file and line in the log"
	else
		wire_fail "no log line naming $WIRE_TMP/body.rules:2"
	fi
	wire_stop
fi

wire_exit
