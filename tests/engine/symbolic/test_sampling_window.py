"""The sampler's context window (engine.symbolic.sampling.context_window): a row that reaches it is refilled with
its last half, in a cache no larger than the window; and the batch's rows when some finish. A small random model
(no shipped weights, nothing timed)."""

from __future__ import annotations

import pytest
import torch

from engine.api import Meter
from engine.nn.model import GPT, GPTConfig
from engine.symbolic.constraints import Vocabulary, constraints_for
from engine.symbolic.sampling import context_window, sample_continuations
from engine.symbolic.tokenizer import make_tokenizer


def _setup() -> tuple[GPT, Vocabulary, list[int], object]:
    tokenizer = make_tokenizer()
    vocab = Vocabulary.from_tokenizer(tokenizer)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer), block_size=96, n_layer=1, n_head=2, n_embd=16)).eval()
    v = tokenizer.vocab
    prompt = [v[t] for t in ("Bar_None", "TimeSig_4/4", "Position_0", "Program_0", "Pitch_60", "Velocity_79")]
    constraints = constraints_for(vocab, Meter(4, 4), 3, {0: (55, 70)}, [], [1] * 12, 1.5)
    return model, vocab, prompt + [v["Duration_1.0.8"]], constraints


def test_the_window_is_the_models_context_unless_a_shorter_one_is_asked_for() -> None:
    model, *_ = _setup()
    assert context_window(model) == 96
    assert context_window(model, 40) == 40
    assert context_window(model, 4000) == 96  # never beyond what the model was trained to read
    with pytest.raises(ValueError, match="at least 2 tokens"):
        context_window(model, 1)


@pytest.mark.parametrize("window", [32, 96])
def test_a_row_is_refilled_with_its_last_half_whenever_it_reaches_the_window(
    monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    model, vocab, prompt, constraints = _setup()
    caches: list[tuple[int, int]] = []  # (rows, capacity) of every cache the job made
    contexts: list[int] = []  # the length of every prefill
    new_cache = model.new_cache
    forward = model.forward

    def watched_cache(batch_size: int, capacity: int | None = None):  # type: ignore[no-untyped-def]
        caches.append((batch_size, capacity or model.config.block_size))
        return new_cache(batch_size, capacity)

    depth = [0]

    def watched_forward(idx, *args, **kwargs):  # type: ignore[no-untyped-def]
        if idx.shape[-1] > 1 and depth[0] == 0:  # the sampler's prefills, not the fast path's own inner call
            contexts.append(int(idx.shape[-1]))
        depth[0] += 1
        try:
            return forward(idx, *args, **kwargs)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(model, "new_cache", watched_cache)
    monkeypatch.setattr(model, "forward", watched_forward)
    rows = sample_continuations(model, prompt, vocab, constraints, seeds=[1, 2], window=window)
    longest = max(len(r) for r in rows)
    assert all(capacity == window for _, capacity in caches)
    assert contexts[0] == len(prompt)  # shorter than half the window: the whole prompt
    assert contexts[1:] == [window // 2] * len(contexts[1:])
    # the first refill once prompt + tokens reach the window, then one every half window
    expected = 0 if len(prompt) + longest <= window else 1 + (len(prompt) + longest - window - 1) // (window // 2)
    assert len(contexts) - 1 == expected
    assert all(r[:2] == [vocab.bar, vocab.time_signatures[(4, 4)]] for r in rows)


def test_a_cache_refuses_a_step_beyond_its_capacity_and_says_so() -> None:
    model, *_ = _setup()
    cache = model.new_cache(1, capacity=8)
    assert cache.capacity == 8
    with torch.inference_mode():
        model(torch.zeros(1, 8, dtype=torch.long), cache=cache)
        with pytest.raises(ValueError, match="exceeds the cache's 8 positions"):
            model(torch.zeros(1, 1, dtype=torch.long), cache=cache)


@pytest.mark.parametrize(
    ("writing", "kept"),
    [
        ([True, True, True], [0, 1, 2]),
        ([True, False, True, True], [0, 3, 2]),  # the last row takes the finished one's place
        ([False, True, False, True, True], [4, 1, 3]),
        ([True, True, False], [0, 1]),  # the finished row was last: nothing moves
        ([False, False, True], [2]),
    ],
)
def test_rows_that_finish_leave_the_batch_and_the_last_rows_take_their_places(
    writing: list[bool], kept: list[int]
) -> None:
    from engine.symbolic.sampling import _kept_in_place

    assert _kept_in_place(writing) == kept
