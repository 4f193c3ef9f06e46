-- @description Segue: auto-place results (toggle; every second, insert what Segue placed)
-- @about Runs in the background (REAPER's defer loop): every second it does what "Segue - place results" does.
--   Run it again to stop it (REAPER asks whether to terminate the running instance).

-- Settings: the watched folder ($SEGUE_WATCH, else ~/Segue/watch) and the seconds between looks.
local WATCH = nil
local EVERY_S = 1.0

local dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])") or ""
local core = dofile(dir .. "segue_core.lua")
local segue = dofile(dir .. "segue_reaper.lua")(core, reaper)

local watch = WATCH or core.default_watch_dir()
local state = {}
local last = -math.huge
local _, _, section, command = reaper.get_action_context()
reaper.SetToggleCommandState(section, command, 1)
reaper.RefreshToolbar2(section, command)
reaper.atexit(function()
  reaper.SetToggleCommandState(section, command, 0)
  reaper.RefreshToolbar2(section, command)
end)

local function loop()
  local now = reaper.time_precise()
  if now - last >= EVERY_S then
    last = now
    for _, d in ipairs(segue.place_pending(watch, state)) do
      segue.message(string.format("placed %s at %.3f s on '%s'", d.file, d.seconds, d.track))
    end
  end
  reaper.defer(loop)
end
segue.message("auto-place is on: watching " .. core.join(watch, "placed"))
loop()
