"""GUI event-loop stalls while a job runs, against the same window idle, side by side.

    python bench/bench_gui.py [--engine local|fake] [--bars 8] [--variants 4] [--rounds 3] [--interval-ms 5]
                              [--threads 0] [--quick] [--out bench/results/gui.json]

The desktop app's real window (:class:`gui.window.QtMainWindow` over :class:`gui.core.session.Session`, offscreen Qt,
no sound card: the tests' fake output; no OSC socket; settings in a temporary folder) opens
``examples/regions/pop_100bpm_4-4.mid``. A ``QTimer`` (precise, every ``--interval-ms``) stamps each time the event
loop runs it; a stall is the longest gap between two stamps. Each round measures the window idle, then the window
while it generates ``--variants`` x ``--bars`` bars from the click to the variants shown (thumbnails read), for as
long as that job took; rounds alternate so the machine's noise hits both alike.

``--engine local`` (default): the real in-process engine (the shipped MIDI model: torch sampling, MIDI writing,
audio rendering on the service's worker thread; ``--threads`` torch threads, 0: torch's default, as the app runs).
``--engine fake``: the tests' fake engine (no torch). Figures: the median over rounds of each phase's longest
gap, the worst gap, the 99th percentile of gaps, and the number of gaps over 50 ms (a stall a producer sees as a
frozen meter or a late click). Prints a table and writes bench/results/gui.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


from _common import (
    ROOT,
    add_tests_support,
    bench_parser,
    machine,
    markdown_table,
    parse_bench_args,
    percentile,
    write_json,
)

add_tests_support()  # the tests' fake engine (--engine fake)
REGION = ROOT / "examples/regions/pop_100bpm_4-4.mid"
STALL_MS = 50.0


class GapRecorder:
    """A precise QTimer's stamps from :meth:`start`; :meth:`stop` gives the gaps between them."""

    def __init__(self, interval_ms: int) -> None:
        from PyQt6.QtCore import Qt, QTimer

        self.stamps: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.stamps.append(time.perf_counter()))

    def start(self) -> None:
        self.stamps = [time.perf_counter()]
        self.timer.start()

    def stop(self) -> tuple[list[float], float]:
        """The gaps (ms) and when the longest one ended (seconds after :meth:`start`)."""
        self.timer.stop()
        self.stamps.append(time.perf_counter())
        gaps = [(b - a) * 1000.0 for a, b in zip(self.stamps, self.stamps[1:], strict=False)]
        worst = max(range(len(gaps)), key=gaps.__getitem__)
        return gaps, self.stamps[worst + 1] - self.stamps[0]


def spin(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Run the Qt event loop (not a busy processEvents loop) until ``condition`` or the timeout."""
    from PyQt6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    check = QTimer()
    check.setInterval(20)

    def poll() -> None:
        if condition() or time.monotonic() > deadline:
            loop.quit()

    check.timeout.connect(poll)
    check.start()
    if not condition():
        loop.exec()
    check.stop()
    return condition()


def phase_summary(recorded: tuple[list[float], float], seconds: float) -> dict[str, Any]:
    gaps, worst_at = recorded
    return {
        "seconds": round(seconds, 2),
        "worst_gap_ended_at_s": round(worst_at, 2),
        "ticks": len(gaps),
        "max_gap_ms": round(max(gaps), 1),
        "p99_gap_ms": round(percentile(gaps, 99), 1),
        "median_gap_ms": round(percentile(gaps, 50), 2),
        "stalls_over_50ms": sum(1 for g in gaps if g > STALL_MS),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from PyQt6.QtWidgets import QApplication

    from engine import entrypoints
    from gui.adapters import QtEventPump
    from gui.core.audition import FakeOutput
    from gui.core.session import Session, SessionDeps
    from gui.core.settings import GuiSettings
    from gui.theme import apply_theme
    from gui.window import QtMainWindow

    if args.threads and args.engine == "local":
        import torch

        torch.set_num_threads(args.threads)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app)  # type: ignore[arg-type]
    if args.engine == "fake":
        from fake_engine import FakeEngine

        def factory(spec: str, **options: Any) -> Any:
            return FakeEngine()
    else:
        factory = entrypoints.open_engine
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="segue-bench-gui-") as tmp:
        settings = GuiSettings(out_dir=str(Path(tmp) / "jobs"), osc_port=0, bars=args.bars, variants=args.variants,
                               seed=7)  # fmt: skip
        deps = SessionDeps(engine_factory=factory, output_factory=FakeOutput, midi_inputs=lambda: [], osc=False)
        pump = QtEventPump()
        session = Session(settings, None, deps, post=pump.post)
        pump.set_handler(session.apply)
        window = QtMainWindow(session)
        window.resize(1440, 900)
        window.show()
        session.start()
        try:
            t0 = time.monotonic()
            if not spin(lambda: session.models.engine.value.status != "opening", 120.0):
                raise RuntimeError("the engine did not open within 120 s")
            if session.models.engine.value.status != "ready":
                raise RuntimeError(f"the engine did not open: {session.models.engine.value}")
            engine_open_s = time.monotonic() - t0
            session.open_files([REGION])
            spin(lambda: False, 0.2)  # let the region's view settle
            recorder = GapRecorder(args.interval_ms)
            job_seconds = 0.5  # the warm-up round's idle phase; then each idle phase lasts as long as the last job
            for index in range(args.rounds + 1):  # round 0 warms up (first job: model load, caches)
                recorder.start()
                spin(lambda: False, job_seconds)
                idle = phase_summary(recorder.stop(), job_seconds)
                ended = _ended(session)
                recorder.start()
                t0 = time.perf_counter()
                if not session.generate():
                    raise RuntimeError(f"generate refused: {session.models.message.value}")
                done = spin(lambda ended=ended: _ended(session) > ended and _thumbnails_read(session), 300.0)
                job_seconds = time.perf_counter() - t0
                job = phase_summary(recorder.stop(), job_seconds)
                status = [r.status for r in session.models.jobs.value.rows]
                if not done or "done" not in status:
                    raise RuntimeError(f"the job did not finish: {status} {session.models.message.value}")
                if index > 0:
                    rounds.append({"idle": idle, "job": job})
        finally:
            session.close()
            window.close()
    return {"engine_open_seconds": round(engine_open_s, 1), "rounds": rounds}


def _ended(session: Any) -> int:
    return sum(1 for r in session.models.jobs.value.rows if r.status in ("done", "failed", "cancelled"))


def _thumbnails_read(session: Any) -> bool:
    items = session.models.variants.value.items
    return bool(items) and all(i.audio is not None or "audio" not in i.files for i in items)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--engine", choices=("local", "fake"), default="local")
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval-ms", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, as the app)")
    quick = {"bars": 2, "variants": 2, "rounds": 1}
    args = parse_bench_args(parser, argv, out="gui.json", quick_settings=quick)
    result = run(args)
    rounds = result["rounds"]
    sides: dict[str, dict[str, Any]] = {}
    for side in ("idle", "job"):
        phases = [r[side] for r in rounds]
        sides[side] = {
            "median_max_gap_ms": round(percentile([p["max_gap_ms"] for p in phases], 50), 1),
            "worst_gap_ms": max(p["max_gap_ms"] for p in phases),
            "median_p99_gap_ms": round(percentile([p["p99_gap_ms"] for p in phases], 50), 1),
            "stalls_over_50ms": sum(p["stalls_over_50ms"] for p in phases),
            "seconds": round(sum(p["seconds"] for p in phases), 1),
        }
    data = {
        "bench": "gui",
        "machine": machine(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        **result,
        "job": sides["job"],
        "idle": sides["idle"],
        "ratio": round(sides["job"]["median_max_gap_ms"] / sides["idle"]["median_max_gap_ms"], 2),
    }
    write_json(args.out, data)
    print(
        f"GUI event loop: {args.interval_ms} ms precise QTimer, offscreen window 1440x900, engine {args.engine}, "
        f"{args.variants} variants x {args.bars} bars of {REGION.name}, {args.rounds} alternating round(s)"
    )
    rows = [
        [name, s["median_max_gap_ms"], s["worst_gap_ms"], s["median_p99_gap_ms"], s["stalls_over_50ms"], s["seconds"]]
        for name, s in (("during a job", sides["job"]), ("idle (baseline)", sides["idle"]))
    ]
    header = ["window", "longest gap ms (median of rounds)", "worst gap ms", "p99 gap ms", "gaps > 50 ms", "seconds"]
    print(markdown_table(header, rows, right=(1, 2, 3, 4, 5)))
    print(f"ratio job / idle (longest gap): {data['ratio']}x (json: {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
