-- socklab_lib.lua: what the five socklab dissectors share: the lab's ports
-- (socklab_ports.lua, generated from services/kit/lab), port preferences and
-- Decode As, line framing over TCP with reassembly, and telling a server's
-- messages from its clients'.
--
-- Wireshark loads every .lua file of its plugin folder, in an order it does
-- not promise, so each dissector loads this file itself (dofile next to its
-- own path) unless an earlier one already did; loading it twice is harmless.
-- It works on Lua 5.2 (Wireshark 4.0) and 5.4 (4.4+): no integer division,
-- no bit32, string.format("%d") only on whole numbers.

if socklab_lib then return socklab_lib end

local M = {}

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
M.dir = here
M.ports = dofile(here .. "socklab_ports.lua")

local f_tcp_stream = Field.new("tcp.stream")

-- server_port records, per TCP stream, the port of the side found to be the
-- server when the port tables cannot say (a heuristic match).
local server_port = {}

-- stream returns the TCP stream number of the packet, or nil over UDP.
function M.stream(pinfo)
    local s = f_tcp_stream()
    if s then return s.value end
    return nil
end

-- set_server remembers that the server of this TCP stream speaks from port.
function M.set_server(pinfo, port)
    local s = M.stream(pinfo)
    if s then server_port[s] = port end
end

-- from_server reports whether the packet was sent by the server. ports is
-- the list of the protocol's configured ports; a packet from one of them is
-- the server's, as is one from a port the heuristic recorded as the server's
-- (Decode As on another port: the lower port is taken to be the server's).
function M.from_server(pinfo, ports)
    local s = M.stream(pinfo)
    if s and server_port[s] then return pinfo.src_port == server_port[s] end
    for _, p in ipairs(ports) do
        if pinfo.src_port == p then return true end
        if pinfo.dst_port == p then return false end
    end
    if pinfo.match_uint == pinfo.src_port then return true end
    if pinfo.match_uint == pinfo.dst_port then return false end
    return pinfo.src_port < pinfo.dst_port
end

-- info adds the summary of one message to the Info column: it replaces
-- what TCP or UDP wrote there, and is appended with " | " to the messages
-- already summarised for this frame (every summary starts "C: " or "S: ",
-- which is how a second call for the same frame, as TCP makes after a
-- reassembled message, finds them).
function M.info(pinfo, text)
    local cur = tostring(pinfo.cols.info)
    if cur:match("^[CS]: ") then
        pinfo.cols.info:append(" | " .. text)
    else
        pinfo.cols.info:set(text)
    end
end

-- escape spells one byte the way printable and text show it.
local function escape(c)
    if c == "\\" then return "\\\\" end
    if c == "\t" then return "\\t" end
    if c == "\r" then return "\\r" end
    if c == "\n" then return "\\n" end
    return string.format("\\x%02x", c:byte())
end

-- printable quotes s for the Info column and string fields: control and
-- non-ASCII bytes as \xNN, so a line of binary stays one readable line.
function M.printable(s, max)
    max = max or 64
    local cut = false
    if #s > max then s, cut = s:sub(1, max), true end
    s = s:gsub("[%c\128-\255\\]", escape)
    if cut then s = s .. "..." end
    return s
end

-- text is printable for UTF-8 text: bytes from 0x80 up are kept (the
-- column shows the characters; Wireshark marks invalid sequences), control
-- bytes are escaped, and a cut never splits a character.
function M.text(s, max)
    max = max or 64
    local cut = false
    if #s > max then
        local n = max
        while n > 0 do
            local b = s:byte(n + 1)
            if not b or b < 0x80 or b >= 0xC0 then break end
            n = n - 1
        end
        s, cut = s:sub(1, n), true
    end
    s = s:gsub("[%c\\]", escape)
    if cut then s = s .. "..." end
    return s
end

-- lines calls fn(pinfo, tree, line, range) for every whole line of
-- tvb (line without its LF and one CR before it; range covers the line and
-- its end) and returns the bytes used. Over TCP, an unfinished line at the
-- end asks TCP for one more segment (desegment_offset at its start), so a
-- line split across segments is dissected once whole; several lines in one
-- segment are dissected one after the other. Over UDP a datagram without a
-- line end is one line (udp: true).
function M.lines(tvb, pinfo, tree, fn, udp)
    local len = tvb:len()
    if len == 0 then return 0 end
    local data = tvb:range(0, len):raw()
    local offset = 0
    while offset < len do
        local lf = data:find("\n", offset + 1, true)
        if not lf then
            if udp then
                fn(pinfo, tree, data:sub(offset + 1), tvb:range(offset, len - offset))
                return len
            end
            if tvb:reported_length_remaining(offset) > len - offset then
                -- cut by the snapshot length: nothing more will come
                return len
            end
            pinfo.desegment_offset = offset
            pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
            return len
        end
        local line = data:sub(offset + 1, lf - 1)
        if line:sub(-1) == "\r" then line = line:sub(1, -2) end
        fn(pinfo, tree, line, tvb:range(offset, lf - offset))
        offset = lf
    end
    return offset
end

-- register puts proto on the lab ports of service name (from the lab map)
-- with a preference per port, makes it available in Decode As for each of
-- its transports, and moves it when a port preference changes. It returns
-- a function giving the configured ports as a list.
function M.register(proto, name)
    local lab = M.ports[name]
    assert(lab, "socklab: no service " .. name .. " in socklab_ports.lua")
    local transports = {}
    for _, t in ipairs({"tcp", "udp"}) do
        if lab[t] then
            transports[#transports + 1] = t
            proto.prefs[t .. "_port"] = Pref.uint(t:upper() .. " port", lab[t],
                string.format("%s port of %s (lab map: %d; 0: none)", t:upper(), name, lab[t]))
            DissectorTable.get(t .. ".port"):add_for_decode_as(proto)
        end
    end
    local active = {}
    local function apply()
        for t, port in pairs(active) do
            DissectorTable.get(t .. ".port"):remove(port, proto)
        end
        active = {}
        for _, t in ipairs(transports) do
            local port = proto.prefs[t .. "_port"]
            if port and port > 0 then
                DissectorTable.get(t .. ".port"):add(port, proto)
                active[t] = port
            end
        end
    end
    apply()
    proto.prefs_changed = apply
    return function()
        local out = {}
        for _, port in pairs(active) do out[#out + 1] = port end
        return out
    end
end

-- continuation is the expert field for a line that does not begin like a
-- message of its direction: the recording lacks the line's start (it
-- began in the middle of a connection, or lost a segment), which is not a
-- malformed message. Each dissector makes its own (expert fields carry
-- the protocol's prefix).
function M.continuation_expert(name)
    return ProtoExpert.new(name .. ".continuation",
        "Continuation: the start of this line is not in the capture (capture began mid-connection or lost a segment)",
        expert.group.SEQUENCE, expert.severity.NOTE)
end

-- matcher links replies to requests. Requests wait in a queue per key
-- (the client and, where the protocol has one, what it asked for); a reply
-- takes the oldest request of its key. Links are made on the first pass
-- and kept per message (frame, offset, length), so later passes and the
-- GUI show them too, in both directions.
function M.matcher()
    local pending = {}
    local links = {}
    local m = {}

    local function msgkey(pinfo, range)
        return pinfo.number .. ":" .. range:offset() .. ":" .. range:len()
    end

    -- request queues a request and returns its link ({response = frame})
    -- once its reply has been seen.
    function m.request(pinfo, range, key, extra)
        local mk = msgkey(pinfo, range)
        if not pinfo.visited and not links[mk] then
            local q = pending[key]
            if not q then q = {}; pending[key] = q end
            q[#q + 1] = {frame = pinfo.number, ts = pinfo.rel_ts, mk = mk, extra = extra}
            links[mk] = {}
        end
        return links[mk]
    end

    -- response matches a reply with the oldest request of key and returns
    -- its link: {request = frame, time = seconds, extra = what the
    -- request stored}, or nil when no request was seen.
    function m.response(pinfo, range, key)
        local mk = msgkey(pinfo, range)
        if not pinfo.visited and not links[mk] then
            local q = pending[key]
            if q and #q > 0 then
                local r = table.remove(q, 1)
                links[mk] = {request = r.frame, time = pinfo.rel_ts - r.ts, extra = r.extra}
                links[r.mk] = {response = pinfo.number}
            else
                links[mk] = {}
            end
        end
        local l = links[mk]
        if l and l.request then return l end
        return nil
    end

    -- link adds the fields of a link to tree: response_in on a request,
    -- response_to and the time on a reply.
    function m.add(tree, range, link, f_in, f_to, f_time)
        if not link then return end
        if link.response then
            tree:add(f_in, range, link.response):set_generated()
        end
        if link.request then
            tree:add(f_to, range, link.request):set_generated()
            tree:add(f_time, range, M.nstime(link.time)):set_generated()
        end
    end

    return m
end

-- nstime returns a duration in seconds as an NSTime.
function M.nstime(d)
    if d < 0 then d = 0 end
    local s = math.floor(d)
    local ns = math.floor((d - s) * 1e9 + 0.5)
    if ns >= 1e9 then s, ns = s + 1, ns - 1e9 end
    return NSTime.new(s, ns)
end

socklab_lib = M
return M
