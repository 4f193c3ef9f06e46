"""Helpers for the OSC tests: a recording send function and a small UDP listener that plays the DAW.

Not a test module: ``from osc_helpers import Recorder, DawSocket``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_packet import OscPacket

CLIENT = ("127.0.0.1", 50_000)  # a fake sender for tests without sockets


class Recorder:
    """A ``send(to, address, args)`` that keeps what it was given; ``wait_for`` blocks (bounded) until one comes."""

    def __init__(self) -> None:
        self.sent: list[tuple[tuple[str, int], str, list[Any]]] = []
        self._cond = threading.Condition()

    def __call__(self, to: tuple[str, int], address: str, args: Sequence[Any]) -> None:
        with self._cond:
            self.sent.append((to, address, list(args)))
            self._cond.notify_all()

    def addresses(self) -> list[str]:
        with self._cond:
            return [address for _, address, _ in self.sent]

    def of(self, address: str) -> list[list[Any]]:
        with self._cond:
            return [args for _, a, args in self.sent if a == address]

    def wait_for(self, address: str, count: int = 1, timeout: float = 5.0) -> list[list[Any]]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len([1 for _, a, _ in self.sent if a == address]) >= count, timeout)
        assert ok, f"no {address} within {timeout} s; got {self.addresses()}"
        return self.of(address)

    def clear(self) -> None:
        with self._cond:
            self.sent.clear()


class DawSocket:
    """A UDP socket on 127.0.0.1 that sends OSC to the bridge and reads the replies (with timeouts)."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.received: list[tuple[str, list[Any]]] = []

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def send(self, address: str, *args: Any) -> None:
        self.sock.sendto(build_msg(address, list(args)).dgram, self.server)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def expect(self, address: str, timeout: float = 5.0) -> list[Any]:
        """The arguments of the next ``address`` message (others are kept in ``received``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {address} within {timeout} s; last received: {[a for a, _ in self.received[-5:]]}"
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65_535)
            except TimeoutError:
                continue
            for timed in OscPacket(data).messages:
                message = timed.message
                self.received.append((message.address, list(message.params)))
                if message.address == address:
                    return list(message.params)

    def ping(self, attempts: int = 5, timeout: float = 2.0) -> list[Any]:
        """Ping until a pong comes back (UDP may drop a datagram when a burst fills a buffer)."""
        for _ in range(attempts - 1):
            self.send("/segue/ping")
            try:
                return self.expect("/segue/pong", timeout)
            except AssertionError:
                continue
        self.send("/segue/ping")
        return self.expect("/segue/pong", timeout)

    def close(self) -> None:
        self.sock.close()
