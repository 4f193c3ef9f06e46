"""The one way Segue writes a file: a temp file in the target's folder, flushed to disk, checked, then renamed.

Every write goes through :func:`write_bytes` (bytes made in memory: JSON, WAV, MIDI, weights), :func:`write_stream`
(blocks that arrive over time: uploads, downloads) or :func:`write_with` (a library that insists on writing a path
itself). Each one

1. writes ``.<name>.<pid>-<random>.tmp<suffix>`` next to the target (same file system, so the rename is atomic);
2. flushes and ``fsync``\\ s it;
3. checks what is on disk: its size in bytes, and what the caller's ``check`` reads back (a WAV's frames, channels
   and rate), so a short write never gets a final name. This is a plain ``if``, not ``assert``: it holds under
   ``PYTHONOPTIMIZE``;
4. gives it the final name: ``os.replace`` when overwriting is allowed, else a hard link that fails if the name
   is taken (Segue never overwrites a file it did not make).

A full disk (``ENOSPC``, or a quota's ``EDQUOT``), wherever it shows up, becomes :class:`~engine.errors.DiskFullError`:
"the disk is full at PATH: free N MB and run again". The temp file is removed whatever happens; a process killed
mid-write leaves it behind, and :func:`remove_stray_temps` clears those at the next start (the temp's name holds
its writer's pid, so a live writer's file is never taken from under it).

No torch, numpy or soundfile here: the bridge, the GUI and ``engine/api.py`` import this.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from engine.errors import DiskFullError, EngineError, SegueError

log = logging.getLogger(__name__)

Check = Callable[[Path], str | None]
"""``check(temp_path)`` reads back what was written and returns what is wrong with it, or None when it is right."""

DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)
_DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded", "os error 28", "errno 28")
MB = 1_000_000
STALE_TEMP_AGE_S = 3600.0  # a temp file whose writer is unknown counts as stray after an hour
_OURS = re.compile(r"^\..+\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp(\.[A-Za-z0-9]{1,12})?$")
# what Segue's writers named their temp files before this module: mkstemp's ".NAME.XXXXXXXX.tmp",
# ".NAME.tmp-PID[.ext]" and the remote engine's ".NAME.part-PID-THREAD"
_LEGACY_PID = re.compile(r"^\..+\.(tmp|part)-(?P<pid>\d+)(-\d+)?(\.[A-Za-z0-9]{1,12})?$")
_LEGACY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def write_bytes(
    path: str | os.PathLike[str], data: bytes | memoryview, *, overwrite: bool = True, check: Check | None = None
) -> Path:
    """Write ``data`` to ``path`` atomically and return the path (see the module doc).

    Missing parent folders are created. :class:`~engine.errors.DiskFullError` when the disk is full;
    :class:`~engine.errors.EngineError` when ``path`` exists and ``overwrite`` is False (it is left untouched),
    when ``path`` is a folder, or when what was read back differs from what was written.
    """
    view = memoryview(data).cast("B")
    return _write(Path(path), lambda fd: _write_all(fd, view), len(view), overwrite, check)


def write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    """:func:`write_bytes` of ``text`` in UTF-8."""
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def write_json(path: str | os.PathLike[str], data: object, *, overwrite: bool = True, indent: int = 2) -> Path:
    """:func:`write_bytes` of ``data`` as JSON (UTF-8, not ASCII-escaped, with a final newline)."""
    import json

    return write_text(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n", overwrite=overwrite)


def write_stream(
    path: str | os.PathLike[str], blocks: Iterable[bytes], *, overwrite: bool = False, check: Check | None = None
) -> Path:
    """Write the blocks as they come (an upload, a download) to ``path`` atomically; returns the path.

    The size check compares the file with the number of bytes handed over; ``check`` may look further (a hash).
    Errors as :func:`write_bytes`; an exception raised by ``blocks`` itself is passed on unchanged (and nothing
    is left behind).
    """
    total = 0

    def fill(fd: int) -> int:
        nonlocal total
        for block in blocks:
            _write_all(fd, memoryview(block).cast("B"))
            total += len(block)
        return total

    return _write(Path(path), fill, None, overwrite, check)


def write_first_free(
    folder: Path, names: Iterable[str], fill: Callable[[BinaryIO], object], *, like: Path | None = None
) -> Path | None:
    """Write once (``fill(file)`` writes the content), then give the file the first of ``names`` in ``folder``
    that is free; None when every name is taken (nothing is left behind). Never overwrites. ``like``: a file
    whose permission bits the new one takes. A full disk is :class:`~engine.errors.DiskFullError`; other OS
    errors are :class:`~engine.errors.EngineError`."""
    first = folder / "segue-file"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _os_error(first, e, None) from e
    tmp = temp_path(first)
    written = None
    try:
        with open(tmp, "xb") as out:
            fill(out)
            out.flush()
            written = out.tell()
            os.fsync(out.fileno())
        if like is not None:
            shutil.copymode(like, tmp)
        for name in names:
            target = folder / name
            try:
                _commit_checked(tmp, target, written, False, None)
            except EngineError as e:
                if isinstance(e.__cause__, FileExistsError):
                    continue
                raise
            return target
        return None
    except OSError as e:
        raise _os_error(folder, e, written if written is not None else _size(tmp)) from e
    finally:
        _discard(tmp)


def write_with(
    path: str | os.PathLike[str],
    fill: Callable[[Path], object],
    *,
    overwrite: bool = True,
    check: Check | None = None,
) -> Path:
    """For a library that writes files itself: ``fill(temp_path)`` writes the temp file (it keeps the target's
    suffix, for writers that add one); then it is fsynced, checked (it must exist and not be empty, and pass
    ``check``) and renamed. A disk-full error inside ``fill`` (an ``OSError``, or a library's own error that
    says so) becomes :class:`~engine.errors.DiskFullError`; other errors from ``fill`` pass on unchanged."""
    target = Path(path)
    _prepare(target, overwrite)
    tmp = temp_path(target)
    try:
        try:
            fill(tmp)
        except Exception as e:
            if is_disk_full(e):
                raise disk_full_error(target, _size(tmp)) from e
            raise
        _commit_checked(tmp, target, None, overwrite, check)
    except OSError as e:
        raise _os_error(target, e, _size(tmp)) from e
    finally:
        _discard(tmp)
    return target


def temp_path(target: Path) -> Path:
    """A fresh temp name next to ``target``: ``.<name>.<pid>-<8 hex>.tmp<suffix>``."""
    return target.with_name(f".{target.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{target.suffix}")


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, says the disk (or the quota) is full."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        if any(text in str(current).lower() for text in _DISK_FULL_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full_error(path: Path, needed_bytes: int | None) -> DiskFullError:
    """The error for a write of about ``needed_bytes`` that did not fit at ``path``: "free N MB" asks for at
    least that much (1 MB at least), more when the disk has less than that free."""
    needed = max(int(needed_bytes or 0), MB)
    free = free_bytes(path.parent if not path.is_dir() else path)
    short = needed - free if free is not None and free < needed else needed
    return DiskFullError(str(path), max(1, math.ceil(short / MB)))


def free_bytes(folder: Path) -> int | None:
    """Bytes free for this user on ``folder``'s file system (None when it cannot be told)."""
    for candidate in (folder, *folder.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def link_no_clobber(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` only if that name is free (atomic on POSIX via ``link``);
    :class:`FileExistsError` if it is taken."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno in DISK_FULL_ERRNOS:
            raise
        # no hard links here (some network or FAT mounts): reserve the name (FileExistsError if taken), swap in
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        try:
            os.replace(tmp, target)
        except OSError:
            target.unlink(missing_ok=True)
            raise


def temp_owner(name: str) -> tuple[bool, int | None]:
    """``(is a Segue temp file name, the pid that wrote it if the name says)``."""
    for pattern in (_OURS, _LEGACY_PID):
        match = pattern.match(name)
        if match:
            return True, int(match.group("pid"))
    return bool(_LEGACY.match(name)), None


def remove_stray_temps(root: Path, *, any_writer: bool = False) -> list[Path]:
    """Remove the temp files that Segue's writers left under ``root`` (recursively) and return them.

    A temp file is stray when its writer's pid (from its name) is no longer alive, or, for a name without a pid,
    when it is older than an hour. With ``any_writer`` (the caller owns ``root``, e.g. a stale job folder it
    holds the lock of) every temp file goes. Only files named like Segue's temp files are touched.
    """
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    now = time.time()
    for folder, _dirs, files in os.walk(root):
        for name in files:
            is_temp, pid = temp_owner(name)
            if not is_temp:
                continue
            path = Path(folder) / name
            try:
                if not any_writer:
                    if pid is not None and pid_alive(pid):
                        continue
                    if pid is None and now - path.lstat().st_mtime < STALE_TEMP_AGE_S:
                        continue
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as e:
                log.warning("could not remove the stray temp file %s: %s", path, e)
                continue
            removed.append(path)
    if removed:
        log.info("removed %d stray temp file(s) under %s", len(removed), root)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (this process counts)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def umask() -> int:
    """The process umask, read without changing it (``os.umask`` would race with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


# -- the steps -------------------------------------------------------------------------------------------------


def _prepare(target: Path, overwrite: bool) -> None:
    if target.is_dir():
        raise EngineError(f"{target} is a folder; give a file name")
    if not overwrite and target.exists():
        raise EngineError(f"{target} already exists; Segue never overwrites files: choose another output folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _os_error(target, e, None) from e


def _write(
    target: Path, fill: Callable[[int], object], expected: int | None, overwrite: bool, check: Check | None
) -> Path:
    _prepare(target, overwrite)
    tmp = temp_path(target)
    written = expected
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            result = fill(fd)
            if expected is None and isinstance(result, int):
                written = result
            os.fsync(fd)
        finally:
            os.close(fd)
        _commit_checked(tmp, target, written, overwrite, check)
    except OSError as e:
        raise _os_error(target, e, written if written is not None else _size(tmp)) from e
    finally:
        _discard(tmp)
    return target


def _commit_checked(tmp: Path, target: Path, expected: int | None, overwrite: bool, check: Check | None) -> None:
    """Read back what is on disk, then give it its name. Plain ifs: they hold under ``python -O``."""
    if expected is None:  # written by a library: flush what it wrote too
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    size = os.stat(tmp).st_size
    problem = None
    if expected is not None and size != expected:
        problem = f"{size} of {expected} bytes reached the disk"
    elif expected is None and size == 0:
        problem = "nothing reached the disk"
    elif check is not None:
        problem = check(tmp)
    if problem is not None:
        free = free_bytes(target.parent)
        if free is not None and free < max(expected or 0, size, MB):  # a short write on a nearly full disk
            raise disk_full_error(target, max(expected or 0, size))
        raise EngineError(f"writing {target} failed: {problem}; nothing was saved under that name")
    try:
        if overwrite:
            os.replace(tmp, target)
        else:
            link_no_clobber(tmp, target)
    except FileExistsError as e:
        raise EngineError(
            f"{target} appeared while it was being written; it was left untouched. Choose another output folder"
        ) from e


def _os_error(target: Path, error: OSError, needed: int | None) -> SegueError:
    if is_disk_full(error):
        return disk_full_error(target, needed)
    reason = error.strerror or str(error)
    return EngineError(f"could not write {target}: {reason}; check that the folder exists and is writable")


def _write_all(fd: int, view: memoryview) -> int:
    total = len(view)
    while view:
        done = os.write(fd, view)
        if done <= 0:  # pragma: no cover - os.write raises instead on POSIX
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[done:]
    return total


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _discard(tmp: Path) -> None:
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("could not remove the temp file %s: %s", tmp, e)
