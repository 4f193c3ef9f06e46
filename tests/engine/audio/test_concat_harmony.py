"""segue-concat keeps its region's harmony: the harmony measure (engine/evaluate/audio.py: `harmony`) and the prior's
harmony (engine/audio/concat/prior.py), on chord-heavy regions.

Material: chords synthesised here with numpy (always available); lmms-common's heaven_strings01 pad and
e_piano_accord01 chord (GPL-2+, /usr/share/lmms/samples) pitch-shifted to C F G Bb by
`concat_material.chord_region` (skips without lmms-common); and `make demo-audio`'s region, the pop region of
examples/regions (written for Segue) rendered here through the General MIDI soundfont at 48 kHz.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from concat_material import MaterialMissing, chord_region, synthetic_groove

import engine.audio.concat.prior as prior
from bridge.cli import main as segue
from engine.api import Meter
from engine.audio.concat.codes import quantise
from engine.audio.concat.decode import render_plan
from engine.audio.concat.prior import Knobs, plan_continuation
from engine.audio.concat.units import RegionUnits, analyse_region
from engine.audio.continuation import BarGrid
from engine.audio.example_region import render_region
from engine.evaluate import evaluate_job
from engine.evaluate.audio import HARMONY_MIN, harmony, mono

ROOT = Path(__file__).resolve().parents[3]
RATE = 22_050
CHORDS = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (9, 12, 16))  # C, F, G, Am: one a bar


def synth_chords(tempo: float, bars: int = 4, rate: int = RATE) -> np.ndarray:
    """Stereo chords of harmonic tones (C4 up), one chord a bar, struck on the eighths 0, 3, 4 and 6 of each bar
    and ringing under the rest (a pad at a third of the level)."""
    bar = round(240.0 / tempo * rate)
    eighth = bar // 8
    t = np.arange(bar) / rate
    out = np.zeros(bars * bar)
    for b in range(bars):
        pitches = CHORDS[b % len(CHORDS)]
        tone = sum(np.sin(2 * np.pi * 261.63 * 2 ** (p / 12) * k * t) / k for p in pitches for k in (1, 2, 3))
        pad = 0.3 * tone
        for e in (0, 3, 4, 6):
            env = np.zeros(bar)
            env[e * eighth :] = np.exp(-np.arange(bar - e * eighth) / (0.08 * rate))
            pad = pad + tone * env
        out[b * bar : (b + 1) * bar] = pad
    out = np.stack([out, 0.9 * out])
    return np.asarray(0.8 * out / np.abs(out).max(), dtype=np.float32)


def continuation_harmony(audio: np.ndarray, rate: int, tempo: float, seed: int, bars: int = 8) -> float:
    units = analyse_region(audio, rate, BarGrid(tempo, Meter(4, 4)), 4, audio.shape[1])
    codes, _ = quantise(units.features)
    plan = plan_continuation(units, codes, bars, seed, Knobs(0.6, False, 4))
    rendering, _, _ = render_plan(units, plan.slices, bars, audio[:, -1])
    return harmony(mono(audio), mono(rendering.audio), rate, tempo, 4.0).mean


def test_the_harmony_measure_hears_a_slice_of_another_chord_and_not_a_new_order_of_bars() -> None:
    region = mono(synth_chords(120.0))
    bar = len(region) // 4
    reordered = np.concatenate([region[2 * bar :], region[: 2 * bar]])
    mixed = region.copy()
    mixed[5 * bar // 8 : 6 * bar // 8] = region[2 * bar + 5 * bar // 8 : 2 * bar + 6 * bar // 8]  # a G in a C bar
    mixed[bar + bar // 2 : 2 * bar] = region[3 * bar + bar // 2 :]  # half a bar of Am in the F bar
    good, bad = harmony(region, reordered, RATE, 120.0, 4.0), harmony(region, mixed, RATE, 120.0, 4.0)
    assert good.clarity > 0.5 and good.mean > 0.99 and good.worst > 0.99
    assert bad.bars[2:] == pytest.approx(good.bars[2:], abs=1e-9)
    assert bad.bars[0] < 0.99 and bad.bars[1] < 0.85, bad.bars  # an eighth of G in a bar of C costs its beat


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_continuation_of_numpy_chords_keeps_their_harmony_and_does_so_because_of_the_prior(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    audio = synth_chords(120.0)
    kept = continuation_harmony(audio, RATE, 120.0, seed)
    monkeypatch.setattr(prior, "HARMONY", 0.0)
    blind = continuation_harmony(audio, RATE, 120.0, seed)
    assert kept >= HARMONY_MIN and kept > blind, (kept, blind)


def test_the_harmony_leaves_a_drum_region_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drums have no clear chroma: the plan is the one the prior made before it knew harmony."""
    audio = synthetic_groove(120.0, 4, RATE, seed=5)
    units: RegionUnits = analyse_region(audio, RATE, BarGrid(120.0, Meter(4, 4)), 4, audio.shape[1])
    codes, _ = quantise(units.features)
    assert units.clarity < prior.TONAL_FROM
    plans = [plan_continuation(units, codes, 16, seed, Knobs(0.6, False, 4)) for seed in (1, 2)]
    monkeypatch.setattr(prior, "HARMONY", 0.0)
    assert plans == [plan_continuation(units, codes, 16, seed, Knobs(0.6, False, 4)) for seed in (1, 2)]


@pytest.mark.parametrize(("sounds", "tempo"), [("strings", 100.0), ("space", 120.0)])
def test_a_continuation_of_recorded_chords_keeps_their_harmony(sounds: str, tempo: float) -> None:
    try:
        audio = chord_region(sounds, tempo)
    except MaterialMissing as e:
        pytest.skip(str(e))
    for seed in (1, 2):
        assert continuation_harmony(audio, 44_100, tempo, seed) >= HARMONY_MIN


def test_make_demo_audio_passes_every_measure_the_key_and_the_harmony_included(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The region and command of `make demo-audio`; one of its four variants used to play F# major against the
    region's C# minor (the chroma key estimate; the region is in G major) with a slice of one chord inside a bar
    of another."""
    region = render_region(ROOT / "examples/regions/pop_100bpm_4-4.mid", tmp_path / "region.wav", 48_000)
    code = segue(["continue", str(region), "--tempo", "100", "--meter", "4/4", "--bars", "8", "--variants", "4",
                  "--seed", "7", "--model", "segue-concat", "--out", str(tmp_path / "out"), "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    score = evaluate_job(tmp_path / "out" / json.loads(captured.out)["id"])
    for variant in score.variants:
        assert variant.check("harmony").ok is True, variant.check("harmony")  # type: ignore[union-attr]
        failed = [c for c in variant.checks if c.ok is False]
        assert not failed, f"{variant.id}: {failed}"
    assert score.passed
