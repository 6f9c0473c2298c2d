-- connid.lua: Wireshark dissector of the connection-ID handshake
-- (services/connid/README.md): HELLO <id> answered by OK <id> <address>
-- <port> or RESET <id>, PING by PONG, anything else by ERROR BAD_REQUEST.
-- One message per datagram over UDP (a request may end in LF or CR LF), one
-- per line over TCP. Each reply is linked to its request (same client, same
-- ID; malformed requests to ERROR replies), with the response time.

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
local socklab = socklab_lib or dofile(here .. "socklab_lib.lua")

local p = Proto("connid", "socklab Connection-ID handshake")

local f = {
    request     = ProtoField.string("connid.request", "Request"),
    command     = ProtoField.string("connid.command", "Command"),
    response    = ProtoField.string("connid.response", "Response"),
    reply       = ProtoField.string("connid.reply", "Reply"),
    id          = ProtoField.string("connid.id", "Connection ID"),
    address     = ProtoField.string("connid.address", "Client address"),
    port        = ProtoField.uint16("connid.port", "Client port", base.DEC),
    error       = ProtoField.string("connid.error", "Error"),
    response_in = ProtoField.framenum("connid.response_in", "Response in", base.NONE, frametype.RESPONSE),
    response_to = ProtoField.framenum("connid.response_to", "Request in", base.NONE, frametype.REQUEST),
    time        = ProtoField.relative_time("connid.time", "Response time"),
}
p.fields = {f.request, f.command, f.response, f.reply, f.id, f.address, f.port, f.error, f.response_in, f.response_to, f.time}

local e = {
    malformed = ProtoExpert.new("connid.request.malformed", "Not HELLO <id> or PING: the server answers ERROR BAD_REQUEST or drops it",
        expert.group.PROTOCOL, expert.severity.WARN),
    reset = ProtoExpert.new("connid.reset", "RESET: the ID is in use by another client",
        expert.group.SEQUENCE, expert.severity.NOTE),
    error = ProtoExpert.new("connid.error.expert", "Error reply",
        expert.group.RESPONSE_CODE, expert.severity.WARN),
    address = ProtoExpert.new("connid.address.differs", "OK names another address or port than the request came from (NAT?)",
        expert.group.SEQUENCE, expert.severity.NOTE),
    noreq = ProtoExpert.new("connid.no_request", "No request seen for this reply",
        expert.group.SEQUENCE, expert.severity.CHAT),
}
p.experts = {e.malformed, e.reset, e.error, e.address, e.noreq}

local match = socklab.matcher()

local function client_key(pinfo, fromServer)
    if fromServer then
        return tostring(pinfo.dst) .. "/" .. pinfo.dst_port
    end
    return tostring(pinfo.src) .. "/" .. pinfo.src_port
end

-- valid_id reports whether id is 1 to 64 printable ASCII bytes but space.
local function valid_id(id)
    return #id >= 1 and #id <= 64 and not id:find("[^\33-\126]")
end

local function request(pinfo, tree, line, range)
    local t = tree:add(f.request, range, socklab.printable(line))
    local id = line:match("^HELLO (.*)$")
    local key
    if id and valid_id(id) then
        t:add(f.command, range:range(0, 5), "HELLO")
        t:add(f.id, range:range(6, #id), id)
        key = "HELLO " .. id
        socklab.info(pinfo, "C: HELLO " .. id)
    elseif line == "PING" then
        t:add(f.command, range:range(0, 4), "PING")
        key = "PING"
        socklab.info(pinfo, "C: PING")
    else
        t:add_proto_expert_info(e.malformed)
        key = "?"
        socklab.info(pinfo, "C: " .. socklab.printable(line, 40) .. " (malformed)")
    end
    local link = match.request(pinfo, range, client_key(pinfo, false) .. " " .. key,
        {addr = tostring(pinfo.src), port = pinfo.src_port})
    match.add(t, range, link, f.response_in, f.response_to, f.time)
end

local function response(pinfo, tree, line, range)
    local t = tree:add(f.response, range, socklab.printable(line))
    local key
    local id, addr, port = line:match("^OK (%S+) (%S+) (%d+)$")
    local ok = id ~= nil
    if ok then
        local ia = 4 + #id
        t:add(f.id, range:range(3, #id), id)
        t:add(f.address, range:range(ia, #addr), addr)
        t:add(f.port, range:range(ia + #addr + 1, #port), tonumber(port))
        key = "HELLO " .. id
        socklab.info(pinfo, string.format("S: OK %s %s %s", id, addr, port))
    else
        id = line:match("^RESET (%S+)$")
        if id then
            t:add(f.id, range:range(6, #id), id)
            t:add_proto_expert_info(e.reset)
            key = "HELLO " .. id
            socklab.info(pinfo, "S: RESET " .. id)
        elseif line == "PONG" then
            key = "PING"
            socklab.info(pinfo, "S: PONG")
        else
            local code = line:match("^ERROR (.*)$") or line
            t:add(f.error, range, socklab.printable(code))
            t:add_proto_expert_info(e.error, "Error: " .. socklab.printable(code))
            key = "?"
            socklab.info(pinfo, "S: " .. socklab.printable(line, 40))
        end
    end
    local word = line:match("^(%u+)") or ""
    if #word > 0 then t:add(f.reply, range:range(0, #word), word) end
    local link = match.response(pinfo, range, client_key(pinfo, true) .. " " .. key)
    if link then
        match.add(t, range, link, f.response_in, f.response_to, f.time)
        if ok and link.extra and (link.extra.addr ~= addr or link.extra.port ~= tonumber(port)) then
            t:add_proto_expert_info(e.address)
        end
    else
        t:add_proto_expert_info(e.noreq)
    end
end

local ports

function p.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol:set("ConnID")
    local st = tree:add(p, tvb())
    local fromServer = socklab.from_server(pinfo, ports())
    local fn = fromServer and response or request
    if not socklab.stream(pinfo) then
        -- UDP: one message per datagram; a request may end in LF or CR LF.
        local n = tvb:len()
        local data = n > 0 and tvb:range(0, n):raw() or ""
        local body = data
        if not fromServer then body = body:gsub("\r?\n$", "", 1) end
        fn(pinfo, st, body, tvb())
        return n
    end
    return socklab.lines(tvb, pinfo, st, fn)
end

ports = socklab.register(p, "connid")
