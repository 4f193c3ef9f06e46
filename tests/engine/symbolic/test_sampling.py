"""The constrained sampler: grammar, bar count, instruments, seeds and the KV cache."""

from __future__ import annotations

import pytest
import torch

from engine.api import CancelToken, Meter
from engine.errors import BadInputError, CancelledError
from engine.nn.model import GPT, PRESETS, GPTConfig
from engine.symbolic.constraints import Vocabulary, constraints_for
from engine.symbolic.sampling import sample_continuations
from engine.symbolic.tokenizer import make_tokenizer


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return make_tokenizer()


@pytest.fixture(scope="module")
def vocab(tokenizer) -> Vocabulary:  # type: ignore[no-untyped-def]
    return Vocabulary.from_tokenizer(tokenizer)


@pytest.fixture(scope="module")
def model(tokenizer) -> GPT:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    config = GPTConfig(**{**PRESETS["tiny"].to_dict(), "vocab_size": len(tokenizer), "block_size": 128})
    return GPT(config).eval()


def _prompt(tokenizer, meter: str = "4/4") -> list[int]:  # type: ignore[no-untyped-def]
    v = tokenizer.vocab
    tokens = [
        "Bar_None",
        f"TimeSig_{meter}",
        "Position_0",
        "Program_33",
        "Pitch_43",
        "Velocity_79",
        "Duration_1.0.8",
    ]
    return [v[t] for t in tokens]


def _constraints(vocab: Vocabulary, meter: Meter, bars: int, parts: dict[int, tuple[int, int]]):  # type: ignore[no-untyped-def]
    return constraints_for(vocab, meter, bars, parts, [36, 38, 42], [10, 0, 5, 0, 5, 5, 0, 8, 0, 5, 0, 4], 1.5)


def _decode(tokenizer, ids: list[int]) -> list[str]:  # type: ignore[no-untyped-def]
    inverse = {i: t for t, i in tokenizer.vocab.items()}
    return [inverse[i] for i in ids]


@pytest.mark.parametrize("meter", [Meter(4, 4), Meter(3, 4), Meter(6, 8), Meter(7, 8), Meter(5, 4)])
def test_exactly_n_bars_in_the_grammar(model: GPT, tokenizer, vocab: Vocabulary, meter: Meter) -> None:  # type: ignore[no-untyped-def]
    constraints = _constraints(vocab, meter, 3, {33: (40, 55), -1: (36, 42)})
    rows = sample_continuations(model, _prompt(tokenizer, str(meter)), vocab, constraints, seeds=[1, 2, 3])
    assert len(rows) == 3
    for ids in rows:
        tokens = _decode(tokenizer, ids)
        assert tokens.count("Bar_None") == 3
        assert tokens[:2] == ["Bar_None", f"TimeSig_{meter}"]
        assert not any(t.startswith(("Tempo", "EOS", "PAD", "BOS")) for t in tokens)
        bar_starts = [i for i, t in enumerate(tokens) if t == "Bar_None"] + [len(tokens)]
        for a, b in zip(bar_starts, bar_starts[1:], strict=False):
            bar = tokens[a:b]
            positions = [int(t.split("_")[1]) for t in bar if t.startswith("Position")]
            assert positions, "every bar has notes"
            assert positions == sorted(set(positions)), "positions move forward"
            assert max(positions) < meter.numerator * 8, "positions stay inside the bar"
        programs = {t for t in tokens if t.startswith("Program")}
        assert programs <= {"Program_33", "Program_-1"}
        for i, t in enumerate(tokens):
            if t == "Program_33":
                assert tokens[i + 1].startswith("Pitch_") and 33 <= int(tokens[i + 1][6:]) <= 62
            if t == "Program_-1":
                assert tokens[i + 1] in {"PitchDrum_36", "PitchDrum_38", "PitchDrum_42"}


def test_seeds_reproduce_and_differ(model: GPT, tokenizer, vocab: Vocabulary) -> None:  # type: ignore[no-untyped-def]
    constraints = _constraints(vocab, Meter(4, 4), 2, {33: (40, 55)})
    a = sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds=[5, 6])
    b = sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds=[5, 6])
    assert a == b
    assert a[0] != a[1]
    # a variant depends on its own seed, not on its place in the batch
    alone = sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds=[6])
    assert alone[0] == a[1]


def test_cache_gives_the_same_tokens_as_full_recompute(model: GPT, tokenizer, vocab: Vocabulary) -> None:  # type: ignore[no-untyped-def]
    constraints = _constraints(vocab, Meter(4, 4), 4, {33: (40, 55), -1: (36, 42)})
    cached = sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds=[11, 12])
    plain = sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds=[11, 12], use_cache=False)
    assert cached == plain


def test_long_continuations_slide_the_context(model: GPT, tokenizer, vocab: Vocabulary) -> None:  # type: ignore[no-untyped-def]
    # 12 bars of a tiny model with a 128-token context must run past the cache and still end on 12 bars
    constraints = _constraints(vocab, Meter(4, 4), 12, {33: (40, 55), -1: (36, 42)})
    rows = sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds=[3])
    assert len(rows[0]) > model.config.block_size
    assert _decode(tokenizer, rows[0]).count("Bar_None") == 12


def test_progress_and_cancel(model: GPT, tokenizer, vocab: Vocabulary) -> None:  # type: ignore[no-untyped-def]
    constraints = _constraints(vocab, Meter(4, 4), 3, {33: (40, 55)})
    seen: list[float] = []
    sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds=[1], progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds=[1], cancel=token)


def test_unknown_meter_and_instruments_are_refused(vocab: Vocabulary) -> None:
    with pytest.raises(BadInputError, match="11/8"):
        _constraints(vocab, Meter(11, 8), 2, {0: (60, 72)})
    with pytest.raises(BadInputError, match="instruments"):
        # a drum part whose pitches the drum vocabulary does not have
        constraints_for(vocab, Meter(4, 4), 2, {-1: (5, 5)}, [5], [0] * 12, 1.5)


def test_key_penalty_only_on_rare_pitch_classes(vocab: Vocabulary) -> None:
    constraints = _constraints(vocab, Meter(4, 4), 1, {0: (60, 72)})
    # pitch classes with counts 0 get the penalty; the used ones don't
    assert constraints.pitch_class_penalty[0] == 0.0 and constraints.pitch_class_penalty[1] == 1.5


def test_onsets_stay_on_the_region_grid(model: GPT, tokenizer, vocab: Vocabulary) -> None:  # type: ignore[no-untyped-def]
    constraints = constraints_for(vocab, Meter(4, 4), 3, {33: (40, 55)}, [], [1] * 12, 0.0, position_step=4)
    for ids in sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds=[1, 2]):
        positions = [int(t.split("_")[1]) for t in _decode(tokenizer, ids) if t.startswith("Position")]
        assert positions and all(p % 4 == 0 for p in positions)


def test_arrangement_bonus_keeps_a_quiet_part_playing(model: GPT, tokenizer, vocab: Vocabulary) -> None:  # type: ignore[no-untyped-def]
    def bars_with(constraints, program: int) -> int:  # type: ignore[no-untyped-def]
        rows = sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds=[1, 2, 3, 4])
        count = 0
        for ids in rows:
            tokens = _decode(tokenizer, ids)
            bars = " ".join(tokens).split("Bar_None")[1:]
            count += sum(f"Program_{program} " in bar for bar in bars)
        return count

    parts = {33: (40, 55), 73: (72, 84)}
    kwargs = {"part_density": {33: 2.0, 73: 2.0}}
    plain = constraints_for(vocab, Meter(4, 4), 4, parts, [], [1] * 12, 0.0, 2, **kwargs)  # type: ignore[arg-type]
    guided = constraints_for(
        vocab,
        Meter(4, 4),
        4,
        parts,
        [],
        [1] * 12,
        0.0,
        2,
        arrangement_bonus=20.0,
        **kwargs,  # type: ignore[arg-type]
    )
    assert bars_with(guided, 73) == 16, "with a strong bonus both parts play in every bar"
    assert bars_with(guided, 33) == 16
    assert bars_with(plain, 73) + bars_with(plain, 33) < 32


def test_rows_that_finish_early_leave_the_batch_without_changing_any_rows_tokens(  # type: ignore[no-untyped-def]
    model: GPT, tokenizer, vocab: Vocabulary
) -> None:
    # six rows of different lengths (their own seeds); the tiny model's context (128) is crossed too, so rows
    # leave the batch both before and after the context is cropped and prefilled again
    constraints = _constraints(vocab, Meter(4, 4), 6, {33: (40, 55), -1: (36, 42)})
    seeds = [21, 22, 23, 24, 25, 26]
    seen: list[int] = []

    def hook(logits: torch.Tensor, tokens) -> torch.Tensor:  # type: ignore[no-untyped-def]
        assert logits.shape[0] == len(tokens) == len(seeds)  # the hook always sees every row
        seen.append(len(tokens))
        return logits

    dropped = sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds, logits_hook=hook)
    kept = sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds, drop_finished=False)
    assert len({len(r) for r in kept}) > 1, "the rows must finish at different steps for this test to mean much"
    assert max(len(r) for r in kept) > model.config.block_size
    assert dropped == kept
    assert len(seen) == max(len(r) for r in kept) + 1  # the last step draws the bar line that ends the row
    assert sample_continuations(model, _prompt(tokenizer), vocab, constraints, seeds=[]) == []


def test_bfloat16_steps_still_write_exactly_n_bars_and_the_model_keeps_float32(  # type: ignore[no-untyped-def]
    model: GPT, tokenizer, vocab: Vocabulary
) -> None:
    constraints = _constraints(vocab, Meter(4, 4), 6, {33: (40, 55), -1: (36, 42)})
    rows = sample_continuations(model, _prompt(tokenizer), vocab, constraints, [1, 2], precision=torch.bfloat16)
    assert model.decode_dtype == torch.float32
    assert max(len(r) for r in rows) > model.config.block_size  # the context was refilled too
    for ids in rows:
        assert _decode(tokenizer, ids).count("Bar_None") == 6
