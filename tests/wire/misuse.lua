-- misuse.lua - miltertest script for tests/wire/misuse.sh: sessions
-- whose plugin instances misuse the host functions, from threads of their
-- own and with bad arguments, answered as if nothing happened except where
-- a callback failed: there as the instance's on_error says.
--
-- The daemon runs the misuse test plugin as instance mis (on_error =
-- reject, bad arguments for <bad@x>) and mis_tf (on_error = tempfail, bad
-- arguments for <bad-tf@x>), both with a thread logging and calling host
-- functions while the session runs.  The queue id (macro i) changes with
-- every message and is sent again before each command that carries
-- macros, so that libmilter replaces its macros all the time while the
-- threads log.
--
-- Environment: MH_WIRE_SOCKET; MH_TAG names this client's connections;
-- MH_CONNS connections of MH_MSGS messages each.

dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "wire_lib.lua")

local SOCKET = os.getenv("MH_WIRE_SOCKET")
local TAG = os.getenv("MH_TAG") or "t"
local CONNS = tonumber(os.getenv("MH_CONNS") or "5")
local MSGS = tonumber(os.getenv("MH_MSGS") or "4")
-- Not all miltertest versions define these.
local SMFIC_DATA = string.byte("T")
local SMFIC_EOH = string.byte("N")
local SMFIC_BODYEOB = string.byte("E")

-- expect(c, what, err, want): the answer to the command sent must be want.
local expect = wire_answer

local function message(c, qid)
	mt.macro(c, SMFIC_MAIL, "i", qid)
	expect(c, "envfrom", mt.mailfrom(c, "<s@x>"), SMFIR_CONTINUE)
	mt.macro(c, SMFIC_RCPT, "i", qid)
	expect(c, "envrcpt <ok@x>", mt.rcptto(c, "<ok@x>"), SMFIR_CONTINUE)
	-- refused bad arguments fail the callback: on_error answers
	mt.macro(c, SMFIC_RCPT, "i", qid)
	expect(c, "envrcpt <bad@x>", mt.rcptto(c, "<bad@x>"), SMFIR_REJECT)
	mt.macro(c, SMFIC_RCPT, "i", qid)
	expect(c, "envrcpt <bad-tf@x>", mt.rcptto(c, "<bad-tf@x>"),
	    SMFIR_TEMPFAIL)
	mt.macro(c, SMFIC_DATA, "i", qid)
	expect(c, "data", mt.data(c), SMFIR_CONTINUE)
	expect(c, "header", mt.header(c, "Subject", "misuse"), SMFIR_CONTINUE)
	mt.macro(c, SMFIC_EOH, "i", qid)
	expect(c, "eoh", mt.eoh(c), SMFIR_CONTINUE)
	expect(c, "body", mt.bodystring(c, "body\r\n"), SMFIR_CONTINUE)
	mt.macro(c, SMFIC_BODYEOB, "i", qid)
	expect(c, "eom", mt.eom(c), SMFIR_CONTINUE)
	-- what the threads tried never reaches the MTA
	if mt.getheader(c, "X-Thread", 0) ~= nil or
	    mt.eom_check(c, MT_RCPTADD, "<thread@x>") or
	    mt.eom_check(c, MT_BODYCHANGE) or mt.eom_check(c, MT_QUARANTINE)
	    then
		fail("eom: a change a thread asked for arrived")
	end
end

local function connection(n)
	local c = wire_connect()
	expect(c, "connect", mt.conninfo(c, TAG .. "-c" .. n, "192.0.2.1"),
	    SMFIR_CONTINUE)
	expect(c, "helo", mt.helo(c, "client.example.test"), SMFIR_CONTINUE)
	for m = 1, MSGS do
		message(c, string.format("MQ%s%dx%d", TAG, n, m))
	end
	mt.disconnect(c)
end

local function main()
	if SOCKET == nil then
		fail("MH_WIRE_SOCKET must be set")
	end
	mt.set_timeout(10)
	for n = 1, CONNS do
		check(string.format("%s: connection %d, %d messages", TAG, n,
		    MSGS), function()
			connection(n)
		end)
	end
end

run_script(main)
