"""engine.nn.ragged: passes over rows at different lengths give each row the logits of one-token decode steps, and
rolling a row back is only its length. A tiny GPT with random weights and random tokens (no material)."""

from __future__ import annotations

import random

import pytest
import torch

from engine.nn.kv_cache import KVCache
from engine.nn.model import GPT, PRESETS, GPTConfig
from engine.nn.ragged import prefill_row, ragged_step

CONFIG = GPTConfig(**{**PRESETS["tiny"].to_dict(), "vocab_size": 50, "block_size": 64})
ROWS, PROMPT, STEPS = 3, 10, 24


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    return GPT(CONFIG).eval()


def _one_token_logits(model: GPT, prompt: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """[rows, steps, vocab]: the logits after each of ``tokens``, one decode step at a time (the plain sampler)."""
    cache = model.new_cache(ROWS)
    model(prompt, cache=cache)
    return torch.stack([model(tokens[:, t : t + 1], cache=cache)[0][:, 0] for t in range(tokens.shape[1])], 1)


@pytest.mark.parametrize("shared", [True, False])
@torch.inference_mode()
def test_each_row_gets_the_one_token_steps_logits_whatever_each_pass_keeps(model: GPT, shared: bool) -> None:
    generator = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, 50, (1 if shared else ROWS, PROMPT), generator=generator).expand(ROWS, PROMPT)
    tokens = torch.randint(0, 50, (ROWS, STEPS), generator=generator)
    expected = _one_token_logits(model, prompt.contiguous(), tokens)

    cache = KVCache(CONFIG, ROWS, torch.device("cpu"), torch.float32, spare=4)
    model(prompt.contiguous(), cache=cache)
    assert cache.plan is not None and (cache.shared > 0) == shared
    lengths = torch.full((ROWS,), PROMPT)
    got = torch.zeros_like(expected)
    done = [0] * ROWS
    choose = random.Random(2)
    while min(done) < STEPS:
        fed = [min(choose.randint(1, 4), STEPS - d) for d in done]
        width = max(fed)
        idx = torch.zeros(ROWS, width, dtype=torch.long)  # rows fed fewer tokens are padded
        for b in range(ROWS):
            idx[b, : fed[b]] = tokens[b, done[b] : done[b] + fed[b]]
        out = ragged_step(model, cache.plan, idx, cache, lengths)
        for b in range(ROWS):
            keep = choose.randint(1, fed[b]) if fed[b] else 0  # the rest is rolled back: fed again next pass
            got[b, done[b] : done[b] + keep] = out[b, :keep]
            done[b] += keep
            lengths[b] += keep
    assert float((got - expected).abs().max()) < 1e-4


@torch.inference_mode()
def test_a_refilled_row_continues_as_if_its_new_context_had_been_its_prompt(model: GPT) -> None:
    generator = torch.Generator().manual_seed(3)
    prompt = torch.randint(0, 50, (1, PROMPT), generator=generator).expand(ROWS, PROMPT).contiguous()
    cache = KVCache(CONFIG, ROWS, torch.device("cpu"), torch.float32)
    model(prompt, cache=cache)
    context = torch.randint(0, 50, (7,), generator=generator)
    prefill_row(model, cache.plan, cache, 1, context)  # row 1 now holds 7 other tokens; the others the prompt
    step = torch.randint(0, 50, (ROWS, 1), generator=generator)
    out = ragged_step(model, cache.plan, step, cache, torch.tensor([PROMPT, 7, PROMPT]))
    alone = model(torch.cat([context, step[1]])[None])[0][0, -1]
    with_prompt = model(torch.cat([prompt[0], step[0]])[None])[0][0, -1]
    assert float((out[1, 0] - alone).abs().max()) < 1e-4
    assert float((out[0, 0] - with_prompt).abs().max()) < 1e-4


@torch.inference_mode()
def test_a_pass_beyond_the_cache_is_refused_and_says_where(model: GPT) -> None:
    cache = KVCache(CONFIG, 2, torch.device("cpu"), torch.float32, capacity=16)
    model(torch.zeros(2, 4, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="beyond the cache's 16"):
        ragged_step(model, cache.plan, torch.zeros(2, 3, dtype=torch.long), cache, torch.tensor([4, 14]))
    with pytest.raises(ValueError, match="one length per row"):
        ragged_step(model, cache.plan, torch.zeros(2, 1, dtype=torch.long), cache, torch.tensor([4]))
