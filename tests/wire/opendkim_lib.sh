# opendkim_lib.sh - OpenDKIM for the wire tests: a signing key, a
# configuration that signs the mail of milterhost.test from 127.0.0.1, and
# an opendkim process run in the foreground on a loopback port, which the
# test stops and starts again as it needs.  Nothing here touches the
# system's OpenDKIM (/etc/opendkim.conf, /run/opendkim): every file lives
# in the directory given to odk_init, and the system's opendkim, if one
# runs, listens on its own unix socket, not on a loopback port.
#
# Sourced by bash wire tests after tests/wire/lib.sh and
# tests/postfix/instance.sh (wire_postfix_init sources it: odk_start waits
# with its pf_listening).  Then:
#
#	odk_need NAME		skip the test (exit 77, saying why) unless
#				opendkim and opendkim-genkey are installed
#				and a python3 has the dkim module (Debian:
#				opendkim, opendkim-tools, python3-dkim);
#				sets ODK_PYTHON
#	odk_init DIR		use DIR (made if missing) for the key, the
#				configuration, the pidfile and the logs;
#				builds the syslog catcher (syslog_file.c)
#				with $CC when it can
#	odk_genkey		make the key pair of selector $ODK_SELECTOR
#				("test") for $ODK_DOMAIN (milterhost.test):
#				$ODK_KEY (PEM private key) and $ODK_PUBKEY
#				(the DNS TXT record, as opendkim-genkey
#				writes it)
#	odk_config PORT [LINE...]
#				write $ODK_CONF: sign (Mode s) the mail whose
#				From is in $ODK_DOMAIN and whose client is
#				127.0.0.1, relaxed/relaxed, listening on
#				inet:PORT@127.0.0.1; each LINE ("Name value")
#				is added at the end
#	odk_start		start "opendkim -f -x $ODK_CONF" in the
#				background and wait until it listens; 1 (with
#				its log) if it does not
#	odk_stop		SIGTERM it and wait for it to exit (it takes
#				up to 5 s: libmilter looks at its stop flag
#				between 5 s waits for connections); 1 if it
#				had to be killed or exited with a non-zero
#				status
#	odk_restart		odk_stop, then odk_start
#	odk_alive		0 if the opendkim started here still runs
#	odk_kill		SIGKILL it if it still runs (for an EXIT trap)
#	odk_show_log		print its output and its log, indented
#	odk_verify FILE [--covers HEADER...]
#				tests/wire/dkim_verify.py on a message file
#				with the public key: prints each signature's
#				result and h= tag; 0 only if there is one and
#				all verify (and cover HEADER)
#
# OpenDKIM logs only through syslog(3).  When $CC builds syslog_file.c,
# opendkim runs with it preloaded and $ODK_LOG holds its log (Syslog yes,
# SyslogSuccess and LogWhy: the reason for each decision to sign or not);
# otherwise the configuration says "Syslog no" and only what opendkim
# writes to stderr (start-up errors) is kept, in $ODK_OUT.

ODK_DOMAIN=milterhost.test
ODK_SELECTOR="test"
ODK_PID=
ODK_DIR=
ODK_PORT=
ODK_PRELOAD=
# Seconds to wait for the socket, and for the exit after SIGTERM.
ODK_START_WAIT=10
ODK_STOP_WAIT=15

case ":$PATH:" in
*:/usr/sbin:*) ;;
*) PATH=$PATH:/usr/sbin ;;
esac

odk_need() {
	local p

	for p in opendkim opendkim-genkey; do
		if ! command -v "$p" >/dev/null 2>&1; then
			echo "SKIP: $1: this test needs OpenDKIM: $p is not" \
			    "installed (Debian: apt-get install opendkim" \
			    "opendkim-tools)"
			exit 77
		fi
	done
	# Debian's python3-dkim is for the system's python3, which a python3
	# earlier in PATH (pyenv, a virtualenv) may not be.
	ODK_PYTHON=
	for p in /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do
		if [ -n "$p" ] && [ -x "$p" ] &&
		    "$p" -c 'import dkim' >/dev/null 2>&1; then
			ODK_PYTHON=$p
			break
		fi
	done
	if [ -z "$ODK_PYTHON" ]; then
		echo "SKIP: $1: this test needs python3's dkim module to" \
		    "verify signatures (Debian: apt-get install python3-dkim)"
		exit 77
	fi
}

odk_init() {
	ODK_DIR=$1
	mkdir -p "$ODK_DIR" || wire_error "cannot make $ODK_DIR"
	ODK_CONF=$ODK_DIR/opendkim.conf
	ODK_OUT=$ODK_DIR/opendkim.out
	ODK_LOG=$ODK_DIR/opendkim.log
	: >"$ODK_OUT"
	: >"$ODK_LOG"
	# Plain $CC: the sanitizers' runtime cannot be preloaded.
	ODK_PRELOAD=$ODK_DIR/syslog_file.so
	if ! "${CC:-cc}" -shared -fPIC -o "$ODK_PRELOAD" \
	    "$abs_top_srcdir/tests/wire/syslog_file.c" \
	    >"$ODK_DIR/syslog_file.out" 2>&1; then
		echo "note: ${CC:-cc} cannot build syslog_file.c, so" \
		    "opendkim runs with Syslog no (its log is lost):"
		sed 's/^/    /' "$ODK_DIR/syslog_file.out"
		ODK_PRELOAD=
	fi
}

odk_genkey() {
	opendkim-genkey -D "$ODK_DIR" -d "$ODK_DOMAIN" -s "$ODK_SELECTOR" \
	    >"$ODK_DIR/genkey.out" 2>&1 ||
	    wire_error "opendkim-genkey failed: $(cat "$ODK_DIR/genkey.out")"
	ODK_KEY=$ODK_DIR/$ODK_SELECTOR.private
	ODK_PUBKEY=$ODK_DIR/$ODK_SELECTOR.txt
	[ -s "$ODK_KEY" ] && [ -s "$ODK_PUBKEY" ] ||
	    wire_error "opendkim-genkey made no $ODK_KEY and $ODK_PUBKEY"
}

odk_config() {
	local line syslog=no

	ODK_PORT=$1
	shift
	[ -n "$ODK_PRELOAD" ] && syslog=yes
	{
		echo "# written by tests/wire/opendkim_lib.sh"
		echo "# Sign only (no DNS is ever asked): mail whose From"
		echo "# is in Domain, from a client in InternalHosts."
		echo "Mode			s"
		echo "Domain			$ODK_DOMAIN"
		echo "Selector		$ODK_SELECTOR"
		echo "KeyFile			$ODK_KEY"
		echo "Canonicalization	relaxed/relaxed"
		echo "InternalHosts		127.0.0.1"
		echo "Socket			inet:$ODK_PORT@127.0.0.1"
		echo "Background		no"
		echo "PidFile			$ODK_DIR/opendkim.pid"
		echo "# The key lies under a directory all may write to"
		echo "# (/tmp): OpenDKIM would refuse it."
		echo "RequireSafeKeys		no"
		echo "# syslog(3), caught by syslog_file.so when preloaded"
		echo "Syslog			$syslog"
		echo "SyslogSuccess		yes"
		echo "LogWhy			yes"
		for line in "$@"; do
			echo "$line"
		done
	} >"$ODK_CONF" || wire_error "cannot write $ODK_CONF"
	opendkim -n -x "$ODK_CONF" >"$ODK_DIR/check.out" 2>&1 ||
	    wire_error "opendkim -n refuses $ODK_CONF:" \
	    "$(cat "$ODK_DIR/check.out")"
}

odk_alive() {
	[ -n "$ODK_PID" ] && kill -0 "$ODK_PID" 2>/dev/null
}

odk_start() {
	local tries=$((ODK_START_WAIT * 10)) status

	[ -z "$ODK_PID" ] || wire_error "odk_start: opendkim already runs"
	echo "==== opendkim -f -x $ODK_CONF" >>"$ODK_OUT"
	if [ -n "$ODK_PRELOAD" ]; then
		SYSLOG_FILE=$ODK_LOG LD_PRELOAD=$ODK_PRELOAD \
		    opendkim -f -x "$ODK_CONF" >>"$ODK_OUT" 2>&1 &
	else
		opendkim -f -x "$ODK_CONF" >>"$ODK_OUT" 2>&1 &
	fi
	ODK_PID=$!
	while ! pf_listening "$ODK_PORT"; do
		if ! odk_alive; then
			wait "$ODK_PID"
			status=$?
			ODK_PID=
			wire_fail "opendkim exited with status $status before" \
			    "listening on 127.0.0.1:$ODK_PORT"
			odk_show_log
			return 1
		fi
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			wire_fail "opendkim does not listen on" \
			    "127.0.0.1:$ODK_PORT after $ODK_START_WAIT s"
			odk_show_log
			return 1
		fi
		sleep 0.1
	done
	return 0
}

odk_stop() {
	local tries=$((ODK_STOP_WAIT * 10)) status

	[ -n "$ODK_PID" ] || return 0
	kill -TERM "$ODK_PID" 2>/dev/null
	while odk_alive && [ "$tries" -gt 0 ]; do
		sleep 0.1
		tries=$((tries - 1))
	done
	if odk_alive; then
		odk_kill
		wire_fail "opendkim did not stop within $ODK_STOP_WAIT s of" \
		    "SIGTERM (killed)"
		return 1
	fi
	wait "$ODK_PID"
	status=$?
	ODK_PID=
	if [ "$status" -ne 0 ]; then
		wire_fail "opendkim exited with status $status after SIGTERM"
		odk_show_log
		return 1
	fi
	return 0
}

odk_restart() {
	odk_stop && odk_start
}

odk_kill() {
	if [ -n "$ODK_PID" ]; then
		kill -KILL "$ODK_PID" 2>/dev/null
		wait "$ODK_PID" 2>/dev/null
		ODK_PID=
	fi
}

odk_show_log() {
	echo "---- opendkim's output ($ODK_OUT) ----"
	sed 's/^/    /' "$ODK_OUT"
	if [ -n "$ODK_PRELOAD" ]; then
		echo "---- opendkim's log ($ODK_LOG) ----"
		sed 's/^/    /' "$ODK_LOG"
	fi
	echo "---- end of opendkim's logs ----"
}

odk_verify() {
	local file=$1
	shift
	"$ODK_PYTHON" "$abs_top_srcdir/tests/wire/dkim_verify.py" \
	    --key "$ODK_PUBKEY" "$@" "$file"
}
