"""How fast the engine's own MIDI file code (engine/smf.py) reads and writes, beside mido (what it replaced).

The files: bench/data/midi_quality/**/*.mid and examples/regions/*.mid (this repository's), plus where installed
the OpenMSX set (/usr/share/games/openttd/baseset/openmsx) and music21's own test MIDI files. Each round reads
every file from memory with both (alternating which goes first) and writes what it read back to bytes; the table
gives the median over the rounds of each round's total, in milliseconds, and events per second. Both run in this
one process, so the load of the machine hits both alike; CPU seconds (process time) are given beside wall seconds.

    .venv/bin/python bench/bench_smf.py [--rounds 7] [--quick] [--out bench/results/smf.json]
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mido
from _common import ROOT, bench_parser, machine, markdown_table, parse_bench_args, write_json

from engine import smf


def midi_files() -> list[Path]:
    import importlib.util

    folders = [ROOT / "bench" / "data" / "midi_quality", ROOT / "examples" / "regions"]
    folders.append(Path("/usr/share/games/openttd/baseset/openmsx"))
    spec = importlib.util.find_spec("music21")
    if spec is not None and spec.origin is not None:
        folders.append(Path(spec.origin).parent)
    return sorted(p for f in folders if f.is_dir() for p in f.rglob("*") if p.suffix.lower() == ".mid")


def mido_write(midi: mido.MidiFile) -> bytes:
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def timed(work: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = bench_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parse_bench_args(parser, argv, quick="3 rounds over the repository's files only", out="smf.json")
    files = midi_files()
    if args.quick:
        files = [p for p in files if ROOT in p.parents]
    rounds = 3 if args.quick else args.rounds
    blobs = [p.read_bytes() for p in files]
    ours = [smf.parse(b) for b in blobs]
    theirs = [mido.MidiFile(file=io.BytesIO(b)) for b in blobs]
    events = sum(len(t) for m in ours for t in m.tracks)
    work: dict[str, Callable[[], object]] = {
        "read, engine.smf": lambda: [smf.parse(b) for b in blobs],
        "read, mido": lambda: [mido.MidiFile(file=io.BytesIO(b)) for b in blobs],
        "write, engine.smf": lambda: [smf.encode(m) for m in ours],
        "write, mido": lambda: [mido_write(m) for m in theirs],
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in work}
    for r in range(rounds):
        for name in list(work) if r % 2 == 0 else list(reversed(work)):
            times[name].append(timed(work[name]))
    rows, results = [], {}
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        results[name] = {"wall_s": wall, "cpu_s": cpu, "events_per_s": events / wall}
        rows.append([name, f"{1000 * wall:.0f}", f"{1000 * cpu:.0f}", f"{events / wall / 1e6:.2f}"])
    print(f"{len(files)} files, {sum(map(len, blobs))} bytes, {events} events; median of {rounds} rounds\n")
    print(markdown_table(["", "wall ms", "CPU ms", "M events/s"], rows, right=(1, 2, 3)))
    data = {"machine": machine(), "files": len(files), "bytes": sum(map(len, blobs)), "events": events,
            "rounds": rounds, "results": results}  # fmt: skip
    write_json(args.out, data)
    return data


if __name__ == "__main__":
    main()
