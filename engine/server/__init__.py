"""``segue serve``: the engine over HTTP, for the bridge and the GUI on other computers (docs/remote.md).

:func:`create_app` builds the FastAPI app (:mod:`engine.server.app`); :func:`serve` checks the settings, binds
the socket and runs it with uvicorn until Ctrl-C or SIGTERM. The client is :class:`engine.remote.RemoteEngine`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.server.config import ServerConfig, check_devices_exist, is_loopback, parse_devices
from engine.server.workers import EngineFactory

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

__all__ = ["ServerConfig", "create_app", "serve", "parse_devices"]


def create_app(config: ServerConfig, engine_factory: EngineFactory | None = None) -> FastAPI:
    """The FastAPI app (imports FastAPI only when called)."""
    from engine.server.app import create_app as _create

    return _create(config, engine_factory)


def serve(
    config: ServerConfig,
    engine_factory: EngineFactory | None = None,
    say: Callable[[str], None] = print,  # noqa: T201 - the entry point's own output
) -> int:
    """Run the server in this thread until it is stopped; returns 0. :class:`BadInputError` for bad settings."""
    config.check()
    try:
        import uvicorn

        from engine.server.app import create_app as _create
        from engine.server.guard import http_protocol
    except ImportError as e:
        from engine.errors import EngineError

        raise EngineError(
            f"segue serve needs the server extra ({e.name} is missing): pip install 'segue[server]'"
        ) from e
    if engine_factory is None:  # the local engine: its devices must exist here
        check_devices_exist(config.devices)
    app = _create(config, engine_factory)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level="info",
        timeout_graceful_shutdown=3,
        proxy_headers=False,
        server_header=False,
        http=http_protocol(config),  # stalled request headers are timed out (uvicorn times out idle ones only)
    )
    sock = uv_config.bind_socket()
    port = sock.getsockname()[1]
    host = f"[{config.host}]" if ":" in config.host else config.host
    auth = "token required" if config.token else "no token (this computer only)"
    say(f"segue serve: listening on http://{host}:{port} ({auth}; devices {','.join(config.devices)}; "
        f"jobs in {config.data_dir})")  # fmt: skip
    if not is_loopback(config.host):
        say("segue serve: plain HTTP; put it behind TLS (a reverse proxy) or a VPN off a trusted network")
    try:
        uvicorn.Server(uv_config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops gracefully, then re-raises Ctrl-C
        pass
    say("segue serve: stopped")
    return 0
