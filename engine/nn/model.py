"""A decoder-only transformer (GPT) with a preallocated key/value cache, shared by the MIDI and the audio engine.

Reads top to bottom: config, blocks, model, then the cache-aware forward used by the samplers (the cache:
:mod:`engine.nn.kv_cache`; the fast one-token step: :mod:`engine.nn.model_fast`). The same module
serves training (full sequences, causal attention) and generation (one step at a time against the cache).
The config travels with the weights as ``config.json``; see :mod:`engine.checkpoints`.

One token stream (``n_streams=1``, the MIDI engine): ``idx [B, T] -> logits [B, T, vocab]``. Several parallel
streams (``n_streams=Q``, the audio prior over Q codebooks with MusicGen's delay interleaving): one step takes one
token per stream, the input is the sum of the Q streams' embeddings, and Q output heads give one distribution per
stream: ``idx [B, Q, T] -> logits [B, Q, T, vocab]``. The Q embedding tables (and the tied heads) are stored as
one table of ``Q * vocab`` rows, stream ``q`` at offset ``q * vocab``, so a one-stream model has exactly the
parameters, names and shapes it always had.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from engine.checkpoints import config_fields
from engine.nn import model_fast
from engine.nn.kv_cache import KVCache


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 512
    block_size: int = 1024  # longest context the model attends to
    n_layer: int = 6
    n_head: int = 8
    n_embd: int = 256
    dropout: float = 0.0
    bias: bool = False
    n_streams: int = 1  # parallel token streams per step (audio: codebooks); 1 = a plain GPT

    def __post_init__(self) -> None:
        if self.n_streams < 1:
            raise ValueError(f"n_streams must be at least 1, got {self.n_streams}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        return cls(**config_fields(cls, data, "GPT"))


PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig(block_size=256, n_layer=2, n_head=2, n_embd=64),  # tests
    "small": GPTConfig(block_size=768, n_layer=6, n_head=8, n_embd=256),  # the shipped CPU model, ~5M params
    "medium": GPTConfig(block_size=1024, n_layer=8, n_head=8, n_embd=512),  # ~25M, a GPU run
    "large": GPTConfig(block_size=2048, n_layer=16, n_head=16, n_embd=1024),  # ~200M, several GPUs
}


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # [B, T, C] -> [B, heads, T, head_dim]
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if cache is None:
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
            )
        else:
            # write this step's keys/values after what the cache already holds, attend to all of it
            start = cache.length
            cache.keys[layer, :, :, start : start + T] = k
            cache.values[layer, :, :, start : start + T] = v
            keys = cache.keys[layer, :, :, : start + T]
            values = cache.values[layer, :, :, : start + T]
            if T == 1:
                y = F.scaled_dot_product_attention(q, keys, values)
            else:  # prefill: causal within the new tokens, full view of the past
                mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
                y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        out: torch.Tensor = self.resid_dropout(self.proj(y))
        return out


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.dropout(self.proj(F.gelu(self.fc(x))))
        return out


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.n_streams * config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.n_streams * config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (stream by stream)
        # how the decode steps run (engine.nn.model_fast.apply_settings sets them from the entry point's settings):
        self.fast_decode = True  # through engine.nn.model_fast (False: the module path)
        self.decode_threads: int | None = None  # torch threads for the steps (None: one on a busy machine)
        self.sampler_dtype = torch.float32  # the MIDI sampler's weight products (sample_continuations' default)
        self.decode_dtype = torch.float32  # the fast path's weight products now (the MIDI sampler sets it per job)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # scaled init of residual projections (GPT-2)
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``idx`` [B, T] token ids -> logits [B, T, vocab] (only the last step when a cache is given).

        With ``n_streams=Q > 1``: ``idx`` [B, Q, T] -> logits [B, Q, T, vocab] (``[B, Q, 1, vocab]`` with a cache).
        With ``targets`` shaped like ``idx`` (``-100`` = ignore) also returns the mean cross-entropy in nats per
        token (over every stream). With a cache, the new steps are appended after ``cache.length`` and the cache
        advances.
        """
        streams = self.config.n_streams
        if streams == 1:
            B, T = idx.shape
        else:
            if idx.dim() != 3 or idx.shape[1] != streams:
                raise ValueError(f"expected token ids shaped [batch, {streams}, steps], got {tuple(idx.shape)}")
            B, _, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds the context of {self.config.block_size}")
        if cache is not None and start + T > cache.capacity:
            raise ValueError(f"sequence of {start + T} tokens exceeds the cache's {cache.capacity} positions")
        if cache is not None and targets is None and model_fast.usable(self):
            if start == 0:  # a new job's cache: check the weights once, the steps reuse the plan
                cache.plan = model_fast.plan_for(self)
            plan = cache.plan
            if plan is not None and T == 1:
                return model_fast.decode_step(self, plan, idx, cache), None
            if plan is not None and start == 0 and model_fast.rows_identical(idx):
                return model_fast.prefill_shared(self, idx, cache), None
            if plan is not None and start == 0 and plan.low is not None and streams == 1:
                return model_fast.prefill(self, plan, idx, cache), None
        if cache is not None:
            cache.materialize()
        pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)
        x = self.drop(self._embed(idx) + self.wpe(pos))
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)
        x = self.ln_f(x)
        if cache is not None:
            cache.length += T
            return self._head(x[:, -1:, :]), None
        logits = self._head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Token embeddings [B, T, C]: one stream's, or the sum over the streams of ``idx`` [B, Q, T]."""
        if self.config.n_streams == 1:
            out: torch.Tensor = self.wte(idx)
            return out
        offsets = torch.arange(self.config.n_streams, device=idx.device)[None, :, None] * self.config.vocab_size
        summed: torch.Tensor = self.wte(idx + offsets).sum(dim=1)
        return summed

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from hidden states [B, T, C]: [B, T, vocab], or [B, Q, T, vocab] with several streams."""
        logits: torch.Tensor = self.lm_head(x)
        if self.config.n_streams == 1:
            return logits
        B, T, _ = logits.shape
        return logits.view(B, T, self.config.n_streams, self.config.vocab_size).transpose(1, 2)

    def new_cache(self, batch_size: int, capacity: int | None = None) -> KVCache:
        """An empty cache for ``batch_size`` rows of up to ``capacity`` positions (default: the model's context)."""
        p = next(self.parameters())
        return KVCache(self.config, batch_size, p.device, p.dtype, capacity)
