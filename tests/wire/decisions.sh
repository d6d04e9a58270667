#!/bin/bash
# decisions.sh - wire test of the chain's decisions: the running daemon,
# with three instances (a, b, c) of the scripted test plugin, driven by
# miltertest over a unix socket.
#
# Every decision at every stage where it is legal arrives at the MTA as
# the right reply, with its scope (connection, recipient, message), with
# the deciding plugin's custom reply (single and multi-line), and with
# the later plugins not called; accept by one or by all, skip in body,
# replies of the wrong class, replies that do not outlive their callback,
# and "the first terminal decision wins".  The checks are in
# decisions.lua; this script writes the configuration: one connection per
# scenario, whose client host name selects the plugins' steps.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init decisions
wire_need_miltertest
plugin=$abs_top_builddir/tests/plugins/.libs/scripted.so
[ -f "$plugin" ] || wire_error "$plugin is missing: run make check"

# The step of instance b for decision DEC at STAGE in scenario SCEN (see
# decisions.lua): connect and helo happen before the first message, the
# other stages act in the first message only.
b_step() {
	local stage=$1 dec=$2 scen=$1_$2 where

	case $stage in
	connect | helo | unknown) where="@$scen $stage" ;;
	envrcpt) where="@$scen#1 envrcpt:<r1@x>" ;;
	header) where="@$scen#1 header:Subject" ;;
	body) where="@$scen#1 body:1" ;;
	*) where="@$scen#1 $stage" ;;
	esac
	case $dec in
	rej) echo "do = $where reject" ;;
	rejr) echo "do = $where reject 550 5.7.1 b refuses $scen" ;;
	tf) echo "do = $where tempfail" ;;
	tfr) echo "do = $where tempfail 451 4.7.1 b defers $scen" ;;
	disc) echo "do = $where discard" ;;
	acc1 | accall) echo "do = $where accept" ;;
	esac
}

# Steps of instance $1 (a, b or c).
steps() {
	local inst=$1 stage dec

	for stage in connect helo; do
		for dec in rej rejr tf tfr acc1 accall; do
			if [ "$inst" = b ]; then
				b_step "$stage" "$dec"
			elif [ "$dec" = accall ]; then
				b_step "$stage" "$dec"
			fi
		done
	done
	for dec in rej rejr tf tfr; do
		[ "$inst" = b ] && b_step unknown "$dec"
	done
	for stage in envfrom envrcpt data header eoh body eom; do
		for dec in rej rejr tf tfr disc acc1 accall; do
			if [ "$inst" = b ]; then
				b_step "$stage" "$dec"
			elif [ "$dec" = accall ]; then
				b_step "$stage" "$dec"
			fi
		done
	done
	case $inst in
	a | c)
		echo "do = @skip_only#1 eoh accept"
		;;
	esac
	case $inst in
	b)
		cat <<'EOF'
do = @skip_only#1 body:1 skip
do = @skip_other#1 body:1 skip
do = @ml_eom#1 eom reply_ml 550 5.7.1 first line|second line|third line
do = @ml_eom#1 eom reject
do = @ml_rcpt#1 envrcpt:<r1@x> reply_ml 550 5.1.1 one|two
do = @ml_rcpt#1 envrcpt:<r1@x> reject
do = @mismatch_eom#1 eom reply 451 4.7.1 wrong class
do = @mismatch_eom#1 eom reject
do = @mismatch_mail#1 envfrom reply 550 5.7.1 wrong class
do = @mismatch_mail#1 envfrom tempfail
do = @stale_reply#1 envfrom reply 550 5.7.1 stale
do = @stale_reply#1 envrcpt:<r1@x> reject
do = @first_wins#1 eom reject 550 5.7.1 b was first
EOF
		;;
	c)
		echo "do = @first_wins#1 eom reject 554 5.7.1 c was second"
		;;
	esac
}

ini=$(
	for inst in a b c; do
		echo "[plugin:$inst]"
		echo "module = $plugin"
		steps "$inst"
		echo
	done | wire_config decisions
) || exit 99

if wire_start "$ini"; then
	wire_miltertest "$here/decisions.lua" MH_WIRE_LOG="$WIRE_LOG"
	wire_stop
fi
wire_exit
