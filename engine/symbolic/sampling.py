"""Batched, grammar-constrained sampling of REMI continuations with a KV cache.

K variants are sampled in one batch, each row with its own seeded generator. A small state machine per row
(:mod:`engine.symbolic.grammar`) masks the logits so that every continuation is well formed and fits the region
(:class:`engine.symbolic.constraints.Constraints`):

``Bar TimeSig(region) Position Program Pitch Velocity Duration (Program ... | Position(later) ... | Bar)``

- only the region's instruments (and drums when it has drums), within each part's pitch range;
- no tempo or meter tokens (the region's tempo and meter are kept);
- positions inside the bar and moving forward; at least one note in every bar;
- sampling stops when the (N+1)-th bar would begin, so exactly N bars are generated.

Pitch classes the region does not use get a logit penalty (``key_penalty`` nats), which keeps variants in the
region's key without forbidding chromatic notes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from engine.api import CancelToken
from engine.nn import model_fast, ragged
from engine.nn.kv_cache import KVCache
from engine.nn.model import GPT
from engine.nn.nucleus import top_p_filter
from engine.symbolic.constraints import Constraints, Vocabulary
from engine.symbolic.grammar import DONE, Masks, Row
from engine.symbolic.speculate import Drafter, SpeculationReport, SpeculationSettings, accept, token_classes

log = logging.getLogger(__name__)

# Tokens of context a row may reach before the sampler refills it with its last half (the model's own context,
# 768 tokens, at most). A decode step reads every cached key and value, so the window sets most of a step's memory
# traffic; held-out loss moved by less than 1 % between windows of 320 and 768 (docs/benchmarks.md).
DEFAULT_WINDOW: int | None = None  # None: the model's context
# Exact speculative sampling with drafts copied from the region (engine.symbolic.speculate); None: one token a step
DEFAULT_SPECULATION: SpeculationSettings | None = None


def context_window(model: GPT, window: int | None = None) -> int:
    """The sampler's context window for ``model``: ``window`` (default :data:`DEFAULT_WINDOW`), at most the
    model's context; a row that reaches it is refilled with its last ``window // 2`` tokens. Raises
    ``ValueError`` for a window of fewer than 2 tokens."""
    block = model.config.block_size
    wanted = DEFAULT_WINDOW if window is None else window
    if wanted is None:
        return block
    if wanted < 2:
        raise ValueError(f"a sampling window needs at least 2 tokens, got {wanted}")
    return min(block, int(wanted))


def _kept_in_place(writing: Sequence[bool]) -> list[int]:
    """The batch rows still ``writing``, in their new order: each stays where it is, and a finished row's place
    among the first ones is taken by one of the last rows (so the cache moves the fewest rows). A row's tokens do
    not depend on its place in the batch."""
    count = sum(writing)
    last = [j for j in range(count, len(writing)) if writing[j]]
    return [j if writing[j] else last.pop() for j in range(count)]


ProgressFn = Callable[[float], None]
# Called each step with the model's logits [rows, vocab] and every row's tokens so far; returns the logits to
# sample from (engine.symbolic.cache mixes the region cache in here). Masks, biases and temperature apply after.
LogitsHook = Callable[[torch.Tensor, Sequence[Sequence[int]]], torch.Tensor]


@torch.inference_mode()
def sample_continuations(
    model: GPT,
    prompt_ids: Sequence[int],
    vocab: Vocabulary,
    constraints: Constraints,
    seeds: Sequence[int],
    temperature: float = 1.0,
    top_p: float = 0.95,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    use_cache: bool = True,
    logits_hook: LogitsHook | None = None,
    drop_finished: bool = True,
    precision: torch.dtype | None = None,
    window: int | None = None,
    density_scale: Callable[[int], float] | None = None,
    speculate: SpeculationSettings | None | bool = True,
    draft_reference: Sequence[int] | None = None,
    speculation_report: SpeculationReport | None = None,
) -> list[list[int]]:
    """Sample ``len(seeds)`` continuations of ``prompt_ids`` in one batch; returns each row's token ids,
    starting with ``Bar TimeSig`` and ending before the bar after the last one.

    ``use_cache=False`` recomputes the whole context every step (the baseline the benchmark compares with).
    ``drop_finished`` (default) takes a row out of the batch (and its keys/values out of the cache) once it has
    written its last bar, so the steps that remain run on the rows still writing; ``False`` keeps every row in
    the batch to the end, feeding finished rows padding (what the sampler did before; the benchmark's baseline).
    A row's tokens depend only on its seed, never on the batch it runs in. ``precision``: the dtype of the fast
    decode path's weight products for this job (None: ``model.sampler_dtype``: float32 for a model made directly,
    and in an engine ``SEGUE_DECODE_PRECISION``, by default bfloat16 where the CPU has it natively; float32 gives
    the module path's logits, and so its tokens).
    ``window``: the context a row reaches before it is refilled with its last half (:func:`context_window`; the
    prompt is cropped to that half too).
    ``density_scale``: called after the hook with a row's index (seed order), the share of the guidance's density
    control that row's next token gets (the region cache's :meth:`engine.symbolic.mixer.CacheMixer.density_scale`).
    ``speculate``: exact speculative sampling (:mod:`engine.symbolic.speculate`): ``True`` (default) for
    :data:`DEFAULT_SPECULATION`, settings, or ``None``/``False`` for one token a step. The same distribution of
    continuations, fewer model passes where the rows repeat the region; other tokens for a seed. It needs the KV
    cache and the fast decode path (otherwise one token a step); finished rows always leave its batch.
    ``draft_reference``: the tokens drafts are copied from, ending where the rows begin (default: the prompt; the
    region cache's whole region is longer). ``speculation_report`` receives its counts.
    """
    previous = model.decode_dtype
    model.decode_dtype = model.sampler_dtype if precision is None else precision
    try:
        with model_fast.job_threads(model.decode_threads):  # the steps' thread count, set once for the job
            options = _Options(
                temperature, top_p, progress, cancel, use_cache, logits_hook, drop_finished,
                context_window(model, window), density_scale,
            )  # fmt: skip
            if not seeds:
                return []
            work = _Batch(model, prompt_ids, vocab, constraints, seeds)
            settings = DEFAULT_SPECULATION if speculate is True else (speculate or None)
            plan = _speculation_plan(model, options, prompt_ids) if settings is not None else None
            if settings is None or plan is None:
                return _sample(work, options)
            reference = list(prompt_ids) if draft_reference is None else list(draft_reference)
            drafter = Drafter(reference, len(seeds), settings, token_classes(vocab))
            job = _Speculation(settings, plan, drafter, speculation_report)
            return _sample_speculative(work, options, job)
    finally:
        model.decode_dtype = previous


@dataclass(frozen=True)
class _Options:
    """How one :func:`sample_continuations` call samples: its arguments past the seeds."""

    temperature: float
    top_p: float
    progress: ProgressFn | None
    cancel: CancelToken | None
    use_cache: bool
    logits_hook: LogitsHook | None
    drop_finished: bool
    block: int  # the context window (:func:`context_window`)
    density_scale: Callable[[int], float] | None


class _Rows:
    """The batch's rows, in seed order: each row's grammar state and generator, and which rows are still in the
    model's batch (``live``, in their order there)."""

    def __init__(self, vocab: Vocabulary, constraints: Constraints, seeds: Sequence[int], device: torch.device):
        self.masks = Masks(vocab, constraints, device)
        self.rows = [Row() for _ in seeds]
        self.generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        self.live = list(range(len(seeds)))
        self.pad = vocab.pad
        self.no_bias = torch.zeros(vocab.size, device=device)
        self.pad_only = torch.zeros(vocab.size, dtype=torch.bool, device=device)
        self.pad_only[vocab.pad] = True

    def hooked(self, logits: torch.Tensor, hook: LogitsHook) -> torch.Tensor:
        """``hook``'s logits for the live rows; the hook sees every row, in seed order (finished rows: zeros)."""
        live, batch = self.live, len(self.rows)
        if len(live) < batch:
            every = logits.new_zeros(batch, logits.shape[-1])
            every[live] = logits
            return hook(every, [r.tokens for r in self.rows])[live]
        return hook(logits, [r.tokens for r in self.rows])

    def probabilities(self, logits: torch.Tensor, options: _Options, rows: Sequence[int] | None = None) -> torch.Tensor:
        """The live rows' (or ``rows``', seed order) next-token probabilities [rows, vocab] on the CPU: every row's
        mask and bias at once, one masked softmax over the batch, then top-p (a finished row can only pad)."""
        allowed_rows: list[torch.Tensor] = []
        bias_rows: list[torch.Tensor] = []
        for i in self.live if rows is None else rows:
            row = self.rows[i]
            if row.state == DONE:
                allowed_rows.append(self.pad_only)
                bias_rows.append(self.no_bias)
                continue
            if options.density_scale is not None:
                row.density_scale = options.density_scale(i)
            row_mask, bias = self.masks.for_row(row)
            allowed_rows.append(row_mask)
            bias_rows.append(self.no_bias if bias is None else bias)
        scaled = logits.float() / options.temperature
        if any(b is not self.no_bias for b in bias_rows):
            scaled = scaled + torch.stack(bias_rows)
        scaled = scaled.masked_fill(~torch.stack(allowed_rows), float("-inf"))
        return top_p_filter(torch.softmax(scaled, dim=-1), options.top_p).cpu()

    def draw(self, probs: torch.Tensor) -> list[int]:
        """Each live row's next token from its own generator, its grammar state advanced (a finished row: pad)."""
        next_tokens = [self.pad] * len(self.live)
        for j, i in enumerate(self.live):
            row = self.rows[i]
            if row.state == DONE:
                continue
            token = int(torch.multinomial(probs[j], 1, generator=self.generators[i]).item())
            self.masks.advance(row, token)
            next_tokens[j] = token
        return next_tokens


@dataclass(frozen=True)
class _Batch:
    """What a sampling job continues: the model, the prompt, the vocabulary and rules, and one seed a row."""

    model: GPT
    prompt_ids: Sequence[int]
    vocab: Vocabulary
    constraints: Constraints
    seeds: Sequence[int]

    def start(self, block: int) -> tuple[_Rows, list[int], torch.device]:
        """The rows' sampling state, the prompt cropped to half the window, and the model's device."""
        device = next(self.model.parameters()).device
        return _Rows(self.vocab, self.constraints, self.seeds, device), list(self.prompt_ids)[-(block // 2) :], device


def _sample(job: _Batch, options: _Options) -> list[list[int]]:
    model, vocab, constraints = job.model, job.vocab, job.constraints
    batch, block = len(job.seeds), options.block
    state, prompt, device = job.start(block)
    rows = state.rows
    history = torch.tensor([prompt] * batch, dtype=torch.long, device=device)  # [K, T], every row
    cache: KVCache | None = None

    def forward_context() -> torch.Tensor:
        nonlocal cache
        context = history[state.live, -(block // 2) :] if history.shape[1] >= block else history[state.live]
        if options.use_cache:
            cache = model.new_cache(len(state.live), block)
            # the prompt is the same for every row at the start, but after a crop rows differ: prefill all
            logits, _ = model(context, cache=cache)
        else:
            logits, _ = model(context)
        last: torch.Tensor = logits[:, -1, :]
        return last

    logits = forward_context()  # [live rows, vocab]
    steps = 0
    expected = constraints.bars * batch
    while True:
        if options.cancel is not None:
            options.cancel.raise_if_cancelled()
        if options.logits_hook is not None:
            logits = state.hooked(logits, options.logits_hook)
        next_tokens = state.draw(state.probabilities(logits, options))
        steps += 1
        if options.progress is not None and steps % 8 == 0:
            done_bars = sum(max(0, r.bar - 1) if r.state != DONE else constraints.bars for r in rows)
            options.progress(min(1.0, done_bars / expected))
        if all(r.state == DONE for r in rows):
            break
        every_token = torch.full((batch,), vocab.pad, dtype=torch.long)
        every_token[state.live] = torch.tensor(next_tokens, dtype=torch.long)
        history = torch.cat([history, every_token.to(device)[:, None]], dim=1)
        if options.drop_finished and any(rows[i].state == DONE for i in state.live):
            kept = _kept_in_place([rows[i].state != DONE for i in state.live])
            state.live = [state.live[j] for j in kept]
            next_tokens = [next_tokens[j] for j in kept]
            if cache is not None:
                cache.keep_rows(kept)
        if not options.use_cache or cache is None or cache.length >= block:
            logits = forward_context()
        else:
            step = torch.tensor(next_tokens, dtype=torch.long, device=device)[:, None]
            step_logits, _ = model(step, cache=cache)
            logits = step_logits[:, -1, :]
    if options.progress is not None:
        options.progress(1.0)
    return [r.tokens for r in rows]


@dataclass
class _Speculation:
    """One speculative sampling job: its settings, the fast path's plan, the drafter and the counts."""

    settings: SpeculationSettings
    plan: model_fast.DecodePlan
    drafter: Drafter
    report: SpeculationReport | None


def _speculation_plan(model: GPT, options: _Options, prompt_ids: Sequence[int]) -> model_fast.DecodePlan | None:
    """The fast path's plan for a speculative job, or None where it cannot run one (no KV cache, the module path,
    several streams, no prompt): those sample one token a step."""
    if not options.use_cache or not prompt_ids or model.config.n_streams != 1 or not model_fast.usable(model):
        return None
    return model_fast.plan_for(model)


def _sample_speculative(work: _Batch, options: _Options, job: _Speculation) -> list[list[int]]:
    """:func:`_sample`'s continuations, several tokens a model pass where the drafts hold (module docstring of
    :mod:`engine.symbolic.speculate`). Each row keeps its own window as the one-token sampler does (a row whose
    context reaches the window is refilled with its last half), so every token sees the context it would there."""
    model, vocab, constraints = work.model, work.vocab, work.constraints
    batch, block, plan = len(work.seeds), options.block, job.plan
    state, prompt, device = work.start(block)
    rows = state.rows
    report = job.report if job.report is not None else SpeculationReport()
    cache = KVCache(model.config, batch, device, next(model.parameters()).dtype, block, spare=job.settings.draft)
    cache.plan = plan
    if len(prompt) > 1:  # all but the last token: every pass feeds a row's last token first
        model(torch.tensor([prompt[:-1]] * batch, dtype=torch.long, device=device), cache=cache)
    starts = [0] * batch  # where each row's window starts in prompt + its tokens
    cached = [len(prompt) - 1] * batch  # positions of its window in the cache (all but its last token)
    seen = [0] * batch  # each row's tokens the hook has been given (a row that stopped in a pass waits there)
    passes = 0
    expected = constraints.bars * batch
    while True:
        if options.cancel is not None:
            options.cancel.raise_if_cancelled()
        for j, i in enumerate(state.live):
            if cached[i] >= block:  # the one-token sampler refills here: the row's last half, its last token apart
                history = prompt + rows[i].tokens
                starts[i] = len(history) - block // 2
                context = torch.tensor(history[starts[i] : -1], dtype=torch.long, device=device)
                ragged.prefill_row(model, plan, cache, j, context)
                cached[i] = len(history) - 1 - starts[i]
                report.refills += 1
        # each row: its last token, then what the drafter expects, as far as its window lets the context grow
        drafts = job.drafter.drafts(state.live, [block - 1 - cached[i] for i in state.live])
        width = 1 + max(len(d) for d in drafts)
        idx = torch.full((len(state.live), width), vocab.pad, dtype=torch.long)
        for j, (i, draft) in enumerate(zip(state.live, drafts, strict=True)):
            idx[j, 0] = rows[i].tokens[-1] if rows[i].tokens else prompt[-1]
            idx[j, 1 : 1 + len(draft)] = torch.tensor(draft, dtype=torch.long)
        lengths = torch.tensor([cached[i] for i in state.live], dtype=torch.long)
        logits = ragged.ragged_step(model, plan, idx.to(device), cache, lengths)  # [live rows, width, vocab]
        passes += 1
        kept = _walk(state, options, logits, drafts, seen, job.drafter)
        for j, i in enumerate(state.live):
            cached[i] += kept[j]  # the row's last token and the drafted tokens it kept are in the cache now
            job.drafter.passed(i, len(drafts[j]), kept[j] - 1)
            report.tokens += job.drafter.follow(i, rows[i].tokens)
        report.drafted += sum(len(d) for d in drafts)
        report.accepted += sum(kept) - len(kept)
        report.passes = passes
        if options.progress is not None and passes % 8 == 0:
            done_bars = sum(max(0, r.bar - 1) if r.state != DONE else constraints.bars for r in rows)
            options.progress(min(1.0, done_bars / expected))
        if all(r.state == DONE for r in rows):
            break
        if any(rows[i].state == DONE for i in state.live):
            keep = _kept_in_place([rows[i].state != DONE for i in state.live])
            cache.length = max(cached[i] for i in state.live)  # what keep_rows copies of a row that moves
            state.live = [state.live[j] for j in keep]
            cache.keep_rows(keep)
    if options.progress is not None:
        options.progress(1.0)
    return [r.tokens for r in rows]


def _walk(
    state: _Rows,
    options: _Options,
    logits: torch.Tensor,
    drafts: Sequence[Sequence[int]],
    seen: list[int],
    drafter: Drafter,
) -> list[int]:
    """Sample a pass's positions in order, as the one-token sampler would, keeping drafted tokens by
    :func:`engine.symbolic.speculate.accept`; each live row writes its kept draft and one more token. Returns, per
    live row, the tokens of the pass's input it kept (its last token and its kept draft). ``seen``: each row's
    tokens the hook has been given; a row that has stopped in this pass is shown to the hook as it was (the hook
    then gives it what it gave before and learns nothing), as a finished row is."""
    rows, live = state.rows, state.live
    kept = [1] * len(live)
    going = list(range(len(live)))  # batch places of the rows still walking
    for t in range(logits.shape[1]):
        if not going:
            break
        chosen = [live[j] for j in going]
        step = logits[going, t]
        if options.logits_hook is not None:
            every = step.new_zeros(len(rows), step.shape[-1])
            every[chosen] = step
            shown = [r.tokens if i in chosen else r.tokens[: seen[i]] for i, r in enumerate(rows)]
            step = options.logits_hook(every, shown)[chosen]
            for i in chosen:
                seen[i] = len(rows[i].tokens)
        probs = state.probabilities(step, options, chosen)
        still = []
        for g, j in enumerate(going):
            i = live[j]
            row, generator = rows[i], state.generators[i]
            if t < len(drafts[j]):
                drafted = int(drafts[j][t])
                drafter.observe(i, drafted, t, float(probs[g, drafted]))
                token = accept(probs[g], drafted, generator)
                held = token == drafted
            else:
                token, held = int(torch.multinomial(probs[g], 1, generator=generator).item()), False
            state.masks.advance(row, token)
            if held and row.state != DONE:
                kept[j] += 1
                still.append(j)
        going = still
    return kept
