-- example_plugin.lua - miltertest script for tests/wire/example_plugin.sh:
-- the README's example plugin (contrib/examples/rejectdomain.c), built out
-- of tree, refuses a sender of its domain with its own reply and lets
-- others through.
--
-- Environment: MH_WIRE_SOCKET, the daemon's socket.

dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "wire_lib.lua")

local function expect(conn, what, want)
	local r = mt.getreply(conn)
	if r ~= want then
		fail("%s: got reply %q, expected %q", what,
		    string.char(r or 0), string.char(want))
	end
end

local function session(sender)
	local conn = wire_connect()
	-- The plugin implements envfrom only: milterhost asks for no other
	-- stage, and miltertest refuses to send those.
	for _, opt in ipairs({ SMFIP_NOCONNECT, SMFIP_NOHELO, SMFIP_NORCPT,
	    SMFIP_NOHDRS, SMFIP_NOEOH, SMFIP_NOBODY }) do
		if not mt.test_option(conn, opt) then
			fail("stage bit 0x%x not negotiated away", opt)
		end
	end
	if mt.mailfrom(conn, sender) ~= nil then
		fail("mailfrom %s failed", sender)
	end
	return conn
end

run_script(function()
	-- A sender of the refused domain: a reject carrying the plugin's
	-- own reply (SMFIR_REPLYCODE; a reject without one is SMFIR_REJECT).
	-- miltertest keeps the text of replies at end of message only.
	local conn = session("<someone@spam.example>")
	expect(conn, "MAIL from spam.example", SMFIR_REPLYCODE)
	mt.disconnect(conn)
	mt.echo("ok: <someone@spam.example> refused with a custom reply")

	-- Anybody else goes on.
	conn = session("<someone@good.example>")
	expect(conn, "MAIL from good.example", SMFIR_CONTINUE)
	mt.disconnect(conn)
	mt.echo("ok: <someone@good.example> continues")
end)
