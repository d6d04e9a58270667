-- callbacks.lua - miltertest script for tests/wire/callbacks.sh: sends
-- one scenario of SMTP events to the real milterhost running the recorder
-- plugin, checking that every step is answered "continue".  What reached
-- the plugin is checked by callbacks.sh in the daemon's log.
--
-- Environment (set by callbacks.sh):
--   MH_WIRE_SOCKET    the daemon's socket
--   MH_WIRE_SCENARIO  ipv4, ipv6, unspec, transaction or messages
--   MH_WIRE_DIR       (transaction) directory holding the body chunks
--                     chunk1, chunk2, chunk3 that callbacks.sh wrote
--
-- miltertest swallows Lua errors: everything runs under run_script()
-- (wire_lib.lua).

dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "wire_lib.lua")

local SOCKET = os.getenv("MH_WIRE_SOCKET")
local SCENARIO = os.getenv("MH_WIRE_SCENARIO")
local DIR = os.getenv("MH_WIRE_DIR")

-- One protocol step, which must be sent (the recorder implements every
-- stage, so milterhost must not have negotiated it away) and answered
-- continue.
local function step(conn, what, nobit, fn, ...)
	if nobit ~= nil and mt.test_option(conn, nobit) then
		fail("%s: milterhost asked not to get this stage", what)
	end
	wire_answer(conn, what, fn(conn, ...), SMFIR_CONTINUE)
end

local function read_file(name)
	local f = io.open(DIR .. "/" .. name, "rb")
	if f == nil then
		fail("cannot read %s/%s", DIR, name)
	end
	local s = f:read("a")
	f:close()
	return s
end

local function eom(conn)
	wire_answer(conn, "eom", mt.eom(conn), SMFIR_CONTINUE)
end

local function connect_only(host, addr)
	return function()
		local conn = wire_connect()
		step(conn, "connect", SMFIP_NOCONNECT, mt.conninfo, host, addr)
		mt.disconnect(conn)
	end
end

-- One message with every stage: ESMTP arguments, an unknown command,
-- several headers (folded, leading space, empty) and a body of three
-- chunks, 70007 bytes in all.
local function transaction()
	local conn = wire_connect()
	step(conn, "connect", SMFIP_NOCONNECT, mt.conninfo,
	    "client.example.test", "192.0.2.7")
	step(conn, "helo", SMFIP_NOHELO, mt.helo, "helo.example.test")
	step(conn, "unknown", SMFIP_NOUNKNOWN, mt.unknown, "XFOO bar baz")
	step(conn, "mail", SMFIP_NOMAIL, mt.mailfrom, "<a@example.test>",
	    "SIZE=100", "BODY=8BITMIME")
	step(conn, "rcpt", SMFIP_NORCPT, mt.rcptto, "<b@example.test>",
	    "NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;b@example.test")
	step(conn, "rcpt", SMFIP_NORCPT, mt.rcptto, "<c@example.test>")
	step(conn, "data", SMFIP_NODATA, mt.data)
	step(conn, "header", SMFIP_NOHDRS, mt.header, "From",
	    "A <a@example.test>")
	step(conn, "header", SMFIP_NOHDRS, mt.header, "Subject",
	    "first line\n\tsecond line\n third")
	step(conn, "header", SMFIP_NOHDRS, mt.header, "X-Lead",
	    " leading space")
	step(conn, "header", SMFIP_NOHDRS, mt.header, "X-Empty", "")
	step(conn, "eoh", SMFIP_NOEOH, mt.eoh)
	for i = 1, 3 do
		step(conn, "body", SMFIP_NOBODY, mt.bodystring,
		    read_file("chunk" .. i))
	end
	eom(conn)
	mt.disconnect(conn)
end

-- A minimal message: mail, rcpt, one header, eoh, one body chunk.
local function message(conn, n)
	step(conn, "mail", SMFIP_NOMAIL, mt.mailfrom,
	    string.format("<m%d@example.test>", n))
	step(conn, "rcpt", SMFIP_NORCPT, mt.rcptto, "<r@example.test>")
	step(conn, "header", SMFIP_NOHDRS, mt.header, "Subject",
	    "message " .. n)
	step(conn, "eoh", SMFIP_NOEOH, mt.eoh)
	step(conn, "body", SMFIP_NOBODY, mt.bodystring,
	    "body " .. n .. "\r\n")
end

-- Several messages on one connection: two complete ones, one aborted by
-- RSET (mt.abort) after its body, one cut by a new HELO after its
-- recipient, and a last complete one.
local function messages()
	local conn = wire_connect()
	step(conn, "connect", SMFIP_NOCONNECT, mt.conninfo,
	    "client.example.test", "192.0.2.8")
	step(conn, "helo", SMFIP_NOHELO, mt.helo, "first.example.test")
	message(conn, 1)
	eom(conn)
	message(conn, 2)
	eom(conn)
	message(conn, 3)
	if mt.abort(conn) ~= nil then
		fail("abort: miltertest error")
	end
	step(conn, "mail", SMFIP_NOMAIL, mt.mailfrom, "<m4@example.test>")
	step(conn, "rcpt", SMFIP_NORCPT, mt.rcptto, "<r@example.test>")
	step(conn, "helo", SMFIP_NOHELO, mt.helo, "second.example.test")
	message(conn, 5)
	eom(conn)
	mt.disconnect(conn)
end

local scenarios = {
	ipv4 = connect_only("v4.example.test", "192.0.2.1"),
	ipv6 = connect_only("v6.example.test", "2001:db8::25"),
	unspec = connect_only("unknown.example.test", "unspec"),
	transaction = transaction,
	messages = messages,
}

run_script(function()
	local scenario = scenarios[SCENARIO or ""]
	if scenario == nil then
		fail("unknown MH_WIRE_SCENARIO %s", tostring(SCENARIO))
	end
	if SOCKET == nil or SOCKET == "" then
		fail("MH_WIRE_SOCKET is not set")
	end
	scenario()
end)
mt.echo("sent: scenario " .. SCENARIO)
