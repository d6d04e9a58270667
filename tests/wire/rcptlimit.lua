-- rcptlimit.lua - miltertest script for tests/wire/rcptlimit.sh: SMTP
-- transactions against the real milterhost running the rcptlimit plugin,
-- checking the answer to every recipient.
--
-- Environment (set by rcptlimit.sh):
--   MH_WIRE_SOCKET    the daemon's socket, e.g. unix:/tmp/x/mh.sock
--   MH_WIRE_SCENARIO  which configuration the daemon runs:
--     limit   one instance, max = 2: on one connection, a message with
--             four recipients (the third and fourth tempfailed), a second
--             message (counting starts again), a third one aborted after
--             its second recipient (RSET) and a fourth after it
--     chain   a scripted instance refusing <bad@x>, then rcptlimit with
--             max = 2: the refused recipient does not count
--
-- miltertest swallows Lua errors: everything runs under run_script()
-- (wire_lib.lua).

dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "wire_lib.lua")

local SOCKET = os.getenv("MH_WIRE_SOCKET")
local SCENARIO = os.getenv("MH_WIRE_SCENARIO")

local function open_connection()
	local conn = wire_connect()
	wire_step(conn, "connect", SMFIP_NOCONNECT, SMFIR_CONTINUE,
	    mt.conninfo, "client.example.test", "192.0.2.7")
	wire_step(conn, "helo", SMFIP_NOHELO, SMFIR_CONTINUE, mt.helo,
	    "client.example.test")
	return conn
end

local function mail(conn, from)
	wire_step(conn, "mail " .. from, SMFIP_NOMAIL, SMFIR_CONTINUE,
	    mt.mailfrom, from)
end

-- A recipient the limit lets through, and one beyond it: tempfailed with
-- the configured reply (SMFIR_REPLYCODE; its text is checked by
-- rcptlimit.sh, which sees it on the wire).
local function taken(conn, rcpt)
	wire_step(conn, "rcpt " .. rcpt, SMFIP_NORCPT, SMFIR_CONTINUE,
	    mt.rcptto, rcpt)
end

local function over(conn, rcpt)
	wire_step(conn, "rcpt " .. rcpt, SMFIP_NORCPT, SMFIR_REPLYCODE,
	    mt.rcptto, rcpt)
end

local function refused(conn, rcpt)
	wire_step(conn, "rcpt " .. rcpt, SMFIP_NORCPT, SMFIR_REJECT,
	    mt.rcptto, rcpt)
end

-- The rest of the message, accepted.  mt.data is not used: miltertest
-- 2.11.0~beta2 sends DATA twice in it.
local function finish(conn)
	wire_step(conn, "header", SMFIP_NOHDRS, SMFIR_CONTINUE, mt.header,
	    "Subject", "wire test")
	wire_step(conn, "eoh", SMFIP_NOEOH, SMFIR_CONTINUE, mt.eoh)
	wire_step(conn, "body", SMFIP_NOBODY, SMFIR_CONTINUE, mt.bodystring,
	    "Hello.\r\n")
	wire_eom(conn)
end

local function scenario_limit()
	local conn = open_connection()

	check("the first two recipients pass, the third and fourth are "
	    .. "tempfailed", function()
		mail(conn, "<s1@example.test>")
		taken(conn, "<r1@example.test>")
		taken(conn, "<r2@example.test>")
		over(conn, "<r3@example.test>")
		over(conn, "<r4@example.test>")
		finish(conn)
	end)
	check("a second message on the connection starts counting again",
	    function()
		mail(conn, "<s2@example.test>")
		taken(conn, "<r5@example.test>")
		taken(conn, "<r6@example.test>")
		over(conn, "<r7@example.test>")
		finish(conn)
	end)
	check("a message aborted (RSET) after two recipients leaves no "
	    .. "count behind", function()
		mail(conn, "<s3@example.test>")
		taken(conn, "<r8@example.test>")
		taken(conn, "<r9@example.test>")
		local err = mt.abort(conn)
		if err ~= nil then
			fail("abort: miltertest error: %s", tostring(err))
		end
		mail(conn, "<s4@example.test>")
		taken(conn, "<r10@example.test>")
		taken(conn, "<r11@example.test>")
		over(conn, "<r12@example.test>")
		finish(conn)
	end)
	mt.disconnect(conn)
end

local function scenario_chain()
	local conn = open_connection()

	check("a recipient an earlier instance refused does not count",
	    function()
		mail(conn, "<s@example.test>")
		refused(conn, "<bad@x>")
		taken(conn, "<r1@example.test>")
		refused(conn, "<bad@x>")
		taken(conn, "<r2@example.test>")
		over(conn, "<r3@example.test>")
		finish(conn)
	end)
	mt.disconnect(conn)
end

local scenarios = { limit = scenario_limit, chain = scenario_chain }

local function main()
	local run = scenarios[SCENARIO or ""]
	if run == nil then
		fail("MH_WIRE_SCENARIO must be limit or chain, not %s",
		    tostring(SCENARIO))
	end
	mt.echo("scenario " .. SCENARIO .. " on " .. SOCKET)
	run()
end

run_script(main)
mt.echo("PASS: scenario " .. SCENARIO)
