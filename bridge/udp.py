"""One UDP endpoint for Segue's OSC (:class:`bridge.osc.OscServer`) and the DAW adapters' feedback
(:class:`bridge.adapters.base.OscLink`): a socket with a large receive buffer, read by one thread that hands every
datagram in turn to ``receive(data, sender)`` (handlers never block, so a flood of packets cannot pile up threads),
and sends from the same socket (so a DAW that answers the sender's port answers us)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from pythonosc.osc_server import BlockingOSCUDPServer

log = logging.getLogger(__name__)

Address = tuple[str, int]
Receive = Callable[[bytes, Address], None]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a UDP socket can bind ``(host, port)`` now (another program may take it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class _DatagramServer(BlockingOSCUDPServer):
    def __init__(self, address: Address, receive: Receive, what: str, max_packet_size: int) -> None:
        self.receive = receive
        self.what = what
        self.max_packet_size = max_packet_size  # type: ignore[misc]  # per server here, a class default in typeshed
        super().__init__(address, None)  # type: ignore[arg-type]  # datagrams go to `receive`, not a dispatcher

    def server_bind(self) -> None:
        with contextlib.suppress(OSError):  # room for a burst of datagrams; the OS may cap it
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        super().server_bind()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return True  # garbage is the receiver's to answer or ignore

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.receive(bytes(request[0]), (str(client_address[0]), int(client_address[1])))

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.error("error handling %s from %s", self.what, client_address, exc_info=True)


class UdpEndpoint:
    """Bind ``address`` (port 0: any free one; :class:`OSError` when it cannot), then :meth:`start` the reading
    thread; :meth:`close` may be called twice."""

    def __init__(
        self, address: Address, receive: Receive, thread_name: str, what: str, max_packet_size: int = 8192
    ) -> None:
        self._server = _DatagramServer(address, receive, what, max_packet_size)
        self._thread_name = thread_name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def address(self) -> Address:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._server.serve_forever,
                    kwargs={"poll_interval": 0.1},
                    name=self._thread_name,
                    daemon=True,
                )
                self._thread.start()

    def sendto(self, data: bytes, to: Address) -> None:
        """Send one datagram; :class:`OSError` as the socket raises it (the caller decides what UDP loss means)."""
        self._server.socket.sendto(data, to)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._server.shutdown()
            thread.join(5.0)
        with contextlib.suppress(OSError):
            self._server.server_close()
