-- mods.lua - miltertest script for tests/wire/mods.sh: the message
-- changes of plugins arrive at the MTA at end of message, merged in chain
-- order, and only when the message was not refused.
--
-- The daemon runs two instances of the scripted test plugin, p1 and p2,
-- in that order (mods.sh writes the configuration).  Every scenario is
-- one connection whose client host name is the scenario's name.
--
-- Environment: MH_WIRE_SOCKET, MH_WIRE_LOG (the daemon's log).
--
-- What miltertest can see: added, inserted, changed and deleted headers
-- (and the order of the added and inserted ones: mt.getheader index 0 is
-- the last one sent), each REPLBODY packet, recipients added without
-- arguments, deleted recipients, the quarantine reason, and the reply.  It
-- has no check for SMFIR_ADDRCPT_PAR nor SMFIR_CHGFROM (only that libmilter
-- sent them: the eom answer is not the daemon's tempfail for a change it
-- could not send, which mods.sh looks for in the log), and it reads every
-- packet into a 1024-byte buffer, so a replaced body must stay below that
-- (miltertest 1.6.0 crashes on a 65535-byte REPLBODY chunk).

-- The shared helpers (fail, reply_name, check, log_count); this script
-- defines its own open and message.
dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "scripted_lib.lua")

local function open(scen)
	local c = wire_connect()
	for _, act in ipairs({ SMFIF_ADDHDRS, SMFIF_CHGHDRS, SMFIF_CHGBODY,
	    SMFIF_ADDRCPT, SMFIF_ADDRCPT_PAR, SMFIF_DELRCPT, SMFIF_CHGFROM,
	    SMFIF_QUARANTINE }) do
		if not mt.test_action(c, act) then
			fail("milterhost did not ask for action 0x%x", act)
		end
	end
	return c
end

local function step(c, what, err)
	wire_answer(c, what, err, SMFIR_CONTINUE)
end

-- A message up to its end of message, every event answered continue:
-- recipients <b@x> and <b2@x>, headers Subject, X-Del, From.
local function message(c, from)
	step(c, "envfrom", mt.mailfrom(c, from))
	step(c, "envrcpt <b@x>", mt.rcptto(c, "<b@x>"))
	step(c, "envrcpt <b2@x>", mt.rcptto(c, "<b2@x>"))
	step(c, "data", mt.data(c))
	step(c, "header Subject", mt.header(c, "Subject", "old"))
	step(c, "header X-Del", mt.header(c, "X-Del", "gone"))
	step(c, "header From", mt.header(c, "From", from))
	step(c, "eoh", mt.eoh(c))
	step(c, "body", mt.bodystring(c, "old body\r\n"))
end

-- A connection up to the end of message; returns it and the eom reply.
local function transaction(scen)
	local c = open(scen)

	step(c, "connect", mt.conninfo(c, scen, "192.0.2.1"))
	step(c, "helo", mt.helo(c, "client.example.test"))
	message(c, "<s@x>")
	local err = mt.eom(c)
	if err ~= nil then
		fail("eom: miltertest: %s", tostring(err))
	end
	return c, mt.getreply(c)
end

local function eom_continue(scen)
	local c, r = transaction(scen)
	if r ~= SMFIR_CONTINUE then
		fail("eom: milterhost answered %s, expected continue",
		    reply_name(r))
	end
	return c
end

local function want(c, ok, fmt, ...)
	if not ok then
		fail(fmt, ...)
	end
end

-- The values of the added or inserted headers called name, in the order
-- milterhost sent them.
local function sent_headers(c, name)
	local got = {}
	local i = 0
	while true do
		local v = mt.getheader(c, name, i)
		if v == nil then
			break
		end
		table.insert(got, 1, v)
		i = i + 1
	end
	return table.concat(got, ", ")
end

local function expect_headers(c, name, expected)
	local got = sent_headers(c, name)
	if got ~= expected then
		fail("%s headers sent: %s; expected %s", name, got, expected)
	end
end

local function nothing_sent(c)
	for _, op in ipairs({ MT_HDRADD, MT_HDRINSERT, MT_HDRCHANGE,
	    MT_HDRDELETE, MT_BODYCHANGE, MT_QUARANTINE }) do
		if op == MT_HDRADD then
			-- miltertest needs a name here
		elseif mt.eom_check(c, op) then
			fail("a change of kind %d arrived", op)
		end
	end
	if mt.getheader(c, "X-Drop", 0) ~= nil then
		fail("X-Drop arrived")
	end
	if mt.eom_check(c, MT_RCPTADD, "<drop@x>") then
		fail("the recipient <drop@x> was added")
	end
end

local S = {}

-- Every kind of change by one plugin at eom.
S.every_kind = function()
	local c = eom_continue("every_kind")

	want(c, mt.eom_check(c, MT_HDRADD, "X-A", "1"),
	    "no header X-A: 1 added")
	want(c, mt.eom_check(c, MT_HDRINSERT, "X-B", "v", 0),
	    "no header X-B: v inserted at 0")
	want(c, mt.eom_check(c, MT_HDRCHANGE, "Subject", "new"),
	    "Subject not changed to 'new'")
	want(c, mt.eom_check(c, MT_HDRDELETE, "X-Del", 1),
	    "X-Del 1 not deleted")
	want(c, mt.eom_check(c, MT_BODYCHANGE, "new body\r\n"),
	    "the body was not replaced by 'new body'")
	want(c, mt.eom_check(c, MT_RCPTADD, "<c@x>"), "<c@x> not added")
	-- sent as SMFIR_ADDRCPT_PAR, which miltertest does not check: at
	-- least it is not a plain ADDRCPT without its arguments
	want(c, not mt.eom_check(c, MT_RCPTADD, "<d@x>"),
	    "<d@x> was added without its arguments")
	want(c, mt.eom_check(c, MT_RCPTDELETE, "<b@x>"), "<b@x> not deleted")
	want(c, mt.eom_check(c, MT_QUARANTINE, "held for test"),
	    "not quarantined with 'held for test'")
	mt.disconnect(c)
end

-- Two headers of p1 (call order), then p2's; p2 made its change first
-- (at envfrom) but comes later in the chain.
S.order = function()
	local c = eom_continue("order")

	expect_headers(c, "X-Order", "p1 first, p1 second, p2 early")
	mt.disconnect(c)
end

-- Changes queued at envrcpt, header and body arrive at eom.
S.early = function()
	local c = eom_continue("early")

	expect_headers(c, "X-Early", "envfrom, header, body, eom")
	want(c, mt.eom_check(c, MT_RCPTADD, "<early@x>"),
	    "<early@x> (added at envrcpt) did not arrive")
	want(c, mt.eom_check(c, MT_HDRCHANGE, "Subject", "from header"),
	    "the Subject change made at header did not arrive")
	want(c, mt.eom_check(c, MT_BODYCHANGE, "from body\r\n"),
	    "the body replaced at body did not arrive")
	mt.disconnect(c)
end

-- p1 queues at envfrom, p2 refuses at eom: nothing arrives.
local function dropped(scen, code)
	local c, r = transaction(scen)

	if r ~= code then
		fail("eom: milterhost answered %s, expected %s",
		    reply_name(r), reply_name(code))
	end
	nothing_sent(c)
	mt.disconnect(c)
end

S.dropped_reject = function()
	dropped("dropped_reject", SMFIR_REJECT)
end

S.dropped_tempfail = function()
	dropped("dropped_tempfail", SMFIR_TEMPFAIL)
end

S.dropped_discard = function()
	dropped("dropped_discard", SMFIR_DISCARD)
end

-- p1 queues at envfrom of message 1, p2 discards it at a recipient; the
-- next message of the connection gets none of it.
S.dropped_next = function()
	local scen = "dropped_next"
	local c = open(scen)

	step(c, "connect", mt.conninfo(c, scen, "192.0.2.1"))
	step(c, "helo", mt.helo(c, "client.example.test"))
	step(c, "envfrom", mt.mailfrom(c, "<s@x>"))
	if mt.rcptto(c, "<b@x>") ~= nil or mt.getreply(c) ~= SMFIR_DISCARD
	    then
		fail("envrcpt: not discarded")
	end
	message(c, "<s2@x>")
	if mt.eom(c) ~= nil or mt.getreply(c) ~= SMFIR_CONTINUE then
		fail("eom of message 2: not continue")
	end
	nothing_sent(c)
	mt.disconnect(c)
end

-- Two plugins replace the body: the later one's arrives, with a warning.
S.two_bodies = function()
	local c = eom_continue("two_bodies")

	want(c, mt.eom_check(c, MT_BODYCHANGE, "p2 body\r\n"),
	    "p2's body did not arrive")
	want(c, not mt.eom_check(c, MT_BODYCHANGE, "p1 body\r\n"),
	    "p1's body arrived too")
	want(c, log_count("2 requests to replace body: the one of " ..
	    "instance p2 is used, as the last") == 1,
	    "no warning naming p2 for two body replacements")
	mt.disconnect(c)
end

-- Repeated mh_body_replace calls of one plugin go as one body.
S.body_appends = function()
	local c = eom_continue("body_appends")

	want(c, mt.eom_check(c, MT_BODYCHANGE, "part one\r\npart two\r\n"),
	    "the body is not 'part one' and 'part two' in one piece")
	mt.disconnect(c)
end

-- Quarantine: the first reason wins; sender: the last (log only).
S.singles = function()
	local c = eom_continue("singles")

	want(c, mt.eom_check(c, MT_QUARANTINE, "p1 reason"),
	    "p1's quarantine reason did not arrive")
	want(c, not mt.eom_check(c, MT_QUARANTINE, "p2 reason"),
	    "p2's quarantine reason arrived too")
	want(c, log_count("2 requests to change sender: the one of " ..
	    "instance p2 is used, as the last") == 1,
	    "no warning that p2's change of sender is used")
	want(c, log_count("2 requests to quarantine: the one of " ..
	    "instance p1 is used, as the first") == 1,
	    "no warning that p1's quarantine is used")
	mt.disconnect(c)
end

-- Progress at eom: the session completes.
S.progress = function()
	local c = eom_continue("progress")
	want(c, mt.eom_check(c, MT_HDRADD, "X-After-Progress", "yes"),
	    "the header added after progress did not arrive")
	mt.disconnect(c)
end

local function main()
	if SOCKET == nil or LOG == nil then
		fail("MH_WIRE_SOCKET and MH_WIRE_LOG must be set")
	end
	mt.set_timeout(5)
	for _, name in ipairs({ "every_kind", "order", "early",
	    "dropped_reject", "dropped_tempfail", "dropped_discard",
	    "dropped_next", "two_bodies", "body_appends", "singles",
	    "progress" }) do
		check(name, S[name])
	end
end

run_script(main)
