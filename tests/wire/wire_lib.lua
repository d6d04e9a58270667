-- wire_lib.lua - what every miltertest script of the wire tests shares.
-- Loaded first thing with
--
--	dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "wire_lib.lua")
--
-- it defines globals, since miltertest runs one script.
--
-- miltertest swallows Lua errors, so a script's work runs under
-- run_script(), which prints a failure with mt.echo and exits 1.

failures = 0

function fail(fmt, ...)
	error(string.format(fmt, ...), 0)
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
