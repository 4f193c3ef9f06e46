"""Key estimation shared by the MIDI and audio measures: Krumhansl-Kessler profiles on a pitch-class histogram."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the raised seventh of harmonic minor


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class, 0 = C
    mode: str  # "major" or "minor"
    correlation: float  # with the best profile, -1..1

    def __str__(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"

    def scale(self) -> frozenset[int]:
        steps = MAJOR_SCALE if self.mode == "major" else MINOR_SCALE
        return frozenset((self.tonic + s) % 12 for s in steps)

    def same_or_relative(self, other: Key) -> bool:
        """The same key, or its relative major/minor (the same notes: A minor for C major)."""
        if (self.tonic, self.mode) == (other.tonic, other.mode):
            return True
        if self.mode == other.mode:
            return False
        major, minor = (self, other) if self.mode == "major" else (other, self)
        return (major.tonic + 9) % 12 == minor.tonic


def estimate_key(histogram: npt.NDArray[np.floating]) -> Key | None:
    """The best-correlated of the 24 keys for a 12-bin pitch-class histogram; None when it is empty or flat."""
    h = np.asarray(histogram, dtype=np.float64)
    if h.shape != (12,) or h.sum() <= 0 or np.allclose(h, h[0]):
        return None
    best: Key | None = None
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(h, np.roll(profile, tonic))[0, 1])
            if best is None or r > best.correlation:
                best = Key(tonic, mode, r)
    return best
