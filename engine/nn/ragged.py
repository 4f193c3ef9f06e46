"""Decode passes over rows that stand at different lengths: several tokens a row, each row at its own positions.

Speculative sampling (:mod:`engine.symbolic.speculate`) feeds each row its last sampled token and a few drafted
tokens in one pass and keeps only as many as it accepts, so after a pass the rows' caches hold different numbers of
valid positions. Here each row ``b`` has its own length ``lengths[b]``: its ``T`` tokens are written at positions
``lengths[b] .. lengths[b] + T - 1`` of its row of the cache (keys, values and the position embedding), and each
query sees its own row's positions up to its own (causal within the pass). What lies beyond a row's length (the
keys of drafts it did not accept, padding) is never seen and is overwritten when the row gets there, so rolling a
row back is only setting its length.

The arithmetic is :func:`engine.nn.model_fast.decode_step`'s (the same weights, products in the plan's precision,
the region's shared prompt read once for all rows), with ``T`` queries a row: logits equal the one-token steps'
within float rounding. The cache needs ``T - 1`` positions beyond the model's context for the padding of rows near
the end of their window (:meth:`engine.nn.kv_cache.KVCache` ``spare``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

from engine.nn.kv_cache import KVCache
from engine.nn.model_fast import DecodePlan, _head, _linear, _residual_linear, _threaded, prefill

if TYPE_CHECKING:  # annotations only: model.py imports model_fast
    from engine.nn.model import GPT


def ragged_step(model: GPT, plan: DecodePlan, idx: torch.Tensor, cache: KVCache, lengths: torch.Tensor) -> torch.Tensor:
    """``idx`` [B, T] tokens, row ``b``'s at positions ``lengths[b] ..`` -> logits [B, T, vocab] (one stream).

    Writes the tokens' keys/values; ``cache.length`` and ``lengths`` are left as they are (the caller moves each
    row's length past the tokens it keeps). Raises ``ValueError`` when a row's tokens would not fit the cache."""
    B, T = idx.shape
    if lengths.shape != (B,):
        raise ValueError(f"expected one length per row ({B}), got shape {tuple(lengths.shape)}")
    end = int(lengths.max()) + T
    if end > cache.capacity:
        raise ValueError(f"a row's tokens would reach position {end}, beyond the cache's {cache.capacity}")
    if int(lengths.min()) < cache.shared:
        raise ValueError("a row is shorter than the shared prompt it reads")
    return _threaded(plan, lambda: _ragged_step(model, plan, idx, cache, lengths, end))


def _ragged_step(
    model: GPT, plan: DecodePlan, idx: torch.Tensor, cache: KVCache, lengths: torch.Tensor, end: int
) -> torch.Tensor:
    B, T = idx.shape
    C, H = plan.n_embd, plan.n_head
    hd = C // H
    scale = 1.0 / math.sqrt(hd)
    shared = cache.shared
    device = idx.device
    positions = lengths.to(device)[:, None] + torch.arange(T, device=device)  # [B, T]
    # padding past the model's context sits in the cache's spare positions; its embedding is the last position's
    wpe = model.wpe.weight[positions.clamp(max=model.config.block_size - 1)]
    x = (model._embed(idx) + wpe).view(B * T, C)
    own = torch.arange(shared, end, device=device)
    hidden = own[None, None, :] > positions[:, :, None]  # [B, T, own keys]: beyond the query's own position
    bias = torch.zeros(B, 1, T, end - shared, device=device).masked_fill(hidden[:, None], float("-inf"))
    keys, values = cache.keys, cache.values
    # where each token's key lands in a layer's [B, H, positions, hd] viewed as rows of hd: (b * H + h) * P + p
    P = keys.shape[3]
    heads = torch.arange(H, device=device)
    slots = (torch.arange(B, device=device)[:, None, None] * H + heads[None, None, :]) * P + positions[:, :, None]
    slots = slots.reshape(-1)  # [B * T * H], in the order of qkv's [B, T, H] tokens and heads
    layer_eps, final_eps = plan.eps
    for layer, (ln1w, ln1b, wqkv, bqkv, wp, bp, ln2w, ln2b, wfc, bfc, wp2, bp2) in enumerate(plan.layers):
        lqkv, lp, lfc, lp2 = plan.low[layer] if plan.low is not None else (None, None, None, None)
        h = F.layer_norm(x, (C,), ln1w, ln1b, layer_eps[layer][0])
        qkv = _linear(h, wqkv, bqkv, lqkv).view(B, T, 3, H, hd)
        k_layer, v_layer = keys[layer], values[layer]
        k_layer.view(-1, hd).index_copy_(0, slots, qkv[:, :, 1].reshape(-1, hd))
        v_layer.view(-1, hd).index_copy_(0, slots, qkv[:, :, 2].reshape(-1, hd))
        q = qkv[:, :, 0].transpose(1, 2) * scale  # [B, H, T, hd]
        scores = torch.matmul(q, k_layer[:, :, shared:end].transpose(-1, -2)) + bias  # [B, H, T, own]
        if shared:
            # the prompt's keys once for all rows' queries: per head, [B*T, hd] @ [hd, P]
            flat = q.permute(1, 0, 2, 3).reshape(H, B * T, hd)
            s_shared = torch.matmul(flat, k_layer[0, :, :shared].transpose(-1, -2)).view(H, B, T, shared)
            probs = torch.softmax(torch.cat((s_shared.transpose(0, 1), scores), dim=-1), dim=-1)
            p_shared = probs[..., :shared].transpose(0, 1).reshape(H, B * T, shared)
            y = torch.matmul(p_shared, v_layer[0, :, :shared]).view(H, B, T, hd).transpose(0, 1)
            y = y + torch.matmul(probs[..., shared:], v_layer[:, :, shared:end])
        else:
            y = torch.matmul(torch.softmax(scores, dim=-1), v_layer[:, :, :end])
        y = y.transpose(1, 2).reshape(B * T, C)
        x = _residual_linear(x, y, wp, bp, lp)
        h = F.layer_norm(x, (C,), ln2w, ln2b, layer_eps[layer][1])
        x = _residual_linear(x, F.gelu(_linear(h, wfc, bfc, lfc)), wp2, bp2, lp2)
    x = F.layer_norm(x, (C,), plan.ln_f[0], plan.ln_f[1], final_eps)
    return _head(model, plan, x.view(B, T, C))


def prefill_row(model: GPT, plan: DecodePlan, cache: KVCache, row: int, tokens: torch.Tensor) -> None:
    """Write ``tokens`` [T] into row ``row`` of ``cache`` from position 0 (a row's context refilled), in the plan's
    precision. A shared prompt is copied into every row first (the refilled row no longer starts with it)."""
    cache.materialize()
    one = KVCache.view_of(cache, rows=slice(row, row + 1))
    one.length = 0
    if tokens.numel():
        _threaded(plan, lambda: prefill(model, plan, tokens[None, :], one))
