"""The "accompany selection" actions of the DAW scripts: each asks Segue for ``/segue/generate accompany`` with the
parts the producer chose, through the same hand-off as its "send selection / continue" action, and handles bad
parts input (normalised, or refused with a message).

- the parts rules, one table of cases for the three implementations (segue_core.lua, the Live script's Python,
  the Bitwig script's JS), every accepted answer also accepted by the engine's own check (GenerationParams);
- REAPER's "Segue - accompany selection.lua" under the ReaScript stub: the dialog, ExtState, the request, and the
  bridge's real watched folder taking it (the engine gets mode accompany and the parts);
- Ardour's segue_accompany.lua under the Ardour stub: LuaDialog, the remembered answer, the OSC messages.
The Live and Bitwig actions are tested in test_live_script.py and test_bitwig_script.py (same style as their
continue action), with this module's PARTS_CASES.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from lua_helpers import TEMPLATES, lua_string, run_lua
from region_engine import RegionEngine
from test_ardour_scripts import _world
from test_ardour_scripts import run as run_ardour
from test_reaper_scripts import _calls, _project, run_script

from bridge.service import BridgeService
from bridge.watch import WatchFolder
from engine.api import GenerationParams

CORE = TEMPLATES / "reaper" / "segue_core.lua"

# (typed, normalised or None: refused, what the refusal says)
PARTS_CASES: list[tuple[str, str | None, str]] = [
    ("bass,piano", "bass,piano", ""),
    (" Bass , PIANO ", "bass,piano", ""),
    ("SOPRANO,Alto,tenor,bass,piano", "soprano,alto,tenor,bass,piano", ""),
    ("", "", ""),
    ("   ", "", ""),
    ("bass,,piano,", "bass,piano", ""),
    ("string-pad_2", "string-pad_2", ""),
    ("double bass", None, "'double bass' is not a part name"),
    ("bass;piano", None, "'bass;piano' is not a part name"),
    ("2nd", None, "'2nd' is not a part name"),
    ("bässe", None, "is not a part name"),
    ("x" * 33, None, "is not a part name"),
    ("bass,Bass", None, "'bass' is given twice"),
    ("a,b,c,d,e,f,g,h,i", None, "at most 8 parts, got 9"),
]


def check_parts(results: list[tuple[str | None, str]]) -> None:
    """``results`` (normalised or None, message) as PARTS_CASES says; what is accepted, the engine accepts too."""
    assert len(results) == len(PARTS_CASES)
    for (typed, expected, says), (got, why) in zip(PARTS_CASES, results, strict=True):
        assert got == expected, (typed, got, why)
        if expected is None:
            assert says in why, (typed, why)
        elif expected:
            GenerationParams(mode="accompany", parts=tuple(expected.split(",")))  # raises if the engine refuses


def test_the_lua_core_normalises_or_refuses_parts(tmp_path: Path) -> None:
    cases = "{" + ", ".join(lua_string(typed) for typed, _, _ in PARTS_CASES) + "}"
    out = run_lua(
        f"""local core = dofile({lua_string(str(CORE))})
for _, typed in ipairs({cases}) do
  local got, why = core.normalise_parts(typed)
  print(core.json_encode({{ got = got or false, why = why or "" }}))
end
""",
        tmp_path,
    )
    rows = [json.loads(line) for line in out.splitlines()]
    check_parts([(row["got"] if row["got"] is not False else None, row["why"]) for row in rows])


def test_the_lua_core_generate_arguments(tmp_path: Path) -> None:
    out = run_lua(
        f"""local core = dofile({lua_string(str(CORE))})
local function show(g) local t, a = core.generate_args(g) print(core.json_encode({{ t = t or false, a = a }})) end
show({{ mode = "continue", bars = 4, variants = 2 }})
show({{ mode = "accompany", bars = 2, variants = 3, parts = " Bass,PIANO" }})
show({{ mode = "accompany", bars = 2, variants = 3, parts = "" }})
show({{ mode = "continue", bars = 4, variants = 2, parts = "bass" }})
show({{ mode = "accompany", bars = 2, variants = 3, parts = "double bass" }})
show({{ mode = "remix", bars = 2, variants = 3 }})
show({{ mode = "accompany", bars = 2, variants = 17 }})
print(core.bars_of({{ length_beats = 6, meter_num = 3, meter_den = 4 }}), core.bars_of({{ length_beats = 6.5 }}),
  core.bars_of({{ length_beats = 0.5 }}), core.bars_of({{ length_beats = 1000 }}))
""",
        tmp_path,
    )
    lines = out.splitlines()
    rows = [json.loads(line) for line in lines[:-1]]
    assert rows[0] == {"t": "sii", "a": ["continue", 4, 2]}
    assert rows[1] == {"t": "siis", "a": ["accompany", 2, 3, "bass,piano"]}
    assert rows[2] == {"t": "sii", "a": ["accompany", 2, 3]}  # "": the model's default set, the 3-argument form
    assert rows[3]["t"] is False and "only for accompany" in rows[3]["a"]
    assert rows[4]["t"] is False and "'double bass' is not a part name" in rows[4]["a"]
    assert rows[5]["t"] is False and "continue or accompany" in rows[5]["a"]
    assert rows[6]["t"] is False and "variants must be 1..16" in rows[6]["a"]
    assert lines[-1].split("\t") == ["2", "2", "1", "64"]


# -- REAPER ---------------------------------------------------------------------------------------------------

ACCOMPANY = "Segue - accompany selection.lua"


def _request(watch: Path) -> dict[str, Any]:
    (path,) = sorted((watch / "requests").glob("*.json"))
    request: dict[str, Any] = json.loads(path.read_text())
    return request


def _watch(tmp_path: Path) -> Path:
    watch = tmp_path / "watch"
    (watch / "requests").mkdir(parents=True)
    return watch


def test_reaper_accompany_asks_for_parts_and_drops_an_accompany_request(tmp_path: Path) -> None:
    watch = _watch(tmp_path)
    report = run_script(ACCOMPANY, _project(tmp_path, inputs=[" Bass, PIANO |3"]), watch, tmp_path)
    assert not _calls(report, "ShowMessageBox"), report["calls"]
    ((title, count, captions, defaults),) = _calls(report, "GetUserInputs")
    assert (title, count, defaults) == ("Segue: accompany selection", 2, "bass,piano|2")  # the script's defaults
    assert captions.endswith(",separator=|") and captions.count(",") == 3  # 2 captions + 2 settings
    request = _request(watch)
    # the region as "send selection" sends it (quarter notes 6..12 of a 3/4 project: 2 bars), asking to accompany
    assert (request["start_beats"], request["length_beats"], request["track"]) == (6.0, 6.0, "Bass")
    assert request["generate"] == {"mode": "accompany", "bars": 2, "variants": 3, "parts": "bass,piano"}
    assert len(_calls(report, "Rendered")) == 1 and request["midi_path"].endswith(".mid")
    assert _calls(report, "SetExtState") == [
        ["Segue", "accompany_parts", "bass,piano", True],
        ["Segue", "accompany_variants", "3", True],
    ]
    said = _calls(report, "ShowConsoleMsg")[-1][0]
    assert "3 accompaniment(s) with bass,piano" in said and "come back at beat 6.000" in said


def test_reaper_accompany_offers_what_was_chosen_last(tmp_path: Path) -> None:
    watch = _watch(tmp_path)
    ext = {"Segue/accompany_parts": "soprano,alto", "Segue/accompany_variants": "4"}
    report = run_script(ACCOMPANY, _project(tmp_path, ext=ext, inputs=["soprano,alto|4"]), watch, tmp_path)
    assert _calls(report, "GetUserInputs")[0][3] == "soprano,alto|4"
    assert _request(watch)["generate"]["parts"] == "soprano,alto"


def test_reaper_accompany_with_empty_parts_asks_for_the_models_default(tmp_path: Path) -> None:
    watch = _watch(tmp_path)
    report = run_script(ACCOMPANY, _project(tmp_path, inputs=["  |1"]), watch, tmp_path)
    assert not _calls(report, "ShowMessageBox")
    assert _request(watch)["generate"] == {"mode": "accompany", "bars": 2, "variants": 1}  # no parts: the default
    assert report["ext"]["Segue/accompany_parts"] == ""  # remembered as empty, offered as empty next time


@pytest.mark.parametrize(
    ("typed", "says", "asked_again_with"),
    [
        ("double bass|2", "'double bass' is not a part name", "double bass|2"),
        ("bass,BASS|2", "'bass' is given twice", "bass,BASS|2"),
        ("bass|piano|2", "separate the parts with commas", "bass,piano|2"),
        ("bass|0", "variants must be a whole number from 1 to 16, got '0'", "bass|0"),
        ("bass|two", "got 'two'", "bass|two"),
    ],
)
def test_reaper_accompany_refuses_bad_input_and_asks_again(
    tmp_path: Path, typed: str, says: str, asked_again_with: str
) -> None:
    watch = _watch(tmp_path)
    report = run_script(ACCOMPANY, _project(tmp_path, inputs=[typed, "bass|2"]), watch, tmp_path)
    boxes = _calls(report, "ShowMessageBox")
    assert len(boxes) == 1 and says in boxes[0][0], boxes
    assert [c[3] for c in _calls(report, "GetUserInputs")] == ["bass,piano|2", asked_again_with]
    assert _request(watch)["generate"] == {"mode": "accompany", "bars": 2, "variants": 2, "parts": "bass"}
    assert [c[2] for c in _calls(report, "SetExtState")] == ["bass", "2"]  # only the valid answer is kept


def test_reaper_accompany_cancelled_sends_and_renders_nothing(tmp_path: Path) -> None:
    watch = _watch(tmp_path)
    report = run_script(ACCOMPANY, _project(tmp_path, inputs=["double bass|2"]), watch, tmp_path)  # then cancel
    assert not list((watch / "requests").glob("*.json"))
    assert not _calls(report, "Rendered") and not _calls(report, "SetExtState")
    assert "cancelled" in _calls(report, "ShowConsoleMsg")[-1][0]


def test_reaper_accompany_without_a_selection_says_so_after_the_dialog(tmp_path: Path) -> None:
    watch = _watch(tmp_path)
    report = run_script(ACCOMPANY, _project(tmp_path, selection=[3.0, 3.0], inputs=["bass|2"]), watch, tmp_path)
    boxes = _calls(report, "ShowMessageBox")
    assert len(boxes) == 1 and "make a time selection first" in boxes[0][0]
    assert not list((watch / "requests").glob("*.json"))


def test_reaper_accompany_request_reaches_the_engine_through_the_watched_folder(tmp_path: Path) -> None:
    engine = RegionEngine()
    service = BridgeService(engine, tmp_path / "jobs", place="none")
    service.start()
    folder = WatchFolder(service, tmp_path / "watch", poll_s=0.05)
    folder.start()
    try:
        run_script(ACCOMPANY, _project(tmp_path, inputs=["Piano , bass|2"]), folder.folder, tmp_path)
        deadline = time.monotonic() + 10
        while not engine.requests and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        folder.close()
        service.close()
    assert not list(folder.requests.glob("failed/*")), list(folder.requests.rglob("*"))
    (request,) = engine.requests
    assert (request.params.mode, request.params.parts, request.params.variants) == ("accompany", ("piano", "bass"), 2)
    assert (request.prompt.start_beats, request.prompt.length_beats) == (6.0, 6.0)


# -- Ardour ---------------------------------------------------------------------------------------------------

KEYS = {"regions": [["Keys", 1]]}  # the MIDI region: 8 beats at beat 4, 4/4 (2 bars)


def _memory(tmp_path: Path) -> Path:
    return tmp_path / "session" / "export" / "segue-accompany.json"


def test_ardour_accompany_asks_in_a_dialog_and_sends_accompany_over_osc(tmp_path: Path) -> None:
    world = _world(tmp_path, selection=KEYS, dialogs=[{"parts": " Bass , PIANO ", "variants": 3.0}])
    report = run_ardour("segue_accompany.lua", world, tmp_path)
    ((title, fields),) = [c["args"] for c in report["calls"] if c["name"] == "dialog"]
    assert title == "Segue: accompany selection"
    assert fields == [["entry", "parts", "bass,piano", -1, -1], ["number", "variants", 2, 1, 16]]
    osc = [c["args"] for c in report["calls"] if c["name"] == "osc"]
    assert [(m[1], m[2]) for m in osc] == [("/segue/region", "ssfffiis"), ("/segue/generate", "siis")]
    assert osc[0][3][2:4] == [4.0, 8.0] and osc[0][3][7] == "Keys"
    assert osc[1][3] == ["accompany", 2, 3, "bass,piano"]
    assert json.loads(_memory(tmp_path).read_text()) == {"parts": "bass,piano", "variants": 3}
    assert "come back at beat 4.000" in report["stdout"]
    again = run_ardour("segue_accompany.lua", dict(world, dialogs=[False]), tmp_path)  # offered, then cancelled
    assert [c["args"][1][0][2] for c in again["calls"] if c["name"] == "dialog"] == ["bass,piano"]
    assert [c["args"][1][1][2] for c in again["calls"] if c["name"] == "dialog"] == [3]
    assert not [c for c in again["calls"] if c["name"] == "osc"] and "cancelled" in again["stdout"]


def test_ardour_accompany_refuses_bad_parts_and_asks_again_as_typed(tmp_path: Path) -> None:
    dialogs = [{"parts": "Double Bass", "variants": 2.0}, {"parts": "", "variants": 1.0}]
    report = run_ardour("segue_accompany.lua", _world(tmp_path, selection=KEYS, dialogs=dialogs), tmp_path)
    messages = [c["args"][1] for c in report["calls"] if c["name"] == "message"]
    assert len(messages) == 1 and "'double bass' is not a part name" in messages[0]
    shown = [c["args"][1][0][2] for c in report["calls"] if c["name"] == "dialog"]
    assert shown == ["bass,piano", "Double Bass"]
    osc = [c["args"] for c in report["calls"] if c["name"] == "osc"]
    assert osc[1][2:] == ["sii", ["accompany", 2, 1]]  # empty parts: the model's default set
    assert json.loads(_memory(tmp_path).read_text()) == {"parts": "", "variants": 1}


def test_ardour_accompany_without_a_dialog_uses_the_remembered_answer(tmp_path: Path) -> None:
    world = _world(tmp_path, selection=KEYS)  # no LuaDialog: a headless Ardour
    _memory(tmp_path).write_text(json.dumps({"parts": "tenor", "variants": 1}))
    report = run_ardour("segue_accompany.lua", world, tmp_path)
    osc = [c["args"] for c in report["calls"] if c["name"] == "osc"]
    assert osc[1][2:] == ["siis", ["accompany", 2, 1, "tenor"]]
    assert "no dialog here; accompanying with tenor" in report["stdout"]


def test_ardour_accompany_with_nothing_selected_sends_nothing(tmp_path: Path) -> None:
    world = _world(tmp_path, dialogs=[{"parts": "bass", "variants": 2.0}])
    report = run_ardour("segue_accompany.lua", world, tmp_path)
    assert not [c for c in report["calls"] if c["name"] == "osc"]
    assert "Segue: nothing sent: select a region, or a time range" in report["stdout"]
