-- addheader.lua - miltertest script for tests/wire/addheader.sh: one SMTP
-- transaction against the real milterhost, then checks of the headers the
-- addheader plugin made it send at end of message.
--
-- Environment (set by addheader.sh):
--   MH_WIRE_SOCKET    the daemon's socket, e.g. unix:/tmp/x/mh.sock
--   MH_WIRE_SCENARIO  which configuration the daemon runs:
--     single  one instance: header X-Milterhost, value
--             "by %{j} id %{i} from %{client_addr} name %{daemon_name}
--             100%% [%{no_such_macro}]", appended
--     chain   two instances with header X-Chain: "first" appends
--             "first %{j}", then "second" inserts "second %{i}" at 0
--     declared  one instance: header X-Declared, value "%{foo} and
--             %{i}"; the MTA sends {foo} at end of message
--
-- miltertest swallows Lua errors: everything runs under run_script()
-- (wire_lib.lua).

dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "wire_lib.lua")

local SOCKET = os.getenv("MH_WIRE_SOCKET")
local SCENARIO = os.getenv("MH_WIRE_SCENARIO")

local MTA_NAME = "mx.example.test"      -- macro j
local QUEUE_ID = "4WireTest7Q"          -- macro i
local CLIENT_ADDR = "192.0.2.7"         -- macro {client_addr}
-- A macro value with CR LF: the plugin must send it as two spaces.
local DAEMON_NAME = "smtpd\r\nin"       -- macro {daemon_name}
local FOO = "bar"                       -- macro {foo}, at eom only

-- Not exported by miltertest: the command letter of end of message.
local SMFIC_BODYEOB = string.byte("E")

-- One protocol step, answered continue (wire_lib.lua's wire_step).
local function step(conn, what, nobit, fn, ...)
	wire_step(conn, what, nobit, SMFIR_CONTINUE, fn, ...)
end

local function open_connection()
	local conn = wire_connect()
	-- The union of the plugins' actions: addheader declares ADDHDRS.
	if not mt.test_action(conn, SMFIF_ADDHDRS) then
		fail("negotiation: milterhost did not ask for SMFIF_ADDHDRS "
		    .. "(or the negotiation failed)")
	end
	return conn
end

--
-- A whole transaction up to end of message, with the macros Postfix
-- would send.  mt.data is not used: miltertest 2.11.0~beta2 sends DATA
-- twice in it.
--
local function transaction(conn)
	mt.macro(conn, SMFIC_CONNECT, "j", MTA_NAME,
	    "{daemon_name}", DAEMON_NAME, "{client_addr}", CLIENT_ADDR,
	    "{client_name}", "client.example.test")
	step(conn, "connect", SMFIP_NOCONNECT, mt.conninfo,
	    "client.example.test", CLIENT_ADDR)
	step(conn, "helo", SMFIP_NOHELO, mt.helo, "client.example.test")
	mt.macro(conn, SMFIC_MAIL, "i", QUEUE_ID,
	    "{mail_addr}", "a@example.test")
	step(conn, "mail", SMFIP_NOMAIL, mt.mailfrom, "<a@example.test>")
	mt.macro(conn, SMFIC_RCPT, "i", QUEUE_ID,
	    "{rcpt_addr}", "b@example.test")
	step(conn, "rcpt", SMFIP_NORCPT, mt.rcptto, "<b@example.test>")
	step(conn, "header", SMFIP_NOHDRS, mt.header, "From",
	    "<a@example.test>")
	step(conn, "header", SMFIP_NOHDRS, mt.header, "Subject",
	    "wire test")
	step(conn, "eoh", SMFIP_NOEOH, mt.eoh)
	step(conn, "body", SMFIP_NOBODY, mt.bodystring,
	    "Hello from the wire test.\r\n")
	mt.macro(conn, SMFIC_BODYEOB, "i", QUEUE_ID, "{foo}", FOO)
	wire_eom(conn)
end

-- Without SMFIP_HDR_LEADSPC the MTA adds the space after the colon; with
-- it, milterhost must send the space itself for a plugin that did not ask.
local function wire_value(conn, value)
	if mt.test_option(conn, SMFIP_HDR_LEADSPC) then
		return " " .. value
	end
	return value
end

local function added(conn, name, value)
	if not mt.eom_check(conn, MT_HDRADD, name, value) then
		fail("expected an added header %s: %q; added: %s", name,
		    value, tostring(mt.getheader(conn, name, 0)))
	end
	mt.echo(string.format("  added      %s: %q", name, value))
end

local function inserted(conn, name, value, index)
	if not mt.eom_check(conn, MT_HDRINSERT, name, value, index) then
		fail("expected header %s: %q inserted at index %d; "
		    .. "inserted: %s", name, value, index,
		    tostring(mt.getheader(conn, name, 0)))
	end
	mt.echo(string.format("  inserted   %s: %q at %d", name, value,
	    index))
end

local function check_single(conn)
	local expected = string.format("by %s id %s from %s name %s "
	    .. "100%% []", MTA_NAME, QUEUE_ID, CLIENT_ADDR,
	    (DAEMON_NAME:gsub("[\r\n]", " ")))

	added(conn, "X-Milterhost", wire_value(conn, expected))
	if mt.eom_check(conn, MT_HDRINSERT) then
		fail("a header was inserted; position is append")
	end
	if mt.getheader(conn, "X-Milterhost", 1) ~= nil then
		fail("X-Milterhost was added more than once")
	end
end

--
-- Both headers, and in chain order: miltertest keeps the EOM requests
-- newest first, so getheader index 0 is the one milterhost sent last.
--
local function check_chain(conn)
	local first = wire_value(conn, "first " .. MTA_NAME)
	local second = wire_value(conn, "second " .. QUEUE_ID)

	added(conn, "X-Chain", first)
	inserted(conn, "X-Chain", second, 0)
	if mt.getheader(conn, "X-Chain", 1) ~= first or
	    mt.getheader(conn, "X-Chain", 0) ~= second then
		fail("X-Chain headers out of chain order: sent first %s, "
		    .. "then %s", tostring(mt.getheader(conn, "X-Chain", 1)),
		    tostring(mt.getheader(conn, "X-Chain", 0)))
	end
	if mt.getheader(conn, "X-Chain", 2) ~= nil then
		fail("more than two X-Chain headers were sent")
	end
end

-- The macro only the instance's declaration asked for, at eom.
local function check_declared(conn)
	added(conn, "X-Declared", wire_value(conn, FOO .. " and " .. QUEUE_ID))
end

local checks = { single = check_single, chain = check_chain,
	declared = check_declared }

local function main()
	local check = checks[SCENARIO or ""]
	if check == nil then
		fail("MH_WIRE_SCENARIO must be single, chain or declared, "
		    .. "not %s",
		    tostring(SCENARIO))
	end
	mt.echo("scenario " .. SCENARIO .. " on " .. SOCKET)
	local conn = open_connection()
	transaction(conn)
	check(conn)
	mt.disconnect(conn)
end

run_script(main)
mt.echo("PASS: scenario " .. SCENARIO)
