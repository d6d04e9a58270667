# lib.sh - shared helpers for the wire tests: run the real milterhost on
# a unix socket in a private temporary directory and talk to it with
# miltertest, as Postfix would.
#
# A wire test is a bash script run by "make check" with abs_top_builddir,
# abs_top_srcdir and MILTERTEST in its environment.  It sources this file
# and then uses:
#
#	wire_init NAME		check the environment and the build, make
#				the temporary directory $WIRE_TMP and arm
#				the cleanup; exits 99 if something is missing
#	wire_need_miltertest	for tests that use miltertest: skip the
#				test (exit 77, saying why) if it is not
#				installed
#	wire_config NAME	write $WIRE_TMP/NAME.ini: a [milterhost]
#				section for the test socket and the build's
#				plugin directory, then the lines of stdin;
#				prints the file's path
#	wire_conf_ini NAME [SED-EXPRESSION ...]
#				write $WIRE_TMP/NAME.ini: the bundled
#				conf/milterhost.ini with the build's plugin
#				directory, edited by the sed expressions;
#				prints the file's path
#	wire_check_config INI	run "milterhost -t -c INI"; its output is
#				in $WIRE_OUT, its exit status is returned
#	wire_expect_refused NAME KEY TEXT
#				"milterhost -t" must refuse the config
#				"wire_config NAME" makes of stdin, with a
#				message naming the setting KEY ("] KEY: ")
#				and saying TEXT; prints "ok: NAME refused:"
#				and the message, or fails the test
#	wire_start INI		start the daemon in the foreground, logging
#				to $WIRE_LOG, and wait until it listens
#	wire_miltertest SCRIPT [NAME=VALUE ...]
#				run a miltertest Lua script with the socket
#				in MH_WIRE_SOCKET and the given variables
#	wire_stop		SIGTERM the daemon and check it exits 0
#	wire_fail MESSAGE	report a failed check; the test goes on
#	wire_start_second INI	start a second daemon, as wire_start does,
#				on a copy of INI listening on
#				$WIRE_SECOND_SOCKET and logging to
#				$WIRE_SECOND_LOG (printed on failure); the
#				cleanup kills it
#	wire_stop_second	SIGTERM it and check it exits 0
#	wire_second_alive	is it still there?
#	wire_expect WHAT WANT GOT
#				"ok: WHAT: GOT" if GOT is WANT, else a failed
#				check saying both
#	wire_reload		SIGUSR1 to the daemon, then wait (10 s at
#				most) for the log to say how it ended
#	wire_free_port		print a loopback port nothing listens on,
#				below the ephemeral ones (32768 on) that
#				connections take
#	wire_http PORT METHOD PATH
#				the response to METHOD PATH from the daemon's
#				metrics_listen on PORT (status line, headers,
#				body) into $WIRE_TMP/http.out, over bash's
#				/dev/tcp (no curl needed)
#	wire_scrape PORT	the body of GET /metrics into
#				$WIRE_TMP/metrics.txt
#	wire_expect_metrics LINE...
#				each line is in the scrape, exactly (a failed
#				check, with the series' values, for each
#				one that is not); 1 if one is missing
#	wire_loadgen_field NAME FILE
#				the value of NAME=VALUE in the machine lines
#				of bench/loadgen's output in FILE
#	wire_need_redis		skip the test (exit 77, saying why) if
#				redis-server is not installed
#	wire_redis_start	start a redis-server of the test's own on
#				the unix socket $WIRE_REDIS_SOCK (in
#				$WIRE_TMP; no TCP, no persistence) and wait
#				for it; the cleanup kills it
#	wire_redis_stop		kill it (at once: as a crash would)
#	wire_exit		exit 0 if no check failed, else 1
#
# Relayed: with MH_WIRE_RELAY=yes in the environment, wire_start runs the
# test's configuration in a second daemon (the backend, on its own socket,
# logging to $WIRE_LOG), and listens on the test's socket with a front
# daemon (logging to $WIRE_TMP/front.log) whose one instance is the
# bundled milter plugin with the backend as its external milter.  The
# front relays every event, answer and change, so a test whose checks
# are what the MTA hears must pass relayed as it passes direct; the
# backend's log holds what the plugins did.  (tests/wire/*_relay.sh)
#
# Exit statuses follow automake: 0 pass, 1 fail, 77 skip, 99 hard error.
# On failure the daemon's log is printed; WIRE_KEEP=yes keeps $WIRE_TMP.

WIRE_STATUS=0
WIRE_PID=
WIRE_BACKEND_PID=
WIRE_TMP=
WIRE_LOG=
WIRE_OUT=
WIRE_RUNS=0
WIRE_REDIS_PID=
WIRE_REDIS_SOCK=
WIRE_SECOND_PID=

# Seconds to wait for the socket, and for the daemon to stop after SIGTERM
# (an idle daemon stops in about 50 ms; with sessions open it waits up to
# stop_timeout, 30 s by default).
WIRE_START_WAIT=10
WIRE_STOP_WAIT=45

wire_error() {
	echo "ERROR: $*" >&2
	exit 99
}

wire_fail() {
	echo "FAIL: $*"
	WIRE_STATUS=1
}

wire_exit() {
	if [ "$WIRE_STATUS" -eq 0 ]; then
		echo "PASS: $WIRE_NAME"
	fi
	exit "$WIRE_STATUS"
}

# The miltertest program: MILTERTEST as configure found it (a path) or as
# the user gave it (a path or a command name).
wire_find_miltertest() {
	local path

	if [ -z "${MILTERTEST:-}" ]; then
		echo "SKIP: $WIRE_NAME: this test needs miltertest, which" \
		    "configure did not find: install it (Debian: apt-get" \
		    "install miltertest) and re-run configure, or run make" \
		    "check MILTERTEST=/path/to/miltertest"
		exit 77
	fi
	path=$MILTERTEST
	case $path in
	*/*) ;;
	*) path=$(command -v "$path") || path= ;;
	esac
	if [ -z "$path" ] || [ ! -f "$path" ] || [ ! -x "$path" ]; then
		wire_error "MILTERTEST=$MILTERTEST is not an executable file"
	fi
	MILTERTEST=$path
}

wire_init() {
	WIRE_NAME=$1
	if [ -z "${abs_top_builddir:-}" ] || [ -z "${abs_top_srcdir:-}" ]; then
		wire_error "abs_top_builddir and abs_top_srcdir must be set" \
		    "(run the test with make check)"
	fi
	WIRE_DAEMON=$abs_top_builddir/src/milterhost
	WIRE_PLUGIN_DIR=$abs_top_builddir/plugins/.libs
	if [ ! -x "$WIRE_DAEMON" ]; then
		wire_error "$WIRE_DAEMON is missing: build it first"
	fi
	if [ ! -d "$WIRE_PLUGIN_DIR" ]; then
		wire_error "$WIRE_PLUGIN_DIR is missing: build the plugins first"
	fi
	WIRE_TMP=$(mktemp -d "${TMPDIR:-/tmp}/milterhost-$WIRE_NAME.XXXXXX") ||
	    wire_error "cannot make a temporary directory"
	trap wire_cleanup EXIT
	trap 'exit 99' HUP INT TERM
	WIRE_SOCKET=$WIRE_TMP/mh.sock
	# sun_path holds 108 bytes with its NUL.
	if [ ${#WIRE_SOCKET} -gt 100 ]; then
		wire_error "socket path $WIRE_SOCKET is too long for a unix" \
		    "socket: set TMPDIR to a shorter directory"
	fi
	WIRE_LOG=$WIRE_TMP/milterhost.log
	: >"$WIRE_LOG"
	WIRE_SECOND_SOCKET=$WIRE_TMP/second.sock
	WIRE_SECOND_LOG=$WIRE_TMP/second.log
}

wire_expect() {
	if [ "$3" = "$2" ]; then
		echo "ok: $1: $3"
	else
		wire_fail "$1: '$3', expected '$2'"
	fi
}

wire_reload() {
	local before i

	before=$(grep -cE "reloaded:|reload failed" "$WIRE_LOG")
	kill -USR1 "$WIRE_PID"
	for i in $(seq 200); do
		[ "$(grep -cE "reloaded:|reload failed" "$WIRE_LOG")" -gt \
		    "$before" ] && return 0
		sleep 0.05
	done
	wire_fail "no outcome of the reload in the log within 10 s"
}

wire_free_port() {
	local port=$((20000 + $$ % 12000))

	while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		port=$((port + 1))
	done
	echo "$port"
}

wire_http() {
	local fd

	exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf '%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" "$3" >&"$fd"
	timeout 10 cat <&"$fd" >"$WIRE_TMP/http.out"
	exec {fd}>&-
}

wire_scrape() {
	wire_http "$1" GET /metrics ||
	    wire_error "cannot connect to 127.0.0.1:$1"
	tr -d '\r' <"$WIRE_TMP/http.out" | sed '1,/^$/d' \
	    >"$WIRE_TMP/metrics.txt"
}

wire_expect_metrics() {
	local line missing=0

	for line in "$@"; do
		if ! grep -qxF -- "$line" "$WIRE_TMP/metrics.txt"; then
			wire_fail "not in /metrics: $line" \
			    "(has: $(grep -F -- "${line% *}" \
			    "$WIRE_TMP/metrics.txt" | sed 's/.* //'))"
			missing=1
		fi
	done
	return $missing
}

wire_loadgen_field() {
	sed -n "s/^\\(.* \\)\\{0,1\\}$1=\\([^ ]*\\).*/\\2/p" "$2" | head -n 1
}

# The second daemon: wire_start on the copy, with the test's socket, log
# and pid set aside meanwhile.
wire_start_second() {
	local ini=$WIRE_TMP/second.ini status
	local sock=$WIRE_SOCKET log=$WIRE_LOG pid=$WIRE_PID

	[ -z "$WIRE_SECOND_PID" ] ||
	    wire_error "wire_start_second: the second daemon already runs"
	sed "s|^socket = .*|socket = unix:$WIRE_SECOND_SOCKET|" "$1" >"$ini" &&
	    grep -q "^socket = unix:$WIRE_SECOND_SOCKET\$" "$ini" ||
	    wire_error "cannot write $ini with the second socket"
	WIRE_SOCKET=$WIRE_SECOND_SOCKET WIRE_LOG=$WIRE_SECOND_LOG WIRE_PID=
	: >"$WIRE_LOG"
	wire_start "$ini"
	status=$?
	WIRE_SECOND_PID=$WIRE_PID
	WIRE_SOCKET=$sock WIRE_LOG=$log WIRE_PID=$pid
	return "$status"
}

wire_second_alive() {
	[ -n "$WIRE_SECOND_PID" ] && kill -0 "$WIRE_SECOND_PID" 2>/dev/null
}

wire_stop_second() {
	local status

	[ -n "$WIRE_SECOND_PID" ] || return 0
	kill -TERM "$WIRE_SECOND_PID" 2>/dev/null
	wait "$WIRE_SECOND_PID"
	status=$?
	WIRE_SECOND_PID=
	if [ "$status" -ne 0 ]; then
		wire_fail "the second milterhost exited with status $status" \
		    "after SIGTERM"
		return 1
	fi
	return 0
}

wire_need_redis() {
	if ! command -v redis-server >/dev/null 2>&1; then
		echo "SKIP: redis-server is not installed" \
		    "(on Debian: apt-get install redis-server)"
		exit 77
	fi
}

wire_redis_start() {
	local i

	WIRE_REDIS_SOCK=$WIRE_TMP/redis.sock
	rm -f "$WIRE_REDIS_SOCK"
	redis-server --port 0 --unixsocket "$WIRE_REDIS_SOCK" --save '' \
	    --appendonly no --daemonize no --dir "$WIRE_TMP" \
	    >>"$WIRE_TMP/redis.log" 2>&1 &
	WIRE_REDIS_PID=$!
	for i in $(seq 200); do
		[ -S "$WIRE_REDIS_SOCK" ] && return 0
		sleep 0.05
	done
	wire_error "redis-server did not create $WIRE_REDIS_SOCK within 10 s"
}

wire_redis_stop() {
	[ -n "$WIRE_REDIS_PID" ] || return 0
	kill -KILL "$WIRE_REDIS_PID" 2>/dev/null
	wait "$WIRE_REDIS_PID" 2>/dev/null
	WIRE_REDIS_PID=
}

wire_need_miltertest() {
	wire_find_miltertest
}

wire_cleanup() {
	local status=$?

	trap - EXIT
	for pid in "$WIRE_PID" "$WIRE_BACKEND_PID" "$WIRE_SECOND_PID" \
	    "$WIRE_REDIS_PID"; do
		if [ -n "$pid" ]; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		fi
	done
	WIRE_PID= WIRE_BACKEND_PID= WIRE_SECOND_PID= WIRE_REDIS_PID=
	if [ "$status" -ne 0 ] && [ -s "$WIRE_LOG" ]; then
		echo "---- milterhost log ($WIRE_LOG) ----"
		cat "$WIRE_LOG"
		echo "---- end of log ----"
	fi
	if [ "$status" -ne 0 ] && [ -s "$WIRE_TMP/second.log" ]; then
		echo "---- the second milterhost's log ($WIRE_TMP/second.log) ----"
		cat "$WIRE_TMP/second.log"
		echo "---- end of log ----"
	fi
	if [ "$status" -ne 0 ] && [ -s "$WIRE_TMP/front.log" ]; then
		echo "---- the relaying front's log ($WIRE_TMP/front.log) ----"
		cat "$WIRE_TMP/front.log"
		echo "---- end of log ----"
	fi
	if [ -n "$WIRE_TMP" ]; then
		if [ "${WIRE_KEEP:-no}" = yes ]; then
			echo "kept $WIRE_TMP"
		else
			rm -rf "$WIRE_TMP"
		fi
	fi
	exit "$status"
}

wire_config() {
	local ini=$WIRE_TMP/$1.ini

	{
		echo "[milterhost]"
		echo "socket = unix:$WIRE_SOCKET"
		echo "plugin_dir = $WIRE_PLUGIN_DIR"
		echo "log_level = debug"
		echo "log_destination = stderr"
		echo
		cat
	} >"$ini" || wire_error "cannot write $ini"
	echo "$ini"
}

wire_conf_ini() {
	local ini=$WIRE_TMP/$1.ini expr
	local -a edits=(-e "s|^;plugin_dir = .*|plugin_dir = $WIRE_PLUGIN_DIR|")
	shift

	for expr in "$@"; do
		edits+=(-e "$expr")
	done
	sed "${edits[@]}" "$abs_top_srcdir/conf/milterhost.ini" >"$ini" ||
	    wire_error "cannot copy conf/milterhost.ini"
	grep -q "^plugin_dir = $WIRE_PLUGIN_DIR\$" "$ini" ||
	    wire_error "conf/milterhost.ini has no ';plugin_dir = ' line to set"
	echo "$ini"
}

wire_check_config() {
	WIRE_OUT=$WIRE_TMP/check.out
	"$WIRE_DAEMON" -t -c "$1" >"$WIRE_OUT" 2>&1
}

wire_expect_refused() {
	local name=$1 key=$2 text=$3 ini

	ini=$(wire_config "$name") || exit 99
	if wire_check_config "$ini"; then
		wire_fail "$name: milterhost -t accepted it"
	elif ! grep -qF -- "] $key: " "$WIRE_OUT" ||
	    ! grep -qF -- "$text" "$WIRE_OUT"; then
		wire_fail "$name: the error does not name '$key' and" \
		    "say '$text'"
	else
		echo "ok: $name refused:" \
		    "$(grep -v ": debug: " "$WIRE_OUT" | head -n 1)"
		return 0
	fi
	sed 's/^/    /' "$WIRE_OUT"
}

# Is the daemon process still there?  bash reaps its children as they
# exit, so kill -0 fails once it is gone.
wire_alive() {
	[ -n "$WIRE_PID" ] && kill -0 "$WIRE_PID" 2>/dev/null
}

# wire_start_relayed INI: the backend runs INI on backend.sock, then the
# front listens on the test's socket (see "Relayed" above).
wire_start_relayed() {
	local ini=$1 backend=$WIRE_TMP/backend.sock front
	local tries=$((WIRE_START_WAIT * 10))

	sed "s|^socket = unix:$WIRE_SOCKET\$|socket = unix:$backend|" "$ini" \
	    >"$ini.backend" || wire_error "cannot write $ini.backend"
	grep -q "^socket = unix:$backend\$" "$ini.backend" ||
	    wire_error "$ini does not listen on $WIRE_SOCKET"
	rm -f "$backend"
	echo "==== run $WIRE_RUNS (backend): milterhost -f -c $ini.backend" \
	    >>"$WIRE_LOG"
	"$WIRE_DAEMON" -f -c "$ini.backend" >>"$WIRE_LOG" 2>&1 &
	WIRE_BACKEND_PID=$!
	while [ ! -S "$backend" ] && [ "$tries" -gt 0 ]; do
		kill -0 "$WIRE_BACKEND_PID" 2>/dev/null || break
		sleep 0.1
		tries=$((tries - 1))
	done
	if [ ! -S "$backend" ]; then
		wire_fail "the backend milterhost -c $ini.backend did not listen"
		return 1
	fi
	front=$(wire_config front <<EOF
[plugin:relay]
module = $abs_top_builddir/plugins/.libs/milter.so
socket = unix:$backend
EOF
	) || exit 99
	echo "==== run $WIRE_RUNS (front): milterhost -f -c $front" \
	    >>"$WIRE_TMP/front.log"
	"$WIRE_DAEMON" -f -c "$front" >>"$WIRE_TMP/front.log" 2>&1 &
	WIRE_PID=$!
}

wire_start() {
	local ini=$1 tries=$((WIRE_START_WAIT * 10)) status

	[ -z "$WIRE_PID" ] || wire_error "wire_start: milterhost already runs"
	rm -f "$WIRE_SOCKET"
	WIRE_RUNS=$((WIRE_RUNS + 1))
	if [ "${MH_WIRE_RELAY:-no}" = yes ]; then
		wire_start_relayed "$ini" || return 1
	else
		echo "==== run $WIRE_RUNS: milterhost -f -c $ini" >>"$WIRE_LOG"
		"$WIRE_DAEMON" -f -c "$ini" >>"$WIRE_LOG" 2>&1 &
		WIRE_PID=$!
	fi
	while [ "$tries" -gt 0 ]; do
		if [ -S "$WIRE_SOCKET" ] && wire_alive; then
			return 0
		fi
		if ! wire_alive; then
			wait "$WIRE_PID"
			status=$?
			WIRE_PID=
			wire_fail "milterhost -c $ini exited with status" \
			    "$status before listening"
			return 1
		fi
		sleep 0.1
		tries=$((tries - 1))
	done
	wire_fail "milterhost -c $ini did not create $WIRE_SOCKET within" \
	    "$WIRE_START_WAIT s"
	return 1
}

wire_stop() {
	local tries=$((WIRE_STOP_WAIT * 10)) status

	[ -n "$WIRE_PID" ] || return 0
	kill -TERM "$WIRE_PID" 2>/dev/null
	while wire_alive && [ "$tries" -gt 0 ]; do
		sleep 0.1
		tries=$((tries - 1))
	done
	if wire_alive; then
		kill -KILL "$WIRE_PID" 2>/dev/null
		wait "$WIRE_PID" 2>/dev/null
		WIRE_PID=
		wire_fail "milterhost did not stop within $WIRE_STOP_WAIT s" \
		    "of SIGTERM (killed)"
		return 1
	fi
	wait "$WIRE_PID"
	status=$?
	WIRE_PID=
	if [ "$status" -ne 0 ]; then
		wire_fail "milterhost exited with status $status after SIGTERM"
		return 1
	fi
	if [ -n "$WIRE_BACKEND_PID" ]; then
		kill -TERM "$WIRE_BACKEND_PID" 2>/dev/null
		wait "$WIRE_BACKEND_PID"
		status=$?
		WIRE_BACKEND_PID=
		if [ "$status" -ne 0 ]; then
			wire_fail "the backend milterhost exited with status" \
			    "$status after SIGTERM"
			return 1
		fi
	fi
	return 0
}

wire_miltertest() {
	local script=$1 status
	shift

	if ! wire_alive; then
		wire_fail "miltertest $script: milterhost is not running"
		return 1
	fi
	env MH_WIRE_SOCKET="unix:$WIRE_SOCKET" "$@" \
	    "$MILTERTEST" -s "$script" >"$WIRE_TMP/miltertest.out" 2>&1
	status=$?
	cat "$WIRE_TMP/miltertest.out"
	if [ "$status" -ne 0 ]; then
		wire_fail "miltertest -s $script $* exited with status $status"
		return 1
	fi
	return 0
}

# wire_postfix_init NAME: wire_init for a test through a private Postfix
# (tests/postfix/instance.sh, sourced here): skip (77, saying why) without
# Postfix, root or swaks; then $pf is the instance's directory (under a
# $WIRE_TMP Postfix's daemons can reach) and the exit stops it.
wire_postfix_init() {
	. "$abs_top_srcdir/tests/postfix/instance.sh" || exit 99
	if ! pf_available; then
		echo "SKIP: $1: the end-to-end test needs Postfix: $PF_WHY"
		exit 77
	fi
	if ! command -v swaks >/dev/null 2>&1; then
		echo "SKIP: $1: the end-to-end test needs swaks (Debian:" \
		    "apt-get install swaks)"
		exit 77
	fi
	wire_init "$1"
	chmod 755 "$WIRE_TMP"
	pf=$WIRE_TMP/pf
	trap 'st=$?; pf_stop "$pf"; (exit $st); wire_cleanup' EXIT
}
