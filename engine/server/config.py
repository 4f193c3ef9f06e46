"""``segue serve`` settings, checked before anything listens: where, who may connect, which devices, limits."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.environment import Environment
from engine.errors import BadInputError
from engine.wire import check_token

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8750
DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # a 5-minute 24-bit stereo region at 96 kHz fits
_DEVICE = re.compile(r"^(cpu|cuda(:[0-9]{1,2})?|mps)$")
_SERVER_ID = re.compile(r"^[a-z0-9]{1,16}$")
TOKEN_HINT = "e.g. --token \"$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\""


def default_data_dir(environment: Environment | None = None) -> Path:
    """``$SEGUE_SERVER_DATA`` (of ``environment``; None: this process's) if set, else
    ``<user data dir>/segue/server``."""
    env = (environment or Environment.read()).server_data_dir
    if env is not None:
        return env
    try:
        import platformdirs

        return Path(platformdirs.user_data_dir("segue")) / "server"
    except ImportError:  # pragma: no cover - platformdirs is a base dependency
        return Path.home() / ".segue-server"


@dataclass(frozen=True)
class ServerConfig:
    """``host``/``port``: where to listen. ``token``: the bearer token every route but health needs (None: no
    token, allowed on a loopback address only). ``devices``: one worker thread per device, in this order.
    ``server_id``: a short prefix of this server's job ids, so a load balancer can route a job's requests to the
    server that has it (docs/remote.md). ``keep_days``: finished jobs are deleted this long after they finished
    (clients delete theirs once downloaded; this cleans up after clients that went away)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    devices: tuple[str, ...] = ("cpu",)
    data_dir: Path = field(default_factory=default_data_dir)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_queued_jobs: int = 64
    keep_days: float = 7.0  # finished jobs nobody deleted (a client that went away) are removed after this
    server_id: str = ""
    # a connection that has not sent its request headers this long after its first byte is closed; a request
    # body that stops arriving for body_timeout_s is answered 408 (engine/server/guard.py)
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    def check(self) -> None:
        """Raise :class:`BadInputError` naming the problem and what to do."""
        if not is_loopback(self.host) and not self.token:
            raise BadInputError(
                f"refusing to listen on {self.host} without a token: anyone who can reach that address could run "
                f"jobs on this machine and read their results. Give a token with --token TOKEN or $SEGUE_TOKEN "
                f"({TOKEN_HINT}), or listen on 127.0.0.1 only (the default)"
            )
        if self.token is not None:
            try:  # a token no client can send (spaces at its ends, control characters) would refuse everyone
                check_token(self.token, "segue serve")
            except BadInputError as e:
                raise BadInputError(f"{e}; {TOKEN_HINT}") from e
        if not 0 <= self.port <= 65535:
            raise BadInputError(f"port must be in 0..65535, got {self.port}")
        if not self.devices:
            raise BadInputError("--devices needs at least one device, e.g. cpu or cuda:0,cuda:1")
        for device in self.devices:
            if not _DEVICE.match(device):
                raise BadInputError(f"unknown device {device!r}: use cpu, cuda:0, cuda:1, ... (comma-separated)")
        if len(set(self.devices)) != len(self.devices):
            raise BadInputError(f"--devices names a device twice: {','.join(self.devices)}")
        if self.server_id and not _SERVER_ID.match(self.server_id):
            raise BadInputError(f"--server-id must be 1-16 characters a-z and 0-9, got {self.server_id!r}")
        if not self.keep_days > 0:
            raise BadInputError(f"--keep-days must be a positive number of days, got {self.keep_days:g}")
        for name in ("header_timeout_s", "body_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value <= 3600):
                raise BadInputError(f"{name} must be a number of seconds in (0, 3600], got {value!r}")
        if self.max_upload_bytes < 1024:
            raise BadInputError(f"the upload limit must be at least 1 KiB, got {self.max_upload_bytes} bytes")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_devices(text: str | None) -> tuple[str, ...]:
    """``"cuda:0,cuda:1"`` -> ``("cuda:0", "cuda:1")``; None or ``"auto"``: every CUDA device, else the CPU."""
    if text is None or text.strip() in ("", "auto"):
        return auto_devices()
    return tuple(d.strip() for d in text.split(",") if d.strip())


def auto_devices() -> tuple[str, ...]:
    try:
        import torch

        count = int(torch.cuda.device_count())
    except Exception:  # no torch or no driver: the CPU
        count = 0
    return tuple(f"cuda:{i}" for i in range(count)) or ("cpu",)


def check_devices_exist(devices: tuple[str, ...]) -> None:
    """For the real engine: every ``cuda:N`` must be a device torch sees here (BadInputError otherwise)."""
    wanted = [d for d in devices if d.startswith("cuda")]
    if not wanted:
        return
    try:
        import torch

        count = int(torch.cuda.device_count())
    except Exception:  # no torch, or no driver
        count = 0
    for device in wanted:
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= count:
            raise BadInputError(
                f"--devices names {device}, but this machine has {count} CUDA device(s) that torch can use; "
                f"give --devices {','.join(f'cuda:{i}' for i in range(count)) or 'cpu'}"
            )
