-- struct.pack/unpack/size cases: formats, endianness, alignment, limits and errors. The
-- script returns one line per case (hex of strings, type:value of the rest); the test runs it
-- on redis-server 7.0.15 and on forkless and compares the lines.
local function hex(s) local h = '' for i = 1, #s do h = h .. string.format('%02x', string.byte(s, i)) end return h end
local function show(...) local n = select('#', ...) local t = {} for i = 1, n do local v = select(i, ...) if type(v) == 'string' then t[#t+1] = 's:' .. hex(v) else t[#t+1] = type(v) .. ':' .. tostring(v) end end return table.concat(t, ',') end
local cases = {
 {'pack', '>i4', 1}, {'pack', '<i4', -2}, {'pack', 'b', 200}, {'pack', 'B', -1}, {'pack', 'h', 65537}, {'pack', '>H', 258},
 {'pack', 'l', -1}, {'pack', 'L', 2^63}, {'pack', 'L', 2^64}, {'pack', 'l', -2^63}, {'pack', 'l', -2^64}, {'pack', 'L', 0/0}, {'pack', 'l', 1/0}, {'pack', 'l', -1/0},
 {'pack', 'T', 3}, {'pack', 'i', 7}, {'pack', 'I2', 70000}, {'pack', 'i16', -5}, {'pack', '>i12', 5}, {'pack', 'i0', 5}, {'pack', 'i33', 1},
 {'pack', 'f', 1.5}, {'pack', '>f', 0.1}, {'pack', 'd', 0.1}, {'pack', '>d', -2.5},
 {'pack', 'c', 'abc'}, {'pack', 'c3', 'abcdef'}, {'pack', 'c0', 'hello'}, {'pack', 'c5', 'abc'}, {'pack', 's', 'hi'}, {'pack', 'c', 12.5},
 {'pack', 'bxh', 1, 2}, {'pack', '!bxh', 1, 2}, {'pack', '!4 b i', 1, 2}, {'pack', '!2bd', 1, 2}, {'pack', '!bd', 1, 2}, {'pack', '!3b', 1}, {'pack', '!0b', 1},
 {'pack', 'z', 1}, {'pack', '5', 1}, {'pack', 'i', 'x'}, {'pack', 'i', '12'}, {'pack', 'i', ' 0x10 '}, {'pack', 'i'}, {'pack', 'i', nil}, {'pack', 'c', {}}, {'pack', 'i99999999999', 1}, {'pack', 'b\0b', 1, 2},
 {'pack', '!8 b c2 i', 1, 'xy', 3},
 {'unpack', '>i4', '\0\0\1\2'}, {'unpack', '<i2', '\255\255'}, {'unpack', '<I2', '\255\255'}, {'unpack', 'b', '\200'}, {'unpack', 'l', '\255\255\255\255\255\255\255\255'},
 {'unpack', 'L', '\255\255\255\255\255\255\255\255'}, {'unpack', 'i16', string.rep('\255', 16)}, {'unpack', 'I16', string.rep('\1', 16)}, {'unpack', 'i3', '\255\255\255'}, {'unpack', '>i12', string.rep('\128', 12)},
 {'unpack', 'f', '\0\0\192\63'}, {'unpack', '>d', '\64\9\33\251\84\68\45\24'}, {'unpack', 'c2c3', 'abcdef'}, {'unpack', 'bc0', '\3abcd'}, {'unpack', 'c1c0', '2abc'}, {'unpack', 'c0', 'abc'}, {'unpack', 'c1c0', 'xabc'},
 {'unpack', 's', 'ab\0cd'}, {'unpack', 'ss', 'ab\0cd'}, {'unpack', 'i4', 'abc'}, {'unpack', 'b', 'abc', 2}, {'unpack', 'b', 'abc', 0}, {'unpack', 'b', 'abc', -1}, {'unpack', 'b', 'abc', 3}, {'unpack', 'b', 'abc', 4}, {'unpack', 'b', 'abc', 2.7}, {'unpack', 'b', 'abc', '2'},
 {'unpack', 'bxb', 'abc'}, {'unpack', '!bi', 'a\0\0\0\1\0\0\0'}, {'unpack', 'z', 'abc'}, {'unpack', 'b', 5}, {'unpack', 'b'}, {'unpack', 'bc0', '\255abc'}, {'unpack', 'c0', ''},
 {'size', 'i'}, {'size', 'bi'}, {'size', '!bi'}, {'size', '!bd'}, {'size', 'c10'}, {'size', 's'}, {'size', 'c0'}, {'size', 'z'}, {'size', '?'}, {'size', 'lLTfdhHbBx'}, {'size', 'i40'}, {'size', '!5'}, {'size', 5},
}
local out = {}
for i, c in ipairs(cases) do
  local f = struct[c[1]]
  local r
  if c[1] == 'pack' then r = {pcall(function() return struct.pack(c[2], c[3], c[4], c[5]) end)}
  elseif c[1] == 'unpack' then if c[4] ~= nil then r = {pcall(function() return struct.unpack(c[2], c[3], c[4]) end)} else r = {pcall(function() return struct.unpack(c[2], c[3]) end)} end
  else r = {pcall(function() return struct.size(c[2]) end)} end
  out[#out+1] = i .. ' ' .. c[1] .. ' ' .. show(unpack(r))
end
out[#out+1] = 'noname ' .. show(pcall(struct.pack, 'z'))
out[#out+1] = 'nil-args ' .. show(pcall(function() return struct.pack('ii', 1) end))
return out
