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

-- info appends text to the Info column, separating messages with " | ".
function M.info(pinfo, first, text)
    if first then
        pinfo.cols.info:set(text)
    else
        pinfo.cols.info:append(" | " .. text)
    end
end

-- printable quotes s for the Info column and string fields: control and
-- non-ASCII bytes as \xNN, so a line of binary stays one readable line.
function M.printable(s, max)
    max = max or 64
    local cut = false
    if #s > max then s, cut = s:sub(1, max), true end
    s = s:gsub("[%z\1-\31\127-\255\\]", function(c)
        if c == "\\" then return "\\\\" end
        if c == "\t" then return "\\t" end
        if c == "\r" then return "\\r" end
        if c == "\n" then return "\\n" end
        return string.format("\\x%02x", c:byte())
    end)
    if cut then s = s .. "..." end
    return s
end

-- lines calls fn(pinfo, tree, line, range, first) for every whole line of
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
    local first = true
    while offset < len do
        local lf = data:find("\n", offset + 1, true)
        if not lf then
            if udp then
                fn(pinfo, tree, data:sub(offset + 1), tvb:range(offset, len - offset), first)
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
        fn(pinfo, tree, line, tvb:range(offset, lf - offset), first)
        first = false
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

-- response_time returns an NSTime of b - a, two pinfo.rel_ts values.
function M.nstime(d)
    if d < 0 then d = 0 end
    local s = math.floor(d)
    local ns = math.floor((d - s) * 1e9 + 0.5)
    if ns >= 1e9 then s, ns = s + 1, ns - 1e9 end
    return NSTime.new(s, ns)
end

socklab_lib = M
return M
