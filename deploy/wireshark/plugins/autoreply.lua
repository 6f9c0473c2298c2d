-- autoreply.lua: Wireshark dissector of AutoReplyNet
-- (services/autoreply/README.md). A request is a line over TCP (reassembled
-- across segments) or one datagram over UDP; the dissector shows its length.
-- A reply is
--   REPLY id=<16 hex> at=<RFC 3339 UTC> len=<n> snippet="<Go %q>" note="<phrase>"
-- shown field by field, or an ERROR line.

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
local socklab = socklab_lib or dofile(here .. "socklab_lib.lua")

local p = Proto("autoreply", "AutoReplyNet")

local f = {
    request = ProtoField.string("autoreply.request", "Request"),
    reqlen  = ProtoField.uint32("autoreply.request.len", "Request length", base.DEC),
    reply   = ProtoField.string("autoreply.reply", "Reply"),
    id      = ProtoField.string("autoreply.id", "Reply id"),
    at      = ProtoField.string("autoreply.at", "Received at"),
    len     = ProtoField.uint32("autoreply.len", "Length quoted", base.DEC),
    snippet = ProtoField.string("autoreply.snippet", "Snippet"),
    note    = ProtoField.string("autoreply.note", "Note"),
    error   = ProtoField.string("autoreply.error", "Error"),
}
p.fields = {f.request, f.reqlen, f.reply, f.id, f.at, f.len, f.snippet, f.note, f.error}

local e = {
    bad = ProtoExpert.new("autoreply.reply.malformed", "Reply not in the REPLY format",
        expert.group.MALFORMED, expert.severity.ERROR),
    error = ProtoExpert.new("autoreply.error.expert", "Error reply",
        expert.group.RESPONSE_CODE, expert.severity.WARN),
    continuation = socklab.continuation_expert("autoreply"),
}
p.experts = {e.bad, e.error, e.continuation}

local function request(pinfo, tree, msg, range)
    local t = tree:add(f.request, range, socklab.printable(msg))
    t:add(f.reqlen, range, #msg)
    socklab.info(pinfo, string.format("C: (%d bytes) %s", #msg, socklab.printable(msg, 40)))
end

local reply_pattern = '^REPLY id=()(%x*)() at=()(%S*)() len=()(%d*)() snippet="()(.*)()" note="()([^"]*)()"$'

local function response(pinfo, tree, line, range)
    local t = tree:add(f.reply, range, socklab.printable(line))
    local sub = function(a, b) return range:range(a - 1, b - a) end
    local ia, id, ib, aa, at, ab, la, n, lb, sa, snippet, sb, na, note, nb = line:match(reply_pattern)
    if ia then
        t:add(f.id, sub(ia, ib), id)
        t:add(f.at, sub(aa, ab), at)
        t:add(f.len, sub(la, lb), tonumber(n) or 0)
        t:add(f.snippet, sub(sa, sb), snippet)
        t:add(f.note, sub(na, nb), note)
        socklab.info(pinfo, string.format("S: REPLY id=%s len=%s note=\"%s\"", id, n, note))
        return
    end
    local msg = line:match("^ERROR (.*)$")
    if msg then
        t:add(f.error, range, socklab.printable(msg))
        t:add_proto_expert_info(e.error, "Error: " .. socklab.printable(msg))
        socklab.info(pinfo, "S: ERROR " .. socklab.printable(msg, 40))
        return
    end
    if line:sub(1, 6) ~= "REPLY " then
        t:add_proto_expert_info(e.continuation)
        socklab.info(pinfo, "S: " .. socklab.printable(line, 40) .. " (continuation)")
        return
    end
    t:add_proto_expert_info(e.bad)
    socklab.info(pinfo, "S: " .. socklab.printable(line, 40))
end

local ports

function p.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol:set("AutoReply")
    local st = tree:add(p, tvb())
    local fromServer = socklab.from_server(pinfo, ports())
    if not socklab.stream(pinfo) then
        -- UDP: the whole datagram is the message (a trailing LF is data);
        -- a reply holds its line without LF.
        local data = tvb:len() > 0 and tvb:range(0, tvb:len()):raw() or ""
        local range = tvb()
        if fromServer then response(pinfo, st, data, range) else request(pinfo, st, data, range) end
        return tvb:len()
    end
    return socklab.lines(tvb, pinfo, st, fromServer and response or request)
end

ports = socklab.register(p, "autoreply")
