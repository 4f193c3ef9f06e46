"""Segue Link load on the bridge: N plugin instances reporting their host's transport, on loopback.

    python bench/bench_link.py [--instances 20] [--seconds 5] [--quick] [--out bench/results/link.json]

Segue: the bridge's real OSC server (:class:`bridge.osc.OscServer` over :class:`bridge.osc.OscBridge` with
:class:`bridge.link.LinkEndpoint`, a started :class:`bridge.service.BridgeService` with the tests' fake engine) on
127.0.0.1. Load: N fake instances (one UDP socket each, as the plugin has) send ``/segue/link/hello`` every 2 s and
``/segue/link/transport`` 10 times a second (the plugin's most while playing). Measured: the CPU time of the
bridge's OSC thread (``/proc/self/task/TID/stat``) per second of that load alone, then the ``/segue/status`` round
trip from a DAW socket under the same load, against the same round trip with no plugin talking (baseline, first);
and the CPU cost of handling one transport message in-process (no sockets).
Prints a table and writes bench/results/link.json.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from _common import bench_parser, loopback_bridge, machine, markdown_table, parse_bench_args, percentile, write_json
from pythonosc.osc_message_builder import OscMessageBuilder, build_msg

STATUS = build_msg("/segue/status", []).dgram


def transport_message(instance_id: str, beats: float) -> bytes:
    builder = OscMessageBuilder("/segue/link/transport")
    for value, tag in ((instance_id, "s"), (97.5, "f"), (3, "i"), (4, "i"), (beats, "d"), (1, "i")):
        builder.add_arg(value, tag)
    return builder.build().dgram


def thread_cpu_s(native_id: int) -> float:
    """User + system CPU seconds of one thread of this process."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Plugins:
    """N fake instances: hello every 2 s, transport 10 times a second, each from its own socket."""

    def __init__(self, server: tuple[str, int], count: int) -> None:
        self.server = server
        self.sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
        for sock in self.sockets:
            sock.bind(("127.0.0.1", 0))
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-plugins", daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        tick = 0
        while not self._stop.is_set():
            for n, sock in enumerate(self.sockets):
                if tick % 20 == 0:
                    sock.sendto(build_msg("/segue/link/hello", [f"i{n}", f"Track {n}", "", 48000, "bench"]).dgram,
                                self.server)  # fmt: skip
                    self.sent += 1
                sock.sendto(transport_message(f"i{n}", tick * 0.1625), self.server)  # 97.5 BPM: 0.1625 qn / 0.1 s
                self.sent += 1
            tick += 1
            self._stop.wait(max(0.0, start + tick * 0.1 - time.monotonic()))

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        for sock in self.sockets:
            sock.close()


def status_round_trips(client: socket.socket, server: tuple[str, int], count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter_ns()
        client.sendto(STATUS, server)
        try:
            client.recv(65_535)
        except TimeoutError:
            continue
        out.append((time.perf_counter_ns() - t0) / 1000.0)
        time.sleep(0.002)
    return out


def handling_cost(bridge: Any, count: int = 5000) -> float:
    """CPU microseconds per ``/segue/link/transport`` handled in-process (decode, check, registry), no sockets."""
    bridge.attach(lambda to, address, args: None)
    for n in range(20):
        hello = build_msg("/segue/link/hello", [f"i{n}", f"Track {n}", "", 48000, "bench"]).dgram
        bridge.handle_datagram(hello, ("127.0.0.1", 40_000 + n))
    messages = [transport_message(f"i{n % 20}", n * 0.1) for n in range(count)]
    t0 = time.process_time()
    for message in messages:
        bridge.handle_datagram(message, ("127.0.0.1", 40_000))
    return (time.process_time() - t0) / count * 1e6


def run(instances: int, seconds: float) -> dict[str, Any]:
    from bridge.link import LinkEndpoint, LinkRegistry, link_transport

    registry = LinkRegistry()
    handling_us = 0.0

    def prepare(bridge: Any) -> None:
        nonlocal handling_us
        LinkEndpoint(bridge, registry)
        handling_us = handling_cost(bridge)

    with loopback_bridge("segue-bench-link-", link_transport(registry, None), prepare) as (osc, client):
        osc_thread = next(t for t in threading.enumerate() if t.name == "segue-osc")
        assert osc_thread.native_id is not None
        status_round_trips(client, osc.address, 50)  # warm-up
        idle = status_round_trips(client, osc.address, 200)
        plugins = Plugins(osc.address, instances)
        plugins.start()
        cpu0, t0, sent0 = thread_cpu_s(osc_thread.native_id), time.monotonic(), plugins.sent
        time.sleep(seconds)  # the load alone: the OSC thread's CPU
        cpu1, t1, sent1 = thread_cpu_s(osc_thread.native_id), time.monotonic(), plugins.sent
        loaded: list[float] = []
        while time.monotonic() - t1 < seconds:  # then /segue/status round trips under the same load
            loaded += status_round_trips(client, osc.address, 20)
        live = len(registry.instances())
        state = registry.transport()
        plugins.close()
    return {
        "instances": instances,
        "in_process_us_per_transport": round(handling_us, 1),
        "live_instances_seen": live,
        "clock_source": state.clock_source if state is not None else "none",
        "messages_per_s": round((sent1 - sent0) / (t1 - t0), 1),
        "osc_thread_cpu_percent": round(100.0 * (cpu1 - cpu0) / (t1 - t0), 2),
        "status_idle_median_us": round(percentile(idle, 50), 1),
        "status_idle_p99_us": round(percentile(idle, 99), 1),
        "status_loaded_median_us": round(percentile(loaded, 50), 1),
        "status_loaded_p99_us": round(percentile(loaded, 99), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--instances", type=int, default=20, help="fake plugin instances (default 20)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of load (default 5)")
    args = parse_bench_args(parser, argv, out="link.json", quick_settings={"seconds": 2.0})
    result = run(args.instances, args.seconds)
    write_json(args.out, {"bench": "link", "machine": machine(), "settings": vars(args) | {"out": str(args.out)},
                          "result": result})  # fmt: skip
    r = result
    rows = [
        ["no plugin (baseline)", "-", "-", r["status_idle_median_us"], r["status_idle_p99_us"]],
        [f"{r['instances']} instances, hello 0.5/s + transport 10/s each", r["messages_per_s"],
         r["osc_thread_cpu_percent"], r["status_loaded_median_us"], r["status_loaded_p99_us"]],
    ]  # fmt: skip
    print(f"Segue Link load on the bridge's OSC thread, {args.seconds:g} s ({r['live_instances_seen']} live, "
          f"clock {r['clock_source']})")  # fmt: skip
    print(markdown_table(["load", "messages/s", "OSC thread CPU %", "/segue/status median us", "p99 us"], rows,
                         right=(1, 2, 3, 4)))  # fmt: skip
    print(f"in-process handling of one /segue/link/transport (decode, check, registry): "
          f"{r['in_process_us_per_transport']} us of CPU (json: {args.out})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
