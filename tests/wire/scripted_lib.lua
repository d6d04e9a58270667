-- scripted_lib.lua - what decisions.lua, misbehave.lua and mods.lua share
-- beyond wire_lib.lua (which it loads): talking
-- to the running milterhost as miltertest's MTA, and reading the scripted
-- test plugin's call lines from the daemon's log.  Loaded with dofile by
-- those scripts; it defines globals, since miltertest runs one script.
--
-- Environment: MH_WIRE_SOCKET (the daemon's socket), MH_WIRE_LOG (its log).

SOCKET = os.getenv("MH_WIRE_SOCKET")
LOG = os.getenv("MH_WIRE_LOG")

dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "wire_lib.lua")

-- The number of calls of instance inst in scenario scen whose log text
-- starts with what ("eom", "envrcpt <r1@x>", "body 2").
function calls(inst, scen, what)
	return log_count(string.format("[%s] %s call %s", inst, scen, what))
end

function expect_calls(inst, scen, what, n)
	local got = calls(inst, scen, what)
	if got ~= n then
		fail("%s was called %d times for %s, expected %d", inst, got,
		    what, n)
	end
end

-- ---- the MTA side ------------------------------------------------------

NOBIT = {
	connect = SMFIP_NOCONNECT, helo = SMFIP_NOHELO, envfrom = SMFIP_NOMAIL,
	envrcpt = SMFIP_NORCPT, data = SMFIP_NODATA, header = SMFIP_NOHDRS,
	eoh = SMFIP_NOEOH, body = SMFIP_NOBODY, unknown = SMFIP_NOUNKNOWN,
}

function open(scen)
	return wire_connect()
end

-- Send one event; return milterhost's reply.
function send(c, scen, ev)
	local s, err = ev.stage
	if NOBIT[s] ~= nil and mt.test_option(c, NOBIT[s]) then
		fail("milterhost negotiated %s away", s)
	end
	if s == "connect" then
		err = mt.conninfo(c, scen, "192.0.2.1")
	elseif s == "helo" then
		err = mt.helo(c, "client.example.test")
	elseif s == "unknown" then
		err = mt.unknown(c, ev.arg)
	elseif s == "envfrom" then
		err = mt.mailfrom(c, ev.arg)
	elseif s == "envrcpt" then
		err = mt.rcptto(c, ev.arg)
	elseif s == "data" then
		err = mt.data(c)
	elseif s == "header" then
		err = mt.header(c, ev.arg, ev.value)
	elseif s == "eoh" then
		err = mt.eoh(c)
	elseif s == "body" then
		err = mt.bodystring(c, "body chunk " .. ev.arg .. "\r\n")
	elseif s == "eom" then
		err = mt.eom(c)
	end
	if err ~= nil then
		fail("%s %s: miltertest: %s", s, tostring(ev.arg),
		    tostring(err))
	end
	return mt.getreply(c)
end

function expect(c, scen, ev, want)
	local r = send(c, scen, ev)
	if r ~= want then
		fail("%s %s: milterhost answered %s, expected %s", ev.stage,
		    ev.arg or "", reply_name(r), reply_name(want))
	end
end

-- Send events; each must be answered want (continue if nil).
function run(c, scen, events, want)
	for _, ev in ipairs(events) do
		expect(c, scen, ev, want or SMFIR_CONTINUE)
	end
end

function ev(stage, arg, value)
	return { stage = stage, arg = arg, value = value }
end

CONN = { ev("connect"), ev("helo") }
function message(from)
	return {
		ev("envfrom", from), ev("envrcpt", "<r1@x>"),
		ev("envrcpt", "<r2@x>"), ev("data"),
		ev("header", "Subject", "wire test"), ev("header", "From", from),
		ev("eoh"), ev("body", "1"), ev("body", "2"), ev("eom"),
	}
end

function concat(...)
	local out = {}
	for _, list in ipairs({ ... }) do
		for _, e in ipairs(list) do
			out[#out + 1] = e
		end
	end
	return out
end
