-- decisions.lua - miltertest script for tests/wire/decisions.sh: every
-- decision of a plugin at every stage where it is legal, as the MTA hears
-- it from the running milterhost, with its scope.
--
-- The daemon runs three instances of the scripted test plugin, a, b and
-- c, in that order (decisions.sh writes the configuration).  Every
-- scenario is one connection whose client host name is the scenario's
-- name, which selects the steps of the plugins.  In the generated
-- scenarios STAGE_DECISION, b decides at the first event of STAGE of the
-- first message, a and c continue (in STAGE_accall all three accept).
--
-- Environment: MH_WIRE_SOCKET (the daemon's socket), MH_WIRE_LOG (its
-- log, where the plugins log every call as "[INSTANCE] SCENARIO call
-- STAGE ARGUMENT").
--
-- Each check prints "ok: ..." or "FAIL: ..."; the script exits 1 if any
-- failed.  miltertest swallows Lua errors, so every check runs under
-- pcall (check and run_script of wire_lib.lua).

-- The shared helpers (fail, check, open, send, expect, run, ...).
dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "scripted_lib.lua")

-- ---- generated scenarios -------------------------------------------------

local CONN_STAGES = { "connect", "helo" }
local MSG_STAGES = { "envfrom", "envrcpt", "data", "header", "eoh", "body",
	"eom" }

-- The reply each decision must arrive as (at every stage).
local ANSWER = {
	rej = SMFIR_REJECT, rejr = SMFIR_REPLYCODE, tf = SMFIR_TEMPFAIL,
	tfr = SMFIR_REPLYCODE, disc = SMFIR_DISCARD, acc1 = SMFIR_CONTINUE,
	accall = SMFIR_ACCEPT,
}
-- The reply text of rejr and tfr (see decisions.sh).
local TEXT = {
	rejr = { "550", "5.7.1", "b refuses " },
	tfr = { "451", "4.7.1", "b defers " },
}

-- The event of a stage where b decides, and the text of its call.
local DECIDING_ARG = { envrcpt = "<r1@x>", header = "Subject", body = "1" }

local function is_decider(e, stage)
	return e.stage == stage and (DECIDING_ARG[stage] == nil or
	    DECIDING_ARG[stage] == e.arg)
end

local function call_text(e)
	return e.arg ~= nil and e.stage .. " " .. e.arg or e.stage
end

-- Split events at b's decision: before, the deciding event, after.
local function split(events, stage)
	local before, after, at = {}, {}, nil
	for _, e in ipairs(events) do
		if at == nil and is_decider(e, stage) then
			at = e
		elseif at == nil then
			before[#before + 1] = e
		else
			after[#after + 1] = e
		end
	end
	return before, at, after
end

-- The reply text at eom, where miltertest keeps it.
local function check_text(c, scen, dec, stage)
	if stage ~= "eom" or TEXT[dec] == nil then
		return
	end
	local t = TEXT[dec]
	if not mt.eom_check(c, MT_SMTPREPLY, t[1], t[2], t[3] .. scen) then
		fail("eom: the reply is not '%s %s %s%s'", t[1], t[2], t[3],
		    scen)
	end
end

-- connect, helo: a refusal refuses the connection; acc1 lets the others
-- go on; accall ends the milter's part.
local function conn_scenario(stage, dec)
	local scen = stage .. "_" .. dec
	local events = concat(CONN, message("<s@x>"))
	local before, at, after = split(events, stage)
	local c = open(scen)

	run(c, scen, before)
	expect(c, scen, at, ANSWER[dec])
	expect_calls("c", scen, call_text(at), dec == "accall" and 1 or
	    (dec == "acc1" and 1 or 0))
	if dec == "acc1" then
		-- b is done for the connection; the others get everything.
		run(c, scen, after)
		expect_calls("b", scen, "envfrom", 0)
		expect_calls("b", scen, "eom", 0)
		expect_calls("a", scen, "eom", 1)
		expect_calls("c", scen, "eom", 1)
	elseif dec ~= "accall" then
		-- The next command gets the refusal again, no plugin is
		-- called for it.
		local r = send(c, scen, after[1])
		local same = dec:sub(1, 3) == "rej" and SMFIR_REJECT or
		    SMFIR_TEMPFAIL
		if r ~= same and r ~= SMFIR_REPLYCODE then
			fail("%s after the refusal: answered %s, expected %s",
			    after[1].stage, reply_name(r), reply_name(same))
		end
		for _, inst in ipairs({ "a", "b", "c" }) do
			expect_calls(inst, scen, after[1].stage, 0)
		end
	end
	mt.disconnect(c)
end

-- Message stages: refusals and discard end the message (every plugin
-- reached gets abort), except a recipient refusal, which refuses one
-- recipient; then a second message goes through.
local function msg_scenario(stage, dec)
	local scen = stage .. "_" .. dec
	local events = concat(CONN, message("<s@x>"))
	local before, at, after = split(events, stage)
	local c = open(scen)
	local reached_c = stage ~= "envfrom" or dec == "accall"
	local ends = dec == "disc" or dec == "accall" or
	    (stage ~= "envrcpt" and dec ~= "acc1")

	run(c, scen, before)
	-- Headers get no answer of milterhost's (NR_HDR; libmilter answers
	-- continue for an MTA that does not offer it): a decision at header
	-- reaches the MTA at the next event that is not a header, eoh.
	local answered = at
	if stage == "header" then
		expect(c, scen, at, SMFIR_CONTINUE)
		answered = table.remove(after, 1)
		while answered.stage == "header" do
			expect(c, scen, answered, SMFIR_CONTINUE)
			answered = table.remove(after, 1)
		end
	end
	-- All three accepting at eom: no plugin is left, so accept.
	expect(c, scen, answered, ANSWER[dec])
	check_text(c, scen, dec, stage)
	-- c comes after the decider: called only if b did not decide
	-- terminally.
	local c_called = (dec == "acc1" or dec == "accall") and 1 or 0
	expect_calls("c", scen, call_text(at), c_called)
	if not ends then
		run(c, scen, after)
		-- b left the message on acc1: not called after its accept.
		if dec == "acc1" and stage ~= "eom" then
			expect_calls("b", scen, "eom", 0)
			expect_calls("b", scen, "abort", 1)
		else
			expect_calls("b", scen, "eom", 1)
			expect_calls("b", scen, "abort", 0)
		end
		if stage == "envrcpt" then
			-- the second recipient reaches b (unless it left)
			-- and c
			expect_calls("b", scen, "envrcpt <r2@x>",
			    dec == "acc1" and 0 or 1)
			expect_calls("c", scen, "envrcpt <r2@x>", 1)
		end
		expect_calls("a", scen, "eom", 1)
		expect_calls("c", scen, "eom", 1)
		expect_calls("a", scen, "abort", 0)
	elseif stage == "eom" then
		-- a and b had their eom call; c, not called, gets abort
		-- unless it accepted too.
		expect_calls("a", scen, "abort", 0)
		expect_calls("b", scen, "abort", 0)
		expect_calls("c", scen, "abort", dec == "accall" and 0 or 1)
		expect_calls("a", scen, "eom", 1)
	else
		-- The message ended: every plugin reached gets abort.
		expect_calls("a", scen, "abort", 1)
		expect_calls("b", scen, "abort", 1)
		expect_calls("c", scen, "abort", reached_c and 1 or 0)
		expect_calls("a", scen, "eom", 0)
	end
	-- The next message of the connection goes through, with everybody.
	run(c, scen, message("<s2@x>"))
	expect_calls("b", scen, "envfrom <s2@x>", 1)
	expect_calls("c", scen, "envfrom <s2@x>", 1)
	mt.disconnect(c)
end

-- unknown: the verdict concerns the command only.
local function unknown_scenario(dec)
	local scen = "unknown_" .. dec
	local c = open(scen)

	run(c, scen, CONN)
	expect(c, scen, ev("unknown", "XFOO bar"), ANSWER[dec])
	expect_calls("a", scen, "unknown XFOO bar", 1)
	expect_calls("c", scen, "unknown", 0)
	run(c, scen, message("<s@x>"))
	expect_calls("c", scen, "eom", 1)
	mt.disconnect(c)
end

-- ---- special scenarios -----------------------------------------------------

local SPECIAL = {}

-- b skips at the first chunk: SMFIR_SKIP only if nobody else wants body.
SPECIAL.skip_only = function()
	local scen = "skip_only"
	local c = open(scen)

	if not mt.test_option(c, SMFIP_SKIP) then
		fail("milterhost did not ask for SMFIP_SKIP")
	end
	-- a and c accept at eoh, so b is the only plugin left for body.
	run(c, scen, concat(CONN, { ev("envfrom", "<s@x>"),
	    ev("envrcpt", "<r1@x>"), ev("header", "Subject", "t"),
	    ev("eoh") }))
	expect(c, scen, ev("body", "1"), SMFIR_SKIP)
	expect(c, scen, ev("eom"), SMFIR_CONTINUE)
	expect_calls("b", scen, "eom", 1)
	expect_calls("b", scen, "body 1", 1)
	mt.disconnect(c)
end

SPECIAL.skip_other = function()
	local scen = "skip_other"
	local c = open(scen)

	run(c, scen, concat(CONN, message("<s@x>")))
	-- b got the first chunk only, and still eom; a and c got both.
	expect_calls("b", scen, "body 1", 1)
	expect_calls("b", scen, "body 2", 0)
	expect_calls("b", scen, "eom", 1)
	expect_calls("a", scen, "body 2", 1)
	expect_calls("c", scen, "body 2", 1)
	mt.disconnect(c)
end

-- Multi-line replies: at eom libmilter sends the lines as one reply
-- "550-5.7.1 one\r\n550-5.7.1 two\r\n550 5.7.1 three"; miltertest compares
-- "CODE XCODE TEXT" with it, so the first two lines go in CODE.
SPECIAL.ml_eom = function()
	local scen = "ml_eom"
	local c = open(scen)
	local events = concat(CONN, message("<s@x>"))

	events[#events] = nil
	run(c, scen, events)
	expect(c, scen, ev("eom"), SMFIR_REPLYCODE)
	if not mt.eom_check(c, MT_SMTPREPLY,
	    "550-5.7.1 first line\r\n550-5.7.1 second line\r\n550",
	    "5.7.1", "third line") then
		fail("eom: the multi-line reply is not the three lines")
	end
	mt.disconnect(c)
end

SPECIAL.ml_rcpt = function()
	local scen = "ml_rcpt"
	local c = open(scen)

	run(c, scen, concat(CONN, { ev("envfrom", "<s@x>") }))
	expect(c, scen, ev("envrcpt", "<r1@x>"), SMFIR_REPLYCODE)
	expect(c, scen, ev("envrcpt", "<r2@x>"), SMFIR_CONTINUE)
	mt.disconnect(c)
end

-- A reply of the wrong class is dropped: plain reject / tempfail, and a
-- warning.
SPECIAL.mismatch_eom = function()
	local scen = "mismatch_eom"
	local c = open(scen)
	local events = concat(CONN, message("<s@x>"))

	events[#events] = nil
	run(c, scen, events)
	expect(c, scen, ev("eom"), SMFIR_REJECT)
	if mt.eom_check(c, MT_SMTPREPLY, "451", "4.7.1", "wrong class") then
		fail("eom: the 451 reply reached the MTA with a reject")
	end
	if log_count("[b] eom: reply 451 does not fit reject") ~= 1 then
		fail("no warning about the dropped 451 reply in the log")
	end
	mt.disconnect(c)
end

SPECIAL.mismatch_mail = function()
	local scen = "mismatch_mail"
	local c = open(scen)

	run(c, scen, CONN)
	expect(c, scen, ev("envfrom", "<s@x>"), SMFIR_TEMPFAIL)
	if log_count("[b] envfrom: reply 550 does not fit tempfail") ~= 1 then
		fail("no warning about the dropped 550 reply in the log")
	end
	mt.disconnect(c)
end

-- A reply set with CONTINUE does not outlive its callback: b's later
-- plain reject carries no reply.
SPECIAL.stale_reply = function()
	local scen = "stale_reply"
	local c = open(scen)

	run(c, scen, concat(CONN, { ev("envfrom", "<s@x>") }))
	expect(c, scen, ev("envrcpt", "<r1@x>"), SMFIR_REJECT)
	mt.disconnect(c)
end

-- Two plugins would reject at eom: b's reply arrives, c is not called.
SPECIAL.first_wins = function()
	local scen = "first_wins"
	local c = open(scen)
	local events = concat(CONN, message("<s@x>"))

	events[#events] = nil
	run(c, scen, events)
	expect(c, scen, ev("eom"), SMFIR_REPLYCODE)
	if not mt.eom_check(c, MT_SMTPREPLY, "550", "5.7.1", "b was first")
	    then
		fail("eom: b's reply did not arrive")
	end
	if mt.eom_check(c, MT_SMTPREPLY, "554", "5.7.1", "c was second") then
		fail("eom: c's reply arrived")
	end
	expect_calls("c", scen, "eom", 0)
	expect_calls("c", scen, "abort", 1)
	mt.disconnect(c)
end

-- ---- main ------------------------------------------------------------------

local function main()
	if SOCKET == nil or LOG == nil then
		fail("MH_WIRE_SOCKET and MH_WIRE_LOG must be set")
	end
	mt.set_timeout(5)
	for _, stage in ipairs(CONN_STAGES) do
		for _, dec in ipairs({ "rej", "rejr", "tf", "tfr", "acc1",
		    "accall" }) do
			check(string.format("%s: %s", stage, dec), function()
				conn_scenario(stage, dec)
			end)
		end
	end
	for _, dec in ipairs({ "rej", "rejr", "tf", "tfr" }) do
		check("unknown: " .. dec, function()
			unknown_scenario(dec)
		end)
	end
	for _, stage in ipairs(MSG_STAGES) do
		for _, dec in ipairs({ "rej", "rejr", "tf", "tfr", "disc",
		    "acc1", "accall" }) do
			check(string.format("%s: %s", stage, dec), function()
				msg_scenario(stage, dec)
			end)
		end
	end
	for _, name in ipairs({ "skip_only", "skip_other", "ml_eom",
	    "ml_rcpt", "mismatch_eom", "mismatch_mail", "stale_reply",
	    "first_wins" }) do
		check(name, SPECIAL[name])
	end
end

run_script(main)
