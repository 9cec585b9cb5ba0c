-- forkless: the sandbox of a scripting Lua state (run once per state, chunk "=forkless").
-- Redis 7.0 semantics (script_lua.c): a read-only global table (new globals and writes raise
-- "Attempt to modify a readonly table", reads of missing globals raise "Script attempted to
-- access nonexistent global variable"), read-only library tables, the redis.* API, pcall
-- turning error tables into their message, deterministic math.random.
local raw, hooks, mode = ...
local G = _G
local error, type, select, unpack, tostring, rawget, setmetatable, pcall, tonumber =
    error, type, select, unpack, tostring, rawget, setmetatable, pcall, tonumber

local function readonly_error()
    error("Attempt to modify a readonly table", 2)
end

-- Tables scripts must not change (the proxies below): setmetatable on them raises the
-- read-only error, getmetatable gives a read-only view (Redis 7.0's read-only tables).
local protected = setmetatable({}, { __mode = "k" })

local function ro(t)
    local p = setmetatable({}, { __index = t, __newindex = readonly_error, __metatable = false })
    protected[p] = true
    return p
end

local function err_table(msg)
    return { err = raw.errtext(msg) }
end

local redis = {}
redis.REDIS_VERSION = "7.0.15"
redis.REDIS_VERSION_NUM = 0x07000f
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3

-- redis.call / redis.pcall are Rust functions (C frames, as in Redis: a `return redis.call(...)`
-- tail call keeps the script's frame, so errors report its line).
redis.call = raw.call
redis.pcall = raw.pcall

function redis.sha1hex(...)
    if select("#", ...) ~= 1 then
        error(err_table("wrong number of arguments"), 0)
    end
    return raw.sha1hex(...)
end

function redis.status_reply(...)
    local s = ...
    if select("#", ...) ~= 1 or type(s) ~= "string" then
        return err_table("wrong number or type of arguments")
    end
    return { ok = s }
end

function redis.error_reply(...)
    local s = ...
    if select("#", ...) ~= 1 or type(s) ~= "string" then
        return err_table("wrong number or type of arguments")
    end
    if s:sub(1, 1) ~= "-" then
        s = "-" .. s
    end
    return { err = raw.errtext(s) }
end

function redis.log(...)
    local n = select("#", ...)
    if n < 2 then
        error(err_table("redis.log() requires two arguments or more."), 0)
    end
    local level = ...
    if type(level) ~= "number" then
        error(err_table("First argument must be a number (log level)."), 0)
    end
    if level < 0 or level > 3 then
        error(err_table("Invalid debug level."), 0)
    end
    local parts = {}
    for i = 2, n do
        local v = select(i, ...)
        parts[#parts + 1] = tostring(v)
    end
    raw.log(level, table.concat(parts, " "))
end

function redis.setresp(...)
    local set = hooks.setresp
    if not set then
        error(err_table("redis.setresp can only be called inside a script invocation"), 0)
    end
    if select("#", ...) ~= 1 then
        error(err_table("redis.setresp() requires one argument."), 0)
    end
    local v = tonumber((...))
    if v ~= 2 and v ~= 3 then
        error(err_table("RESP version must be 2 or 3."), 0)
    end
    set(v)
end

function redis.set_repl(...)
    local set = hooks.set_repl
    if not set then
        error(err_table("redis.set_repl can only be called inside a script invocation"), 0)
    end
    if select("#", ...) ~= 1 then
        error(err_table("redis.set_repl() requires two arguments."), 0)
    end
    local flags = tonumber((...))
    if flags == nil or flags < 0 or flags > 3 or flags ~= math.floor(flags) then
        error(err_table("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."), 0)
    end
    set(flags)
end

function redis.replicate_commands()
    return true
end

function redis.breakpoint()
    return false
end

function redis.debug() end

redis.acl_check_cmd = raw.acl_check_cmd

local register_function
if mode == "function" then
    register_function = function(...)
        local reg = hooks.register
        if not reg then
            error(err_table("redis.register_function can only be called on FUNCTION LOAD command"), 0)
        end
        local ok, msg = reg(...)
        if not ok then
            error(err_table(msg), 0)
        end
    end
end

-- Redis 7.0's pcall: an error table becomes its message.
G.pcall = function(f, ...)
    local r = { n = 0 }
    local function pack(...)
        r = { n = select("#", ...), ... }
    end
    pack(pcall(f, ...))
    -- A killed script stops even inside pcall (Redis raises again at every line).
    if not r[1] and hooks.killed and hooks.killed() then
        error(r[2], 0)
    end
    if not r[1] then
        if type(r[2]) == "table" and type(rawget(r[2], "err")) == "string" then
            r[2] = rawget(r[2], "err")
        elseif type(r[2]) == "userdata" then
            r[2] = raw.errmsg(r[2])
        end
    end
    return unpack(r, 1, r.n)
end

math.random = raw.random
math.randomseed = raw.randomseed

G.loadfile, G.dofile, G.print, G.debug = nil, nil, nil, nil
G.redis = ro(redis)
for _, name in ipairs({ "string", "math", "table", "cjson", "bit", "struct", "cmsgpack", "coroutine" }) do
    if G[name] then
        G[name] = ro(G[name])
    end
end
local string_mt = getmetatable("")
string_mt.__index = G.string
string_mt.__metatable = false

-- What library code sees while FUNCTION LOAD runs it (Redis 7.0's library API): only
-- `redis.register_function`, `redis.log`, the log levels and the version; anything else is a
-- nonexistent global.
local function strict(t)
    return setmetatable({}, {
        __index = function(_, k)
            local v = t[k]
            if v == nil then
                error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
            end
            return v
        end,
        __newindex = readonly_error,
        __metatable = false,
    })
end
local load_redis = {
    register_function = register_function,
    log = redis.log,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REDIS_VERSION = redis.REDIS_VERSION,
    REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
}
local load_api = { redis = strict(load_redis) }
local current = G

-- The environment scripts see: reads of missing globals and every write raise. Functions keep
-- this environment, so switching `current` back after a load gives them the full API.
local env = setmetatable({}, {
    __index = function(_, k)
        local v = current[k]
        if v == nil then
            error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
        end
        return v
    end,
    __newindex = readonly_error,
    __metatable = false,
})
G._G = env
protected[env] = true

local raw_setmetatable, raw_getmetatable = setmetatable, getmetatable
G.setmetatable = function(t, mt)
    if protected[t] then
        error("Attempt to modify a readonly table", 2)
    end
    return raw_setmetatable(t, mt)
end
local ro_meta = ro({})
G.getmetatable = function(t)
    if protected[t] then
        return ro_meta
    end
    return raw_getmetatable(t)
end

-- Redis's Lua refuses precompiled (binary) chunks: loadstring gives nil and a message.
local raw_loadstring = loadstring
G.loadstring = function(s, name)
    if type(s) == "string" and s:byte(1) == 27 then
        return nil, "binary chunks are not allowed"
    end
    return raw_loadstring(s, name)
end

-- Runs a script (eval: no arguments; functions: keys and args) under the error handler.
local xpcall = xpcall
local function run(f, handler, fmode, keys, args)
    if fmode then
        return xpcall(function()
            return f(keys, args)
        end, handler)
    end
    return xpcall(f, handler)
end

local function set_loading(on)
    if on then
        current = load_api
    else
        current = G
    end
end

return env, run, set_loading
