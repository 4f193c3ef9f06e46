"""The server's front door, before any route runs: browsers, Host names, the token, the upload limit.

A pure ASGI middleware, so a refused request is answered before its body is read.
"""

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException

from engine.server.config import ServerConfig
from engine.wire import API_PREFIX

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEALTH_PATH = f"{API_PREFIX}/health"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


class BodyTooLarge(HTTPException):
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

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(413, detail=_too_large(received, limit))
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
