"""Who owns a job folder, and recovering the ones whose owner died (shared by local jobs and the server's).

A process owns a job folder while it holds an exclusive ``flock`` on ``FOLDER/.owner``, from the moment it makes
the folder until it writes the job's final status. The kernel drops the lock when the process dies, however it
dies (``kill -9`` included), so a job that says ``running`` or ``queued`` and whose ``.owner`` can be locked is
stale: nobody will ever finish it. A second Segue running at the same time cannot take a live job's lock, so it
never marks that job failed. ``.owner`` also says which process owns the folder (its first line, JSON: pid,
start time, host), for people, and holds a small reserve of disk space: when the disk fills up mid-job, the
reserve is given back so that the job's last word ("failed: the disk is full ...") can still be written.

:func:`stale_folders` finds and takes the stale folders under a root; the caller records what became of each
(local jobs: ``failed``, "interrupted: ..."; the server: ``failed`` or queued again) and releases them.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from engine.atomic import DISK_FULL_ERRNOS, disk_full_error, pid_alive, remove_stray_temps
from engine.errors import DiskFullError, EngineError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the pid in .owner decides
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

OWNER_FILE = ".owner"
RESERVE_BYTES = 32 * 1024  # a failed job.json with its message fits many times over
ACTIVE_STATUSES = ("queued", "running")
_STARTED = time.time()
_NO_LOCKS = {e for e in (errno.ENOLCK, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", None), errno.EINVAL) if e}
T = TypeVar("T")


class FolderClaim:
    """This process's lock on one folder. :meth:`release` it when the job is final (or the folder is gone)."""

    def __init__(self, folder: Path, fd: int, reserve_bytes: int) -> None:
        self.folder = folder
        self._fd: int | None = fd
        self._reserve_bytes = reserve_bytes

    @property
    def held(self) -> bool:
        return self._fd is not None

    @classmethod
    def take(cls, folder: Path, *, reserve_bytes: int = RESERVE_BYTES) -> FolderClaim:
        """Own a folder this process has just made. :class:`~engine.errors.DiskFullError` when not even the
        owner file with its reserve fits; :class:`~engine.errors.EngineError` if another process owns it."""
        claim = cls.try_take(folder, reserve_bytes=reserve_bytes)
        if claim is None:
            raise EngineError(f"{folder} is in use by another Segue process")
        return claim

    @classmethod
    def try_take(cls, folder: Path, *, reserve_bytes: int = 0) -> FolderClaim | None:
        """Own ``folder`` if no live process does; None if one does."""
        path = folder / OWNER_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            if not _lock(fd, path):
                os.close(fd)
                return None
            _write_owner(fd, path, reserve_bytes)
        except OSError as e:
            os.close(fd)
            if e.errno in DISK_FULL_ERRNOS:
                raise disk_full_error(path, reserve_bytes) from e
            raise EngineError(f"cannot claim {folder}: {e.strerror or e}") from e
        return cls(folder, fd, reserve_bytes)

    def free_reserve(self) -> bool:
        """Give the reserved disk space back (for the job's last write); False if there was none."""
        if self._fd is None or self._reserve_bytes == 0:
            return False
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            return False
        self._reserve_bytes = 0
        return True

    def retry_on_full(self, write: Callable[[], T]) -> T:
        """``write()``; when the disk is full, free the reserve and try once more."""
        try:
            return write()
        except DiskFullError:
            if not self.free_reserve():
                raise
            log.warning("the disk is full at %s; used the folder's reserve to record the job's end", self.folder)
            return write()

    def release(self, *, remove: bool = True) -> None:
        """Stop owning the folder (and remove ``.owner``). Safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if remove:
            try:
                (self.folder / OWNER_FILE).unlink()
            except OSError:
                pass
        os.close(fd)

    def __del__(self) -> None:  # a claim dropped without release: the fd must not leak
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass


def manifest_status(folder: Path, manifest: str = "job.json") -> str | None:
    """The ``status`` a job folder's manifest holds; None when there is no readable manifest with one (not a job
    folder). The ``status_of`` that the bridge's and the server's recoveries hand :func:`stale_folders`."""
    try:
        data = json.loads((folder / manifest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    status = data.get("status") if isinstance(data, dict) else None
    return status if isinstance(status, str) else None


def stale_folders(
    root: Path, status_of: Callable[[Path], str | None], active: tuple[str, ...] = ACTIVE_STATUSES
) -> Iterator[tuple[Path, str, FolderClaim]]:
    """The folders under ``root`` whose status (``status_of(folder)``: None when it is not a job folder) is one
    of ``active`` and that no live process owns, each taken (its claim is the caller's to release) and with its
    temp files removed; the status is read again once the folder is taken, so a job that ended meanwhile is
    skipped. Temp files left by dead writers elsewhere under ``root`` are removed too."""
    if not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if status_of(folder) not in active:
            continue
        try:
            claim = FolderClaim.try_take(folder)
        except (EngineError, OSError) as e:
            log.warning("cannot check whether %s is still running: %s", folder, e)
            continue
        if claim is None:
            log.debug("%s belongs to a running Segue; left alone", folder)
            continue
        status = status_of(folder)
        if status not in active:  # it ended between the first look and the lock
            claim.release()
            continue
        remove_stray_temps(folder, any_writer=True)
        yield folder, status, claim
    remove_stray_temps(root)


def owner_of(folder: Path) -> dict[str, object] | None:
    """What ``.owner`` says (pid, started, host), or None when there is none or it cannot be read."""
    try:
        with (folder / OWNER_FILE).open("rb") as f:
            data = json.loads(f.readline() or b"null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _lock(fd: int, path: Path) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as e:  # a file system without flock (some network mounts): the pid decides
            if e.errno not in _NO_LOCKS:
                raise
            return _no_live_owner(path)
        return True
    return _no_live_owner(path)  # pragma: no cover - no fcntl (Windows)


def _no_live_owner(path: Path) -> bool:
    """Without locks: the folder is free unless ``.owner`` names a live process (this one included)."""
    owner = owner_of(path.parent)
    pid = owner.get("pid") if owner else None
    return not (isinstance(pid, int) and pid_alive(pid))


def _write_owner(fd: int, path: Path, reserve_bytes: int) -> None:
    text = json.dumps({"pid": os.getpid(), "started": _STARTED, "host": socket.gethostname()})
    data = text.encode() + b"\n" + os.urandom(reserve_bytes)  # the reserve: random, so no file system compresses it
    os.ftruncate(fd, 0)
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        offset += os.pwrite(fd, view[offset:], offset)
    if reserve_bytes:
        os.fsync(fd)
