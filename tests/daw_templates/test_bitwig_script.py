"""The Bitwig controller script (daw_templates/bitwig/Segue.control.js) under node with a fake Controller API host
(tests/daw_templates/stubs/bitwig_host.js). Not tested in a running Bitwig: the fake follows the API's documented
names (Transport, CursorTrack, launcher cursor clip note steps, the OSC module, Application.create*Track)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import mido
import pytest
from fake_engine import FakeEngine
from lua_helpers import TEMPLATES
from test_accompany_actions import PARTS_CASES, check_parts

from bridge.osc import OscBridge, check_arguments
from bridge.service import BridgeService
from engine.errors import BadInputError

SCRIPT = TEMPLATES / "bitwig" / "Segue.control.js"
HOST = Path(__file__).resolve().parent / "stubs" / "bitwig_host.js"


def run(scenario: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed (Debian nodejs); the Bitwig script's logic is tested with it")
    scenario.setdefault("home", str(tmp_path))
    result = subprocess.run(
        [node, str(HOST), str(SCRIPT), json.dumps(scenario)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))
    report: dict[str, Any] = json.loads(line[len("REPORT ") :])
    return report


SEND = {
    "steps": [
        {"tempo": 110.0, "meter": [3, 4], "play_start": 12.0, "track": "Lead", "loop_length": 6.0},
        {
            "notes": [
                {"x": 0, "y": 60, "duration": 1.0, "velocity": 0.8},
                {"x": 24, "y": 62, "duration": 0.5, "velocity": 0.5, "channel": 1},
                {"x": 32, "y": 64, "duration": 1.0, "velocity": 0.5, "state": "Empty"},  # deleted
                {"x": 100, "y": 65, "duration": 1.0, "velocity": 0.5},  # past the loop's end (6.25 beats)
            ]
        },
        {"press": True},
    ]
}


def test_the_selected_clip_is_sent_with_tempo_meter_and_play_start(tmp_path: Path) -> None:
    report = run(json.loads(json.dumps(SEND)), tmp_path)
    assert report["api"] == 17 and report["defined"][0] == "Segue" and report["listenPort"] == 11003
    region, generate = report["sent"]
    assert region[:3] == ["127.0.0.1", 9750, "/segue/region"]
    audio, midi, start, length, tempo, num, den, track = region[3]
    assert (audio, start, length, tempo, num, den, track) == ("", 12.0, 6.0, 110.0, 3, 4, "Lead")
    assert generate[2:] == ["/segue/generate", ["continue", 4, 2]]
    tick, notes = 0, []
    for m in mido.MidiFile(midi).tracks[0]:
        tick += m.time
        if m.type == "note_on" and m.velocity > 0:
            notes.append((tick / 480, m.note, m.velocity, m.channel))
    assert notes == [(0.0, 60, 102, 0), (1.5, 62, 64, 1)]
    assert tick == 6 * 480
    # what the bridge makes of it, every number sent as an OSC float (the worst case for Bitwig's encoding)
    bridge = OscBridge(BridgeService(FakeEngine(), Path("unused")))  # only its routes are used
    args = [float(a) if isinstance(a, int) else a for a in region[3]]
    assert check_arguments("/segue/region", bridge.routes["/segue/region"], args)[5:7] == [3, 4]


def test_a_placed_file_goes_into_a_new_tracks_first_slot(tmp_path: Path) -> None:
    steps = [
        {"osc": ["/segue/place", "/j/p/lead_ab12_v01.mid", 18.0, 9.8, "Lead (Segue v01)", "midi"]},
        {"osc": ["/segue/place", "/j/p/lead_ab12_v01_mix.wav", 18.0, 9.8, "Lead (Segue v01)", "audio"]},
    ]
    report = run({"tracks": 2, "steps": steps}, tmp_path)
    assert report["created"] == ["instrument", "audio"]
    assert report["names"] == [[2, "Lead (Segue v01)"], [3, "Lead (Segue v01)"]]
    assert report["inserted"] == [[2, 0, "/j/p/lead_ab12_v01.mid"], [3, 0, "/j/p/lead_ab12_v01_mix.wav"]]
    assert any("cannot place it on the arranger at beat 18" in p for p in report["popups"])


@pytest.mark.parametrize(
    ("step", "says"),
    [({"clip_exists": False}, "select a launcher clip first"), ({"track_type": "Audio"}, "drag the file into Segue")],
)
def test_what_cannot_be_sent_is_said(tmp_path: Path, step: dict[str, Any], says: str) -> None:
    report = run({"steps": [step, {"press": True}]}, tmp_path)
    assert not report["sent"]
    assert says in report["popups"][-1]


def test_bad_region_values_would_be_refused_by_the_bridge() -> None:
    bridge = OscBridge(BridgeService(FakeEngine(), Path("unused")))
    with pytest.raises(BadInputError, match="meter_num"):
        check_arguments("/segue/region", bridge.routes["/segue/region"], ["", "/a.mid", 0.0, 4.0, 120.0, 3.5, 4.0, ""])


# -- accompany ----------------------------------------------------------------------------------------------------

CLIP = SEND["steps"][:2]  # the clip of SEND: 6 beats of 3/4 at play start 12 (2 bars), on "Lead"


def _generate(report: dict[str, Any]) -> list[Any]:
    region, generate = report["sent"]
    assert region[2] == "/segue/region" and generate[:3] == ["127.0.0.1", 9750, "/segue/generate"]
    args: list[Any] = generate[3]
    return args


def test_the_accompany_button_sends_the_parts_setting(tmp_path: Path) -> None:
    steps = [*CLIP, {"set_string": ["Accompany parts", " Soprano , BASS "]}, {"press": "Accompany the selected clip"}]
    report = run({"steps": steps}, tmp_path)
    assert ["string", "Accompany parts", "bass,piano"] in report["settings"]  # the setting's first value
    assert ["signal", "Accompany the selected clip", "Accompany"] in report["settings"]
    args = _generate(report)
    assert args == ["accompany", 2, 2, "soprano,bass"]
    bridge = OscBridge(BridgeService(FakeEngine(), Path("unused")))  # the bridge takes it, numbers as floats too
    floats = [float(a) if isinstance(a, int) else a for a in args]
    assert check_arguments("/segue/generate", bridge.routes["/segue/generate"], floats) == args
    assert any("come back at beat 12 (the clip's start)" in p for p in report["popups"])


def test_accompany_over_osc_with_parts_and_variants_or_the_setting(tmp_path: Path) -> None:
    report = run({"steps": [*CLIP, {"osc": ["/bitwig/segue/accompany", "Piano", 3]}]}, tmp_path)
    assert _generate(report) == ["accompany", 2, 3, "piano"]
    report = run({"steps": [*CLIP, {"osc": ["/bitwig/segue/accompany"]}]}, tmp_path)
    assert _generate(report) == ["accompany", 2, 2, "bass,piano"]  # no arguments: the setting, 2 variants
    report = run({"steps": [*CLIP, {"osc": ["/bitwig/segue/accompany", "  "]}]}, tmp_path)
    assert _generate(report) == ["accompany", 2, 2]  # "": the model's default set, the 3-argument form
    report = run({"steps": [*CLIP, {"press": True}]}, tmp_path)
    assert _generate(report) == ["continue", 4, 2]  # "Send to Segue" still continues


@pytest.mark.parametrize(
    ("step", "says"),
    [
        ({"osc": ["/bitwig/segue/accompany", "double bass"]}, "nothing sent: 'double bass' is not a part name"),
        ({"osc": ["/bitwig/segue/accompany", "bass", 0]}, "nothing sent: variants must be 1..16, got 0"),
        ({"set_string": ["Accompany parts", "bass,Bass"]}, "nothing sent: 'bass' is given twice"),
    ],
)
def test_bad_accompany_input_is_refused(tmp_path: Path, step: dict[str, Any], says: str) -> None:
    steps = [*CLIP, step] + ([{"press": "Accompany the selected clip"}] if "set_string" in step else [])
    report = run({"steps": steps}, tmp_path)
    assert not report["sent"]
    assert says in report["popups"][-1]


def test_the_bitwig_script_normalises_parts_like_the_lua_core(tmp_path: Path) -> None:
    typed = json.dumps([case[0] for case in PARTS_CASES])
    report = run({"steps": [{"call": f"JSON.stringify({typed}.map(normaliseParts))"}]}, tmp_path)
    rows = json.loads(report["called"][0])
    check_parts([(row.get("parts"), row.get("error", "")) for row in rows])
