"""The profile controls' gate (engine.symbolic.profile.gate, repeat_share): read from the region alone, it opens
for a region that repeats its bars note for note and stays shut for one that never does.

All material is written here (the loop tests' groove and through-composed bars, in the shipped model's vocabulary).
The shares are exact fractions of counted bars, so the assertions hold on any CPU.
"""

from __future__ import annotations

import pytest
from test_loop import Bar, groove, stream, through_composed

from engine.symbolic.cache import CacheSettings, TokenKinds
from engine.symbolic.loop import LoopSettings
from engine.symbolic.mixer import CacheMixer
from engine.symbolic.profile import REPEAT_FULL, gate, repeat_share


def melody(pitches: tuple[int, ...], at: tuple[int, ...] = (0, 8, 16, 24)) -> Bar:
    """One bar of a lead (program 73): a quarter note on each of ``at``."""
    return [(q, 73, p, "Velocity_79", "Duration_1.0.8") for q, p in zip(at, pitches, strict=True)]


def test_a_loop_repeats_every_bar_and_a_through_composed_region_none(vocab: dict[str, int], kinds: TokenKinds) -> None:
    assert repeat_share(stream(vocab, [groove()] * 4), kinds) == 1.0
    for seed in (1, 3, 7):  # random onsets and pitches: no two bars alike
        assert repeat_share(stream(vocab, through_composed(4, seed=seed)), kinds) == 0.0
    # a four-bar phrase played twice: every bar has its twin four bars on
    phrase = [melody((60, 62, 64, 65)), melody((67, 65, 64, 62)), melody((60, 64, 67, 72)), melody((71, 67, 62, 59))]
    assert repeat_share(stream(vocab, phrase * 2), kinds) == 1.0
    assert repeat_share(stream(vocab, phrase), kinds) == 0.0  # the phrase once: nothing repeats yet
    assert repeat_share(stream(vocab, [groove()]), kinds) == 0.0  # one bar: nothing to repeat


def test_the_share_counts_parts_bars_and_a_transposed_or_shifted_bar_is_not_a_repeat(
    vocab: dict[str, int], kinds: TokenKinds
) -> None:
    # the groove (keys and bass: 2 parts) loops under a lead that never repeats: 8 of 12 part-bars repeat
    bars = [groove() + melody((60 + i, 64, 67 - i, 72)) for i in range(4)]
    assert repeat_share(stream(vocab, bars), kinds) == pytest.approx(8 / 12)
    transposed = [groove(root=i) for i in range(4)]  # the same rhythm, a step higher each bar
    assert repeat_share(stream(vocab, transposed), kinds) == 0.0
    shifted = [groove(onsets=(0, 6, 16, 20, 26)), groove(onsets=(2, 8, 18, 22, 28))]  # the same bar, later
    assert repeat_share(stream(vocab, shifted), kinds) == 0.0
    # a lead that plays only in the first bar: its silent bars are not counted, its one bar does not repeat
    sparse = [groove() + melody((60, 62, 64, 65))] + [groove()] * 3
    assert repeat_share(stream(vocab, sparse), kinds) == pytest.approx(8 / 9)


def test_the_gate_values(vocab: dict[str, int], kinds: TokenKinds) -> None:
    loop = stream(vocab, [groove()] * 4)
    half = stream(vocab, [groove(), groove(root=2), groove(), groove(root=4)])  # 4 of 8 part-bars repeat
    assert repeat_share(half, kinds) == pytest.approx(0.5)
    assert gate("repeat", loop, kinds, {}, None) == 1.0
    assert gate("repeat", half, kinds, {}, None) == pytest.approx(min(1.0, 0.5 / REPEAT_FULL))
    assert gate("repeat", stream(vocab, through_composed(4, seed=5)), kinds, {}, None) == 0.0
    assert gate("none", stream(vocab, through_composed(4, seed=5)), kinds, {}, None) == 1.0
    assert gate("loop", loop, kinds, {}, None) == 1.0  # no loop memory: the loop gate stays open, as before
    with pytest.raises(ValueError, match="unknown gate"):
        gate("sometimes", loop, kinds, {}, None)


def test_the_mixer_gives_a_loop_the_full_control_and_a_through_composed_region_none(
    vocab: dict[str, int], kinds: TokenKinds
) -> None:
    def mixer(bars: list[Bar], **changes: object) -> CacheMixer:
        region = stream(vocab, bars)
        settings = CacheSettings(loop=LoopSettings(), profile=2.0, profile_gate="repeat", **changes)  # type: ignore[arg-type]
        return CacheMixer(region, kinds, 2, settings, [1.0 / kinds.size] * len(region))  # against a flat model

    looped = mixer([groove()] * 4)
    assert looped.report.profile == (2.0, 1.0) and len(looped.profiles) == 2
    assert "repeated note for note" in looped.report.describe()
    fugue = mixer(through_composed(4, seed=3))
    assert fugue.report.profile == (0.0, 0.0) and not fugue.profiles  # the control stays out of its way
    # the onset control under the same gate: on for the loop, off for the through-composed region
    assert len(mixer([groove()] * 4, onset_profile=2.0, onset_gate="repeat").onsets) == 2
    assert not mixer(through_composed(4, seed=3), onset_profile=2.0, onset_gate="repeat").onsets
