"""OSC round trip of the bridge: /segue/ping -> /segue/pong on loopback, against a plain UDP echo side by side.

    python bench/bench_osc.py [--pings 2000] [--rounds 10] [--quick] [--out bench/results/osc.json]

Segue: the bridge's real OSC server (:class:`bridge.osc.OscServer` over :class:`bridge.osc.OscBridge` over a started
:class:`bridge.service.BridgeService` with the tests' fake engine, no torch) on 127.0.0.1. Baseline: a thread that
sends every datagram straight back (``recvfrom`` -> ``sendto``), also Python, also on 127.0.0.1. One client socket
sends the same ``/segue/ping`` datagram to both and waits for the answer; the two alternate in blocks of
``pings / rounds``, so machine noise hits both alike. Latency = send to receive, ``time.perf_counter_ns``.
Prints a table and writes bench/results/osc.json.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from _common import bench_parser, loopback_bridge, machine, markdown_table, parse_bench_args, percentile, write_json
from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_packet import OscPacket

PING = build_msg("/segue/ping", []).dgram


class EchoServer:
    """The baseline: every datagram goes straight back to its sender."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-echo", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(65_535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.sock.sendto(data, sender)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.sock.close()


def round_trips(
    client: socket.socket, server: tuple[str, int], count: int, expect_pong: bool
) -> tuple[list[float], int]:
    """``count`` pings, one at a time; latencies in microseconds and how many got no answer within 1 s."""
    out: list[float] = []
    lost = 0
    for _ in range(count):
        t0 = time.perf_counter_ns()
        client.sendto(PING, server)
        try:
            data = client.recv(65_535)
        except TimeoutError:
            lost += 1
            continue
        t1 = time.perf_counter_ns()
        if expect_pong and OscPacket(data).messages[0].message.address != "/segue/pong":
            raise RuntimeError(f"expected /segue/pong, got {OscPacket(data).messages[0].message.address}")
        out.append((t1 - t0) / 1000.0)
    return out, lost


def summary(latencies: list[float], lost: int) -> dict[str, Any]:
    return {
        "count": len(latencies),
        "lost": lost,
        "median_us": round(percentile(latencies, 50), 1),
        "p99_us": round(percentile(latencies, 99), 1),
        "min_us": round(min(latencies), 1) if latencies else None,
        "max_us": round(max(latencies), 1) if latencies else None,
    }


def run(pings: int, rounds: int) -> dict[str, Any]:
    with loopback_bridge("segue-bench-osc-") as (osc, client):
        echo = EchoServer()
        echo.start()
        try:
            per_round = max(1, pings // rounds)
            round_trips(client, osc.address, 50, True)  # warm-up: imports, caches, the selector
            round_trips(client, echo.address, 50, False)
            samples: dict[str, list[float]] = {"segue": [], "baseline": []}
            lost = {"segue": 0, "baseline": 0}
            round_medians: dict[str, list[float]] = {"segue": [], "baseline": []}
            for _ in range(rounds):
                for name, address, pong in (("segue", osc.address, True), ("baseline", echo.address, False)):
                    got, missed = round_trips(client, address, per_round, pong)
                    samples[name] += got
                    lost[name] += missed
                    round_medians[name].append(percentile(got, 50))
        finally:
            echo.close()
    result = {name: summary(samples[name], lost[name]) for name in samples}
    for name in samples:
        result[name]["best_round_median_us"] = round(min(round_medians[name]), 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--pings", type=int, default=2000, help="pings to each server in all (default 2000)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating blocks (default 10)")
    args = parse_bench_args(parser, argv, out="osc.json", quick_settings={"pings": 200, "rounds": 4})
    result = run(args.pings, args.rounds)
    seg, base = result["segue"], result["baseline"]
    ratios = {
        "median": round(seg["median_us"] / base["median_us"], 2),
        "p99": round(seg["p99_us"] / base["p99_us"], 2),
    }
    data = {
        "bench": "osc",
        "machine": machine(),
        "settings": {"pings": args.pings, "rounds": args.rounds, "quick": args.quick},
        "segue": seg,
        "baseline": base,
        "ratio": ratios,
        "what": "/segue/ping -> /segue/pong through bridge.osc.OscServer on 127.0.0.1 vs a Python UDP echo thread",
    }
    write_json(args.out, data)
    rows = [
        [name, r["median_us"], r["p99_us"], r["best_round_median_us"], r["max_us"], r["lost"]]
        for name, r in (("Segue OSC bridge (ping -> pong)", seg), ("plain UDP echo (baseline)", base))
    ]
    print(f"OSC round trip on 127.0.0.1, {args.pings} pings each in {args.rounds} alternating rounds")
    print(markdown_table(["server", "median us", "p99 us", "best round median us", "max us", "lost"], rows,
                         right=(1, 2, 3, 4, 5)))  # fmt: skip
    print(f"ratio Segue / echo: median {ratios['median']}x, p99 {ratios['p99']}x (json: {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
