"""Segue Link's VST3 build in a real host library: pedalboard (PyPI, GPL-3.0, in the venv) loads it, lists its
automatable parameters and runs audio through it; when nothing is armed or playing the audio is bit-exact.

pedalboard 0.9 on Linux loads VST3 only (its classes are VST3Plugin and AudioUnitPlugin, no LV2), so the LV2 build
is hosted by jalv (test_jalv.py). Audio: seeded noise made by the rig."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import numpy as np
import pytest
from link_rig import Built, SegueStub, noise

pedalboard = pytest.importorskip("pedalboard", reason="pedalboard is in the venv's dev extra (pip install pedalboard)")


@pytest.fixture
def vst3(built: Built, segue: SegueStub, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("SEGUE_OSC_PORT", str(segue.port))  # read by the plugin when it is activated, in-process
    monkeypatch.setenv("SEGUE_LINK_DIR", str(tmp_path / "link"))
    plugin = pedalboard.load_plugin(str(built.vst3))
    yield plugin
    del plugin
    gc.collect()


@pytest.mark.parametrize(("rate", "buffer_size"), [(44100, 1), (48000, 333), (96000, 4096), (192000, 8192)])
def test_pedalboard_runs_the_vst3_and_idle_audio_passes_bit_exact(
    vst3: object, segue: SegueStub, rate: int, buffer_size: int
) -> None:
    audio = noise(rate // 2 if buffer_size > 1 else 4410, seed=rate).T.copy()
    out = vst3(audio, rate, buffer_size=buffer_size)  # type: ignore[operator]
    assert out.dtype == np.float32 and np.array_equal(out, audio)
    deadline = time.monotonic() + 10  # activated at the rate pedalboard asks for, it says hello with that rate
    while not any(hello[2:] == ["default", rate, "0.1.0"] for hello in segue.all("/segue/link/hello")):
        assert time.monotonic() < deadline, f"no hello at {rate} Hz: {segue.all('/segue/link/hello')}"
        time.sleep(0.02)


def test_the_vst3_exposes_capture_bars_play_and_level_as_automatable_parameters(vst3: object) -> None:
    params = vst3.parameters  # type: ignore[attr-defined]
    assert params["capture"].name == "Capture"
    assert params["bars_0_loop"].range == (0.0, 64.0, 1.0)
    assert params["play_variant"].range == (0.0, 1.0, 1.0)
    assert params["variant_level"].name == "Variant level"
    assert {"status", "segue_connected"} <= set(params)
    vst3.bars_0_loop = 8  # type: ignore[attr-defined]
    vst3.variant_level = 0.25  # type: ignore[attr-defined]
    assert vst3.bars_0_loop == 8 and abs(vst3.variant_level - 0.25) < 1e-3  # type: ignore[attr-defined]
