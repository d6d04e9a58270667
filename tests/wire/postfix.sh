#!/bin/bash
# postfix.sh - end to end through a real Postfix: a private instance on
# loopback (tests/postfix/instance.sh) takes mail from swaks, hands it to
# milterhost running the bundled addheader plugin twice, and relays it to
# smtp-sink, which keeps every message it receives.
#
#  1. Over a unix socket and over TCP: the delivered message carries both
#     headers, the inserted one above Postfix's Received header and the
#     appended one after the message's last header, with Postfix's own
#     macros expanded (the queue id of that very message, $myhostname,
#     the sender).
#     Over TCP, 20 messages one after the other take under 35 ms each on
#     average: no 40 ms stall on Nagle's algorithm, neither in milterhost's
#     answer nor in Postfix's end-of-message command (the plugin wants only
#     the end of the message; milterhost still takes DATA over TCP, see
#     src/milter.c).
#  2. milterhost stopped while Postfix runs (milter_default_action =
#     tempfail): the idle stop takes under 0.5 s, the client hears 4xx
#     and nothing is delivered; once milterhost is back, mail flows
#     again.
#  3. Over the unix socket, a plugin (the misuse test plugin's
#     empty_body_rcpt) replacing the body with mh_body_replace(ctx, NULL,
#     0): the message is delivered with its headers and an empty body.
#  4. SIGTERM while four SMTP sessions are open (each past RCPT): every
#     one of them completes its message normally, through milterhost,
#     and is delivered with its headers; a session that starts during
#     the stop hears 4xx at once (milterhost refuses the connection, so
#     Postfix applies milter_default_action without waiting for its
#     timeout); milterhost exits 0 when the four sessions have ended.
#
# Skipped (exit 77, with the reason) only when Postfix is not installed or
# the test does not run as root; CI installs it.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_postfix_init postfix

# Four loopback ports nothing listens on: the sink, the smtpd using the
# unix socket, the smtpd using TCP, and milterhost's TCP socket.
base=$(pf_free_ports 4)
port_unix=$((base + 1))
port_tcp=$((base + 2))
milter_tcp=$((base + 3))

pf_create "$pf" "$base" dump || wire_error "cannot make the Postfix instance"
pf_smtpd "$pf" "$port_unix" "smtpd_milters=unix:$WIRE_SOCKET"
pf_smtpd "$pf" "$port_tcp" "smtpd_milters=inet:127.0.0.1:$milter_tcp"
pf_start "$pf" || wire_error "the private Postfix instance did not start"
echo "ok: private Postfix $(postconf -d -h mail_version) runs in $pf"

plugins='
[plugin:queue]
module = addheader
header = X-MH-Queue
value = %{i} on %{j}

[plugin:top]
module = addheader
header = X-MH-Top
value = sender %{mail_addr}
position = 0
'
# Only over the unix socket: the TCP timing below wants no other plugin.
empty_plugin="
[plugin:empty]
module = $abs_top_builddir/tests/plugins/.libs/misuse.so
empty_body_rcpt = <rcpt-empty@example.net>
"
unix_ini=$(printf 'socket_mode = 0666\n%s\n%s\n' "$plugins" "$empty_plugin" |
    wire_config unix) || exit 99
tcp_ini=$(printf '%s\n' "$plugins" | wire_config tcp) || exit 99
sed -i "s|^socket = .*|socket = inet:$milter_tcp@127.0.0.1|" "$tcp_ini"

# start_tcp: milterhost on TCP, run as the wire library runs it on the
# unix socket, so that wire_stop and the cleanup apply to it too.
start_tcp() {
	WIRE_RUNS=$((WIRE_RUNS + 1))
	echo "==== run $WIRE_RUNS: milterhost -f -c $tcp_ini" >>"$WIRE_LOG"
	"$WIRE_DAEMON" -f -c "$tcp_ini" >>"$WIRE_LOG" 2>&1 &
	WIRE_PID=$!
	pf_wait_listening "$milter_tcp" milterhost && wire_alive
}

# send NAME PORT: send one message with swaks to the smtpd on PORT; its
# transcript is in $WIRE_TMP/NAME.swaks, the status is swaks's.
send() {
	swaks --server 127.0.0.1 --port "$2" --from "sender@milterhost.test" \
	    --to "rcpt-$1@example.net" --header "Subject: $1" \
	    --body "body of $1" >"$WIRE_TMP/$1.swaks" 2>&1
}

# delivered NAME: the file in which smtp-sink kept the message for NAME,
# once Postfix has passed it on; empty if it never arrived.
delivered() {
	pf_wait_empty "$pf" 30 || return 1
	grep -l "^X-Rcpt-Args: <rcpt-$1@example.net>" "$pf"/sink/* 2>/dev/null
}

# check_headers NAME FILE: the two headers, where and what they should be.
check_headers() {
	local name=$1 file=$2 qid top_line rcvd_line queue_line last_line

	# Postfix's queue id, from its own Received header.
	qid=$(sed -n 's/.*(Postfix) with E\{0,1\}SMTP id \([0-9A-F]*\)$/\1/p' \
	    "$file" | head -n 1)
	top_line=$(grep -n '^X-MH-Top: ' "$file" | cut -d: -f1)
	rcvd_line=$(grep -n '^	by mx.milterhost.test (Postfix)' "$file" |
	    cut -d: -f1)
	queue_line=$(grep -n '^X-MH-Queue: ' "$file" | cut -d: -f1)
	last_line=$(grep -n '^X-Mailer: ' "$file" | cut -d: -f1)
	if [ -z "$qid" ]; then
		wire_fail "$name: no Received header from Postfix with a queue id"
	elif ! grep -qx "X-MH-Queue: $qid on mx.milterhost.test" "$file"; then
		wire_fail "$name: X-MH-Queue is not '$qid on" \
		    "mx.milterhost.test'"
	elif ! grep -qx 'X-MH-Top: sender sender@milterhost.test' "$file"; then
		wire_fail "$name: X-MH-Top is not 'sender sender@milterhost.test'"
	elif [ -z "$top_line" ] || [ -z "$rcvd_line" ] ||
	    [ "$top_line" -ge "$rcvd_line" ]; then
		wire_fail "$name: X-MH-Top is not above Postfix's Received header"
	elif [ -z "$queue_line" ] || [ -z "$last_line" ] ||
	    [ "$queue_line" -le "$last_line" ]; then
		wire_fail "$name: X-MH-Queue is not after the last header"
	else
		echo "ok: $name: delivered with X-MH-Top above Received and" \
		    "X-MH-Queue: $qid on mx.milterhost.test at the end"
		return 0
	fi
	sed 's/^/    /' "$file"
	return 1
}

# send_and_check NAME PORT: one message through the smtpd on PORT must be
# delivered, with the headers as check_headers wants them.
send_and_check() {
	local f

	if ! send "$1" "$2"; then
		wire_fail "$1: swaks failed"
		sed 's/^/    /' "$WIRE_TMP/$1.swaks"
		return 1
	fi
	f=$(delivered "$1")
	if [ -z "$f" ]; then
		wire_fail "$1: Postfix accepted the message but did not" \
		    "deliver it to smtp-sink"
		return 1
	fi
	check_headers "$1" "$f"
}

# ---- 1. headers, over a unix socket and over TCP ----------------------------

wire_start "$unix_ini" || exit 1
send_and_check unix "$port_unix"
# milterhost's line for the message, with Postfix's queue id and client.
if grep -qE "info: [0-9A-F]+: message: client=127\.0\.0\.1 from=<sender@milterhost\.test> rcpts=1 accepted, 2 changes \(add header 1, insert header 1\); time \[queue\] [0-9.]+ ms \[top\] [0-9.]+ ms" "$WIRE_LOG"; then
	echo "ok: unix: the message's summary line is in milterhost's log"
else
	wire_fail "unix: no summary line for the message in milterhost's log"
fi

# ---- 2. milterhost stopped while Postfix runs, and back ---------------------

t0=$(date +%s%N)
wire_stop
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$ms" -lt 500 ]; then
	echo "ok: an idle stop took $ms ms"
else
	wire_fail "an idle stop took $ms ms (want < 500 ms)"
fi
if send down "$port_unix"; then
	wire_fail "down: Postfix accepted mail with milterhost stopped"
elif ! grep -q '^<\*\* *4[0-9][0-9] ' "$WIRE_TMP/down.swaks"; then
	wire_fail "down: the client did not hear 4xx"
	sed 's/^/    /' "$WIRE_TMP/down.swaks"
else
	echo "ok: down: $(grep -m1 '^<\*\* *4' "$WIRE_TMP/down.swaks")"
fi
if [ "$(pf_queued "$pf")" -ne 0 ] || [ -n "$(delivered down)" ]; then
	wire_fail "down: a message was queued or delivered"
fi

wire_start "$unix_ini" || exit 1
send_and_check back "$port_unix"

# ---- 3. an empty replacement body -------------------------------------------

# check_empty_body FILE: the message in FILE has headers and no body.
check_empty_body() {
	local body

	body=$(sed '1,/^\r\{0,1\}$/d' "$1")
	if ! grep -q '^Subject: empty' "$1"; then
		wire_fail "empty: the delivered message lost its headers"
	elif [ -n "$(printf '%s' "$body" | tr -d '\r\n')" ]; then
		wire_fail "empty: the body is not empty"
	else
		echo "ok: empty: delivered with its headers and an empty body"
		return 0
	fi
	sed 's/^/    /' "$1"
	return 1
}

if send_and_check empty "$port_unix"; then
	check_empty_body "$(delivered empty)"
fi

# ---- 4. SIGTERM with SMTP sessions open -------------------------------------

# smtp_reply FD: read one SMTP reply; print its last line, "" on timeout.
smtp_reply() {
	local line

	while IFS= read -r -t 20 line <&"$1"; do
		line=${line%$'\r'}
		case $line in
		[0-9][0-9][0-9]" "*) echo "$line"; return 0 ;;
		esac
	done
	echo ""
}

# held_session NAME PORT: an SMTP session that stops after RCPT, says so
# in $WIRE_TMP/NAME.ready and goes on with DATA once $WIRE_TMP/go
# exists; the last reply of each step goes to $WIRE_TMP/NAME.smtp.
held_session() {
	local name=$1 fd out=$WIRE_TMP/$1.smtp

	exec {fd}<>"/dev/tcp/127.0.0.1/$2" || return 1
	{
		smtp_reply "$fd"
		printf 'EHLO client.test\r\n' >&"$fd"; smtp_reply "$fd"
		printf 'MAIL FROM:<sender@milterhost.test>\r\n' >&"$fd"
		smtp_reply "$fd"
		printf 'RCPT TO:<rcpt-%s@example.net>\r\n' "$name" >&"$fd"
		smtp_reply "$fd"
		: >"$WIRE_TMP/$name.ready"
		while [ ! -e "$WIRE_TMP/go" ]; do sleep 0.05; done
		printf 'DATA\r\n' >&"$fd"; smtp_reply "$fd"
		printf 'Subject: %s\r\nX-Mailer: held\r\n\r\nbody of %s\r\n.\r\n' \
		    "$name" "$name" >&"$fd"
		echo "end: $(smtp_reply "$fd")"
		printf 'QUIT\r\n' >&"$fd"; smtp_reply "$fd"
	} >"$out"
	exec {fd}>&-
}

rm -f "$WIRE_TMP/go"
held=
for i in 1 2 3 4; do
	held_session "held$i" "$port_unix" &
	held="$held $!"
done
for i in $(seq 100); do
	[ "$(ls "$WIRE_TMP"/held*.ready 2>/dev/null | wc -l)" -eq 4 ] && break
	sleep 0.1
done
kill -TERM "$WIRE_PID"
sleep 0.2
t0=$(date +%s%N)
if send during "$port_unix"; then
	wire_fail "during: a session started during the stop was accepted"
elif grep -q '^<\*\* *4[0-9][0-9] ' "$WIRE_TMP/during.swaks"; then
	echo "ok: during the stop a new session heard 4xx in" \
	    "$((($(date +%s%N) - t0) / 1000000)) ms"
else
	wire_fail "during: the client did not hear 4xx"
	sed 's/^/    /' "$WIRE_TMP/during.swaks"
fi
: >"$WIRE_TMP/go"
wait $held
for i in 1 2 3 4; do
	if grep -q "^end: 250 " "$WIRE_TMP/held$i.smtp"; then
		f=$(delivered "held$i")
		if [ -n "$f" ]; then
			check_headers "held$i" "$f"
		else
			wire_fail "held$i: accepted but not delivered"
		fi
	else
		wire_fail "held$i: the message was not accepted:" \
		    "$(tr '\n' ' ' <"$WIRE_TMP/held$i.smtp")"
	fi
done
t0=$(date +%s%N)
while wire_alive && [ $((($(date +%s%N) - t0) / 1000000)) -lt 3000 ]; do
	sleep 0.05
done
if wire_alive; then
	wire_fail "milterhost still runs 3 s after its sessions ended"
	wire_stop
else
	wait "$WIRE_PID"
	st=$?
	WIRE_PID=
	[ "$st" -eq 0 ] && echo "ok: milterhost exited 0 after the sessions" ||
	    wire_fail "milterhost exited $st after SIGTERM"
fi
grep -q "still open" "$WIRE_LOG" && wire_fail "the stop gave up on sessions"

start_tcp || wire_fail "tcp: milterhost does not listen on TCP port $milter_tcp"
send_and_check tcp "$port_tcp"
t0=$(date +%s%N)
if smtp-source -s 1 -m 20 -l 1000 -f sender@milterhost.test \
    -t timed@example.net "127.0.0.1:$port_tcp" >"$WIRE_TMP/timed.out" 2>&1
then
	ms=$((($(date +%s%N) - t0) / 20000000))
	# A stall costs 40 ms a message; 35 leaves room for a loaded machine
	# (they take about 6 ms here when idle).
	if [ "$ms" -lt 35 ]; then
		echo "ok: tcp: 20 messages in a row, $ms ms each on average"
	else
		wire_fail "tcp: 20 messages in a row took $ms ms each on" \
		    "average (want < 35 ms: a 40 ms TCP stall?)"
	fi
else
	wire_fail "tcp: smtp-source failed"
	sed 's/^/    /' "$WIRE_TMP/timed.out"
fi
pf_wait_empty "$pf" 30 || wire_fail "tcp: Postfix's queue did not empty"
wire_stop

# Postfix's log: 28 messages delivered, two tempfailed, nothing else.
pf_wait_count "$pf" ' status=sent ' 28 10
sent=$(pf_count "$pf" ' status=sent ')
bad=$(pf_count "$pf" ' status=(deferred|bounced)|fatal:|panic:')
if [ "$sent" -ne 28 ] || [ "$bad" -ne 0 ]; then
	wire_fail "Postfix's log: $sent messages sent (want 28), $bad" \
	    "deferred, bounced or fatal"
	sed 's/^/    /' "$pf/maillog"
fi
wire_exit
