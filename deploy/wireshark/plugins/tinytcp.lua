-- tinytcp.lua: Wireshark dissector of the TinyTCP line protocol
-- (services/tinytcp/README.md): the WELCOME banner, the commands TIME, ECHO,
-- HELP, QUIT with their argument, and the replies TIME, ECHO, HELP, BYE and
-- ERROR with its code. One line per message over TCP, reassembled across
-- segments. On the lab's port, in Decode As, and as a heuristic on any TCP
-- port (a stream whose first line is a banner or a command).

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
local socklab = socklab_lib or dofile(here .. "socklab_lib.lua")

local p = Proto("tinytcp", "TinyTCP")

local f = {
    request  = ProtoField.string("tinytcp.request", "Request"),
    command  = ProtoField.string("tinytcp.command", "Command"),
    argument = ProtoField.string("tinytcp.argument", "Argument"),
    response = ProtoField.string("tinytcp.response", "Response"),
    reply    = ProtoField.string("tinytcp.reply", "Reply kind"),
    text     = ProtoField.string("tinytcp.text", "Reply text"),
    time     = ProtoField.string("tinytcp.time", "Server time"),
    error    = ProtoField.string("tinytcp.error", "Error code"),
}
p.fields = {f.request, f.command, f.argument, f.response, f.reply, f.text, f.time, f.error}

local e = {
    unknown = ProtoExpert.new("tinytcp.unknown_command", "Unknown command",
        expert.group.PROTOCOL, expert.severity.NOTE),
    error = ProtoExpert.new("tinytcp.error.expert", "Error reply",
        expert.group.RESPONSE_CODE, expert.severity.WARN),
}
p.experts = {e.unknown, e.error}

local verbs = {TIME = true, ECHO = true, HELP = true, QUIT = true}

local function request(pinfo, tree, line, range)
    local t = tree:add(f.request, range, socklab.printable(line))
    local verb, arg = line:match("^([^ ]*) (.*)$")
    if not verb then verb = line end
    local up = verb:upper()
    -- the server matches verbs in any ASCII case: the field holds it upper
    t:add(f.command, range, socklab.printable(up))
    if arg then t:add(f.argument, range, socklab.printable(arg)) end
    if not verbs[up] then t:add_proto_expert_info(e.unknown) end
    local info = "C: " .. socklab.printable(verb, 16)
    if arg and arg ~= "" then info = info .. " " .. socklab.printable(arg, 40) end
    socklab.info(pinfo, info)
end

local function response(pinfo, tree, line, range)
    local t = tree:add(f.response, range, socklab.printable(line))
    local word, rest = line:match("^([^ ]*) (.*)$")
    if not word then word = line end
    local up = word:upper()
    if up:sub(1, 7) == "WELCOME" then
        t:add(f.reply, range, "WELCOME")
        t:add(f.text, range, socklab.printable(line))
        socklab.info(pinfo, "S: " .. socklab.printable(line, 60))
        return
    end
    t:add(f.reply, range, up)
    if rest then t:add(f.text, range, socklab.printable(rest)) end
    if up == "TIME" and rest then t:add(f.time, range, rest) end
    if up == "ERROR" then
        t:add(f.error, range, socklab.printable(rest or ""))
        t:add_proto_expert_info(e.error, "Error: " .. socklab.printable(rest or ""))
    end
    socklab.info(pinfo, "S: " .. socklab.printable(line, 60))
end

local ports

function p.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol:set("TinyTCP")
    local st = tree:add(p, tvb())
    local fromServer = socklab.from_server(pinfo, ports())
    local fn = fromServer and response or request
    local used = socklab.lines(tvb, pinfo, st, fn)
    return used
end

ports = socklab.register(p, "tinytcp")

-- The heuristic takes a TCP stream whose first bytes are a TinyTCP banner
-- (from the server) or a command verb and a separator (from the client),
-- and makes TinyTCP the dissector of the whole conversation.
local function heuristic(tvb, pinfo, tree)
    local n = tvb:len()
    if n < 5 then return false end
    local head = tvb:range(0, math.min(n, 16)):raw()
    if head:match("^WELCOME") then
        socklab.set_server(pinfo, pinfo.src_port)
    else
        local verb = head:match("^(%a%a%a%a)[ \r\n]")
        if not verb or not verbs[verb:upper()] then return false end
        socklab.set_server(pinfo, pinfo.dst_port)
    end
    pinfo.conversation = p
    p.dissector(tvb, pinfo, tree)
    return true
end
p:register_heuristic("tcp", heuristic)
