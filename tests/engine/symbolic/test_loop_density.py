"""The guidance's density control and the loop memory agree: where the loop memory (engine.symbolic.loop) predicts
the next onset of a looping region with confidence, the density control's "skip ahead" penalty (engine.symbolic.grammar)
must not push the time elsewhere (engine.symbolic.mixer's ``density_scale``, applied by the sampler).

The material is written here: token streams of made-up bars in the shipped model's vocabulary
(engine/models/segue-midi-small/tokenizer.json). The model's logits are stood in for by a uniform distribution
perturbed by 1e-4 (a seeded generator), so a CPU that rounds differently cannot change the outcome; thresholds sit far
from the measured values (noted beside them). The job test continues the project's own demo region
(examples/regions/pop_100bpm_4-4.mid) with the shipped model (engine/models/segue-midi-small, trained by this project).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.api import GenerationParams, Meter, Prompt
from engine.checkpoints import find_checkpoint
from engine.symbolic import continuation
from engine.symbolic.cache import CacheSettings, TokenKinds
from engine.symbolic.constraints import Vocabulary, constraints_for
from engine.symbolic.continuation import SymbolicModel, continue_region
from engine.symbolic.grammar import AFTER_NOTE, Masks, Row
from engine.symbolic.guidance import GuidanceSettings, guided_constraints, region_stats
from engine.symbolic.loop import LoopSettings
from engine.symbolic.mixer import CacheMixer
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import read_region
from engine.symbolic.tokenizer import load_tokenizer

ROOT = Path(__file__).resolve().parents[3]
TOKENIZER = ROOT / "engine" / "models" / "segue-midi-small" / "tokenizer.json"
KEYS, BASS = 4, 33
ONSETS = (0, 2, 4, 24)  # a front-loaded bar: three chords in its first beat, one late (eighths of a beat: 32 a bar)


def loop_bar(vocab: dict[str, int]) -> list[int]:
    """One bar of the loop: keys' triads at ONSETS, a bass note on beats 1 and 3."""
    out = [vocab["Bar_None"], vocab["TimeSig_4/4"]]
    for at in sorted(set(ONSETS) | {0, 16}):
        out.append(vocab[f"Position_{at}"])
        if at in ONSETS:
            for x in (0, 4, 7):
                out += [
                    vocab[f"Program_{KEYS}"],
                    vocab[f"Pitch_{60 + x}"],
                    vocab["Velocity_79"],
                    vocab["Duration_0.4.8"],
                ]
        if at in (0, 16):
            out += [vocab[f"Program_{BASS}"], vocab["Pitch_36"], vocab["Velocity_95"], vocab["Duration_1.0.8"]]
    return out


def next_onset_probability(density_yield: float) -> tuple[float, float]:
    """(the probability of the loop's next onset, Position_2, after the downbeat's notes; the density control's nats
    on it at full strength). ``density_yield`` 0: the density control at full strength, as before the loop memory
    and the density control agreed."""
    tokenizer = load_tokenizer(TOKENIZER)
    ids = dict(tokenizer.vocab)
    vocab = Vocabulary.from_tokenizer(tokenizer)
    kinds = TokenKinds.from_tokenizer(tokenizer)
    bar = loop_bar(ids)
    prompt = bar * 4
    base = constraints_for(vocab, Meter(4, 4), 4, {KEYS: (55, 72), BASS: (30, 48)}, [], [1] * 12, 0.0,
                           arrangement_bonus=3.0)  # fmt: skip
    constraints = guided_constraints(
        base, region_stats(prompt, vocab, base.positions_per_bar), vocab, GuidanceSettings()
    )
    assert constraints.density_target == {KEYS: 12.0, BASS: 2.0}  # the region's own notes per bar
    masks = Masks(vocab, constraints, torch.device("cpu"))
    mixer = CacheMixer(prompt, kinds, 1, CacheSettings(loop=LoopSettings(density_yield=density_yield)))
    written = bar[: bar.index(ids["Position_2"])]  # the bar line and the downbeat's chord and bass note
    row = Row()
    for token in written:
        masks.advance(row, token)
    assert row.state == AFTER_NOTE and row.position == 0
    generator = torch.Generator().manual_seed(3)
    logits = mixer(1e-4 * torch.randn(1, vocab.size, generator=generator), [written])
    row.density_scale = mixer.density_scale(0)  # as the sampler sets it after the hook
    allowed, bias = masks.for_row(row)
    assert bias is not None
    probs = torch.softmax((logits[0] + bias).masked_fill(~allowed, float("-inf")), dim=-1)
    target = ids["Position_2"]
    full, none = (masks.for_row(replace(row, density_scale=scale))[1] for scale in (1.0, 0.0))
    assert full is not None and none is not None
    return float(probs[target]), float(full[target] - none[target])


def test_the_density_control_does_not_overrule_the_loop_memorys_confident_next_onset() -> None:
    kept, nats = next_onset_probability(LoopSettings().density_yield)
    assert nats < -3.0  # the scene that matters: at full strength the skip-ahead penalty hits the loop's next onset
    assert kept > 0.5  # measured 0.96 (density_yield 1.25: 0.98)
    overruled, _ = next_onset_probability(0.0)
    assert overruled < 0.5 * kept  # measured 0.19


class SpyMixer(CacheMixer):
    """The mixer, keeping every share of the density control it gave the sampler."""

    given: list[float] = []

    def density_scale(self, i: int) -> float:
        scale = super().density_scale(i)
        SpyMixer.given.append(scale)
        return scale


def test_a_job_gives_the_sampler_the_loop_memorys_share_of_the_density_control(monkeypatch: pytest.MonkeyPatch) -> None:
    # examples/regions/pop_100bpm_4-4.mid: the project's own demo region (bass, keys and pad loop bar by bar)
    monkeypatch.setattr(continuation, "CacheMixer", SpyMixer)
    SpyMixer.given = []
    model = SymbolicModel.load(find_checkpoint("segue-midi-small"))
    region = read_region(Prompt(midi_path=ROOT / "examples" / "regions" / "pop_100bpm_4-4.mid"))
    params = GenerationParams(bars=1, variants=1, seed=1)
    continue_region(model, region, params, [1], part_names_for(region.parts), candidates=1)
    assert SpyMixer.given and all(0.0 <= s <= 1.0 for s in SpyMixer.given)
    assert min(SpyMixer.given) < 0.5  # where the loop memory leads, the density control steps back (measured 0.2)
    SpyMixer.given = []  # a density the producer asked for is not the loop's: the density control keeps its strength
    continue_region(model, region, params, [1], part_names_for(region.parts), candidates=1,
                    guidance=GuidanceSettings(density=1.5))  # fmt: skip
    assert not SpyMixer.given
