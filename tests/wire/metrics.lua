-- metrics.lua - miltertest script for tests/wire/metrics.sh: a known
-- sequence of SMTP sessions through the running milterhost, whose
-- counters metrics.sh then reads at /metrics.
--
-- The daemon runs one instance, a, of the scripted test plugin; each
-- session's client host name selects its steps (see metrics.sh):
--
--   accepted   a message that a changes (two headers added at eom)
--   refused    a message a rejects at DATA
--   failing    a message whose MAIL FROM callback fails (on_error
--              tempfail)
--   aborted    a message the MTA aborts after its recipients
--   slow       a message whose eom takes longer than a's slow_ms
--
-- Environment: MH_WIRE_SOCKET, MH_WIRE_LOG (see scripted_lib.lua).

dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "scripted_lib.lua")

local function session(scen, events, last, want)
	local c = open(scen)

	run(c, scen, CONN)
	run(c, scen, events)
	if last ~= nil then
		expect(c, scen, last, want)
	end
	return c
end

run_script(function()
	check("accepted: a message with two headers added", function()
		local c = session("accepted", message("<s@x>"))
		mt.disconnect(c)
	end)
	check("refused: rejected at DATA", function()
		local c = session("refused", {
			ev("envfrom", "<s@x>"), ev("envrcpt", "<r1@x>"),
			ev("envrcpt", "<r2@x>") }, ev("data"), SMFIR_REPLYCODE)
		mt.disconnect(c)
	end)
	check("failing: MAIL FROM tempfailed by on_error", function()
		local c = session("failing", {}, ev("envfrom", "<s@x>"),
		    SMFIR_TEMPFAIL)
		mt.disconnect(c)
	end)
	check("aborted: the MTA aborts after the recipients", function()
		local c = session("aborted", { ev("envfrom", "<s@x>"),
		    ev("envrcpt", "<r1@x>"), ev("envrcpt", "<r2@x>") })
		local err = mt.abort(c)
		if err ~= nil then
			fail("abort: %s", tostring(err))
		end
		mt.disconnect(c)
	end)
	check("slow: a message whose eom sleeps", function()
		local c = session("slow", message("<s@x>"))
		mt.disconnect(c)
	end)
end)
