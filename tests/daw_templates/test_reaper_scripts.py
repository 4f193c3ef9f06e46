"""The REAPER scripts under a stock Lua with a stub of the ReaScript API (tests/daw_templates/stubs/reaper_stub.lua),
handing off through a real watched folder (:class:`bridge.watch.WatchFolder` with the fake engine).

Not tested in a running REAPER: the stub's answers follow REAPER's API documentation (a constant tempo map).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mido
import pytest
import soundfile
from lua_helpers import TEMPLATES, lua_string, run_lua
from region_engine import RegionEngine

from bridge.service import BridgeService
from bridge.watch import WatchFolder

REAPER_DIR = TEMPLATES / "reaper"
STUB = Path(__file__).resolve().parent / "stubs" / "reaper_stub.lua"
BPM, NUM, DEN = 90.0, 3, 4  # a 3/4 project at 90 BPM: a quarter note is 2/3 s


def _project(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    project: dict[str, Any] = {
        "media_dir": str(tmp_path / "project"),
        "bpm": BPM,
        "num": NUM,
        "den": DEN,
        "selection": [4.0, 8.0],  # quarter notes 6..12: bars 3-4 of 3/4
        "cursor": 1.5,
        "tracks": [
            {"name": "Drums", "selected": False, "items": [{"pos": 0.0, "len": 20.0, "audio": True}]},
            {
                "name": "Bass",
                "selected": True,
                "items": [
                    {
                        "pos": 2.0,  # quarter note 3
                        "len": 8.0,
                        "midi": [
                            {"qn": 6.0, "len_qn": 1.0, "pitch": 40, "vel": 90},
                            {"qn": 7.5, "len_qn": 0.5, "pitch": 43, "vel": 80, "chan": 1},
                            {"qn": 8.0, "len_qn": 1.0, "pitch": 45, "muted": True},
                            {"qn": 5.0, "len_qn": 1.0, "pitch": 30},  # before the selection
                            {"qn": 12.0, "len_qn": 1.0, "pitch": 31},  # at its end
                        ],
                    },
                    {"pos": 4.5, "len": 1.0, "audio": True},
                ],
            },
        ],
    }
    project.update(changes)
    return project


def _lua_table(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_string(k)}] = {_lua_table(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "{" + ", ".join(_lua_table(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return lua_string(value)
    return repr(value)


def run_script(script: str, project: dict[str, Any], watch: Path, workdir: Path) -> dict[str, Any]:
    """Run one REAPER script against the stub; returns the stub's report (calls, tracks, render settings)."""
    path = REAPER_DIR / script
    chunk = f"""
SCRIPT = {lua_string(str(path))}
CORE = {lua_string(str(REAPER_DIR / "segue_core.lua"))}
PROJECT = {_lua_table(project)}
dofile({lua_string(str(STUB))})
local getenv = os.getenv
os.getenv = function(k) if k == "SEGUE_WATCH" then return {lua_string(str(watch))} end return getenv(k) end
dofile(SCRIPT)
stub_report()
"""
    out = run_lua(chunk, workdir)
    line = next(line for line in out.splitlines() if line.startswith("REPORT "))
    report: dict[str, Any] = json.loads(line[len("REPORT ") :])
    return report


def _calls(report: dict[str, Any], name: str) -> list[list[Any]]:
    return [c["args"] if isinstance(c["args"], list) else [] for c in report["calls"] if c["name"] == name]


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[WatchFolder]:
    service = BridgeService(RegionEngine(), tmp_path / "jobs", place="first")
    service.start()
    folder = WatchFolder(service, tmp_path / "watch", poll_s=0.05)
    folder.start()
    yield folder
    folder.close()
    service.close()


def _wait(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.02)
    return bool(predicate())


def test_send_renders_the_selection_writes_its_notes_and_drops_a_request(watch: WatchFolder, tmp_path: Path) -> None:
    watch.close()  # keep the request where the script put it
    project = _project(tmp_path)
    report = run_script("Segue - send selection.lua", project, watch.folder, tmp_path)
    assert not _calls(report, "ShowMessageBox"), report["calls"]
    requests = sorted(watch.requests.glob("*.json"))
    assert len(requests) == 1
    request = json.loads(requests[0].read_text())
    assert request["start_beats"] == pytest.approx(6.0) and request["length_beats"] == pytest.approx(6.0)
    assert (request["tempo_bpm"], request["meter_num"], request["meter_den"]) == (BPM, NUM, DEN)
    assert request["track"] == "Bass" and request["generate"] == {"mode": "continue", "bars": 4, "variants": 2}
    # the render: the time selection of the selected tracks through the master, as WAV; settings put back
    rendered = _calls(report, "Rendered")
    assert len(rendered) == 1
    path, fmt, settings, bounds, _ = rendered[0]
    assert path == request["audio_path"] and fmt == "ZXZhdxgAAQ==" and settings == 128 and bounds == 2
    assert soundfile.info(path).duration == pytest.approx(4.0)
    assert report["render"] == {"RENDER_FILE": "/old/dir", "RENDER_PATTERN": "old", "RENDER_FORMAT": "b2dnZw=="}
    assert report["render_n"]["RENDER_BOUNDSFLAG"] == 1 and report["render_n"]["RENDER_SRATE"] == 44100
    # the MIDI: the notes that start inside the selection, from its start, unmuted; tempo and meter at tick 0
    mid = mido.MidiFile(request["midi_path"])
    assert mid.ticks_per_beat == 480
    tick, notes = 0, []
    for message in mid.tracks[0]:
        tick += message.time
        if message.type == "note_on" and message.velocity > 0:
            notes.append((tick / 480, message.note, message.velocity, message.channel))
    assert notes == [(0.0, 40, 90, 0), (1.5, 43, 80, 1)]
    metas = {m.type: m for m in mid.tracks[0] if m.is_meta}
    assert mido.tempo2bpm(metas["set_tempo"].tempo) == pytest.approx(BPM)
    assert (metas["time_signature"].numerator, metas["time_signature"].denominator) == (3, 4)
    assert tick == 6 * 480  # the end of the track: the selection's length


def test_a_region_from_reaper_comes_back_inserted_at_the_bar_after_it(watch: WatchFolder, tmp_path: Path) -> None:
    project = _project(tmp_path)
    run_script("Segue - send selection.lua", project, watch.folder, tmp_path)
    assert _wait(lambda: len(list(watch.placed.glob("*.json"))) == 2), list(watch.requests.rglob("*"))
    report = run_script("Segue - place results.lua", project, watch.folder, tmp_path)
    placed = [json.loads(p.read_text()) for p in sorted((watch.placed / "done").glob("*.json"))]
    assert [p["kind"] for p in placed] == ["audio", "midi"]
    # the bar after the region: quarter note 12 (bar 5 of 3/4) = 8.0 s at 90 BPM, each file on a new track
    inserts = _calls(report, "InsertMedia")
    assert inserts == [[p["file_path"], 1, pytest.approx(8.0)] for p in placed]
    assert [t["name"] for t in report["tracks"][2:]] == ["Bass (Segue v01)", "Bass (Segue v01)"]
    assert [t["file"] for t in report["tracks"][2:]] == [p["file_path"] for p in placed]
    assert _calls(report, "SetEditCurPos")[-1] == [1.5]  # the edit cursor is put back
    assert _calls(report, "Undo_EndBlock") == [["Segue: place results"]]
    assert not list(watch.placed.glob("*.json"))
    again = run_script("Segue - place results.lua", project, watch.folder, tmp_path)
    assert not _calls(again, "InsertMedia")  # nothing twice
    assert any("nothing new" in c[0] for c in _calls(again, "ShowConsoleMsg"))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"selection": [3.0, 3.0]}, "make a time selection first"),
        ({"tracks": [{"name": "A", "selected": False}]}, "select the track(s) to send first"),
        (
            {"tracks": [{"name": "A", "selected": True, "items": [{"pos": 30.0, "len": 1.0, "audio": True}]}]},
            "no items in the time selection",
        ),
        ({"render_fails": True}, "REAPER did not render"),
        ({"bpm": 5.0}, "the tempo must be 10..400 BPM"),
    ],
)
def test_send_says_what_is_missing(tmp_path: Path, changes: dict[str, Any], says: str) -> None:
    watch = tmp_path / "watch"
    (watch / "requests").mkdir(parents=True)
    report = run_script("Segue - send selection.lua", _project(tmp_path, **changes), watch, tmp_path)
    boxes = _calls(report, "ShowMessageBox")
    assert len(boxes) == 1 and says in boxes[0][0], report["calls"]
    assert not list((watch / "requests").glob("*.json"))


def test_send_without_the_bridge_folder_says_to_start_it(tmp_path: Path) -> None:
    report = run_script("Segue - send selection.lua", _project(tmp_path), tmp_path / "nowhere", tmp_path)
    boxes = _calls(report, "ShowMessageBox")
    assert len(boxes) == 1 and "segue bridge --watch" in boxes[0][0]
