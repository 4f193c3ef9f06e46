"""Measures behind bench_midi_speed.py's levers that are not timings: what a shorter context window costs in
held-out loss, and how many decode steps copy-based speculative decoding ("prompt lookup") could save.

- :func:`window_loss`: the model's loss on held-out pieces with the context the sampler gives it for a window ``W``:
  a prompt of ``W // 2`` tokens, then the context grows to ``W`` tokens and is refilled with its last ``W // 2``
  (engine.symbolic.sampling.sample_continuations). Every window scores the same target tokens (from position
  :data:`FIRST_TARGET` of each piece on), so the figures compare.
- :func:`levers` runs them all for bench_midi_speed.py ``--levers`` and adds rows to its table.
- :func:`lookup_steps`: given the rows a job sampled, the decode steps prompt lookup decoding would have needed
  with exact-match verification (the draft is the ``k`` tokens that followed the latest earlier occurrence of the
  row's last ``n`` tokens, region included; a verify pass accepts the draft's tokens while each equals what the
  row's own generator draws there, so the tokens are exactly the sequential sampler's, and adds the first token
  that differs). The accepted lengths are read off the sampled rows, so the count is exact for those rows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _common import median_cpu_ms

_ROOT = Path(__file__).resolve().parents[1]
FIRST_TARGET = 384  # the first scored position of a piece: the sampler's prompt is at most 384 tokens


def piece_tokens(tokenizer: Any, folders: Sequence[Path]) -> list[list[int]]:
    """Every ``*.mid`` in ``folders`` (not their subfolders) as one token stream each."""
    from symusic import Score

    streams = []
    for folder in folders:
        for path in sorted(folder.glob("*.mid")):
            encoded = tokenizer.encode(Score(str(path)))
            streams.append([int(i) for i in (encoded[0] if isinstance(encoded, list) else encoded).ids])
    return streams


@torch.inference_mode()
def window_loss(model: Any, streams: Sequence[Sequence[int]], window: int) -> tuple[float, int]:
    """Mean loss (nats/token) and the number of tokens scored, each token seen with the context the sampler's
    window gives it."""
    keep = window // 2
    total, count = 0.0, 0
    for ids in streams:
        target = FIRST_TARGET
        start = max(0, target - keep)
        while target < len(ids):
            end = min(len(ids), start + window)
            segment = torch.tensor([list(ids[start:end])])
            logits, _ = model(segment[:, :-1])
            log_probs = torch.log_softmax(logits[0].float(), dim=-1)
            first = target - start - 1  # the logits row that predicts ids[target]
            wanted = segment[0, first + 1 :]
            total += float(-log_probs[first:].gather(1, wanted[:, None]).sum())
            count += int(wanted.numel())
            target = end
            start = target - keep
    return total / max(1, count), count


def _draft(context: Sequence[int], longest: int, shortest: int, k: int) -> list[int]:
    """The ``k`` tokens after the latest earlier occurrence of the context's last n tokens, n from ``longest``
    down to ``shortest``; none if no suffix recurs."""
    size = len(context)
    for n in range(longest, shortest - 1, -1):
        if size < n + 1:
            continue
        suffix = list(context[size - n :])
        for start in range(size - n - 1, -1, -1):
            if list(context[start : start + n]) == suffix:
                return list(context[start + n : start + n + k])
    return []


def lookup_steps(
    prompt: Sequence[int], rows: Sequence[Sequence[int]], longest: int, shortest: int, k: int
) -> dict[str, Any]:
    """Decode steps with prompt lookup (exact-match verification) against one step per token, for ``rows``."""
    per_row, drafted, accepted = [], 0, 0
    for row in rows:
        position, steps = 0, 0
        while position < len(row):
            draft = _draft(list(prompt) + list(row[:position]), longest, shortest, k)
            agree = 0
            while agree < len(draft) and position + agree < len(row) and draft[agree] == row[position + agree]:
                agree += 1
            drafted += len(draft)
            accepted += agree
            position += agree + 1
            steps += 1
        per_row.append(steps)
    tokens = sum(len(r) for r in rows)
    return {
        "batch_steps": max(per_row),
        "sequential_steps": max(len(r) for r in rows),
        "tokens_per_row_step": tokens / max(1, sum(per_row)),
        "drafted": drafted,
        "accepted": accepted,
        "n": [longest, shortest],
        "k": k,
    }


def verify_pass(model: Any, plan: Any, idx: torch.Tensor, cache: Any, length: int) -> torch.Tensor:
    """The forward pass speculative decoding would need: ``idx`` [B, Q] at positions ``length .. length+Q-1`` of
    every row, against the fast path's cache (float32, no shared prompt), causal among the Q; logits [B, Q, V].
    Written as engine.nn.model_fast's decode step is (addmm residuals, attention as two matmuls on the cache)."""
    from torch.nn import functional as F

    B, Q = idx.shape
    C, H = plan.n_embd, plan.n_head
    hd = C // H
    L = length + Q
    x = (model.wte(idx) + model.wpe.weight[length:L]).view(B * Q, C)
    causal = torch.ones(Q, L, dtype=torch.bool).tril(diagonal=length)
    bias = torch.zeros(Q, L).masked_fill(~causal, float("-inf"))
    layer_eps, final_eps = plan.eps
    for layer, (ln1w, ln1b, wqkv, bqkv, wp, bp, ln2w, ln2b, wfc, bfc, wp2, bp2) in enumerate(plan.layers):
        h = F.layer_norm(x, (C,), ln1w, ln1b, layer_eps[layer][0])
        qkv = F.linear(h, wqkv, bqkv).view(B, Q, 3, H, hd)
        keys, values = cache.keys[layer], cache.values[layer]
        keys[:, :, length:L] = qkv[:, :, 1].transpose(1, 2)
        values[:, :, length:L] = qkv[:, :, 2].transpose(1, 2)
        q = qkv[:, :, 0].transpose(1, 2) * hd**-0.5  # [B, H, Q, hd]
        scores = torch.matmul(q, keys[:, :, :L].transpose(-1, -2)) + bias
        y = torch.matmul(torch.softmax(scores, dim=-1), values[:, :, :L]).transpose(1, 2).reshape(B * Q, C)
        x = torch.addmm(x, y, wp.t()) if bp is None else torch.addmm(x, y, wp.t()) + bp
        h = F.layer_norm(x, (C,), ln2w, ln2b, layer_eps[layer][1])
        x = torch.addmm(x, F.gelu(F.linear(h, wfc, bfc)), wp2.t())
        x = x if bp2 is None else x + bp2
    x = F.layer_norm(x, (C,), plan.ln_f[0], plan.ln_f[1], final_eps)
    out: torch.Tensor = F.linear(x, model.lm_head.weight).view(B, Q, -1)
    return out


@torch.inference_mode()
def verify_cost(model: Any, rows: int, lengths: Sequence[int], queries: Sequence[int], repeats: int = 30) -> dict:
    """CPU milliseconds of one verify pass of ``Q`` positions per row (median of ``repeats``) at each context
    length, against today's one-token decode step; and the largest logit difference between a 3-position verify
    pass and three decode steps (the same arithmetic, another order of summation)."""
    from engine.nn import model_fast

    out: dict[str, Any] = {}
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    for length in lengths:
        cache = model.new_cache(rows)
        model(torch.randint(0, vocab, (rows, length), generator=generator), cache=cache)
        plan = cache.plan
        if plan is None:
            raise RuntimeError("the fast decode path is off for this model: nothing to compare with")
        step = torch.randint(0, vocab, (rows, 3), generator=generator)
        keys, values = cache.keys.clone(), cache.values.clone()
        one = torch.stack([model_fast.decode_step(model, plan, step[:, j : j + 1], cache)[:, 0] for j in range(3)], 1)
        cache.keys.copy_(keys)
        cache.values.copy_(values)
        cache.length = length
        differs = float((verify_pass(model, plan, step, cache, length) - one).abs().max())

        entry = {
            "decode_step_ms": median_cpu_ms(functools.partial(_decode, model, plan, cache, rows, length), repeats),
            "max_logit_difference": differs,
        }
        for q in queries:
            verify = functools.partial(_verify, model, plan, cache, rows, q, length)
            entry[f"verify_{q}_ms"] = median_cpu_ms(verify, repeats)
        out[str(length)] = entry
    return out


def _decode(model: Any, plan: Any, cache: Any, rows: int, length: int) -> None:
    from engine.nn import model_fast

    cache.length = length
    model_fast.decode_step(model, plan, torch.randint(0, model.config.vocab_size, (rows, 1)), cache)


def _verify(model: Any, plan: Any, cache: Any, rows: int, queries: int, length: int) -> None:
    verify_pass(model, plan, torch.randint(0, model.config.vocab_size, (rows, queries)), cache, length)


def job_rows(sm: Any, region: Any, bars: int, variants: int, seed: int) -> tuple[list[int], list[list[int]]]:
    """The prompt and every sampled row (variants x candidates) of a job's own sampling: guidance, the region
    cache and the candidates as ``continue_region`` runs them (its ``sample_continuations`` call is watched)."""
    import engine.symbolic.continuation as cont
    from engine.api import GenerationParams
    from engine.pipelines.context import variant_seeds
    from engine.symbolic.naming import part_names_for

    seen: dict[str, Any] = {}
    sample = cont.sample_continuations

    def watched(model: Any, prompt_ids: Sequence[int], *args: Any, **kwargs: Any) -> list[list[int]]:
        rows = sample(model, prompt_ids, *args, **kwargs)
        seen["prompt"], seen["rows"] = list(prompt_ids), rows
        return rows

    params = GenerationParams(bars=bars, variants=variants, seed=seed)
    cont.sample_continuations = watched  # type: ignore[assignment]
    try:
        cont.continue_region(sm, region, params, variant_seeds(params), part_names_for(region.parts))
    finally:
        cont.sample_continuations = sample  # type: ignore[assignment]
    return seen["prompt"], seen["rows"]


def _ratio(base: float, new: float) -> str:
    return f"{base / new:.2f}x" if new > 0 else "n/a"


def levers(sm: Any, bars: int, variants: int, windows: Sequence[int], table: list[list[str]]) -> dict[str, Any]:
    """What a shorter window costs in loss, what prompt lookup decoding could save, what a verify pass costs."""
    out: dict[str, Any] = {"window_loss": {}, "lookup": [], "verify": {}}
    folders = [_ROOT / "bench/data/midi_quality", _ROOT / "bench/data/midi_quality/tuning"]
    for label, dirs in (("bench + tuning", folders), ("lmms", [_ROOT / "bench/data/midi_quality/lmms"])):
        streams = piece_tokens(sm.tokenizer, dirs)
        losses = {w: window_loss(sm.model, streams, w) for w in windows}
        out["window_loss"][label] = {w: {"loss": loss, "tokens": n} for w, (loss, n) in losses.items()}
        whole = losses[max(losses)][0]
        for w, (loss, n) in losses.items():
            table.append(
                [f"held-out pieces ({label})", f"loss, window {w}", f"{loss:.5f}", f"{whole:.5f}", "", "",
                 f"{(loss - whole) / whole * 100:+.2f} %; {n} tokens of {len(streams)} pieces"]
            )  # fmt: skip
    from engine.api import Prompt
    from engine.symbolic.region import read_region

    region = read_region(Prompt(midi_path=_ROOT / "examples/regions/pop_100bpm_4-4.mid"))
    prompt, rows = job_rows(sm, region, bars, variants, 7)
    for longest, shortest, k in ((4, 2, 2), (4, 2, 4), (8, 3, 4), (16, 4, 8)):
        found = lookup_steps(prompt, rows, longest, shortest, k)
        out["lookup"].append(found)
        table.append(
            ["pop_100bpm_4-4 (demo job's rows)", f"prompt lookup, n {longest}..{shortest}, k {k}",
             f"{found['batch_steps']} steps", f"{found['sequential_steps']} steps",
             _ratio(found["sequential_steps"], found["batch_steps"]), "",
             f"{found['tokens_per_row_step']:.2f} tokens a row-step; {found['accepted']} of {found['drafted']} "
             "drafted tokens accepted"]
        )  # fmt: skip
    out["verify"] = verify_cost(sm.model, len(rows), [300, 576], [2, 3, 5])
    for length, entry in out["verify"].items():
        one = entry["decode_step_ms"]
        for q in (2, 3, 5):
            ms = entry[f"verify_{q}_ms"]
            table.append(
                [f"{len(rows)} rows, context {length}", f"verify pass of {q} positions vs one decode step",
                 f"{ms:.2f} ms cpu", f"{one:.2f} ms cpu", _ratio(one, ms), "",
                 f"logits within {entry['max_logit_difference']:.1e} of three decode steps"]
            )  # fmt: skip
    return out
