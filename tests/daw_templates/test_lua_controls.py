"""The producer's controls in the Lua scripts (segue_core.lua, REAPER's and Ardour's send/accompany actions): the
script's CONTROLS settings become /segue/generate's key/value pairs (Ardour, OSC) or the watched-folder request's
generate keys (REAPER), and both reach the engine's GenerationParams through the bridge's real OSC table.
Stock lua5.4 with the DAW stubs; no DAW."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from fake_engine import write_midi_region
from lua_helpers import TEMPLATES, lua_string, run_lua
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from region_engine import RegionEngine
from test_ardour_scripts import STUB as ARDOUR_STUB
from test_ardour_scripts import _lua, _world
from test_reaper_scripts import STUB as REAPER_STUB
from test_reaper_scripts import _lua_table, _project

from bridge.osc import OscBridge
from bridge.service import BridgeService
from bridge.watch import WatchFolder

CORE = TEMPLATES / "reaper" / "segue_core.lua"
CONTROLS = (
    'local CONTROLS = { similarity = 0.3, keep_opening = false, part_density = "Bass=0.5, drums=2", hold_notes = true }'
)
EXPECTED = {"similarity": 0.3, "keep_opening": False, "part_density": (("bass", 0.5), ("drums", 2.0)),
            "hold_notes": True, "density": None, "end_on_tonic": None}  # fmt: skip


def _with_controls(script: Path, folder: Path) -> Path:
    """A copy of ``script`` in ``folder`` whose CONTROLS setting is :data:`CONTROLS`."""
    text = script.read_text(encoding="utf-8")
    changed, count = re.subn(r"local CONTROLS = \{.*?\n.*?\}\n", CONTROLS + "\n", text, count=1, flags=re.S)
    assert count == 1, f"no CONTROLS setting in {script}"
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / script.name
    copy.write_text(changed, encoding="utf-8")
    return copy


def _controls(params: Any) -> dict[str, Any]:
    return {name: getattr(params, name) for name in EXPECTED}


def _dispatch(bridge: OscBridge, address: str, types: str, args: list[Any]) -> None:
    builder = OscMessageBuilder(address=address)
    for kind, value in zip(types, args, strict=True):
        builder.add_arg(value, kind)
    bridge.dispatch(("127.0.0.1", 50_000), OscMessage(builder.build().dgram))


def test_the_core_turns_controls_into_key_value_pairs_after_parts_and_output(tmp_path: Path) -> None:
    out = run_lua(
        f"""local core = dofile({lua_string(str(CORE))})
local function show(g) local t, a = core.generate_args(g) print(core.json_encode({{ t = t or false, a = a }})) end
show({{ mode = "continue", bars = 4, variants = 2, similarity = 0.75, end_on_tonic = false }})
show({{ mode = "accompany", bars = 2, variants = 1, parts = "bass", density = 2, part_density = {{ piano = 0.5 }} }})
show({{ mode = "continue", bars = 4, variants = 2, keep_opening = true, hold_notes = true }})
show({{ mode = "continue", bars = 4, variants = 2, similarity = "close" }})
show({{ mode = "continue", bars = 4, variants = 2, hold_notes = 1 }})
show({{ mode = "continue", bars = 4, variants = 2, part_density = "bass:0.5" }})
show({{ mode = "continue", bars = 4, variants = 2, part_density = 0.5 }})
show(core.with_controls({{ mode = "continue", bars = 4, variants = 2, similarity = 0.5 }}, {{ similarity = 0.1,
  density = 1.5 }}))
""",
        tmp_path,
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0] == {"t": "siisssfsi", "a": ["continue", 4, 2, "", "auto", "similarity", 0.75, "end_on_tonic", 0]}
    assert rows[1] == {
        "t": "siisssfsf",
        "a": ["accompany", 2, 1, "bass", "auto", "density", 2.0, "density:piano", 0.5],
    }
    assert rows[2] == {"t": "siisssisi", "a": ["continue", 4, 2, "", "auto", "keep_opening", 1, "hold_notes", 1]}
    assert rows[3]["t"] is False and "similarity must be a number (or nil: Segue's default), got close" in rows[3]["a"]
    assert rows[4]["t"] is False and "hold_notes must be true or false" in rows[4]["a"]
    assert rows[5]["t"] is False and "part densities look like bass=0.5,piano=1.5" in rows[5]["a"]
    assert rows[6]["t"] is False and "part_density is a table {bass = 0.5} or text" in rows[6]["a"]
    assert rows[7]["a"][5:] == ["similarity", 0.5, "density", 1.5]  # the request's own value wins over CONTROLS


@pytest.mark.parametrize(
    ("generate", "expected"),
    [
        ('{ mode = "continue", bars = 4, variants = 2, similarity = 0.75, end_on_tonic = false }',
         {"similarity": 0.75, "end_on_tonic": False}),
        ('{ mode = "accompany", bars = 2, variants = 1, parts = "Bass", hold_notes = true, '
         'part_density = "bass=0.5" }', {"hold_notes": True, "part_density": (("bass", 0.5),), "parts": ("bass",)}),
        ('{ mode = "continue", bars = 4, variants = 2 }', {}),
    ],
)  # fmt: skip
def test_what_the_core_sends_is_what_the_engine_gets(tmp_path: Path, generate: str, expected: dict[str, Any]) -> None:
    out = run_lua(
        f"""local core = dofile({lua_string(str(CORE))})
local t, a = core.generate_args({generate})
print(core.json_encode({{ t = t, a = a }}))
print(core.json_encode(core.request({{ midi_path = "/r.mid", start_beats = 0, length_beats = 8, tempo_bpm = 120 }},
  {generate})))
""",
        tmp_path,
    )
    osc_form, request = (json.loads(line) for line in out.splitlines())
    engine = RegionEngine()
    service = BridgeService(engine, tmp_path / "jobs", place="none")
    service.start()
    bridge = OscBridge(service)
    errors: list[Any] = []
    bridge.attach(lambda to, address, args: errors.append(args) if address == "/segue/error" else None)
    region = tmp_path / "r.mid"
    try:
        write_midi_region(region)
        _dispatch(bridge, "/segue/region", "ssfffiis", ["", str(region), 0.0, 8.0, 120.0, 4, 4, "Keys"])
        _dispatch(bridge, "/segue/generate", osc_form["t"], osc_form["a"])  # as Ardour sends it
        folder = WatchFolder(service, tmp_path / "watch", poll_s=0.05)
        folder.start()
        try:
            request["midi_path"] = str(region)
            (folder.requests / "r.json.tmp").write_text(json.dumps(request))  # as REAPER drops it: then renamed
            (folder.requests / "r.json.tmp").rename(folder.requests / "r.json")
            deadline = time.monotonic() + 10
            while len(engine.requests) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            folder.close()
    finally:
        service.close()
    assert errors == [] and not list((tmp_path / "watch" / "requests" / "failed").glob("*"))
    assert len(engine.requests) == 2
    for seen in engine.requests:
        wanted = {**dict.fromkeys(EXPECTED), "part_density": (), **expected}
        wanted.pop("parts", None)
        assert _controls(seen.params) == wanted
        assert seen.params.parts == expected.get("parts", ())


def test_reaper_send_selection_drops_its_controls_into_the_request(tmp_path: Path) -> None:
    folder = tmp_path / "scripts"
    script = _with_controls(TEMPLATES / "reaper" / "Segue - send selection.lua", folder)
    for helper in ("segue_core.lua", "segue_reaper.lua"):
        shutil.copy(TEMPLATES / "reaper" / helper, folder / helper)
    watch = tmp_path / "watch"
    (watch / "requests").mkdir(parents=True)
    chunk = f"""
SCRIPT = {lua_string(str(script))}
CORE = {lua_string(str(folder / "segue_core.lua"))}
PROJECT = {_lua_table(_project(tmp_path))}
dofile({lua_string(str(REAPER_STUB))})
local getenv = os.getenv
os.getenv = function(k) if k == "SEGUE_WATCH" then return {lua_string(str(watch))} end return getenv(k) end
dofile(SCRIPT)
"""
    run_lua(chunk, tmp_path)
    (path,) = (watch / "requests").glob("*.json")
    generate = json.loads(path.read_text())["generate"]
    assert generate == {
        "mode": "continue",
        "bars": 4,
        "variants": 2,
        "similarity": 0.3,
        "keep_opening": False,
        "hold_notes": True,
        "density:bass": 0.5,
        "density:drums": 2.0,
    }


def test_the_shipped_scripts_leave_every_control_to_segue(tmp_path: Path) -> None:
    for script in (
        TEMPLATES / "reaper" / "Segue - send selection.lua",
        TEMPLATES / "reaper" / "Segue - accompany selection.lua",
        TEMPLATES / "ardour" / "segue_send.lua",
        TEMPLATES / "ardour" / "segue_accompany.lua",
    ):
        text = script.read_text(encoding="utf-8")
        setting = re.search(r"local CONTROLS = \{(.*?)\}\n", text, re.S)
        assert setting is not None, script
        assert set(re.findall(r"= (\w+)", setting.group(1))) == {"nil"}, script  # the engine's measured default


@pytest.mark.parametrize("script", ["segue_send.lua", "segue_accompany.lua"])
def test_ardour_sends_its_controls_as_osc_key_value_pairs(tmp_path: Path, script: str) -> None:
    copy = _with_controls(TEMPLATES / "ardour" / script, tmp_path / "scripts")
    world = _world(tmp_path, selection={"regions": [["Keys", 1]]}, dialogs=[{"parts": "bass", "variants": 1.0}])
    chunk = f"""
CORE = {lua_string(str(CORE))}
WORLD = {_lua(world)}
dofile({lua_string(str(ARDOUR_STUB))})
local getenv = os.getenv
os.getenv = function(k)
  if k == "SEGUE_OSC" then return "osc.udp://127.0.0.1:9750" end
  return getenv(k)
end
dofile({lua_string(str(copy))})
factory({{}})()
stub_report()
"""
    out = run_lua(chunk, tmp_path)
    report = json.loads(next(line for line in out.splitlines() if line.startswith("REPORT "))[len("REPORT ") :])
    (generate,) = [c["args"] for c in report["calls"] if c["name"] == "osc" and c["args"][1] == "/segue/generate"]
    types, args = generate[2], generate[3]
    mode = "continue" if script == "segue_send.lua" else "accompany"
    assert types == "siisssfsisisfsf"
    assert args[0] == mode and args[3:] == [
        "" if mode == "continue" else "bass", "auto",
        "similarity", 0.3, "keep_opening", 0, "hold_notes", 1, "density:bass", 0.5, "density:drums", 2.0,
    ]  # fmt: skip
