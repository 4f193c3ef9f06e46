-- ardour_stub.lua: a fake Ardour 7 Lua API for the tests (a constant tempo map), recording what the scripts do.
-- Set WORLD before dofile'ing it:
--   { rate=, bpm=, num=, den=, path=, recording=, tracks={ {name=, regions={...}} }, selection={ regions={ {track, index} },
--     range={start, stop}, range_tracks={names} } }
-- A region: { pos=sample, len=samples, channels=n, value=k } (audio: sample i of channel c reads k + c/10 + i/1e6)
-- or { pos=, len=, midi={ start_beats=, notes={ {time=, length=, note=, velocity=, channel=} } } }.
-- WORLD.dialogs (optional): what LuaDialog.Dialog(...):run() answers, one per call ({key=value}, or false:
-- cancelled; none left: cancelled); without it there is no LuaDialog (as in a headless ardour7-lua).
-- CALLS holds the calls; stub_report() prints them (and the routes) as JSON.
local core = dofile(CORE)
CALLS = {}
local function record(name, args) CALLS[#CALLS + 1] = { name = name, args = args } end
local W = WORLD

local function list(items)
  return { iter = function(self) local i = 0 return function() i = i + 1 return items[i] end end }
end
local function beats_obj(b)
  local whole = math.floor(b)
  return { str = function(self) return string.format("%d:%d", whole, math.floor((b - whole) * 1920 + 0.5)) end }
end
local function samples_to_beats(s) return s / W.rate * W.bpm / 60 end

Temporal = {}
Temporal.timepos_t = setmetatable({
  from_ticks = function(ticks)
    local s = math.floor(ticks / 1920 * 60 / W.bpm * W.rate + 0.5)
    return { samples = function(self) return s end, beats = function(self) return beats_obj(ticks / 1920) end }
  end,
}, { __call = function(_, s)
  return { samples = function(self) return s end, beats = function(self) return beats_obj(samples_to_beats(s)) end }
end })
Temporal.timecnt_t = function(n) return { samples = function(self) return n end } end
Temporal.TempoMap = { read = function()
  return {
    quarters_at_sample = function(self, s) return beats_obj(samples_to_beats(s)) end,
    quarters_per_minute_at = function(self, pos) return W.bpm end,
    meter_at = function(self, pos)
      return { divisions_per_bar = function() return W.num end, note_value = function() return W.den end }
    end,
  }
end }

local function nil_obj() return { isnil = function() return true end } end

local function make_playlist(track)
  local pl = { track = track }
  function pl:name() return track.name end
  function pl:region_list() return list(track.region_objs) end
  function pl:to_audioplaylist() return pl end
  function pl:read(dst, mix, gain, pos, cnt, chan)
    local from, n = pos:samples(), cnt:samples()
    record("read", { track.name, from, n, chan })
    for i = 1, n do
      local s, v = from + i - 1, 0.0
      for _, r in ipairs(track.regions) do
        if not r.midi and s >= r.pos and s < r.pos + r.len and chan < r.channels then
          v = v + r.value + chan / 10 + (s - r.pos) / 1e6
        end
      end
      dst.data[i] = v
    end
  end
  return pl
end

local routes = {}
local function make_route(track)
  local route = { track = track }
  function route:name() return track.name end
  function route:set_name(n) record("set_name", { track.name, n }) track.name = n return true end
  function route:to_track()
    return { isnil = function() return false end, playlist = function() return track.playlist end }
  end
  return route
end

for _, track in ipairs(W.tracks) do
  track.playlist = make_playlist(track)
  track.region_objs = {}
  for _, r in ipairs(track.regions or {}) do
    local obj = {}
    function obj:position() return Temporal.timepos_t(r.pos) end
    function obj:length() return Temporal.timecnt_t(r.len) end
    function obj:playlist() return track.playlist end
    function obj:to_audioregion()
      if r.midi then return nil_obj() end
      return { isnil = function() return false end, n_channels = function() return r.channels end }
    end
    function obj:to_midiregion()
      if not r.midi then return nil_obj() end
      return {
        isnil = function() return false end,
        start = function() return { beats = function() return beats_obj(r.midi.start_beats) end } end,
        model = function() return r.midi end,
      }
    end
    r.obj = obj
    track.region_objs[#track.region_objs + 1] = obj
  end
  routes[#routes + 1] = make_route(track)
end

Session = {}
function Session:get_tracks() return list(routes) end
function Session:get_routes() return list(routes) end
function Session:path() return W.path end
function Session:nominal_sample_rate() return W.rate end
function Session:actively_recording() return W.recording or false end

C = { StringVector = function()
  local v = { items = {} }
  function v:push_back(s) self.items[#self.items + 1] = s end
  function v:iter() return list(self.items):iter() end
  return v
end }

ARDOUR = {
  DSP = { DspShm = function(n)
    local shm = { data = {} }
    local ptr = { data = shm.data }
    function ptr:array() return self.data end
    function shm:clear() for i = 1, n do self.data[i] = 0.0 end end
    function shm:to_float(off) return ptr end
    return shm
  end },
  LuaAPI = {
    build_filename = function(...) return table.concat({ ... }, "/") end,
    note_list = function(model)
      local notes = {}
      for _, n in ipairs(model.notes) do
        notes[#notes + 1] = {
          time = function() return beats_obj(n.time) end,
          length = function() return beats_obj(n.length) end,
          note = function() return n.note end,
          velocity = function() return n.velocity end,
          channel = function() return n.channel or 0 end,
        }
      end
      return list(notes)
    end,
    new_plugin_info = function(name, kind)
      return { isnil = function() return false end, plugin_name = name }
    end,
  },
  LuaOSC = { Address = function(url)
    return { send = function(self, path, types, ...) record("osc", { url, path, types, { ... } }) return true end }
  end },
  PluginInfo = function() return { isnil = function() return true end, plugin_name = "" } end,
  PluginType = { LV2 = "LV2" },
  Track = function() return {} end,
  SrcQuality = { SrcBest = "SrcBest" },
  MidiTrackNameSource = { SMFTrackName = "SMFTrackName" },
  MidiTempoMapDisposition = { SMFTempoIgnore = "SMFTempoIgnore" },
}
Editing = { ImportDistinctFiles = "ImportDistinctFiles", ImportAsTrack = "ImportAsTrack" }
LuaSignal = { LuaTimerDS = "LuaTimerDS", Set = function()
  local set = {}
  function set:add(t) for k, v in pairs(t) do self[k] = v end return self end
  return set
end }

if W.dialogs then
  local asked = 0
  LuaDialog = {
    MessageType = { Info = "Info", Error = "Error" },
    ButtonType = { Close = "Close" },
    Message = function(title, text, kind, buttons)
      record("message", { title, text })
      return { run = function() return 0 end }
    end,
    Dialog = function(title, fields)
      local shown = {}
      for _, f in ipairs(fields) do
        shown[#shown + 1] = { f.type, f.key, f.default, f.min or -1, f.max or -1 }
      end
      record("dialog", { title, shown })
      return { run = function()
        asked = asked + 1
        return W.dialogs[asked] or nil
      end }
    end,
  }
end

local function find_region(spec)
  for _, t in ipairs(W.tracks) do
    if t.name == spec[1] then return t.regions[spec[2]].obj end
  end
end

Editor = {}
function Editor:get_selection()
  local sel = W.selection or {}
  local regions, tracks = {}, {}
  for _, spec in ipairs(sel.regions or {}) do regions[#regions + 1] = find_region(spec) end
  for _, name in ipairs(sel.range_tracks or {}) do
    for _, route in ipairs(routes) do if route:name() == name then tracks[#tracks + 1] = route end end
  end
  local range = sel.range or { 0, 0 }
  return {
    regions = { regionlist = function() return list(regions) end },
    time = { start_sample = function() return range[1] end, end_sample = function() return range[2] end },
    tracks = { routelist = function() return list(tracks) end },
  }
end
function Editor:do_import(files, mode, disposition, quality, names, tempo, pos, instrument, track, replace)
  for f in files:iter() do
    record("do_import", { f, pos:samples(), mode, disposition, quality, instrument.plugin_name })
    local name = f:match("([^/]+)%.%w+$")
    local t = { name = name, regions = {} }
    t.playlist = make_playlist(t)
    t.region_objs = {}
    W.tracks[#W.tracks + 1] = t
    routes[#routes + 1] = make_route(t)
  end
end

ardour = function(info) end

function stub_report()
  local names = {}
  for _, r in ipairs(routes) do names[#names + 1] = r:name() end
  print("REPORT " .. core.json_encode({ calls = CALLS, routes = names }))
end
