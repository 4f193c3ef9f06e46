"""The DAW scripts send the selected tracks' audio of a region as stems: REAPER renders each selected track with
audio alone (the selection put back), Ardour exports each track's audio alone; both name the stems after the
tracks and send /segue/region/stems (Ardour, OSC) or a watched-folder request with "stems" (REAPER), which the
bridge turns into a job whose engine gets every stem. One track with audio stays the single-path /segue/region.

Run under a stock Lua with the stubs of tests/daw_templates/stubs (not inside a running REAPER or Ardour)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import soundfile
from lua_helpers import TEMPLATES, lua_string, run_lua
from region_engine import RegionEngine
from test_ardour_scripts import BEAT, RATE, _world
from test_ardour_scripts import _calls as ardour_calls
from test_ardour_scripts import run as run_ardour
from test_reaper_scripts import _calls, _project, run_script

from bridge.service import BridgeService
from bridge.watch import WatchFolder

CORE = TEMPLATES / "reaper" / "segue_core.lua"


def _core(expression: str, tmp_path: Path) -> Any:
    out = run_lua(f"local core = dofile({lua_string(str(CORE))})\nprint(core.json_encode({expression}))", tmp_path)
    return json.loads(out.strip().splitlines()[-1])


def test_track_names_become_unique_stem_names_segue_takes(tmp_path: Path) -> None:
    names = _core(
        '(function() local taken, out = {}, {} for i, n in ipairs({"01 Drums (L)", "Drums", "drums", "2024", '
        '"Lead_Vox", string.rep("A", 80)}) do out[i] = core.stem_name(n, taken, i) end return out end)()',
        tmp_path,
    )
    assert names == ["drums-l", "drums", "drums-2", "track4", "lead_vox", "a" * 28]


def test_the_region_message_carries_the_stems_after_the_8_arguments(tmp_path: Path) -> None:
    region = ('{start_beats = 4, length_beats = 8, tempo_bpm = 120, track = "Band", stems = {{name = "drums", '
              'path = "/a/d.wav"}, {name = "bass", path = "/a/b.wav"}}}')  # fmt: skip
    address, types, args = _core(f"{{core.region_message({region})}}", tmp_path)
    assert (address, types) == ("/segue/region/stems", "ssfffiis" + "ssss")
    assert args[:2] == ["", ""] and args[7:] == ["Band", "drums", "/a/d.wav", "bass", "/a/b.wav"]
    single = _core('{core.region_message({audio_path = "/a/m.wav", start_beats = 0, length_beats = 4, '
                   'tempo_bpm = 90})}', tmp_path)  # fmt: skip
    assert single[:2] == ["/segue/region", "ssfffiis"]
    many = ", ".join(f'{{name = "t{i}", path = "/t{i}.wav"}}' for i in range(17))
    too_many = f"{{start_beats = 0, length_beats = 4, tempo_bpm = 90, stems = {{{many}}}}}"
    refused = _core(f"select(2, core.region_message({too_many}))", tmp_path)
    assert "at most 16 tracks' audio (stems) per region, got 17" in refused


def _two_audio_tracks(tmp_path: Path) -> dict[str, Any]:
    project = _project(tmp_path)
    project["tracks"][0]["selected"] = True  # Drums (audio) and Bass (MIDI and audio)
    return project


def test_reaper_renders_each_selected_track_alone_and_sends_them_as_stems(tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    (watch / "requests").mkdir(parents=True)
    report = run_script("Segue - send selection.lua", _two_audio_tracks(tmp_path), watch, tmp_path)
    assert not _calls(report, "ShowMessageBox"), report["calls"]
    (request_file,) = (watch / "requests").glob("*.json")
    request = json.loads(request_file.read_text())
    rendered = _calls(report, "Rendered")
    assert [r[4] for r in rendered] == ["Drums", "Bass", "Drums,Bass"]  # each alone, then the mix of both
    assert [s["name"] for s in request["stems"]] == ["drums", "bass"]
    assert [s["path"] for s in request["stems"]] == [r[0] for r in rendered[:2]]
    assert request["audio_path"] == rendered[2][0] and request["midi_path"].endswith(".mid")
    assert all(soundfile.info(s["path"]).duration == pytest.approx(4.0) for s in request["stems"])
    assert sorted(c[0] for c in _calls(report, "SetTrackSelected")) == ["Bass", "Drums"]  # the selection put back
    assert any("with the stems drums, bass" in c[0] for c in _calls(report, "ShowConsoleMsg"))


def test_reaper_sends_one_track_or_an_accompaniment_without_stems(tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    (watch / "requests").mkdir(parents=True)
    run_script("Segue - send selection.lua", _project(tmp_path), watch, tmp_path)  # Bass alone
    (request_file,) = (watch / "requests").glob("*.json")
    assert "stems" not in json.loads(request_file.read_text())


def test_a_reaper_stems_request_reaches_the_engine_through_the_watched_folder(tmp_path: Path) -> None:
    engine = RegionEngine()
    service = BridgeService(engine, tmp_path / "jobs", place="none")
    service.start()
    folder = WatchFolder(service, tmp_path / "watch", poll_s=0.05)
    folder.start()
    try:
        run_script("Segue - send selection.lua", _two_audio_tracks(tmp_path), folder.folder, tmp_path)
        deadline = time.monotonic() + 10
        while not engine.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        (request,) = engine.requests
        assert [name for name, _ in request.prompt.stems] == ["drums", "bass"]
        assert all(path.is_file() for _, path in request.prompt.stems)
    finally:
        folder.close()
        service.close()


def test_ardour_sends_each_selected_tracks_audio_as_a_stem(tmp_path: Path) -> None:
    start, stop = round(8 * BEAT), round(8 * BEAT) + 40_000
    world = _world(tmp_path, selection={"range": [start, stop], "range_tracks": ["Vox", "Gtr", "Keys"]})
    report = run_ardour("segue_send.lua", world, tmp_path)
    osc = ardour_calls(report, "osc")
    assert [m[1] for m in osc] == ["/segue/region/stems", "/segue/generate"]
    assert osc[0][2] == "ssfffiis" + "ssss"
    args = osc[0][3]
    mix, names, paths = args[0], args[8::2], args[9::2]
    assert names == ["vox", "gtr"] and mix.endswith(".wav")
    vox, rate = soundfile.read(paths[0], dtype="float64")
    gtr, _ = soundfile.read(paths[1], dtype="float64")
    both, _ = soundfile.read(mix, dtype="float64")
    assert rate == RATE and vox.ndim == 1 and gtr.shape == (40_000, 2)  # each track in its own channels
    assert abs(both - (vox[:, None] + gtr)).max() < 1e-6  # the stems add up to the mix sent beside them


def test_ardour_sends_one_track_as_the_single_path_region(tmp_path: Path) -> None:
    start, stop = round(8 * BEAT), round(8 * BEAT) + 40_000
    world = _world(tmp_path, selection={"range": [start, stop], "range_tracks": ["Vox", "Keys"]})
    osc = ardour_calls(run_ardour("segue_send.lua", world, tmp_path), "osc")
    assert osc[0][1:3] == ["/segue/region", "ssfffiis"]
