"""The producer's controls in the Live remote script (CONTROLS / PART_DENSITY, and key/value pairs after
``/live/segue/send``'s parts) and the Bitwig script (its "Segue controls" settings): sent as /segue/generate's
key/value pairs, taken by the bridge's real OSC table into GenerationParams; bad settings are refused in the DAW
before anything is sent. Fakes of Live's object model and of Bitwig's host (tests/daw_templates), no DAW."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine
from region_engine import RegionEngine
from test_bitwig_script import CLIP, _generate
from test_bitwig_script import run as run_bitwig
from test_live_script import Song, _arrangement_clip, _handled, _sent_to, make, pump

from bridge.osc import OscBridge, OscServer, check_arguments
from bridge.service import BridgeService


def _live_module() -> Any:
    return sys.modules["SegueLiveScript.segue_script"]


def test_live_sends_its_controls_with_the_trigger(tmp_path: Path) -> None:
    song = Song(modern=True)
    _arrangement_clip(song)
    script = make(tmp_path, song)
    module = _live_module()
    module.CONTROLS.update(similarity=0.25, hold_notes=True, end_on_tonic=False)
    module.PART_DENSITY.update(drums=2)
    sent = _sent_to(script, lambda: script.receive_midi((0x90, 0, 100)))  # C-2: "send" with GENERATE
    script.disconnect()
    assert sent[1] == (
        "/segue/generate",
        ["continue", 4, 2, "", "auto", "similarity", 0.25, "hold_notes", 1, "end_on_tonic", 0, "density:drums", 2.0],
    )


def test_live_passes_key_value_pairs_from_its_send_message_on_to_the_engine(tmp_path: Path) -> None:
    engine = RegionEngine()
    service = BridgeService(engine, tmp_path / "jobs", place="none")
    server = OscServer(OscBridge(service), "127.0.0.1", 0)
    service.start()
    server.start()
    song = Song(modern=True)
    _arrangement_clip(song)
    script = make(tmp_path, song, server.address)
    _live_module().CONTROLS.update(similarity=0.9, keep_opening=True)
    try:
        _handled(script, "/live/segue/send", "continue", 2, 1, "", "similarity", 0.4, "density:keys", 0.5)
        assert pump(script, lambda: bool(engine.requests)), script.messages
    finally:
        script.disconnect()
        server.close()
        service.close()
    (request,) = engine.requests
    params = request.params
    assert params.similarity == 0.4  # the message's own value wins over CONTROLS
    assert params.keep_opening is True and params.part_density == (("keys", 0.5),)
    assert params.hold_notes is None and params.density is None


def test_live_refuses_a_key_without_a_value(tmp_path: Path) -> None:
    song = Song(modern=True)
    _arrangement_clip(song)
    script = make(tmp_path, song)
    sent = _sent_to(script, lambda: _handled(script, "/live/segue/send", "continue", 4, 2, "", "similarity"))
    script.disconnect()
    assert sent == []
    assert "after the parts come key/value pairs" in script.messages[-1]


def test_live_without_controls_sends_the_three_argument_form(tmp_path: Path) -> None:
    song = Song(modern=True)
    _arrangement_clip(song)
    script = make(tmp_path, song)
    sent = _sent_to(script, lambda: _handled(script, "/live/segue/send"))
    script.disconnect()
    assert sent[1] == ("/segue/generate", ["continue", 4, 2])


SETTINGS = [
    {"set_string": ["Similarity (1 close .. 0 free; empty: auto)", " 0.3 "]},
    {"set_string": ["Density (MIDI: 1.5 and/or bass=0.5; empty: auto)", "1.5, Bass=0.5"]},
    {"set_string": ["Hold notes (MIDI)", "on"]},
    {"set_string": ["End on tonic (MIDI)", "off"]},
]


def test_bitwig_offers_the_controls_as_settings_starting_on_auto(tmp_path: Path) -> None:
    report = run_bitwig({"steps": [*CLIP, {"press": True}]}, tmp_path)
    assert ["string", "Similarity (1 close .. 0 free; empty: auto)", ""] in report["settings"]
    assert ["enum", "Hold notes (MIDI)", ["auto", "on", "off"], "auto"] in report["settings"]
    assert ["enum", "Keep opening (audio)", ["auto", "on", "off"], "auto"] in report["settings"]
    assert _generate(report) == ["continue", 4, 2]  # all auto: the three-argument form


def test_bitwig_sends_its_control_settings_and_the_bridge_takes_them(tmp_path: Path) -> None:
    report = run_bitwig({"steps": [*CLIP, *SETTINGS, {"press": "Accompany the selected clip"}]}, tmp_path)
    args = _generate(report)
    assert args == [
        "accompany", 2, 2, "bass,piano", "auto",
        "similarity", 0.3, "density", 1.5, "density:bass", 0.5, "hold_notes", 1, "end_on_tonic", 0,
    ]  # fmt: skip
    bridge = OscBridge(BridgeService(FakeEngine(), tmp_path / "unused"))
    values = check_arguments("/segue/generate", bridge.routes["/segue/generate"], args)
    assert values[5] == [("similarity", 0.3), ("density", 1.5), ("density:bass", 0.5), ("hold_notes", 1),
                         ("end_on_tonic", 0)]  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        (["Similarity (1 close .. 0 free; empty: auto)", "close"], "Similarity must be a number from 0 (free) to 1"),
        (["Density (MIDI: 1.5 and/or bass=0.5; empty: auto)", "bass=lots"], "Density is a factor (1.5) and/or"),
        (["Density (MIDI: 1.5 and/or bass=0.5; empty: auto)", "=2"], "Density is a factor (1.5) and/or"),
    ],
)
def test_bitwig_refuses_a_bad_setting_before_sending(tmp_path: Path, setting: list[str], says: str) -> None:
    report = run_bitwig({"steps": [*CLIP, {"set_string": setting}, {"press": True}]}, tmp_path)
    assert not report["sent"]
    assert says in report["popups"][-1]
