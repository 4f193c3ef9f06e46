"""The speculative-sampling rows of bench_midi_speed.py (``--speculate``): ``LocalEngine.generate`` in process
(``make demo`` settings: guidance, the region cache and its loop memory as the logits hook, candidates, rendering)
with exact speculative sampling (:mod:`engine.symbolic.speculate`) against one token a step, alternating round by
round, for several seeds (speculation draws other tokens for a seed, so rows of different lengths: one seed alone
says little). Per mode: the job's sampling calls (their wall and CPU seconds, sequential model passes or steps,
drafted and kept tokens, and the mean probability a drafted token of each class had where it was verified: its
chance of being kept), and the whole job. :func:`pass_cost`: what a pass of several positions a row costs against
a one-token decode step.

Not a benchmark of its own: ``bench_midi_speed.py`` imports it (it puts ``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _common import median_cpu_ms

from engine.api import GenerationParams, GenerationRequest, Prompt
from engine.symbolic.speculate import CLASSES, Drafter, SpeculationReport, SpeculationSettings

MODES = ("one token a step", "speculative")


class _Watch:
    """Wraps the job's ``sample_continuations``: the speculation setting of the mode, and what each call did."""

    def __init__(self, sample: Any) -> None:
        self.sample = sample
        self.settings: SpeculationSettings | None = None
        self.calls: list[dict[str, float]] = []
        self.by_class: dict[str, list[float]] = {}  # class -> [sum of the drafted tokens' probabilities, count]
        observe = Drafter.observe
        watch = self

        def observed(drafter: Drafter, row: int, token: int, place: int, chance: float) -> None:
            entry = watch.by_class.setdefault(CLASSES[drafter.classes[token]], [0.0, 0.0])
            entry[0] += chance
            entry[1] += 1
            observe(drafter, row, token, place, chance)

        self.observe, self.observed = observe, observed

    def __call__(self, *args: Any, **kwargs: Any) -> list[list[int]]:
        report = SpeculationReport()
        w0, c0 = time.perf_counter(), time.process_time()
        rows: list[list[int]] = self.sample(*args, speculate=self.settings, speculation_report=report, **kwargs)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        # one token a step: the longest row's tokens and the bar line that ends it, one step each
        steps = report.passes if self.settings is not None else max((len(r) for r in rows), default=0) + 1
        tokens = sum(len(r) for r in rows)
        self.calls.append(
            {"wall": wall, "cpu": cpu, "steps": steps, "tokens": tokens, "drafted": report.drafted,
             "accepted": report.accepted}
        )  # fmt: skip
        return rows


def bench_job_speculation(
    region_path: Path, bars: int, variants: int, repeats: int, seeds: Sequence[int], settings: SpeculationSettings
) -> dict[str, Any]:
    """Per mode (:data:`MODES`), summed over ``seeds`` (best wall of ``repeats`` per seed): the whole job's wall and
    CPU seconds and phase timings, and its sampling calls' seconds, steps (model passes), tokens, drafted and kept
    draft tokens."""
    import engine.symbolic.continuation as cont
    from engine.local import LocalEngine

    engine = LocalEngine()
    watch = _Watch(cont.sample_continuations)
    best: dict[tuple[str, int], dict[str, Any]] = {}
    cont.sample_continuations = watch  # type: ignore[assignment]
    Drafter.observe = watch.observed  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            warm = GenerationRequest(prompt=Prompt(midi_path=region_path), params=GenerationParams(bars=bars))
            engine.generate(warm, Path(tmp) / "warm")  # loads the model and the soundfont
            n = 0
            for r in range(repeats):
                for mode in MODES if r % 2 == 0 else MODES[::-1]:
                    watch.settings = settings if mode == "speculative" else None
                    for seed in seeds:
                        params = GenerationParams(bars=bars, variants=variants, seed=seed)
                        request = GenerationRequest(prompt=Prompt(midi_path=region_path), params=params)
                        n += 1
                        watch.calls = []
                        w0, c0 = time.perf_counter(), time.process_time()
                        result = engine.generate(request, Path(tmp) / f"job{n}")
                        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                        run = {"wall": wall, "cpu": cpu, "timings": dict(result.timings)}
                        for key in ("wall", "cpu", "steps", "tokens", "drafted", "accepted"):
                            run[f"sampling_{key}"] = sum(call[key] for call in watch.calls)
                        if (mode, seed) not in best or wall < best[(mode, seed)]["wall"]:
                            best[(mode, seed)] = run
    finally:
        cont.sample_continuations = watch.sample
        Drafter.observe = watch.observe  # type: ignore[method-assign]
    out: dict[str, Any] = {"seeds": list(seeds), "settings": settings.describe()}
    out["kept_chance_by_class"] = {k: {"mean": t / n, "drafted": n} for k, (t, n) in watch.by_class.items()}
    for mode in MODES:
        runs = [best[(mode, seed)] for seed in seeds]
        summed = {key: sum(run[key] for run in runs) for key in runs[0] if key != "timings"}
        summed["timings"] = {k: sum(run["timings"].get(k, 0.0) for run in runs) for k in runs[0]["timings"]}
        out[mode] = summed
    return out


def speculation_rows(name: str, found: dict[str, Any], ratio: Any) -> list[list[str]]:
    """bench_midi_speed.py's table rows for :func:`bench_job_speculation`'s result."""
    base, new = found[MODES[0]], found[MODES[1]]
    seeds = len(found["seeds"])
    kept = new["sampling_accepted"] / new["sampling_drafted"] if new["sampling_drafted"] else 0.0
    sampling_note = (
        f"{seeds} seeds: {new['sampling_steps']:.0f} model passes against {base['sampling_steps']:.0f} steps "
        f"({ratio(base['sampling_steps'], new['sampling_steps'])} fewer); {new['sampling_accepted']:.0f} of "
        f"{new['sampling_drafted']:.0f} drafted tokens kept ({100 * kept:.0f} %); {new['sampling_tokens']:.0f} "
        f"against {base['sampling_tokens']:.0f} tokens (other tokens for a seed)"
    )
    phases = ", ".join(
        f"{k.removesuffix('_seconds')} {new['timings'].get(k, 0):.2f} vs {base['timings'].get(k, 0):.2f}"
        for k in ("generate_seconds", "cache_seconds", "render_seconds")
    )
    return [
        [name, "the job's sampling: speculative vs one token a step",
         f"{new['sampling_wall']:.2f} / {new['sampling_cpu']:.2f}",
         f"{base['sampling_wall']:.2f} / {base['sampling_cpu']:.2f}",
         ratio(base["sampling_wall"], new["sampling_wall"]), ratio(base["sampling_cpu"], new["sampling_cpu"]),
         sampling_note],
        [name, "whole job in process: speculative vs one token a step", f"{new['wall']:.2f} / {new['cpu']:.2f}",
         f"{base['wall']:.2f} / {base['cpu']:.2f}", ratio(base["wall"], new["wall"]), ratio(base["cpu"], new["cpu"]),
         f"{seeds} seeds summed; {phases}"],
    ]  # fmt: skip


def class_row(name: str, found: dict[str, Any]) -> list[str]:
    """A table row: each class's mean chance of a drafted token being kept (its probability where verified)."""
    classes = sorted(found["kept_chance_by_class"].items(), key=lambda kv: -kv[1]["drafted"])
    note = ", ".join(f"{k} {v['mean']:.2f} ({v['drafted']:.0f})" for k, v in classes)
    return [name, "drafted tokens: mean chance of being kept, by class (drafted)", "", "", "", "", note]


@torch.inference_mode()
def pass_cost(
    model: Any, rows: int, lengths: Sequence[int], widths: Sequence[int], dtype: torch.dtype, repeats: int = 21
) -> dict[str, dict[str, float]]:
    """Median CPU milliseconds of one decode step and of one ragged pass of each width (positions a row), ``rows``
    rows at context ``length``, the prompt shared by all rows (the first part of a job) or each row's own (after a
    refill), with the weight products in ``dtype`` (a job's: ``SEGUE_DECODE_PRECISION=auto``)."""
    from engine.nn import model_fast
    from engine.nn.kv_cache import KVCache
    from engine.nn.ragged import ragged_step

    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    previous = model.decode_dtype
    model.decode_dtype = dtype
    out: dict[str, dict[str, float]] = {}
    try:
        for shared in (True, False):
            for length in lengths:
                cache = KVCache(model.config, rows, torch.device("cpu"), torch.float32, spare=max(widths))
                first = torch.randint(0, vocab, (1 if shared else rows, length), generator=generator)
                model(first.expand(rows, length).contiguous(), cache=cache)
                plan = cache.plan
                if plan is None:
                    raise RuntimeError("the fast decode path is off for this model: nothing to compare with")

                def step(plan: Any = plan, cache: KVCache = cache, length: int = length) -> None:
                    cache.length = length
                    model_fast.decode_step(model, plan, torch.randint(0, vocab, (rows, 1)), cache)

                entry = {"decode_step": median_cpu_ms(step, repeats)}
                at = torch.full((rows,), length)
                for width in widths:

                    def ragged(plan: Any = plan, cache: KVCache = cache, width: int = width, at: Any = at) -> None:
                        ragged_step(model, plan, torch.randint(0, vocab, (rows, width)), cache, at)

                    entry[f"pass_{width}"] = median_cpu_ms(ragged, repeats)
                out[f"{'shared' if shared else 'own'} {length}"] = entry
    finally:
        model.decode_dtype = previous
    return out


def cost_rows(rows: int, found: dict[str, dict[str, float]], ratio: Any) -> list[list[str]]:
    """bench_midi_speed.py's table rows for :func:`pass_cost`."""
    table = []
    for context, entry in found.items():
        step = entry["decode_step"]
        passes = [(int(k.removeprefix("pass_")), v) for k, v in entry.items() if k.startswith("pass_")]
        note = ", ".join(f"{w} positions {v:.2f} ms ({v / step:.2f} steps)" for w, v in passes)
        table.append(
            [f"{rows} rows, context {context}", "a pass of several positions a row vs one decode step (CPU)",
             "", f"{step:.2f} ms", "", "", note]
        )  # fmt: skip
    return table
