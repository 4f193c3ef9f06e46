-- segue_ardour.lua: what Segue's Ardour scripts do with Ardour's Lua API (Ardour 7). Embedded into each script
-- (segue_send.lua, segue_place.lua, segue_autoplace.lua) by daw_templates/embed_core.py, after segue_core.lua.
-- Only the Editor calls (Editor:get_selection, Editor:do_import) need Ardour's GUI; everything else runs in a
-- headless `ardour7-lua` session too, which is how tests/daw_templates checks it against a real Ardour 7.3.
local segue = {}

segue.BLOCK = 65536 -- samples read at a time

local function say(text)
  print("Segue: " .. text)
  if LuaDialog and LuaDialog.Message then
    LuaDialog.Message("Segue", text, LuaDialog.MessageType.Info, LuaDialog.ButtonType.Close):run()
  end
end
segue.say = say

-- Quarter notes from the timeline's start at `sample` (through Ardour's tempo map, tempo changes included).
function segue.beats_at(tm, sample)
  return core.beats_from_str(tm:quarters_at_sample(sample):str())
end

-- The sample where `beats` quarter notes from the timeline's start fall (through the tempo map).
function segue.sample_at_beats(beats)
  return Temporal.timepos_t.from_ticks(math.floor(beats * core.TICKS_PER_BEAT + 0.5)):samples()
end

-- The route (track) that plays `playlist`, by playlist name; nil if none.
local function route_of(playlist)
  local name = playlist:name()
  for route in Session:get_tracks():iter() do
    local track = route:to_track()
    if not track:isnil() and track:playlist():name() == name then
      return route
    end
  end
  return nil
end

local function audio_channels(playlist)
  local channels = 0
  for r in playlist:region_list():iter() do
    local ar = r:to_audioregion()
    if not ar:isnil() then
      channels = math.max(channels, ar:n_channels())
    end
  end
  return channels
end

-- What the editor has selected, as a plain table:
-- {start=sample, length=samples, track=name, audio={ {playlist=, channels=, name=track}... }, midi={region=, ...}
-- or nil} (one audio entry per track).
-- Selected regions win over a time range; nil and a reason when nothing usable is selected.
function segue.selection(editor)
  local sel = editor:get_selection()
  local first, last, track = nil, nil, nil
  local audio, seen, midi = {}, {}, nil
  for r in sel.regions:regionlist():iter() do
    local pos = r:position():samples()
    local stop = pos + r:length():samples()
    first = first and math.min(first, pos) or pos
    last = last and math.max(last, stop) or stop
    local playlist = r:playlist()
    local route = route_of(playlist)
    track = track or (route and route:name()) or playlist:name()
    local mr = r:to_midiregion()
    if not mr:isnil() then
      midi = midi or { region = mr, start = pos, length = stop - pos }
    elseif not seen[playlist:name()] then
      seen[playlist:name()] = true
      audio[#audio + 1] = { playlist = playlist:to_audioplaylist(), channels = audio_channels(playlist),
        name = (route and route:name()) or playlist:name() }
    end
  end
  if first == nil and sel.time:start_sample() < sel.time:end_sample() then
    first, last = sel.time:start_sample(), sel.time:end_sample()
    for route in sel.tracks:routelist():iter() do
      local t = route:to_track()
      if not t:isnil() then
        track = track or route:name()
        local channels = audio_channels(t:playlist())
        if channels > 0 then
          audio[#audio + 1] = { playlist = t:playlist():to_audioplaylist(), channels = channels, name = route:name() }
        end
      end
    end
    if #audio == 0 then
      return nil, "the time range has no audio on the selected tracks (select tracks, or a region)"
    end
  end
  if first == nil then
    return nil, "select a region, or a time range on one or more tracks, first"
  end
  return { start = first, length = last - first, track = track or "", audio = audio, midi = midi }
end

-- Write what the tracks play from `start` for `length` samples (summed, at most 2 channels) as a float WAV.
function segue.export_audio(path, sources, start, length, rate)
  local channels = 1
  for _, s in ipairs(sources) do
    channels = math.max(channels, math.min(2, s.channels))
  end
  local block = math.min(segue.BLOCK, math.max(1, length))
  local buf, mix, gain = ARDOUR.DSP.DspShm(block), ARDOUR.DSP.DspShm(block), ARDOUR.DSP.DspShm(block)
  local function read(offset, count)
    local out = {}
    for c = 1, channels do
      local acc = {}
      for i = 1, count do
        acc[i] = 0.0
      end
      out[c] = acc
    end
    for _, s in ipairs(sources) do
      for c = 1, channels do
        local chan = math.min(c, s.channels) - 1 -- a mono track goes to both channels
        buf:clear()
        s.playlist:read(buf:to_float(0), mix:to_float(0), gain:to_float(0),
          Temporal.timepos_t(start + offset), Temporal.timecnt_t(count), chan)
        local data = buf:to_float(0):array()
        local acc = out[c]
        for i = 1, count do
          acc[i] = acc[i] + data[i]
        end
      end
    end
    return out
  end
  return core.write_wav(path, rate, channels, length, read, block)
end

-- Write a MIDI region's notes (from the region's start, in quarter notes) as a MIDI file.
function segue.export_midi(path, mr, tempo_bpm, meter_num, meter_den, length_beats)
  local offset = core.beats_from_str(mr:start():beats():str()) -- where the region starts in its source
  local notes = {}
  for note in ARDOUR.LuaAPI.note_list(mr:model()):iter() do
    local at = core.beats_from_str(note:time():str()) - offset
    if at >= 0 and at < length_beats then
      notes[#notes + 1] = {
        start_beats = at,
        length_beats = core.beats_from_str(note:length():str()),
        pitch = note:note(),
        velocity = note:velocity(),
        channel = note:channel(),
      }
    end
  end
  return core.write_smf(path, notes, tempo_bpm, meter_num, meter_den, length_beats)
end

-- The selection as a Segue region: export its audio (and MIDI) into the session's export folder and describe it.
-- With `stems` and two or more tracks with audio, each track's audio is also exported alone, as a stem named after
-- the track (region.stems = { {name=, path=}... }: Segue continues them together and returns each beside the mix).
-- Returns the region table (core.region_message's fields) or nil and a reason.
function segue.region_of_selection(editor, stamp, stems)
  local s, why = segue.selection(editor)
  if not s then
    return nil, why
  end
  local tm = Temporal.TempoMap.read()
  local at = Temporal.timepos_t(s.start)
  local meter = tm:meter_at(at)
  local region = {
    start_beats = segue.beats_at(tm, s.start),
    tempo_bpm = tm:quarters_per_minute_at(at),
    meter_num = meter:divisions_per_bar(),
    meter_den = meter:note_value(),
    track = s.track,
  }
  region.length_beats = segue.beats_at(tm, s.start + s.length) - region.start_beats
  local base = ARDOUR.LuaAPI.build_filename(Session:path(), "export",
    string.format("segue-%s-%s", (s.track:gsub("[^%w%-]+", "-")), stamp or os.date("%Y%m%d-%H%M%S")))
  if #s.audio > 0 then
    region.audio_path = base .. ".wav"
    local ok, err = segue.export_audio(region.audio_path, s.audio, s.start, s.length, Session:nominal_sample_rate())
    if not ok then
      return nil, "cannot write " .. region.audio_path .. ": " .. tostring(err)
    end
  end
  if stems and #s.audio >= 2 then
    if #s.audio > core.MAX_STEMS then
      return nil, string.format("at most %d tracks' audio (stems) per region, got %d: select fewer tracks",
        core.MAX_STEMS, #s.audio)
    end
    region.stems = {}
    local taken = {}
    for i, source in ipairs(s.audio) do
      local name = core.stem_name(source.name, taken, i)
      local path = base .. "-" .. name .. ".wav"
      local ok, err = segue.export_audio(path, { source }, s.start, s.length, Session:nominal_sample_rate())
      if not ok then
        return nil, "cannot write " .. path .. ": " .. tostring(err)
      end
      region.stems[#region.stems + 1] = { name = name, path = path }
    end
  end
  if s.midi then
    region.midi_path = base .. ".mid"
    local ok, err = segue.export_midi(region.midi_path, s.midi.region, region.tempo_bpm, region.meter_num,
      region.meter_den, region.length_beats)
    if not ok then
      return nil, "cannot write " .. region.midi_path .. ": " .. tostring(err)
    end
  end
  return region
end

-- Send a region (and what to generate) to the bridge at `url` ("osc.udp://127.0.0.1:9750") over OSC.
-- Returns the OSC messages sent, as {address, types, args} (for the caller to show, and for tests).
function segue.send(url, region, generate)
  local address, types, args = core.region_message(region) -- /segue/region, or /segue/region/stems with stems
  if not address then
    return nil, types
  end
  local messages = { { address, types, args } }
  if generate then
    if type(generate) == "function" then -- what to ask for, knowing the region (an accompaniment's bars)
      generate = generate(region)
    end
    local gtypes, gargs = core.generate_args(generate)
    if not gtypes then
      return nil, gargs
    end
    messages[2] = { "/segue/generate", gtypes, gargs }
  end
  local target = ARDOUR.LuaOSC.Address(url)
  for _, m in ipairs(messages) do
    target:send(m[1], m[2], table.unpack(m[3]))
  end
  return messages
end

-- Ask which parts to write and how many variants (LuaDialog: an entry and a number), starting from what was
-- chosen last (kept in `memory`, a small JSON file: the session's export/segue-accompany.json), else `defaults`
-- ({parts=, variants=}). Input Segue would refuse is said and asked again, as typed; only valid answers are kept.
-- Returns {parts=normalised, variants=n}, or nil when cancelled. Without a dialog (a headless Ardour): the
-- remembered or default answer, said.
function segue.ask_accompany(defaults, memory)
  local last = { parts = defaults.parts or "", variants = defaults.variants or 2 }
  local text = memory and core.read_file(memory)
  if text then
    local ok, saved = pcall(core.json_decode, text)
    if ok and type(saved) == "table" and type(saved.parts) == "string" and type(saved.variants) == "number" then
      last = saved
    end
  end
  if not (LuaDialog and LuaDialog.Dialog) then
    local parts, why = core.normalise_parts(last.parts)
    if not parts then
      say("cannot accompany with the parts " .. tostring(last.parts) .. ": " .. why)
      return nil
    end
    print("Segue: no dialog here; accompanying with " .. (parts == "" and "the model's default parts" or parts))
    return { parts = parts, variants = math.floor(last.variants) }
  end
  while true do
    local rv = LuaDialog.Dialog("Segue: accompany selection", {
      { type = "entry", key = "parts", title = "Parts (comma-separated, e.g. bass,piano; empty: the model's default)",
        default = last.parts },
      { type = "number", key = "variants", title = "Variants", min = 1, max = 16, step = 1, digits = 0,
        default = last.variants },
    }):run()
    if not rv then
      return nil
    end
    local parts, why = core.normalise_parts(rv.parts or "")
    local variants = math.floor((tonumber(rv.variants) or 0) + 0.5)
    if parts and (variants < 1 or variants > 16) then
      parts, why = nil, "variants must be 1..16, got " .. tostring(rv.variants)
    end
    if parts then
      if memory then
        core.write_atomic(memory, core.json_encode({ parts = parts, variants = variants }) .. "\n")
      end
      return { parts = parts, variants = variants }
    end
    say("not that: " .. why)
    last = { parts = rv.parts or "", variants = math.max(1, math.min(16, variants)) }
  end
end

-- Import every placement waiting in WATCH/placed/ at its position, each on a new track named as Segue says.
-- `state` keeps the next number to look at between calls. Returns the list of imports done, as
-- {file=, sample=, track=, kind=}.
function segue.place_pending(editor, watch_dir, state)
  local done = {}
  for _, item in ipairs(core.pending_placements(watch_dir, state)) do
    local rec = item.record
    if item.error then
      print("Segue: skipping " .. item.path .. ": " .. tostring(item.error))
    elseif not core.file_exists(rec.file_path) then
      print("Segue: " .. rec.file_path .. " is gone; skipping it")
      core.mark_done(watch_dir, item)
    else
      local sample = segue.sample_at_beats(rec.position_beats)
      local before = {}
      for route in Session:get_routes():iter() do
        before[route:name()] = true
      end
      local files = C.StringVector()
      files:push_back(rec.file_path)
      local instrument = ARDOUR.PluginInfo()
      if rec.kind == "midi" then
        local synth = ARDOUR.LuaAPI.new_plugin_info("ACE Reasonable Synth", ARDOUR.PluginType.LV2)
        if synth and not synth:isnil() then
          instrument = synth
        end
      end
      editor:do_import(files, Editing.ImportDistinctFiles, Editing.ImportAsTrack, ARDOUR.SrcQuality.SrcBest,
        ARDOUR.MidiTrackNameSource.SMFTrackName, ARDOUR.MidiTempoMapDisposition.SMFTempoIgnore,
        Temporal.timepos_t(sample), instrument, ARDOUR.Track(), false)
      for route in Session:get_routes():iter() do
        if not before[route:name()] and rec.track_name and rec.track_name ~= "" then
          route:set_name(rec.track_name)
        end
      end
      core.mark_done(watch_dir, item)
      done[#done + 1] = { file = rec.file_path, sample = sample, track = rec.track_name, kind = rec.kind }
    end
  end
  return done
end

return segue
