"""What every bench script shares: its parser (--quick, --out), the machine it ran on, writing its JSON atomically,
small statistics.

Not a benchmark: ``from _common import machine, write_json``. Running ``python bench/NAME.py`` puts ``bench/`` on
``sys.path``; importing this module puts the checkout's root there too (first), so a script's ``engine``/``bridge``
imports after it are this checkout's.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TESTS_SUPPORT = ROOT / "tests" / "support"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def add_tests_support() -> None:
    """Put ``tests/support`` (the tests' fake engine, material and perturbations) on ``sys.path``, once."""
    if str(TESTS_SUPPORT) not in sys.path:
        sys.path.insert(0, str(TESTS_SUPPORT))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int | None = None, probe_gpu: bool = False) -> dict[str, Any]:
    """CPU model, cores, torch version (if installed), date, load average: where and when a figure was taken.

    torch is imported (seconds) only when ``probe_gpu`` asks whether a CUDA device is there or it is imported
    already; else its version comes from the installed package's metadata."""
    torch_version: str | None = None
    gpu: str | None = None
    if probe_gpu or "torch" in sys.modules:
        try:
            import torch

            torch_version = torch.__version__
            gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        except ImportError:
            pass
    else:
        try:
            torch_version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            pass
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch_version,
        "gpu": gpu,
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if threads is not None:
        info["threads"] = threads
    return info


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """A bench script's parser: its module docstring as the description, line breaks kept."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def audio_job_arguments(parser: argparse.ArgumentParser) -> None:
    """The audio benches' job: ``--tempo`` (100), ``--bars`` (8), ``--variants`` (4), ``--repeats`` (2),
    ``--threads`` (2)."""
    parser.add_argument("--tempo", type=float, default=100.0)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)


def parse_bench_args(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    *,
    out: str,
    quick: str | None = None,
    quick_settings: Mapping[str, Any] | None = None,
) -> argparse.Namespace:
    """Add ``--quick`` (a smaller run) and ``--out`` (default bench/results/OUT) after the script's own options,
    then parse ``argv``. With ``--quick`` the options named in ``quick_settings`` take those values (whatever the
    command line said); its help is ``quick``, else those values."""
    if quick is None:
        quick = "a smaller run: " + ", ".join(
            _option_text(name, value) for name, value in (quick_settings or {}).items()
        )
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--out", type=Path, default=RESULTS / out)
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in (quick_settings or {}).items():
            setattr(args, name, value)
    return args


def _option_text(name: str, value: Any) -> str:
    shown = " ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return f"--{name.replace('_', '-')} {shown}"


@contextlib.contextmanager
def loopback_bridge(
    prefix: str, transport: Any = None, prepare: Callable[[Any], None] | None = None
) -> Iterator[tuple[Any, socket.socket]]:
    """The bridge's real OSC server on 127.0.0.1 and a client socket (1 s timeout) to reach it: a started
    :class:`bridge.service.BridgeService` with the tests' fake engine (it puts ``tests/support`` on ``sys.path``) and
    ``transport``, in a temporary folder named ``prefix...``; ``prepare(bridge)`` runs on its
    :class:`bridge.osc.OscBridge` before the :class:`bridge.osc.OscServer` starts. Yields ``(server, client)``;
    closes the client, the server and the service after."""
    add_tests_support()
    from fake_engine import FakeEngine

    from bridge.osc import OscBridge, OscServer
    from bridge.service import BridgeService

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        service = BridgeService(FakeEngine(), Path(tmp), transport=transport)
        service.start()
        bridge = OscBridge(service)
        if prepare is not None:
            prepare(bridge)
        osc = OscServer(bridge, "127.0.0.1", 0)
        osc.start()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.settimeout(1.0)
        try:
            yield osc, client
        finally:
            client.close()
            osc.close()
            service.close()


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False, default=_jsonable) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median_cpu_ms(fn: Callable[[], None], repeats: int) -> float:
    """Median CPU milliseconds of ``repeats`` calls of ``fn`` (CPU, not wall: other people's work moves the wall
    clock)."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return sorted(times)[len(times) // 2] * 1e3


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
