"""The engine's loaded models run their decode steps as the entry point's settings say (SEGUE_FAST_DECODE,
SEGUE_STEP_THREADS, SEGUE_DECODE_PRECISION are read once, by engine.entrypoints, and passed down).

The MIDI model is the shipped one (engine/models/segue-midi-small, our own model)."""

from __future__ import annotations

import pytest
import torch

from engine import entrypoints
from engine.environment import DecodeSettings
from engine.nn import model_fast
from engine.pipelines.context import Models


def test_a_loaded_midi_model_gets_the_engines_decode_settings() -> None:
    loaded = Models(torch.device("cpu"), DecodeSettings(fast=False, step_threads=2, precision="float32"))
    model = loaded.symbolic("default").model
    assert model.fast_decode is False and model.decode_threads == 2 and model.sampler_dtype == torch.float32
    default = Models(torch.device("cpu")).symbolic("default").model
    assert default.fast_decode is True and default.decode_threads is None
    assert default.sampler_dtype == model_fast.decode_dtype("auto")  # bfloat16 only on a CPU that has it natively


def test_the_local_engine_takes_its_decode_settings_from_the_environment_it_was_opened_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEGUE_FAST_DECODE", "off")
    monkeypatch.setenv("SEGUE_STEP_THREADS", "3")
    engine = entrypoints.open_engine("local", device="cpu")
    monkeypatch.setenv("SEGUE_FAST_DECODE", "1")  # read when the engine was opened, not when a model is used
    assert engine.loaded.decode == DecodeSettings(fast=False, step_threads=3)  # type: ignore[attr-defined]
    assert engine.loaded.symbolic("default").model.fast_decode is False  # type: ignore[attr-defined]
