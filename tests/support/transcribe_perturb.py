"""Perturbations of basic-pitch's activations of the size that differs between CPUs, for
tests/engine/test_transcribe_robust.py and bench/bench_transcribe.py (through transcribe_region's ``model`` seam).

Sizes, measured on this project's machines (docs/transcription.md, "Across CPUs"): onnxruntime's graph optimisation
changes the activations by up to 3e-5; the same audio with -100 dBFS of noise added changes them by up to 0.02-0.03
(99.9th percentile 0.009-0.012); the bleed onsets that changed notes on an AMD EPYC sat 0.035-0.074 above the 0.5
onset threshold. ``jittered`` at scale 1 (0.02 on every activation plus 3 % of it, and up to 5 % gain per key) covers
these; the ghosts are faint notes a harmonic under real ones (MuseScore General's piano gives such notes at MIDI 39,
41 and 44 under a C major melody, peaking at 0.39-0.74)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.api import CancelToken
from engine.transcribe.grid import HARMONICS, MODEL_SAMPLE_RATE
from engine.transcribe.model import FFT_HOP, MIDI_OFFSET, Activations, ModelRunner, Progress

FRAMES_PER_SECOND = MODEL_SAMPLE_RATE / FFT_HOP
NOISE = 0.02  # absolute, on every activation and frame
RELATIVE = 0.03  # multiplicative, on every activation and frame
KEY_GAIN = 0.05  # a kernel's systematic error: each key's activations scaled by up to +-5 %


def jittered(activations: Activations, rng: np.random.Generator, scale: float = 1.0) -> Activations:
    """``activations`` with noise and a gain per key, ``scale`` times the sizes above, clipped to 0..1."""
    out = {}
    for name, value in activations.items():
        gain = 1.0 + scale * KEY_GAIN * rng.uniform(-1.0, 1.0, value.shape[1])
        noisy = value * gain * (1.0 + scale * RELATIVE * rng.standard_normal(value.shape))
        out[name] = np.clip(noisy + scale * NOISE * rng.standard_normal(value.shape), 0.0, 1.0).astype(np.float32)
    return out


def with_ghosts(
    activations: Activations, notes: list[tuple[float, float, int]], rng: np.random.Generator, count: int
) -> list[int]:
    """Add ``count`` faint notes a harmonic under some of ``notes`` ((start seconds, length seconds, pitch), notes
    the model heard) to ``activations`` in place: peak 0.35-0.55, within the real note's span, an onset of 0.1-0.7
    at their start. Their pitches."""
    note, onset = activations["note"], activations["onset"]
    under = [n for n in notes if n[2] - max(HARMONICS) >= MIDI_OFFSET]  # a ghost stays on the model's keys
    pitches = []
    for i in rng.choice(len(under), size=count, replace=False):
        start, seconds, real = under[int(i)]
        pitch = real - int(rng.choice(HARMONICS))
        first = round(start * FRAMES_PER_SECOND) + int(rng.integers(0, 3))
        length = max(14, round(seconds * FRAMES_PER_SECOND * rng.uniform(0.6, 0.9)))  # the decoder keeps > 8 frames
        key = pitch - MIDI_OFFSET
        span = note[first : first + length, key]
        ramp = np.minimum(np.arange(1, span.shape[0] + 1), np.arange(span.shape[0], 0, -1))
        bump = rng.uniform(0.35, 0.55) * np.minimum(1.0, ramp / 2.0)  # up and down over 2 frames
        note[first : first + length, key] = np.maximum(span, bump.astype(np.float32))
        onset[first, key] = max(float(onset[first, key]), float(rng.uniform(0.1, 0.7)))
        pitches.append(pitch)
    return pitches


def stand_in(activations: Activations) -> ModelRunner:
    """A model runner for transcribe_region that gives (a copy of) ``activations`` whatever the audio."""

    def run(mono: npt.NDArray[np.float32], progress: Progress | None, cancel: CancelToken | None) -> Activations:
        return {name: value.copy() for name, value in activations.items()}

    return run
