-- bcc.lua - miltertest script for tests/wire/bcc.sh: messages on one
-- connection to the real milterhost running five bcc instances, each
-- adding its own address, and checks of the recipients added at the end
-- of each message.
--
-- The instances (bcc.sh's "filters" configuration), in chain order:
--   all     rcpt = all@archive.test, no pattern: every message
--   from    rcpt = <from@archive.test>, sender = @example\.org$
--   to      rcpt = to@archive.test, recipient = ^sales
--   both    rcpt = both@archive.test, both patterns (match = all)
--   either  rcpt = either@archive.test, both patterns, match = any
--
-- Environment (set by bcc.sh): MH_WIRE_SOCKET, the daemon's socket.
--
-- miltertest swallows Lua errors: everything runs under run_script()
-- (wire_lib.lua).

dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "wire_lib.lua")

local SOCKET = os.getenv("MH_WIRE_SOCKET")

local ADDED = { "all", "from", "to", "both", "either" }

-- One protocol step, answered continue (wire_lib.lua's wire_step).
local function step(conn, what, nobit, fn, ...)
	wire_step(conn, what, nobit, SMFIR_CONTINUE, fn, ...)
end

local function open_connection()
	local conn = wire_connect()
	-- No instance has args: each declares SMFIF_ADDRCPT.
	if not mt.test_action(conn, SMFIF_ADDRCPT) then
		fail("negotiation: milterhost did not ask for SMFIF_ADDRCPT")
	end
	step(conn, "connect", SMFIP_NOCONNECT, mt.conninfo,
	    "client.example.test", "192.0.2.7")
	step(conn, "helo", SMFIP_NOHELO, mt.helo, "client.example.test")
	return conn
end

-- The envelope and the rest of a message, up to the end of the message,
-- accepted.  mt.data is not used: miltertest 2.11.0~beta2 sends DATA
-- twice in it.
local function envelope(conn, from, rcpts)
	step(conn, "mail " .. from, SMFIP_NOMAIL, mt.mailfrom, from)
	for _, rcpt in ipairs(rcpts) do
		step(conn, "rcpt " .. rcpt, SMFIP_NORCPT, mt.rcptto, rcpt)
	end
end

local function finish(conn)
	step(conn, "header", SMFIP_NOHDRS, mt.header, "Subject", "bcc test")
	step(conn, "eoh", SMFIP_NOEOH, mt.eoh)
	step(conn, "body", SMFIP_NOBODY, mt.bodystring, "Hello.\r\n")
	wire_eom(conn)
end

-- The recipients added at the end of the message must be exactly the
-- addresses of the instances named in want.
local function expect_added(conn, want)
	local wanted, got = {}, {}

	for _, name in ipairs(want) do
		wanted[name] = true
	end
	for _, name in ipairs(ADDED) do
		local rcpt = "<" .. name .. "@archive.test>"
		local added = mt.eom_check(conn, MT_RCPTADD, rcpt)
		if added then
			got[#got + 1] = name
		end
		if added ~= (wanted[name] == true) then
			fail("%s %s added; added: %s", rcpt,
			    added and "was" or "was not",
			    table.concat(got, " "))
		end
	end
	mt.echo("  added: " .. table.concat(got, " "))
end

local function message(conn, from, rcpts, want)
	envelope(conn, from, rcpts)
	finish(conn)
	expect_added(conn, want)
end

local function main()
	local conn = open_connection()

	mt.echo("on " .. SOCKET)
	check("sender and a recipient match (in another case): every "
	    .. "instance adds", function()
		message(conn, "<a@Example.ORG>",
		    { "<other@example.test>", "<SALES@example.test>" },
		    { "all", "from", "to", "both", "either" })
	end)
	check("only a recipient matches: all, to, either", function()
		message(conn, "<a@example.com>", { "<sales-eu@example.test>" },
		    { "all", "to", "either" })
	end)
	check("only the sender matches: all, from, either", function()
		message(conn, "<a@example.org>", { "<other@example.test>" },
		    { "all", "from", "either" })
	end)
	check("the null sender, no recipient matching: all only",
	    function()
		message(conn, "<>", { "<other@example.test>" }, { "all" })
	end)
	check("an address to add that is already a recipient (in another "
	    .. "case, without brackets) is not added again", function()
		message(conn, "<a@example.org>",
		    { "ALL@Archive.Test", "<sales@example.test>",
		    "<from@archive.test>" },
		    { "to", "both", "either" })
	end)
	check("after an aborted message (RSET) nothing of it is left",
	    function()
		envelope(conn, "<a@example.org>", { "<sales@example.test>",
		    "<all@archive.test>" })
		local err = mt.abort(conn)
		if err ~= nil then
			fail("abort: miltertest error: %s", tostring(err))
		end
		message(conn, "<b@example.com>", { "<other@example.test>" },
		    { "all" })
	end)
	mt.disconnect(conn)
end

run_script(main)
mt.echo("PASS: bcc.lua")
