-- wire_lib.lua - what every miltertest script of the wire tests shares.
-- Loaded first thing with
--
--	dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "wire_lib.lua")
--
-- it defines globals, since miltertest runs one script.
--
-- miltertest swallows Lua errors, so a script's work runs under
-- run_script(), which prints a failure with mt.echo and exits 1.
--
-- wire_connect(), wire_answer(), wire_step() and wire_eom() talk to the
-- daemon as an MTA does, failing (fail()) on an answer not wanted.

failures = 0

function fail(fmt, ...)
	error(string.format(fmt, ...), 0)
end

-- How many lines of the daemon's log (MH_WIRE_LOG) contain text, plainly.
function log_count(text)
	local log = os.getenv("MH_WIRE_LOG")
	local f = log and io.open(log, "r")
	local n = 0

	if f == nil then
		fail("cannot read the log %s", tostring(log))
	end
	for line in f:lines() do
		if line:find(text, 1, true) then
			n = n + 1
		end
	end
	f:close()
	return n
end

-- The name of a reply letter from mt.getreply, for messages.
function reply_name(r)
	local names = {
		[SMFIR_CONTINUE] = "continue", [SMFIR_ACCEPT] = "accept",
		[SMFIR_REJECT] = "reject", [SMFIR_TEMPFAIL] = "tempfail",
		[SMFIR_DISCARD] = "discard", [SMFIR_REPLYCODE] = "replycode",
		[SMFIR_SKIP] = "skip",
	}
	if r == nil or r == 0 then
		return "nothing"
	end
	return names[r] or string.format("%q (%d)", string.char(r), r)
end

-- One named check: "ok: NAME", or "FAIL: NAME: why", counted; the script
-- goes on with the next.
function check(name, fn)
	local ok, err = pcall(fn)
	if ok then
		mt.echo("ok: " .. name)
	else
		failures = failures + 1
		mt.echo("FAIL: " .. name .. ": " .. tostring(err))
	end
end

-- run_script(fn): run the script's work; exit 1 if it raised an error or
-- a check failed.
function run_script(fn)
	local ok, err = pcall(fn)
	if not ok then
		mt.echo("FAIL: " .. tostring(err))
		os.exit(1)
	end
	if failures > 0 then
		os.exit(1)
	end
end

-- wire_connect(): a connection to the daemon at MH_WIRE_SOCKET (set by
-- lib.sh's wire_miltertest), negotiated with miltertest's defaults: every
-- action and protocol step offered.
function wire_connect()
	local socket = os.getenv("MH_WIRE_SOCKET")
	if socket == nil or socket == "" then
		fail("MH_WIRE_SOCKET is not set")
	end
	local conn = mt.connect(socket, 50, 0.1)
	if conn == nil then
		fail("cannot connect to %s", socket)
	end
	local err = mt.negotiate(conn, nil, nil, nil)
	if err ~= nil then
		fail("negotiation: %s", tostring(err))
	end
	return conn
end

-- wire_answer(conn, what, err, want, ...): err is what the miltertest
-- call that sent a command returned (nil: sent), and milterhost's answer
-- to the command must be one of the wanted reply letters (SMFIR_*).
-- Returns the answer.
function wire_answer(conn, what, err, ...)
	local names = {}

	if err ~= nil then
		fail("%s: miltertest error: %s", what, tostring(err))
	end
	local r = mt.getreply(conn)
	for _, want in ipairs({ ... }) do
		if r == want then
			return r
		end
		names[#names + 1] = reply_name(want)
	end
	fail("%s: milterhost answered %s, expected %s", what, reply_name(r),
	    table.concat(names, " or "))
end

-- wire_step(conn, what, nobit, want, fn, ...): one protocol step,
-- fn(conn, ...) (mt.conninfo, mt.helo, mt.mailfrom, ...), whose answer
-- must be want (SMFIR_CONTINUE, ...); printed as "  WHAT  ANSWER".  A
-- stage the milter asked not to get (nobit, its SMFIP_NO* bit; nil for
-- none) is skipped, as an MTA skips it: miltertest refuses to send it.
function wire_step(conn, what, nobit, want, fn, ...)
	if nobit ~= nil and mt.test_option(conn, nobit) then
		mt.echo(string.format("  %-24s not sent: milterhost asked not "
		    .. "to get it", what))
		return
	end
	local r = wire_answer(conn, what, fn(conn, ...), want)
	mt.echo(string.format("  %-24s %s", what, reply_name(r)))
end

-- wire_eom(conn): the end of the message, which milterhost must let
-- through (continue or accept).
function wire_eom(conn)
	local r = wire_answer(conn, "eom", mt.eom(conn), SMFIR_CONTINUE,
	    SMFIR_ACCEPT)
	mt.echo(string.format("  %-24s %s", "eom", reply_name(r)))
end
