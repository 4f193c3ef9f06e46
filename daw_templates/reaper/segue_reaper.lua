-- segue_reaper.lua: what Segue's REAPER scripts do with the ReaScript API (REAPER 6.x/7.x).
-- Loaded by the "Segue - ..." scripts: `local segue = dofile(dir .. "segue_reaper.lua")(core, reaper)`.
-- The functions take `reaper` as an argument, so tests/daw_templates runs them under a stock Lua with a stub.
return function(core, reaper)
  local segue = {}

  -- A WAV 24-bit render format ("evaw", 24 bits), as REAPER stores it base64-encoded in RENDER_FORMAT.
  segue.RENDER_FORMAT_WAV = "ZXZhdxgAAQ=="
  segue.RENDER_SELECTED_TRACKS_VIA_MASTER = 128
  segue.RENDER_BOUNDS_TIME_SELECTION = 2
  segue.CMD_RENDER_LAST_SETTINGS = 42230 -- File: Render project, using the most recent render settings, auto-close

  function segue.message(text, is_error)
    if is_error then
      reaper.ShowMessageBox(text, "Segue", 0)
    else
      reaper.ShowConsoleMsg("Segue: " .. text .. "\n")
    end
  end

  -- The folder Segue's files for this project go in: <project media folder>/Segue (created).
  function segue.out_dir()
    local dir = core.join(reaper.GetProjectPath(""), "Segue")
    reaper.RecursiveCreateDirectory(dir, 0)
    return dir
  end

  local function selected_tracks()
    local tracks = {}
    for i = 0, reaper.CountSelectedTracks(0) - 1 do
      tracks[#tracks + 1] = reaper.GetSelectedTrack(0, i)
    end
    return tracks
  end

  -- Items of `track` that overlap [t0, t1), split into MIDI takes and audio items.
  local function items_in(track, t0, t1)
    local midi, audio = {}, {}
    for i = 0, reaper.CountTrackMediaItems(track) - 1 do
      local item = reaper.GetTrackMediaItem(track, i)
      local pos = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
      local len = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
      if pos < t1 and pos + len > t0 then
        local take = reaper.GetActiveTake(item)
        if take and reaper.TakeIsMIDI(take) then
          midi[#midi + 1] = take
        elseif take then
          audio[#audio + 1] = item
        end
      end
    end
    return midi, audio
  end

  -- The notes of MIDI takes between quarter notes qn0 and qn1, from qn0.
  function segue.notes(takes, qn0, qn1)
    local notes = {}
    for _, take in ipairs(takes) do
      local _, count = reaper.MIDI_CountEvts(take)
      for i = 0, count - 1 do
        local ok, _, muted, p0, p1, chan, pitch, vel = reaper.MIDI_GetNote(take, i)
        if ok and not muted then
          local a = reaper.MIDI_GetProjQNFromPPQPos(take, p0)
          local b = reaper.MIDI_GetProjQNFromPPQPos(take, p1)
          if a >= qn0 - 1e-9 and a < qn1 then
            notes[#notes + 1] = { start_beats = a - qn0, length_beats = math.max(b - a, 1 / 480), pitch = pitch,
              velocity = vel, channel = chan }
          end
        end
      end
    end
    return notes
  end

  -- Render the time selection of the selected tracks (through the master, one stereo WAV), leaving the
  -- project's render settings as they were. Returns the file, or nil and why.
  function segue.render(dir, name)
    local keys_s = { "RENDER_FILE", "RENDER_PATTERN", "RENDER_FORMAT" }
    local keys_n = { "RENDER_SETTINGS", "RENDER_BOUNDSFLAG", "RENDER_CHANNELS", "RENDER_SRATE" }
    local saved_s, saved_n = {}, {}
    for _, k in ipairs(keys_s) do
      local _, v = reaper.GetSetProjectInfo_String(0, k, "", false)
      saved_s[k] = v
    end
    for _, k in ipairs(keys_n) do
      saved_n[k] = reaper.GetSetProjectInfo(0, k, 0, false)
    end
    reaper.GetSetProjectInfo_String(0, "RENDER_FILE", dir, true)
    reaper.GetSetProjectInfo_String(0, "RENDER_PATTERN", name, true)
    reaper.GetSetProjectInfo_String(0, "RENDER_FORMAT", segue.RENDER_FORMAT_WAV, true)
    reaper.GetSetProjectInfo(0, "RENDER_SETTINGS", segue.RENDER_SELECTED_TRACKS_VIA_MASTER, true)
    reaper.GetSetProjectInfo(0, "RENDER_BOUNDSFLAG", segue.RENDER_BOUNDS_TIME_SELECTION, true)
    reaper.GetSetProjectInfo(0, "RENDER_CHANNELS", 2, true)
    reaper.GetSetProjectInfo(0, "RENDER_SRATE", 0, true) -- the project's rate
    reaper.Main_OnCommand(segue.CMD_RENDER_LAST_SETTINGS, 0)
    for _, k in ipairs(keys_s) do
      reaper.GetSetProjectInfo_String(0, k, saved_s[k], true)
    end
    for _, k in ipairs(keys_n) do
      reaper.GetSetProjectInfo(0, k, saved_n[k], true)
    end
    local path = core.join(dir, name .. ".wav")
    if not core.file_exists(path) then
      return nil, "REAPER did not render " .. path .. " (is the render queue busy, or the disk full?)"
    end
    return path
  end

  -- Each of `tracks` rendered alone (the others deselected, then the selection put back) as `name`-<stem>.wav:
  -- the region's stems, { {name=, path=}... }, named after the tracks (core.stem_name). nil and why otherwise.
  function segue.render_stems(dir, name, tracks)
    local stems, taken, problem = {}, {}, nil
    for i, track in ipairs(tracks) do
      local _, track_name = reaper.GetTrackName(track)
      local stem = core.stem_name(track_name, taken, i)
      reaper.SetOnlyTrackSelected(track)
      local path, err = segue.render(dir, name .. "-" .. stem)
      if not path then
        problem = err
        break
      end
      stems[#stems + 1] = { name = stem, path = path }
    end
    return stems, problem
  end

  -- The time selection on the selected tracks as a Segue region (audio rendered, MIDI notes written). With
  -- `stems` and two or more selected tracks with audio there, each of those tracks is also rendered alone and sent
  -- as a stem of the region (region.stems), so Segue continues them together and returns each beside the mix.
  function segue.region_of_selection(stamp, stems)
    local t0, t1 = reaper.GetSet_LoopTimeRange2(0, false, false, 0, 0, false)
    if not (t1 > t0) then
      return nil, "make a time selection first (the region to continue)"
    end
    local tracks = selected_tracks()
    if #tracks == 0 then
      return nil, "select the track(s) to send first"
    end
    local _, track_name = reaper.GetTrackName(tracks[1])
    local num, den, bpm = reaper.TimeMap_GetTimeSigAtTime(0, t0)
    local qn0, qn1 = reaper.TimeMap2_timeToQN(0, t0), reaper.TimeMap2_timeToQN(0, t1)
    local region = {
      start_beats = qn0, length_beats = qn1 - qn0, tempo_bpm = bpm, meter_num = num, meter_den = den,
      track = track_name,
    }
    local takes, has_audio, audio_tracks = {}, false, {}
    for _, track in ipairs(tracks) do
      local midi, audio = items_in(track, t0, t1)
      for _, take in ipairs(midi) do
        takes[#takes + 1] = take
      end
      has_audio = has_audio or #audio > 0
      if #audio > 0 then
        audio_tracks[#audio_tracks + 1] = track
      end
    end
    if stems and #audio_tracks > core.MAX_STEMS then
      return nil, string.format("at most %d tracks' audio (stems) per region, got %d: select fewer tracks",
        core.MAX_STEMS, #audio_tracks)
    end
    local dir = segue.out_dir()
    local name = string.format("segue-%s-%s", (track_name:gsub("[^%w%-]+", "-")), stamp or os.date("%Y%m%d-%H%M%S"))
    if #takes > 0 then
      region.midi_path = core.join(dir, name .. ".mid")
      local ok, err = core.write_smf(region.midi_path, segue.notes(takes, qn0, qn1), bpm, num, den, qn1 - qn0)
      if not ok then
        return nil, "cannot write " .. region.midi_path .. ": " .. tostring(err)
      end
    end
    if stems and #audio_tracks >= 2 then
      local rendered, err = segue.render_stems(dir, name, audio_tracks)
      for _, track in ipairs(tracks) do -- the producer's selection back, whatever happened
        reaper.SetTrackSelected(track, true)
      end
      if err then
        return nil, err
      end
      region.stems = rendered
    end
    if has_audio then
      local path, err = segue.render(dir, name)
      if not path then
        return nil, err
      end
      region.audio_path = path
    end
    if not region.midi_path and not region.audio_path then
      return nil, "the selected tracks have no items in the time selection"
    end
    return region
  end

  -- Send the time selection of the selected tracks: the region (rendered, notes written; with `stems`, each track's
  -- audio as a stem too) and a request asking for `generate` ({mode=, bars=, variants=, parts=}, or a function of
  -- the region returning it) dropped into the watched folder. Returns the request's path and the region, or nil
  -- and why. What both send scripts do.
  function segue.send_selection(watch_dir, generate, stamp, stems)
    local region, why = segue.region_of_selection(stamp, stems)
    if not region then
      return nil, why
    end
    if type(generate) == "function" then
      generate = generate(region)
    end
    local req, err = core.request(region, generate)
    if not req then
      return nil, err
    end
    local path, derr = core.drop_request(watch_dir, req)
    if not path then
      return nil, derr
    end
    return path, region, req
  end

  segue.EXT_SECTION = "Segue" -- REAPER's ExtState section (reaper-extstate.ini) for what the dialogs remember
  segue.MAX_VARIANTS = 16

  -- Ask which parts to write and how many variants (REAPER's GetUserInputs; "|" separates its fields, since the
  -- parts hold commas), starting from what was used last (ExtState, kept across restarts), else `defaults`
  -- ({parts=, variants=}). Input Segue would refuse is said and asked again, as typed; nothing is remembered
  -- until it is valid. Returns {parts=normalised, variants=n}, or nil when the dialog is cancelled.
  function segue.ask_accompany(defaults)
    local function remembered(key, fallback)
      if reaper.HasExtState(segue.EXT_SECTION, key) then
        return reaper.GetExtState(segue.EXT_SECTION, key)
      end
      return tostring(fallback)
    end
    local parts = remembered("accompany_parts", defaults.parts or "")
    local variants = remembered("accompany_variants", defaults.variants or 2)
    while true do
      local ok, answer = reaper.GetUserInputs("Segue: accompany selection", 2,
        "Parts (comma-separated; empty: the model's default),Variants (1-" .. segue.MAX_VARIANTS ..
        "),extrawidth=160,separator=|", parts .. "|" .. variants)
      if not ok then
        return nil
      end
      local fields = {}
      for field in (answer .. "|"):gmatch("([^|]*)|") do
        fields[#fields + 1] = field
      end
      variants = (table.remove(fields) or ""):match("^%s*(.-)%s*$")
      parts = table.concat(fields, ",") -- a "|" typed in the parts split them: put a comma back
      local n = tonumber(variants)
      local clean, why = core.normalise_parts(parts)
      if #fields ~= 1 then
        clean, why = nil, "separate the parts with commas (e.g. bass,piano), not '|'"
      elseif clean and not (n and n == math.floor(n) and n >= 1 and n <= segue.MAX_VARIANTS) then
        clean, why = nil, "variants must be a whole number from 1 to " .. segue.MAX_VARIANTS .. ", got '" ..
          variants .. "'"
      end
      if clean then
        reaper.SetExtState(segue.EXT_SECTION, "accompany_parts", clean, true)
        reaper.SetExtState(segue.EXT_SECTION, "accompany_variants", tostring(math.floor(n)), true)
        return { parts = clean, variants = math.floor(n) }
      end
      segue.message("Not that: " .. why, true)
    end
  end

  -- Insert `file` at `seconds` on a new track named `name`; returns the new track (or nil).
  function segue.insert(file, seconds, name)
    local before = {}
    for i = 0, reaper.CountTracks(0) - 1 do
      before[reaper.GetTrackGUID(reaper.GetTrack(0, i))] = true
    end
    local cursor = reaper.GetCursorPosition()
    reaper.SetEditCurPos(seconds, false, false)
    reaper.InsertMedia(file, 1) -- 1: on a new track
    reaper.SetEditCurPos(cursor, false, false)
    for i = 0, reaper.CountTracks(0) - 1 do
      local track = reaper.GetTrack(0, i)
      if not before[reaper.GetTrackGUID(track)] then
        reaper.GetSetMediaTrackInfo_String(track, "P_NAME", name, true)
        return track
      end
    end
    return nil
  end

  -- Insert every placement waiting in WATCH/placed/, each at its position (quarter notes -> REAPER's time,
  -- through the project's tempo map). Returns what was placed: {file=, seconds=, track=, kind=}.
  function segue.place_pending(watch_dir, state)
    local items = core.pending_placements(watch_dir, state)
    if #items == 0 then
      return {}
    end
    local done = {}
    reaper.Undo_BeginBlock()
    reaper.PreventUIRefresh(1)
    for _, item in ipairs(items) do
      local rec = item.record
      if item.error then
        reaper.ShowConsoleMsg("Segue: skipping " .. item.path .. ": " .. tostring(item.error) .. "\n")
      elseif not core.file_exists(rec.file_path) then
        reaper.ShowConsoleMsg("Segue: " .. rec.file_path .. " is gone; skipping it\n")
        core.mark_done(watch_dir, item)
      else
        local seconds = reaper.TimeMap2_QNToTime(0, rec.position_beats)
        segue.insert(rec.file_path, seconds, rec.track_name or "Segue")
        core.mark_done(watch_dir, item)
        done[#done + 1] = { file = rec.file_path, seconds = seconds, track = rec.track_name, kind = rec.kind }
      end
    end
    reaper.PreventUIRefresh(-1)
    reaper.UpdateArrange()
    reaper.Undo_EndBlock("Segue: place results", -1)
    return done
  end

  return segue
end
