-- lua54.lua: loads the socklab plugins under a plain Lua 5.4 interpreter
-- (Wireshark 4.4+ embeds Lua 5.4; this machine's Wireshark 4.0 runs 5.2)
-- with a stand-in for the Wireshark API, and runs their pure functions
-- with 5.4's integer and float numbers. The bit library is emulated as
-- Wireshark's Lua BitOp behaves: 32-bit results, signed.
--
--   lua5.4 testdata/lua54.lua PLUGIN_DIR SIZE...
-- prints "crc SIZE HEX" for each file size (the FILE_HEADER check's CRC of
-- the content pattern), then "json ..." and "text ..." lines.

local function tobit(x)
    x = math.tointeger(x) or math.floor(x)
    x = x & 0xffffffff
    if x >= 0x80000000 then x = x - 0x100000000 end
    return x
end
bit = {
    tobit = tobit,
    band = function(a, b) return tobit(tobit(a) & tobit(b)) end,
    bor = function(a, b) return tobit(tobit(a) | tobit(b)) end,
    bxor = function(a, b) return tobit(tobit(a) ~ tobit(b)) end,
    bnot = function(a) return tobit(~tobit(a)) end,
    lshift = function(a, n) return tobit(tobit(a) << n) end,
    rshift = function(a, n) return tobit((tobit(a) & 0xffffffff) >> n) end,
    tohex = function(a, n) return string.format("%0" .. (n or 8) .. "x", tobit(a) & 0xffffffff) end,
}

local any = setmetatable({}, {__index = function(t) return t end, __call = function(t) return t end})
base, expert, frametype = any, any, any
ProtoField = setmetatable({}, {__index = function() return function() return {} end end})
ProtoExpert = {new = function() return {} end}
Pref = {uint = function(_, default) return default end}
Field = {new = function() return function() return nil end end}
DissectorTable = {get = function()
    return {add = function() end, remove = function() end, add_for_decode_as = function() end}
end}
NSTime = {new = function(s, ns) return {s, ns} end}
DESEGMENT_ONE_MORE_SEGMENT = 0x0fffffff
local protos = {}
function Proto(name)
    local p = {name = name, prefs = {}, register_heuristic = function() end}
    protos[name] = p
    return p
end

-- upvalue finds a local function of a plugin by name among the upvalues
-- reachable from f.
local function upvalue(f, name, seen)
    seen = seen or {}
    if seen[f] then return nil end
    seen[f] = true
    for i = 1, 255 do
        local n, v = debug.getupvalue(f, i)
        if not n then break end
        if n == name then return v end
        if type(v) == "function" then
            local r = upvalue(v, name, seen)
            if r then return r end
        end
    end
end

local dir = arg[1]
for _, f in ipairs({"tinytcp", "autoreply", "connid", "moviedb", "filestream"}) do
    dofile(dir .. "/" .. f .. ".lua")
    assert(protos[f] and protos[f].dissector, f .. ": no dissector")
end

local content_crc = assert(upvalue(protos.filestream.dissector, "content_crc"), "no content_crc")
for i = 2, #arg do
    local n = math.tointeger(tonumber(arg[i]))
    print(string.format("crc %d %s", n, bit.tohex(content_crc(n), 8)))
end
local json = assert(upvalue(protos.moviedb.dissector, "json"), "no json")
local v = json('{"ok":true,"movie":{"title":"Am\\u00e9lie \\ud83c\\udfac","year":2001,"genres":["A","B"]},"next":null}')
print(string.format("json %s %s %d %d", tostring(v.ok), v.movie.title, v.movie.year, #v.movie.genres))
print("text " .. socklab_lib.text("Amélie\ttab", 6) .. " " .. socklab_lib.printable("\0\255x"))
