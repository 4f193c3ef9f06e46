"""Primed, batched, windowed sampling of codec frames with MusicGen's delay interleaving.

**Delay pattern.** Codes ``[B, Q, F]`` become ``[B, Q, F + Q - 1]`` steps: step ``s`` holds codebook ``q`` of frame
``s - q``, and the *special* id where that frame does not exist. One transformer step then emits codebook 0 of a
new frame, codebook 1 of the frame before, ... so every codebook is predicted knowing the coarser codebooks of
its own frame (they were emitted on earlier steps)::

    step     0    1    2    3    4
    q=0     a0   a1   a2   a3    .          a..: codes of frames 0..3
    q=1      .   b0   b1   b2   b3          .  : the special id
    q=2      .    .   c0   c1   c2   c3

**Primed sampling** (Jukebox): the prompt's P frames are prefilled into the KV cache in one forward; on the
following Q - 1 steps the codebooks whose frame is still in the prompt are taken from the prompt (teacher
forcing), the others sampled; after that every codebook is sampled. K variants are K rows of one batch. Each row
has its own ``torch.Generator`` seeded with its variant's seed and its own temperature and top-p, and draws the same
number of samples whatever the other rows do, so a variant depends only on its seed and settings.

**Windows.** When the context is full, the last ``keep`` steps are prefilled into a fresh cache (positions from 0)
and sampling goes on: windows of the context length that overlap by ``keep`` steps, so any length can be sampled.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from engine.api import CancelToken
from engine.nn.nucleus import top_p_filter

log = logging.getLogger(__name__)

ProgressFn = Callable[[float], None]
UNKNOWN = -1


class Prior(Protocol):
    """A prior sampling can drive: Segue's GPT (:class:`engine.nn.model.GPT`) or an adapter around another
    decoder (:class:`engine.audio.musicgen.MusicgenPrior`). ``model(idx [K, Q, T], cache=cache)`` appends ``T``
    steps to the cache and returns ``(logits [K, Q, T, vocab_size], anything)``."""

    @property
    def config(self) -> Any: ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...

    def num_parameters(self) -> int: ...

    def new_cache(self, batch_size: int) -> Any: ...

    def __call__(self, idx: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]: ...


def delay_pattern(codes: torch.Tensor, special: int) -> torch.Tensor:
    """Interleave ``codes [B, Q, F]`` into ``[B, Q, F + Q - 1]`` steps (codebook ``q`` delayed by ``q``)."""
    B, Q, F = codes.shape
    out = torch.full((B, Q, F + Q - 1), special, dtype=codes.dtype, device=codes.device)
    for q in range(Q):
        out[:, q, q : q + F] = codes[:, q]
    return out


def undelay_pattern(steps: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`delay_pattern`: ``[B, Q, S] -> codes [B, Q, S - Q + 1]``."""
    B, Q, S = steps.shape
    frames = S - Q + 1
    if frames < 1:
        raise ValueError(f"{S} steps hold no whole frame of {Q} codebooks")
    return torch.stack([steps[:, q, q : q + frames] for q in range(Q)], dim=1)


@dataclass(frozen=True)
class SamplingOptions:
    """How the context is used. ``keep_fraction``: steps kept (re-prefilled) when a window is full."""

    keep_fraction: float = 0.5
    progress_every: int = 8  # steps between progress reports
    # torch CPU threads for the one-frame steps (None: leave as is). A step's matrices are small: a second thread
    # gains little on an idle machine, and while another process (a DAW) keeps a core busy, torch's threads wait
    # on each other at every operation: one thread sampled 6x faster than two on a loaded 2-core machine.
    step_threads: int | None = 1

    def keep_steps(self, block_size: int) -> int:
        return max(1, min(block_size - 1, int(block_size * self.keep_fraction)))


@dataclass(frozen=True)
class Draws:
    """The variants to sample, one a row of the batch: each one's seed, and the temperature and top-p, one value
    for every variant or one per variant."""

    seeds: Sequence[int]
    temperature: float | Sequence[float] = 1.0
    top_p: float | Sequence[float] = 0.95


def _per_row(values: float | Sequence[float], rows: int, name: str) -> torch.Tensor:
    if isinstance(values, (int, float)):
        return torch.full((rows,), float(values))
    if len(values) != rows:
        raise ValueError(f"{name}: {len(values)} values for {rows} variants")
    return torch.tensor([float(v) for v in values])


@torch.inference_mode()
def sample_frames(
    model: Prior,
    prompt: torch.Tensor,
    frames: int,
    draws: Draws,
    options: SamplingOptions | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> torch.Tensor:
    """Continue ``prompt`` (codes ``[Q, P]``, ``P >= 1``) by ``frames`` new frames in ``len(draws.seeds)`` variants.

    Returns the new codes ``[K, Q, frames]`` (on the CPU). The prompt must fit the context (``P <= block_size``);
    callers keep it shorter so the first window has room to sample (:func:`max_prompt_frames`).
    """
    options = options or SamplingOptions()
    config = model.config
    Q, V, block = config.n_streams, config.vocab_size, config.block_size
    special = V - 1
    if prompt.dim() != 2 or prompt.shape[0] != Q:
        raise ValueError(f"prompt codes must be shaped [{Q}, frames], got {tuple(prompt.shape)}")
    P = int(prompt.shape[1])
    if not 1 <= P <= block:
        raise ValueError(f"the prompt has {P} frames; it must have 1..{block} (the context)")
    if frames < 1:
        raise ValueError(f"frames must be positive, got {frames}")
    if int(prompt.min()) < 0 or int(prompt.max()) >= special:
        raise ValueError(f"prompt codes must be in 0..{special - 1}")
    K = len(draws.seeds)
    device = next(model.parameters()).device
    rows = _Rows.of(draws, special, device)

    total = P + frames
    steps = total + Q - 1
    # what is known before sampling: the prompt's frames (delayed) and the pattern's special corners
    known = torch.full((Q, steps), UNKNOWN, dtype=torch.long)
    for q in range(Q):
        known[q, :q] = special  # before codebook q's first frame
        known[q, q : q + P] = prompt[q].cpu()
        known[q, total + q :] = special  # after codebook q's last frame
    sequence = known[None].repeat(K, 1, 1).to(device)  # [K, Q, steps]; UNKNOWN entries are overwritten

    cache = model.new_cache(K)
    logits, _ = model(sequence[:, :, :P], cache=cache)  # prefill the prompt: [K, Q, 1, V]
    threads = torch.get_num_threads()
    if options.step_threads and device.type == "cpu":
        torch.set_num_threads(options.step_threads)
    try:
        windows = _steps(model, _Batch(sequence, known, P, rows), (cache, logits), options, progress, cancel)
    finally:
        torch.set_num_threads(threads)
    if progress is not None:
        progress(1.0)
    log.debug("sampled %d frames x %d variants in %d window(s) of %d steps", frames, K, windows, block)
    return undelay_pattern(sequence.cpu())[:, :, P:]


@dataclass(frozen=True)
class _Rows:
    """Each variant's sampling settings and random generator."""

    temperatures: torch.Tensor  # [K]
    top_ps: torch.Tensor  # [K]
    generators: Sequence[torch.Generator]
    special: int

    @classmethod
    def of(cls, draws: Draws, special: int, device: torch.device) -> _Rows:
        K = len(draws.seeds)
        return cls(
            temperatures=_per_row(draws.temperature, K, "temperature").clamp_min(1e-4).to(device),
            top_ps=_per_row(draws.top_p, K, "top_p").to(device),
            generators=[torch.Generator(device="cpu").manual_seed(int(s)) for s in draws.seeds],
            special=special,
        )

    def sample(self, logits: torch.Tensor, streams: torch.Tensor) -> torch.Tensor:
        """One code per row for each selected stream: ``logits [K, Q, V]``, ``streams`` bool [Q] -> [K, n]."""
        chosen = logits[:, streams.to(logits.device), :].float()  # [K, n, V]
        chosen[..., self.special] = float("-inf")  # a frame that exists is never the special id
        probs = torch.softmax(chosen / self.temperatures[:, None, None], dim=-1)  # temperature
        probs = top_p_filter(probs, self.top_ps).cpu()  # nucleus, per row
        rows = [torch.multinomial(probs[i], 1, generator=g)[:, 0] for i, g in enumerate(self.generators)]
        return torch.stack(rows)


@dataclass(frozen=True)
class _Batch:
    """The variants being sampled, one a row: their delayed steps ``sequence [K, Q, steps]`` (filled in place),
    what is known before sampling ``known [Q, steps]`` (:data:`UNKNOWN` where a code is drawn), the prompt's
    length ``P`` in steps, and each row's draws."""

    sequence: torch.Tensor
    known: torch.Tensor
    P: int
    rows: _Rows


def _steps(
    model: Prior,
    batch: _Batch,
    state: tuple[Any, torch.Tensor],
    options: SamplingOptions,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> int:
    """The step loop of :func:`sample_frames`: fills ``batch.sequence`` in place, starting from the cache and logits
    after the prompt (``state``); returns how many windows it took."""
    sequence, known, P, rows = batch.sequence, batch.known, batch.P, batch.rows
    cache, logits = state
    K, _, steps = sequence.shape
    block = model.config.block_size
    keep = options.keep_steps(block)
    device = sequence.device
    windows = 1
    for step in range(P, steps):
        if cancel is not None:
            cancel.raise_if_cancelled()
        column = known[:, step]
        unknown = column == UNKNOWN
        if bool(unknown.any()):
            sampled = rows.sample(logits[:, :, -1, :], unknown)
            tokens = column.to(device)[None].repeat(K, 1)
            tokens[:, unknown.to(device)] = sampled.to(device)
            sequence[:, :, step] = tokens
        if progress is not None and (step - P) % options.progress_every == 0:
            progress((step - P) / (steps - P))
        if step == steps - 1:
            break
        if cache.length >= block:  # the window is full: start the next one from the last `keep` steps
            cache = model.new_cache(K)
            logits, _ = model(sequence[:, :, step + 1 - keep : step + 1], cache=cache)
            windows += 1
        else:
            logits, _ = model(sequence[:, :, step : step + 1], cache=cache)
    return windows


def max_prompt_frames(block_size: int, options: SamplingOptions | None = None) -> int:
    """The longest prompt a priming uses: the steps kept between windows (at least one)."""
    return (options or SamplingOptions()).keep_steps(block_size)


def windows_needed(prompt_frames: int, frames: int, n_codebooks: int, block_size: int, keep: int) -> int:
    """How many context windows sampling ``frames`` after ``prompt_frames`` takes (for progress and benches)."""
    steps = prompt_frames + frames + n_codebooks - 1
    if steps <= block_size:
        return 1
    return 1 + math.ceil((steps - block_size) / max(1, block_size - keep))
