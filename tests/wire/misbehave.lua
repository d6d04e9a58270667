-- misbehave.lua - miltertest script for tests/wire/misbehave.sh: plugin
-- misbehaviour is answered with the instance's on_error, and dry_run
-- instances are not obeyed.
--
-- The daemon runs the scripted test plugin as instances tf, rej, acc and
-- cont (on_error tempfail, reject, accept, continue), few_tf, few_rej,
-- few_acc and few_cont (scripted_few.so, which declares only ADDHDRS),
-- dry (dry_run) and z (well-behaved, last).  Every scenario is one
-- connection whose client host name is the scenario's name: KIND_ONERR
-- makes instance ONERR (or few_ONERR) misbehave in the way KIND at the
-- first event of its stage in the first message.
--
-- Environment: MH_WIRE_SOCKET, MH_WIRE_LOG (the daemon's log).

-- The shared helpers (fail, check, open, send, expect, run, ...).
dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "scripted_lib.lua")

-- ---- misbehaviour -------------------------------------------------------

-- kind: the stage, and a piece of the error line milterhost logs.
local KINDS = {
	{ "ret42", "envfrom", "returned" },
	{ "disc_conn", "connect", "returned" },
	{ "skip_mail", "envfrom", "returned" },
	{ "fail", "eom", "the callback failed" },
	{ "undecl", "eom", "refused request" },
	{ "badhdr", "eom", "refused request" },
	{ "badreply", "envrcpt", "refused request" },
	{ "modstage", "helo", "refused request" },
}
local ONERR = {
	tf = { "tempfail", SMFIR_TEMPFAIL }, rej = { "reject", SMFIR_REJECT },
	acc = { "accept", SMFIR_CONTINUE }, cont = { "continue", SMFIR_CONTINUE },
}
local DECIDING_ARG = { envrcpt = "<r1@x>" }

local function split(events, stage)
	local before, after, at = {}, {}, nil
	for _, e in ipairs(events) do
		if at == nil and e.stage == stage and
		    (DECIDING_ARG[stage] == nil or DECIDING_ARG[stage] == e.arg)
		    then
			at = e
		elseif at == nil then
			before[#before + 1] = e
		else
			after[#after + 1] = e
		end
	end
	return before, at, after
end

-- Lines of the log that contain every one of the strings.
local function log_lines(...)
	local f = io.open(LOG, "r")
	local n = 0
	local want = { ... }

	for line in f:lines() do
		local all = true
		for _, w in ipairs(want) do
			if not line:find(w, 1, true) then
				all = false
			end
		end
		if all then
			n = n + 1
		end
	end
	f:close()
	return n
end

local function misbehave(kind, onerr)
	local name, stage, why = kind[1], kind[2], kind[3]
	local scen = name .. "_" .. onerr
	local inst = name == "undecl" and "few_" .. onerr or onerr
	local answer = ONERR[onerr][2]
	local refused = answer ~= SMFIR_CONTINUE
	local conn_stage = stage == "connect" or stage == "helo"
	local before, at, after = split(concat(CONN, message("<s@x>")), stage)
	local c = open(scen)

	run(c, scen, before)
	expect(c, scen, at, answer)
	-- no custom reply with an on_error decision
	if stage == "eom" and
	    (mt.eom_check(c, MT_SMTPREPLY, "451", "4.7.1", "not sent") or
	    mt.eom_check(c, MT_SMTPREPLY, "550", "5.7.1", "not sent")) then
		fail("eom: the plugin's reply arrived with the on_error answer")
	end
	-- the error is logged naming the instance, the stage, on_error
	local n = log_lines("error: ", "[" .. inst .. "] " .. stage .. ": ",
	    why, "on_error = " .. ONERR[onerr][1])
	if n < 1 then
		fail("no error line for [%s] %s '%s' with on_error = %s", inst,
		    stage, why, ONERR[onerr][1])
	end
	if conn_stage and refused then
		-- the connection is refused: the next command too, and no
		-- plugin is called for it
		local r = send(c, scen, after[1])
		if r ~= answer then
			fail("%s after the refused connection: answered %s",
			    after[1].stage, reply_name(r))
		end
		expect_calls("z", scen, after[1].stage, 0)
		mt.disconnect(c)
		return
	end
	if refused and stage ~= "envrcpt" then
		-- the message ended; the next one goes through
		run(c, scen, message("<s2@x>"))
	else
		run(c, scen, after)
		run(c, scen, message("<s2@x>"))
	end
	-- z, after the misbehaving instance, got both messages' eom unless
	-- the first was refused before z's eom
	local z_eoms = (refused and stage ~= "envrcpt") and 1 or 2
	expect_calls("z", scen, "eom", z_eoms)
	-- the misbehaving instance: accept makes it leave the message (the
	-- connection at connect and helo), continue keeps it in
	local eoms
	if conn_stage then
		eoms = onerr == "acc" and 0 or 2
	elseif stage == "eom" or onerr == "cont" or
	    (stage == "envrcpt" and refused) then
		eoms = 2
	else
		eoms = 1
	end
	expect_calls(inst, scen, "eom", eoms)
	mt.disconnect(c)
end

-- ---- dry run ---------------------------------------------------------------

local DRY = {}

local function dry_transaction(scen)
	local c = open(scen)
	run(c, scen, concat(CONN, message("<s@x>")))
	return c
end

DRY.dry_reject = function()
	local c = dry_transaction("dry_reject")
	if mt.eom_check(c, MT_SMTPREPLY, "550", "5.7.1", "dry") then
		fail("eom: the dry run instance's reply arrived")
	end
	if log_lines("[dry] eom: dry run: would have answered reject") < 1 then
		fail("no 'dry run' line for the reject at eom")
	end
	mt.disconnect(c)
end

DRY.dry_rcpt = function()
	local c = dry_transaction("dry_rcpt")
	if log_lines("[dry] envrcpt: dry run: would have answered reject") < 1
	    then
		fail("no 'dry run' line for the reject at envrcpt")
	end
	expect_calls("z", "dry_rcpt", "envrcpt <r1@x>", 1)
	mt.disconnect(c)
end

DRY.dry_tempfail = function()
	local c = dry_transaction("dry_tempfail")
	if log_lines("[dry] data: dry run: would have answered tempfail") < 1
	    then
		fail("no 'dry run' line for the tempfail at data")
	end
	mt.disconnect(c)
end

DRY.dry_discard = function()
	local c = dry_transaction("dry_discard")
	if log_lines("[dry] envfrom: dry run: would have answered discard") <
	    1 then
		fail("no 'dry run' line for the discard at envfrom")
	end
	mt.disconnect(c)
end

DRY.dry_mods = function()
	local c = dry_transaction("dry_mods")
	if mt.getheader(c, "X-Dry", 0) ~= nil or
	    mt.eom_check(c, MT_RCPTADD, "<dry@x>") or
	    mt.eom_check(c, MT_BODYCHANGE) or mt.eom_check(c, MT_QUARANTINE)
	    then
		fail("a change of the dry run instance arrived")
	end
	if not mt.eom_check(c, MT_HDRADD, "X-Z", "1") then
		fail("z's header did not arrive")
	end
	local n = log_lines("[dry] dry run: would ")
	if n < 5 then
		fail("%d 'dry run: would' lines for the 5 changes", n)
	end
	mt.disconnect(c)
end

-- A failure of a dry run instance: on_error reject, logged, not obeyed.
DRY.dry_fail = function()
	local c = dry_transaction("dry_fail")
	if log_lines("error: ", "[dry] envfrom: ", "on_error = reject") < 1
	    then
		fail("no error line for the dry run instance's failure")
	end
	if log_lines("[dry] envfrom: dry run: would have answered reject") < 1
	    then
		fail("no 'dry run' line for its on_error reject")
	end
	mt.disconnect(c)
end

local function main()
	if SOCKET == nil or LOG == nil then
		fail("MH_WIRE_SOCKET and MH_WIRE_LOG must be set")
	end
	mt.set_timeout(5)
	for _, kind in ipairs(KINDS) do
		for _, onerr in ipairs({ "tf", "rej", "acc", "cont" }) do
			check(string.format("%s, on_error %s", kind[1],
			    ONERR[onerr][1]), function()
				misbehave(kind, onerr)
			end)
		end
	end
	for _, name in ipairs({ "dry_reject", "dry_rcpt", "dry_tempfail",
	    "dry_discard", "dry_mods", "dry_fail" }) do
		check(name, DRY[name])
	end
end

run_script(main)
