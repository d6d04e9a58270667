#!/bin/bash
# reload.sh - SIGUSR1 reloads the configuration and the plugins without
# dropping a session.
#
#  1. A new configuration (the header the plugin adds changes): new
#     connections get it, a connection open across the reload finishes
#     with the set it started with.
#  2. A configuration that does not load (a syntax error, then a plugin
#     whose init fails, then a bad condition): the reload is refused with
#     file, line and key in the log, and the running set goes on serving.
#  3. A plugin file replaced on disk by rename (a new build installed over
#     the old, as install(1) does): after the reload new connections run
#     the new build, while a connection open across it finishes with the
#     old one (glibc's dlopen alone would have kept the old code).

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init reload
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"
WIRE_PLUGIN_DIR=$abs_top_builddir/tests/plugins/.libs
plugins=$WIRE_TMP/plugins
mkdir "$plugins" && chmod 755 "$WIRE_TMP" "$plugins" ||
    wire_error "cannot make $plugins"

# header: the X-Gen value a new connection's message gets.
header() {
	"$client" mods "$WIRE_SOCKET" 2>&1 | sed -n 's/^mod h X-Gen|//p' |
	    tr -d ' '
}

# expect WHAT WANT GOT
expect() {
	if [ "$3" = "$2" ]; then
		echo "ok: $1: X-Gen $3"
	else
		wire_fail "$1: X-Gen '$3', expected '$2'"
	fi
}

# A paused session: started now, finished by finish_paused.
start_paused() {
	coproc PAUSED { "$client" pause "$WIRE_SOCKET" 2>&1; }
	IFS= read -r -t 10 line <&"${PAUSED[0]}"
	[ "$line" = paused ] || wire_fail "the paused client said: $line"
}

# finish_paused: let the paused client finish; its X-Gen in $paused
# (coproc descriptors do not reach a $(...) subshell).
finish_paused() {
	echo go >&"${PAUSED[1]}"
	timeout 10 cat <&"${PAUSED[0]}" >"$WIRE_TMP/paused.out"
	paused=$(sed -n 's/^mod h X-Gen|//p' "$WIRE_TMP/paused.out" |
	    tr -d ' ')
	wait "$PAUSED_PID" 2>/dev/null
}

ini=$(wire_config reload <<EOF
[plugin:hdr]
module = scripted
do = eom add_header X-Gen one
EOF
) || exit 99
wire_start "$ini" || wire_exit

# ---- 1. a new configuration ------------------------------------------------
expect "before the reload" one "$(header)"
start_paused
sed -i 's/add_header X-Gen one/add_header X-Gen two/' "$ini"
wire_reload
grep -q "reloaded: 1 plugin instance" "$WIRE_LOG" ||
    wire_fail "no 'reloaded' line in the log"
expect "a new connection after the reload" two "$(header)"
finish_paused
expect "the connection open across the reload" one "$paused"

# ---- 2. configurations that do not load ------------------------------------
cp "$ini" "$WIRE_TMP/good.ini"
echo "this line is not ini" >>"$ini"
wire_reload
grep -q "reload failed, the running configuration stays: $ini:" \
    "$WIRE_LOG" || wire_fail "no refusal naming the file and line"
expect "after a refused reload" two "$(header)"
cp "$WIRE_TMP/good.ini" "$ini"
printf '\n[plugin:bad]\nmodule = scripted\ndo = nowhere nothing\n' >>"$ini"
wire_reload
grep -q "reload failed, the running plugins stay: .*\[plugin:bad\] do" \
    "$WIRE_LOG" || wire_fail "no refusal naming the plugin and key"
expect "after a refused plugin" two "$(header)"
cp "$WIRE_TMP/good.ini" "$ini"
printf 'if_sender = ^(unclosed\n' >>"$ini"
wire_reload
grep -q "reload failed, the running configuration stays: $ini:[0-9]*: \[plugin:hdr\] key 'if_sender': bad regular expression" \
    "$WIRE_LOG" || wire_fail "no refusal of a bad condition naming the key"
expect "after a refused condition" two "$(header)"

# ---- 3. a plugin file replaced by rename ----------------------------------
install -m 644 "$WIRE_PLUGIN_DIR/gen1.so" "$plugins/gen.so"
cat >"$ini" <<EOF
[milterhost]
socket = unix:$WIRE_SOCKET
plugin_dir = $plugins
log_level = debug
log_destination = stderr

[plugin:gen]
module = gen
EOF
wire_reload
expect "the first build" 1 "$(header)"
start_paused
install -m 644 "$WIRE_PLUGIN_DIR/gen2.so" "$plugins/gen.so"
wire_reload
expect "the new build after the reload" 2 "$(header)"
finish_paused
expect "the connection open across it, with the old build" 1 "$paused"
wire_stop
wire_exit
