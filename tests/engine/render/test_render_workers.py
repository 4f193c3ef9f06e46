"""engine.render.workers: tasks run by this process and forked helpers give the serial results, errors in a helper
come back as themselves, a dead helper is a clear error, cancel stops the helpers.

No timing: where a test needs a helper to have done a task, the task run here waits for a file the helper's task
writes (a barrier), so the outcome does not depend on which process the scheduler runs first.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from engine.api import CancelToken
from engine.errors import CancelledError, DiskFullError, EngineError
from engine.render import workers
from engine.render.workers import WorkerError, run_tasks, worker_count

pytestmark = pytest.mark.skipif(not workers.can_fork(), reason="render helpers need os.fork (Linux)")

PARENT = os.getpid()
BARRIER_SECONDS = 30.0  # far beyond any wait here; a failure to meet means a helper never ran


def wait_for(path: Path) -> None:
    """Wait until ``path`` (a glob pattern in its last part) exists."""
    deadline = time.monotonic() + BARRIER_SECONDS
    while not any(path.parent.glob(path.name)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared: no helper ran")
        time.sleep(0.005)


def say_pid(folder: Path, index: int) -> None:
    tmp = folder / f".{index}.pid.tmp"
    tmp.write_text(str(os.getpid()))
    tmp.rename(folder / f"{index}.pid")


def mark(folder: Path, index: int) -> None:
    """Say (atomically, for the barrier) that task ``index`` started, and in which process."""
    tmp = folder / f".{index}.tmp"
    tmp.write_text(str(os.getpid()))
    tmp.rename(folder / f"{index}.started")


def test_results_come_back_in_task_order_whatever_the_number_of_processes(tmp_path: Path) -> None:
    def task(index: int) -> tuple[int, int]:
        return index * index, os.getpid()

    serial = run_tasks(task, 7, workers=1)
    assert [r[0] for r in serial] == [i * i for i in range(7)]
    assert {r[1] for r in serial} == {PARENT}  # no helper when one process is asked for
    for processes in (2, 3):
        assert [r[0] for r in run_tasks(task, 7, workers=processes)] == [i * i for i in range(7)]


def meet(folder: Path) -> None:
    """A two-sided barrier: returns once this process and a helper (or this process and the parent) are both in
    a task, so each does at least one, whoever reads the task pipe first."""
    me, other = ("parent", "helper") if os.getpid() == PARENT else ("helper", "parent")
    (folder / me).touch()
    wait_for(folder / other)


def test_a_helper_does_tasks_and_on_done_is_called_here_once_per_task(tmp_path: Path) -> None:
    done: list[tuple[int, int]] = []

    def task(index: int) -> int:
        mark(tmp_path, index)
        meet(tmp_path)
        return os.getpid()

    pids = run_tasks(task, 4, workers=2, on_done=lambda i, pid: done.append((i, os.getpid())))
    assert PARENT in pids and any(pid != PARENT for pid in pids)
    assert sorted(i for i, _ in done) == [0, 1, 2, 3]
    assert {pid for _, pid in done} == {PARENT}
    assert sorted(p.name for p in tmp_path.glob("*.started")) == [f"{i}.started" for i in range(4)]  # each once


def test_an_error_in_a_helper_is_raised_here_as_itself_with_the_helpers_traceback(tmp_path: Path) -> None:
    def task(index: int) -> int:
        if os.getpid() == PARENT:
            wait_for(tmp_path / "helper")
            return index
        (tmp_path / "helper").touch()
        raise DiskFullError(str(tmp_path), 12)

    with pytest.raises(DiskFullError) as caught:
        run_tasks(task, 2, workers=2, label=lambda i: f"variant v{i + 1:02d}")
    assert caught.value.path == str(tmp_path) and caught.value.free_mb == 12
    cause = caught.value.__cause__
    assert isinstance(cause, WorkerError)
    assert re.search(r"variant v0[12] failed in the render helper process \d+: DiskFullError", str(cause))
    assert "raise DiskFullError" in str(cause)  # the helper's traceback


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickle rebuilds it with one argument: it cannot come back
        super().__init__(f"odd failure {a} {b}")


def test_an_error_that_cannot_travel_comes_back_as_an_engine_error_naming_it(tmp_path: Path) -> None:
    def task(index: int) -> int:
        if os.getpid() == PARENT:
            wait_for(tmp_path / "helper")
            return index
        (tmp_path / "helper").touch()
        raise _Unpicklable(1, 2)

    with pytest.raises(EngineError, match=r"v0[12] failed in the render helper process \d+: _Unpicklable: odd failure"):
        run_tasks(task, 2, workers=2, label=lambda i: f"v{i + 1:02d}")


def test_a_helper_that_dies_is_an_error_that_names_its_task_and_what_to_do(tmp_path: Path) -> None:
    def task(index: int) -> int:
        if os.getpid() == PARENT:
            wait_for(tmp_path / "helper")
            return index
        (tmp_path / "helper").touch()
        os.kill(os.getpid(), signal.SIGKILL)
        return index

    with pytest.raises(EngineError) as caught:
        run_tasks(task, 2, workers=2, label=lambda i: f"variant v{i + 1:02d}")
    message = str(caught.value)
    assert re.search(r"killed by signal 9 while writing variant v0[12]", message)
    assert "SEGUE_RENDER_WORKERS=1" in message


def _cancel_case(tmp_path: Path) -> tuple[BaseException | None, list[int]]:
    """The task here cancels once a helper is inside its task, which would run forever; no further task may run."""
    cancel = CancelToken()
    outcome: list[BaseException] = []

    def task(index: int) -> int:
        mark(tmp_path, index)
        if os.getpid() == PARENT:
            wait_for(tmp_path / "*.pid")
            cancel.cancel()
            return index
        say_pid(tmp_path, index)
        while True:  # until SIGTERM
            time.sleep(0.01)

    try:
        run_tasks(task, 5, workers=2, cancel=cancel)
    except BaseException as e:
        outcome.append(e)
    pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    return (outcome[0] if outcome else None), pids


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_cancel_stops_the_helpers_and_no_further_task_runs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.render.workers"):
        error, pids = _cancel_case(tmp_path)
    assert isinstance(error, CancelledError)
    assert pids and all(_gone(pid) for pid in pids)  # stopped and reaped: no zombie either
    assert sorted(p.name for p in tmp_path.glob("*.started")) == ["0.started", "1.started"]  # nothing after
    assert "did not stop" not in caplog.text  # SIGTERM was enough: the helper stopped itself


def test_cancel_works_when_the_tasks_are_run_from_a_thread_as_the_command_line_does(tmp_path: Path) -> None:
    results: list[tuple[BaseException | None, list[int]]] = []
    thread = threading.Thread(target=lambda: results.append(_cancel_case(tmp_path)))
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    error, pids = results[0]
    assert isinstance(error, CancelledError)
    assert pids and all(_gone(pid) for pid in pids)


def test_an_error_here_stops_the_helpers_before_it_is_raised(tmp_path: Path) -> None:
    def task(index: int) -> int:
        if os.getpid() == PARENT:
            wait_for(tmp_path / "*.pid")
            raise ValueError("bad notes in variant 1")
        say_pid(tmp_path, index)
        while True:
            time.sleep(0.01)

    with pytest.raises(ValueError, match="bad notes"):
        run_tasks(task, 3, workers=2)
    pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    assert len(pids) == 1 and _gone(pids[0])


def test_a_helpers_log_records_are_logged_here(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def task(index: int) -> int:
        meet(tmp_path)
        if os.getpid() != PARENT:
            logging.getLogger("engine.render.synth").warning("the mix peaked at +3.0 dBFS in task %d", index)
        return os.getpid()

    with caplog.at_level(logging.WARNING):
        pids = run_tasks(task, 2, workers=2)
    helper_tasks = [i for i, pid in enumerate(pids) if pid != PARENT]
    records = [r for r in caplog.records if "peaked" in r.getMessage()]
    assert len(records) == len(helper_tasks) == 1
    assert records[0].name == "engine.render.synth"
    assert f"in task {helper_tasks[0]} (render helper {pids[helper_tasks[0]]})" in records[0].getMessage()


def test_worker_count_follows_the_variable_and_never_exceeds_the_tasks(caplog: pytest.LogCaptureFixture) -> None:
    assert worker_count(4, {"SEGUE_RENDER_WORKERS": "1"}) == 1
    assert worker_count(4, {"SEGUE_RENDER_WORKERS": "3"}) == 3
    assert worker_count(2, {"SEGUE_RENDER_WORKERS": "8"}) == 2
    assert worker_count(1, {}) == 1
    assert 1 <= worker_count(4, {}) <= min(workers.usable_cores(), workers.MAX_WORKERS)
    with caplog.at_level(logging.WARNING):
        assert worker_count(4, {"SEGUE_RENDER_WORKERS": "many"}) == worker_count(4, {})
    assert "SEGUE_RENDER_WORKERS='many'" in caplog.text


def test_when_no_helper_can_be_forked_this_process_does_every_task(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_fork() -> int:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(os, "fork", no_fork)
    with caplog.at_level(logging.WARNING, logger="engine.render.workers"):
        results = run_tasks(lambda i: (i, os.getpid()), 3, workers=2)
    assert results == [(0, PARENT), (1, PARENT), (2, PARENT)]
    assert "could not start a render helper process" in caplog.text and "rendering with 1" in caplog.text


def test_worker_count_leaves_out_the_cores_other_programs_keep_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "usable_cores", lambda: 2)
    assert worker_count(4, {}, others_busy=0.1) == 2  # the second core is free
    assert worker_count(4, {}, others_busy=0.9) == 1  # another program has it: no helper
    assert worker_count(4, {"SEGUE_RENDER_WORKERS": "2"}, others_busy=0.9) == 2  # asked for: done
    monkeypatch.setattr(workers, "usable_cores", lambda: 8)
    assert worker_count(4, {}, others_busy=5.2) == 3  # 8 cores, this process on one, ~2 free
    assert worker_count(8, {}, others_busy=None) == workers.MAX_WORKERS  # counters unknown: every core up to 4


def test_a_cpu_window_counts_other_programs_busy_time_without_this_processes_own() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    # over one second, each of the two CPUs was busy for one second (2 core-seconds); half a second of it was ours
    samples = iter([{0: (1000, 5000), 1: (2000, 5000)}, {0: (1000 + ticks, 6000), 1: (2000 + ticks, 6000)}])
    own = iter([10.0, 10.5])
    clock = iter([100.0, 101.0])
    window = workers.CpuWindow(read=lambda: next(samples), own_cpu=lambda: next(own), clock=lambda: next(clock))
    assert window.others_busy() == pytest.approx(1.5)
    unknown = workers.CpuWindow(read=lambda: None, own_cpu=lambda: 0.0)
    assert unknown.others_busy() is None


def test_the_cpu_counters_are_read_for_this_processes_cores() -> None:
    stat = workers.read_cpu_stat()
    if stat is None:
        pytest.skip("no /proc/stat here")
    assert stat and set(stat) <= set(os.sched_getaffinity(0))  # only the cores this process may run on
    assert all(0 <= busy <= total for busy, total in stat.values())
