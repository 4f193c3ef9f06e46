"""The Ardour scripts under a stock Lua with a stub of Ardour 7's Lua API (tests/daw_templates/stubs/ardour_stub.lua):
MIDI regions, time ranges over several tracks, refusals, and the polling hook. The audio-region round trip runs in a
real headless Ardour in test_ardour_headless.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
import soundfile
from fake_engine import FakeEngine
from lua_helpers import TEMPLATES, lua_string, run_lua

from bridge.events import Placement
from bridge.service import BridgeService
from bridge.watch import WatchFolder

ARDOUR_DIR = TEMPLATES / "ardour"
CORE = TEMPLATES / "reaper" / "segue_core.lua"
STUB = Path(__file__).resolve().parent / "stubs" / "ardour_stub.lua"
RATE, BPM = 48_000, 120.0
BEAT = RATE * 60 / BPM  # 24000 samples


def _lua(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_string(k)}] = {_lua(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return lua_string(value)
    return repr(value)


def _world(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    (tmp_path / "session" / "export").mkdir(parents=True, exist_ok=True)
    world: dict[str, Any] = {
        "rate": RATE,
        "bpm": BPM,
        "num": 4,
        "den": 4,
        "path": str(tmp_path / "session"),
        "tracks": [
            {"name": "Vox", "regions": [{"pos": round(8 * BEAT), "len": 30_000, "channels": 1, "value": 0.1}]},
            {"name": "Gtr", "regions": [{"pos": round(9 * BEAT), "len": 10_000, "channels": 2, "value": 0.3}]},
            {
                "name": "Keys",
                "regions": [
                    {
                        "pos": round(4 * BEAT),
                        "len": round(8 * BEAT),
                        "midi": {
                            "start_beats": 2.0,  # the region starts 2 beats into its source
                            "notes": [
                                {"time": 2.0, "length": 1.0, "note": 60, "velocity": 100},
                                {"time": 3.5, "length": 0.5, "note": 64, "velocity": 70, "channel": 2},
                                {"time": 1.0, "length": 1.0, "note": 50, "velocity": 70},  # before the region
                                {"time": 10.5, "length": 1.0, "note": 51, "velocity": 70},  # after it
                            ],
                        },
                    }
                ],
            },
        ],
        "selection": {},
    }
    world.update(changes)
    return world


def run(script: str, world: dict[str, Any], tmp_path: Path, then: str = "factory({})()") -> dict[str, Any]:
    chunk = f"""
CORE = {lua_string(str(CORE))}
WORLD = {_lua(world)}
dofile({lua_string(str(STUB))})
local getenv = os.getenv
os.getenv = function(k)
  if k == "SEGUE_WATCH" then return {lua_string(str(tmp_path / "watch"))} end
  if k == "SEGUE_OSC" then return "osc.udp://127.0.0.1:9750" end
  return getenv(k)
end
dofile({lua_string(str(ARDOUR_DIR / script))})
{then}
stub_report()
"""
    out = run_lua(chunk, tmp_path)
    line = next(line for line in out.splitlines() if line.startswith("REPORT "))
    report: dict[str, Any] = json.loads(line[len("REPORT ") :])
    report["stdout"] = out
    return report


def _calls(report: dict[str, Any], name: str) -> list[Any]:
    return [c["args"] for c in report["calls"] if c["name"] == name]


def test_a_midi_region_is_sent_as_its_notes_with_its_timeline_position(tmp_path: Path) -> None:
    report = run("segue_send.lua", _world(tmp_path, selection={"regions": [["Keys", 1]]}), tmp_path)
    osc = _calls(report, "osc")
    assert [(m[0], m[1], m[2]) for m in osc] == [
        ("osc.udp://127.0.0.1:9750", "/segue/region", "ssfffiis"),
        ("osc.udp://127.0.0.1:9750", "/segue/generate", "sii"),
    ]
    audio, midi, start, length, tempo, num, den, track = osc[0][3]
    assert audio == "" and midi.endswith(".mid") and track == "Keys"
    assert (start, length, tempo, num, den) == (4.0, 8.0, 120.0, 4, 4)
    assert osc[1][3] == ["continue", 4, 2]
    tick, notes = 0, []
    for message in mido.MidiFile(midi).tracks[0]:
        tick += message.time
        if message.type == "note_on" and message.velocity > 0:
            notes.append((tick / 480, message.note, message.velocity, message.channel))
    assert notes == [(0.0, 60, 100, 0), (1.5, 64, 70, 2)]  # from the region's start, only the notes inside it
    assert tick == 8 * 480


def test_a_time_range_sends_what_the_selected_tracks_play_summed(tmp_path: Path) -> None:
    start, stop = round(8 * BEAT), round(8 * BEAT) + 40_000
    world = _world(tmp_path, selection={"range": [start, stop], "range_tracks": ["Vox", "Gtr", "Keys"]})
    report = run("segue_send.lua", world, tmp_path)
    region = _calls(report, "osc")[0][3]
    assert region[1] == "" and region[7] == "Vox"
    assert region[2] == pytest.approx(8.0) and region[3] == pytest.approx(40_000 / BEAT)
    data, rate = soundfile.read(region[0], dtype="float64")
    assert rate == RATE and data.shape == (40_000, 2)  # the stereo guitar makes the file stereo
    i = np.arange(40_000)
    vox = np.where(i < 30_000, 0.1 + i / 1e6, 0.0)  # mono: the same on both channels
    g0 = round(BEAT)  # the guitar starts a beat later
    gtr = np.where((i >= g0) & (i < g0 + 10_000), 0.3 + (i - g0) / 1e6, 0.0)
    np.testing.assert_allclose(data[:, 0], vox + gtr, atol=1e-6)
    np.testing.assert_allclose(data[:, 1], vox + np.where(gtr > 0, gtr + 0.1, 0.0), atol=1e-6)


@pytest.mark.parametrize(
    ("selection", "says"),
    [
        ({}, "select a region, or a time range"),
        ({"range": [0, 1000], "range_tracks": ["Keys"]}, "the time range has no audio on the selected tracks"),
    ],
)
def test_nothing_is_sent_without_a_usable_selection(tmp_path: Path, selection: dict[str, Any], says: str) -> None:
    report = run("segue_send.lua", _world(tmp_path, selection=selection), tmp_path)
    assert not _calls(report, "osc")
    assert f"Segue: nothing sent: {says}" in report["stdout"]


def _placements(tmp_path: Path) -> WatchFolder:
    """Two placements (audio then MIDI) written by the bridge's own watched-folder writer."""
    folder = WatchFolder(BridgeService(FakeEngine(), tmp_path / "jobs"), tmp_path / "watch")  # only its writer
    for sub in ("placed/done", "requests/done", "requests/failed"):
        (tmp_path / "watch" / sub).mkdir(parents=True, exist_ok=True)
    for kind, name in (("audio", "mix.wav"), ("midi", "v01.mid")):
        path = tmp_path / name
        path.write_bytes(b"RIFF")
        folder.write_placement(Placement("job-1-ab12", "v01", path, 13.5, 6.75, "Vox (Segue v01)", kind))  # type: ignore[arg-type]
    return folder


def test_the_place_action_imports_each_file_at_its_beat_on_a_renamed_new_track(tmp_path: Path) -> None:
    _placements(tmp_path)
    report = run("segue_place.lua", _world(tmp_path), tmp_path)
    imports = _calls(report, "do_import")
    at = round(13.5 * BEAT)
    assert imports == [
        [str(tmp_path / "mix.wav"), at, "ImportDistinctFiles", "ImportAsTrack", "SrcBest", ""],
        [str(tmp_path / "v01.mid"), at, "ImportDistinctFiles", "ImportAsTrack", "SrcBest", "ACE Reasonable Synth"],
    ]
    assert report["routes"][3:] == ["Vox (Segue v01)", "Vox (Segue v01)"]
    assert sorted(p.name for p in (tmp_path / "watch" / "placed" / "done").iterdir()) == ["000001.json", "000002.json"]
    again = run("segue_place.lua", _world(tmp_path), tmp_path)
    assert not _calls(again, "do_import") and "nothing new" in again["stdout"]


def test_a_placement_whose_file_is_gone_is_skipped(tmp_path: Path) -> None:
    _placements(tmp_path)
    (tmp_path / "mix.wav").unlink()
    report = run("segue_place.lua", _world(tmp_path), tmp_path)
    assert [c[0] for c in _calls(report, "do_import")] == [str(tmp_path / "v01.mid")]
    assert "is gone; skipping it" in report["stdout"]


HOOK_TICKS = """
local callback = factory({})
for i = 1, N do callback(LuaSignal.LuaTimerDS, nil) end
"""


@pytest.mark.parametrize(("ticks", "recording", "imports"), [(9, False, 0), (10, False, 2), (10, True, 0)])
def test_the_hook_looks_once_a_second_and_not_while_recording(
    tmp_path: Path, ticks: int, recording: bool, imports: int
) -> None:
    _placements(tmp_path)
    report = run(
        "segue_autoplace.lua", _world(tmp_path, recording=recording), tmp_path, then=HOOK_TICKS.replace("N", str(ticks))
    )
    assert len(_calls(report, "do_import")) == imports
