"""The n-gram baseline: normalised distributions, and it beats uniform on a repetitive stream."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.symbolic.ngram import NGramModel


def repetitive_stream(n: int, seed: int) -> np.ndarray:
    motif_rng = np.random.default_rng(1234)  # the same motifs in every stream; their order varies by seed
    motifs = [motif_rng.integers(0, 50, size=8) for _ in range(5)]
    rng = np.random.default_rng(seed)
    return np.concatenate([motifs[int(rng.integers(0, 5))] for _ in range(n // 8)])


@pytest.mark.parametrize("order", [1, 2, 4])
def test_distributions_normalise(order: int) -> None:
    model = NGramModel(order, vocab_size=60).fit(repetitive_stream(4000, 0))
    for context in ([], [3], [1, 2, 3, 4, 5], [59, 59, 59]):
        dist = model.distribution(context)
        assert dist.shape == (60,)
        assert (dist > 0).all()
        assert dist.sum() == pytest.approx(1.0, abs=1e-9)


def test_beats_uniform_and_lower_orders() -> None:
    train, val = repetitive_stream(20000, 1), repetitive_stream(4000, 2)
    losses = {k: NGramModel(k, vocab_size=60).fit(train).loss(val) for k in (1, 2, 4)}
    assert losses[1] < math.log(60)
    assert losses[4] < losses[2] < losses[1]
    assert losses[4] < 0.5 * math.log(60)


def test_loss_matches_explicit_probabilities() -> None:
    model = NGramModel(3, vocab_size=60).fit(repetitive_stream(2000, 3))
    val = repetitive_stream(64, 4)
    expected = -np.mean([math.log(model.distribution([int(t) for t in val[:i]])[val[i]]) for i in range(1, 64)])
    assert model.loss(val) == pytest.approx(expected, rel=1e-9)


def test_bad_order() -> None:
    with pytest.raises(ValueError, match="order"):
        NGramModel(0, vocab_size=60)
