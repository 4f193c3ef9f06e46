"""The remote engine's request JSON (engine/wire.py) carries the producer's controls both ways; bad values sent by
a client are refused with GenerationParams's words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.api import GenerationParams, GenerationRequest, Meter, Prompt
from engine.errors import BadInputError
from engine.wire import request_from_json, request_to_json

MIDI = Path("/srv/region.mid")  # request_from_json takes the server's own paths; nothing is read here


def _request(**controls: object) -> GenerationRequest:
    params = GenerationParams(bars=2, variants=3, seed=11, **controls)  # type: ignore[arg-type]
    return GenerationRequest(Prompt(midi_path=MIDI, tempo_bpm=96.0, meter=Meter(6, 8)), params, "fake-midi")


@pytest.mark.parametrize(
    "controls",
    [
        {},
        {"similarity": 0.0, "keep_opening": False, "hold_notes": False, "end_on_tonic": False},
        {
            "similarity": 0.85,
            "keep_opening": True,
            "density": 0.5,
            "part_density": (("bass", 0.25), ("piano", 4.0)),
            "hold_notes": True,
            "end_on_tonic": True,
        },
    ],
)
def test_a_request_with_controls_survives_the_round_trip_through_json(controls: dict[str, object]) -> None:
    request = _request(**controls)
    text = json.dumps(request_to_json(request))  # what the client posts
    back = request_from_json(json.loads(text), midi_path=MIDI)
    assert back == request
    assert back.params.part_density == request.params.part_density  # the order of the parts too


def test_controls_travel_as_plain_json_with_null_for_the_engines_default() -> None:
    data = request_to_json(_request(density=1.5, part_density=(("bass", 0.5),)))
    assert data["density"] == 1.5 and data["part_density"] == {"bass": 0.5}
    assert data["similarity"] is None and data["keep_opening"] is None
    assert data["hold_notes"] is None and data["end_on_tonic"] is None


def test_a_request_from_an_older_client_without_controls_gets_the_defaults() -> None:
    data = request_to_json(_request())
    for key in ("similarity", "keep_opening", "density", "part_density", "hold_notes", "end_on_tonic"):
        del data[key]
    params = request_from_json(data, midi_path=MIDI).params
    assert params == _request().params


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"similarity": 2}, "similarity must be a number in 0..1"),
        ({"similarity": "0.5"}, "similarity must be a number in 0..1"),
        ({"keep_opening": "yes"}, "keep_opening must be true or false"),
        ({"hold_notes": 1}, "hold_notes must be true or false"),
        ({"density": 0.1}, "density must be a factor in 0.25..4.0"),
        ({"part_density": [["bass", 0.5]]}, "part_density must be an object"),
        ({"part_density": {"bass": 5}}, "density of bass must be a factor"),
        ({"part_density": {"Bass Guitar": 1}}, "a part density is (part name, factor)"),
    ],
)
def test_bad_controls_from_a_client_are_refused_by_name(changes: dict[str, object], words: str) -> None:
    data = {**request_to_json(_request()), **changes}
    with pytest.raises(BadInputError) as caught:
        request_from_json(data, midi_path=MIDI)
    assert words in str(caught.value)
