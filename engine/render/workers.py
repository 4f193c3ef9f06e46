"""Run a job's render tasks (one per variant) in this process and in forked helper processes at once.

TinySoundFont holds the GIL while it renders, so threads do not help; processes do, and once sampling is over the
other cores are idle. The helpers are forked after the soundfont is loaded, so they share its samples (and the
job's notes, and the code) with this process page by page, without loading or pickling anything. Tasks are taken
one at a time from a pipe filled before the fork (a read of one byte is atomic: each task is done once, by
whichever process is free), this process working too; a helper sends back each task's result (pickled) over its
own pipe. Each task writes its own files, so the files are the same, byte for byte, whichever process wrote them.

- **Fallback**: one process (no fork) when there is one task, one usable core, no ``os.fork`` (Windows) or an
  unsafe one (macOS), inside a helper, or when ``SEGUE_RENDER_WORKERS=1``; fewer processes when a fork fails
  (no memory for one more: a warning).
- **Threads**: a helper has only the thread that forked it. A task must not use a thread pool (or a lock) made
  before the fork: its threads are not in the helper, and the task would wait for them for ever.
- **Errors**: an exception in a helper is raised here as itself (its type and message, as the serial run would
  raise it), chained to a :class:`WorkerError` with the helper's traceback; a helper that dies (a crash, the
  kernel's OOM killer) or stops answering is an :class:`~engine.errors.EngineError` that names the task.
- **Cancel and errors here**: no task is handed out any more, the helpers get SIGTERM (it raises
  :class:`~engine.errors.CancelledError` inside them, so a file being written is removed as :mod:`engine.atomic`
  does on any error) and SIGKILL if they are still there after :data:`STOP_GRACE_SECONDS`; then the error is raised.
- **Logging**: a helper's log records are sent to this process and logged here (a helper never writes to the
  terminal itself: a lock another thread held at the fork could be held forever in the helper).

``SEGUE_RENDER_WORKERS`` sets the number of processes (this one included); unset: one per usable core that other
programs leave free (:class:`CpuWindow`: Linux' CPU counters over the soundfont's load), at most :data:`MAX_WORKERS`
and at most one per task.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import struct
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from engine.api import CancelToken
from engine.errors import CancelledError, EngineError

log = logging.getLogger(__name__)

R = TypeVar("R")

ENV_VAR = "SEGUE_RENDER_WORKERS"
MAX_WORKERS = 4  # processes, this one included
MAX_TASKS = 255  # one byte per task in the task pipe
STOP_GRACE_SECONDS = 5.0  # after SIGTERM, before SIGKILL
STALL_FLOOR_SECONDS = 120.0  # a helper silent this long on one task (and 20x the slowest task so far) is stuck
_POLL_SECONDS = 0.05  # how often the wait for helpers looks at the cancel token
_HEADER = struct.Struct("<I")

_in_helper = False  # set in a forked helper: it never forks again


class WorkerError(EngineError):
    """What went wrong in a render helper process, with its traceback (the cause of the error raised here)."""


def can_fork() -> bool:
    """Whether this process may fork render helpers: POSIX ``fork`` where it is safe without ``exec`` (not
    macOS, whose system libraries are not fork-safe), and not inside a helper."""
    return hasattr(os, "fork") and sys.platform != "darwin" and not _in_helper


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def worker_count(tasks: int, environ: Mapping[str, str] | None = None, others_busy: float | None = None) -> int:
    """Processes for ``tasks`` render tasks, this one included: ``SEGUE_RENDER_WORKERS`` when set (a bad value is
    ignored with a warning), else one per usable core up to :data:`MAX_WORKERS`, less the cores other programs
    keep busy (``others_busy``, from a :class:`CpuWindow`: a helper on a busy core only adds its fork and its
    copied pages, and where the kernel shares CPU between sessions first, as Linux desktops do, it gains nothing);
    never more than the tasks, and 1 where forking is not possible."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_VAR, "").strip()
    cores = usable_cores()
    wanted = min(cores, MAX_WORKERS)
    if raw:
        if raw.isdigit() and int(raw) >= 1:
            wanted = int(raw)
        else:
            log.warning("ignoring %s=%r: give a whole number of processes >= 1 (1: no helpers)", ENV_VAR, raw)
            raw = ""
    if not raw and others_busy is not None:
        free = cores - 1 - others_busy  # this process takes one core
        wanted = min(wanted, 1 + max(0, int(free + 0.5)))
    if not can_fork() or tasks > MAX_TASKS:
        return 1
    return max(1, min(wanted, tasks))


StatReader = Callable[[], "dict[int, tuple[int, int]] | None"]


def read_cpu_stat() -> dict[int, tuple[int, int]] | None:
    """``{cpu: (busy, total)}`` in clock ticks since boot, for the CPUs this process may use (Linux'
    ``/proc/stat``; busy: user, nice, system, irq, softirq and steal); None where there is no such file."""
    try:
        lines = Path("/proc/stat").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    out = {}
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        cpu = int(name[3:])
        if mine is not None and cpu not in mine:
            continue
        ticks = [int(x) for x in rest.split()]
        busy = ticks[0] + ticks[1] + ticks[2] + sum(ticks[5:8])  # user nice system (idle iowait) irq softirq steal
        out[cpu] = (busy, sum(ticks[:8]))
    return out or None


def _own_cpu_seconds() -> float:
    return time.process_time()


class CpuWindow:
    """How busy other programs keep the CPUs this process may use, from now until :meth:`others_busy` is asked."""

    def __init__(
        self,
        read: StatReader = read_cpu_stat,
        own_cpu: Callable[[], float] = _own_cpu_seconds,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._read, self._own_cpu, self._clock = read, own_cpu, clock
        self._wall, self._own, self._stat = clock(), own_cpu(), read()

    def wait_at_least(self, seconds: float) -> None:
        """Sleep until the window is ``seconds`` long (a soundfont already loaded leaves it too short to tell)."""
        left = seconds - (self._clock() - self._wall)
        if left > 0 and self._stat is not None:
            time.sleep(left)

    def others_busy(self) -> float | None:
        """Cores kept busy by other processes on average over the window (this process's own CPU left out), or
        None where the CPUs' counters cannot be read."""
        stat = self._read()
        if self._stat is None or stat is None:
            return None
        ticks_per_second = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        busy = sum(stat[c][0] - self._stat[c][0] for c in stat if c in self._stat) / ticks_per_second
        elapsed = self._clock() - self._wall
        if elapsed <= 0:
            return None
        own = self._own_cpu() - self._own
        return max(0.0, (busy - own) / elapsed)


@dataclass
class _Helper:
    pid: int
    fd: int  # the read end of its result pipe
    buffer: bytearray = field(default_factory=bytearray)
    task: int | None = None  # the task it is doing
    since: float = 0.0  # when it took it
    status: int | None = None  # its wait status once reaped


@dataclass
class _Pool(Generic[R]):
    task: Callable[[int], R]
    count: int
    label: Callable[[int], str]
    on_done: Callable[[int, R], None] | None
    results: dict[int, R] = field(default_factory=dict)
    helpers: list[_Helper] = field(default_factory=list)
    task_fd: int = -1
    slowest: float = 0.0  # seconds of the slowest task so far

    def done(self, index: int, result: R, seconds: float) -> None:
        self.results[index] = result
        self.slowest = max(self.slowest, seconds)
        if self.on_done is not None:
            self.on_done(index, result)


def run_tasks(
    task: Callable[[int], R],
    count: int,
    *,
    workers: int | None = None,
    cancel: CancelToken | None = None,
    on_done: Callable[[int, R], None] | None = None,
    label: Callable[[int], str] = str,
) -> list[R]:
    """``[task(0), ..., task(count - 1)]``, run by ``workers`` processes at once (this one and forked helpers;
    None: :func:`worker_count`). ``on_done(index, result)`` is called here as each task finishes, in the order they
    finish; ``cancel`` is looked at between tasks (and while waiting for the helpers); ``label(index)`` names a task
    in error messages. ``task`` must do its work through files or its return value (a helper's other changes to
    memory stay in the helper); its result must pickle."""
    cancel = cancel or CancelToken()
    processes = worker_count(count) if workers is None else max(1, min(workers, count))
    if processes <= 1 or not can_fork() or count > MAX_TASKS:
        return _run_serial(task, count, cancel, on_done)
    pool = _Pool(task, count, label, on_done)
    started = time.perf_counter()
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, bytes(range(count)))  # count <= 255 < PIPE_BUF: one write, all of it
    finally:
        os.close(write_fd)  # no writer left: an empty pipe reads as the end, never blocks
    pool.task_fd = read_fd
    try:
        for _ in range(processes - 1):
            try:
                pool.helpers.append(_fork_helper(pool))
            except OSError as e:  # no memory or process slot for one more: fewer processes, not a failed job
                log.warning("could not start a render helper process (%s); rendering with %d", e, len(pool.helpers) + 1)
                break
        _work_here(pool, cancel)
        _wait_for_helpers(pool, cancel)
    except BaseException:
        _stop_helpers(pool)
        raise
    finally:
        os.close(read_fd)
        for helper in pool.helpers:
            _reap(helper, block=True)
            os.close(helper.fd)
    log.debug(
        "%d tasks by %d processes in %.3f s (the slowest task %.3f s)",
        count,
        len(pool.helpers) + 1,
        time.perf_counter() - started,
        pool.slowest,
    )
    missing = [pool.label(i) for i in range(count) if i not in pool.results]
    if missing:  # every helper reported or failed: this cannot happen unless a helper lied
        raise EngineError(f"render tasks {', '.join(missing)} were never done; run the job again")
    return [pool.results[i] for i in range(count)]


def _run_serial(
    task: Callable[[int], R], count: int, cancel: CancelToken, on_done: Callable[[int, R], None] | None
) -> list[R]:
    results = []
    for index in range(count):
        cancel.raise_if_cancelled()
        result = task(index)
        results.append(result)
        if on_done is not None:
            on_done(index, result)
    return results


def _take(fd: int) -> int | None:
    data = os.read(fd, 1)
    return data[0] if data else None


def _work_here(pool: _Pool[R], cancel: CancelToken) -> None:
    """This process's share: take tasks until none is left, collecting the helpers' results between them."""
    while True:
        cancel.raise_if_cancelled()
        _collect(pool, timeout=0.0)
        index = _take(pool.task_fd)
        if index is None:
            return
        t0 = time.perf_counter()
        result = pool.task(index)
        pool.done(index, result, time.perf_counter() - t0)


def _wait_for_helpers(pool: _Pool[R], cancel: CancelToken) -> None:
    while any(h.status is None for h in pool.helpers):
        cancel.raise_if_cancelled()
        _collect(pool, timeout=_POLL_SECONDS)
        now = time.perf_counter()
        limit = max(STALL_FLOOR_SECONDS, 20.0 * pool.slowest)
        for helper in pool.helpers:
            if helper.task is not None and helper.status is None and now - helper.since > limit:
                raise EngineError(
                    f"the render helper process {helper.pid} has been writing {pool.label(helper.task)} for "
                    f"{now - helper.since:.0f} s without finishing; it was stopped. Run the job again, or set "
                    f"{ENV_VAR}=1 to render in one process"
                )


def _collect(pool: _Pool[R], timeout: float) -> None:
    """Read what the helpers have sent (waiting up to ``timeout`` s for something); handle each message."""
    open_helpers = {h.fd: h for h in pool.helpers if h.status is None}
    if not open_helpers:
        return
    ready, _, _ = select.select(list(open_helpers), [], [], timeout)
    for fd in ready:
        helper = open_helpers[fd]
        chunk = os.read(fd, 1 << 16)
        if not chunk:  # the helper closed its pipe: it exited (or died)
            _reap(helper, block=True)
            if helper.task is not None or helper.status != 0:
                raise EngineError(_died(pool, helper))
            continue
        helper.buffer += chunk
        while len(helper.buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(helper.buffer)
            if len(helper.buffer) < _HEADER.size + size:
                break
            message = pickle.loads(bytes(helper.buffer[_HEADER.size : _HEADER.size + size]))  # noqa: S301 - our child
            del helper.buffer[: _HEADER.size + size]
            _handle(pool, helper, message)


def _handle(pool: _Pool[R], helper: _Helper, message: tuple[Any, ...]) -> None:
    kind = message[0]
    if kind == "start":
        helper.task, helper.since = int(message[1]), time.perf_counter()
    elif kind == "done":
        index, result, seconds = int(message[1]), message[2], float(message[3])
        helper.task = None
        pool.done(index, result, seconds)
    elif kind == "log":
        _, name, level, text = message
        logging.getLogger(name).log(level, "%s (render helper %d)", text, helper.pid)
    elif kind == "error":
        _, index, exc_bytes, type_name, text, trace = message
        helper.task = None
        where = f"{pool.label(int(index))} failed in the render helper process {helper.pid}"
        cause = WorkerError(f"{where}: {type_name}: {text}\n{trace}")
        error: BaseException | None = None
        if exc_bytes is not None:
            try:
                error = pickle.loads(exc_bytes)  # noqa: S301 - our own child's exception
            except Exception:
                error = None
        if not isinstance(error, BaseException):
            error = EngineError(f"{where}: {type_name}: {text}")
        raise error from cause


def _died(pool: _Pool[R], helper: _Helper) -> str:
    status = helper.status or 0
    how = f"was killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else "exited"
    if os.WIFEXITED(status):
        how = f"exited with status {os.WEXITSTATUS(status)}"
    what = f" while writing {pool.label(helper.task)}" if helper.task is not None else ""
    return (
        f"the render helper process {helper.pid} {how}{what} (out of memory, or a crash in the synthesizer); "
        f"run the job again, or set {ENV_VAR}=1 to render in one process"
    )


def _reap(helper: _Helper, block: bool) -> None:
    if helper.status is not None:
        return
    try:
        pid, status = os.waitpid(helper.pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        helper.status = 0
        return
    if pid:
        helper.status = status


def _stop_helpers(pool: _Pool[R]) -> None:
    """No task is handed out any more; the helpers are asked to stop (SIGTERM), then killed after the grace."""
    while _take(pool.task_fd) is not None:
        pass
    for helper in pool.helpers:
        if helper.status is None:
            _signal(helper.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for helper in pool.helpers:
        while helper.status is None and time.monotonic() < deadline:
            _reap(helper, block=False)
            if helper.status is None and select.select([helper.fd], [], [], 0.01)[0]:
                os.read(helper.fd, 1 << 16)  # what it still sends is dropped, so it never waits on a full pipe
        if helper.status is None:
            log.warning("the render helper process %d did not stop; killing it", helper.pid)
            _signal(helper.pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _fork_helper(pool: _Pool[R]) -> _Helper:
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about fork in a threaded process: the helper is careful
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the helper: never returns
        code = 1
        try:
            os.close(read_fd)
            for helper in pool.helpers:  # the earlier helpers' pipes are not ours
                os.close(helper.fd)
            code = _helper_main(pool, write_fd)
        finally:
            os._exit(code)
    os.close(write_fd)
    return _Helper(pid, read_fd)


class _PipeLogHandler(logging.Handler):
    def __init__(self, send: Callable[[tuple[Any, ...]], None]) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send(("log", record.name, record.levelno, record.getMessage()))
        except Exception:  # noqa: S110 - a log line is not worth failing a render
            pass


def _helper_main(pool: _Pool[R], fd: int) -> int:
    """A helper's life: take tasks until none is left, sending each result (or the error) to the parent."""
    global _in_helper
    _in_helper = True

    def send(message: tuple[Any, ...]) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(_HEADER.pack(len(data)) + data)
        while view:
            view = view[os.write(fd, view) :]

    def stop(signum: int, frame: object) -> None:
        raise CancelledError("the render was stopped")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the helpers
    _route_logging(send)
    while True:
        index = _take(pool.task_fd)
        if index is None:
            return 0
        send(("start", index))
        t0 = time.perf_counter()
        try:
            result = pool.task(index)
        except BaseException as e:
            send(("error", index, _pickled(e), type(e).__name__, str(e), traceback.format_exc()))
            return 1
        send(("done", index, result, time.perf_counter() - t0))


def _route_logging(send: Callable[[tuple[Any, ...]], None]) -> None:
    """Every log record of the helper goes to the parent (which logs it), none to a handler of its own."""
    handler = _PipeLogHandler(send)
    root = logging.getLogger()
    for logger in [root, *logging.Logger.manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger):
            for old in list(logger.handlers):
                logger.removeHandler(old)
    root.addHandler(handler)


def _pickled(error: BaseException) -> bytes | None:
    """``error`` pickled when it comes back out as the same type, else None (it is then sent as text)."""
    try:
        data = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        back = pickle.loads(data)  # noqa: S301 - our own bytes
    except Exception:
        return None
    return data if type(back) is type(error) else None
