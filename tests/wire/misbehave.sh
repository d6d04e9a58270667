#!/bin/bash
# misbehave.sh - wire test of plugin misbehaviour and dry_run: the running
# daemon with instances of the scripted test plugin, one per on_error
# setting, driven by miltertest over a unix socket.
#
# An invalid status, a status not allowed at the stage, a failed callback,
# an undeclared action (scripted_few.so declares only ADDHDRS), a bad
# header name, a bad reply and a change outside a message are each
# answered with the instance's on_error (tempfail, reject, accept,
# continue), without a custom reply, logged naming the instance, and the
# session goes on.  A dry_run instance's refusals and changes are logged
# and not carried out.  The checks are in misbehave.lua.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init misbehave
wire_need_miltertest
plugins=$abs_top_builddir/tests/plugins/.libs
for so in scripted scripted_few; do
	[ -f "$plugins/$so.so" ] ||
	    wire_error "$plugins/$so.so is missing: run make check"
done

# The misbehaving steps of kind $1 in scenario $2 (see misbehave.lua).
kind_steps() {
	local scen=$2

	case $1 in
	ret42) echo "do = @$scen#1 envfrom return 42" ;;
	disc_conn) echo "do = @$scen connect return discard" ;;
	skip_mail) echo "do = @$scen#1 envfrom skip" ;;
	fail)
		case $scen in
		*_tf) echo "do = @$scen#1 eom reply 451 4.7.1 not sent" ;;
		*) echo "do = @$scen#1 eom reply 550 5.7.1 not sent" ;;
		esac
		echo "do = @$scen#1 eom fail"
		;;
	undecl) echo "do = @$scen#1 eom add_rcpt <x@x>" ;;
	badhdr) echo "do = @$scen#1 eom add_header Bad:Name v" ;;
	badreply)
		echo "do = @$scen#1 envrcpt:<r1@x> reply 550 4.7.1 bad class"
		echo "do = @$scen#1 envrcpt:<r1@x> reject"
		;;
	modstage) echo "do = @$scen helo add_header X-A 1" ;;
	esac
}

section() {
	local name=$1 module=$2 onerr=$3 kind kinds

	echo "[plugin:$name]"
	echo "module = $plugins/$module.so"
	echo "on_error = $onerr"
	if [ "$module" = scripted_few ]; then
		kinds=undecl
	else
		kinds="ret42 disc_conn skip_mail fail badhdr badreply modstage"
	fi
	for kind in $kinds; do
		kind_steps "$kind" "${kind}_${name#few_}"
	done
	echo
}

ini=$(
	section tf scripted tempfail
	section rej scripted reject
	section acc scripted accept
	section cont scripted continue
	section few_tf scripted_few tempfail
	section few_rej scripted_few reject
	section few_acc scripted_few accept
	section few_cont scripted_few continue
	cat <<'EOF'
[plugin:dry]
module = scripted
dry_run = yes
on_error = reject
do = @dry_reject#1 eom reject 550 5.7.1 dry
do = @dry_rcpt#1 envrcpt:<r1@x> reject 550 5.1.1 dry
do = @dry_tempfail#1 data tempfail
do = @dry_discard#1 envfrom discard
do = @dry_mods#1 envfrom add_header X-Dry early
do = @dry_mods#1 eom add_header X-Dry 1
do = @dry_mods#1 eom add_rcpt <dry@x>
do = @dry_mods#1 eom replace_body dry body\r\n
do = @dry_mods#1 eom quarantine dry
do = @dry_fail#1 envfrom return 42

[plugin:z]
module = scripted
do = @dry_mods#1 eom add_header X-Z 1
EOF
	printf '\n'
) || exit 99
ini=$(echo "$ini" | wire_config misbehave) || exit 99
sed -i "s|^module = scripted\$|module = $plugins/scripted.so|" "$ini"

if wire_start "$ini"; then
	wire_miltertest "$here/misbehave.lua" MH_WIRE_LOG="$WIRE_LOG"
	wire_stop
fi
wire_exit
