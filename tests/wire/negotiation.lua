-- negotiation.lua - miltertest script for tests/wire/negotiation.sh: what
-- milterhost asks for in the option negotiation (stages, actions,
-- protocol options), and how that shapes what the plugins get.  The
-- recorder plugins' log lines are checked by negotiation.sh.
--
-- Environment: MH_WIRE_SOCKET, MH_WIRE_SCENARIO (one of the scenarios at
-- the end), MH_WIRE_LOG (the daemon's log).  The daemon's configuration for each scenario is described
-- in negotiation.sh.
--
-- Note: miltertest's mt.negotiate takes (conn, version, steps, actions),
-- not (conn, version, actions, steps) as its manual says.

dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "wire_lib.lua")

local SOCKET = os.getenv("MH_WIRE_SOCKET")
local SCENARIO = os.getenv("MH_WIRE_SCENARIO")
-- Wait (up to 5 s) until the log has n more lines with text than it had
-- when have was counted: a session's close is logged by the daemon after
-- the client left, and the next session's lines must come after it.
local function wait_log(text, have, n)
	for _ = 1, 100 do
		if log_count(text) >= have + n then
			return
		end
		mt.sleep(0.05)
	end
	fail("the daemon did not log %d more \"%s\" lines", n, text)
end

local ALL_STEPS = 0x001FFFFF    -- SMFI_CURR_PROT: what miltertest offers
local ALL_ACTIONS = 0x000001FF  -- SMFI_CURR_ACTS
local SMFIC_DATA = string.byte("T")
local SMFIC_EOH = string.byte("N")
local SMFIC_BODYEOB = string.byte("E")

local NO_BITS = {
	NOCONNECT = SMFIP_NOCONNECT, NOHELO = SMFIP_NOHELO,
	NOMAIL = SMFIP_NOMAIL, NORCPT = SMFIP_NORCPT, NOBODY = SMFIP_NOBODY,
	NOHDRS = SMFIP_NOHDRS, NOEOH = SMFIP_NOEOH,
	NOUNKNOWN = SMFIP_NOUNKNOWN, NODATA = SMFIP_NODATA,
}
local OTHER_BITS = {
	NR_HDR = SMFIP_NR_HDR, NR_CONN = SMFIP_NR_CONN,
	NR_HELO = SMFIP_NR_HELO, NR_MAIL = SMFIP_NR_MAIL,
	NR_RCPT = SMFIP_NR_RCPT, NR_DATA = SMFIP_NR_DATA,
	NR_UNKN = SMFIP_NR_UNKN, NR_EOH = SMFIP_NR_EOH,
	NR_BODY = SMFIP_NR_BODY, SKIP = SMFIP_SKIP,
	RCPT_REJ = SMFIP_RCPT_REJ, HDR_LEADSPC = SMFIP_HDR_LEADSPC,
}
local ACTIONS = {
	ADDHDRS = SMFIF_ADDHDRS, CHGBODY = SMFIF_CHGBODY,
	ADDRCPT = SMFIF_ADDRCPT, DELRCPT = SMFIF_DELRCPT,
	CHGHDRS = SMFIF_CHGHDRS, QUARANTINE = SMFIF_QUARANTINE,
	CHGFROM = SMFIF_CHGFROM, ADDRCPT_PAR = SMFIF_ADDRCPT_PAR,
	SETSYMLIST = SMFIF_SETSYMLIST,
}

local function set_of(list)
	local s = {}
	for _, name in ipairs(list) do
		s[name] = true
	end
	return s
end

-- The names of table bits that mt.test_option/test_action finds set
-- must be exactly want (a list of names).
local function expect_bits(what, conn, bits, test, want)
	local wanted, wrong = set_of(want), {}
	for name, bit in pairs(bits) do
		local got = test(conn, bit)
		if got ~= (wanted[name] == true) then
			table.insert(wrong, (got and "+" or "-") .. name)
		end
	end
	if #wrong > 0 then
		table.sort(wrong)
		fail("%s: negotiated wrongly (+ set, should not be; - not "
		    .. "set, should be): %s", what, table.concat(wrong, " "))
	end
end

local function expect_steps(what, conn, want)
	local all = {}
	for k, v in pairs(NO_BITS) do all[k] = v end
	for k, v in pairs(OTHER_BITS) do all[k] = v end
	expect_bits(what .. " steps", conn, all, mt.test_option, want)
end

local function expect_actions(what, conn, want)
	expect_bits(what .. " actions", conn, ACTIONS, mt.test_action, want)
end

local function open_connection(steps, actions)
	local conn = mt.connect(SOCKET, 50, 0.1)
	if conn == nil then
		fail("cannot connect to %s", SOCKET)
	end
	if mt.negotiate(conn, 6, steps or ALL_STEPS,
	    actions or ALL_ACTIONS) ~= nil then
		fail("negotiation failed")
	end
	return conn
end

local function step(conn, what, fn, ...)
	wire_answer(conn, what, fn(conn, ...), SMFIR_CONTINUE)
end

-- A small message; headers: a list of {name, value}.
local function message(conn, headers)
	step(conn, "connect", mt.conninfo, "client.example.test",
	    "192.0.2.9")
	step(conn, "helo", mt.helo, "helo.example.test")
	step(conn, "mail", mt.mailfrom, "<a@example.test>")
	step(conn, "rcpt", mt.rcptto, "<b@example.test>")
	step(conn, "data", mt.data)
	for _, h in ipairs(headers or { { "Subject", "test" } }) do
		step(conn, "header", mt.header, h[1], h[2])
	end
	step(conn, "eoh", mt.eoh)
	step(conn, "body", mt.bodystring, "body\r\n")
	step(conn, "eom", mt.eom)
end

local ALL_NO = { "NOCONNECT", "NOHELO", "NOMAIL", "NORCPT", "NOBODY",
    "NOHDRS", "NOEOH", "NOUNKNOWN", "NODATA", "SKIP" }

local scenarios = {}

-- [eom] eomonly: every stage but eom negotiated away; with an MTA that
-- offers only some NO bits, only those.
function scenarios.eomonly()
	local conn = open_connection()
	expect_steps("eomonly", conn, ALL_NO)
	expect_actions("eomonly", conn, {})
	step(conn, "eom", mt.eom)
	mt.disconnect(conn)

	conn = open_connection(SMFIP_NOCONNECT | SMFIP_NOEOH | SMFIP_SKIP)
	expect_steps("eomonly, MTA offering NOCONNECT NOEOH SKIP", conn,
	    { "NOCONNECT", "NOEOH", "SKIP" })
	mt.disconnect(conn)
end

-- [rec] recorder, [eom] eomonly: every stage wanted; no option the
-- plugins did not ask for, but no answer to headers (NR_HDR).
function scenarios.recorder()
	local conn = open_connection()
	expect_steps("recorder", conn, { "SKIP", "NR_HDR" })
	expect_actions("recorder", conn, {})
	mt.disconnect(conn)
end

-- [a1] recorder_act1 (ADDHDRS CHGBODY CHGFROM), [a2] recorder_act2
-- (ADDRCPT_PAR DELRCPT QUARANTINE): the union, nothing else.
function scenarios.actions()
	local conn = open_connection()
	expect_actions("union", conn, { "ADDHDRS", "CHGBODY", "CHGFROM",
	    "ADDRCPT_PAR", "DELRCPT", "QUARANTINE" })
	mt.disconnect(conn)
end

-- [needy] recorder_act1, [plain] recorder: an MTA without CHGFROM
-- switches needy off for the connection, plain goes on; an MTA offering
-- everything gets both.
function scenarios.disabled()
	local conn = open_connection(nil, ALL_ACTIONS & ~SMFIF_CHGFROM)
	expect_actions("without CHGFROM", conn, {})
	expect_steps("without CHGFROM", conn, { "SKIP", "NR_HDR" })
	message(conn)
	mt.disconnect(conn)

	conn = open_connection()
	expect_actions("with CHGFROM", conn,
	    { "ADDHDRS", "CHGBODY", "CHGFROM" })
	message(conn)
	mt.disconnect(conn)
end

-- [needy] recorder_act1, [eom] eomonly: with needy switched off, no
-- plugin implements the other stages.
function scenarios.disabled_nobits()
	local conn = open_connection(nil, ALL_ACTIONS & ~SMFIF_CHGFROM)
	expect_steps("needy off", conn, ALL_NO)
	step(conn, "eom", mt.eom)
	mt.disconnect(conn)
end

-- [mac] recorder_macros, [plain] recorder: macros of every stage reach
-- the plugins.
function scenarios.macros()
	local conn = open_connection()
	expect_actions("macros", conn, { "SETSYMLIST" })
	mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.test",
	    "{rec_conn}", "conn-value")
	step(conn, "connect", mt.conninfo, "client.example.test",
	    "192.0.2.9")
	mt.macro(conn, SMFIC_HELO, "{rec_helo}", "helo-value")
	step(conn, "helo", mt.helo, "helo.example.test")
	mt.macro(conn, SMFIC_MAIL, "i", "QID42", "{auth_authen}", "joe",
	    "{rec_from}", "from-value")
	step(conn, "mail", mt.mailfrom, "<a@example.test>")
	mt.macro(conn, SMFIC_RCPT, "{rec_rcpt}", "rcpt-value")
	step(conn, "rcpt", mt.rcptto, "<b@example.test>")
	mt.macro(conn, SMFIC_DATA, "{rec_data}", "data-value")
	step(conn, "data", mt.data)
	step(conn, "header", mt.header, "Subject", "test")
	mt.macro(conn, SMFIC_EOH, "{rec_eoh}", "eoh-value")
	step(conn, "eoh", mt.eoh)
	step(conn, "body", mt.bodystring, "body\r\n")
	mt.macro(conn, SMFIC_BODYEOB, "{rec_eom}", "eom-value")
	step(conn, "eom", mt.eom)
	mt.disconnect(conn)
end

-- Header values sent by this script, the same with and without
-- HDR_LEADSPC (miltertest adds the space itself when it is negotiated).
local LEAD_HEADERS = {
	{ "Subject", "hello" },
	{ "X-Spaced", " spaced" },
	{ "X-Folded", "a\n\tb" },
}

-- [lead] recorder_lead, [plain] recorder.
function scenarios.leadspc()
	local conn = open_connection()
	expect_steps("leadspc offered", conn, { "SKIP", "HDR_LEADSPC",
	    "NR_HDR" })
	local closes = log_count("] rec close")

	message(conn, LEAD_HEADERS)
	mt.disconnect(conn)
	-- Both instances' close, before the next session's first lines.
	wait_log("] rec close", closes, 2)

	conn = open_connection(ALL_STEPS & ~SMFIP_HDR_LEADSPC)
	expect_steps("leadspc not offered", conn, { "SKIP", "NR_HDR" })
	message(conn, LEAD_HEADERS)
	mt.disconnect(conn)
end

-- [rej] recorder_rej, [plain] recorder: a recipient the MTA rejected
-- ({rcpt_mailer} error) goes to rej only.
function scenarios.rejected()
	local conn = open_connection()
	expect_steps("rejected rcpts", conn, { "SKIP", "RCPT_REJ", "NR_HDR" })
	step(conn, "connect", mt.conninfo, "client.example.test",
	    "192.0.2.9")
	step(conn, "helo", mt.helo, "helo.example.test")
	step(conn, "mail", mt.mailfrom, "<a@example.test>")
	mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "error")
	step(conn, "rejected rcpt", mt.rcptto, "<bad@example.test>")
	mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "local")
	step(conn, "rcpt", mt.rcptto, "<good@example.test>")
	mt.abort(conn)
	mt.disconnect(conn)
end

run_script(function()
	local scenario = scenarios[SCENARIO or ""]
	if scenario == nil then
		fail("unknown MH_WIRE_SCENARIO %s", tostring(SCENARIO))
	end
	scenario()
end)
local said = {
	eomonly = "eom only: all NO bits the MTA offers, nothing else",
	recorder = "recorder: no NO bit, no NR bit, no action, no "
	    .. "LEADSPC/RCPT_REJ unasked",
	actions = "actions are exactly the union of the plugins' actions",
	disabled = "a plugin needing an action the MTA lacks: its actions "
	    .. "not requested",
	disabled_nobits = "a switched-off plugin: all NO bits",
	macros = "SETSYMLIST requested when a plugin declared macros",
	leadspc = "HDR_LEADSPC requested when a plugin asked and offered",
	rejected = "RCPT_REJ requested when a plugin asked",
}
mt.echo("ok: " .. said[SCENARIO])
