"""The GPT's decode step without the module tree: fewer, larger tensor ops per token, and a shared prompt.

Sampling spends almost all of its time in one-token steps against the KV cache. On a CPU such a step is bound by
memory traffic (every weight and every cached key/value is read once per step) and by per-op overhead, not by
arithmetic. :func:`decode_step` computes exactly what the module path (:meth:`engine.nn.model.GPT.forward`
with a cache) computes, with the same weights, in about a third as many torch ops: no module calls, the residual
additions folded into ``addmm``, attention as two small matmuls on the cache (for one query the CPU flash-attention
kernel is several times slower than plain matmuls), and no copies of the weights.

A shared prompt (:func:`prefill_shared`): when every row of a batch starts from the same tokens (K variants of one
region), the prompt is run through the model once and its keys/values are stored once, in row 0 of the cache; each
step then reads them once for all rows (one matmul per head with the rows as its M dimension) and only the rows'
own tokens row by row. That removes (K-1)/K of the prompt's share of both the prefill and every step's cache reads.
Whatever needs the full per-row cache (the module path) first calls :meth:`KVCache.materialize`.

Weights are read from the model's parameters at every step (``DecodePlan`` holds references, re-taken when a
parameter object is replaced), so weights adapted in place before or between jobs, by fine-tuning or by merged
low-rank adapters, are used as they are. A model whose blocks are not the plain modules this code knows (a wrapped
``nn.Linear``, a forward hook) is not eligible: it falls back to the module path, which is always correct.

Settings (:func:`apply_settings`): the entry point reads ``SEGUE_FAST_DECODE``, ``SEGUE_STEP_THREADS`` and
``SEGUE_DECODE_PRECISION`` once (:class:`engine.environment.DecodeSettings`) and the engine applies them to each
GPT it loads; nothing here reads the environment.

Lower precision (``model.decode_dtype = torch.bfloat16``, which the MIDI sampler sets per job from
``model.sampler_dtype``, by default bfloat16 where the CPU has it natively, see :func:`decode_dtype`): the weight
matrices' products (the projections, the MLP and the output head) run in bfloat16 on copies of the weights taken
when the job's cache is made (so weights adapted before a job are used; a change during a job is seen at the next
cache), with float32 layer norms, softmax and attention; a prompt that differs between rows (the context cropped
and refilled) is prefilled the same way (:func:`prefill`). Not the same logits as the module path (about 0.3 % of
a logit's scale), so not the same tokens; on held-out pieces the MIDI model's loss moved by less than 0.1 %
(docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

import torch
from torch import nn
from torch.nn import functional as F

from engine.nn.kv_cache import KVCache
from engine.nn.threads import StepThreads

if TYPE_CHECKING:  # annotations only: model.py imports this module
    from engine.environment import DecodeSettings
    from engine.nn.model import GPT, Block

log = logging.getLogger(__name__)

BUSY_LOAD_PER_CORE = 0.5  # measured (docs/benchmarks.md): above this 1-minute load, steps run on one thread


def apply_settings(model: GPT, settings: DecodeSettings) -> None:
    """How ``model``'s decode steps run from now on: the fast path or the module path, the steps' threads, and the
    MIDI sampler's precision (:func:`decode_dtype` of ``settings.precision``)."""
    model.fast_decode = settings.fast
    model.decode_threads = settings.step_threads
    model.sampler_dtype = decode_dtype(settings.precision)


def decode_dtype(precision: str) -> torch.dtype:
    """The weight products' dtype for the MIDI sampler's steps, from ``precision`` (``SEGUE_DECODE_PRECISION``):

    - "auto" (the default, also ""): bfloat16 where the CPU computes it natively (:func:`native_bf16`: AVX-512 BF16
      or AMX), float32 elsewhere (emulated bfloat16 is slower than float32);
    - "float32": the module path's logits, so its tokens for a seed on any CPU;
    - "bfloat16": bfloat16 wherever oneDNN has kernels for it (AVX-512 and later; elsewhere float32, with a warning).

    bfloat16 here: 1.1-1.3x less CPU per sampling job and 1.6x faster refills of the context, held-out loss within
    0.01 % and the quality bench's figures within their noise (docs/benchmarks.md), but other tokens for a seed
    than float32 gives."""
    raw = precision.strip().lower()
    if raw in ("", "auto"):
        return torch.bfloat16 if native_bf16() else torch.float32
    if raw in ("float32", "fp32", "f32"):
        return torch.float32
    if raw in ("bfloat16", "bf16"):
        if bf16_kernels():
            return torch.bfloat16
        log.warning("decode precision %s: this CPU has no bfloat16 kernels; using float32", raw)
        return torch.float32
    log.warning("ignoring the decode precision %r: give auto, float32 or bfloat16", precision)
    return torch.float32


def bf16_kernels() -> bool:
    """Does this CPU's oneDNN have bfloat16 matrix kernels (AVX-512 or later)?"""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())  # type: ignore[no-untyped-call]
    except (AttributeError, RuntimeError):
        return False


def native_bf16() -> bool:
    """Does this CPU compute bfloat16 products in hardware (AVX-512 BF16 or AMX tiles), not by emulation?"""
    if not bf16_kernels():
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
    except RuntimeError:
        return False


def step_threads(setting: int | None) -> int:
    """Torch threads for this job's decode steps: ``setting`` if given (``SEGUE_STEP_THREADS``; 0: the process's
    setting), else the process's setting on an idle machine and one thread on a busy one (1-minute load average of
    at least :data:`BUSY_LOAD_PER_CORE` per core).

    A step is about a hundred small ops: with two threads each op waits for the other core, which on a machine
    busy with anything else (a DAW playing, another job) costs far more than the op itself (measured: 4-8x slower
    sampling); on an idle machine two threads were faster."""
    if setting is not None:
        return max(0, setting)
    try:
        busy = os.getloadavg()[0] >= BUSY_LOAD_PER_CORE * (os.cpu_count() or 1)
    except (OSError, AttributeError):  # no load average (Windows): assume a busy machine
        busy = True
    return 1 if busy else 0


_JOB_THREADS: list[int] = []  # the step threads a running sampling job chose (job_threads), innermost last
_JOB_CHOOSERS: list[StepThreads | None] = []  # each running job's chooser of its steps' threads (or None)


@contextlib.contextmanager
def job_threads(setting: int | None = None) -> Iterator[int]:
    """Run a whole sampling job (prefills, steps and the sampler's own ops) on the decode steps' thread count,
    decided once (:func:`step_threads` of ``setting``, the model's ``decode_threads``; 0 = the process's setting)
    and set once, restored at the end.

    Switching torch's threads around every step (what :func:`decode_step` does outside such a job) cost more than
    the step: with two process threads and one step thread, 20.6 ms of CPU a step against 11.7 ms with one thread
    throughout, and up to 2.3x the wall time, on this 2-core machine under load (docs/benchmarks.md).

    Without a ``setting``, in a process of several threads, the choice made here is only the start: the machine's
    load can change while the job runs, so the steps' threads are re-chosen from the steps' own times
    (:class:`engine.nn.threads.StepThreads`: a few steps on the other choice now and then, so a switch is rare)."""
    threads = step_threads(setting)
    previous = torch.get_num_threads()
    # no setting and a choice to make: the steps' threads follow the machine while the job runs (StepThreads)
    chooser = StepThreads(previous, start_wide=threads in (0, previous)) if setting is None and previous > 1 else None
    _JOB_THREADS.append(threads)
    _JOB_CHOOSERS.append(chooser)
    try:
        if threads and threads != previous:
            torch.set_num_threads(threads)
        yield threads
    finally:
        _JOB_THREADS.pop()
        _JOB_CHOOSERS.pop()
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


_Layer = tuple[
    torch.Tensor, torch.Tensor | None,  # ln_1 weight, bias
    torch.Tensor, torch.Tensor | None,  # qkv
    torch.Tensor, torch.Tensor | None,  # attention output projection
    torch.Tensor, torch.Tensor | None,  # ln_2
    torch.Tensor, torch.Tensor | None,  # mlp fc
    torch.Tensor, torch.Tensor | None,  # mlp output projection
]  # fmt: skip


def _blocks(model: GPT) -> list[Block]:
    return cast("list[Block]", list(model.blocks))


def _plain(module: nn.Module, kind: type[nn.Module]) -> bool:
    """Exactly ``kind`` (not a subclass or wrapper) and no hooks: its forward is what we reimplement."""
    return (
        type(module) is kind
        and not module._forward_hooks
        and not module._forward_pre_hooks
        and not getattr(module, "_backward_hooks", None)
    )


def eligible(model: GPT) -> bool:
    """Can :func:`decode_step` stand in for ``model``'s module path? (plain modules, no hooks)"""
    if type(model).__name__ != "GPT" or model._forward_hooks or model._forward_pre_hooks:
        return False
    for block in _blocks(model):
        parts = (
            (block, None),
            (block.ln_1, nn.LayerNorm),
            (block.ln_2, nn.LayerNorm),
            (block.attn.qkv, nn.Linear),
            (block.attn.proj, nn.Linear),
            (block.mlp.fc, nn.Linear),
            (block.mlp.proj, nn.Linear),
        )
        for module, kind in parts:
            if kind is None:
                if module._forward_hooks or module._forward_pre_hooks:
                    return False
            elif not _plain(module, kind):
                return False
        if block.attn._forward_hooks or block.mlp._forward_hooks:
            return False
        if block.attn._forward_pre_hooks or block.mlp._forward_pre_hooks:
            return False
    return _plain(model.ln_f, nn.LayerNorm) and _plain(model.lm_head, nn.Linear) and _plain(model.wte, nn.Embedding)


class DecodePlan:
    """References to the weights one decode step reads, in the order it reads them.

    Built from the model's parameters; :meth:`current` says whether the model still holds the same parameter
    objects (in-place changes need nothing: the references see them).
    """

    def __init__(self, model: GPT) -> None:
        self.layers: list[_Layer] = []
        for block in _blocks(model):
            self.layers.append(
                (
                    block.ln_1.weight, block.ln_1.bias,
                    block.attn.qkv.weight, block.attn.qkv.bias,
                    block.attn.proj.weight, block.attn.proj.bias,
                    block.ln_2.weight, block.ln_2.bias,
                    block.mlp.fc.weight, block.mlp.fc.bias,
                    block.mlp.proj.weight, block.mlp.proj.bias,
                )
            )  # fmt: skip
        self.ln_f = (model.ln_f.weight, model.ln_f.bias)
        self.eps = (
            [(b.ln_1.eps, b.ln_2.eps) for b in _blocks(model)],
            model.ln_f.eps,
        )
        self.sources = self._sources(model)
        self.n_head = model.config.n_head
        self.n_embd = model.config.n_embd
        self.threads = step_threads(model.decode_threads)
        self.chooser: StepThreads | None = None  # inside a job without a thread setting: re-chosen as it runs
        # lower precision: copies of each layer's (qkv, proj, fc, mlp proj) matrices and of the output head
        self.low: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
        self.head_low: torch.Tensor | None = None
        self.single_stream = model.config.n_streams == 1

    def set_precision(self, model: GPT, dtype: torch.dtype) -> None:
        """Products in ``dtype`` from fresh copies of the weights (float32: the weights themselves)."""
        if dtype == torch.float32 or dtype == model.lm_head.weight.dtype:
            self.low, self.head_low = None, None
            return
        with torch.no_grad():
            self.low = [
                (layer[2].to(dtype), layer[4].to(dtype), layer[8].to(dtype), layer[10].to(dtype))
                for layer in self.layers
            ]
            self.head_low = model.lm_head.weight.to(dtype) if self.single_stream else None

    @staticmethod
    def _sources(model: GPT) -> list[torch.Tensor | None]:
        return [p for p in model.parameters()] + [model.lm_head.weight, model.wte.weight, model.wpe.weight]

    def current(self, model: GPT) -> bool:
        sources = self._sources(model)
        return len(sources) == len(self.sources) and all(a is b for a, b in zip(sources, self.sources, strict=True))


def plan_for(model: GPT) -> DecodePlan | None:
    """The model's decode plan, built (or rebuilt after a parameter was replaced) on demand; None if not eligible.

    Called once per job (a new cache); the job's steps reuse the plan it returns, and its thread count
    (:func:`step_threads`) and precision (``model.decode_dtype``, weights copied then) are decided again."""
    plan: DecodePlan | None = model.__dict__.get("_decode_plan")
    if plan is None or not plan.current(model):
        model.__dict__.pop("_decode_plan", None)
        if not eligible(model):
            return None
        plan = DecodePlan(model)
        model.__dict__["_decode_plan"] = plan
    plan.threads = _JOB_THREADS[-1] if _JOB_THREADS else step_threads(model.decode_threads)
    plan.chooser = _JOB_CHOOSERS[-1] if _JOB_CHOOSERS else None
    plan.set_precision(model, model.decode_dtype)
    return plan


def usable(model: GPT) -> bool:
    """The fast path applies now: switched on, not training (dropout), no gradients wanted."""
    if not model.fast_decode or (model.training and model.config.dropout > 0.0):
        return False
    return not torch.is_grad_enabled() or torch.is_inference_mode_enabled()


def decode_step(model: GPT, plan: DecodePlan, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """One token per row (``idx`` [B, 1], or [B, Q, 1] with Q streams) -> logits as the module path returns them
    ([B, 1, vocab] or [B, Q, 1, vocab]); writes this step's keys/values and advances the cache.

    Runs on ``plan.threads`` torch threads (:func:`step_threads`) and restores the process's setting (inside
    :func:`job_threads` the job has set them already: nothing to switch; a job without a thread setting lets its
    :class:`engine.nn.threads.StepThreads` pick each step's threads from the steps' own times)."""
    return _threaded(plan, lambda: _decode_step(model, plan, idx, cache))


def _threaded(plan: DecodePlan, step: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Run ``step`` on the plan's threads (see :func:`decode_step`)."""
    chooser = plan.chooser
    if chooser is not None and _JOB_CHOOSERS and _JOB_CHOOSERS[-1] is chooser:
        threads = chooser.next_threads()
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)  # the job restores the process's setting when it ends
        started = time.perf_counter()
        logits = step()
        chooser.record(threads, time.perf_counter() - started)
        return logits
    previous = torch.get_num_threads()
    if not plan.threads or plan.threads == previous:
        return step()
    torch.set_num_threads(plan.threads)
    try:
        return step()
    finally:
        torch.set_num_threads(previous)


def _decode_step(model: GPT, plan: DecodePlan, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
    B = idx.shape[0]
    C = plan.n_embd
    H = plan.n_head
    hd = C // H
    pos = cache.length
    L = pos + 1
    shared = cache.shared
    scale = 1.0 / math.sqrt(hd)
    x = model._embed(idx).view(B, C) + model.wpe.weight[pos]
    keys, values = cache.keys, cache.values
    layer_eps, final_eps = plan.eps
    for layer, (ln1w, ln1b, wqkv, bqkv, wp, bp, ln2w, ln2b, wfc, bfc, wp2, bp2) in enumerate(plan.layers):
        lqkv, lp, lfc, lp2 = plan.low[layer] if plan.low is not None else (None, None, None, None)
        h = F.layer_norm(x, (C,), ln1w, ln1b, layer_eps[layer][0])
        qkv = _linear(h, wqkv, bqkv, lqkv).view(B, 3, H, hd)
        k_layer, v_layer = keys[layer], values[layer]
        k_layer[:, :, pos] = qkv[:, 1]
        v_layer[:, :, pos] = qkv[:, 2]
        q = qkv[:, 0] * scale  # [B, H, hd]
        if shared:
            # the prompt's keys once for all rows: per head, [B, hd] @ [hd, P]
            s_shared = torch.matmul(q.transpose(0, 1), k_layer[0, :, :shared].transpose(-1, -2))  # [H, B, P]
            s_own = torch.matmul(q.unsqueeze(2), k_layer[:, :, shared:L].transpose(-1, -2))  # [B, H, 1, S]
            probs = torch.softmax(torch.cat((s_shared.transpose(0, 1), s_own.squeeze(2)), dim=-1), dim=-1)
            y = torch.matmul(probs[..., :shared].transpose(0, 1), v_layer[0, :, :shared]).transpose(0, 1)
            y = y + torch.matmul(probs[..., shared:].unsqueeze(2), v_layer[:, :, shared:L]).squeeze(2)
        else:
            s = torch.matmul(q.unsqueeze(2), k_layer[:, :, :L].transpose(-1, -2))  # [B, H, 1, L]
            y = torch.matmul(torch.softmax(s, dim=-1), v_layer[:, :, :L])
        y = y.reshape(B, C)
        x = _residual_linear(x, y, wp, bp, lp)
        h = F.layer_norm(x, (C,), ln2w, ln2b, layer_eps[layer][1])
        x = _residual_linear(x, F.gelu(_linear(h, wfc, bfc, lfc)), wp2, bp2, lp2)
    x = F.layer_norm(x, (C,), plan.ln_f[0], plan.ln_f[1], final_eps)
    cache.length += 1
    return _head(model, plan, x.unsqueeze(1))


def _linear(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, low: torch.Tensor | None) -> torch.Tensor:
    """``h @ weight.T (+ bias)``; with ``low`` (the weight in a lower precision) the product runs in that dtype."""
    if low is None:
        return F.linear(h, weight, bias)
    out = F.linear(h.to(low.dtype), low).to(h.dtype)
    return out if bias is None else out + bias


def _residual_linear(
    x: torch.Tensor, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, low: torch.Tensor | None = None
) -> torch.Tensor:
    """``x + h @ weight.T (+ bias)`` in one op (float32), or with the product in ``low``'s dtype."""
    if low is not None:
        return x + _linear(h, weight, bias, low)
    out = torch.addmm(x, h, weight.t())
    return out if bias is None else out + bias


def _head(model: GPT, plan: DecodePlan, x: torch.Tensor) -> torch.Tensor:
    """Logits from final hidden states [B, T, C], in the plan's precision."""
    if plan.head_low is None:
        return model._head(x)
    return F.linear(x.to(plan.head_low.dtype), plan.head_low).to(x.dtype)


def rows_identical(idx: torch.Tensor) -> bool:
    """Every row of the batch holds the same tokens (the same prompt for K variants)."""
    return idx.shape[0] > 1 and bool((idx == idx[:1]).all())


def prefill_shared(model: GPT, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Prefill an empty cache with a prompt that every row shares: run one row, keep its keys/values once.

    Returns the logits the module path would return for the whole batch (the one row's, expanded).
    """
    one = KVCache.view_of(cache, rows=slice(0, 1))
    logits: torch.Tensor = model(idx[:1], cache=one)[0]
    cache.length = one.length
    cache.shared = int(idx.shape[-1])
    return logits.repeat(idx.shape[0], *([1] * (logits.dim() - 1)))  # [B, 1, V]: small, and safe to modify


def prefill(model: GPT, plan: DecodePlan, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Prefill an empty cache with ``idx`` [B, T] (one stream, rows that may differ) in the plan's lower precision:
    the module path's causal prefill with the weight products of :func:`decode_step`. Returns logits [B, 1, V]."""
    B, T = idx.shape
    C, H = plan.n_embd, plan.n_head
    hd = C // H
    x = model._embed(idx) + model.wpe.weight[:T]
    layer_eps, final_eps = plan.eps
    for layer, (ln1w, ln1b, wqkv, bqkv, wp, bp, ln2w, ln2b, wfc, bfc, wp2, bp2) in enumerate(plan.layers):
        lqkv, lp, lfc, lp2 = plan.low[layer] if plan.low is not None else (None, None, None, None)
        h = F.layer_norm(x, (C,), ln1w, ln1b, layer_eps[layer][0])
        q, k, v = _linear(h, wqkv, bqkv, lqkv).view(B, T, 3, H, hd).permute(2, 0, 3, 1, 4)  # [B, H, T, hd]
        cache.keys[layer, :, :, :T] = k
        cache.values[layer, :, :, :T] = v
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + _linear(y, wp, bp, lp)
        h = F.layer_norm(x, (C,), ln2w, ln2b, layer_eps[layer][1])
        x = x + _linear(F.gelu(_linear(h, wfc, bfc, lfc)), wp2, bp2, lp2)
    x = F.layer_norm(x[:, -1:], (C,), plan.ln_f[0], plan.ln_f[1], final_eps)
    cache.length = T
    return _head(model, plan, x)
