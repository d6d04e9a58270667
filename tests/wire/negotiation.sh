#!/bin/bash
# negotiation.sh - wire test of the option negotiation: the stages
# milterhost asks not to get (SMFIP_NO*), the actions (the union of the
# plugins'), the macro lists per stage, leading-space and rejected-
# recipient handling, and a plugin switched off because the MTA does not
# offer an action it needs.  miltertest (negotiation.lua) checks what was
# negotiated; "mtaclient script" reads the macro lists, which miltertest
# ignores; the recorder plugins' log lines show what reached each plugin.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99
. "$here/callbacks_lib.sh" || exit 99

wire_init negotiation
wire_need_miltertest
script=$here/negotiation.lua

# run_config NAME SCENARIO: start the daemon on the config from stdin and
# run SCENARIO of negotiation.lua against it; the daemon keeps running.
run_config() {
	local ini

	ini=$(wire_config "$1") || exit 99
	wire_start "$ini" || return 1
	rec_mark
	wire_miltertest "$script" MH_WIRE_SCENARIO="$2" MH_WIRE_LOG="$WIRE_LOG"
}

# The recorder's lines for a message(conn, headers) of negotiation.lua;
# arguments: the header lines as the plugin must see them.
message_lines() {
	local sum

	sum=$(printf 'body\r\n' | cksum | cut -d' ' -f1)
	echo "rec connect host=client.example.test family=4 addr=192.0.2.9 sa=192.0.2.9 port 12345"
	echo "rec helo helo.example.test"
	echo "rec envfrom <a@example.test> args=[]"
	echo "rec envrcpt <b@example.test> args=[]"
	echo "rec data"
	printf 'rec header %s\n' "${@:-Subject=\"test\"}"
	echo "rec eoh"
	echo "rec body len=6 total=6 cksum=$sum"
	echo "rec eom total=6 cksum=$sum"
	echo "rec close"
}

# The client's output with the names of each macro list sorted.
sorted_symlists() {
	while read -r word stage names; do
		if [ "$word" = symlist ]; then
			echo "symlist $stage $(printf '%s\n' $names | LC_ALL=C sort |
			    tr '\n' ' ')"
		else
			echo "$word $stage $names"
		fi
	done <"$WIRE_TMP/client.out"
}

# expect_client NAME <lines: the client's output (macro lists sorted)
expect_client() {
	sorted_symlists >"$WIRE_TMP/client.got"
	if cmp -s - "$WIRE_TMP/client.got"; then
		echo "ok: $1"
		return 0
	fi
	wire_fail "$1: the negotiation reply differs (got:)"
	sed 's/^/    /' "$WIRE_TMP/client.got"
	return 1
}

negotiate_only() {
	printf 'negotiate\t6\t%s\t0x1fffff\nquit\n' "${1:-0x1ff}" | rec_client
}

# ---- stages: SMFIP_NO* -------------------------------------------------

run_config eomonly eomonly <<EOF &&
[plugin:eom]
module = $REC_PLUGINS/eomonly.so
EOF
rec_expect "eom only: every other stage negotiated away, eom arrives" \
    eom 0 <<'EOF'
rec eom
EOF
wire_stop

run_config recorder recorder <<EOF &&
[plugin:rec]
module = $REC_PLUGINS/recorder.so

[plugin:eom]
module = $REC_PLUGINS/eomonly.so
EOF
rec_expect "recorder: no stage negotiated away; a session ended after negotiation gets close only" rec <<'EOF'
rec close
EOF
rec_mark
negotiate_only
expect_client "recorder: no macro list, no action requested" <<'EOF'
optneg version=6 actions=0x0 steps=0x480
EOF
wire_stop

# ---- actions -------------------------------------------------------------

run_config actions actions <<EOF
[plugin:a1]
module = $REC_PLUGINS/recorder_act1.so

[plugin:a2]
module = $REC_PLUGINS/recorder_act2.so
EOF
wire_stop

run_config disabled disabled <<EOF &&
[plugin:needy]
module = $REC_PLUGINS/recorder_act1.so

[plugin:plain]
module = $REC_PLUGINS/recorder.so
EOF
{
	rec_expect "an action the MTA does not offer: the plugin is off for that connection (close only), and on for the next" needy 2 <<EOF
rec close
$(message_lines)
EOF
	rec_expect "an action the MTA does not offer: the other plugin works" \
	    plain 2 <<EOF
$(message_lines)
$(message_lines)
EOF
	n=$(tail -n "+$((REC_MARK + 1))" "$WIRE_LOG" |
	    grep -c 'warning: \[needy\] needs actions 0x40 that the MTA does not offer')
	if [ "$n" -eq 1 ]; then
		echo "ok: one warning naming [needy] and the missing action"
	else
		wire_fail "expected one warning naming [needy] and action" \
		    "0x40, found $n"
	fi
}
wire_stop

run_config disabled_nobits disabled_nobits <<EOF &&
[plugin:needy]
module = $REC_PLUGINS/recorder_act1.so

[plugin:eom]
module = $REC_PLUGINS/eomonly.so
EOF
rec_expect "a switched-off plugin's stages are negotiated away" needy <<'EOF'
rec close
EOF
wire_stop

# ---- macros --------------------------------------------------------------

run_config macros macros <<EOF &&
[plugin:mac]
module = $REC_PLUGINS/recorder_macros.so
show = connect:j connect:{rec_conn} helo:{rec_helo} envfrom:i
  envfrom:{auth_authen} envfrom:{rec_from} envrcpt:{rec_rcpt}
  data:{rec_data} eoh:{rec_eoh} eom:{rec_eom} eom:{auth_authen}

[plugin:plain]
module = $REC_PLUGINS/recorder.so
show = envfrom:{auth_authen} envfrom:{no_such_macro}
EOF
{
	rec_expect "macros of every stage reach the plugin that declared them" \
	    mac <<EOF
rec connect host=client.example.test family=4 addr=192.0.2.9 sa=192.0.2.9 port 12345
rec macro connect j=mx.example.test
rec macro connect {rec_conn}=conn-value
rec helo helo.example.test
rec macro helo {rec_helo}=helo-value
rec envfrom <a@example.test> args=[]
rec macro envfrom i=QID42
rec macro envfrom {auth_authen}=joe
rec macro envfrom {rec_from}=from-value
rec envrcpt <b@example.test> args=[]
rec macro envrcpt {rec_rcpt}=rcpt-value
rec data
rec macro data {rec_data}=data-value
rec header Subject="test"
rec eoh
rec macro eoh {rec_eoh}=eoh-value
rec body len=6 total=6 cksum=$(printf 'body\r\n' | cksum | cut -d' ' -f1)
rec eom total=6 cksum=$(printf 'body\r\n' | cksum | cut -d' ' -f1)
rec macro eom {rec_eom}=eom-value
rec macro eom {auth_authen}=joe
rec close
EOF
	rec_lines plain | grep '^rec macro' >"$WIRE_TMP/plain.macros"
	if [ "$(cat "$WIRE_TMP/plain.macros")" = "rec macro envfrom {auth_authen}=joe
rec macro envfrom {no_such_macro}=NULL" ]; then
		echo "ok: the other plugin sees the macros too; an unsent one is NULL"
	else
		wire_fail "plain's macros: $(cat "$WIRE_TMP/plain.macros")"
	fi
	rec_mark
	negotiate_only
	expect_client "macro lists: Postfix's defaults plus the declared names, per stage, without duplicates" <<'EOF'
optneg version=6 actions=0x100 steps=0x480
symlist 0 _ j v {daemon_addr} {daemon_name} {rec_conn} 
symlist 1 {cert_issuer} {cert_subject} {cipher_bits} {cipher} {rec_helo} {tls_version} 
symlist 2 i {auth_authen} {auth_author} {auth_type} {mail_addr} {mail_host} {mail_mailer} {rec_from} 
symlist 3 i {rcpt_addr} {rcpt_host} {rcpt_mailer} {rec_rcpt} 
symlist 4 i {rec_data} 
symlist 5 i {rec_eom} 
symlist 6 i {rec_eoh} 
EOF
	negotiate_only 0xff
	expect_client "macro lists: none when the MTA does not offer SETSYMLIST" <<'EOF'
optneg version=6 actions=0x0 steps=0x480
EOF
}
wire_stop

# ---- leading space -------------------------------------------------------

run_config leadspc leadspc <<EOF &&
[plugin:lead]
module = $REC_PLUGINS/recorder_lead.so

[plugin:plain]
module = $REC_PLUGINS/recorder.so
EOF
{
	lead=$(message_lines 'Subject=" hello"' 'X-Spaced="  spaced"' \
	    'X-Folded=" a\n\tb"')
	plain=$(message_lines 'Subject="hello"' 'X-Spaced=" spaced"' \
	    'X-Folded="a\n\tb"')
	rec_expect "HDR_LEADSPC wanted: values with their leading space, with and without HDR_LEADSPC negotiated" lead 2 <<EOF
$lead
$lead
EOF
	rec_expect "HDR_LEADSPC not wanted: one leading space removed, with and without HDR_LEADSPC negotiated" plain 2 <<EOF
$plain
$plain
EOF
}
wire_stop

# ---- rejected recipients ------------------------------------------------

run_config rejected rejected <<EOF &&
[plugin:rej]
module = $REC_PLUGINS/recorder_rej.so

[plugin:plain]
module = $REC_PLUGINS/recorder.so
EOF
{
	head='rec connect host=client.example.test family=4 addr=192.0.2.9 sa=192.0.2.9 port 12345
rec helo helo.example.test
rec envfrom <a@example.test> args=[]'
	rec_expect "REJECTED_RCPTS wanted: a rejected recipient arrives" \
	    rej <<EOF
$head
rec envrcpt <bad@example.test> args=[]
rec envrcpt <good@example.test> args=[]
rec abort
rec close
EOF
	rec_expect "REJECTED_RCPTS not wanted: a rejected recipient does not arrive" plain <<EOF
$head
rec envrcpt <good@example.test> args=[]
rec abort
rec close
EOF
}
wire_stop

wire_exit
