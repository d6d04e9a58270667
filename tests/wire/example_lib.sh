# example_lib.sh - what example_plugin.sh and cxx_plugin.sh check of an
# example plugin built out of tree (the README's rejectdomain, in C or in
# C++): sourced after lib.sh and wire_init.
#
#	check_example SO NAME WHAT
#		SO, the built plugin, whose descriptor name is NAME: milterhost
#		-t loads it, refuses it without its domain key (naming the
#		key), and the running daemon with it rejects the sender of
#		the domain (example_plugin.lua) and logs it.  WHAT names the
#		plugin in the messages ("the C++ example").

check_example() {
	local so=$1 name=$2 what=$3 ini missing

	ini=$(wire_config example <<EOF2
[plugin:no-spammers]
module = $so
domain = spam.example
EOF2
	) || exit 99
	if wire_check_config "$ini" && grep -q "$name" "$WIRE_OUT"; then
		echo "ok: milterhost -t loads $what"
	else
		cat "$WIRE_OUT"
		wire_fail "milterhost -t refuses $what"
	fi

	missing=$(wire_config missing <<EOF2
[plugin:no-spammers]
module = $so
EOF2
	) || exit 99
	if wire_check_config "$missing"; then
		wire_fail "$what accepted a config without domain"
	elif grep -q "domain" "$WIRE_OUT"; then
		echo "ok: $(cat "$WIRE_OUT")"
	else
		cat "$WIRE_OUT"
		wire_fail "the error for a missing domain does not name the key"
	fi

	if wire_start "$ini"; then
		wire_miltertest "$here/example_plugin.lua"
		grep -q "refusing <someone@spam.example>" "$WIRE_LOG" ||
		    wire_fail "the plugin's log line is not in the daemon's log"
		wire_stop
	fi
}
