-- filestream.lua: Wireshark dissector of the filestream protocol, version 1
-- (services/filestream/README.md). Every message is a 10-byte header
-- ('F' 'S', version, type, body length u16, request id u32) and a body; over
-- UDP a datagram is one message, over TCP messages follow each other, and a
-- FILE_HEADER from the server is followed by the file's raw content, not
-- framed. The FILE_HEADER's CRC-32C is checked against the CRC of the fixed
-- content pattern of that size (a wrong one is expert info). UDP shows the
-- DATA and STREAM_PACKET sequence numbers, END, and RETRY with its cookie.
--
-- TCP reassembly: the client's direction is framed throughout, so it goes
-- through dissect_tcp_pdus; the server's direction mixes messages and raw
-- content, so it is walked here, asking TCP for exactly the bytes a split
-- header or body lacks (desegment_offset, desegment_len). The content
-- pattern never holds "FS", which is how a message after content is found.

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
local socklab = socklab_lib or dofile(here .. "socklab_lib.lua")

local p = Proto("filestream", "socklab filestream")

local HEADER = 10
local PATTERN = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n"

local types = {
    [0x01] = "ECHO", [0x02] = "FILE", [0x03] = "STREAM", [0x04] = "QUIT",
    [0x81] = "ECHO_REPLY", [0x82] = "FILE_HEADER", [0x83] = "DATA", [0x84] = "STREAM_PACKET",
    [0x85] = "END", [0x86] = "RETRY", [0x87] = "ERROR", [0x88] = "BYE",
}
local codes = {
    [1] = "malformed", [2] = "bad type", [3] = "bad version", [4] = "too large",
    [5] = "bad stream", [6] = "busy", [7] = "shutting down",
}

local f = {
    message   = ProtoField.none("filestream.message", "Message"),
    magic     = ProtoField.string("filestream.magic", "Magic"),
    version   = ProtoField.uint8("filestream.version", "Version", base.DEC),
    type      = ProtoField.uint8("filestream.type", "Type", base.HEX, types),
    length    = ProtoField.uint16("filestream.length", "Body length", base.DEC),
    id        = ProtoField.uint32("filestream.id", "Request id", base.DEC),
    text      = ProtoField.string("filestream.text", "Text"),
    size      = ProtoField.uint64("filestream.size", "File size", base.DEC),
    cookie    = ProtoField.bytes("filestream.cookie", "Cookie"),
    issued    = ProtoField.absolute_time("filestream.cookie.issued", "Cookie issued", base.UTC),
    mac       = ProtoField.bytes("filestream.cookie.mac", "Cookie MAC"),
    interval  = ProtoField.uint32("filestream.interval_us", "Interval (µs)", base.DEC),
    count     = ProtoField.uint32("filestream.count", "Packet count", base.DEC),
    psize     = ProtoField.uint16("filestream.packet_size", "Packet size", base.DEC),
    crc       = ProtoField.uint32("filestream.crc32c", "CRC-32C", base.HEX),
    crcgood   = ProtoField.bool("filestream.crc32c.good", "CRC-32C good"),
    crcwant   = ProtoField.uint32("filestream.crc32c.expected", "CRC-32C of the content", base.HEX),
    chunk     = ProtoField.uint16("filestream.chunk", "Chunk", base.DEC),
    seq       = ProtoField.uint32("filestream.seq", "Sequence number", base.DEC),
    flags     = ProtoField.uint8("filestream.flags", "Flags", base.HEX),
    last      = ProtoField.bool("filestream.flags.last", "Last", 8, nil, 0x01),
    data      = ProtoField.bytes("filestream.data", "Data"),
    datalen   = ProtoField.uint32("filestream.data.len", "Data length", base.DEC),
    total     = ProtoField.uint32("filestream.total", "Total packets", base.DEC),
    sent      = ProtoField.absolute_time("filestream.sent", "Sent at", base.UTC),
    padding   = ProtoField.bytes("filestream.padding", "Padding"),
    packets   = ProtoField.uint32("filestream.packets", "Packets", base.DEC),
    bytes     = ProtoField.uint64("filestream.bytes", "Bytes", base.DEC),
    code      = ProtoField.uint16("filestream.error.code", "Error code", base.DEC, codes),
    etext     = ProtoField.string("filestream.error.text", "Error text"),
    content   = ProtoField.bytes("filestream.content", "File content"),
    contentn  = ProtoField.uint32("filestream.content.len", "File content length", base.DEC),
}
p.fields = {f.message, f.magic, f.version, f.type, f.length, f.id, f.text, f.size, f.cookie, f.issued,
    f.mac, f.interval, f.count, f.psize, f.crc, f.crcgood, f.crcwant, f.chunk, f.seq, f.flags, f.last,
    f.data, f.datalen, f.total, f.sent, f.padding, f.packets, f.bytes, f.code, f.etext, f.content, f.contentn}

local e = {
    malformed = ProtoExpert.new("filestream.malformed", "Malformed message",
        expert.group.MALFORMED, expert.severity.ERROR),
    badcrc = ProtoExpert.new("filestream.crc32c.bad", "Wrong CRC-32C for a file of this size",
        expert.group.CHECKSUM, expert.severity.ERROR),
    error = ProtoExpert.new("filestream.error.expert", "Error reply",
        expert.group.RESPONSE_CODE, expert.severity.WARN),
    retry = ProtoExpert.new("filestream.retry", "RETRY: the server asks the client to prove its address with this cookie",
        expert.group.SEQUENCE, expert.severity.CHAT),
}
p.experts = {e.malformed, e.badcrc, e.error, e.retry}

-- CRC-32C (Castagnoli) with the bit library, and the CRC of the first n
-- bytes of the content pattern in O(log n) by zlib's crc32_combine, as
-- services/filestream/proto.ContentCRC computes it.
local POLY = 0x82F63B78
local crctab = {}
for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
        if bit.band(c, 1) ~= 0 then c = bit.bxor(bit.rshift(c, 1), POLY) else c = bit.rshift(c, 1) end
    end
    crctab[i] = c
end

local function crc32c(s)
    local c = bit.bnot(0)
    for i = 1, #s do
        c = bit.bxor(crctab[bit.band(bit.bxor(c, s:byte(i)), 0xff)], bit.rshift(c, 8))
    end
    return bit.bnot(c)
end

local function multmodp(a, b)
    if bit.tobit(a) == 0 then return 0 end
    local m = bit.lshift(1, 31)
    local prod = 0
    while true do
        if bit.band(a, m) ~= 0 then
            prod = bit.bxor(prod, b)
            if bit.band(a, m - 1) == 0 then break end
        end
        m = bit.rshift(m, 1)
        if bit.band(b, 1) ~= 0 then b = bit.bxor(bit.rshift(b, 1), POLY) else b = bit.rshift(b, 1) end
    end
    return prod
end

local x2n = {}
do
    local q = bit.lshift(1, 30)
    x2n[0] = q
    for k = 1, 31 do
        q = multmodp(q, q)
        x2n[k] = q
    end
end

local function x8nmodp(n)
    local q = bit.lshift(1, 31)
    local k = 3
    while n > 0 do
        if n % 2 == 1 then q = multmodp(x2n[k % 32], q) end
        n = math.floor(n / 2)
        k = k + 1
    end
    return q
end

local function combine(a, b, lenb)
    return bit.bxor(multmodp(x8nmodp(lenb), a), b)
end

local block_crc = crc32c(PATTERN)

local function content_crc(n)
    if n <= 0 then return 0 end
    local q, r = math.floor(n / 64), n % 64
    local crc, done = 0, 0
    for b = 52, 0, -1 do
        if done > 0 then
            crc = combine(crc, crc, done * 64)
            done = done * 2
        end
        if math.floor(q / 2 ^ b) % 2 == 1 then
            crc = combine(crc, block_crc, 64)
            done = done + 1
        end
    end
    if r > 0 then crc = combine(crc, crc32c(PATTERN:sub(1, r)), r) end
    return crc
end

-- uhex formats a 32-bit value from the bit library (signed) as 0x%08x.
local function uhex(v)
    return "0x" .. bit.tohex(v, 8)
end

local function u64(range)
    return range:uint64():tonumber()
end

local function cookie(tree, range)
    local t = tree:add(f.cookie, range)
    t:add(f.issued, range:range(0, 4), NSTime.new(range:range(0, 4):uint(), 0))
    t:add(f.mac, range:range(4, 16))
end

local function nsfrom(range)
    local v = range:int64()
    local s = (v / 1000000000):tonumber()
    local ns = (v % 1000000000):tonumber()
    if ns < 0 then s, ns = s - 1, ns + 1000000000 end
    return NSTime.new(s, ns)
end

-- body dissects the body of a message of type typ, blen bytes in range b
-- (nil when empty), and returns a short summary, or nil and a reason when
-- the body has a length the type does not allow.
local function body(tree, pinfo, typ, b, blen)
    local function has(n) return blen == n end
    if typ == 0x01 or typ == 0x81 then
        local s = b and b:raw() or ""
        if b then tree:add(f.text, b, socklab.printable(s, 200)) end
        return string.format('"%s"', socklab.printable(s, 40))
    elseif typ == 0x02 then
        if not (has(8) or has(28)) then return nil, "FILE body is 8 or 28 bytes" end
        tree:add(f.size, b:range(0, 8))
        local s = string.format("size=%.0f", u64(b:range(0, 8)))
        if blen == 28 then cookie(tree, b:range(8, 20)); s = s .. " +cookie" end
        return s
    elseif typ == 0x03 then
        if not (has(10) or has(30)) then return nil, "STREAM body is 10 or 30 bytes" end
        tree:add(f.interval, b:range(0, 4))
        tree:add(f.count, b:range(4, 4))
        tree:add(f.psize, b:range(8, 2))
        local s = string.format("interval=%dus count=%d size=%d", b:range(0, 4):uint(), b:range(4, 4):uint(), b:range(8, 2):uint())
        if blen == 30 then cookie(tree, b:range(10, 20)); s = s .. " +cookie" end
        return s
    elseif typ == 0x04 then
        if not (has(0) or has(20)) then return nil, "QUIT body is 0 or 20 bytes" end
        if blen == 20 then cookie(tree, b); return "+cookie" end
        return ""
    elseif typ == 0x82 then
        if not has(14) then return nil, "FILE_HEADER body is 14 bytes" end
        local size = u64(b:range(0, 8))
        tree:add(f.size, b:range(0, 8))
        local got = b:range(8, 4):uint()
        local ci = tree:add(f.crc, b:range(8, 4))
        local want = content_crc(size)
        local good = bit.tobit(got) == bit.tobit(want)
        ci:add(f.crcgood, b:range(8, 4), good):set_generated()
        ci:add(f.crcwant, b:range(8, 4), tonumber(bit.tohex(want, 8), 16)):set_generated()
        if not good then
            ci:add_proto_expert_info(e.badcrc, string.format("Wrong CRC-32C %s for %.0f bytes of content: want %s", uhex(got), size, uhex(want)))
        end
        tree:add(f.chunk, b:range(12, 2))
        return string.format("size=%.0f crc32c=%s%s chunk=%d", size, uhex(got), good and "" or " (WRONG)", b:range(12, 2):uint())
    elseif typ == 0x83 then
        if blen < 5 then return nil, "DATA body is at least 5 bytes" end
        tree:add(f.seq, b:range(0, 4))
        local fl = tree:add(f.flags, b:range(4, 1))
        fl:add(f.last, b:range(4, 1))
        local flags = b:range(4, 1):uint()
        if flags > 1 then return nil, "DATA flags other than bit 0" end
        tree:add(f.datalen, b:range(4, 1), blen - 5):set_generated()
        if blen > 5 then tree:add(f.data, b:range(5, blen - 5)) end
        return string.format("seq=%d%s (%d bytes)", b:range(0, 4):uint(), flags == 1 and " last" or "", blen - 5)
    elseif typ == 0x84 then
        if blen < 16 then return nil, "STREAM_PACKET body is at least 16 bytes" end
        local seq, total = b:range(0, 4):uint(), b:range(4, 4):uint()
        tree:add(f.seq, b:range(0, 4))
        tree:add(f.total, b:range(4, 4))
        tree:add(f.sent, b:range(8, 8), nsfrom(b:range(8, 8)))
        if blen > 16 then
            tree:add(f.padding, b:range(16, blen - 16))
            if b:range(16, blen - 16):raw():find("[^\0]") then return nil, "padding is not zero" end
        end
        if seq >= total then return nil, "seq not below total" end
        return string.format("seq=%d/%d", seq, total)
    elseif typ == 0x85 then
        if not has(12) then return nil, "END body is 12 bytes" end
        tree:add(f.packets, b:range(0, 4))
        tree:add(f.bytes, b:range(4, 8))
        return string.format("packets=%d bytes=%.0f", b:range(0, 4):uint(), u64(b:range(4, 8)))
    elseif typ == 0x86 then
        if not has(20) then return nil, "RETRY body is 20 bytes" end
        cookie(tree, b)
        tree:add_proto_expert_info(e.retry)
        return "cookie=" .. b:range(0, 20):bytes():tohex():lower()
    elseif typ == 0x87 then
        if blen < 2 or blen > 202 then return nil, "ERROR body is 2 to 202 bytes" end
        local code = b:range(0, 2):uint()
        tree:add(f.code, b:range(0, 2))
        local text = blen > 2 and b:range(2, blen - 2):raw() or ""
        if blen > 2 then tree:add(f.etext, b:range(2, blen - 2), socklab.text(text, 200)) end
        tree:add_proto_expert_info(e.error, string.format("Error %d (%s): %s", code, codes[code] or "?", socklab.text(text, 80)))
        return string.format("code=%d (%s) %s", code, codes[code] or "?", socklab.text(text, 60))
    elseif typ == 0x88 then
        if not has(0) then return nil, "BYE body is empty" end
        return ""
    end
    return nil, string.format("unknown type 0x%02x", typ)
end

-- message dissects the message at offset of tvb (whole: header and body are
-- there) and returns its length.
local function message(tvb, pinfo, tree, offset)
    local blen = tvb:range(offset + 4, 2):uint()
    local mlen = HEADER + blen
    local range = tvb:range(offset, math.min(mlen, tvb:len() - offset))
    local typ = tvb:range(offset + 3, 1):uint()
    local id = tvb:range(offset + 6, 4):uint()
    local name = types[typ] or string.format("type 0x%02x", typ)
    local t = tree:add(f.message, range)
    t:set_text(string.format("%s, id %d", name, id))
    t:add(f.magic, tvb:range(offset, 2))
    t:add(f.version, tvb:range(offset + 2, 1))
    t:add(f.type, tvb:range(offset + 3, 1))
    t:add(f.length, tvb:range(offset + 4, 2))
    t:add(f.id, tvb:range(offset + 6, 4))
    local dir = typ < 0x80 and "C: " or "S: "
    local summary, why
    if tvb:range(offset, 2):raw() ~= "FS" then
        summary, why = nil, "bad magic"
    elseif tvb:range(offset + 2, 1):uint() ~= 1 then
        summary, why = nil, "version is not 1"
    elseif tvb:len() - offset < mlen then
        summary, why = nil, "message cut short"
    else
        local b = blen > 0 and tvb:range(offset + HEADER, blen) or nil
        summary, why = body(t, pinfo, typ, b, blen)
    end
    if not summary then
        t:add_proto_expert_info(e.malformed, "Malformed: " .. why)
        socklab.info(pinfo, string.format("%s%s id=%d (malformed: %s)", dir, name, id, why))
    else
        socklab.info(pinfo, string.format("%s%s id=%d%s", dir, name, id, summary ~= "" and " " .. summary or ""))
    end
    return mlen
end

local ports

local function pdu_len(tvb, pinfo, offset)
    return HEADER + tvb:range(offset + 4, 2):uint()
end

local function pdu(tvb, pinfo, tree)
    pinfo.cols.protocol:set("Filestream")
    local st = tree:add(p, tvb())
    return message(tvb, pinfo, st, 0)
end

-- server_stream walks the server's side of a TCP connection: messages and
-- the raw content that follows a FILE_HEADER.
local function server_stream(tvb, pinfo, tree)
    local len = tvb:len()
    local offset = 0
    local st
    while offset < len do
        st = st or tree:add(p, tvb())
        local left = len - offset
        if left >= 2 and tvb:range(offset, 2):raw() == "FS" or left == 1 and tvb:range(offset, 1):raw() == "F" then
            -- Until the body length is there, the whole next segment;
            -- then exactly the bytes the message lacks. (Asking for the
            -- header's bytes alone and then for the body would make TCP
            -- extend a reassembly it completes in the same segment, which
            -- Wireshark 4.0 loses.)
            if left < 6 then
                pinfo.desegment_offset = offset
                pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
                return len
            end
            local mlen = HEADER + tvb:range(offset + 4, 2):uint()
            if left < mlen then
                pinfo.desegment_offset = offset
                pinfo.desegment_len = mlen - left
                return len
            end
            message(tvb, pinfo, st, offset)
            offset = offset + mlen
        else
            -- File content runs to the next "FS"; a last lone "F" may start
            -- the next message, so it waits for the next segment.
            local data = tvb:range(offset, left):raw()
            local at = data:find("FS", 1, true)
            local n = at and at - 1 or left
            if not at and data:sub(-1) == "F" then n = left - 1 end
            if n > 0 then
                local ct = st:add(f.content, tvb:range(offset, n))
                ct:set_text(string.format("File content: %d bytes", n))
                ct:add(f.contentn, tvb:range(offset, n), n):set_generated()
                socklab.info(pinfo, string.format("S: file content (%d bytes)", n))
                offset = offset + n
            end
            if offset < len and not at then
                pinfo.desegment_offset = offset
                pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
                return len
            end
        end
    end
    return offset
end

function p.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol:set("Filestream")
    local fromServer = socklab.from_server(pinfo, ports())
    if not socklab.stream(pinfo) then
        -- UDP: a datagram is exactly one message.
        local st = tree:add(p, tvb())
        if tvb:len() < HEADER then
            st:add_proto_expert_info(e.malformed, "Malformed: datagram shorter than the header")
            socklab.info(pinfo, (fromServer and "S: " or "C: ") .. "(short datagram)")
            return tvb:len()
        end
        local mlen = message(tvb, pinfo, st, 0)
        if mlen ~= tvb:len() and mlen <= tvb:len() then
            st:add_proto_expert_info(e.malformed, string.format("Malformed: datagram of %d bytes holds a message of %d", tvb:len(), mlen))
        end
        return tvb:len()
    end
    if fromServer then
        return server_stream(tvb, pinfo, tree)
    end
    dissect_tcp_pdus(tvb, tree, HEADER, pdu_len, pdu)
    return tvb:len()
end

ports = socklab.register(p, "filestream")
