"""engine.nn.kv_cache.KVCache.keep_rows: the rows kept are the rows asked for, in that order, whichever of them
move; a shared prompt in row 0 survives. Random tensors, no model."""

from __future__ import annotations

import pytest
import torch

from engine.nn.kv_cache import KVCache
from engine.nn.model import GPTConfig

CONFIG = GPTConfig(vocab_size=16, block_size=12, n_layer=2, n_head=2, n_embd=8)


def _filled(rows: int, length: int, shared: int) -> KVCache:
    cache = KVCache(CONFIG, rows, torch.device("cpu"), torch.float32)
    generator = torch.Generator().manual_seed(0)
    cache.keys.copy_(torch.randn(cache.keys.shape, generator=generator))
    cache.values.copy_(torch.randn(cache.values.shape, generator=generator))
    cache.length, cache.shared = length, shared
    return cache


@pytest.mark.parametrize("shared", [0, 4])
@pytest.mark.parametrize("kept", [[0, 1, 2], [0, 4, 2], [3, 1], [4], [2, 0, 1]])
def test_the_rows_kept_hold_what_those_rows_held_and_the_shared_prompt_stays(shared: int, kept: list[int]) -> None:
    cache = _filled(5, 9, shared)
    keys, values = cache.keys.clone(), cache.values.clone()
    cache.keep_rows(kept)
    assert cache.keys.shape[1] == cache.values.shape[1] == len(kept)
    for place, row in enumerate(kept):
        assert torch.equal(cache.keys[:, place, :, shared:9], keys[:, row, :, shared:9])
        assert torch.equal(cache.values[:, place, :, shared:9], values[:, row, :, shared:9])
    assert torch.equal(cache.keys[:, 0, :, :shared], keys[:, 0, :, :shared])  # the prompt every row reads


def test_keeping_no_row_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one row"):
        _filled(3, 5, 0).keep_rows([])
