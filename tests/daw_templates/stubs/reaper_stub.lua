-- reaper_stub.lua: a fake `reaper` (ReaScript API) for the tests, recording every call that changes something.
-- Before dofile'ing a Segue script, set SCRIPT (its path), CORE (segue_core.lua's path) and PROJECT:
--   { media_dir=, bpm=, num=, den=, selection={t0, t1}, cursor=, tracks={ {name=, selected=, items={...}} } }
-- An item is { pos=seconds, len=seconds, midi={ {qn=, len_qn=, pitch=, vel=, chan=, muted=} } } or
-- { pos=, len=, audio=true }. PROJECT.ext holds ExtState ({ ["Section/key"] = value }, persisted or not alike);
-- PROJECT.inputs the answers GetUserInputs gives, one per call (a string, or false: cancelled; none left: cancelled).
-- After the script, CALLS holds the calls; stub_report() prints them as JSON.
local core = dofile(CORE)
CALLS = {}
local function record(name, args) CALLS[#CALLS + 1] = { name = name, args = args } end
local P = PROJECT
local PPQ = 960
local guid = 0
local function new_guid() guid = guid + 1 return string.format("{GUID-%04d}", guid) end
for _, t in ipairs(P.tracks) do t.guid = t.guid or new_guid() end
P.render = P.render or { RENDER_FILE = "/old/dir", RENDER_PATTERN = "old", RENDER_FORMAT = "b2dnZw==" }
P.render_n = P.render_n or { RENDER_SETTINGS = 0, RENDER_BOUNDSFLAG = 1, RENDER_CHANNELS = 2, RENDER_SRATE = 44100 }

reaper = {}
function reaper.get_action_context() return true, SCRIPT, 0, 4242, 0, 0, 0 end
function reaper.GetProjectPath(buf) return P.media_dir end
function reaper.RecursiveCreateDirectory(dir, ignored) os.execute("mkdir -p '" .. dir .. "'") return 1 end
function reaper.ShowMessageBox(text, title, kind) record("ShowMessageBox", { text }) return 1 end
function reaper.ShowConsoleMsg(text) record("ShowConsoleMsg", { text }) end
function reaper.GetSet_LoopTimeRange2(proj, set, loop, s, e, allow)
  return P.selection[1], P.selection[2]
end
function reaper.TimeMap_GetTimeSigAtTime(proj, t) return P.num, P.den, P.bpm end
function reaper.TimeMap2_timeToQN(proj, t) return t * P.bpm / 60 end
function reaper.TimeMap2_QNToTime(proj, qn) return qn * 60 / P.bpm end
local function selected()
  local out = {}
  for _, t in ipairs(P.tracks) do if t.selected then out[#out + 1] = t end end
  return out
end
function reaper.CountSelectedTracks(proj) return #selected() end
function reaper.GetSelectedTrack(proj, i) return selected()[i + 1] end
function reaper.GetTrackName(track) return true, track.name end
function reaper.CountTracks(proj) return #P.tracks end
function reaper.GetTrack(proj, i) return P.tracks[i + 1] end
function reaper.GetTrackGUID(track) return track.guid end
function reaper.GetSetMediaTrackInfo_String(track, key, value, set)
  if set and key == "P_NAME" then track.name = value record("SetTrackName", { track.guid, value }) end
  return true, track.name
end
function reaper.CountTrackMediaItems(track) return #(track.items or {}) end
function reaper.GetTrackMediaItem(track, i) return track.items[i + 1] end
function reaper.GetMediaItemInfo_Value(item, key)
  if key == "D_POSITION" then return item.pos elseif key == "D_LENGTH" then return item.len end
  return 0
end
function reaper.GetActiveTake(item) return { item = item } end
function reaper.TakeIsMIDI(take) return take.item.midi ~= nil end
function reaper.MIDI_CountEvts(take) return true, #take.item.midi, 0, 0 end
local function item_qn(take) return take.item.pos * P.bpm / 60 end
function reaper.MIDI_GetNote(take, i)
  local n = take.item.midi[i + 1]
  local p0 = (n.qn - item_qn(take)) * PPQ
  return true, false, n.muted or false, p0, p0 + n.len_qn * PPQ, n.chan or 0, n.pitch, n.vel or 100
end
function reaper.MIDI_GetProjQNFromPPQPos(take, ppq) return item_qn(take) + ppq / PPQ end
function reaper.SetOnlyTrackSelected(track)
  for _, t in ipairs(P.tracks) do t.selected = (t == track) end
  record("SetOnlyTrackSelected", { track.name })
end
function reaper.SetTrackSelected(track, on)
  track.selected = on
  record("SetTrackSelected", { track.name, on })
end
function reaper.GetSetProjectInfo_String(proj, key, value, set)
  if set then P.render[key] = value record("SetProjectInfo_String", { key, value }) end
  return true, P.render[key] or ""
end
function reaper.GetSetProjectInfo(proj, key, value, set)
  if set then P.render_n[key] = value record("SetProjectInfo", { key, value }) end
  return P.render_n[key] or 0
end
function reaper.Main_OnCommand(cmd, flag)
  record("Main_OnCommand", { cmd })
  if cmd == 42230 and not P.render_fails then -- render: what the settings say, as REAPER would
    local t0, t1 = P.selection[1], P.selection[2]
    local rate = 48000
    local frames = math.floor((t1 - t0) * rate + 0.5)
    local path = core.join(P.render.RENDER_FILE, P.render.RENDER_PATTERN .. ".wav")
    local names = {}
    for _, t in ipairs(selected()) do names[#names + 1] = t.name end
    record("Rendered", { path, P.render.RENDER_FORMAT, P.render_n.RENDER_SETTINGS, P.render_n.RENDER_BOUNDSFLAG,
      table.concat(names, ",") })
    core.write_wav(path, rate, 2, frames, function(offset, count)
      local l, r = {}, {}
      for i = 1, count do l[i] = 0.25 r[i] = -0.25 end
      return { l, r }
    end)
  end
end
P.ext = P.ext or {}
P.inputs = P.inputs or {}
local asked = 0
function reaper.HasExtState(section, key) return P.ext[section .. "/" .. key] ~= nil end
function reaper.GetExtState(section, key) return P.ext[section .. "/" .. key] or "" end
function reaper.SetExtState(section, key, value, persist)
  P.ext[section .. "/" .. key] = value
  record("SetExtState", { section, key, value, persist })
end
function reaper.GetUserInputs(title, n, captions, defaults)
  record("GetUserInputs", { title, n, captions, defaults })
  asked = asked + 1
  local answer = P.inputs[asked]
  if not answer then return false, "" end
  return true, answer
end
function reaper.GetCursorPosition() return P.cursor or 0 end
function reaper.SetEditCurPos(t, view, play) P.cursor = t record("SetEditCurPos", { t }) end
function reaper.InsertMedia(file, mode)
  record("InsertMedia", { file, mode, P.cursor })
  P.tracks[#P.tracks + 1] = { name = "", guid = new_guid(), items = { { pos = P.cursor, len = 1, file = file } } }
  return 1
end
function reaper.Undo_BeginBlock() record("Undo_BeginBlock", {}) end
function reaper.Undo_EndBlock(name, flags) record("Undo_EndBlock", { name }) end
function reaper.PreventUIRefresh(n) end
function reaper.UpdateArrange() end

function stub_report()
  local tracks = {}
  for _, t in ipairs(P.tracks) do
    tracks[#tracks + 1] = { name = t.name, guid = t.guid, file = t.items and t.items[1] and t.items[1].file or "" }
  end
  print("REPORT " .. core.json_encode({ calls = CALLS, tracks = tracks, render = P.render, render_n = P.render_n,
    ext = P.ext }))
end
