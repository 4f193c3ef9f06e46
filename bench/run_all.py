"""Every part's benchmark, side by side with its baseline, in one table: what `make bench` runs.

    python bench/run_all.py [--quick] [--only PART ...] [--results bench/results]

Parts (each its own script and process, so torch threads, Qt and memory do not leak from one into the next):

========  =====================================================================================================
symbolic  bench/bench_symbolic.py: MIDI continuation speed, KV cache against recomputing the context each step
audio     bench/bench_audio.py (the audio engine's own): real-time factor against MusicGen small's architecture
loss      bench/bench_loss.py: the MIDI model's held-out loss against Kneser-Ney n-grams on the same tokens
osc       bench/bench_osc.py: the bridge's /segue/ping -> /segue/pong round trip against a plain UDP echo
clock     bench/bench_clock.py: beats until the MIDI clock follower is within 0.1 BPM, against naive estimators
gui       bench/bench_gui.py: the window's longest event-loop gap while a job runs, against the idle window
transcribe bench/bench_transcribe.py: audio -> MIDI seconds per 10 s of audio, against basic-pitch's own predict()
gpu       only on a machine with a CUDA device (none here: the row says so)
========  =====================================================================================================

Every figure is a ratio against a baseline measured in the same run (alternating or side by side, best of N where
timed), so a loaded machine moves both; nothing here asserts a time. ``--quick`` shrinks every part (fewer bars,
pings, seeds, rounds; a few minutes in all instead of about a quarter of an hour). A part that cannot run (the
audio model not shipped yet, no token cache) says why in its row instead of giving a number. Prints the table and
writes ``bench/results/all.json`` (the machine, the rows, each part's own JSON; also in ``bench/results/parts/``)
and ``bench/results/all.md``.
Exit status 1 when a part failed (not when it was not measurable).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import RESULTS, ROOT, machine, markdown_table, write_json

HEADER = ["part", "measure", "Segue", "baseline", "ratio", "notes"]
Row = list[str]  # a row of the table (the rows functions give it without the part's label)


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _ratio(value: float, better: str) -> str:
    return f"{value:.3g}x ({better} is better)" if math.isfinite(value) else "n/a"


# -- each part: the command that runs it, and its JSON -> rows -------------------------------------------------


def cmd_symbolic(args: argparse.Namespace, out: Path) -> list[str]:
    size = ["--bars", "2", "--variants", "2", "--repeats", "1"] if args.quick else ["--repeats", "2"]
    return ["bench/bench_symbolic.py", *size, "--threads", str(args.threads), "--out", str(out)]


def rows_symbolic(d: dict[str, Any]) -> list[Row]:
    s, tps = d["seconds"], d["tokens_per_second"]
    return [[
        f"sampling tokens/s, {d['bars']} bars x {d['variants']} variants",
        f"{_fmt(tps['kv_cache'], 0)} (KV cache, {s['kv_cache']:.2f} s)",
        f"{_fmt(tps['no_cache'], 0)} (no cache, {s['no_cache']:.2f} s)",
        _ratio(d["speedup_kv_cache"], "higher"),
        f"{d['model']}, {d['generated_tokens']} tokens, same seeds, best of N, {d['threads']} threads",
    ]]  # fmt: skip


def cmd_audio(args: argparse.Namespace, out: Path) -> list[str]:
    size = ["--bars", "2", "--variants", "2", "--repeats", "1", "--musicgen-steps", "8"] if args.quick else []
    return ["bench/bench_audio.py", *size, "--threads", str(args.threads), "--out", str(out)]


def rows_audio(d: dict[str, Any]) -> list[Row]:
    results = d["results"]
    segue = results[0]
    music = results[1] if len(results) > 1 else None
    settings = d.get("settings", {})
    size = f"{settings.get('variants', '?')} variants x {settings.get('bars', '?')} bars"
    if music is None:
        return [[f"real-time factor, {size}", f"{segue['real_time_factor']:.2f}",
                 "not measured (--no-musicgen)", "n/a", segue["model"]]]  # fmt: skip
    extrapolated = "extrapolated" in music.get("measured", "")
    return [
        [
            f"real-time factor (audio s / wall s), {size}",
            f"{segue['real_time_factor']:.2f} ({segue['job_seconds']:.1f} s)",
            f"{music['real_time_factor']:.3f} ({music['job_seconds']:.1f} s{', extrapolated' if extrapolated else ''})",
            _ratio(segue["real_time_factor"] / music["real_time_factor"], "higher"),
            f"{segue['model']} (whole job) vs MusicGen small architecture, random weights",
        ],
        [
            "sampling tokens/s",
            _fmt(segue["tokens_per_second"], 0), _fmt(music["tokens_per_second"], 0),
            _ratio(segue["tokens_per_second"] / music["tokens_per_second"], "higher"),
            f"decoders {segue['prior_parameters'] / 1e6:.1f}M vs {music['prior_parameters'] / 1e6:.0f}M params",
        ],
    ]  # fmt: skip


def cmd_loss(args: argparse.Namespace, out: Path) -> list[str]:
    extra = ["--quick"] if args.quick else []
    if args.token_cache:
        extra += ["--token-cache", args.token_cache]
    if args.corpus:
        extra += ["--corpus", args.corpus]
    return ["bench/bench_loss.py", *extra, "--out", str(out)]


def rows_loss(d: dict[str, Any]) -> list[Row]:
    base, best = d["baseline"], d["best_baseline"]
    cache = d["token_cache"]
    notes = (
        f"{d['scored_tokens']:,} held-out tokens ({cache['val_files']} files); n-grams fit on "
        f"{cache['train_tokens']:,} train tokens; uniform {d['uniform']:.3f}"
    )
    rows = [[
        "held-out loss, nats/token", f"{d['segue']['val_loss']:.3f} ({d['model']})",
        f"{base['val_loss']:.3f} (KN {base['order']}-gram)", _ratio(d["ratio"], "lower"), notes,
    ]]  # fmt: skip
    if best is not base and best["order"] != base["order"]:
        rows.append([
            "held-out loss, best n-gram", f"{d['segue']['val_loss']:.3f}",
            f"{best['val_loss']:.3f} (KN {best['order']}-gram)",
            _ratio(d["segue"]["val_loss"] / best["val_loss"], "lower"), "same tokens",
        ])  # fmt: skip
    return rows


def cmd_osc(args: argparse.Namespace, out: Path) -> list[str]:
    return ["bench/bench_osc.py", *(["--quick"] if args.quick else []), "--out", str(out)]


def rows_osc(d: dict[str, Any]) -> list[Row]:
    seg, base = d["segue"], d["baseline"]
    n = d["settings"]["pings"]
    return [
        ["round trip median, us", _fmt(seg["median_us"]), f"{_fmt(base['median_us'])} (UDP echo)",
         _ratio(d["ratio"]["median"], "lower"), f"/segue/ping -> /segue/pong on 127.0.0.1, {n} pings each"],
        ["round trip p99, us", _fmt(seg["p99_us"]), f"{_fmt(base['p99_us'])} (UDP echo)",
         _ratio(d["ratio"]["p99"], "lower"), f"lost: {seg['lost']} vs {base['lost']}"],
    ]  # fmt: skip


def cmd_clock(args: argparse.Namespace, out: Path) -> list[str]:
    return ["bench/bench_clock.py", *(["--quick"] if args.quick else []), "--out", str(out)]


def rows_clock(d: dict[str, Any]) -> list[Row]:
    rows = []
    seeds, beats = d["settings"]["seeds"], d["settings"]["beats"]
    for kind in dict.fromkeys(r["timestamps"] for r in d["rows"]):
        mine = [r for r in d["rows"] if r["timestamps"] == kind]
        worst = [r["segue"]["worst_beats"] for r in mine]
        medians = [r["segue"]["median_beats"] for r in mine]
        segue = "never" if any(w is None for w in worst) else f"{max(w for w in worst if w is not None):.2f}"
        median = "never" if any(m is None for m in medians) else f"{max(m for m in medians if m is not None):.2f}"
        naive = sum(r["last_interval"]["converged"] for r in mine)
        average = sum(r["beat_average"]["converged"] for r in mine)
        total = len(mine) * seeds
        tempi = "/".join(f"{r['tempo_bpm']:g}" for r in mine)
        rows.append([
            f"beats to within 0.1 BPM, {kind}", f"{segue} worst, {median} median",
            f"never in {total - naive}/{total} streams (last interval)", "n/a (baseline never converges)"
            if naive == 0 else "see json",
            f"{tempi} BPM, {seeds} streams each of {beats} beats; 1-beat average converged in {average}/{total}",
        ])  # fmt: skip
    return rows


def cmd_gui(args: argparse.Namespace, out: Path) -> list[str]:
    quick = ["--quick"] if args.quick else []
    threads = ["--threads", str(args.threads)]
    return ["bench/bench_gui.py", *quick, "--engine", args.gui_engine, *threads, "--out", str(out)]


def rows_gui(d: dict[str, Any]) -> list[Row]:
    job, idle, s = d["job"], d["idle"], d["settings"]
    return [[
        "longest event-loop gap, ms", f"{job['median_max_gap_ms']:.1f} (during a job)",
        f"{idle['median_max_gap_ms']:.1f} (idle)", _ratio(d["ratio"], "lower"),
        f"{s['interval_ms']} ms QTimer, offscreen; {s['engine']} engine, {s['variants']} x {s['bars']} bars; "
        f"{job['stalls_over_50ms']} gaps > 50 ms in {job['seconds']:.0f} s of jobs (idle {idle['stalls_over_50ms']}); "
        f"worst {job['worst_gap_ms']:.0f} ms",
    ]]  # fmt: skip


def cmd_transcribe(args: argparse.Namespace, out: Path) -> list[str]:
    return ["bench/bench_transcribe.py", *(["--quick"] if args.quick else []), "--threads", str(args.threads),
            "--out", str(out)]  # fmt: skip


def rows_transcribe(d: dict[str, Any]) -> list[Row]:
    per10, f1, s = d["seconds_per_10s"], d["note_f1"], d["settings"]
    return [[
        "audio -> MIDI, s per 10 s of audio", f"{per10['segue']:.3f} (note F1 {f1['segue']:.3f})",
        f"{per10['basic_pitch']:.3f} (basic-pitch predict, F1 {f1['basic_pitch']:.3f})", _ratio(d["ratio"], "lower"),
        f"same nmp.onnx; {s['audio_seconds']:.1f} s melody at 44.1 kHz stereo, warm, best of {s['repeats']}, "
        f"{s['threads']} thread(s); first call {d['cold_first_call_seconds']['segue']:.1f} s "
        f"(basic-pitch {d['cold_first_call_seconds']['basic_pitch']:.1f} s)",
    ]]  # fmt: skip


@dataclass(frozen=True)
class Part:
    """One part of the table: its label (the first column of its rows), what it measures (said when it was not
    measured), the command that runs it (None: nothing to run) and its JSON -> rows (each without the label)."""

    label: str
    measure: str
    command: Callable[[argparse.Namespace, Path], list[str]] | None = None
    rows: Callable[[dict[str, Any]], list[Row]] | None = None


TABLE = {
    "symbolic": Part("symbolic engine", "sampling tokens/s", cmd_symbolic, rows_symbolic),
    "audio": Part("audio engine", "real-time factor", cmd_audio, rows_audio),
    "loss": Part("MIDI model", "held-out loss, nats/token", cmd_loss, rows_loss),
    "osc": Part("OSC bridge", "round trip", cmd_osc, rows_osc),
    "clock": Part("MIDI clock", "beats to within 0.1 BPM", cmd_clock, rows_clock),
    "gui": Part("GUI", "longest event-loop gap", cmd_gui, rows_gui),
    "transcribe": Part("transcription", "audio -> MIDI, s per 10 s of audio", cmd_transcribe, rows_transcribe),
    "gpu": Part("GPU", "tokens/s vs memory-bandwidth bound"),  # no benchmark written yet
}
PARTS = tuple(TABLE)


def _reason(stderr: str, stdout: str) -> str:
    lines = [ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip() and "propagateSizeHints" not in ln]
    return lines[-1][:300] if lines else "no output"


def run_part(part: str, args: argparse.Namespace, results: Path) -> tuple[dict[str, Any], bool]:
    """The part's JSON (or why there is none: ``not_measured`` / ``failed``) and whether it failed."""
    command = TABLE[part].command
    assert command is not None
    script = ROOT / command(args, Path("-"))[0]
    if not script.is_file():
        return {"not_measured": f"{script.relative_to(ROOT)} is not in this checkout yet"}, False
    out = results / "parts" / f"{part}.json"  # not the scripts' own default files: a part's owner may be using them
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    argv = [sys.executable, *command(args, out)]
    print(f"== {part}: {' '.join(argv[1:])}", flush=True)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"failed": f"still running after {args.timeout:.0f} s"}, True
    seconds = round(time.monotonic() - t0, 1)
    if proc.stdout:
        print(proc.stdout.rstrip(), flush=True)
    if proc.returncode != 0 or not out.is_file():
        reason = _reason(proc.stderr, proc.stdout)
        if part == "audio":  # the audio engine's bench: its model may not be shipped yet
            print(f"   not measured: {reason}", flush=True)
            return {"not_measured": reason, "wall_seconds": seconds}, False
        print(f"   failed (exit {proc.returncode}): {reason}", flush=True)
        return {"failed": reason, "wall_seconds": seconds}, True
    data: dict[str, Any] = json.loads(out.read_text())
    data["wall_seconds"] = seconds
    return data, False


def rows_for(part: str, data: dict[str, Any]) -> list[Row]:
    """The part's rows, or one row saying why it was not measured (or failed)."""
    table = TABLE[part]
    if "not_measured" in data:
        return [[table.label, table.measure, "not measured", "", "", f"not measured: {data['not_measured']}"]]
    if "failed" in data:
        return [[table.label, table.measure, "not measured", "", "", f"failed: {data['failed']}"]]
    assert table.rows is not None
    return [[table.label, *cells] for cells in table.rows(data)]


def gpu_reason(info: dict[str, Any]) -> str:
    if info.get("gpu"):
        return f"{info['gpu']} present, but no GPU benchmark is written yet"
    return "no GPU in this session"


def describe_runs(parts_json: dict[str, Any], single: str) -> str:
    """``single`` when every part comes from one run, else which parts come from which run."""
    runs: dict[tuple[str, str], list[str]] = {}
    for part, data in parts_json.items():
        run = data.get("run", {})
        runs.setdefault((run.get("mode", "?"), run.get("date", "?")), []).append(part)
    if len(runs) <= 1:
        return single
    return "; ".join(f"{', '.join(names)}: {mode} run of {date}" for (mode, date), names in sorted(runs.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every part shrunk: a few minutes in all")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run these parts only")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other parts of the last all.json (with --only: re-run some parts)")  # fmt: skip
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes (default bench/results)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for the engine and GUI benches (default 1: on a shared 2-core machine "
                        "two threads contend; use 2 on an idle one)")  # fmt: skip
    parser.add_argument("--gui-engine", choices=("local", "fake"), default="local")
    parser.add_argument("--token-cache", default="", help="for the loss part (default data/tokens)")
    parser.add_argument("--corpus", default="", help="for the loss part (default data/corpus)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per part")
    args = parser.parse_args(argv)
    parts = args.only or list(PARTS)
    results = args.results.resolve()
    results.mkdir(parents=True, exist_ok=True)
    info = machine(args.threads, probe_gpu=True)
    mode = "quick" if args.quick else "full"
    parts_json: dict[str, Any] = {}
    earlier: dict[str, Any] = {}
    if args.merge and (results / "all.json").is_file():
        earlier = json.loads((results / "all.json").read_text())
        parts_json = dict(earlier.get("parts", {}))
    t0 = time.monotonic()
    failed = []
    for part in parts:
        if part == "gpu":
            data: dict[str, Any] = {"not_measured": gpu_reason(info)}
        else:
            data, bad = run_part(part, args, results)
            if bad:
                failed.append(part)
        data["run"] = {"mode": mode, "date": info["date"], "threads": args.threads}
        parts_json[part] = data
    total = round(time.monotonic() - t0, 1)
    rows = [row for part in PARTS if part in parts_json for row in rows_for(part, parts_json[part])]
    info["load_average_end"] = machine()["load_average"]
    what = describe_runs(parts_json, f"{mode} run, {total:.0f} s")
    head = (f"Segue benchmarks ({what}): {info['cpu']}, {info['cores']} cores, torch {info['torch']}, "
            f"{args.threads} torch thread(s), GPU {info['gpu'] or 'none'}; {info['date']}; load average "
            f"{info['load_average']} at the start, {info['load_average_end']} at the end")  # fmt: skip
    table = markdown_table(HEADER, rows)
    print()
    print(head)
    print(table)
    all_failed = sorted({*failed, *(p for p, d in parts_json.items() if "failed" in d)})
    summary = {"mode": mode, "seconds": total, "machine": info, "header": HEADER, "rows": rows,
               "failed": all_failed, "parts": parts_json}  # fmt: skip
    if earlier:
        summary["merged_into"] = {"machine": earlier.get("machine"), "mode": earlier.get("mode")}
    write_json(results / "all.json", summary)
    (results / "all.md").write_text(head + "\n\n" + table + "\n", encoding="utf-8")
    print(f"(json: {results / 'all.json'}; table: {results / 'all.md'})")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
