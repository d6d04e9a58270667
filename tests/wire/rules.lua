-- rules.lua - miltertest script for tests/wire/rules.sh: the bundled
-- rules plugin in the running milterhost, as the MTA sees it.  Each
-- scenario is one connection (or two messages on one).
--
-- Environment (set by rules.sh):
--   MH_WIRE_SOCKET    the daemon's socket
--   MH_WIRE_SCENARIO  "main": the configuration MAIN of rules.sh (many
--                     rules, body_limit = 4k, score_reject = 10,
--                     score_header = X-Score); "whole": the configuration
--                     WHOLE (body_limit = 0, the rules from a file)
--
-- Reply texts before the end of the message and header indexes are not
-- visible to miltertest: rules.sh checks them with "mtaclient script".
-- Every check prints "ok: NAME" or "FAIL: NAME: why"; the script exits 1
-- if one failed (wire_lib.lua).

dofile(debug.getinfo(1, "S").source:match("^@?(.*/)") .. "wire_lib.lua")

local SCENARIO = os.getenv("MH_WIRE_SCENARIO")

local function open(host, addr, ...)
	local c = wire_connect()
	local want = { ... }
	if #want == 0 then
		want = { SMFIR_CONTINUE }
	end
	wire_answer(c, "connect " .. host, mt.conninfo(c, host, addr),
	    table.unpack(want))
	return c
end

local function helo(c, name)
	wire_answer(c, "helo " .. name, mt.helo(c, name), SMFIR_CONTINUE)
end

local function mail(c, from, ...)
	local want = { ... }
	return wire_answer(c, "mail " .. from, mt.mailfrom(c, from),
	    table.unpack(#want > 0 and want or { SMFIR_CONTINUE }))
end

local function rcpt(c, to, ...)
	local want = { ... }
	return wire_answer(c, "rcpt " .. to, mt.rcptto(c, to),
	    table.unpack(#want > 0 and want or { SMFIR_CONTINUE }))
end

-- Headers are never answered (milterhost claims SMFIP_NR_HDR), and the
-- end of headers is not asked for: the rules plugin has no eoh.
local function header(c, name, value)
	local err = mt.header(c, name, value)
	if err ~= nil then
		fail("header %s: miltertest: %s", name, tostring(err))
	end
end

local function body(c, text, ...)
	local want = { ... }
	return wire_answer(c, "body chunk", mt.bodystring(c, text),
	    table.unpack(#want > 0 and want or { SMFIR_CONTINUE }))
end

-- The end of the message: delivered (continue or accept), or as wanted.
local function eom(c, ...)
	local want = { ... }
	if #want == 0 then
		want = { SMFIR_CONTINUE, SMFIR_ACCEPT }
	end
	return wire_answer(c, "eom", mt.eom(c), table.unpack(want))
end

-- A message up to its body from a connected client.
local function envelope(c, from, to)
	mail(c, from)
	rcpt(c, to)
end

-- ---- configuration MAIN ------------------------------------------------

local M = {}

M["client_addr reject at connect"] = function()
	local c = open("bad.example", "192.0.2.66", SMFIR_REPLYCODE)
	mt.disconnect(c)
end

M["client (name or address) tempfail at connect"] = function()
	local c = open("blocked.example", "198.51.100.2", SMFIR_TEMPFAIL)
	mt.disconnect(c)
end

M["client accept: the instance is done with the connection"] = function()
	local c = open("trusted.example", "198.51.100.3", SMFIR_ACCEPT)
	mt.disconnect(c)
end

M["client discard: every message of the connection"] = function()
	local c = open("blackhole.example", "198.51.100.4")
	helo(c, "blackhole.example")
	mail(c, "<a@example.org>", SMFIR_DISCARD)
	mail(c, "<b@example.org>", SMFIR_DISCARD)
	mt.disconnect(c)
end

M["score: client, helo, sender and any-header rules reach score_reject"] =
    function()
	local c = open("host.dialup.example", "198.51.100.5")
	helo(c, "[198.51.100.5]")              -- 4
	envelope(c, "<a@SPAM.example>", "<r@example.org>") -- 5, caseless
	header(c, "Subject", "cheap viagra")   -- 3
	body(c, "hello\r\n")
	-- dialup 2: 14 points
	eom(c, SMFIR_REPLYCODE)
	if not mt.eom_check(c, MT_SMTPREPLY, "550", "5.7.1",
	    "Too many points") then
		fail("the reply is not score_reject_reply")
	end
	mt.disconnect(c)
end

-- The score header's value, without a leading space.
local function score_header(c)
	local v = mt.getheader(c, "X-Score", 0)
	if v == nil then
		fail("no X-Score header was added")
	end
	return (v:gsub("^ ", ""))
end

local function has(text, part)
	if not text:find(part, 1, true) then
		fail("%q is not in %q", part, text)
	end
end

M["score_header: the client rule's points count in each message"] =
    function()
	local c = open("host.dialup.example", "198.51.100.6")
	helo(c, "client.example")
	for i = 1, 2 do
		envelope(c, "<a@example.org>", "<r@example.org>")
		header(c, "Subject", "more Viagra " .. i)
		body(c, "hello\r\n")
		eom(c)
		local v = score_header(c)
		has(v, "total 5;")
		has(v, "[rules] 2 dialup client")
		has(v, "[rules] 3 subject")
		local _, n = v:gsub("%[rules%]", "")
		if n ~= 2 then
			fail("message %d: %d contributions in %q, expected 2",
			    i, n, v)
		end
	end
	mt.disconnect(c)
end

M["a score rule counts once a message"] = function()
	local c = open("host.example", "198.51.100.7")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "Subject", "viagra")
	header(c, "Subject", "viagra again")
	body(c, "hello\r\n")
	eom(c)
	local v = score_header(c)
	has(v, "total 3;")
	mt.disconnect(c)
end

M["sender tempfail with a reply"] = function()
	local c = open("host.example", "198.51.100.8")
	helo(c, "client.example")
	mail(c, "<x@later.example>", SMFIR_REPLYCODE)
	mt.disconnect(c)
end

M["sender !/.../: a sender without a domain is refused"] = function()
	local c = open("host.example", "198.51.100.9")
	helo(c, "client.example")
	mail(c, "<localonly>", SMFIR_REPLYCODE)
	mail(c, "<user@example.org>")
	mt.disconnect(c)
end

M["sender /^$/ addheader: the null sender"] = function()
	local c = open("host.example", "198.51.100.10")
	helo(c, "client.example")
	envelope(c, "<>", "<r@example.org>")
	body(c, "bounce\r\n")
	eom(c)
	local v = mt.getheader(c, "X-Null-Sender", 0)
	if v == nil or v:gsub("^ ", "") ~= "yes" then
		fail("X-Null-Sender is %s, expected yes", tostring(v))
	end
	mt.disconnect(c)
end

M["recipient reject refuses that recipient only"] = function()
	local c = open("host.example", "198.51.100.11")
	helo(c, "client.example")
	mail(c, "<a@example.org>")
	rcpt(c, "<nobody@example.org>", SMFIR_REPLYCODE)
	rcpt(c, "<ok@example.org>")
	header(c, "Subject", "hello")
	body(c, "hello\r\n")
	eom(c)
	if mt.getheader(c, "X-Null-Sender", 0) ~= nil then
		fail("X-Null-Sender was added for a sender with an address")
	end
	mt.disconnect(c)
end

M["recipient accept: later rules pass the message"] = function()
	local c = open("host.example", "198.51.100.12")
	helo(c, "client.example")
	mail(c, "<a@example.org>")
	rcpt(c, "<abuse@example.org>", SMFIR_ACCEPT)
	mt.disconnect(c)
end

M["recipient discard"] = function()
	local c = open("host.example", "198.51.100.13")
	helo(c, "client.example")
	mail(c, "<a@example.org>")
	rcpt(c, "<trash@example.org>", SMFIR_DISCARD)
	mt.disconnect(c)
end

M["header delete, header quarantine; other headers kept"] = function()
	local c = open("host.example", "198.51.100.14")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "X-Originating-IP", "10.1.2.3")
	header(c, "X-Originating-IP", "192.0.2.1")
	header(c, "user-agent", "Foo/1.0")
	header(c, "X-Quarantine", "yes")
	body(c, "hello\r\n")
	eom(c)
	if not mt.eom_check(c, MT_HDRDELETE, "X-Originating-IP") then
		fail("X-Originating-IP was not deleted")
	end
	if not mt.eom_check(c, MT_HDRDELETE, "user-agent") then
		fail("user-agent was not deleted")
	end
	if mt.eom_check(c, MT_HDRDELETE, "X-Quarantine") then
		fail("X-Quarantine was deleted")
	end
	if not mt.eom_check(c, MT_QUARANTINE, "held by a rule") then
		fail("the message was not quarantined 'held by a rule'")
	end
	mt.disconnect(c)
end

M["no rule matches: nothing changes"] = function()
	local c = open("host.example", "198.51.100.15")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "X-Originating-IP", "192.0.2.1")
	header(c, "Subject", "hello")
	body(c, "click here\r\nnow\r\n")
	eom(c)
	for _, op in ipairs({ MT_HDRINSERT, MT_HDRCHANGE, MT_HDRDELETE,
	    MT_QUARANTINE, MT_BODYCHANGE }) do
		if mt.eom_check(c, op) then
			fail("a change of kind %d was sent", op)
		end
	end
	if mt.getheader(c, "X-Score", 0) ~= nil then
		fail("X-Score was added without points")
	end
	mt.disconnect(c)
end

M["body: a line split between two chunks matches"] = function()
	local c = open("host.example", "198.51.100.16")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "Subject", "hello")
	body(c, "first line\r\nplease Click He")
	body(c, "re Now or else\r\n", SMFIR_REPLYCODE)
	mt.disconnect(c)
end

M["body: a line is checked without its CRLF, across the CR LF split"] =
    function()
	local c = open("host.example", "198.51.100.17")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "Subject", "hello")
	body(c, "discard me\r")
	body(c, "\n", SMFIR_DISCARD)
	mt.disconnect(c)
end

M["body: the last line without CRLF is checked at the end"] = function()
	local c = open("host.example", "198.51.100.18")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "Subject", "hello")
	body(c, "hello\r\ndiscard me")
	eom(c, SMFIR_DISCARD)
	mt.disconnect(c)
end

M["body_limit: a match after the first 4k is not seen"] = function()
	local c = open("host.example", "198.51.100.19")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "Subject", "hello")
	-- 4000 bytes, then a line across the limit, then one after it.
	local filler = string.rep(string.rep("x", 78) .. "\r\n", 50)
	body(c, filler .. string.rep("y", 90) .. " click here now\r\n" ..
	    "click here now\r\n", SMFIR_CONTINUE, SMFIR_SKIP)
	eom(c)
	mt.disconnect(c)
end

M["body_limit: a line across the limit is checked up to it"] =
    function()
	local c = open("host.example", "198.51.100.20")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "Subject", "hello")
	local filler = string.rep(string.rep("x", 78) .. "\r\n", 50)
	body(c, filler .. "ab click here now, the limit is here" ..
	    string.rep("z", 200) .. "\r\n", SMFIR_REPLYCODE)
	mt.disconnect(c)
end

M["a second message on the connection starts afresh"] = function()
	local c = open("host.example", "198.51.100.21")
	helo(c, "client.example")
	mail(c, "<a@example.org>")
	rcpt(c, "<abuse@example.org>", SMFIR_ACCEPT)
	-- a new message: the accept ended the first one only
	mail(c, "<a@example.org>")
	rcpt(c, "<r@example.org>")
	header(c, "Subject", "hello")
	body(c, "click here now\r\n", SMFIR_REPLYCODE)
	mt.disconnect(c)
end

-- ---- configuration WHOLE -----------------------------------------------

local W = {}

W["body_limit = 0: a match after 100 KB is seen"] = function()
	local c = open("host.example", "198.51.100.30")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "Subject", "hello")
	local line = string.rep("x", 998) .. "\r\n"
	for _ = 1, 2 do
		body(c, string.rep(line, 50))  -- 50 KB a chunk
	end
	body(c, "so click here now\r\n", SMFIR_REPLYCODE)
	mt.disconnect(c)
end

W["a long line is checked in pieces of 8192 bytes"] = function()
	local c = open("host.example", "198.51.100.31")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "Subject", "hello")
	-- 20000 bytes without a line end; the phrase in the second piece.
	body(c, string.rep("x", 10000) .. "click here now" ..
	    string.rep("x", 9986), SMFIR_REPLYCODE)
	mt.disconnect(c)
end

W["the second piece of a long line starts at byte 8192"] = function()
	local c = open("host.example", "198.51.100.33")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "Subject", "hello")
	body(c, string.rep("x", 8192))
	body(c, "click here now\r\n", SMFIR_REPLYCODE)
	mt.disconnect(c)
end

W["a phrase across the 8192-byte cut is not seen"] = function()
	local c = open("host.example", "198.51.100.32")
	helo(c, "client.example")
	envelope(c, "<a@example.org>", "<r@example.org>")
	header(c, "Subject", "hello")
	body(c, string.rep("x", 8186) .. "click here now" ..
	    string.rep("x", 100) .. "\r\n")
	eom(c)
	mt.disconnect(c)
end

local function main()
	local scenarios = ({ main = M, whole = W })[SCENARIO or ""]
	if scenarios == nil then
		fail("MH_WIRE_SCENARIO must be main or whole, not %s",
		    tostring(SCENARIO))
	end
	local names = {}
	for name in pairs(scenarios) do
		names[#names + 1] = name
	end
	table.sort(names)
	for _, name in ipairs(names) do
		check(name, scenarios[name])
	end
end

run_script(main)
