"""The shared request types refuse numbers that no region can have, once, for every way in (CLI, OSC, HTTP, GUI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.api import MAX_REGION_BEATS, MAX_START_BEATS, Meter, Prompt
from engine.errors import BadInputError

REGION = Path("/regions/region.mid")  # never opened: Prompt checks values, not files


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("length_beats", 1e30, "region length (length_beats) must be a positive number of beats"),
        ("length_beats", 1e308, "up to 32768"),
        ("length_beats", float("nan"), "got nan"),
        ("length_beats", float("inf"), "got inf"),
        ("length_beats", 0.0, "positive"),
        ("length_beats", MAX_REGION_BEATS + 1, "select a shorter region"),
        ("length_beats", 10**400, "up to 32768"),  # a JSON integer of 400 digits: no OverflowError
        ("length_beats", "8", "got '8'"),
        ("length_beats", True, "got True"),
        ("start_beats", float("nan"), "region start (start_beats) must be a number of beats"),
        ("start_beats", -1.0, "in 0..1000000, got -1.0"),
        ("start_beats", 1e308, "got 1e+308"),
        ("start_beats", MAX_START_BEATS * 2, "in 0..1000000"),
        ("tempo_bpm", float("-inf"), "tempo must be between 10 and 400 BPM"),
        pytest.param("tempo_bpm", 10**5000, "got a number too long to show", id="tempo_bpm-5000-digits"),
    ],
)
def test_a_prompt_refuses_numbers_no_region_can_have(field: str, value: object, words: str) -> None:
    with pytest.raises(BadInputError) as error:
        Prompt(midi_path=REGION, **{field: value})  # type: ignore[arg-type]
    assert words in str(error.value)


def test_a_prompt_takes_the_largest_sane_values() -> None:
    prompt = Prompt(
        midi_path=REGION, tempo_bpm=400.0, meter=Meter(4, 4), length_beats=MAX_REGION_BEATS, start_beats=MAX_START_BEATS
    )
    assert prompt.length_beats == MAX_REGION_BEATS and prompt.start_beats == MAX_START_BEATS
    assert Prompt(midi_path=REGION, length_beats=8, start_beats=0).length_beats == 8  # ints are numbers too
