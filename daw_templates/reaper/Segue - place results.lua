-- @description Segue: place results (insert the files Segue placed on new tracks at their positions)
-- @about Reads Segue's watched folder (placed/000001.json, ...) and inserts each file on a new track at the
--   position Segue gives, converted with the project's tempo map. One undo step. See README.md.

-- Settings: the watched folder given to `segue bridge --watch` ($SEGUE_WATCH, else ~/Segue/watch).
local WATCH = nil

local dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])") or ""
local core = dofile(dir .. "segue_core.lua")
local segue = dofile(dir .. "segue_reaper.lua")(core, reaper)

local watch = WATCH or core.default_watch_dir()
local done = segue.place_pending(watch, {})
if #done == 0 then
  segue.message("nothing new in " .. core.join(watch, "placed"))
end
for _, d in ipairs(done) do
  segue.message(string.format("placed %s at %.3f s on '%s'", d.file, d.seconds, d.track))
end
