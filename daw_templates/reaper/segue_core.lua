-- segue_core.lua: the DAW-independent part of Segue's Lua scripts (REAPER and Ardour).
-- Plain Lua 5.3/5.4 (REAPER ships 5.4, Ardour 7 ships 5.3); it touches no DAW API, so it is tested under a
-- stock `lua5.4` (tests/daw_templates). The Ardour scripts carry a copy of it between the "segue_core" markers
-- (daw_templates/embed_core.py refreshes them); REAPER's scripts load this file with dofile.
local core = {}

core.VERSION = 1
core.TICKS_PER_BEAT = 1920 -- Ardour's ticks per quarter note; also the MIDI files' resolution

-- paths and files ----------------------------------------------------------------------------------------------

core.SEP = package.config:sub(1, 1) -- "/" or "\"

function core.join(...)
  local parts = { ... }
  local out = parts[1]
  for i = 2, #parts do
    local p = parts[i]
    if out:sub(-1) == "/" or out:sub(-1) == "\\" then
      out = out .. p
    else
      out = out .. core.SEP .. p
    end
  end
  return out
end

function core.file_exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
    return true
  end
  return false
end

function core.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local text = f:read("a")
  f:close()
  return text
end

-- Write `text` to `path` through a temp file and a rename, so that a reader never sees half a file.
function core.write_atomic(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then
    return nil, err
  end
  f:write(text)
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then
    os.remove(tmp)
    return nil, rerr
  end
  return true
end

-- The default watched folder (`segue bridge --watch DIR`): $SEGUE_WATCH, else ~/Segue/watch.
function core.default_watch_dir(getenv)
  getenv = getenv or os.getenv
  local dir = getenv("SEGUE_WATCH")
  if dir and dir ~= "" then
    return dir
  end
  local home = getenv("HOME") or getenv("USERPROFILE") or "."
  return core.join(home, "Segue", "watch")
end

-- JSON (what Segue's watched folder holds: objects, arrays, strings, numbers, booleans, null) ------------------

local function utf8_char(code)
  if utf8 and utf8.char then
    return utf8.char(code)
  end
  return "?"
end

function core.json_decode(text)
  local pos = 1
  local function fail(what)
    error(string.format("bad JSON at character %d: %s", pos, what), 0)
  end
  local function skip()
    pos = text:find("[^ \t\r\n]", pos) or (#text + 1)
  end
  local value
  local function str()
    local out = {}
    pos = pos + 1 -- the opening quote
    while true do
      local c = text:sub(pos, pos)
      if c == "" then
        fail("unterminated string")
      elseif c == '"' then
        pos = pos + 1
        return table.concat(out)
      elseif c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        local map = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
        if map[e] then
          out[#out + 1] = map[e]
          pos = pos + 2
        elseif e == "u" then
          local hex = text:sub(pos + 2, pos + 5)
          if not hex:match("^%x%x%x%x$") then
            fail("bad \\u escape")
          end
          local code = tonumber(hex, 16)
          pos = pos + 6
          if code >= 0xD800 and code <= 0xDBFF and text:sub(pos, pos + 1) == "\\u" then
            local low = tonumber(text:sub(pos + 2, pos + 5), 16)
            if low and low >= 0xDC00 and low <= 0xDFFF then
              code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
              pos = pos + 6
            end
          end
          out[#out + 1] = utf8_char(code)
        else
          fail("bad escape")
        end
      else
        local stop = text:find('["\\]', pos) or (#text + 1)
        out[#out + 1] = text:sub(pos, stop - 1)
        pos = stop
      end
    end
  end
  function value()
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      local obj = {}
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "}" then
        pos = pos + 1
        return obj
      end
      while true do
        skip()
        if text:sub(pos, pos) ~= '"' then
          fail("a key string expected")
        end
        local key = str()
        skip()
        if text:sub(pos, pos) ~= ":" then
          fail("':' expected")
        end
        pos = pos + 1
        obj[key] = value()
        skip()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "}" then
          return obj
        elseif d ~= "," then
          fail("',' or '}' expected")
        end
      end
    elseif c == "[" then
      local arr = {}
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "]" then
        pos = pos + 1
        return arr
      end
      while true do
        arr[#arr + 1] = value()
        skip()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "]" then
          return arr
        elseif d ~= "," then
          fail("',' or ']' expected")
        end
      end
    elseif c == '"' then
      return str()
    elseif text:sub(pos, pos + 3) == "true" then
      pos = pos + 4
      return true
    elseif text:sub(pos, pos + 4) == "false" then
      pos = pos + 5
      return false
    elseif text:sub(pos, pos + 3) == "null" then
      pos = pos + 4
      return nil
    else
      local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" or num == "-" then
        fail("a value expected")
      end
      pos = pos + #num
      return tonumber(num) or fail("bad number")
    end
  end
  local result = value()
  skip()
  if pos <= #text then
    fail("trailing characters")
  end
  return result
end

local function json_string(s)
  local escaped = s:gsub('[%c"\\]', function(c)
    local map = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    return map[c] or string.format("\\u%04x", c:byte())
  end)
  return '"' .. escaped .. '"'
end

-- Encode a table of strings, numbers, booleans and nested tables (a table with [1] is an array), keys sorted.
function core.json_encode(v)
  local t = type(v)
  if t == "string" then
    return json_string(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      error("cannot encode a non-finite number", 0)
    end
    if math.type and math.type(v) == "integer" then
      return tostring(v)
    end
    return string.format("%.17g", v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "nil" then
    return "null"
  elseif t == "table" then
    if v[1] ~= nil then
      local items = {}
      for i = 1, #v do
        items[i] = core.json_encode(v[i])
      end
      return "[" .. table.concat(items, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do
      keys[#keys + 1] = tostring(k)
    end
    table.sort(keys)
    local items = {}
    for i, k in ipairs(keys) do
      items[i] = json_string(k) .. ":" .. core.json_encode(v[k])
    end
    return "{" .. table.concat(items, ",") .. "}"
  end
  error("cannot encode a " .. t, 0)
end

-- musical time ---------------------------------------------------------------------------------------------------

-- The first bar line at or after `beats` (quarter notes from the timeline's start, bars of `beats_per_bar`).
function core.next_bar_line(beats, beats_per_bar)
  local bars = math.ceil(beats / beats_per_bar - 1e-9)
  return bars * beats_per_bar
end

-- Quarter notes per bar of a meter: 4/4 -> 4, 6/8 -> 3, 3/4 -> 3.
function core.quarters_per_bar(num, den)
  return num * 4 / den
end

-- "4:960" (Ardour's Temporal.Beats:str(), beats:ticks) -> 4.5
function core.beats_from_str(text)
  local b, t = tostring(text):match("^%s*(-?%d+):(%d+)")
  if not b then
    error("not a beats:ticks string: " .. tostring(text), 0)
  end
  local beats = tonumber(b)
  local ticks = tonumber(t) / core.TICKS_PER_BEAT
  return beats < 0 and beats - ticks or beats + ticks
end

-- Stems: several tracks' audio of one region (/segue/region/stems, docs/osc.md) ----------------------------------

core.MAX_STEMS = 16 -- as many stems as Segue takes for one region
core.MAX_STEM_NAME = 32

-- A track's name as a stem name Segue takes ("01 Drums (L)" -> "drums-l": lowercase letters, digits, - and _,
-- starting with a letter, at most 32), made unique among the names in `taken` (a set, updated) by "-2", "-3"...;
-- "track<index>" when nothing is left of the name.
function core.stem_name(text, taken, index)
  local name = tostring(text or ""):lower():gsub("[^a-z0-9_%-]+", "-")
  name = name:gsub("^[^a-z]+", ""):gsub("[-_]+$", "")
  name = name:sub(1, core.MAX_STEM_NAME - 4):gsub("[-_]+$", "")
  if name == "" then
    name = "track" .. tostring(index or 1)
  end
  local base, n = name, 2
  while taken[name] do
    name = base .. "-" .. n
    n = n + 1
  end
  taken[name] = true
  return name
end

-- A region as Segue's /segue/region arguments: types "ssfffiis" and the values, checked like the bridge checks.
-- (A region with stems, r.stems = { {name=, path=}... }, is core.region_message's: these 8, then the stems.)
function core.region_args(r)
  local problems = {}
  local stems = r.stems or {}
  if (r.audio_path or "") == "" and (r.midi_path or "") == "" and #stems == 0 then
    problems[#problems + 1] = "nothing to send (no audio and no MIDI)"
  end
  if #stems > core.MAX_STEMS then
    problems[#problems + 1] = string.format("at most %d tracks' audio (stems) per region, got %d: select fewer tracks",
      core.MAX_STEMS, #stems)
  end
  if not (r.length_beats and r.length_beats > 0) then
    problems[#problems + 1] = "the region is empty"
  end
  if not (r.tempo_bpm and r.tempo_bpm >= 10 and r.tempo_bpm <= 400) then
    problems[#problems + 1] = "the tempo must be 10..400 BPM, got " .. tostring(r.tempo_bpm)
  end
  if #problems > 0 then
    return nil, table.concat(problems, "; ")
  end
  return "ssfffiis", {
    r.audio_path or "",
    r.midi_path or "",
    math.max(0.0, r.start_beats + 0.0),
    r.length_beats + 0.0,
    r.tempo_bpm + 0.0,
    math.floor(r.meter_num or 4),
    math.floor(r.meter_den or 4),
    r.track or "",
  }
end

-- The OSC message of a region: "/segue/region" and its 8 arguments, or with r.stems (two tracks or more)
-- "/segue/region/stems": the same 8 (the mix as the audio path, or ""), then s:name s:path per stem. nil and why.
function core.region_message(r)
  local types, args = core.region_args(r)
  if not types then
    return nil, args
  end
  if not r.stems or #r.stems == 0 then
    return "/segue/region", types, args
  end
  for _, stem in ipairs(r.stems) do
    types = types .. "ss"
    args[#args + 1] = stem.name
    args[#args + 1] = stem.path
  end
  return "/segue/region/stems", types, args
end

-- What to generate (/segue/generate s:mode i:bars i:variants [s:parts s:output] [s:key value ...]) ----------------

core.MAX_PARTS = 8 -- as many part names as Segue takes
core.MAX_PART_NAME = 32 -- characters in one name
core.MAX_BARS = 64

-- A parts list as a producer types it (" Bass, PIANO ", "bass,piano,") as Segue wants it ("bass,piano"): names
-- trimmed and lowercased, empty items dropped; "" (or nil) is the model's default set. Returns nil and why for
-- what Segue would refuse: a name with spaces or characters other than letters, digits, - and _ (or not starting
-- with a letter, or longer than 32), a name given twice, more than core.MAX_PARTS names. Whether the model knows
-- a name is the engine's to say (the job fails naming the parts it knows).
function core.normalise_parts(text)
  if text == nil then
    return ""
  end
  if type(text) ~= "string" then
    return nil, "the parts must be text (names separated by commas, e.g. bass,piano), got " .. type(text)
  end
  local names, seen = {}, {}
  for item in (text .. ","):gmatch("([^,]*),") do
    local name = item:match("^%s*(.-)%s*$"):lower()
    if name ~= "" then
      if not name:match("^[a-z][a-z0-9_%-]*$") or #name > core.MAX_PART_NAME then
        return nil, string.format("'%s' is not a part name: a name is a letter, then letters, digits, - or _ " ..
          "(at most %d), and commas go between names (e.g. bass,piano)", name, core.MAX_PART_NAME)
      end
      if seen[name] then
        return nil, string.format("'%s' is given twice", name)
      end
      seen[name] = true
      names[#names + 1] = name
    end
  end
  if #names > core.MAX_PARTS then
    return nil, string.format("at most %d parts, got %d", core.MAX_PARTS, #names)
  end
  return table.concat(names, ",")
end

-- How many bars a region of `length_beats` quarter notes covers in its meter (rounded up, 1..core.MAX_BARS): what
-- an accompany request gives as its bars (Segue checks the value; an accompaniment is as long as the region).
function core.bars_of(region)
  local per_bar = core.quarters_per_bar(region.meter_num or 4, region.meter_den or 4)
  local bars = math.ceil((region.length_beats or 0) / per_bar - 1e-9)
  return math.floor(math.max(1, math.min(core.MAX_BARS, bars)))
end

-- The producer's controls (/segue/generate's key/value pairs, docs/osc.md), as a `generate` table may hold them
-- (nil, or left out: the engine's measured default; Segue checks the ranges, with the same words everywhere):
--   similarity = 0..1       how close the variants stay to the region: 1 = close, 0 = free (audio and MIDI)
--   keep_opening = bool     audio: open the continuation with the region's first bar
--   density = 0.25..4       MIDI: notes per bar as a factor of the region's own (1 = as dense as the region)
--   part_density = {bass = 0.5} or "bass=0.5,piano=1.5"   the same per part (wins over density for that part)
--   hold_notes = bool       MIDI: keep the region's note lengths per part (held chords stay held)
--   end_on_tonic = bool     MIDI: end on the region's tonic (a cadence in the last bar)
core.CONTROL_NUMBERS = { "similarity", "density" }
core.CONTROL_FLAGS = { "keep_opening", "hold_notes", "end_on_tonic" }

-- Part densities as a list of {name, factor}: from {bass = 0.5} (sorted by name) or "bass=0.5, Piano=1.5" (in
-- its order; names trimmed and lowercased). nil and why for anything else.
function core.part_density(value)
  local list = {}
  if value == nil then
    return list
  elseif type(value) == "string" then
    for item in (value .. ","):gmatch("([^,]*),") do
      local text = item:match("^%s*(.-)%s*$")
      if text ~= "" then
        local name, factor = text:match("^(.-)%s*=%s*(.-)$")
        local number = factor and tonumber(factor)
        if not name or name == "" or not number then
          return nil, "part densities look like bass=0.5,piano=1.5 (a part, =, a factor), got '" .. text .. "'"
        end
        list[#list + 1] = { name:lower(), number + 0.0 }
      end
    end
  elseif type(value) == "table" then
    for name, factor in pairs(value) do
      if type(name) ~= "string" or type(factor) ~= "number" then
        return nil, "part_density maps part names to factors, e.g. {bass = 0.5}; got " .. tostring(name) .. " = " ..
            tostring(factor)
      end
      list[#list + 1] = { name:lower(), factor + 0.0 }
    end
    table.sort(list, function(a, b) return a[1] < b[1] end)
  else
    return nil, "part_density is a table {bass = 0.5} or text bass=0.5,piano=1.5, got " .. type(value)
  end
  return list
end

-- The controls in `generate` as an ordered list of {key, value} pairs (numbers, booleans; one "density:<part>"
-- key per part density); {} when there are none. nil and why for a value of the wrong kind.
function core.controls(generate)
  local list = {}
  for _, key in ipairs(core.CONTROL_NUMBERS) do
    local value = generate[key]
    if value ~= nil then
      if type(value) ~= "number" or value ~= value or value == math.huge or value == -math.huge then
        return nil, key .. " must be a number (or nil: Segue's default), got " .. tostring(value)
      end
      list[#list + 1] = { key, value + 0.0 }
    end
  end
  for _, key in ipairs(core.CONTROL_FLAGS) do
    local value = generate[key]
    if value ~= nil then
      if type(value) ~= "boolean" then
        return nil, key .. " must be true or false (or nil: Segue's default), got " .. tostring(value)
      end
      list[#list + 1] = { key, value }
    end
  end
  local parts, why = core.part_density(generate.part_density)
  if not parts then
    return nil, why
  end
  for _, part in ipairs(parts) do
    list[#list + 1] = { "density:" .. part[1], part[2] }
  end
  return list
end

-- `generate` with the controls of `controls` it does not set itself (a script's CONTROLS settings); `generate`
-- itself is left as it is.
function core.with_controls(generate, controls)
  local out = {}
  for key, value in pairs(controls or {}) do
    out[key] = value
  end
  for key, value in pairs(generate) do
    out[key] = value
  end
  return out
end

-- /segue/generate's types and arguments for `generate` ({mode=, bars=, variants=, parts=} and the controls above):
-- "sii" and three values, or "siis" with the normalised parts when there are some (accompany only); with controls,
-- "siiss" (parts "" for the default set, output "auto") then a key ("s") and a value per control: "f" for a number,
-- "i" 1/0 for a flag (DAWs' Lua OSC has no booleans; Segue takes 1/0). nil and why otherwise.
function core.generate_args(generate)
  local mode = generate.mode or "continue"
  if mode ~= "continue" and mode ~= "accompany" then
    return nil, "the mode must be continue or accompany, got " .. tostring(mode)
  end
  local parts, why = core.normalise_parts(generate.parts)
  if not parts then
    return nil, why
  end
  if parts ~= "" and mode ~= "accompany" then
    return nil, "parts (" .. parts .. ") are only for accompany, not " .. mode
  end
  local bars, variants = math.floor(generate.bars or 4), math.floor(generate.variants or 2)
  if bars < 1 or bars > core.MAX_BARS then
    return nil, string.format("bars must be 1..%d, got %d", core.MAX_BARS, bars)
  end
  if variants < 1 or variants > 16 then
    return nil, "variants must be 1..16, got " .. variants
  end
  local controls, bad = core.controls(generate)
  if not controls then
    return nil, bad
  end
  if #controls > 0 then
    local types, args = "siiss", { mode, bars, variants, parts, generate.output or "auto" }
    for _, pair in ipairs(controls) do
      local value = pair[2]
      if type(value) == "boolean" then
        types, value = types .. "si", value and 1 or 0
      else
        types = types .. "sf"
      end
      args[#args + 1] = pair[1]
      args[#args + 1] = value
    end
    return types, args
  end
  if parts == "" then
    return "sii", { mode, bars, variants }
  end
  return "siis", { mode, bars, variants, parts }
end

-- A watched-folder request (bridge/watch.py) for a region, with what to generate.
function core.request(r, generate)
  local types, args = core.region_args(r)
  if not types then
    return nil, args
  end
  local req = {
    segue = core.VERSION,
    audio_path = args[1],
    midi_path = args[2],
    start_beats = args[3],
    length_beats = args[4],
    tempo_bpm = args[5],
    meter_num = args[6],
    meter_den = args[7],
    track = args[8],
  }
  if r.stems and #r.stems > 0 then
    req.stems = {}
    for i, stem in ipairs(r.stems) do
      req.stems[i] = { name = stem.name, path = stem.path }
    end
  end
  if generate then
    local gtypes, gargs = core.generate_args(generate)
    if not gtypes then
      return nil, gargs
    end
    req.generate = { mode = gargs[1], bars = gargs[2], variants = gargs[3], parts = gargs[4] }
    if req.generate.parts == "" then
      req.generate.parts = nil -- the model's default set, as when there are no controls
    end
    for _, pair in ipairs(core.controls(generate)) do -- checked by generate_args; booleans stay JSON booleans
      req.generate[pair[1]] = pair[2]
    end
  end
  return req
end

-- Drop a request into DIR/requests/ (written as NAME.json.tmp, then renamed); returns its path.
function core.drop_request(watch_dir, req, stamp)
  local name = string.format("%s-%04d.json", stamp or os.date("!%Y%m%d-%H%M%S"), math.random(0, 9999))
  local path = core.join(watch_dir, "requests", name)
  local ok, err = core.write_atomic(path, core.json_encode(req) .. "\n")
  if not ok then
    return nil, "cannot write " .. path .. ": " .. tostring(err) .. " (is `segue bridge --watch " .. watch_dir ..
        "` running? it makes the folder)"
  end
  return path
end

-- placed files (DIR/placed/000001.json ...) -----------------------------------------------------------------------

-- The placements not imported yet, in order: a list of {name=, path=, record=} (or {name=, path=, error=}).
-- `state.next` remembers the first number not looked at yet (start at 1).
function core.pending_placements(watch_dir, state)
  state.next = state.next or 1
  local found = {}
  local misses = 0
  local n = state.next
  while misses < 3 do -- a short look past a gap (a file moved away by hand)
    local name = string.format("%06d.json", n)
    local path = core.join(watch_dir, "placed", name)
    if core.file_exists(path) then
      local text = core.read_file(path)
      local ok, record = pcall(core.json_decode, text or "")
      if ok and type(record) == "table" and type(record.file_path) == "string" and type(record.kind) == "string"
          and type(record.position_beats) == "number" then
        found[#found + 1] = { name = name, path = path, record = record }
      else
        found[#found + 1] = { name = name, path = path, error = ok and "not a placement" or record }
      end
      misses = 0
      state.next = n + 1
    elseif core.file_exists(core.join(watch_dir, "placed", "done", name)) then
      misses = 0
      state.next = n + 1
    else
      misses = misses + 1
    end
    n = n + 1
  end
  return found
end

-- Move an imported placement into placed/done/.
function core.mark_done(watch_dir, item)
  return os.rename(item.path, core.join(watch_dir, "placed", "done", item.name))
end

-- WAV (32-bit float) ------------------------------------------------------------------------------------------------

-- Write `frames` frames of `channels` channels at `rate` Hz. `read(offset, count)` returns one Lua array per
-- channel holding `count` samples (1-based) from frame `offset` (0-based); it is asked block by block.
function core.write_wav(path, rate, channels, frames, read, block)
  block = block or 65536
  local f, err = io.open(path, "wb")
  if not f then
    return nil, err
  end
  local data_bytes = frames * channels * 4
  f:write("RIFF", string.pack("<I4", 4 + 26 + 12 + 8 + data_bytes), "WAVE")
  f:write("fmt ", string.pack("<I4I2I2I4I4I2I2I2", 18, 3, channels, rate, rate * channels * 4, channels * 4, 32, 0))
  f:write("fact", string.pack("<I4I4", 4, frames))
  f:write("data", string.pack("<I4", data_bytes))
  local offset = 0
  while offset < frames do
    local count = math.min(block, frames - offset)
    local data = read(offset, count)
    local out = {}
    for i = 1, count do
      for c = 1, channels do
        out[#out + 1] = string.pack("<f", data[c][i] or 0.0)
      end
    end
    f:write(table.concat(out))
    offset = offset + count
  end
  f:close()
  return true
end

-- Standard MIDI file (format 0) -------------------------------------------------------------------------------------

local function vlq(n)
  n = math.floor(n)
  local bytes = { string.char(n & 0x7F) }
  n = n >> 7
  while n > 0 do
    table.insert(bytes, 1, string.char((n & 0x7F) | 0x80))
    n = n >> 7
  end
  return table.concat(bytes)
end

-- Write notes ({start_beats=, length_beats=, pitch=, velocity=, channel=}, beats from the region's start) as a
-- one-track SMF with the tempo and meter at tick 0 and the end of track at `length_beats`.
function core.write_smf(path, notes, tempo_bpm, meter_num, meter_den, length_beats, tpq)
  tpq = tpq or 480
  local events = {}
  for _, n in ipairs(notes) do
    local on = math.max(0, math.floor(n.start_beats * tpq + 0.5))
    local off = math.max(on + 1, math.floor((n.start_beats + n.length_beats) * tpq + 0.5))
    local ch = (n.channel or 0) & 0x0F
    local pitch = math.max(0, math.min(127, math.floor(n.pitch)))
    local vel = math.max(1, math.min(127, math.floor(n.velocity or 100)))
    events[#events + 1] = { off, 0, string.char(0x80 | ch, pitch, 0), #events }
    events[#events + 1] = { on, 1, string.char(0x90 | ch, pitch, vel), #events }
  end
  table.sort(events, function(a, b)
    if a[1] ~= b[1] then
      return a[1] < b[1]
    end
    if a[2] ~= b[2] then
      return a[2] < b[2] -- note-offs before note-ons at the same tick
    end
    return a[4] < b[4] -- else in the order given (table.sort is not stable)
  end)
  local usec = math.floor(60000000 / tempo_bpm + 0.5)
  local den_pow = math.floor(math.log(meter_den, 2) + 0.5)
  local body = {
    vlq(0), "\xFF\x51\x03", string.char((usec >> 16) & 0xFF, (usec >> 8) & 0xFF, usec & 0xFF),
    vlq(0), "\xFF\x58\x04", string.char(meter_num, den_pow, 24, 8),
  }
  local now = 0
  for _, e in ipairs(events) do
    body[#body + 1] = vlq(e[1] - now) .. e[3]
    now = e[1]
  end
  local last = math.max(now, math.floor(length_beats * tpq + 0.5))
  body[#body + 1] = vlq(last - now) .. "\xFF\x2F\x00"
  local track = table.concat(body)
  local f, err = io.open(path, "wb")
  if not f then
    return nil, err
  end
  f:write("MThd", string.pack(">I4I2I2I2", 6, 0, 1, tpq), "MTrk", string.pack(">I4", #track), track)
  f:close()
  return true
end

return core
