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
