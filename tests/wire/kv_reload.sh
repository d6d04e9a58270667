#!/bin/bash
# kv_reload.sh - the plugins' key-value store (ABI 1.4, kv = memory)
# belongs to the daemon: what a plugin counted there survives a reload
# (a new plugin set, even with changed kv keys, which take a restart and
# are said so: kv = redis:// too), and is gone after a restart.  The scripted plugin counts
# messages in key "n" at eom and adds the count as a header.
here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99
wire_init kv_reload
client=$abs_top_builddir/tests/wire/mtaclient
[ -x "$client" ] || wire_error "$client is missing: build it first"
WIRE_PLUGIN_DIR=$abs_top_builddir/tests/plugins/.libs

# count NAME: the value of header NAME a new connection's message gets.
count() {
	"$client" mods "$WIRE_SOCKET" 2>&1 | sed -n "s/^mod h $1|//p" |
	    tr -d ' '
}

ini=$(wire_config kv_reload <<EOF
[plugin:count]
module = scripted
do = eom kv_count n X-Count
EOF
) || exit 99
wire_start "$ini" || wire_exit

wire_expect "first message" 1 "$(count X-Count)"
wire_expect "second message" 2 "$(count X-Count)"

# A new set (the header's name changed): the count goes on.
sed -i 's/kv_count n X-Count$/kv_count n X-Counted/' "$ini"
wire_reload
grep -q "reloaded: 1 plugin instance" "$WIRE_LOG" ||
    wire_fail "no 'reloaded' line in the log"
wire_expect "after a reload" 3 "$(count X-Counted)"

# A changed bound takes a restart: said so, and the store stays.
sed -i 's/^log_level = debug$/log_level = debug\nkv_memory_max_bytes = 16M/' \
    "$ini"
grep -q "^kv_memory_max_bytes = 16M$" "$ini" || wire_error "sed failed"
wire_reload
grep -q "reload: kv, kv_password, kv_timeout_ms or kv_memory_max_bytes changed in $ini: they take a restart" \
    "$WIRE_LOG" || wire_fail "no warning that the kv keys take a restart"
wire_expect "after a reload changing the bound" 4 "$(count X-Counted)"

# A restart starts from nothing.
wire_stop
wire_start "$ini" || wire_exit
wire_expect "after a restart" 1 "$(count X-Counted)"

# kv = redis:// is a change of store: it takes a restart, said so, and
# the memory store stays until then.
sed -i 's|^kv_memory_max_bytes = 16M$|kv = redis://127.0.0.1:6379/0|' "$ini"
grep -q "^kv = redis://127.0.0.1:6379/0$" "$ini" || wire_error "sed failed"
wire_reload
[ "$(grep -c "reload: kv, kv_password, kv_timeout_ms or kv_memory_max_bytes changed in $ini: they take a restart" \
    "$WIRE_LOG")" -eq 2 ] || wire_fail "no warning that kv = redis takes a restart"
wire_expect "after a reload to kv = redis" 2 "$(count X-Counted)"

# A bad kv_password is refused with the file, line and key.
sed -i 's|^kv = redis://127.0.0.1:6379/0$|&\nkv_password = two words|' "$ini"
wire_reload
grep -q "reload failed, the running configuration stays: $ini:[0-9]*: bad value 'two words' for key 'kv_password'" \
    "$WIRE_LOG" || wire_fail "no refusal of a bad kv_password naming the key"
wire_expect "after the refused reload" 3 "$(count X-Counted)"
wire_stop
wire_exit
