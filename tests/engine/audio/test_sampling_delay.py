"""Delay interleaving, primed batched sampling, per-seed determinism, windows past the context, cancel."""

from __future__ import annotations

import pytest
import torch
from audio_fakes import SmoothCodec

from engine.api import CancelToken
from engine.audio.prior import prior_config
from engine.audio.sampling import Draws, SamplingOptions, delay_pattern, sample_frames, undelay_pattern, windows_needed
from engine.errors import CancelledError
from engine.nn.model import GPT


@pytest.fixture(scope="module")
def prior() -> GPT:
    torch.manual_seed(0)
    return GPT(prior_config("tiny", SmoothCodec(size=16), block_size=48)).eval()


@pytest.mark.parametrize(("Q", "F"), [(1, 5), (2, 1), (4, 7), (8, 3)])
def test_delay_pattern_round_trip(Q: int, F: int) -> None:
    codes = torch.randint(0, 100, (3, Q, F))
    steps = delay_pattern(codes, special=100)
    assert steps.shape == (3, Q, F + Q - 1)
    for q in range(Q):  # codebook q delayed by q steps, the special id around it
        assert torch.equal(steps[:, q, q : q + F], codes[:, q])
        assert bool((steps[:, q, :q] == 100).all()) and bool((steps[:, q, q + F :] == 100).all())
    assert torch.equal(undelay_pattern(steps), codes)


def test_shape_range_and_prompt(prior: GPT) -> None:
    prompt = torch.randint(0, 16, (2, 10))
    codes = sample_frames(prior, prompt, 12, Draws(seeds=[1, 2, 3]))
    assert codes.shape == (3, 2, 12) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 16, "never the special id"
    with pytest.raises(ValueError, match="prompt"):
        sample_frames(prior, torch.randint(0, 16, (3, 10)), 4, Draws(seeds=[1]))
    with pytest.raises(ValueError, match="context"):
        sample_frames(prior, torch.randint(0, 16, (2, 49)), 4, Draws(seeds=[1]))


def test_a_variant_depends_only_on_its_seed_and_settings(prior: GPT) -> None:
    prompt = torch.randint(0, 16, (2, 10))
    a = sample_frames(prior, prompt, 20, Draws(seeds=[5, 6]))
    b = sample_frames(prior, prompt, 20, Draws(seeds=[6, 5]))
    assert torch.equal(a[0], b[1]) and torch.equal(a[1], b[0]), "not its place in the batch"
    assert not torch.equal(a[0], a[1]), "different seeds, different variants"
    c = sample_frames(prior, prompt, 20, Draws(seeds=[5, 9], temperature=[1.0, 0.3], top_p=[0.95, 0.5]))
    assert torch.equal(a[0], c[0]), "not the other variants' temperature or top-p"
    cold = sample_frames(prior, prompt, 20, Draws(seeds=[9], temperature=0.05, top_p=0.01))
    greedy = sample_frames(prior, prompt, 20, Draws(seeds=[10], temperature=0.05, top_p=0.01))
    assert torch.equal(cold, greedy), "top-p this small leaves only the most likely code"


def test_windows_longer_than_the_context(prior: GPT) -> None:
    """48 steps of context, a prompt of 20 frames, 100 new frames: several overlapping windows."""
    options = SamplingOptions(keep_fraction=0.5)
    assert windows_needed(20, 100, 2, 48, options.keep_steps(48)) >= 4
    reported: list[float] = []
    prompt = torch.randint(0, 16, (2, 20))
    codes = sample_frames(prior, prompt, 100, Draws([1, 2]), options=options, progress=reported.append)
    assert codes.shape == (2, 2, 100)
    assert reported[-1] == 1.0 and reported == sorted(reported)
    again = sample_frames(prior, prompt, 100, Draws([2]), options=options)
    assert torch.equal(codes[1], again[0]), "windows keep a variant a function of its seed"


def test_cancel_stops_between_steps(prior: GPT) -> None:
    cancel = CancelToken()
    seen: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        if fraction > 0.3:
            cancel.cancel()

    with pytest.raises(CancelledError):
        sample_frames(prior, torch.randint(0, 16, (2, 5)), 200, Draws([1]), progress=progress, cancel=cancel)
    assert 0.3 < seen[-1] < 0.5, "stopped soon after the request, not at the end"
