"""Test-time adaptation: a few steps of fine-tuning on the region (and its transpositions) before sampling.

The weights are changed in place for the job and restored afterwards (:func:`adapted`), whatever happens in
between (cancel, errors). The work is bounded by a step count and a time budget; :class:`AdaptReport` says what
was adapted, how many steps and how long, for job.json.

:func:`continuation_loss` measures what adaptation is for: the model's loss on what the composer wrote next,
given the region (bench/bench_midi_quality.py), with or without the region cache (:mod:`engine.symbolic.cache`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from miditok import REMI

from engine.api import CancelToken
from engine.nn.model import GPT
from engine.symbolic.cache import CacheSettings, TokenKinds
from engine.symbolic.dataset import transposition_table
from engine.symbolic.mixer import mixed_nll


@dataclass(frozen=True)
class AdaptSettings:
    steps: int = 8
    lr: float = 3e-4
    max_seconds: float = 3.0
    shifts: tuple[int, ...] = (-2, -1, 0, 1, 2)  # semitones; pitched tokens only, drums stay
    what: str = "full"  # "full": every weight; "head": the last block and the final norm


@dataclass(frozen=True)
class AdaptReport:
    what: str
    steps: int
    seconds: float
    tokens: int
    loss_before: float | None
    loss_after: float | None

    def describe(self) -> str:
        if self.steps == 0:
            return f"not adapted ({self.what})"
        return (
            f"adapted to the region ({self.what} weights, {self.steps} steps on {self.tokens} tokens x "
            f"transpositions, {self.seconds:.2f} s; loss {self.loss_before:.3f} -> {self.loss_after:.3f}); "
            "weights restored after the job"
        )


def transposed_rows(ids: Sequence[int], tokenizer: REMI, shifts: Sequence[int]) -> torch.Tensor:
    """``ids`` and its transpositions (rows of one batch; a shift that leaves the pitch range is skipped)."""
    pitch_of, id_of = transposition_table(tokenizer)
    pitches = [int(pitch_of[i]) for i in ids if pitch_of[i] >= 0]
    rows = []
    for shift in shifts:
        if pitches and (min(pitches) + shift not in id_of or max(pitches) + shift not in id_of):
            continue
        rows.append([id_of[int(pitch_of[i]) + shift] if pitch_of[i] >= 0 else int(i) for i in ids])
    return torch.tensor(rows or [list(ids)], dtype=torch.long)


def _trainable(model: GPT, what: str) -> list[torch.nn.Parameter]:
    if what == "head":
        params = list(model.blocks[-1].parameters()) + list(model.ln_f.parameters())
    else:
        params = list(model.parameters())
    return params


@contextlib.contextmanager
def adapted(
    model: GPT,
    ids: Sequence[int],
    tokenizer: REMI,
    settings: AdaptSettings | None,
    cancel: CancelToken | None = None,
) -> Iterator[AdaptReport]:
    """Fine-tune ``model`` on ``ids`` (the prompt) for the job; restore its weights and mode on exit."""
    if settings is None or settings.steps <= 0 or len(ids) < 16:
        yield AdaptReport(settings.what if settings else "off", 0, 0.0, len(ids), None, None)
        return
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    try:
        report = _train(model, ids, tokenizer, settings, cancel)
        model.eval()
        yield report
    finally:
        with torch.no_grad():
            model.load_state_dict(saved)
        model.train(was_training)
        for p in model.parameters():
            p.requires_grad_(True)
            p.grad = None


def _train(
    model: GPT, ids: Sequence[int], tokenizer: REMI, settings: AdaptSettings, cancel: CancelToken | None
) -> AdaptReport:
    started = time.perf_counter()
    block = model.config.block_size
    ids = list(ids)[-(block + 1) :]
    batch = transposed_rows(ids, tokenizer, settings.shifts)
    x, y = batch[:, :-1], batch[:, 1:]
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    trainable = _trainable(model, settings.what)
    chosen = {id(p) for p in trainable}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    # Adam by hand: constructing torch.optim.Adam the first time imports torch's compiler stack (4 s here)
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in trainable]
    beta1, beta2, eps = 0.9, 0.95, 1e-8
    model.train()
    first: float | None = None
    last: float | None = None
    steps = 0
    with torch.enable_grad():
        while steps < settings.steps and time.perf_counter() - started < settings.max_seconds:
            if cancel is not None:
                cancel.raise_if_cancelled()
            for p in trainable:
                p.grad = None
            _, loss = model(x, y)
            assert loss is not None
            loss.backward()
            steps += 1
            with torch.no_grad():
                squares = [(p.grad.float() ** 2).sum() for p in trainable if p.grad is not None]
                norm = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
                scale = min(1.0, 1.0 / (norm + 1e-6))  # clip the gradient norm at 1
                for p, (m, v) in zip(trainable, moments, strict=True):
                    if p.grad is None:
                        continue
                    g = p.grad * scale
                    m.mul_(beta1).add_(g, alpha=1 - beta1)
                    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    denominator = (v / (1 - beta2**steps)).sqrt_().add_(eps)
                    p.addcdiv_(m, denominator, value=-settings.lr / (1 - beta1**steps))
            value = float(loss.detach())
            first = value if first is None else first
            last = value
    return AdaptReport(settings.what, steps, time.perf_counter() - started, len(ids), first, last)


@torch.inference_mode()
def continuation_loss(
    model: GPT,
    context: Sequence[int],
    target: Sequence[int],
    cache: tuple[TokenKinds, CacheSettings] | None = None,
) -> float:
    """Mean cross-entropy (nats per token) of ``target`` following ``context``, each token seen as the sampler
    sees it: the context (its last half-block) and the target so far, and once the window is full its last half
    (:func:`engine.symbolic.sampling.sample_continuations` slides the same way). So the region stays in view
    however long the target is.

    With ``cache`` (the vocabulary's token kinds and the settings), the model's distribution is mixed with the
    region cache fitted on ``context`` and, token by token, on the target so far, as sampling does."""
    block = model.config.block_size
    context = list(context)[-(block // 2) :]
    if not context or not target:
        raise ValueError("continuation_loss needs a context and a target of at least one token each")
    sequence = context + list(target)
    ids = torch.tensor([sequence], dtype=torch.long, device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    pieces = []
    context_probs: list[float] = [0.0]  # the model's probability of each context token (the loop memory's fit)
    start, first = 0, len(context)  # window start; first position still to score
    while first < len(sequence):
        end = min(len(sequence), start + block)
        logits, _ = model(ids[:, start : end - 1])
        if start == 0:
            seen = torch.log_softmax(logits[0, : len(context) - 1].double(), dim=-1)
            context_probs += seen.gather(1, ids[0, 1 : len(context), None])[:, 0].exp().tolist()
        pieces.append(torch.log_softmax(logits[0, first - start - 1 :].double(), dim=-1))
        first, start = end, end - block // 2
    model.train(was_training)
    log_probs = torch.cat(pieces).cpu()
    targets = torch.tensor(list(target), dtype=torch.long)
    if cache is None:
        return float(-log_probs[torch.arange(len(targets)), targets].mean())
    kinds, settings = cache
    return float(mixed_nll(log_probs.numpy(), context, target, kinds, settings, context_probs).mean())
