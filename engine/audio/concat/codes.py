"""Codes: the region's slices quantised into a small codebook (k-means over their features).

The codebook is fitted on the region alone ("the region itself is data"): a few dozen slices give a handful of
codes (about one code per three slices, 2..32). Two slices share a code when they sound alike; the prior
(:mod:`engine.audio.concat.prior`) matches histories of codes the way a factor oracle follows suffix links.
Deterministic: k-means++ seeding from a fixed generator, then Lloyd iterations.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

MIN_CODES, MAX_CODES = 2, 32
SLICES_PER_CODE = 3
ITERATIONS = 30


def codebook_size(slices: int) -> int:
    return max(1, min(slices, max(MIN_CODES, min(MAX_CODES, round(slices / SLICES_PER_CODE)))))


def kmeans(
    features: npt.NDArray[np.float64], k: int, seed: int = 0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(code of each row, centroids [k, D]) of ``features [N, D]`` by k-means++ then Lloyd's iterations."""
    n = len(features)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centroids = [features[int(rng.integers(n))]]
    for _ in range(1, k):
        d2 = np.min(((features[:, None, :] - np.array(centroids)[None]) ** 2).sum(axis=2), axis=1)
        total = float(d2.sum())
        if total <= 1e-12:
            break
        centroids.append(features[int(rng.choice(n, p=d2 / total))])
    c = np.array(centroids)
    codes = np.zeros(n, dtype=np.int64)
    for _ in range(ITERATIONS):
        d2 = ((features[:, None, :] - c[None]) ** 2).sum(axis=2)
        new = np.argmin(d2, axis=1).astype(np.int64)
        if np.array_equal(new, codes) and _ > 0:
            break
        codes = new
        for j in range(len(c)):
            members = features[codes == j]
            if len(members):
                c[j] = members.mean(axis=0)
    return codes, c


def quantise(features: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.int64], float]:
    """The code of each slice, and the share of the features' variance the codebook explains."""
    k = codebook_size(len(features))
    codes, centroids = kmeans(features, k)
    total = float(((features - features.mean(axis=0)) ** 2).sum())
    residual = float(((features - centroids[codes]) ** 2).sum())
    explained = 1.0 - residual / total if total > 1e-12 else 1.0
    return codes, max(0.0, min(1.0, explained)) if math.isfinite(explained) else 0.0
