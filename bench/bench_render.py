"""A MIDI job after sampling, side by side: the render in one process (the path before issue 16's render work) against
forked render helpers (engine/render/workers.py), and ``segue continue`` as a whole, old tree against new.

Rows:

- **render + write 4 variants** (in this process): ``make demo``'s variants (examples/regions/pop_100bpm_4-4.mid,
  ``--bars 8 --variants 4 --seed 7``, sampled once here with the shipped model) written the way a job writes them
  (``engine.pipelines.files.write_note_variants`` with the job's ``MidiJobFiles``: MIDI files, then every stem, mix
  and full mix rendered from them and written atomically), ``workers=1`` against the default (one process per usable
  core); the soundfont is loaded once before (as in any process after its first job). Every run's files are
  compared with the first run's (SHA-256 of each file): the ``same files`` column.
- the same **with the second core busy** (``--busy``): a busy-loop process runs meanwhile in a session of its own
  (another program: a DAW, a test run), so the helper competes for a core. Where the kernel's autogroup scheduling
  is on (Debian's default; printed), CPU is shared between sessions first: a job's processes then get one core
  between them, and the helper gains nothing.
- **``segue continue``** (``--cli-repeats``; 0 skips it): the whole ``make demo`` command in a new process each time,
  ``SEGUE_RENDER_WORKERS=1`` against the default; with ``--baseline-rev REV``, the old side is instead the
  committed tree (``git archive HEAD``) with this work's files as they were at REV (``BASELINE_PATHS``), the new
  side the committed tree as it is. Wall seconds of the command and the job's own ``render_seconds`` and
  ``total_seconds`` (job.json); and the command line's own start (``segue continue --help``: the interpreter,
  ``bridge.cli`` and the parser; no engine), best of 10 each.

Alternating which runs first, ``--repeats`` each; best and median wall. CPU seconds count this process and its
helpers (``RUSAGE_CHILDREN`` after they are reaped); the busiest process's CPU (with one helper: the larger of this
process's and the helper's) is what the render's wall time would be with a free core for each process, whatever
other people run meanwhile. The machine is shared: the load average is printed at the start
and end of each row, and ratios, not seconds, are the result. Writes bench/results/render.json.

    nice .venv/bin/python bench/bench_render.py [--repeats 5] [--busy] [--cli-repeats 3] [--baseline-rev REV]
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import bench_parser, machine, markdown_table, parse_bench_args, write_json  # noqa: E402

REGION = ROOT / "examples" / "regions" / "pop_100bpm_4-4.mid"
BARS, VARIANTS, SEED, SAMPLE_RATE = 8, 4, 7, 44_100
STARTUP_REPEATS = 10  # runs of `segue continue --help` each side
# the files of this work (issue 16, render): restored from --baseline-rev for the old side of the CLI rows
BASELINE_PATHS = ("engine/render", "engine/pipelines/files.py", "bridge/cli.py", "bridge/cli_args.py")


def cpu_seconds() -> tuple[float, float]:
    """User + system CPU of this process, and of its reaped children (the render helpers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def autogroup() -> str:
    """Whether the kernel shares CPU between sessions first (``sched_autogroup_enabled``): then a session's
    processes together get one share when another session keeps a core busy."""
    try:
        return "on" if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1" else "off"
    except OSError:
        return "unknown"


def load() -> float:
    return round(os.getloadavg()[0], 2)


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def sample_demo() -> tuple[Any, list[int], list[Any]]:
    """``make demo``'s region and kept variants (seeds and notes), sampled once with the shipped model."""
    import torch

    from engine.api import GenerationParams, Prompt
    from engine.pipelines.context import Models, variant_seeds
    from engine.symbolic.continuation import ContinuationInfo, continue_region
    from engine.symbolic.naming import part_names_for
    from engine.symbolic.region import read_region

    region = read_region(Prompt(midi_path=REGION))
    params = GenerationParams(bars=BARS, variants=VARIANTS, seed=SEED)
    model = Models(torch.device("cpu")).symbolic("default")
    seeds = variant_seeds(params)
    info = ContinuationInfo()
    variants = continue_region(model, region, params, seeds, part_names_for(region.parts), info=info)
    return region, info.seeds or seeds, list(variants)


def bench_render(repeats: int, busy: bool) -> dict[str, Any]:
    """``write_note_variants`` of the demo's variants, one process against the default, alternating."""
    from engine.api import CancelToken
    from engine.pipelines.context import JobContext, Models, Stopwatch
    from engine.pipelines.files import write_note_variants
    from engine.pipelines.midi import MidiJobFiles
    from engine.render.soundfont import find_soundfont
    from engine.render.synth import load_soundfont
    from engine.render.workers import worker_count

    region, seeds, variants = sample_demo()
    soundfont = load_soundfont(find_soundfont(None))
    context = JobContext(cast(Models, None), threading.Lock(), None, lambda f, m: None, CancelToken())
    sides = {"one process": 1, "helpers": worker_count(len(variants))}
    times: dict[str, list[tuple[float, tuple[float, float]]]] = {k: [] for k in sides}  # wall, (own, helpers) CPU
    reference: dict[str, str] | None = None
    same = True
    spinner = _busy_loop() if busy else None
    start_load = load()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
            n = 0
            for r in range(repeats + 1):  # the first round warms the page cache and the allocator: not counted
                for side in list(sides) if r % 2 == 0 else list(sides)[::-1]:
                    n += 1
                    job_dir = Path(tmp) / f"job{n}"
                    job = MidiJobFiles(job_dir, region, BARS, SAMPLE_RATE, soundfont, None)
                    w0, (own0, helpers0) = time.perf_counter(), cpu_seconds()
                    write_note_variants(job, seeds, variants, context, Stopwatch(), workers=sides[side])
                    wall, (own1, helpers1) = time.perf_counter() - w0, cpu_seconds()
                    cpu = (own1 - own0, helpers1 - helpers0)
                    found = digests(job_dir)
                    reference = reference or found
                    same = same and found == reference
                    if r > 0:
                        times[side].append((wall, cpu))
    finally:
        if spinner is not None:
            spinner()
    return {"workers": sides, "times": times, "same_files": same, "load": [start_load, load()], "busy": busy}


def _busy_loop() -> Callable[[], None]:
    """Start a process that spins on one core, in a session of its own (another program: with the kernel's
    autogroup scheduling, a process of our own session would share our group's CPU instead of competing with it);
    returns the function that stops it."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    time.sleep(0.2)

    def stop() -> None:
        proc.kill()
        proc.wait()

    return stop


def committed_tree(dest: Path, baseline_rev: str | None) -> Path:
    """The committed tree (``git archive HEAD``) in ``dest``; with ``baseline_rev``, :data:`BASELINE_PATHS` as they
    were at that revision (files that did not exist then are removed)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    if baseline_rev:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", baseline_rev, *BASELINE_PATHS],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for path in BASELINE_PATHS:
            target = dest / path
            for f in [target] if target.is_file() else list(target.rglob("*.py")) if target.is_dir() else []:
                if str(f.relative_to(dest)) not in listed:
                    f.unlink()
        for path in listed:
            old = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{baseline_rev}:{path}"], capture_output=True, check=True
            ).stdout
            (dest / path).parent.mkdir(parents=True, exist_ok=True)
            (dest / path).write_bytes(old)
    return dest


def bench_cli(repeats: int, baseline_rev: str | None) -> dict[str, Any]:
    """``segue continue`` (``make demo``) in a new process each time, old against new, alternating."""
    results: dict[str, Any] = {"load": [load()]}
    with tempfile.TemporaryDirectory(prefix="bench-render-cli-") as tmp:
        if baseline_rev:
            trees = {
                "old": committed_tree(Path(tmp) / "old", baseline_rev),
                "new": committed_tree(Path(tmp) / "new", None),
            }
            envs: dict[str, dict[str, str]] = {"old": {}, "new": {}}
        else:
            trees = {"old": ROOT, "new": ROOT}
            envs = {"old": {"SEGUE_RENDER_WORKERS": "1"}, "new": {}}
        runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
        starts: dict[str, list[float]] = {"old": [], "new": []}
        for r in range(STARTUP_REPEATS):  # the command line's own start: interpreter, bridge.cli, the parser
            for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
                env = {**os.environ, **envs[side], "PYTHONPATH": str(trees[side])}
                w0 = time.perf_counter()
                command = [sys.executable, "-m", "bridge.cli", "continue", "--help"]
                subprocess.run(command, cwd=trees[side], env=env, capture_output=True, check=True)
                starts[side].append(time.perf_counter() - w0)
        results["startup"] = starts
        n = 0
        for r in range(repeats):
            for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
                n += 1
                out = Path(tmp) / f"run{n}"
                command = [sys.executable, "-m", "bridge.cli", "continue", str(REGION), "--bars", str(BARS)]
                command += ["--variants", str(VARIANTS), "--seed", str(SEED), "--out", str(out), "--json"]
                env = {**os.environ, **envs[side], "PYTHONPATH": str(trees[side])}
                w0 = time.perf_counter()
                done = subprocess.run(command, cwd=trees[side], env=env, capture_output=True, text=True, check=True)
                wall = time.perf_counter() - w0
                job = json.loads(done.stdout)
                timings = job.get("timings", {})
                runs[side].append(
                    {
                        "wall": wall,
                        "total_seconds": float(timings.get("total_seconds", 0.0)),
                        "render_seconds": float(timings.get("render_seconds", 0.0)),
                        "generate_seconds": float(timings.get("generate_seconds", 0.0)),
                    }
                )
    results["runs"] = runs
    results["load"].append(load())
    results["baseline"] = (
        f"tree at HEAD with {', '.join(BASELINE_PATHS)} from {baseline_rev}"
        if baseline_rev
        else ("SEGUE_RENDER_WORKERS=1")
    )
    return results


def _best_median(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f}"


def render_rows(entry: dict[str, Any], label: str) -> list[list[str]]:
    """Wall (best / median), ratios, CPU of all processes, and the CPU of the busiest process: with one helper,
    ``max(this process, the helper)``, what the wall time would be on a machine with a free core for each."""
    times = entry["times"]
    old, new = times["one process"], times["helpers"]
    old_wall, new_wall = [w for w, _ in old], [w for w, _ in new]
    old_cpu, new_cpu = statistics.median(sum(c) for _, c in old), statistics.median(sum(c) for _, c in new)
    busiest_new = statistics.median(max(c) for _, c in new)  # one helper: this process or the helper
    busiest_old = statistics.median(c[0] for _, c in old)
    return [
        [
            label,
            f"{_best_median(new_wall)} ({entry['workers']['helpers']} processes)",
            _best_median(old_wall),
            f"{min(old_wall) / min(new_wall):.2f}x / {statistics.median(old_wall) / statistics.median(new_wall):.2f}x",
            f"{new_cpu:.3f} / {old_cpu:.3f}",
            f"{busiest_new:.3f} / {busiest_old:.3f} ({busiest_old / busiest_new:.2f}x)",
            "yes" if entry["same_files"] else "NO",
            f"{entry['load'][0]} -> {entry['load'][1]}",
        ]
    ]


def cli_rows(entry: dict[str, Any]) -> list[list[str]]:
    runs = entry["runs"]
    rows = []
    old_start, new_start = entry["startup"]["old"], entry["startup"]["new"]
    rows.append(
        [
            "`segue continue --help` (interpreter, bridge.cli, the parser)",
            _best_median(new_start),
            _best_median(old_start),
            f"{min(old_start) / min(new_start):.2f}x / "
            f"{statistics.median(old_start) / statistics.median(new_start):.2f}x",
            "",
            "",
            "",
            f"{entry['load'][0]} -> {entry['load'][1]}",
        ]
    )
    for key, what in (("wall", "`segue continue` (whole command)"), ("total_seconds", "its job (total_seconds)"),
                      ("render_seconds", "its render (render_seconds)")):  # fmt: skip
        old, new = [r[key] for r in runs["old"]], [r[key] for r in runs["new"]]
        rows.append(
            [
                what,
                _best_median(new),
                _best_median(old),
                f"{min(old) / min(new):.2f}x / {statistics.median(old) / statistics.median(new):.2f}x",
                "",
                "",
                "",
                f"{entry['load'][0]} -> {entry['load'][1]}",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="runs of each side (after one warm-up round)")
    parser.add_argument("--busy", action="store_true", help="also: the render rows with the second core busy")
    parser.add_argument("--cli-repeats", type=int, default=3, help="`segue continue` runs of each side (0: none)")
    parser.add_argument("--baseline-rev", default=None, help="the old side of the CLI rows: this work's files at REV")
    args = parse_bench_args(parser, argv, quick="2 repeats, 1 CLI run each", out="render.json")
    if args.quick:
        args.repeats, args.cli_repeats = 2, 1
    result: dict[str, Any] = {"machine": machine(), "command": " ".join(sys.argv), "autogroup": autogroup()}
    rows = []
    result["render"] = bench_render(args.repeats, busy=False)
    rows += render_rows(result["render"], "render + write 4 variants")
    if args.busy:
        result["render_busy"] = bench_render(args.repeats, busy=True)
        rows += render_rows(result["render_busy"], "render + write 4 variants, another session busy on one core")
    if args.cli_repeats > 0:
        result["cli"] = bench_cli(args.cli_repeats, args.baseline_rev)
        rows += cli_rows(result["cli"])
    header = ["what", "new wall s best / median", "old wall s best / median", "wall ratio best / median",
              "CPU s new / old (median)", "busiest process CPU s new / old", "same files", "load"]  # fmt: skip
    table = markdown_table(header, rows)
    result["table"] = table
    write_json(args.out, result)
    print(table)
    if "cli" in result:
        print(f"CLI old side: {result['cli']['baseline']}")
    print(f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, autogroup {result['autogroup']}")
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
