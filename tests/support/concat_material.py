"""Real recordings for the segue-concat tests, from Debian packages that install offline (tests skip without them).

- ``lmms-common``: drum and bass loops under /usr/share/lmms/samples (Ogg Vorbis), GPL-2+ per Debian's
  /usr/share/doc/lmms-common/copyright. A loop of one or two bars is tiled to a 4-bar region; its tempo is the
  loop's length (the loops were chosen because their onsets fit that tempo's 1/16 grid).
- ``hydrogen-drumkits``: recorded drum hits (ColomboAcousticDrumkit: GPL-2+, Marcos Guglielmetti; Millo-Drums_v.1:
  GPL-2, Emiliano Grilli; per /usr/share/doc/hydrogen-drumkits/copyright), sequenced here into a rock groove with
  a little humanisation (timing +-8 ms, velocity 0.8-1.0, a ghost note and a varying kick) so no two bars are the
  same.
- ``synthetic_groove``: numpy drums (a sine kick, noise snare and hats) for the mechanics, always available.

No pytest here (bench/bench_concat.py uses it too): missing packages raise :class:`MaterialMissing`, which the
tests turn into a skip that says what to install.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from engine.audio.audio_io import resample
from engine.evaluate.audio import detect_onsets


class MaterialMissing(Exception):
    """A Debian package with real recordings is not installed."""


LMMS = Path("/usr/share/lmms/samples")
HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
# name: (file under samples/, bars in the loop)
LOOPS = {
    "909beat01": ("beats/909beat01.ogg", 2),
    "break01": ("beats/break01.ogg", 1),
    "house_loop01": ("beats/house_loop01.ogg", 1),
    "electro_beat01": ("beats/electro_beat01.ogg", 2),
    "briff01": ("bassloops/briff01.ogg", 1),
    "tb303_01": ("bassloops/tb303_01.ogg", 2),
    # held out while the engine was tuned:
    "break03": ("beats/break03.ogg", 1),
    "rave_bass02": ("bassloops/rave_bass02.ogg", 2),
    "techno_bass02": ("bassloops/techno_bass02.ogg", 1),
    "rave_hihat01": ("beats/rave_hihat01.ogg", 2),
}
KITS = {
    "colombo": ("ColomboAcousticDrumkit", "bassdrum-4mics-br-stereo-normal3.flac",
                "snare-opaque-2mics_normal-shot1.flac", "hihat-closed-1.flac", "hihat-open-1.flac"),
    "millo": ("Millo-Drums_v.1", "bd1.flac", "snare1.flac", "closehihat3.flac", "openhat2.flac"),
}  # fmt: skip


def lmms_loop(name: str, region_bars: int = 4) -> tuple[np.ndarray, int, float]:
    """(audio [C, n] float32, sample rate, tempo BPM): an lmms loop tiled to ``region_bars`` bars of 4/4."""
    file, loop_bars = LOOPS[name]
    path = LMMS / file
    if not path.is_file():
        raise MaterialMissing(f"{path} is missing: install Debian's lmms-common for the real-loop tests")
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    tempo = 240.0 * loop_bars / (len(data) / rate)
    tiled = np.tile(data.T, (1, region_bars // loop_bars))
    tiled /= max(1.0, float(np.abs(tiled).max()) / 0.99)  # decoded Vorbis may pass full scale: a gain, no clipping
    return np.ascontiguousarray(tiled), int(rate), tempo


def _hit(path: Path, rate: int, channels: int) -> np.ndarray:
    data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = data.T
    if audio.shape[0] != channels:
        audio = audio.mean(axis=0, keepdims=True) if channels == 1 else np.repeat(audio[:1], channels, axis=0)
    if file_rate != rate:
        audio = resample(np.ascontiguousarray(audio), file_rate, rate)
    return np.asarray(audio, dtype=np.float32)


def hydrogen_groove(kit: str, tempo: float, bars: int = 4, rate: int = 44_100, channels: int = 2,
                    seed: int = 0) -> np.ndarray:  # fmt: skip
    """A humanised rock groove of recorded hits: ``[channels, bars x bar]`` float32, peak 0.8."""
    folder, *names = KITS[kit]
    paths = [HYDROGEN / folder / n for n in names]
    if not all(p.is_file() for p in paths):
        raise MaterialMissing(f"{HYDROGEN / folder} is missing: install Debian's hydrogen-drumkits (groove tests)")
    kick, snare, hat, open_hat = (_hit(p, rate, channels) for p in paths)
    step = 60.0 / tempo / 4
    rng = np.random.default_rng(seed)
    length = round(bars * 16 * step * rate)
    out = np.zeros((channels, length + 4 * rate), np.float32)

    def place(sound: np.ndarray, at_step: float, velocity: float) -> None:
        jitter = float(np.clip(rng.normal(0.0, 0.004), -0.008, 0.008))
        start = max(0, round((at_step * step + jitter) * rate))
        out[:, start : start + sound.shape[1]] += velocity * rng.uniform(0.8, 1.0) * sound

    for bar in range(bars):
        base = bar * 16
        last = bar == bars - 1
        for s in (0, 8) + ((10,) if rng.random() < 0.5 else (6,)):
            place(kick, base + s, 1.0)
        for s in (4, 12):
            place(snare, base + s, 0.9)
        if rng.random() < 0.5:
            place(snare, base + 15, 0.25)  # a ghost note
        if last:
            for s in (13, 14):
                place(snare, base + s, 0.6)
        for s in range(0, 16, 2):
            place(open_hat if (last and s == 14) else hat, base + s, 0.7 if s % 4 == 0 else 0.45)
    out = out[:, :length]
    return np.asarray(0.8 * out / np.abs(out).max(), dtype=np.float32)


def synthetic_groove(tempo: float, bars: int, rate: int, channels: int = 2, beats_per_bar: float = 4.0,
                     seed: int = 0) -> np.ndarray:  # fmt: skip
    """Numpy drums on a 1/8 grid: a sine kick on each bar line and half bar, noise snares between, hats, and on
    about 30 % of the other eighths an extra kick or a ghost snare (so bars differ)."""
    rng = np.random.default_rng(seed)
    eighth = 30.0 / tempo
    length = round(bars * beats_per_bar * 60.0 / tempo * rate)
    out = np.zeros((channels, length + rate), np.float32)
    t = np.arange(round(0.25 * rate)) / rate
    kick = (np.sin(2 * np.pi * 55 * t * (1 + 2 * np.exp(-t * 30))) * np.exp(-t * 12)).astype(np.float32)
    snare = (rng.standard_normal(len(t)) * np.exp(-t * 25)).astype(np.float32)
    hat = (np.diff(rng.standard_normal(len(t) + 1)) * np.exp(-t * 80)).astype(np.float32)
    per_bar = round(beats_per_bar * 2)
    for e in range(round(bars * per_bar)):
        start = round(e * eighth * rate)
        pos = e % per_bar
        sound = kick if pos in (0, per_bar // 2) else snare * 0.5 if pos % 2 == 0 else hat * 0.3
        if pos not in (0, per_bar // 2) and rng.random() < 0.3:  # a variation: an extra kick or a ghost snare
            sound = kick * 0.6 if rng.random() < 0.5 else snare * 0.2 + sound
        pan = np.array([1.0, 0.7]) if pos % 2 else np.array([0.8, 1.0])
        gain = pan[:channels, None] if channels == 2 else np.ones((1, 1))
        out[:, start : start + len(sound)] += gain * sound[None, :] * rng.uniform(0.8, 1.0)
    out = out[:, :length]
    return np.asarray(0.7 * out / np.abs(out).max(), dtype=np.float32)


CHORD_SOUNDS = {
    # name: (pad held through each bar, chord stabbed on a rhythm), both C major in lmms-common
    "strings": ("stringsnpads/heaven_strings01.ogg", "instruments/e_piano_accord01.ogg"),
    "space": ("stringsnpads/space_strings01.ogg", "instruments/e_piano_accord02.ogg"),
}
PROGRESSION = (0, 5, -5, -2)  # semitones from C: C, F, G, Bb (one chord a bar)
STABS = (0, 3, 4, 6)  # the eighths of a bar a chord is stabbed on


def _shifted(audio: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """``audio`` played ``semitones`` higher (faster), by resampling."""
    return np.asarray(resample(np.ascontiguousarray(audio), round(rate * 2 ** (semitones / 12)), rate), np.float32)


def _trimmed(audio: np.ndarray) -> np.ndarray:
    """``audio`` from its first sample within 40 dB of its peak (a sample's leading silence would put the chords
    behind the grid)."""
    level = np.abs(audio).max(axis=0)
    return audio[:, int(np.argmax(level >= 0.01 * level.max())) :]


def chord_region(sounds: str, tempo: float, bars: int = 4, rate: int = 44_100) -> np.ndarray:
    """A chord-heavy 4/4 region of real recordings: lmms-common's C major pad held through each bar and its
    electric-piano C major chord stabbed on the eighths of :data:`STABS`, both pitch-shifted to one chord of
    :data:`PROGRESSION` per bar (stereo, peak 0.8). The material for the harmony measure."""
    pad_file, stab_file = CHORD_SOUNDS[sounds]
    if not (LMMS / pad_file).is_file() or not (LMMS / stab_file).is_file():
        raise MaterialMissing(f"{LMMS / pad_file} is missing: install Debian's lmms-common for the chord regions")
    pad, stab = (_trimmed(_hit(LMMS / f, rate, 2)) for f in (pad_file, stab_file))
    bar = 240.0 / tempo * rate
    eighth = round(bar / 8)
    out = np.zeros((2, round(bars * bar) + 4 * rate), np.float32)
    release = np.linspace(1.0, 0.0, round(0.03 * rate), dtype=np.float32)
    for b in range(bars):
        shift = PROGRESSION[b % len(PROGRESSION)]
        start = round(b * bar)
        held = _shifted(pad, rate, shift)[:, : round(bar)].copy()
        held[:, -len(release) :] *= release
        out[:, start : start + held.shape[1]] += 0.5 * held
        chord = _shifted(stab, rate, shift)
        found = detect_onsets(chord.mean(axis=0).astype(np.float64), rate)
        lead = round(float(found[0]) * rate) if len(found) and found[0] < 0.1 else 0  # its attack on the grid
        chord = chord[:, lead : lead + eighth + len(release)].copy()
        chord[:, -len(release) :] *= release
        for e in STABS:
            at = start + e * eighth
            out[:, at : at + chord.shape[1]] += chord
    out = out[:, : round(bars * bar)]
    return np.asarray(0.8 * out / np.abs(out).max(), dtype=np.float32)
