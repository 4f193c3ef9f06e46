"""MIDI continuation speed, side by side: today's sampler and renderer against the ones before, where time goes.

    python bench/bench_midi_speed.py [--regions [pop_100bpm_4-4.mid chorale_style_72bpm_4-4.mid ...]] [--bars 8]
                                     [--variants 4] [--rows 4 8] [--repeats 3] [--threads 1]
                                     [--modes previous today w512 w384 ...] [--no-job] [--cli-repeats 2]
                                     [--cli-settings default float32] [--no-loss] [--load-after S] [--levers]

For each region (examples/regions/, our own files):

- **sampling**: :func:`engine.symbolic.sampling.sample_continuations` with the region's prompt and constraints and
  the same seeds in every mode, at each batch size in ``--rows`` (4 = the variants x 1 candidate; 8 = x 2, what a
  job samples today). Modes (:data:`MODES`), ratios against ``today`` (the sampler as 2026-12-07 17:05 found it:
  float32, the model's whole 768-token context): ``module`` and ``previous`` (the samplers before), ``bf16``
  (bfloat16 weight products, what ``SEGUE_DECODE_PRECISION=auto`` picks on a CPU with native bfloat16), ``w640`` ..
  ``w320`` (the context refilled at that many tokens). Same tokens or not, printed. Alternating round by round,
  best of ``--repeats``. With several ``--rows``, the rows' cost side by side.
- **threads under a changing load** (``--load-after S``, with ``--threads 2``): a job that starts on an idle machine,
  ``--load-processes`` busy loops starting S seconds in; the steps' threads chosen once against re-chosen while the
  job runs (engine.nn.threads).
- **rendering**: every variant's ``continuation.mid`` and ``full.mid`` rendered to stems and mix and written the
  way a job does (engine.pipelines.midi), against the renderer before frame-ordered audio.
- **whole job, in process**: ``LocalEngine.generate`` (``make demo`` settings: 8 bars, 4 variants, seed 7) with the
  module path and with the fast path, alternating, best of ``--job-repeats``.
- **whole job, in process, per number of candidates** (``--job-candidates 2 1``: the first is the baseline):
  ``LocalEngine.generate`` (``make demo`` settings) with each number of candidates a variant, alternating, best of
  ``--job-repeats``.
- **whole job, as a user runs it**: ``segue continue`` in a new process (``make demo`` settings) per
  ``--cli-settings`` (:data:`CLI_SETTINGS`: ``default``, ``float32``, ``bf16``, ``module``), best of
  ``--cli-repeats``; the job's own phase timings (job.json) and what lies outside them (process start, imports,
  job.json, exit).
- **speculative sampling** (``--speculate [SEED ...]``, bench/midi_speculation.py): ``LocalEngine.generate``
  (``make demo`` settings) with exact speculative sampling (engine.symbolic.speculate, ``--draft`` tokens) against
  one token a step, alternating, for several seeds (other tokens for a seed): the job's sampling (seconds, model
  passes against steps, drafted tokens kept) and the whole job.
- **held-out loss** of the model with float32 and with bfloat16 weight products, on the quality bench's held-out
  pieces (bench/data/midi_quality): the check that the lower precision keeps the model's quality.
- **levers** (``--levers``, bench/midi_levers.py): held-out loss per context window; the decode steps prompt lookup
  decoding would need on the demo job's own rows; a verify pass of 2-5 positions against one decode step.

Wall seconds and CPU seconds (this process's, all threads) are both printed: on a shared machine the wall clock
counts other people's work, CPU seconds much less. Writes bench/results/midi_speed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import RESULTS, machine, markdown_table, write_json  # noqa: E402
from midi_speculation import bench_job_speculation, class_row, cost_rows, pass_cost, speculation_rows  # noqa: E402
from midi_speed_jobs import (  # noqa: E402
    CLI_SETTINGS,
    Timing,
    bench_cli,
    bench_job,
    bench_job_candidates,
    bench_render,
    best,
    timed,
)

from engine.api import Prompt  # noqa: E402
from engine.checkpoints import find_checkpoint  # noqa: E402
from engine.nn import model_fast  # noqa: E402
from engine.symbolic.continuation import (  # noqa: E402
    SymbolicModel,
    encode_prompt,
    region_constraints,
)
from engine.symbolic.region import Region, read_region  # noqa: E402
from engine.symbolic.sampling import sample_continuations  # noqa: E402
from engine.symbolic.speculate import SpeculationSettings  # noqa: E402


@dataclass(frozen=True)
class Mode:
    """One way of running the sampler, side by side with the others."""

    fast: bool = True  # the fast decode path (False: the GPT's module path)
    drop: bool = True  # finished rows leave the batch
    dtype: torch.dtype = torch.float32  # the weight products' dtype
    once: bool = True  # threads set once per job (False: switched around every step, as before 2026-12-07 15:30)
    window: int = 768  # context at which a row is refilled with its last half (768: the model's whole context)
    note: str = ""


# sampler modes; ratios are against TODAY, the sampler as this session found it (2026-12-07 17:05)
TODAY = "today"
MODES: dict[str, Mode] = {
    "module": Mode(fast=False, drop=False, once=False, note="the GPT's module path, every row to the end"),
    "previous": Mode(drop=False, once=False, note="the sampler until 2026-12-07 15:30"),
    TODAY: Mode(note="finished rows leave the batch, threads set once, the model's whole context"),
    "bf16": Mode(dtype=torch.bfloat16, note="SEGUE_DECODE_PRECISION=bfloat16"),
    "w640": Mode(window=640, note="refilled at 640 tokens"),
    "w512": Mode(window=512, note="refilled at 512 tokens"),
    "w384": Mode(window=384, note="refilled at 384 tokens"),
    "w320": Mode(window=320, note="refilled at 320 tokens"),
}
DEFAULT_MODES = ["previous", TODAY, "w512", "w384"]


@contextlib.contextmanager
def _threads_per_step(setting: int | None = None) -> Iterator[int]:
    """Stands in for :func:`engine.nn.model_fast.job_threads`: nothing set for the job, so each decode step
    switches torch's threads itself (the sampler before threads were set once per job)."""
    yield 0


def bench_sampling(
    sm: SymbolicModel, region: Region, bars: int, rows: int, repeats: int, modes: list[str]
) -> tuple[dict[str, Timing], dict[str, int], dict[str, int], dict[str, bool], list[list[int]]]:
    """Best-of-``repeats`` seconds of each sampler mode, alternating their order round by round; each mode's
    tokens and steps, and whether it drew exactly the tokens of :data:`TODAY`."""
    block = sm.model.config.block_size
    prompt = encode_prompt(region, sm.tokenizer, sm.vocab, block // 2)
    constraints = region_constraints(region, sm.vocab, bars)
    seeds = [1000 + i for i in range(rows)]
    results: dict[str, Timing] = {}
    tokens: dict[str, list[list[int]]] = {}
    chosen = [m for m in MODES if m in modes]
    for r in range(repeats):
        for label in chosen if r % 2 == 0 else chosen[::-1]:
            mode = MODES[label]
            sm.model.fast_decode = mode.fast

            def run(mode: Mode = mode) -> list[list[int]]:
                return sample_continuations(
                    sm.model, prompt, sm.vocab, constraints, seeds, drop_finished=mode.drop, precision=mode.dtype,
                    window=mode.window,
                )  # fmt: skip

            job_threads = model_fast.job_threads
            model_fast.job_threads = job_threads if mode.once else _threads_per_step  # type: ignore[assignment]
            try:
                out, t = timed(run)
            finally:
                model_fast.job_threads = job_threads  # type: ignore[method-assign]
            tokens[label] = out
            results[label] = best(results.get(label), t)
    sm.model.fast_decode = True
    reference = tokens.get(TODAY) or next(iter(tokens.values()))
    same = {label: tokens[label] == reference for label in chosen}
    generated = {label: sum(len(t) for t in out) for label, out in tokens.items()}
    steps = {label: max(len(t) for t in out) for label, out in tokens.items()}
    return results, generated, steps, same, reference


def heldout_loss(sm: SymbolicModel, dtypes: list[torch.dtype]) -> dict[str, Any]:
    """Mean loss (nats/token) of the model on the held-out quality pieces (bench/data/midi_quality/*.mid, music21
    corpus pieces held out from training; their manifest gives sources and licences), every token scored once
    with the tokens before it in its window of the model's context, with the weight products in each dtype
    (bfloat16 as the fast path's lower precision does it: activations and weights rounded, float32 sums)."""
    from symusic import Score
    from torch.nn import functional as F

    pieces = sorted((ROOT / "bench/data/midi_quality").glob("*.mid"))
    block = sm.model.config.block_size
    windows: list[list[int]] = []
    for path in pieces:
        encoded = sm.tokenizer.encode(Score(str(path)))
        ids = [int(i) for i in (encoded[0] if isinstance(encoded, list) else encoded).ids]
        windows.extend(ids[s : s + block + 1] for s in range(0, len(ids) - 1, block))
    linear = F.linear
    out: dict[str, Any] = {"pieces": len(pieces), "tokens": sum(len(w) - 1 for w in windows)}
    for dtype in dtypes:

        def product(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
            y = linear(x.to(dtype), w.to(dtype)).to(x.dtype)  # noqa: B023
            return y if b is None else y + b

        total = 0.0
        F.linear = product if dtype != torch.float32 else linear  # type: ignore[assignment]
        try:
            with torch.inference_mode():
                for w in windows:
                    t = torch.tensor([w])
                    _, loss = sm.model(t[:, :-1], t[:, 1:])
                    assert loss is not None
                    total += float(loss) * (len(w) - 1)
        finally:
            F.linear = linear  # type: ignore[assignment]
        out[str(dtype).removeprefix("torch.")] = total / out["tokens"]
    return out


@contextlib.contextmanager
def _competing_load(after_s: float, processes: int) -> Iterator[None]:
    """``processes`` busy loops (other programs wanting the CPU: a DAW playing, a test run) from ``after_s``
    seconds on, stopped at the end."""
    import subprocess
    import threading

    started: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()

    def start() -> None:
        if not stop.wait(after_s):
            for _ in range(processes):
                started.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))

    timer = threading.Thread(target=start, daemon=True)
    timer.start()
    try:
        yield
    finally:
        stop.set()
        timer.join()
        for process in started:
            process.kill()
            process.wait()


def bench_threads(
    sm: SymbolicModel, region: Region, bars: int, rows: int, repeats: int, after_s: float, processes: int
) -> dict[str, Timing]:
    """Sampling on the process's threads (2 here) when a competing load starts ``after_s`` seconds into the job,
    which began on an idle machine: the steps' threads chosen once at the start (the sampler until this session)
    against re-chosen while the job runs (engine.nn.threads.StepThreads). Same tokens either way."""
    block = sm.model.config.block_size
    prompt = encode_prompt(region, sm.tokenizer, sm.vocab, block // 2)
    constraints = region_constraints(region, sm.vocab, bars)
    seeds = [1000 + i for i in range(rows)]
    chooser = model_fast.StepThreads  # type: ignore[attr-defined]
    getloadavg = model_fast.os.getloadavg
    results: dict[str, Timing] = {}
    for r in range(repeats):
        for label in ("once", "re-chosen") if r % 2 == 0 else ("re-chosen", "once"):
            model_fast.os.getloadavg = lambda: (0.0, 0.0, 0.0)  # type: ignore[attr-defined]  # idle at the start
            if label == "once":
                model_fast.StepThreads = lambda *a, **k: None  # type: ignore[attr-defined]  # no chooser
            try:
                with _competing_load(after_s, processes):
                    _, t = timed(lambda: sample_continuations(sm.model, prompt, sm.vocab, constraints, seeds))  # noqa: B023
            finally:
                model_fast.StepThreads = chooser  # type: ignore[attr-defined,misc]
                model_fast.os.getloadavg = getloadavg  # type: ignore[attr-defined]
            results[label] = best(results.get(label), t)
    return results


def ratio(base: float, new: float) -> str:
    return f"{base / new:.2f}x" if new > 0 else "n/a"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--regions", nargs="*", default=["pop_100bpm_4-4.mid", "chorale_style_72bpm_4-4.mid"])
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--rows", type=int, nargs="+", default=[8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--job-repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="the process's torch threads (a CLI job: 2 here)")
    parser.add_argument("--no-job", action="store_true", help="skip the whole-job rows")
    parser.add_argument(
        "--job-candidates", type=int, nargs="+", default=None, metavar="N",
        help="also: the whole job in process with N candidates a variant, each against the first N",
    )  # fmt: skip
    parser.add_argument("--modes", nargs="+", default=DEFAULT_MODES, choices=list(MODES), help="sampler modes")
    parser.add_argument("--cli-repeats", type=int, default=2, help="`segue continue` runs per setting (0: none)")
    parser.add_argument(
        "--cli-settings", nargs="+", default=["default", "float32"], choices=list(CLI_SETTINGS), help="CLI settings"
    )
    parser.add_argument("--no-loss", action="store_true", help="skip the held-out loss of each precision")
    parser.add_argument(
        "--levers", action="store_true", help="also: loss per window, prompt-lookup steps, verify-pass cost (demo)"
    )
    parser.add_argument("--windows", type=int, nargs="+", default=[768, 640, 512, 384, 320, 256])
    parser.add_argument(
        "--load-after", type=float, default=None, metavar="S",
        help="also: a job on 2 threads that starts idle, with --load-processes busy loops from S seconds on",
    )  # fmt: skip
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument(
        "--speculate", type=int, nargs="*", default=None, metavar="SEED",
        help="also: the whole job with exact speculative sampling against one token a step, these seeds (7 8 9)",
    )  # fmt: skip
    parser.add_argument("--draft", type=int, default=SpeculationSettings().draft, help="--speculate's draft tokens")
    parser.add_argument("--out", default=str(RESULTS / "midi_speed.json"))
    return parser


Table = list[list[str]]


def _sampling_rows(
    name: str, sm: SymbolicModel, region: Region, args: argparse.Namespace, entry: dict[str, Any], table: Table
) -> list[list[int]]:
    """The sampler modes side by side at each ``--rows`` (and, with several, the rows' cost side by side) into
    ``entry`` and ``table``; the tokens the first batch size drew."""
    first_rows: list[list[int]] | None = None
    today_by_rows: dict[int, Timing] = {}
    for rows in args.rows:
        res, generated, steps, same, tokens = bench_sampling(sm, region, args.bars, rows, args.repeats, args.modes)
        first_rows = first_rows or tokens
        entry["sampling"][rows] = {"seconds": res, "tokens": generated, "steps": steps, "same_tokens": same}
        base = TODAY if TODAY in res else next(iter(res))
        today_by_rows[rows] = res[base]
        bw, bc = res[base]
        for label, (w, c) in res.items():
            if label == base:
                continue
            note = f"{generated[label]} tokens in {steps[label]} steps ({base}: {steps[base]})"
            note += "; same tokens" if same[label] else "; other tokens"
            table.append(
                [name, f"sampling, {rows} rows: {label} vs {base}", f"{w:.2f} / {c:.2f}", f"{bw:.2f} / {bc:.2f}",
                 ratio(bw, w), ratio(bc, c), note + (f" ({MODES[label].note})" if MODES[label].note else "")]
            )  # fmt: skip
    if len(today_by_rows) > 1:  # what a batch's rows cost: 4 variants x 1 candidate against x 2
        most = max(today_by_rows)
        (mw, mc) = today_by_rows[most]
        for rows, (w, c) in sorted(today_by_rows.items()):
            if rows != most:
                table.append(
                    [name, f"sampling ({TODAY}): {rows} rows vs {most}", f"{w:.2f} / {c:.2f}",
                     f"{mw:.2f} / {mc:.2f}", ratio(mw, w), ratio(mc, c), "the batch's rows: variants x candidates"]
                )  # fmt: skip
    assert first_rows is not None
    return first_rows


def _threads_row(
    name: str, sm: SymbolicModel, region: Region, args: argparse.Namespace, entry: dict[str, Any], table: Table
) -> None:
    """The steps' threads chosen once against re-chosen under a load that starts mid-job (``--load-after``)."""
    spent = bench_threads(sm, region, args.bars, max(args.rows), args.repeats, args.load_after, args.load_processes)
    entry["threads"] = spent
    (ow, oc), (nw, nc) = spent["once"], spent["re-chosen"]
    table.append(
        [name, f"sampling, {max(args.rows)} rows, {torch.get_num_threads()} threads, load from "
         f"{args.load_after:g} s: threads re-chosen vs once", f"{nw:.2f} / {nc:.2f}", f"{ow:.2f} / {oc:.2f}",
         ratio(ow, nw), ratio(oc, nc),
         f"{args.load_processes} busy processes start mid-job; the job began on an idle machine"]
    )  # fmt: skip


def _job_rows(name: str, path: Path, args: argparse.Namespace, entry: dict[str, Any], table: Table) -> None:
    """The whole job in process (fast against module path; unless ``--no-job``) and ``segue continue`` per
    ``--cli-settings`` (unless ``--cli-repeats 0``)."""
    if not args.no_job:
        job = bench_job(path, args.bars, args.variants, args.job_repeats)
        entry["job"] = job
        m, f = job["module"], job["fast"]
        parts = ", ".join(
            f"{k.replace('_seconds', '')} {f['timings'].get(k, 0):.2f} vs {m['timings'].get(k, 0):.2f}"
            for k in ("generate_seconds", "render_seconds")
        )
        table.append(
            [name, "whole job in process: fast vs module path", f"{f['wall']:.2f} / {f['cpu']:.2f}",
             f"{m['wall']:.2f} / {m['cpu']:.2f}", ratio(m["wall"], f["wall"]), ratio(m["cpu"], f["cpu"]), parts]
        )  # fmt: skip
    if args.job_candidates:
        _candidate_rows(name, path, args, entry, table)
    if args.speculate is not None:
        seeds, settings = args.speculate or [7, 8, 9], SpeculationSettings(draft=args.draft)
        found = bench_job_speculation(path, args.bars, args.variants, args.job_repeats, seeds, settings)
        entry["speculation"] = found
        table.extend(speculation_rows(name, found, ratio))
        table.append(class_row(name, found))
    if args.cli_repeats > 0:
        envs = {k: v for k, v in CLI_SETTINGS.items() if k in args.cli_settings}
        cli = bench_cli(path, args.bars, args.variants, args.cli_repeats, envs)
        entry["cli"] = cli
        for label, run in cli.items():
            t = run["timings"]
            outside = run["wall"] - t.get("total_seconds", 0.0)
            phases = ", ".join(
                f"{k.removesuffix('_seconds')} {t[k]:.2f}"
                for k in ("load_seconds", "generate_seconds", "cache_seconds", "render_seconds")
                if k in t
            )
            table.append(
                [name, f"`segue continue` ({label})", f"{run['wall']:.2f} / {run['cpu']:.2f}", "", "", "",
                 f"process start, imports, job.json, exit {outside:.2f}; {phases}"]
            )  # fmt: skip


def _candidate_rows(name: str, path: Path, args: argparse.Namespace, entry: dict[str, Any], table: Table) -> None:
    """The whole job in process with each ``--job-candidates`` count, against the first."""
    counts = list(dict.fromkeys(args.job_candidates))
    runs = bench_job_candidates(path, args.bars, args.variants, args.job_repeats, counts)
    entry["job_candidates"] = runs
    base = runs[counts[0]]
    for count in counts[1:]:
        run = runs[count]
        phases = ", ".join(
            f"{k.removesuffix('_seconds')} {run['timings'].get(k, 0):.2f} vs {base['timings'].get(k, 0):.2f}"
            for k in ("generate_seconds", "cache_seconds", "render_seconds")
        )
        table.append(
            [name, f"whole job in process: {count} vs {counts[0]} candidates a variant",
             f"{run['wall']:.2f} / {run['cpu']:.2f}", f"{base['wall']:.2f} / {base['cpu']:.2f}",
             ratio(base["wall"], run["wall"]), ratio(base["cpu"], run["cpu"]), phases]
        )  # fmt: skip


def _region_entry(name: str, sm: SymbolicModel, args: argparse.Namespace, table: Table) -> dict[str, Any]:
    """Every measurement on one region of examples/regions/, its rows added to ``table``."""
    path = ROOT / "examples/regions" / name
    region = read_region(Prompt(midi_path=path))
    entry: dict[str, Any] = {"sampling": {}}
    first_rows = _sampling_rows(name, sm, region, args, entry, table)
    if args.load_after is not None:
        _threads_row(name, sm, region, args, entry, table)
    render_times = bench_render(region, first_rows, sm, args.bars, args.repeats)
    entry["render"] = render_times
    (bw, bc), (rw, rc) = render_times["baseline"], render_times["new"]
    table.append(
        [name, "render + write 4 variants", f"{rw:.2f} / {rc:.2f}", f"{bw:.2f} / {bc:.2f}", ratio(bw, rw),
         ratio(bc, rc), "continuation + full per variant: stems, mixes, MIDI, 24-bit WAVs"]
    )  # fmt: skip
    _job_rows(name, path, args, entry, table)
    return entry


def _loss_row(sm: SymbolicModel, data: dict[str, Any], table: Table) -> None:
    """The held-out loss with bfloat16 weight products against float32."""
    loss = heldout_loss(sm, [torch.float32, torch.bfloat16])
    data["heldout_loss"] = loss
    change = (loss["bfloat16"] - loss["float32"]) / loss["float32"] * 100
    table.append(
        ["held-out pieces", "loss, nats/token: bf16 vs float32", f"{loss['bfloat16']:.5f}",
         f"{loss['float32']:.5f}", "", "",
         f"{change:+.3f} %; {loss['tokens']} tokens of {loss['pieces']} pieces (bench/data/midi_quality)"]
    )  # fmt: skip


def main() -> int:
    args = _parser().parse_args()
    torch.set_num_threads(args.threads)

    sm = SymbolicModel.load(find_checkpoint(args.model))
    table: Table = []
    data: dict[str, Any] = {"machine": machine(args.threads), "model": sm.name, "bars": args.bars, "regions": {}}
    for name in args.regions:
        data["regions"][name] = _region_entry(name, sm, args, table)
    if args.speculate is not None:  # what a pass of several positions costs, on the job's model
        dtype = model_fast.decode_dtype("auto")
        data["pass_cost"] = pass_cost(sm.model, max(args.rows), [300, 576], [1, 2, 3, 5], dtype)
        table.extend(cost_rows(max(args.rows), data["pass_cost"], ratio))
    if not args.no_loss:
        _loss_row(sm, data, table)
    if args.levers:
        import midi_levers

        data["levers"] = midi_levers.levers(sm, args.bars, args.variants, args.windows, table)
    data["load_average_after"] = machine()["load_average"]
    write_json(Path(args.out), data)
    header = ["region", "what", "new wall / cpu s", "baseline wall / cpu s", "wall ratio", "cpu ratio", "notes"]
    print(
        f"MIDI speed: model {sm.name}, {args.bars} bars, {args.threads} torch thread(s), best of {args.repeats} "
        f"(jobs: {args.job_repeats}); load average {data['machine']['load_average']} -> {data['load_average_after']}"
    )
    print(markdown_table(header, table))
    print(f"json: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
