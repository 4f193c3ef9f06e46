"""Nucleus (top-p) filtering, shared by the MIDI and the audio samplers."""

from __future__ import annotations

import torch


def top_p_filter(probs: torch.Tensor, top_p: float | torch.Tensor) -> torch.Tensor:
    """Zero each distribution's tail outside the smallest set of tokens with mass >= top-p.

    ``probs [K, ..., V]``; ``top_p`` is one value for every row or one per row (``[K]``). The token that crosses
    top-p is kept, so a row never loses all its tokens. A single ``top_p >= 1`` returns ``probs`` as it is.
    """
    threshold: float | torch.Tensor = top_p
    if isinstance(top_p, torch.Tensor):
        threshold = top_p.reshape(top_p.shape[0], *([1] * (probs.dim() - 1)))
    elif top_p >= 1.0:
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    cumulative = sorted_probs.cumsum(dim=-1)
    drop = (cumulative - sorted_probs) > threshold
    sorted_probs = sorted_probs.masked_fill(drop, 0.0)
    filtered: torch.Tensor = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return filtered
