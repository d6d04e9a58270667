#!/bin/bash
# unused.sh - stages an instance declares unused (plugin ABI 1.3,
# mh_declare_unused) through the real daemon.  The recorder test plugin
# implements every callback; with "unused = envrcpt" and "unused = body"
# its instance must be treated as if it had neither callback:
#
#  - milterhost -t does not list those stages among the ones it takes;
#  - alone, it makes milterhost ask the MTA not to send them (SMFIP_NORCPT,
#    SMFIP_NOBODY), and an MTA that sends them anyway reaches neither
#    callback (a body chunk is answered SKIP: nobody wants body);
#  - beside an instance that takes them, they are negotiated as before and
#    reach only that instance;
#  - eom and close cannot be unused: -t refuses the configuration.
#
# callbacks_client.pl plays the MTA; the recorder's log lines show what
# reached each instance.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99
. "$here/callbacks_lib.sh" || exit 99

wire_init unused
WIRE_PLUGIN_DIR=$REC_PLUGINS

unused='unused = envrcpt
unused = body'

# ---- milterhost -t -------------------------------------------------------

ini=$(wire_config check <<EOF
[plugin:some]
module = recorder
$unused
EOF
) || exit 99
want='    stages: connect, helo, envfrom, data, unknown, header, eoh, eom, abort, close'
if ! wire_check_config "$ini"; then
	wire_fail "-t refused the instance declaring stages unused"
	sed 's/^/    /' "$WIRE_OUT"
elif ! grep -qxF -- "$want" "$WIRE_OUT"; then
	wire_fail "-t does not list exactly the stages taken"
	sed 's/^/    /' "$WIRE_OUT"
else
	echo "ok: -t lists the stages taken, without envrcpt and body"
fi

for stage in eom close; do
	wire_expect_refused "unused-$stage" mh_declare_unused \
	    "stage $stage: only connect, helo, envfrom, envrcpt, data, unknown, header, eoh and body can be unused" <<EOF
[plugin:some]
module = recorder
unused = $stage
EOF
done

# ---- sessions --------------------------------------------------------------

# One message through every stage, also those negotiated away, as
# callbacks_client.pl commands.
session() {
	printf 'negotiate\t6\t0x1ff\t0x1fffff\n'
	printf 'connect\tclient.example.test\t4\t12345\t192.0.2.9\n'
	printf 'helo\thelo.example.test\nmail\t<a@example.test>\n'
	printf 'rcpt\t<b@example.test>\ndata\neoh\nbody\tbody\\r\\n\n'
	printf 'eom\nquit\n'
}

# The recorder's lines for session; with "all", also envrcpt and body.
lines() {
	local sum

	sum=$(printf 'body\r\n' | cksum | cut -d' ' -f1)
	echo "rec connect host=client.example.test family=4 addr=192.0.2.9 sa=192.0.2.9 port 12345"
	echo "rec helo helo.example.test"
	echo "rec envfrom <a@example.test> args=[]"
	[ "$1" = all ] && echo "rec envrcpt <b@example.test> args=[]"
	echo "rec data"
	echo "rec eoh"
	if [ "$1" = all ]; then
		echo "rec body len=6 total=6 cksum=$sum"
		echo "rec eom total=6 cksum=$sum"
	else
		echo "rec eom total=0 cksum=$(printf '' | cksum | cut -d' ' -f1)"
	fi
	echo "rec close"
}

# expect_client NAME <lines: callbacks_client.pl's output
expect_client() {
	if cmp -s - "$WIRE_TMP/client.out"; then
		echo "ok: $1"
		return 0
	fi
	wire_fail "$1: the MTA side got (- expected, + got):"
	diff -u - "$WIRE_TMP/client.out" | tail -n +3 | sed 's/^/    /'
	return 1
}

ini=$(wire_config alone <<EOF
[plugin:some]
module = recorder
$unused
EOF
) || exit 99
if wire_start "$ini"; then
	rec_mark
	session | rec_client &&
	    expect_client "alone: RCPT and body negotiated away (0x8, 0x10); sent anyway, body is answered SKIP" <<'EOF'
optneg version=6 actions=0x0 steps=0x498
reply connect c
reply helo c
reply mail c
reply rcpt c
reply data c
reply eoh c
reply body s
reply eom c
EOF
	rec_expect "alone: neither envrcpt nor body is called" some \
	    < <(lines some)
	wire_stop
fi

ini=$(wire_config beside <<EOF
[plugin:some]
module = recorder
$unused

[plugin:all]
module = recorder
EOF
) || exit 99
if wire_start "$ini"; then
	rec_mark
	session | rec_client &&
	    expect_client "beside an instance taking them: every stage negotiated" <<'EOF'
optneg version=6 actions=0x0 steps=0x480
reply connect c
reply helo c
reply mail c
reply rcpt c
reply data c
reply eoh c
reply body c
reply eom c
EOF
	rec_expect "beside: the instance taking them gets envrcpt and body" \
	    all < <(lines all)
	rec_expect "beside: the one declaring them unused does not" some \
	    < <(lines some)
	wire_stop
fi
wire_exit
