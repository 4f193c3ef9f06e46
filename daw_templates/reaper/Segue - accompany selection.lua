-- @description Segue: accompany selection (new parts under the time selection of the selected tracks)
-- @about Asks which parts to write (e.g. bass,piano) and how many variants, remembering your answer, then sends
--   the time selection like "Segue - send selection" does, asking Segue for accompaniments instead of a
--   continuation. They come back (with "Segue - place results") at the selection's start, on new tracks.
--   See daw_templates/reaper/README.md.

-- Settings: the watched folder ($SEGUE_WATCH, else ~/Segue/watch), and what the dialog offers the first time
-- (afterwards it offers what you chose last; REAPER keeps it in reaper-extstate.ini, section "Segue").
local WATCH = nil
local ACCOMPANY = { parts = "bass,piano", variants = 2 }
-- The producer's controls (left nil: Segue's measured default; Segue checks the ranges): similarity 0..1
-- (1 = stay close to the region, 0 = free), keep_opening = true/false (audio: open with the region's first bar),
-- density 0.25..4 (MIDI notes per bar as a factor of the region's) and part_density = { bass = 0.5 } per part,
-- hold_notes = true/false (keep the region's note lengths), end_on_tonic = true/false (a cadence in the last bar).
local CONTROLS = { similarity = nil, keep_opening = nil, density = nil, part_density = nil, hold_notes = nil,
  end_on_tonic = nil }

local dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])") or ""
local core = dofile(dir .. "segue_core.lua")
local segue = dofile(dir .. "segue_reaper.lua")(core, reaper)

local watch = WATCH or core.default_watch_dir()
local choice = segue.ask_accompany(ACCOMPANY)
if not choice then
  segue.message("accompany: cancelled, nothing sent")
  return
end
local path, region = segue.send_selection(watch, function(r)
  local generate = { mode = "accompany", bars = core.bars_of(r), variants = choice.variants, parts = choice.parts }
  return core.with_controls(generate, CONTROLS)
end)
if not path then
  segue.message("Nothing sent: " .. region, true)
  return
end
segue.message(string.format("asked for %d accompaniment(s) with %s of %s (%.3f beats from beat %.3f, %.2f BPM, " ..
  "%d/%d) as %s; they come back at beat %.3f", choice.variants,
  choice.parts == "" and "the model's default parts" or choice.parts, region.audio_path or region.midi_path,
  region.length_beats, region.start_beats, region.tempo_bpm, region.meter_num, region.meter_den, path,
  region.start_beats))
