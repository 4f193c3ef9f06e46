"""MIDI clock tempo convergence: beats until the follower's tempo is within 0.1 BPM (and stays there).

    python bench/bench_clock.py [--seeds 10] [--beats 32] [--quick] [--out bench/results/clock.json]

Synthetic 24-PPQN clock streams (Start, then clocks) at 97.5, 120 and 140 BPM, three kinds of timestamps:

- ``jitter 1 ms``: every clock stamped at its true time plus gaussian noise of 1 ms (1 sigma);
- ``JACK 256`` / ``JACK 1024``: stamps quantized to the end of the JACK period (256 or 1024 frames at 48 kHz:
  5.3 / 21.3 ms) the clock fell in, plus 0-0.3 ms of callback wake-up jitter, at a random phase (two clocks
  may share a stamp), as rtmidi delivers them under JACK.

Each stream is fed, clock by clock, to :class:`bridge.clock.ClockFollower` and to the baselines, on the same
stamps: the naive last-interval estimator (60 / (24 x the last interval)) and, as a stronger naive one, the
average interval over the last beat (24 clocks). Convergence: the beat after which the estimate stays within
0.1 BPM until the end of the stream (``--beats`` long); "never" when it is still off at the end. Figures are
the median and the worst over ``--seeds`` streams. Pure computation: no ports, no timing of the machine.
Prints a table and writes bench/results/clock.json.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from _common import bench_parser, machine, markdown_table, parse_bench_args, percentile, write_json

from bridge.clock import PPQN, ClockFollower

TEMPI = (97.5, 120.0, 140.0)
TOLERANCE_BPM = 0.1
RATE = 48_000
T0 = 1000.0  # stamps start far from zero, as a monotonic clock does


class _Msg:
    def __init__(self, kind: str) -> None:
        self.type = kind


CLOCK, START = _Msg("clock"), _Msg("start")


def stamps(tempo: float, beats: int, kind: str, rng: random.Random) -> list[float]:
    period = 60.0 / (tempo * PPQN)
    count = beats * PPQN + 1
    if kind == "jitter 1 ms":
        return [T0 + k * period + rng.gauss(0.0, 0.001) for k in range(count)]
    frames = int(kind.split()[1])
    quantum = frames / RATE
    phase = rng.uniform(0.0, quantum)
    return [T0 + math.ceil((k * period + phase) / quantum) * quantum + rng.uniform(0.0, 0.0003) for k in range(count)]


Estimator = Callable[[list[float]], list[float | None]]


def follower(times: list[float]) -> list[float | None]:
    f = ClockFollower()
    f.feed(START, times[0] - 0.001)
    out: list[float | None] = []
    for t in times:
        f.feed(CLOCK, t)
        out.append(f.tempo_bpm)
    return out


def last_interval(times: list[float]) -> list[float | None]:
    out: list[float | None] = [None]
    for a, b in zip(times, times[1:], strict=False):
        out.append(60.0 / (PPQN * (b - a)) if b > a else None)  # a shared stamp: no estimate (infinite)
    return out


def beat_average(times: list[float]) -> list[float | None]:
    out: list[float | None] = []
    for k, t in enumerate(times):
        span = min(k, PPQN)
        out.append(60.0 * span / (PPQN * (t - times[k - span])) if span and t > times[k - span] else None)
    return out


ESTIMATORS: dict[str, Estimator] = {
    "segue": follower,
    "last_interval": last_interval,
    "beat_average": beat_average,
}


def converged_beat(estimates: list[float | None], tempo: float) -> float | None:
    """The beat (clock index / 24) from which every estimate is within the tolerance; None: never."""
    last_bad = -1
    for k, e in enumerate(estimates):
        if e is None or abs(e - tempo) >= TOLERANCE_BPM:
            last_bad = k
    if last_bad == len(estimates) - 1:
        return None
    return (last_bad + 1) / PPQN


def run(seeds: int, beats: int, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for kind in kinds:
        for tempo in TEMPI:
            found: dict[str, list[float | None]] = {name: [] for name in ESTIMATORS}
            final_error: dict[str, list[float]] = {name: [] for name in ESTIMATORS}
            for seed in range(seeds):
                times = stamps(tempo, beats, kind, random.Random(seed * 1000 + int(tempo * 10)))
                for name, estimator in ESTIMATORS.items():
                    estimates = estimator(times)
                    found[name].append(converged_beat(estimates, tempo))
                    last = estimates[-1]
                    final_error[name].append(abs(last - tempo) if last is not None else math.inf)
            row: dict[str, Any] = {"timestamps": kind, "tempo_bpm": tempo, "seeds": seeds, "beats": beats}
            for name in ESTIMATORS:
                values = found[name]
                done = [v for v in values if v is not None]
                row[name] = {
                    "converged": len(done),
                    "median_beats": percentile(done, 50) if len(done) * 2 > len(values) else None,
                    "worst_beats": max(done) if len(done) == len(values) else None,
                    "median_final_error_bpm": round(percentile(final_error[name], 50), 4),
                }
            rows.append(row)
    return rows


def fmt_beats(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--beats", type=int, default=32, help="length of each stream in beats (default 8 bars)")
    args = parse_bench_args(parser, argv, out="clock.json", quick_settings={"seeds": 2, "beats": 16})
    kinds = ("jitter 1 ms", "JACK 256", "JACK 1024")
    rows = run(args.seeds, args.beats, kinds)
    worst = [r["segue"]["worst_beats"] for r in rows]
    data = {
        "bench": "clock",
        "machine": machine(),
        "settings": {"seeds": args.seeds, "beats": args.beats, "tolerance_bpm": TOLERANCE_BPM, "quick": args.quick},
        "rows": rows,
        "segue_worst_beats": None if any(w is None for w in worst) else max(w for w in worst if w is not None),
        "baseline_converged": sum(r["last_interval"]["converged"] for r in rows),
        "streams": len(rows) * args.seeds,
    }
    write_json(args.out, data)
    table = []
    for r in rows:
        seg, naive, avg = r["segue"], r["last_interval"], r["beat_average"]
        table.append([
            r["timestamps"], f"{r['tempo_bpm']:g}",
            f"{fmt_beats(seg['median_beats'])} / {fmt_beats(seg['worst_beats'])}",
            f"{fmt_beats(naive['median_beats'])} ({naive['converged']}/{args.seeds})",
            f"{fmt_beats(avg['median_beats'])} ({avg['converged']}/{args.seeds})",
            f"{seg['median_final_error_bpm']:.3f} / {naive['median_final_error_bpm']:.2f} / "
            f"{avg['median_final_error_bpm']:.2f}",
        ])  # fmt: skip
    print(f"MIDI clock: beats until within {TOLERANCE_BPM} BPM for good; {args.seeds} streams of {args.beats} beats "
          "each (Segue: median / worst; baselines: median (streams converged))")  # fmt: skip
    header = ["timestamps", "BPM", "Segue follower", "last interval", "1-beat average", "final error BPM S/L/A"]
    print(markdown_table(header, table, right=(1, 2, 3, 4)))
    print(f"(json: {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
