"""Ardour's accompany action with the producer's controls set, in a real headless Ardour 7.3 (``ardour7-lua``)
against the real bridge: Ardour's own OSC (``ARDOUR.LuaOSC``) carries the key/value pairs (``s``/``f``/``i``) and
the engine gets them in its GenerationParams. The session, the driver and the bridge are test_ardour_headless.py's;
the script is the shipped segue_accompany.lua with its CONTROLS setting filled in (test_lua_controls.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ardour_procs import edit_session, lua_string, need_ardour, new_session
from fake_engine import FakeEngine
from test_ardour_headless import ARDOUR_DIR, DRIVER, REGION_AT, TEMPO, _bridge, _click_region, _run_ardour
from test_lua_controls import _with_controls

from bridge.adapters.ardour_session import insert_audio_file

pytestmark = pytest.mark.integration


def test_ardour_sends_the_controls_over_its_own_osc(tmp_path: Path) -> None:
    need_ardour()
    engine = FakeEngine()
    session_file = new_session(tmp_path, "song", osc=False)
    edit_session(session_file, tempo_bpm=TEMPO)
    _click_region(tmp_path / "vocal.wav")
    insert_audio_file(session_file, tmp_path / "vocal.wav", position_samples=REGION_AT, track_name="Vocal")
    (session_file.parent / "export").mkdir(exist_ok=True)
    (session_file.parent / "export" / "segue-accompany.json").write_text('{"parts": "bass", "variants": 1}')
    script = _with_controls(ARDOUR_DIR / "segue_accompany.lua", tmp_path / "scripts")
    with _bridge(tmp_path, engine) as (run, _jobs, watch):
        driver = tmp_path / "driver.lua"
        driver.write_text(
            DRIVER.format(
                folder=lua_string(str(session_file.parent)),
                name=lua_string(session_file.stem),
                send=lua_string(str(script)),
                place=lua_string(str(ARDOUR_DIR / "segue_place.lua")),
                watch=lua_string(str(watch)),
            )
        )
        env = {"SEGUE_OSC": f"osc.udp://127.0.0.1:{run.osc_address[1]}", "SEGUE_WATCH": str(watch)}
        result = _run_ardour(driver, tmp_path, env)
    assert "DRIVER|done" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    (request,) = engine.requests
    params = request.params
    assert (params.mode, params.parts) == ("accompany", ("bass",))
    assert (params.similarity, params.keep_opening, params.hold_notes) == (0.3, False, True)
    assert params.part_density == (("bass", 0.5), ("drums", 2.0))
    assert params.density is None and params.end_on_tonic is None
