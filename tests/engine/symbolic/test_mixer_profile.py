"""The pitch-class profile control (engine.symbolic.profile) and how the region cache's mixer applies it.

All material is written here: token streams of made-up bars in the shipped model's vocabulary
(engine/models/segue-midi-small/tokenizer.json; the loop tests' groove and through-composed bars), and a stand-in
"model" that draws pitch classes at random from a seeded generator. Thresholds sit far from the measured values
(noted beside them).
"""

from __future__ import annotations

import numpy as np
import torch
from test_loop import groove, stream, through_composed

from engine.symbolic.cache import CacheSettings, TokenKinds
from engine.symbolic.loop import LoopSettings
from engine.symbolic.mixer import CacheMixer
from engine.symbolic.profile import MAX_BIAS, fitted_onsets, fitted_profile

PROGRAM = 0
# one bar in 4/4: C held for three beats, then E and G for half a beat each (a duration-weighted profile of C 0.75,
# E and G 0.125 each; by note count a third each)
REGION_BAR = [(0, 60, "Duration_3.0.8"), (24, 64, "Duration_0.4.8"), (28, 67, "Duration_0.4.8")]


def bar_tokens(vocab: dict[str, int], notes: list[tuple[int, int, str]]) -> list[int]:
    out = [vocab["Bar_None"], vocab["TimeSig_4/4"]]
    for at, pitch, duration in notes:
        out += [vocab[f"Position_{at}"], vocab[f"Program_{PROGRAM}"], vocab[f"Pitch_{pitch}"], vocab["Velocity_79"]]
        out.append(vocab[duration])
    return out


def region(vocab: dict[str, int], bars: int = 4) -> list[int]:
    return [t for _ in range(bars) for t in bar_tokens(vocab, REGION_BAR)]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.minimum(a / a.sum(), b / b.sum()).sum())


def test_a_variant_that_plays_the_regions_profile_is_not_pushed(vocab: dict[str, int], kinds: TokenKinds) -> None:
    profile = fitted_profile(region(vocab), kinds, strength=1.0)
    fresh = profile.bias(PROGRAM)
    assert fresh is not None and np.abs(fresh).max() < 1e-9  # nothing played yet: the prior is the region's own
    for token in region(vocab, bars=2):  # the variant copies the region
        profile.observe(token)
    copied = profile.bias(PROGRAM)
    assert copied is not None and np.abs(copied).max() < 1e-6, copied
    assert profile.bias(PROGRAM + 1) is None  # a part the region does not play is left alone


def test_a_class_played_too_long_is_penalised_and_a_class_the_region_lacks_gets_no_bonus(
    vocab: dict[str, int], kinds: TokenKinds
) -> None:
    profile = fitted_profile(region(vocab), kinds, strength=1.0)
    for _ in range(3):  # the variant plays only G, held: G far over the region's share, C far under
        for token in bar_tokens(vocab, [(0, 67, "Duration_3.0.8")]):
            profile.observe(token)
    bias = profile.bias(PROGRAM)
    assert bias is not None
    assert bias[7] < -1.0 and bias[0] > 0.5, bias  # G and C: measured -1.5 and +0.9
    assert bias[4] > 0.5  # E, played less than in the region, too
    unplayed = [pc for pc in range(12) if pc not in (0, 4, 7)]
    assert np.all(bias[unplayed] <= 0.0)  # never pulled towards a class the region's part does not play
    assert np.all(np.abs(bias) <= MAX_BIAS)


def test_the_control_brings_a_variants_duration_weighted_profile_near_the_regions(
    vocab: dict[str, int], kinds: TokenKinds
) -> None:
    """A stand-in model that picks C, E or G alike (and C's length from the region) plays a profile far from the
    region's; the control, applied through the mixer as the sampler calls it, brings it close."""
    target = np.zeros(12)
    target[[0, 4, 7]] = [0.75, 0.125, 0.125]
    lengths = {60: "Duration_1.0.8", 64: "Duration_1.0.8", 67: "Duration_1.0.8"}
    pitch_ids = [vocab[f"Pitch_{p}"] for p in lengths]

    def play(strength: float) -> float:
        settings = CacheSettings(pitch=0.0, velocity=0.0, duration=0.0, next=0.0, program=0.0, loop=None,
                                 voicing=False, profile=strength)  # fmt: skip
        mixer = CacheMixer(region(vocab), kinds, 1, settings)
        rng = np.random.default_rng(5)
        tokens: list[int] = []
        played = np.zeros(12)
        for bar in range(24):
            tokens += [vocab["Bar_None"], vocab["TimeSig_4/4"]]
            for at in (0, 8, 16, 24):
                tokens += [vocab[f"Position_{at}"], vocab[f"Program_{PROGRAM}"]]
                logits = torch.zeros(1, kinds.size)  # the model: every token alike
                probs = torch.softmax(mixer(logits, [tokens]), dim=-1)[0, pitch_ids].double().numpy()
                pitch = list(lengths)[rng.choice(3, p=probs / probs.sum())]
                tokens += [vocab[f"Pitch_{pitch}"], vocab["Velocity_79"], vocab[lengths[pitch]]]
                played[pitch % 12] += 1
            assert bar < 24
        return overlap(played, target)

    free, steered = play(0.0), play(2.0)
    # a third each against 0.75 / 0.125 / 0.125: 0.58 expected, 0.55 measured; steered (strength 2) towards a
    # blend of the model's and the region's shares (the region's ^ 2/3): 0.87 expected, 0.84 measured
    assert free < 0.7, free
    assert steered > 0.78, steered
    assert steered > free + 0.15


def test_the_control_acts_as_far_as_the_region_loops(vocab: dict[str, int], kinds: TokenKinds) -> None:
    """With the loop gate (the default), its strength is the setting times the loop memory's fit to the region: a
    loop gets it, a region that never repeats (where composers move on) next to nothing; job.json's cache note says
    both."""

    def control(bars: list[list[tuple[int, int, int, str, str]]]) -> tuple[float, float]:
        region = stream(vocab, bars)
        settings = CacheSettings(loop=LoopSettings(), profile=2.0, profile_gate="loop")
        mixer = CacheMixer(region, kinds, 2, settings, [1.0 / kinds.size] * len(region))  # against a flat model
        assert mixer.report.profile is not None
        assert "pitch-class profile control" in mixer.report.describe()
        assert "loop share" in mixer.report.describe()
        return mixer.report.profile

    looped_strength, looped_share = control([groove()] * 4)
    fugue_strength, fugue_share = control(through_composed(4, seed=3))
    assert looped_share > 0.8 and looped_strength > 1.6, looped_share  # measured 1.0 and 2.0
    assert fugue_share < 0.4 and fugue_strength < 0.8, fugue_share  # measured 0.25 and 0.50 (its next slot)
    off = CacheMixer(stream(vocab, [groove()] * 4), kinds, 1, CacheSettings(loop=LoopSettings(), profile=0.0))
    assert off.report.profile is None and not off.profiles and "profile" not in off.report.describe()


def test_the_onset_control_favours_the_regions_positions_the_variant_has_left_out(
    vocab: dict[str, int], kinds: TokenKinds
) -> None:
    onsets = fitted_onsets(region(vocab), kinds, strength=1.0)  # onsets at positions 0, 24 and 28 of each bar
    position = {q: vocab[f"Position_{q}"] for q in (0, 8, 24, 28)}
    probs = np.ones(kinds.size)
    for token in bar_tokens(vocab, REGION_BAR):  # a bar copied: nothing to correct
        onsets.observe(token)
    assert onsets.apply(probs) and np.allclose(probs[list(position.values())], 1.0)
    for _ in range(3):  # then bars with one onset, at a position the region never plays
        for token in bar_tokens(vocab, [(8, 60, "Duration_3.0.8")]):
            onsets.observe(token)
    probs = np.ones(kinds.size)
    assert onsets.apply(probs)
    got = probs[list(position.values())]
    assert got[1] < 0.5 and min(got[0], got[2], got[3]) > 1.2, got  # measured x0.06 and x1.5
    onsets.observe(vocab["Position_0"])
    assert not onsets.apply(np.ones(kinds.size))  # after a position a part comes, not another position
