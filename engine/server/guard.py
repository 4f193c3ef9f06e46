"""The server's front door, before any route runs: browsers, Host names, the token, the upload limit, and time.

A pure ASGI middleware, so a refused request is answered before its body is read. Time: a connection must send
its request's headers within ``ServerConfig.header_timeout_s`` of its first byte (of connecting, for a new one),
or the server closes it (:func:`http_protocol`, uvicorn's h11 protocol with that timer; uvicorn itself only times
out idle keep-alive connections); a request body that stops arriving for ``body_timeout_s`` is answered 408.
"""

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
from fastapi import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from engine.server.config import ServerConfig
from engine.wire import API_PREFIX

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEALTH_PATH = f"{API_PREFIX}/health"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


log = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    pass


class BodyStalled(HTTPException):
    pass


@dataclasses.dataclass
class GuardMiddleware:
    """Refuses browsers, foreign Host names on a token-less server, and bodies over the upload limit (from the
    Content-Length before reading, and while reading a body sent without one)."""

    app: ASGIApp
    config: ServerConfig

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        limit = self.config.max_upload_bytes
        if "origin" in headers:
            await _refuse(send, 403, "this server does not answer browsers (requests with an Origin header)")
            return
        if self.config.token is None and _host_name(headers.get("host", "")) not in LOOPBACK_HOSTS:
            await _refuse(send, 421, "a server without a token answers only requests to 127.0.0.1 or localhost")
            return
        if self.config.token is not None and scope.get("path") != HEALTH_PATH:  # before any body is read
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token_matches(given.strip(), self.config.token):
                what = "a missing" if not given else "a wrong"
                await _refuse(send, 401, token_detail(what), [(b"www-authenticate", b"Bearer")])
                return
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _refuse(send, 400, "bad Content-Length")
                return
            if int(length) > limit:
                await _refuse(send, 413, _too_large(int(length), limit))
                return
        received = 0
        body_done = False
        stall_s = self.config.body_timeout_s

        async def limited() -> Message:
            nonlocal received, body_done
            if body_done:  # after the body, receive() waits for the client to go (a streamed response's end)
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), stall_s)
            except TimeoutError as e:
                raise BodyStalled(408, detail=_stalled(received, stall_s), headers={"connection": "close"}) from e
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(413, detail=_too_large(received, limit))
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        await self.app(scope, limited, send)


def token_matches(given: str, token: str) -> bool:
    """Constant time, also in the length: both sides are hashed to 32 bytes before :func:`hmac.compare_digest`."""
    digest = hashlib.sha256
    return hmac.compare_digest(digest(given.encode("utf-8", "replace")).digest(), digest(token.encode()).digest())


def token_detail(what: str) -> str:
    return f"{what} token: this server needs the header 'Authorization: Bearer TOKEN' with its --token"


def _too_large(size: int, limit: int) -> str:
    return (
        f"the upload is too large ({size / 2**20:.2f} MiB; this server takes at most {limit / 2**20:.2f} MiB): "
        "send a shorter region, or start the server with a larger --max-upload-mb"
    )


def _stalled(received: int, stall_s: float) -> str:
    return (
        f"the request body stopped arriving ({received} bytes came, then nothing for {stall_s:g} s); "
        "check the network and send it again"
    )


def http_protocol(config: ServerConfig) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete within
    ``config.header_timeout_s`` of the request's first byte (a new connection: of connecting). A client that
    opens connections and sends nothing, or a header a byte at a time, holds nothing for longer than that."""

    class HeaderTimeoutProtocol(H11Protocol):
        header_timeout_s = config.header_timeout_s
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE and self._header_timer is None:
                self._arm_header_timer()  # the first byte of a further request on a kept-alive connection
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._cancel_header_timer()

        def on_response_complete(self) -> None:
            self._cancel_header_timer()  # uvicorn's keep-alive timer takes over until the next request
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                who = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
                log.info("closing the connection of %s: no complete request headers within %g s", who,
                         self.header_timeout_s)  # fmt: skip
                self.transport.close()

    return HeaderTimeoutProtocol


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _refuse(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += extra or []
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
