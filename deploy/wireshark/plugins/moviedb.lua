-- moviedb.lua: Wireshark dissector of the movie database protocol
-- (services/moviedb/README.md): one JSON request line per TCP connection
-- ({"op":"get"|"all"|"add"|"edit", ...}) and one JSON response line
-- ({"ok":true, "movie"|"movies"...} or {"ok":false,"error":{"code",...}}),
-- reassembled across segments. Shows op, title and status, the movies of a
-- response, and links the response to its request with the response time.

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
local socklab = socklab_lib or dofile(here .. "socklab_lib.lua")

local p = Proto("moviedb", "socklab Movie database")

local f = {
    request     = ProtoField.string("moviedb.request", "Request"),
    op          = ProtoField.string("moviedb.op", "Operation"),
    title       = ProtoField.string("moviedb.title", "Title"),
    cursor      = ProtoField.string("moviedb.cursor", "Cursor"),
    limit       = ProtoField.uint32("moviedb.limit", "Limit", base.DEC),
    set         = ProtoField.string("moviedb.set", "Fields set"),
    response    = ProtoField.string("moviedb.response", "Response"),
    ok          = ProtoField.bool("moviedb.ok", "OK"),
    status      = ProtoField.string("moviedb.status", "Status"),
    code        = ProtoField.string("moviedb.error.code", "Error code"),
    message     = ProtoField.string("moviedb.error.message", "Error message"),
    movie       = ProtoField.string("moviedb.movie", "Movie"),
    mtitle      = ProtoField.string("moviedb.movie.title", "Title"),
    year        = ProtoField.uint16("moviedb.movie.year", "Year", base.DEC),
    director    = ProtoField.string("moviedb.movie.director", "Director"),
    genres      = ProtoField.string("moviedb.movie.genres", "Genres"),
    runtime     = ProtoField.uint16("moviedb.movie.runtime", "Runtime (min)", base.DEC),
    rating      = ProtoField.string("moviedb.movie.rating", "Rating"),
    count       = ProtoField.uint32("moviedb.movies", "Movies in page", base.DEC),
    next        = ProtoField.string("moviedb.next", "Next cursor"),
    response_in = ProtoField.framenum("moviedb.response_in", "Response in", base.NONE, frametype.RESPONSE),
    response_to = ProtoField.framenum("moviedb.response_to", "Request in", base.NONE, frametype.REQUEST),
    time        = ProtoField.relative_time("moviedb.time", "Response time"),
}
p.fields = {f.request, f.op, f.title, f.cursor, f.limit, f.set, f.response, f.ok, f.status, f.code,
    f.message, f.movie, f.mtitle, f.year, f.director, f.genres, f.runtime, f.rating, f.count, f.next,
    f.response_in, f.response_to, f.time}

local e = {
    notjson = ProtoExpert.new("moviedb.request.invalid", "Request is not a JSON object: the server answers bad_request",
        expert.group.PROTOCOL, expert.severity.WARN),
    badresp = ProtoExpert.new("moviedb.response.invalid", "Response is not a JSON object",
        expert.group.MALFORMED, expert.severity.ERROR),
    error = ProtoExpert.new("moviedb.error.expert", "Error response",
        expert.group.RESPONSE_CODE, expert.severity.WARN),
    continuation = socklab.continuation_expert("moviedb"),
}
p.experts = {e.notjson, e.badresp, e.error, e.continuation}

-- A small JSON decoder: objects, arrays, strings (escapes and \u, surrogate
-- pairs to UTF-8), numbers, true, false, null. It returns nil and the
-- position of the error on bad input.
local null = {}
local decode

local function skip(s, i)
    return s:find("[^ \t\r\n]", i) or #s + 1
end

local function utf8char(c)
    if c < 0x80 then return string.char(c) end
    if c < 0x800 then
        return string.char(0xC0 + math.floor(c / 0x40), 0x80 + c % 0x40)
    end
    if c < 0x10000 then
        return string.char(0xE0 + math.floor(c / 0x1000), 0x80 + math.floor(c / 0x40) % 0x40, 0x80 + c % 0x40)
    end
    return string.char(0xF0 + math.floor(c / 0x40000), 0x80 + math.floor(c / 0x1000) % 0x40,
        0x80 + math.floor(c / 0x40) % 0x40, 0x80 + c % 0x40)
end

local escapes = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t"}

local function string_at(s, i)
    local out = {}
    local j = i + 1
    while true do
        local k = s:find('["\\]', j)
        if not k then return nil, j end
        out[#out + 1] = s:sub(j, k - 1)
        if s:sub(k, k) == '"' then return table.concat(out), k + 1 end
        local c = s:sub(k + 1, k + 1)
        if c == "u" then
            local h = tonumber(s:sub(k + 2, k + 5), 16)
            if not h then return nil, k end
            j = k + 6
            if h >= 0xD800 and h < 0xDC00 and s:sub(j, j + 1) == "\\u" then
                local l = tonumber(s:sub(j + 2, j + 5), 16)
                if l and l >= 0xDC00 and l < 0xE000 then
                    h = 0x10000 + (h - 0xD800) * 0x400 + (l - 0xDC00)
                    j = j + 6
                end
            end
            out[#out + 1] = utf8char(h)
        elseif escapes[c] then
            out[#out + 1] = escapes[c]
            j = k + 2
        else
            return nil, k
        end
    end
end

decode = function(s, i, depth)
    if depth > 32 then return nil, i end
    i = skip(s, i)
    local c = s:sub(i, i)
    if c == "{" then
        local obj = {}
        i = skip(s, i + 1)
        if s:sub(i, i) == "}" then return obj, i + 1 end
        while true do
            if s:sub(i, i) ~= '"' then return nil, i end
            local k
            k, i = string_at(s, i)
            if k == nil then return nil, i end
            i = skip(s, i)
            if s:sub(i, i) ~= ":" then return nil, i end
            local v
            v, i = decode(s, i + 1, depth + 1)
            if v == nil then return nil, i end
            obj[k] = v
            i = skip(s, i)
            c = s:sub(i, i)
            if c == "}" then return obj, i + 1 end
            if c ~= "," then return nil, i end
            i = skip(s, i + 1)
        end
    elseif c == "[" then
        local arr = {}
        i = skip(s, i + 1)
        if s:sub(i, i) == "]" then return arr, i + 1 end
        while true do
            local v
            v, i = decode(s, i, depth + 1)
            if v == nil then return nil, i end
            arr[#arr + 1] = v
            i = skip(s, i)
            c = s:sub(i, i)
            if c == "]" then return arr, i + 1 end
            if c ~= "," then return nil, i end
            i = i + 1
        end
    elseif c == '"' then
        return string_at(s, i)
    elseif s:sub(i, i + 3) == "true" then
        return true, i + 4
    elseif s:sub(i, i + 4) == "false" then
        return false, i + 5
    elseif s:sub(i, i + 3) == "null" then
        return null, i + 4
    end
    local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if num and tonumber(num) then return tonumber(num), i + #num end
    return nil, i
end

local function json(s)
    local v, i = decode(s, 1, 0)
    if v == nil or type(v) ~= "table" or skip(s, i) <= #s then return nil end
    return v
end

local function str(v)
    if type(v) == "string" then return v end
    return nil
end

local function whole(v)
    if type(v) == "number" and v >= 0 and v == math.floor(v) and v < 4294967296 then return v end
    return nil
end

local function genres(v)
    if type(v) ~= "table" then return nil end
    local out = {}
    for _, g in ipairs(v) do out[#out + 1] = tostring(str(g)) end
    return table.concat(out, ", ")
end

local function add_movie(tree, range, m, fld)
    if type(m) ~= "table" then return end
    local label = tostring(str(m.title) or "?")
    if whole(m.year) then label = string.format("%s (%d)", label, m.year) end
    local t = tree:add(fld or f.movie, range, label)
    if str(m.title) then t:add(f.mtitle, range, m.title) end
    if whole(m.year) and m.year < 65536 then t:add(f.year, range, m.year) end
    if str(m.director) then t:add(f.director, range, m.director) end
    if genres(m.genres) then t:add(f.genres, range, genres(m.genres)) end
    if whole(m.runtime) and m.runtime < 65536 then t:add(f.runtime, range, m.runtime) end
    if str(m.rating) then t:add(f.rating, range, m.rating) end
end

local match = socklab.matcher()

local function key(pinfo)
    return tostring(socklab.stream(pinfo))
end

local function request(pinfo, tree, line, range)
    local t = tree:add(f.request, range, socklab.text(line, 200))
    local link = match.request(pinfo, range, key(pinfo))
    match.add(t, range, link, f.response_in, f.response_to, f.time)
    local r = json(line)
    if not r then
        t:add_proto_expert_info(e.notjson)
        socklab.info(pinfo, "C: " .. socklab.text(line, 40) .. " (not JSON)")
        return
    end
    local op = str(r.op) or "?"
    t:add(f.op, range, op)
    local title = str(r.title)
    if type(r.movie) == "table" then title = str(r.movie.title) end
    if title then t:add(f.title, range, title) end
    if str(r.cursor) then t:add(f.cursor, range, r.cursor) end
    if whole(r.limit) then t:add(f.limit, range, r.limit) end
    if type(r.set) == "table" then
        local keys = {}
        for k in pairs(r.set) do keys[#keys + 1] = k end
        table.sort(keys)
        t:add(f.set, range, table.concat(keys, ","))
    end
    if type(r.movie) == "table" then add_movie(t, range, r.movie) end
    local info = "C: " .. op
    if title then info = info .. ' "' .. socklab.text(title, 40) .. '"' end
    if str(r.cursor) then info = info .. " cursor=" .. socklab.text(r.cursor, 20) end
    if whole(r.limit) then info = info .. string.format(" limit=%d", r.limit) end
    socklab.info(pinfo, info)
end

local function response(pinfo, tree, line, range)
    local t = tree:add(f.response, range, socklab.text(line, 200))
    local link = match.response(pinfo, range, key(pinfo))
    match.add(t, range, link, f.response_in, f.response_to, f.time)
    if line:sub(1, 1) ~= "{" then
        t:add_proto_expert_info(e.continuation)
        socklab.info(pinfo, "S: " .. socklab.text(line, 40) .. " (continuation)")
        return
    end
    local r = json(line)
    if not r or type(r.ok) ~= "boolean" then
        t:add_proto_expert_info(e.badresp)
        socklab.info(pinfo, "S: " .. socklab.text(line, 40) .. " (invalid)")
        return
    end
    t:add(f.ok, range, r.ok)
    if not r.ok then
        local err = type(r.error) == "table" and r.error or {}
        local code = str(err.code) or "?"
        t:add(f.status, range, code)
        t:add(f.code, range, code)
        if str(err.message) then t:add(f.message, range, err.message) end
        t:add_proto_expert_info(e.error, "Error: " .. code)
        socklab.info(pinfo, "S: error " .. code .. (str(err.message) and (": " .. socklab.text(err.message, 60)) or ""))
        return
    end
    t:add(f.status, range, "ok")
    local info = "S: ok"
    if type(r.movie) == "table" then
        add_movie(t, range, r.movie)
        info = info .. " " .. socklab.text(tostring(str(r.movie.title) or "?"), 40)
        if whole(r.movie.year) then info = info .. string.format(" (%d)", r.movie.year) end
    end
    if type(r.movies) == "table" then
        t:add(f.count, range, #r.movies)
        for _, m in ipairs(r.movies) do add_movie(t, range, m) end
        info = info .. string.format(" %d movies", #r.movies)
    end
    if str(r.next) then
        t:add(f.next, range, r.next)
        info = info .. " next=" .. socklab.text(r.next, 20)
    end
    socklab.info(pinfo, info)
end

local ports

function p.dissector(tvb, pinfo, tree)
    pinfo.cols.protocol:set("MovieDB")
    local st = tree:add(p, tvb())
    local fromServer = socklab.from_server(pinfo, ports())
    return socklab.lines(tvb, pinfo, st, fromServer and response or request)
end

ports = socklab.register(p, "moviedb")
