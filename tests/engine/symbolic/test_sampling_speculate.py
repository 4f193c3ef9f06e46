"""Exact speculative sampling (engine.symbolic.speculate with engine.symbolic.sampling): the rule that keeps a
drafted token, and the sampler's per-token distributions against the one-token sampler's for the same tokens.

All material is written here: a made-up riff (tests/engine/symbolic/test_cache.py) in the shipped model's
vocabulary (engine/models/segue-midi-small/tokenizer.json), a tiny GPT with random weights, and the real region
cache as the logits hook (its loop memory makes the riff's drafts likely, so drafts are both kept and refused).
Distributions are compared probability by probability (float32 arithmetic in another order: within 1e-4); the
draws of the keep rule are checked against a chi-square bound far from any knife edge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from conftest import TOKENIZER
from test_cache import riff

from engine.api import Meter
from engine.nn.model import GPT, PRESETS, GPTConfig
from engine.symbolic import sampling
from engine.symbolic.cache import DEFAULT_CACHE, TokenKinds
from engine.symbolic.constraints import Constraints, Vocabulary, constraints_for
from engine.symbolic.grammar import DONE
from engine.symbolic.mixer import CacheMixer
from engine.symbolic.speculate import Drafter, SpeculationReport, SpeculationSettings, accept
from engine.symbolic.tokenizer import load_tokenizer

BLOCK = 96  # a small context, so rows are refilled several times while they write their bars
SEEDS = [11, 12, 13, 14]


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return load_tokenizer(TOKENIZER)


@pytest.fixture(scope="module")
def names(tokenizer) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return dict(tokenizer.vocab)


@pytest.fixture(scope="module")
def sampling_vocab(tokenizer) -> Vocabulary:  # type: ignore[no-untyped-def]
    return Vocabulary.from_tokenizer(tokenizer)


@pytest.fixture(scope="module")
def model(tokenizer) -> GPT:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    config = GPTConfig(**{**PRESETS["tiny"].to_dict(), "vocab_size": len(tokenizer), "block_size": BLOCK})
    return GPT(config).eval()


def _constraints(vocab: Vocabulary, bars: int) -> Constraints:
    pitch_classes = [4, 0, 2, 0, 2, 1, 0, 2, 0, 1, 0, 0]
    return constraints_for(vocab, Meter(4, 4), bars, {33: (30, 50), 73: (65, 85)}, [], pitch_classes, 1.5)


class _Recorder:
    """Wraps the sampler's final distributions: (row, its tokens so far) -> the probabilities it sampled from; and,
    when ``forced`` is given, makes the one-token sampler write those rows' tokens instead of drawing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, forced: Sequence[Sequence[int]] | None = None) -> None:
        self.seen: dict[tuple[int, int], torch.Tensor] = {}
        original = sampling._Rows.probabilities
        recorder = self

        def probabilities(rows: Any, logits: torch.Tensor, options: Any, chosen: Any = None) -> torch.Tensor:
            out = original(rows, logits, options, chosen)
            for place, i in enumerate(rows.live if chosen is None else chosen):
                recorder.seen[(i, len(rows.rows[i].tokens))] = out[place].clone()
            return out

        monkeypatch.setattr(sampling._Rows, "probabilities", probabilities)
        if forced is not None:

            def draw(rows: Any, probs: torch.Tensor) -> list[int]:
                written = []
                for i in rows.live:
                    row = rows.rows[i]
                    token = forced[i][len(row.tokens)] if len(row.tokens) < len(forced[i]) else sampling_bar(rows)
                    rows.masks.advance(row, token)
                    written.append(token if row.state != DONE else rows.pad)
                return written

            monkeypatch.setattr(sampling._Rows, "draw", draw)


def sampling_bar(rows: Any) -> int:
    """The bar line that ends a forced row (the sampler never keeps it)."""
    return int(rows.masks.vocab.bar)


def _run(
    model: GPT,
    names: dict[str, int],
    vocab: Vocabulary,
    kinds: TokenKinds,
    speculate: SpeculationSettings | None,
    report: SpeculationReport | None = None,
) -> list[list[int]]:
    prompt = riff(names, 2)
    mixer = CacheMixer(prompt, kinds, len(SEEDS), DEFAULT_CACHE)
    return sampling.sample_continuations(
        model, prompt, vocab, _constraints(vocab, 4), SEEDS, logits_hook=mixer, density_scale=mixer.density_scale,
        speculate=speculate, speculation_report=report,
    )  # fmt: skip


def _same_distributions(spec: dict[tuple[int, int], torch.Tensor], plain: dict[tuple[int, int], torch.Tensor]) -> None:
    assert spec.keys() == plain.keys()
    worst = max(float((spec[k] - plain[k]).abs().max()) for k in spec)
    assert worst < 1e-4, worst


def test_a_drafted_token_is_kept_with_its_probability_and_the_result_has_the_target_distribution() -> None:
    probs = torch.tensor([0.05, 0.4, 0.0, 0.25, 0.3])
    draws = 20000
    for drafted in range(5):
        generator = torch.Generator().manual_seed(drafted)
        counts = torch.zeros(5)
        for _ in range(draws):
            counts[accept(probs, drafted, generator)] += 1
        expected = probs * draws
        support = probs > 0
        assert counts[~support].sum() == 0  # never a token the distribution rules out, the draft included
        chi2 = float(((counts[support] - expected[support]) ** 2 / expected[support]).sum())
        # at most 4 degrees of freedom: the 1e-6 tail is at 31.4; a wrong rule is off by hundreds or thousands
        assert chi2 < 31.4, (drafted, counts.tolist())


def test_a_certain_draft_is_always_kept_and_an_impossible_one_never() -> None:
    generator = torch.Generator().manual_seed(0)
    certain = torch.tensor([0.0, 1.0, 0.0])
    assert all(accept(certain, 1, generator) == 1 for _ in range(200))
    assert all(accept(certain, 0, generator) == 1 for _ in range(200))


def test_speculative_rows_sample_from_exactly_the_one_token_samplers_distribution_at_every_token(
    model: GPT, names: dict[str, int], sampling_vocab: Vocabulary, kinds: TokenKinds, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = SpeculationReport()
    with monkeypatch.context() as patch:
        spec = _Recorder(patch)
        rows = _run(model, names, sampling_vocab, kinds, SpeculationSettings(draft=4, shortest=2), report)
    # both branches of the keep rule ran, and rows were refilled (their windows moved) and fewer passes were needed
    assert report.accepted >= 10 and report.drafted - report.accepted >= 10, report
    assert report.refills >= len(SEEDS) and report.passes < max(len(r) for r in rows), report
    assert report.tokens == sum(len(r) for r in rows)
    with monkeypatch.context() as patch:
        plain = _Recorder(patch, forced=rows)
        replayed = _run(model, names, sampling_vocab, kinds, None)
    assert replayed == rows
    _same_distributions(spec.seen, plain.seen)


def test_drafts_that_are_all_refused_still_leave_the_one_token_samplers_distributions(
    model: GPT, names: dict[str, int], sampling_vocab: Vocabulary, kinds: TokenKinds, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every draft is the padding token, which the grammar never allows: each one is refused, every pass
    pad = sampling_vocab.pad
    report = SpeculationReport()
    with monkeypatch.context() as patch:
        patch.setattr(Drafter, "drafts", lambda self, rows, room: [[pad] * min(3, r) for r in room])
        spec = _Recorder(patch)
        rows = _run(model, names, sampling_vocab, kinds, SpeculationSettings(draft=3), report)
    assert report.accepted == 0 and report.drafted > 0
    # one token a pass, as without drafts: the longest row's tokens and the bar line that ends it (not kept)
    assert report.passes == max(len(r) for r in rows) + 1
    with monkeypatch.context() as patch:
        plain = _Recorder(patch, forced=rows)
        _run(model, names, sampling_vocab, kinds, None)
    _same_distributions(spec.seen, plain.seen)


def test_speculative_rows_write_exactly_n_bars_and_repeat_for_a_seed(
    model: GPT, names: dict[str, int], sampling_vocab: Vocabulary, kinds: TokenKinds
) -> None:
    settings = SpeculationSettings(draft=3)
    first = _run(model, names, sampling_vocab, kinds, settings)
    assert first == _run(model, names, sampling_vocab, kinds, settings)
    for row in first:
        assert row.count(sampling_vocab.bar) == 4
        assert row[0] == sampling_vocab.bar and row[1] == sampling_vocab.time_signatures[(4, 4)]


def test_without_the_kv_cache_the_sampler_writes_one_token_a_step(
    model: GPT, names: dict[str, int], sampling_vocab: Vocabulary
) -> None:
    prompt = riff(names, 1)
    constraints = _constraints(sampling_vocab, 2)
    report = SpeculationReport()
    spec = sampling.sample_continuations(
        model, prompt, sampling_vocab, constraints, SEEDS, use_cache=False, speculate=SpeculationSettings(),
        speculation_report=report,
    )  # fmt: skip
    plain = sampling.sample_continuations(model, prompt, sampling_vocab, constraints, SEEDS, use_cache=False)
    assert spec == plain and report.passes == 0


def test_the_drafter_copies_what_followed_the_latest_match_of_the_rows_last_tokens() -> None:
    settings = SpeculationSettings(draft=3, shortest=2, longest=4)
    drafter = Drafter([1, 2, 3, 4, 5, 9, 2, 3, 7, 8], rows=2, settings=settings)
    drafter.follow(0, [2, 3])  # ... 9 2 3 | 2 3: the latest 2 3 in the region was followed by 7 8
    assert drafter.draft(0, 3) == [7, 8, 2]
    drafter.follow(1, [4, 5])  # ... 7 8 | 4 5: "4 5" followed by 9 2 3
    assert drafter.draft(1, 3) == [9, 2, 3]
    drafter.follow(1, [4, 5, 6, 4, 5])  # the row's own "4 5 6" is later than the region's "4 5 9"
    assert drafter.draft(1, 2) == [6, 4]
    assert drafter.draft(0, 0) == []
    assert Drafter([1, 2, 3], rows=1, settings=settings).draft(0, 3) == []  # nothing recurs


def test_impossible_speculation_settings_are_refused_with_what_to_give() -> None:
    with pytest.raises(ValueError, match="draft >= 1"):
        SpeculationSettings(draft=0)
    with pytest.raises(ValueError, match="shortest <= longest"):
        SpeculationSettings(shortest=5, longest=3)
    assert math.isfinite(SpeculationSettings().position_cost)
