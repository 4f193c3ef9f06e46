"""The producer's controls as ``/segue/generate``'s optional key/value pairs (and as the watched folder's
``generate`` keys): good ones reach GenerationParams and job.json, bad ones get a /segue/error that names them,
and every older form of the message still works. No sockets (bridge.osc.OscBridge.handle_datagram), except one
UDP round trip; the region is a two-bar MIDI file the test writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine, write_midi_region
from osc_helpers import CLIENT, DawSocket, Recorder
from pythonosc.osc_message_builder import OscMessageBuilder, build_msg

from bridge.controls import controls_from_pairs
from bridge.osc import OscBridge, OscServer
from bridge.service import BridgeService
from bridge.watch import request_messages
from engine.errors import BadInputError


class Bridge:
    def __init__(self, tmp_path: Path) -> None:
        self.engine = FakeEngine()
        self.region = write_midi_region(tmp_path / "region.mid").resolve()
        self.out = tmp_path / "out"
        self.service = BridgeService(self.engine, self.out, place="none")  # type: ignore[arg-type]
        self.osc = OscBridge(self.service)
        self.sent = Recorder()
        self.osc.attach(self.sent)
        self.service.start()
        self.send("/segue/region", "", str(self.region), 0.0, 8.0, 120.0, 4, 4, "Keys")

    def send(self, address: str, *args: Any) -> None:
        self.osc.handle_datagram(build_msg(address, list(args)).dgram, CLIENT)

    def send_typed(self, address: str, *typed: tuple[str, Any]) -> None:
        builder = OscMessageBuilder(address=address)
        for kind, value in typed:
            builder.add_arg(value, kind)
        self.osc.handle_datagram(builder.build().dgram, CLIENT)

    def errors(self) -> list[str]:
        return [args[0] for args in self.sent.of("/segue/error")]

    def job_params(self) -> dict[str, Any]:
        (job_id,) = [args[0] for args in self.sent.wait_for("/segue/job/done")]
        params: dict[str, Any] = json.loads((self.out / job_id / "job.json").read_text())["params"]
        return params


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    harness = Bridge(tmp_path)
    yield harness
    harness.service.close()


def test_key_value_pairs_reach_the_engine_and_job_json(bridge: Bridge) -> None:
    bridge.send_typed(
        "/segue/generate",
        ("s", "continue"), ("i", 2), ("i", 1), ("s", ""), ("s", "auto"),
        ("s", "similarity"), ("f", 0.7),  # a 32-bit OSC float: 0.699999988, recorded as 0.7
        ("s", "keep_opening"), ("F", False),
        ("s", "density"), ("i", 2),
        ("s", "density:bass"), ("f", 0.5),
        ("s", "density:piano"), ("f", 1.5),
        ("s", "hold_notes"), ("T", True),
        ("s", "end_on_tonic"), ("i", 1),  # Lua and Max send numbers for flags
    )  # fmt: skip
    params = bridge.job_params()
    assert bridge.errors() == []
    assert params["similarity"] == 0.7 and params["keep_opening"] is False and params["density"] == 2.0
    assert params["part_density"] == {"bass": 0.5, "piano": 1.5}
    assert params["hold_notes"] is True and params["end_on_tonic"] is True
    seen = bridge.engine.requests[0].params
    assert seen.similarity == 0.7 and seen.part_density == (("bass", 0.5), ("piano", 1.5))


@pytest.mark.parametrize(
    "args",
    [
        ("continue", 2, 1),
        ("continue", 2, 1, ""),
        ("continue", 2, 1, "", "midi"),
        ("accompany", 2, 1, "bass", "auto"),
    ],
)
def test_every_older_form_still_works_with_the_engines_defaults(bridge: Bridge, args: tuple[Any, ...]) -> None:
    bridge.send("/segue/generate", *args)
    params = bridge.job_params()
    assert bridge.errors() == []
    assert params["similarity"] is None and params["density"] is None and params["part_density"] == {}
    assert params["keep_opening"] is None and params["hold_notes"] is None and params["end_on_tonic"] is None


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (("loudness", 1.0), "unknown key 'loudness'; the keys are similarity, keep_opening, density"),
        (("density:", 1.0), "unknown key 'density:'"),
        (("similarity", "close"), "similarity must be a number (OSC i or f), got a string 'close'"),
        (("similarity", True), "similarity must be a number (OSC i or f), got a bool"),
        (("similarity", 1.5), "similarity must be a number in 0..1"),
        (("density", 8), "density must be a factor in 0.25..4.0"),
        (("density:bass", 0.1), "density of bass must be a factor in 0.25..4.0"),
        (("density:Bass Guitar", 1.0), "a part density is (part name, factor)"),
        (("hold_notes", 2), "hold_notes must be true or false (OSC T/F, 1/0, or the string true/false), got an int 2"),
        (("end_on_tonic", "maybe"), "end_on_tonic must be true or false"),
        (("similarity", 0.5, "similarity", 0.6), "the key 'similarity' is given twice"),
        (("similarity",), "then key/value pairs after all 5 of them; got 6, so the last key has no value"),
        ((3, 0.5), "argument 6 must be a key (a string such as 'similarity'), got an int 3"),
    ],
)
def test_bad_pairs_are_refused_by_name_and_start_no_job(bridge: Bridge, pairs: tuple[Any, ...], expected: str) -> None:
    bridge.send("/segue/generate", "continue", 2, 1, "", "auto", *pairs)
    (error,) = bridge.errors()
    assert expected in error
    assert bridge.engine.requests == []


def test_pairs_without_parts_and_output_say_where_pairs_go(bridge: Bridge) -> None:
    bridge.send("/segue/generate", "continue", 2, 1, "similarity", 0.5)
    (error,) = bridge.errors()
    assert "argument 5 (s:output) must be a string, got a float" in error
    assert bridge.engine.requests == []


def test_a_nil_value_means_the_engines_default() -> None:
    assert controls_from_pairs([("similarity", None), ("hold_notes", "off")], "/x") == {"hold_notes": False}
    with pytest.raises(BadInputError, match="similarity must be a finite number"):
        controls_from_pairs([("similarity", float("nan"))], "/x")


def test_a_watched_folder_request_carries_the_controls(bridge: Bridge) -> None:
    request = {
        "midi_path": str(bridge.region),
        "start_beats": 0.0,
        "length_beats": 8.0,
        "tempo_bpm": 120.0,
        "generate": {
            "mode": "continue",
            "bars": 1,
            "variants": 1,
            "similarity": 0.25,
            "keep_opening": True,
            "part_density": {"bass": 0.5},
            "hold_notes": None,  # null: the engine's default
            "end_on_tonic": False,
        },
    }
    (_, region), (address, args) = request_messages(request)
    assert address == "/segue/generate"
    assert args[5:] == [("s", "similarity"), ("f", 0.25), ("s", "keep_opening"), ("T", True),
                        ("s", "density:bass"), ("f", 0.5), ("s", "end_on_tonic"), ("F", False)]  # fmt: skip
    bridge.send_typed("/segue/generate", *args)
    params = bridge.job_params()
    assert bridge.errors() == []
    assert params["similarity"] == 0.25 and params["keep_opening"] is True and params["end_on_tonic"] is False
    assert params["part_density"] == {"bass": 0.5} and params["hold_notes"] is None


def test_a_watched_folder_request_with_an_unknown_or_bad_control_is_refused(bridge: Bridge) -> None:
    base = {"midi_path": str(bridge.region), "start_beats": 0.0, "length_beats": 8.0, "tempo_bpm": 120.0}
    _, (_, args) = request_messages({**base, "generate": {"mode": "continue", "bars": 1, "variants": 1, "swing": 1}})
    bridge.send_typed("/segue/generate", *args)
    assert "unknown key 'swing'" in bridge.errors()[0]
    with pytest.raises(BadInputError, match="'part_density' must be an object"):
        request_messages({**base, "generate": {"mode": "continue", "part_density": 0.5}})
    with pytest.raises(BadInputError, match="'density' must be a number or true/false"):
        request_messages({**base, "generate": {"mode": "continue", "density": [1, 2]}})


def test_controls_over_real_udp(tmp_path: Path) -> None:
    harness = Bridge(tmp_path)
    server = OscServer(harness.osc, "127.0.0.1", 0)
    try:
        server.start()
        daw = DawSocket(server.address)
        try:
            daw.send("/segue/generate", "continue", 1, 1, "", "auto", "similarity", 0.9, "hold_notes", 1)
            (job_id, path) = daw.expect("/segue/job/done")
            params = json.loads(Path(path).read_text())["params"]
            assert params["similarity"] == 0.9 and params["hold_notes"] is True
        finally:
            daw.close()
    finally:
        server.close()
        harness.service.close()
