-- example_plugin.lua - miltertest script for tests/wire/example_plugin.sh:
-- the README's example plugin (contrib/examples/rejectdomain.c), built out
-- of tree, refuses a sender of its domain with its own reply and lets
-- others through.
--
-- Environment: MH_WIRE_SOCKET, the daemon's socket.

local SOCKET = os.getenv("MH_WIRE_SOCKET")

local function fail(fmt, ...)
	error(string.format(fmt, ...), 0)
end

local function expect(conn, what, want)
	local r = mt.getreply(conn)
	if r ~= want then
		fail("%s: got reply %q, expected %q", what,
		    string.char(r or 0), string.char(want))
	end
end

local function session(sender)
	local conn = mt.connect(SOCKET, 50, 0.1)
	if conn == nil then
		fail("cannot connect to %s", SOCKET)
	end
	if mt.negotiate(conn, nil, nil, nil) ~= nil then
		fail("negotiation failed")
	end
	if mt.conninfo(conn, "client.example.test", "192.0.2.7") ~= nil then
		fail("conninfo failed")
	end
	if mt.helo(conn, "client.example.test") ~= nil then
		fail("helo failed")
	end
	if mt.mailfrom(conn, sender) ~= nil then
		fail("mailfrom %s failed", sender)
	end
	return conn
end

local ok, err = pcall(function()
	-- A sender of the refused domain: 550 5.7.1 with the plugin's text.
	local conn = session("<someone@spam.example>")
	expect(conn, "MAIL from spam.example", SMFIR_REPLYCODE)
	if not mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.1",
	    "mail from this domain is not accepted here") then
		fail("MAIL from spam.example: not the plugin's reply")
	end
	mt.disconnect(conn)
	mt.echo("ok: <someone@spam.example> refused with the plugin's reply")

	-- Anybody else goes on.
	conn = session("<someone@good.example>")
	expect(conn, "MAIL from good.example", SMFIR_CONTINUE)
	mt.disconnect(conn)
	mt.echo("ok: <someone@good.example> continues")
end)
if not ok then
	mt.echo("FAIL: " .. tostring(err))
	os.exit(1)
end
