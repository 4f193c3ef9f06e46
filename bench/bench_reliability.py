"""Reliability figures (issue 14's table), measured the same way each run so that the next one can be compared.

    python bench/bench_reliability.py [--packets 10000] [--jobs 200] [--kills 10] [--quick]
                                      [--out bench/results/reliability.json]

1. **OSC flood.** A bridge process (the real :class:`bridge.osc.OscServer` over a started
   :class:`bridge.service.BridgeService` with the tests' fake engine, no torch) on 127.0.0.1 gets ``--packets``
   seeded random datagrams: random bytes, unknown addresses, ``/segue/*`` addresses with random arguments (wrong
   types, NaN, inf, 1e30, long strings, missing ones) and the issue's hostile messages (a region 1e30 beats long
   then ``/segue/generate``; a FIFO as the region's file). Sent in blocks of 200, each closed by a ``/segue/ping``
   that must be answered, so that the socket's buffer never drops them. Measured: the bridge process's CPU
   seconds (``utime + stime`` of ``/proc/PID/stat``) over the flood, per packet; the ``/segue/error`` answers;
   whether it still answers a ping at the end.
2. **Jobs.** ``--jobs`` continue jobs through the same bridge process (``/segue/region`` + ``/segue/generate``,
   one at a time, each awaited), its resident memory (``VmRSS``) after 10 warm-up jobs and after the last.
3. **kill -9.** ``--kills`` ``segue continue`` processes (fake engine, 3 variants, slow) killed with SIGKILL at
   a random moment (seeded) up to 1 s after their job folder appears, each followed by a ``segue continue`` in the same
   folder (which recovers what the killed one left); and ``--kills`` // 3 bridge processes killed mid-job,
   followed by a bridge service started on the folder. Counted: jobs left ``queued``/``running`` (0 expected),
   temp files and owner locks left (0 expected), jobs marked "interrupted".

Prints a table and writes bench/results/reliability.json. Nothing is asserted: the figures go in
docs/benchmarks.md and are compared by hand with the last run's.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from _common import ROOT, add_tests_support, bench_parser, machine, markdown_table, parse_bench_args, write_json
from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_packet import OscPacket

add_tests_support()  # the tests' fake engine
BLOCK = 200
ADDRESSES = ("/segue/region", "/segue/generate", "/segue/cancel", "/segue/choose", "/segue/status", "/segue/ping")
BRIDGE_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from fake_engine import FakeEngine
from bridge.osc import OscBridge, OscServer
from bridge.service import BridgeService
service = BridgeService(FakeEngine(hold_at={hold_at}), Path({out!r}), place="none")
service.start()
server = OscServer(OscBridge(service), "127.0.0.1", 0)
server.start()
print(server.address[1], flush=True)
sys.stdin.read()  # until the bench closes our stdin
server.close()
service.close()
"""
CONTINUE_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from fake_engine import FakeEngine
from bridge import cli
engine = FakeEngine(hold_at={hold_at})
sys.exit(cli.main(["continue", {region!r}, "--out", {out!r}, "--variants", "3"],
                  engine_factory=lambda spec, **options: engine))
"""


def _child(code: str, **values: Any) -> subprocess.Popen[str]:
    text = textwrap.dedent(code).format(tests=str(ROOT / "tests" / "support"), **values)
    return subprocess.Popen(
        [sys.executable, "-c", text],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Daw:
    """The client side: sends OSC to the bridge and reads its answers."""

    def __init__(self, port: int) -> None:
        self.to = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind(("127.0.0.1", 0))
        self.seen: dict[str, int] = {}

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.to)

    def msg(self, address: str, *args: Any) -> None:
        self.send(build_msg(address, list(args)).dgram)

    def wait_for(self, address: str, timeout_s: float = 30.0) -> list[Any] | None:
        """Read answers until ``address`` comes (its arguments) or the time is up (None); counts the others."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65_535)
            except TimeoutError:
                return None
            for item in OscPacket(data).messages:
                got = item.message.address
                self.seen[got] = self.seen.get(got, 0) + 1
                if got == address:
                    return list(item.message.params)
        return None

    def close(self) -> None:
        self.sock.close()


def random_packet(rng: random.Random, region: str, fifo: str) -> bytes:
    kind = rng.random()
    if kind < 0.3:
        return rng.randbytes(rng.randint(1, 512))
    if kind < 0.45:
        return build_msg(f"/{rng.choice(['segue', 'x', 'live'])}/{rng.randbytes(4).hex()}", [rng.random()]).dgram
    if kind < 0.55:  # the hostile messages
        hostile = [
            ("/segue/region", ["", region, 0.0, 1e30, 100.0, 4, 4, "t"]),
            ("/segue/generate", ["continue", 1, 1]),
            ("/segue/region", ["", fifo, 0.0, 8.0, 120.0, 4, 4, "fifo"]),
            ("/segue/region", ["", region, float("nan"), 8.0, 120.0, 4, 4, "nan"]),
            ("/segue/region", ["", "/" + "a" * 4096, 0.0, 8.0, 120.0, 4, 4, "long"]),
        ]
        address, args = rng.choice(hostile)
        return build_msg(address, args).dgram
    values: list[Any] = [
        rng.randint(-(2**31), 2**31 - 1),
        rng.choice([0.0, -1.0, 1e30, float("inf"), float("nan"), rng.uniform(-1e6, 1e6)]),
        rng.choice(["", "continue", "accompany", region, rng.randbytes(8).hex() * rng.randint(1, 100)]),
        rng.randbytes(rng.randint(0, 64)),
        rng.random() < 0.5,
    ]
    args = [rng.choice(values) for _ in range(rng.randint(0, 9))]
    try:
        return build_msg(rng.choice(ADDRESSES), args).dgram
    except Exception:  # a value python-osc cannot encode: send raw OSC with a bad type tag instead
        return b"/segue/region\0\0\0,q\0\0" + struct.pack(">i", rng.randint(0, 9))


def osc_and_jobs(packets: int, jobs: int, seed: int, folder: Path) -> dict[str, Any]:
    from fake_engine import write_midi_region

    region = str(write_midi_region(folder / "region.mid").resolve())
    fifo = folder / "region-fifo.mid"
    os.mkfifo(fifo)
    child = _child(BRIDGE_CHILD, out=str(folder / "out"), hold_at=0)
    assert child.stdout is not None
    daw = Daw(int(child.stdout.readline()))
    rng = random.Random(seed)
    result: dict[str, Any] = {}
    try:
        daw.msg("/segue/ping")
        if daw.wait_for("/segue/pong") is None:
            raise RuntimeError("the bridge did not answer its first ping")
        daw.seen.clear()
        cpu0, wall0 = cpu_seconds(child.pid), time.monotonic()
        sent = unanswered = 0
        while sent < packets:
            for _ in range(min(BLOCK, packets - sent)):
                daw.send(random_packet(rng, region, str(fifo)))
                sent += 1
            daw.msg("/segue/ping")
            if daw.wait_for("/segue/pong", 10.0) is None:
                unanswered += 1
        cpu = cpu_seconds(child.pid) - cpu0
        result["flood"] = {
            "packets": sent,
            "cpu_seconds": round(cpu, 3),
            "cpu_us_per_packet": round(cpu / sent * 1e6, 1),
            "wall_seconds": round(time.monotonic() - wall0, 2),
            "errors_answered": daw.seen.get("/segue/error", 0),
            "pings_unanswered": unanswered,
        }
        daw.msg("/segue/ping")
        result["flood"]["answers_ping_after"] = daw.wait_for("/segue/pong", 10.0) is not None
        daw.msg("/segue/cancel", "")  # nothing the flood started is still wanted
        result["jobs"] = run_jobs(daw, child.pid, region, jobs)
    finally:
        daw.close()
        child.stdin.close()  # type: ignore[union-attr]
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)
    return result


def run_jobs(daw: Daw, pid: int, region: str, jobs: int) -> dict[str, Any]:
    """``jobs`` continue jobs, one at a time; RSS after 10 warm-up jobs and after the last."""
    warmup = min(10, jobs)
    done = failed = 0
    before = float("nan")
    t0 = time.monotonic()
    for index in range(warmup + jobs):
        if index == warmup:
            before, t0 = rss_mb(pid), time.monotonic()
        daw.msg("/segue/region", "", region, 0.0, 8.0, 120.0, 4, 4, "bench")
        daw.msg("/segue/generate", "continue", 1, 1)
        while True:
            answer = daw.seen.copy()
            got_done = daw.wait_for("/segue/job/done", 0.05)
            if got_done is not None:
                done += index >= warmup
                break
            if daw.seen.get("/segue/job/failed", 0) > answer.get("/segue/job/failed", 0):
                failed += index >= warmup
                break
            if daw.seen.get("/segue/error", 0) > answer.get("/segue/error", 0):  # refused (queue full): retry
                time.sleep(0.1)
                daw.msg("/segue/generate", "continue", 1, 1)
    after = rss_mb(pid)
    return {
        "jobs": jobs,
        "done": done,
        "failed": failed,
        "rss_mb_before": round(before, 1),
        "rss_mb_after": round(after, 1),
        "rss_kb_per_job": round((after - before) * 1024 / max(1, jobs), 2),
        "seconds": round(time.monotonic() - t0, 1),
    }


def leftovers(out: Path) -> dict[str, Any]:
    """Jobs still queued/running, temp files and owner locks, and jobs marked interrupted, under ``out``."""
    from bridge.jobs import INTERRUPTED, list_jobs
    from engine.atomic import temp_owner

    records = [r for _, r in list_jobs(out)]
    hidden = [p for p in out.rglob(".*") if p.is_file()]
    return {
        "jobs": len(records),
        "left_running": sum(r.status in ("queued", "running") for r in records),
        "interrupted": sum(r.error is not None and r.error.message == INTERRUPTED for r in records),
        "temp_files": sum(temp_owner(p.name)[0] for p in hidden),
        "owner_locks": sum(p.name == ".owner" for p in hidden),
    }


def kill_continue(kills: int, seed: int, folder: Path) -> dict[str, Any]:
    from fake_engine import write_midi_region

    rng = random.Random(seed)
    region = str(write_midi_region(folder / "region.mid").resolve())
    out = folder / "continue-out"
    killed = exited = 0
    for _ in range(kills):
        jobs_before = set(out.glob("*/job.json")) if out.is_dir() else set()
        child = _child(CONTINUE_CHILD, region=region, out=str(out), hold_at=rng.randint(1, 3))
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:  # its job folder exists (imports take ~1 s)
            if out.is_dir() and set(out.glob("*/job.json")) - jobs_before:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.0))  # then a random moment: queued, running, between two variants
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            killed += 1
        else:
            exited += 1
        child.wait(10)
        after = _child(CONTINUE_CHILD, region=region, out=str(out), hold_at=0)  # the next run recovers
        after.wait(60)
    return {"runs": kills, "killed": killed, "exited_before_the_kill": exited, **leftovers(out)}


def kill_bridge(kills: int, folder: Path) -> dict[str, Any]:
    from fake_engine import FakeEngine, write_midi_region

    from bridge.service import BridgeService

    region = str(write_midi_region(folder / "region-b.mid").resolve())
    out = folder / "bridge-out"
    killed = 0
    for _ in range(kills):
        child = _child(BRIDGE_CHILD, out=str(out), hold_at=1)
        assert child.stdout is not None
        daw = Daw(int(child.stdout.readline()))
        daw.msg("/segue/region", "", region, 0.0, 8.0, 120.0, 4, 4, "bench")
        daw.msg("/segue/generate", "continue", 1, 2)
        started = daw.wait_for("/segue/job/started", 30.0)
        time.sleep(0.2)  # inside the engine (it holds until cancelled)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        daw.close()
        killed += started is not None
        service = BridgeService(FakeEngine(), out)  # type: ignore[arg-type]
        service.start()  # a new bridge (or the app) recovers at start
        service.close()
    return {"runs": kills, "killed_mid_job": killed, **leftovers(out)}


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--packets", type=int, default=10_000, help="random OSC packets (default 10000)")
    parser.add_argument("--jobs", type=int, default=200, help="jobs through the bridge after the flood (200)")
    parser.add_argument("--kills", type=int, default=10, help="segue continue processes killed (10)")
    parser.add_argument("--seed", type=int, default=14)
    quick = {"packets": 1000, "jobs": 20, "kills": 3}
    args = parse_bench_args(parser, argv, out="reliability.json", quick_settings=quick)
    logging.basicConfig(level=logging.ERROR)  # the recoveries' own warnings are what is counted here
    with tempfile.TemporaryDirectory(prefix="segue-bench-reliability-") as tmp:
        folder = Path(tmp)
        measured = osc_and_jobs(args.packets, args.jobs, args.seed, folder)
        measured["kill_continue"] = kill_continue(args.kills, args.seed, folder)
        measured["kill_bridge"] = kill_bridge(max(1, args.kills // 3), folder)
    data = {
        "bench": "reliability",
        "machine": machine(),
        "settings": {k: getattr(args, k) for k in ("packets", "jobs", "kills", "seed", "quick")},
        **measured,
    }
    write_json(args.out, data)
    flood, jobs = measured["flood"], measured["jobs"]
    kc, kb = measured["kill_continue"], measured["kill_bridge"]
    rows = [
        ["OSC flood: random packets", f"{flood['packets']:,}",
         f"{flood['errors_answered']:,} answered /segue/error; {flood['pings_unanswered']} block pings unanswered"],
        ["OSC flood: bridge CPU", f"{flood['cpu_seconds']:.2f} s ({flood['cpu_us_per_packet']:.0f} us/packet)",
         f"utime+stime of the bridge process; {flood['wall_seconds']:.1f} s wall"],
        ["OSC flood: answers ping after", "yes" if flood["answers_ping_after"] else "NO", ""],
        ["jobs through the bridge", f"{jobs['done']} done of {jobs['jobs']} ({jobs['failed']} failed)",
         f"fake engine, one at a time, {jobs['seconds']:.0f} s"],
        ["bridge memory (VmRSS)", f"{jobs['rss_mb_before']:.1f} -> {jobs['rss_mb_after']:.1f} MB",
         f"{jobs['rss_kb_per_job']:+.1f} KB/job, after 10 warm-up jobs"],
        ["segue continue killed -9", f"{kc['killed']} killed, {kc['left_running']} left running",
         f"{kc['interrupted']} marked interrupted, {kc['temp_files']} temp files, {kc['owner_locks']} owner locks "
         f"left ({kc['exited_before_the_kill']} ended before the kill)"],
        ["bridge killed -9 mid-job", f"{kb['killed_mid_job']} killed, {kb['left_running']} left running",
         f"{kb['interrupted']} marked interrupted, {kb['temp_files']} temp files, {kb['owner_locks']} owner locks "
         "left"],
    ]  # fmt: skip
    print(f"Reliability (seed {args.seed}{', quick' if args.quick else ''})")
    print(markdown_table(["measure", "figure", "notes"], rows))
    print(f"(json: {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
