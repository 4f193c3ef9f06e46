"""How long stamping a job's files with provenance takes (engine/provenance/stamp.py), and what it adds.

Two parts:

- **per file**: a synthetic job (``--variants`` variants, each a mix, ``--stems`` stems and a full mix: 48 kHz
  stereo 24-bit WAV, ``--seconds`` long, plus continuation.mid from examples/regions/pop_100bpm_4-4.mid), stamped
  once with a C2PA signature (Segue's local key, made in a temporary config folder) and once without: seconds per
  file and the bytes each WAV gains.
- **whole job, old against new** (``--repeats``; 0 skips it): the post-processing a finished job gets before it is
  ``done`` (``stamp_job`` on every WAV and MIDI file it lists), with ``engine/provenance`` as it was at
  ``--old-rev`` (read from git) against today's, on fresh copies of the same unstamped job each time, alternating
  which runs first, signed. The job is a finished one (``--job DIR``: its files with Segue's provenance taken out,
  e.g. a ``make demo`` job) or, without ``--job``, a synthetic one shaped like ``make demo``'s (4 variants: mix,
  full mix and 4 stems at 44.1 kHz, continuation.mid and full.mid: 24 WAVs, 8 MIDI files). Today's code runs with
  its default workers and with one (``--workers``). After each run of today's code every WAV's signature is
  checked and its audio compared with the unstamped file's, and every MIDI file's events with what the old code
  wrote: the ``verified`` column.

Wall seconds and CPU seconds (this process's, all threads) are both given: on a shared machine the wall clock
counts other people's work. Writes bench/results/provenance.json.

    .venv/bin/python bench/bench_provenance.py [--variants 4] [--stems 4] [--seconds 19.2]
        [--job DIR] [--repeats 5] [--old-rev 43d69f6] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from _common import RESULTS, ROOT, machine, markdown_table, write_json

from engine.provenance.midi import read_midi_provenance
from engine.provenance.record import ProvenanceSettings
from engine.provenance.report import inspect_file
from engine.provenance.riff import chunk_bytes
from engine.provenance.signing import C2PA_CHUNK_ID, check_wav, load_credentials
from engine.provenance.stamp import STAMP_WORKERS, stamp_job, strip_provenance
from engine.render.wavfile import write_wav

RATE = 48_000
REGION_MID = ROOT / "examples" / "regions" / "pop_100bpm_4-4.mid"
OLD_REV = "43d69f6"  # engine/provenance before files were stamped on threads and MIDI files by inserting bytes
OLD_PACKAGE = "old_segue_provenance"


def make_job(
    folder: Path, variants: int, stems: int, seconds: float, rate: int = RATE, full: bool = False
) -> dict[str, Any]:
    """A job folder of noise WAVs (and continuation.mid; with ``full``, full.wav and full.mid a region longer)."""
    rng = np.random.default_rng(1)
    audio = rng.uniform(-0.3, 0.3, size=(2, int(seconds * rate))).astype(np.float32)
    longer = np.concatenate([audio, audio[:, : audio.shape[1] // 2]], axis=1)
    records = []
    for v in range(1, variants + 1):
        vid = f"v{v:02d}"
        files = {"midi": f"{vid}/continuation.mid", "audio": f"{vid}/continuation.wav", "full_audio": f"{vid}/full.wav"}
        if full:
            files["full_midi"] = f"{vid}/full.mid"
        files.update({f"stem:part{s}": f"{vid}/stems/part{s}.wav" for s in range(stems)})
        for role, rel in files.items():
            if rel.endswith(".wav"):
                write_wav(folder / rel, longer if full and role == "full_audio" else audio, rate)
            else:
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REGION_MID, folder / rel)
        records.append({"id": vid, "seed": 7 + v, "files": files, "parts": [f"part{s}" for s in range(stems)]})
    return {
        "id": "20261207-120000-bench-continue-abcd", "mode": "continue", "kind": "midi",
        "model": "segue-midi-small", "engine": "local (cpu)", "params": {"bars": 8, "temperature": 1.0},
        "region": {"sources": [{"path": "/music/region.mid", "sha256": "ab" * 32}]}, "variants": records,
        "segue_version": "bench",
    }  # fmt: skip


def per_file(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for sign in (True, False):
        folder = tmp / f"job-{sign}"
        job = make_job(folder, args.variants, args.stems, args.seconds)
        wavs = sorted(folder.rglob("*.wav"))
        before = sum(p.stat().st_size for p in wavs)
        started = time.perf_counter()
        report = stamp_job(folder, job, ProvenanceSettings(sign=sign))
        elapsed = time.perf_counter() - started
        added = (sum(p.stat().st_size for p in wavs) - before) / len(wavs)
        sizes = inspect_file(wavs[0]).chunk_sizes
        chunks = {k.strip(): v for k, v in sizes.items() if k != "data"}
        rows.append({"sign": sign, "files": len(report.stamped), "wavs": len(wavs), "seconds": elapsed,
                     "bytes_per_wav": added, "chunks": chunks})  # fmt: skip
    print(f"{'C2PA':>5} {'files':>5} {'wavs':>4} {'total s':>8} {'ms/file':>8} {'bytes/wav':>9}  chunks of one WAV")
    for r in rows:
        chunks = ", ".join(f"{k} {v}" for k, v in r["chunks"].items())
        print(f"{'yes' if r['sign'] else 'no':>5} {r['files']:>5} {r['wavs']:>4} {r['seconds']:>8.2f} "
              f"{1000 * r['seconds'] / r['files']:>8.1f} {r['bytes_per_wav']:>9.0f}  {chunks}")  # fmt: skip
    return rows


def old_provenance(rev: str, tmp: Path) -> ModuleType:
    """``engine.provenance.stamp`` as it was at ``rev``, importable beside today's (its own package name)."""
    package = tmp / OLD_PACKAGE
    package.mkdir()
    listing = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", rev, "engine/provenance/"],
                             check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
    for path in [*listing, "engine/midi_io.py"]:  # with the MIDI file code of then (on mido; today's has no mido)
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"],
                                check=True, capture_output=True, text=True).stdout  # fmt: skip
        source = source.replace("engine.provenance", OLD_PACKAGE).replace("engine.midi_io", f"{OLD_PACKAGE}.midi_io")
        (package / Path(path).name).write_text(source, encoding="utf-8")
    sys.path.insert(0, str(tmp))
    return importlib.import_module(f"{OLD_PACKAGE}.stamp")


def unstamped_copy(source: Path, job: dict[str, Any], target: Path) -> None:
    """The job's WAV and MIDI files without Segue's provenance (what the engine wrote), under ``target``."""
    for variant in job["variants"]:
        for rel in variant["files"].values():
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(strip_provenance((source / rel).read_bytes(), rel))


def verify(stamped: Path, unstamped: Path, old: Path, job: dict[str, Any]) -> str:
    """'' when every WAV's signature holds and its audio is the unstamped file's, and every MIDI file has the
    events the old code wrote; else what is wrong."""
    for variant in job["variants"]:
        for rel in variant["files"].values():
            data = (stamped / rel).read_bytes()
            if rel.endswith(".wav"):
                status = check_wav(data, chunk_bytes(data, C2PA_CHUNK_ID) is not None)
                if not status.signature_holds:
                    return f"{rel}: signature does not hold ({status.state} {status.failures} {status.problem})"
                if chunk_bytes(data, b"data") != chunk_bytes((unstamped / rel).read_bytes(), b"data"):
                    return f"{rel}: audio changed"
            else:
                new, before = (read_midi_provenance(p.read_bytes(), rel).record for p in (stamped / rel, old / rel))
                if (
                    new is None
                    or before is None
                    or dataclasses.replace(new, created="") != dataclasses.replace(before, created="")
                ):
                    return f"{rel}: another record than the old code's"
                if strip_provenance(data, rel) != strip_provenance((old / rel).read_bytes(), rel):
                    return f"{rel}: other MIDI events than the old code's"
    return ""


def whole_job(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    if args.job:
        source = Path(args.job)
        job = json.loads((source / "job.json").read_text(encoding="utf-8"))
        clean = tmp / "unstamped"
        unstamped_copy(source, job, clean)
        what = f"the finished job {source.name}"
    else:
        clean = tmp / "unstamped"
        job = make_job(clean, 4, 4, 19.2, rate=44_100, full=True)
        what = "a synthetic job shaped like make demo's"
    files = [rel for v in job["variants"] for rel in v["files"].values()]
    old = old_provenance(args.old_rev, tmp)
    settings = ProvenanceSettings(sign=True)
    load_credentials(settings)  # made once, outside the timings (the first job on a computer makes the key)
    old.stamp_job(tmp / "warm", {**job, "variants": []}, old.ProvenanceSettings(sign=True))
    modes: dict[str, Callable[[Path], Any]] = {
        "old": lambda folder: old.stamp_job(folder, job, old.ProvenanceSettings(sign=True)),
    }
    for workers in args.workers:
        modes[f"new, {workers} worker{'s' if workers > 1 else ''}"] = lambda folder, w=workers: stamp_job(
            folder, job, settings, workers=w
        )
    times: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    problems: dict[str, str] = {}
    for repeat in range(args.repeats):
        order = list(modes) if repeat % 2 == 0 else list(reversed(modes))
        folders = {mode: tmp / f"run-{repeat}-{index}" for index, mode in enumerate(modes)}
        for mode in order:
            shutil.copytree(clean, folders[mode])
            wall, cpu = time.perf_counter(), time.process_time()
            report = modes[mode](folders[mode])
            times[mode].append((time.perf_counter() - wall, time.process_time() - cpu))
            if len(report.stamped) != len(files) or report.problems:
                problems[mode] = f"{len(report.stamped)} of {len(files)} stamped; {report.problems}"
        if repeat == 0:
            for mode in modes:
                if mode != "old":
                    problems[mode] = problems.get(mode) or verify(folders[mode], clean, folders["old"], job)
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)
    base_wall = statistics.median(w for w, _ in times["old"])
    base_cpu = statistics.median(c for _, c in times["old"])
    rows = []
    for mode, values in times.items():
        wall, cpu = statistics.median(w for w, _ in values), statistics.median(c for _, c in values)
        verified = problems.get(mode, "") or "yes"
        rows.append({"mode": mode, "wall_s": wall, "cpu_s": cpu, "wall_ratio": base_wall / wall,
                     "cpu_ratio": base_cpu / cpu, "runs": values, "verified": verified})  # fmt: skip
    wavs = sum(rel.endswith(".wav") for rel in files)
    print(
        f"\nwhole job: {what}, {len(files)} files ({wavs} WAVs signed), median of {args.repeats}, old = {args.old_rev}"
    )
    table = markdown_table(
        ["code", "wall s", "CPU s", "wall ratio (old / this)", "CPU ratio", "verified"],
        [
            [
                r["mode"],
                f"{r['wall_s']:.3f}",
                f"{r['cpu_s']:.3f}",
                f"{r['wall_ratio']:.2f}x",
                f"{r['cpu_ratio']:.2f}x",
                "old code" if r["mode"] == "old" else r["verified"],
            ]
            for r in rows
        ],  # fmt: skip
        right=(1, 2, 3, 4),
    )
    print(table)
    return {"job": what, "files": len(files), "wavs": wavs, "repeats": args.repeats, "old_rev": args.old_rev,
            "rows": rows, "table": table}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--stems", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=19.2)  # 8 bars at 100 BPM
    parser.add_argument("--job", help="a finished job folder (with job.json) for the whole-job part")
    parser.add_argument("--repeats", type=int, default=5, help="whole-job runs per code (0: skip that part)")
    parser.add_argument("--old-rev", default=OLD_REV, help="git revision of the old engine/provenance")
    parser.add_argument("--workers", type=int, nargs="+", default=sorted({1, STAMP_WORKERS}))
    parser.add_argument("--out", default=str(RESULTS / "provenance.json"))
    args = parser.parse_args()
    started = machine()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SEGUE_CONFIG_DIR"] = str(Path(tmp) / "config")
        result: dict[str, Any] = {"machine": started, "command": " ".join(sys.argv)}
        result["per_file"] = per_file(args, Path(tmp))
        if args.repeats > 0:
            result["whole_job"] = whole_job(args, Path(tmp))
    result["load_average_after"] = list(os.getloadavg())
    write_json(Path(args.out), result)
    print(f"\nload average {started['load_average']} -> {[round(x, 2) for x in os.getloadavg()]}; wrote {args.out}")


if __name__ == "__main__":
    main()
