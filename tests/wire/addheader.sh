#!/bin/bash
# addheader.sh - wire test of the bundled addheader plugin in the real
# daemon, driven by miltertest over a unix socket.
#
#  1. milterhost -t accepts the bundled conf/milterhost.ini and a test
#     config, and refuses each bad addheader setting, naming the key.
#  2. "single": one instance; a transaction gets the header appended with
#     its macros expanded (a macro the MTA did not send is empty, CR/LF in
#     a macro value become spaces, %% is a '%').
#  3. "chain": two instances, one appending, one inserting at 0; both
#     headers reach the MTA, in chain order.
#
# The checks of a transaction are in addheader.lua.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init addheader
wire_need_miltertest
script=$here/addheader.lua

# ---- 1. configuration checks -------------------------------------------

bundled=$(wire_conf_ini bundled) || exit 99
if wire_check_config "$bundled" && grep -q addheader "$WIRE_OUT"; then
	echo "ok: milterhost -t accepts conf/milterhost.ini"
else
	cat "$WIRE_OUT"
	wire_fail "milterhost -t refuses conf/milterhost.ini"
fi

wire_expect_refused unknown-key colour \
    "unknown key: addheader takes header, value and position" <<'EOF'
[plugin:t]
module = addheader
header = X-Test
value = v
colour = red
EOF
wire_expect_refused lone-percent value "lone '%'" <<'EOF'
[plugin:t]
module = addheader
header = X-Test
value = 100% sure
EOF
wire_expect_refused unterminated value "unterminated '%{'" <<'EOF'
[plugin:t]
module = addheader
header = X-Test
value = by %{j
EOF
wire_expect_refused bad-header header "bad header name" <<'EOF'
[plugin:t]
module = addheader
header = X:Test
value = v
EOF
wire_expect_refused no-header header "missing" <<'EOF'
[plugin:t]
module = addheader
value = v
EOF
wire_expect_refused no-value value "missing" <<'EOF'
[plugin:t]
module = addheader
header = X-Test
EOF
wire_expect_refused bad-position position "bad position" <<'EOF'
[plugin:t]
module = addheader
header = X-Test
value = v
position = -1
EOF

# ---- 2. one instance ---------------------------------------------------

single=$(wire_config single <<'EOF'
[plugin:tag]
module = addheader
header = X-Milterhost
value = by %{j} id %{i} from %{client_addr} name %{daemon_name} 100%% [%{no_such_macro}]
EOF
) || exit 99
if wire_start "$single"; then
	wire_miltertest "$script" MH_WIRE_SCENARIO=single
	wire_stop
fi

# ---- 3. two instances ----------------------------------------------------

chain=$(wire_config chain <<'EOF'
[plugin:first]
module = addheader
header = X-Chain
value = first %{j}

[plugin:second]
module = addheader
header = X-Chain
value = second %{i}
position = 0
EOF
) || exit 99
if wire_start "$chain"; then
	wire_miltertest "$script" MH_WIRE_SCENARIO=chain
	wire_stop
fi

# ---- 4. the template's macros, asked for at the end of the message ------
#
# {foo} is in no default list: the instance declares it (ABI 1.1) and
# milterhost asks the MTA for it at eom; sent there, it arrives filled.

declared=$(wire_config declared <<'EOF'
[plugin:tag]
module = addheader
header = X-Declared
value = %{foo} and %{i}
EOF
) || exit 99
if wire_start "$declared"; then
	printf 'negotiate\t6\t0x1ff\t0x1fffff\nquit\n' |
	    "$abs_top_builddir/tests/wire/mtaclient" script \
	    "$WIRE_SOCKET" >"$WIRE_TMP/declared.out" 2>&1
	eom_list=$(sed -n 's/^symlist 5 //p' "$WIRE_TMP/declared.out")
	words=$(printf '%s\n' $eom_list | LC_ALL=C sort | tr '\n' ' ')
	if [ "$words" = "i {foo} " ]; then
		echo "ok: declared: milterhost asks for {foo} and i at eom"
	else
		wire_fail "declared: the eom macro list is '$eom_list'"
		sed 's/^/    /' "$WIRE_TMP/declared.out"
	fi
	wire_miltertest "$script" MH_WIRE_SCENARIO=declared
	wire_stop
fi

wire_exit
