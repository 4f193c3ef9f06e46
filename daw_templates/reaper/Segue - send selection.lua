-- @description Segue: send the time selection of the selected tracks to Segue
-- @about Renders the time selection of the selected tracks (through the master, as a WAV) and writes MIDI items'
--   notes as a .mid, then drops a request with the position, tempo and meter into Segue's watched folder
--   (`segue bridge --watch DIR`). See daw_templates/reaper/README.md.

-- Settings: the watched folder ($SEGUE_WATCH, else ~/Segue/watch) and what to ask for (nil: only the region).
local WATCH = nil
local GENERATE = { mode = "continue", bars = 4, variants = 2 }
-- Two or more selected tracks with audio in the time selection: send each track's audio as a stem too (Segue
-- continues them together and returns each beside the mix; each track is rendered once more). false: the mix only.
local STEMS = true
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
local path, region = segue.send_selection(watch, GENERATE and core.with_controls(GENERATE, CONTROLS), nil, STEMS)
if not path then
  segue.message("Nothing sent: " .. region, true)
  return
end
local names = {}
for _, stem in ipairs(region.stems or {}) do
  names[#names + 1] = stem.name
end
segue.message(string.format("sent %s%s (%.3f beats from beat %.3f, %.2f BPM, %d/%d) as %s",
  region.audio_path or region.midi_path, #names > 0 and (" with the stems " .. table.concat(names, ", ")) or "",
  region.length_beats, region.start_beats, region.tempo_bpm, region.meter_num, region.meter_den, path))
