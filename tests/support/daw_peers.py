"""The test's own side in integration tests with a DAW (see ardour_procs.py): :class:`OscPeer`, a plain python-osc
UDP client on 127.0.0.1 that keeps every message it receives with the time it arrived; :class:`ClockObserver`,
which stamps the clocks on a MIDI port as they arrive (the test's own ear); :func:`start_bridge`, which runs
``segue bridge`` as a subprocess on the JACK server. Not a test module.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ardour_procs import MIDI_CLOCK_OUT
from jack_procs import JackServer, stop_process, wait_until
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() on arrival
    address: str
    args: tuple[Any, ...]


class OscPeer:
    """A plain OSC client on 127.0.0.1 (python-osc messages over a UDP socket) that records what it receives."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.received: list[Received] = []
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="osc-peer", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def send(self, address: str, *args: Any) -> None:
        """Send one message; a ``(tag, value)`` pair fixes the OSC type (``("h", 96000)``)."""
        builder = OscMessageBuilder(address=address)
        for arg in args:
            if isinstance(arg, tuple):
                builder.add_arg(arg[1], arg[0])
            else:
                builder.add_arg(arg)
        self.sock.sendto(builder.build().dgram, self.target)

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(65_535)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            try:
                messages = [m.message for m in OscPacket(data).messages if isinstance(m.message, OscMessage)]
            except Exception:  # noqa: BLE001 - not OSC: ignore it
                continue
            with self._cond:
                self.received.extend(Received(now, m.address, tuple(m.params)) for m in messages)
                self._cond.notify_all()

    def of(self, address: str, since: float = 0.0) -> list[Received]:
        with self._cond:
            return [r for r in self.received if r.address == address and r.at >= since]

    def wait_for(self, address: str, since: float = 0.0, timeout: float = 5.0) -> Received:
        """The first ``address`` message that arrived at or after ``since`` (bounded wait)."""
        with self._cond:
            found = self._cond.wait_for(
                lambda: any(r.address == address and r.at >= since for r in self.received), timeout
            )
            seen = sorted({r.address for r in self.received[-50:]})
        assert found, f"no {address} within {timeout} s (recently: {seen})"
        return self.of(address, since)[0]

    def request(self, address: str, reply: str, *args: Any, timeout: float = 5.0) -> Received:
        """Send ``address`` and wait for the next ``reply``."""
        since = time.monotonic()
        self.send(address, *args)
        return self.wait_for(reply, since, timeout)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2)
        self.sock.close()


class ClockObserver:
    """The test's own ear on a MIDI clock port: python-rtmidi (JACK API) stamps every clock with
    ``time.monotonic()`` as it arrives, as the bridge does, so the tempo the port really delivered in wall-clock
    time can be set beside what the bridge reports (a JACK dummy server that falls behind under load slows the
    whole session down, clock included)."""

    def __init__(self, port: str = MIDI_CLOCK_OUT) -> None:
        import rtmidi

        self.midi = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, "segue-test-ear")
        self.midi.ignore_types(sysex=True, timing=False, active_sense=True)
        ports = self.midi.get_ports()
        matches = [i for i, name in enumerate(ports) if name == port or name.endswith(port)]
        assert matches, f"no MIDI port {port!r} among {ports}"
        self.events: list[tuple[float, int]] = []  # (time.monotonic(), status byte)
        self._lock = threading.Lock()
        self.midi.set_callback(self._on_message)
        self.midi.open_port(matches[0], "clock-in")

    def _on_message(self, event: tuple[list[int], float], data: object = None) -> None:
        now = time.monotonic()
        with self._lock:
            self.events.append((now, event[0][0]))

    def clocks_since_start(self, until: float) -> list[float]:
        """Arrival times of the clocks after the last Start (0xFA) before ``until``."""
        with self._lock:
            events = [e for e in self.events if e[0] <= until]
        starts = [i for i, (_, status) in enumerate(events) if status == 0xFA]
        first = starts[-1] + 1 if starts else 0
        return [at for at, status in events[first:] if status == 0xF8]

    def tempo(self, until: float, window_ticks: int = 384, skip_ticks: int = 0) -> tuple[float, int]:
        """(BPM, clocks used): a least-squares line through the arrival times of the last ``window_ticks`` clocks
        before ``until``, leaving out the first ``skip_ticks`` after Start."""
        import numpy as np

        clocks = self.clocks_since_start(until)[skip_ticks:][-window_ticks:]
        assert len(clocks) >= 24, f"only {len(clocks)} clocks heard"
        slope = float(np.polyfit(np.arange(len(clocks)), np.array(clocks) - clocks[0], 1)[0])
        return 60.0 / (24 * slope), len(clocks)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.midi.close_port()
        del self.midi


def start_bridge(
    args: Sequence[str], server: JackServer, workdir: Path, timeout: float = 30.0
) -> tuple[subprocess.Popen[str], tuple[str, int], Path]:
    """Run ``segue bridge --osc-port 0 ARGS`` (the venv's own console script) with the JACK environment; wait for
    its "listening for OSC on HOST:PORT" line. Returns the process, that address, and its log file (stderr)."""
    segue = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "segue"
    command = [str(segue) if segue.exists() else "segue", "bridge", "--osc-port", "0", *args]
    log_path = workdir / f"bridge-{len(list(workdir.glob('bridge-*.log')))}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, env=server.env, cwd=workdir)
    log.close()
    pattern = re.compile(r"listening for OSC on ([\d.]+):(\d+)")
    found: list[re.Match[str]] = []

    def listening() -> bool:
        match = pattern.search(log_path.read_text(errors="replace"))
        if match:
            found.append(match)
        return bool(match) or proc.poll() is not None

    if not wait_until(listening, timeout) or not found:
        stop_process(proc)  # type: ignore[arg-type]
        pytest.fail(f"segue bridge did not start within {timeout:g} s:\n{log_path.read_text(errors='replace')[-3000:]}")
    return proc, (found[0].group(1), int(found[0].group(2))), log_path


__all__ = ["ClockObserver", "OscPeer", "Received", "start_bridge"]
