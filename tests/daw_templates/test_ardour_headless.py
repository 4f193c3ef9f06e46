"""The Ardour scripts in a real, headless Ardour 7.3 (``ardour7-lua``), talking to a real Segue bridge.

A session at 100 BPM holds a "Vocal" region (clicks at known samples) at bar 3. Inside ``ardour7-lua`` the shipped
``segue_send.lua`` runs on that region, as the editor would run it: only ``Editor:get_selection`` is stubbed (it
returns the real region); the script reads the track's audio through Ardour's playlist, writes the WAV, reads
position, tempo and meter from Ardour's tempo map and sends ``/segue/region`` and ``/segue/generate`` over
Ardour's own OSC (``ARDOUR.LuaOSC``) to ``segue bridge --watch`` (the real command line and OSC server, in this
process, with the fake engine of tests/bridge). The bridge places the first variant and writes
``placed/000001.json``; then ``segue_place.lua`` runs in the same Ardour and computes the import position from
Ardour's tempo map. ``Editor:do_import`` needs the GUI, so the stub records its call: the file, the position and
the track name given to the new track.

Checked: the exported WAV is the region's audio sample for sample; the region reached the bridge with its
timeline position (beat 8), length, tempo and meter; the placed file is imported at the bar after the region
(bar 4, beat 12 = sample 345600 at 100 BPM / 48 kHz), which is also where the file's BWF time reference puts it.
Last, the placed mix (a click track) is put into the closed session at the sample the script imported it at
(Segue's closed-session writer standing in for ``do_import``) and Ardour renders the session: every click of the
region and of the continuation is at its exact sample. About 5-13 s here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from ardour_procs import edit_session, export, lua_string, need_ardour, new_session, run_offline
from fake_engine import FakeEngine
from region_engine import CLICK_AT, RegionEngine

from bridge.adapters.ardour_session import insert_audio_file
from bridge.bwf import read_bext
from bridge.cli import main
from bridge.daemon import BridgeRunning
from engine.provenance.report import inspect_file
from engine.provenance.signing import c2pa_available

pytestmark = pytest.mark.integration

ARDOUR_DIR = Path(__file__).resolve().parents[2] / "daw_templates" / "ardour"
RATE = 48_000
TEMPO = 100.0
BEAT = RATE * 60.0 / TEMPO  # 28800 samples
REGION_AT = round(8 * BEAT)  # bar 3 in 4/4
REGION_LEN = 2 * RATE  # 2 s = 3.333 beats
CLICKS = [100, 12_345, 48_000, REGION_LEN - 500]  # outside the region's default 64-sample fades

DRIVER = """\
local session = load_session({folder}, {name})
if not session then print("DRIVER|load failed") quit() end
ardour = function(info) end  -- the script header
Editing = {{ ImportDistinctFiles = "ImportDistinctFiles", ImportAsTrack = "ImportAsTrack" }}
local function list(items)
  return {{ iter = function(self) local i = 0 return function() i = i + 1 return items[i] end end }}
end
local regions = {{}}
for route in Session:get_tracks():iter() do
  for r in route:to_track():playlist():region_list():iter() do regions[#regions + 1] = r end
end
local empty_range = {{ start_sample = function() return 0 end, end_sample = function() return 0 end }}
Editor = {{
  get_selection = function(self)
    return {{ regions = {{ regionlist = function() return list(regions) end }}, time = empty_range,
             tracks = {{ routelist = function() return list({{}}) end }} }}
  end,
  do_import = function(self, files, mode, disposition, quality, names, tempo, pos, instrument, track, replace)
    for f in files:iter() do
      print(string.format("IMPORT|%s|%d|%s|%s", f, pos:samples(), mode, disposition))
    end
  end,
}}
dofile({send})
factory({{}})()
print("DRIVER|sent")
io.stdout:flush()
local placed = {watch} .. "/placed/000001.json"
for i = 1, 400 do
  local f = io.open(placed) if f then f:close() break end
  ARDOUR.LuaAPI.usleep(50000)
end
dofile({place})
factory({{}})()
print("DRIVER|done")
quit()
"""


def _click_region(path: Path) -> np.ndarray:
    audio = np.zeros(REGION_LEN, dtype=np.float32)
    for k, at in enumerate(CLICKS):
        audio[at] = 0.1 * (k + 1)
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    return audio


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[tuple[BridgeRunning, Path, Path, RegionEngine]]:
    """``segue bridge --watch`` with the fake engine, on a free loopback port, in this process."""
    engine = RegionEngine(click_rate=RATE)
    with _bridge(tmp_path, engine) as (run, jobs, watch):
        yield run, jobs, watch, engine


@contextmanager
def _bridge(tmp_path: Path, engine: FakeEngine) -> Iterator[tuple[BridgeRunning, Path, Path]]:
    jobs, watch = tmp_path / "jobs", tmp_path / "watch"
    running: list[BridgeRunning] = []
    ready = threading.Event()

    def on_ready(run: BridgeRunning) -> None:
        running.append(run)
        ready.set()

    argv = ["bridge", "--osc-port", "0", "--out", str(jobs), "--watch", str(watch), "--place", "first"]
    thread = threading.Thread(
        target=main, args=(argv,), kwargs={"engine_factory": lambda *a, **k: engine, "bridge_ready": on_ready}
    )
    thread.start()
    assert ready.wait(20), "segue bridge did not start"
    try:
        yield running[0], jobs, watch
    finally:
        running[0].stop()
        thread.join(15)


def test_a_region_sent_from_ardour_comes_back_placed_at_the_bar_after_it(
    tmp_path: Path, bridge: tuple[BridgeRunning, Path, Path, RegionEngine]
) -> None:
    need_ardour()
    run, jobs, watch, engine = bridge
    session_file = new_session(tmp_path, "song", osc=False)
    edit_session(session_file, tempo_bpm=TEMPO)
    audio = _click_region(tmp_path / "vocal.wav")
    insert_audio_file(session_file, tmp_path / "vocal.wav", position_samples=REGION_AT, track_name="Vocal")

    driver = tmp_path / "driver.lua"
    driver.write_text(
        DRIVER.format(
            folder=lua_string(str(session_file.parent)),
            name=lua_string(session_file.stem),
            send=lua_string(str(ARDOUR_DIR / "segue_send.lua")),
            place=lua_string(str(ARDOUR_DIR / "segue_place.lua")),
            watch=lua_string(str(watch)),
        )
    )
    env_osc = f"osc.udp://127.0.0.1:{run.osc_address[1]}"
    t0 = time.monotonic()
    result = _run_ardour(driver, tmp_path, {"SEGUE_OSC": env_osc, "SEGUE_WATCH": str(watch)})
    elapsed = time.monotonic() - t0
    out = result.stdout
    print(f"\nardour7-lua ran the send and place scripts in {elapsed:.1f} s")
    assert "DRIVER|done" in out, out[-3000:] + result.stderr[-2000:]

    # the WAV the send script wrote is what the track plays (the region, its fades included), sample for sample
    exported = sorted((session_file.parent / "export").glob("segue-Vocal-*.wav"))
    assert len(exported) == 1, out[-2000:]
    data, rate = soundfile.read(exported[0], dtype="float32")
    assert rate == RATE and data.shape == (REGION_LEN,)
    np.testing.assert_allclose(data, audio, atol=1e-7)

    # the bridge got the region as Ardour's tempo map says it is
    assert len(engine.requests) == 1
    prompt = engine.requests[0].prompt
    assert prompt.audio_path == exported[0].resolve() and prompt.midi_path is None
    assert prompt.start_beats == pytest.approx(8.0, abs=1e-6)
    assert prompt.length_beats == pytest.approx(REGION_LEN / BEAT, abs=1e-3)
    assert prompt.tempo_bpm == pytest.approx(TEMPO) and (prompt.meter.numerator, prompt.meter.denominator) == (4, 4)
    assert engine.requests[0].params.bars == 4 and engine.requests[0].params.variants == 2

    # what came back: the first variant's mix and MIDI, imported at bar 4 (beat 12) on tracks named after Vocal
    imports = [line.split("|") for line in out.splitlines() if line.startswith("IMPORT|")]
    placed = [json.loads((watch / "placed" / "done" / f"00000{n}.json").read_text()) for n in (1, 2)]
    assert [p["kind"] for p in placed] == ["audio", "midi"]
    expected_at = round(12 * BEAT)
    assert [(Path(i[1]), int(i[2])) for i in imports] == [(Path(p["file_path"]), expected_at) for p in placed]
    assert all(i[3:] == ["ImportDistinctFiles", "ImportAsTrack"] for i in imports)
    assert {p["track_name"] for p in placed} == {"Vocal (Segue v01)"}
    assert not list((watch / "placed").glob("*.json"))  # all moved to done/
    # the placed WAV's BWF time reference says the same position (at its own sample rate)
    placed_wav = Path(placed[0]["file_path"])
    bext = read_bext(placed_wav)
    assert bext is not None
    wav_rate = soundfile.info(str(placed_wav)).samplerate
    assert bext.time_reference == round(12 * 60.0 / TEMPO * wav_rate)
    assert bext.time_reference * RATE / wav_rate == pytest.approx(expected_at, abs=1)
    # it carries all of Segue's provenance (bext, iXML, a C2PA manifest that still holds after placement)
    carried = inspect_file(placed_wav)
    assert carried.record is not None and carried.record.generated and bext.description.startswith("AI-generated")
    assert {"bext", "iXML"} <= set(carried.chunk_sizes)
    assert carried.signature_holds is (True if c2pa_available() else None)

    # and in the session: the placed mix put on a track where the script imported it (Editor:do_import needs the
    # GUI, so Segue's closed-session writer stands in for it), rendered by Ardour itself
    insert_audio_file(session_file, placed_wav, position_samples=int(imports[0][2]), track_name=placed[0]["track_name"])
    continuation = [CLICK_AT + round(k * BEAT) for k in range(16)]  # 4 bars of 4/4
    want = sorted([REGION_AT + c for c in CLICKS] + [expected_at + c for c in continuation])
    # ardour7-export (7.3) once rendered a whole session 16 samples early in a CI run: every click, the region's own
    # (placed at REGION_AT before Segue ran) among them, and the same session rendered exactly on the next run. Such
    # a render, shifted as a whole, is made again once, said so; the check below stays exact.
    for attempt in (1, 2):
        export(session_file, tmp_path / "render.wav")
        render, rate = soundfile.read(tmp_path / "render.wav", dtype="float32", always_2d=True)
        assert rate == RATE
        found = [int(i) for i in np.flatnonzero(np.abs(render).max(axis=1) > 0.05)]
        shifted = len(found) == len(want) and len({f - w for f, w in zip(found, want, strict=True)}) == 1
        if attempt == 1 and found != want and shifted:
            print(f"ardour7-export rendered the whole session {found[0] - want[0]} samples off: rendering again")
            (tmp_path / "render.wav").unlink()
            continue
        break
    assert found == want, f"clicks at {found}, expected {want}"
    print(f"render: the continuation's first click at sample {found[len(CLICKS)]} = bar 4 ({expected_at}) + {CLICK_AT}")


def test_accompany_from_ardour_asks_for_the_parts_and_comes_back_at_the_regions_start(tmp_path: Path) -> None:
    """segue_accompany.lua in the real headless Ardour (no LuaDialog there: it uses the remembered answer, as
    written by the dialog in the GUI), against the real bridge with the bridge tests' fake engine, which
    accompanies at the region's start."""
    need_ardour()
    engine = FakeEngine()
    session_file = new_session(tmp_path, "song", osc=False)
    edit_session(session_file, tempo_bpm=TEMPO)
    _click_region(tmp_path / "vocal.wav")
    insert_audio_file(session_file, tmp_path / "vocal.wav", position_samples=REGION_AT, track_name="Vocal")
    (session_file.parent / "export").mkdir(exist_ok=True)
    (session_file.parent / "export" / "segue-accompany.json").write_text('{"parts": " Bass, PIANO", "variants": 1}')
    with _bridge(tmp_path, engine) as (run, _jobs, watch):
        driver = tmp_path / "driver.lua"
        driver.write_text(
            DRIVER.format(
                folder=lua_string(str(session_file.parent)),
                name=lua_string(session_file.stem),
                send=lua_string(str(ARDOUR_DIR / "segue_accompany.lua")),
                place=lua_string(str(ARDOUR_DIR / "segue_place.lua")),
                watch=lua_string(str(watch)),
            )
        )
        env = {"SEGUE_OSC": f"osc.udp://127.0.0.1:{run.osc_address[1]}", "SEGUE_WATCH": str(watch)}
        result = _run_ardour(driver, tmp_path, env)
    out = result.stdout
    assert "DRIVER|done" in out, out[-3000:] + result.stderr[-2000:]
    assert "no dialog here; accompanying with bass,piano" in out
    (request,) = engine.requests
    assert (request.params.mode, request.params.parts, request.params.variants) == ("accompany", ("bass", "piano"), 1)
    assert request.params.bars == 1  # the region's 3.333 beats: one bar of 4/4
    assert request.prompt.start_beats == pytest.approx(8.0, abs=1e-6)
    imports = [line.split("|") for line in out.splitlines() if line.startswith("IMPORT|")]
    assert [int(i[2]) for i in imports] == [REGION_AT, REGION_AT]  # the mix and the MIDI, under the region


def _run_ardour(driver: Path, workdir: Path, env: dict[str, str]) -> Any:
    """``ardour7-lua DRIVER`` offline (its Dummy backend), with the scripts' settings in the environment."""
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, env):
        return run_offline(["ardour7-lua", str(driver)], workdir, timeout=60)
