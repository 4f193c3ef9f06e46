"""Jobs under faults: a full disk (real tmpfs of 2 MB, 12 KB and 0 bytes; a fake ENOSPC), a worker hit by
MemoryError, and a Segue killed with kill -9 at several points (recovered at the next start)."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fake_engine import FakeEngine, write_midi_region
from osc_helpers import CLIENT, Recorder
from pythonosc.osc_message_builder import build_msg
from tmpfs import fill, tmpfs

import bridge.runner
from bridge import cli
from bridge.events import JobDone, JobFailed
from bridge.jobs import INTERRUPTED, load_job, recover_jobs
from bridge.osc import OscBridge
from bridge.service import BridgeService
from engine import atomic
from engine.api import (
    CancelToken,
    GenerationRequest,
    GenerationResult,
    Meter,
    ModelInfo,
    ProgressCallback,
    RegionInfo,
    VariantResult,
)
from engine.ownership import FolderClaim
from engine.render.wavfile import write_wav

DISK_FULL = r"the disk is full at .+: free \d+ MB and run again"
REPO = Path(__file__).resolve().parents[2]
RATE = 44_100
SECONDS = 5.0  # one stereo 24-bit file: 1.3 MB


class StemEngine:
    """A fake engine that writes its audio as the real engines do, through engine.render.wavfile.write_wav:
    per variant ``continuation.wav`` and ``stems/piano.wav`` (1.3 MB each). ``before_variant(index)`` runs first
    (tests fill the disk there)."""

    name = "fake"

    def __init__(self, before_variant: Callable[[int], None] | None = None) -> None:
        self.before_variant = before_variant

    def models(self) -> list[ModelInfo]:
        return [ModelInfo("fake-midi", "midi", "/models/fake", "a fake model", 1, ("continue",), ())]

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        audio = np.full((2, int(SECONDS * RATE)), 0.1, np.float32)
        variants = []
        for index in range(1, request.params.variants + 1):
            if self.before_variant is not None:
                self.before_variant(index)
            vid = f"v{index:02d}"
            write_wav(job_dir / vid / "continuation.wav", audio, RATE)
            write_wav(job_dir / vid / "stems" / "piano.wav", audio, RATE)
            files = {"audio": f"{vid}/continuation.wav", "stem:piano": f"{vid}/stems/piano.wav"}
            variants.append(VariantResult(vid, index, files, SECONDS, ("piano",)))
        region = RegionInfo(120.0, Meter(4, 4), 8.0, 2, RATE, ("piano",), "")
        return GenerationResult("midi", "continue", "fake-midi", region, 8.0, 4.0, tuple(variants), {})


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _no_torn_or_temp_files(root: Path) -> None:
    """Every WAV under a final name reads back whole; no temp file or owner lock is left."""
    for path in _files(root):
        assert not atomic.temp_owner(path.name)[0], f"temp file left: {path}"
        assert path.name != ".owner", f"a finished job still claims {path.parent}"
        if path.suffix == ".wav":
            assert sf.info(str(path)).frames == int(SECONDS * RATE), f"torn file under its final name: {path}"


def _continue(tmp_path: Path, out: Path, engine: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    region = write_midi_region(tmp_path / "region.mid")
    argv = ["continue", str(region), "--out", str(out), "--variants", "2"]
    code = cli.main(argv, engine_factory=lambda spec, **options: engine)
    return code, capsys.readouterr().err


def test_a_job_on_a_2_mb_disk_fails_with_the_disk_full_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        code, err = _continue(tmp_path, disk / "out", StemEngine(), capsys)
        assert code == 2, err
        assert "segue: error: the disk is full at" in err and "AssertionError" not in err
        (job_dir,) = sorted((disk / "out").iterdir())
        record = load_job(job_dir)
        assert record.status == "failed" and record.error is not None
        assert record.error.type == "DiskFullError"
        assert re.match(DISK_FULL, record.error.message)
        _no_torn_or_temp_files(disk)


def test_a_job_on_a_12_kb_disk_fails_at_once_and_leaves_no_job_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "disk", "12k") as disk:
        out = disk / "out"
        code, err = _continue(tmp_path, out, StemEngine(), capsys)
        assert code == 2, err
        assert f"segue: error: the disk is full at {out}: free 1 MB and run again" in err
        assert list(out.iterdir()) == []  # no job folder claims a job that never ran


def test_a_job_on_a_disk_with_0_bytes_free_leaves_no_empty_job_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        out = disk / "out"
        out.mkdir()
        fill(disk, 0)
        code, err = _continue(tmp_path, out, StemEngine(), capsys)
        assert code == 2, err
        assert "the disk is full at" in err
        assert list(out.iterdir()) == []


class FakeFullDisk:
    """``os.write`` in the atomic writer fails with ENOSPC while ``full``; giving back a job's reserve frees room."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        real_write, real_free = os.write, FolderClaim.free_reserve

        def write(fd: int, data: Any) -> int:
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        def free_reserve(claim: FolderClaim) -> bool:
            freed = real_free(claim)
            self.full = self.full and not freed
            return freed

        monkeypatch.setattr(atomic.os, "write", write)
        monkeypatch.setattr(FolderClaim, "free_reserve", free_reserve)

    def fill_at(self, variant: int) -> Callable[[int], None]:
        def before(index: int) -> None:
            if index == variant:
                self.full = True

        return before


def _started(engine: Any, out: Path) -> tuple[BridgeService, Recorder, OscBridge, list[Any]]:
    service = BridgeService(engine, out, place="none")
    events: list[Any] = []
    service.add_listener(events.append)
    bridge = OscBridge(service)
    sent = Recorder()
    bridge.attach(sent)
    service.start()
    return service, sent, bridge, events


def _send(bridge: OscBridge, address: str, *args: Any) -> None:
    bridge.handle_datagram(build_msg(address, list(args)).dgram, CLIENT)


def test_a_disk_that_fills_mid_job_ends_it_failed_and_tells_the_daw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FakeFullDisk(monkeypatch)
    region = write_midi_region(tmp_path / "region.mid").resolve()
    service, sent, bridge, events = _started(StemEngine(disk.fill_at(2)), tmp_path / "out")
    try:
        _send(bridge, "/segue/region", "", str(region), 0.0, 8.0, 120.0, 4, 4, "Keys")
        _send(bridge, "/segue/generate", "continue", 2, 2)
        (failed,) = sent.wait_for("/segue/job/failed")
        job_id, message = failed
        assert re.fullmatch(DISK_FULL + r" \(incomplete variant folders .*v02\)", message)
        assert [args[0] for args in sent.wait_for("/segue/error")] == [message]
        record = load_job(tmp_path / "out" / job_id)
        assert record.status == "failed" and record.error is not None and record.error.message == message
        assert not (tmp_path / "out" / job_id / "v02" / "continuation.wav").exists()
        _no_torn_or_temp_files(tmp_path / "out")
        assert [type(e).__name__ for e in events if isinstance(e, JobFailed)] == ["JobFailed"]
    finally:
        service.close()


def test_the_worker_survives_memory_error_even_when_recording_it_fails_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_job = bridge.runner.write_job
    failures = {"left": 1}

    def write_job_out_of_memory(job_dir: Path, record: Any) -> Path:
        if record.status == "failed" and failures["left"]:
            failures["left"] -= 1
            raise MemoryError()
        return real_write_job(job_dir, record)

    monkeypatch.setattr(bridge.runner, "write_job", write_job_out_of_memory)
    engine = FakeEngine(fail=MemoryError(), fail_at=1)
    region = write_midi_region(tmp_path / "region.mid").resolve()
    service, sent, osc, events = _started(engine, tmp_path / "out")
    try:
        _send(osc, "/segue/region", "", str(region), 0.0, 8.0, 120.0, 4, 4, "Keys")
        _send(osc, "/segue/generate", "continue", 1, 1)
        ((job_id, message),) = sent.wait_for("/segue/job/failed")
        assert message.startswith("Segue ran out of memory: ask for fewer bars or variants")
        assert load_job(tmp_path / "out" / job_id).status == "failed"
        engine.fail = None
        _send(osc, "/segue/generate", "continue", 1, 1)
        ((done_id, _),) = sent.wait_for("/segue/job/done")
        assert load_job(tmp_path / "out" / done_id).status == "done"
        assert [type(e) for e in events if isinstance(e, JobFailed | JobDone)] == [JobFailed, JobDone]
    finally:
        service.close()


# -- kill -9 and recovery ----------------------------------------------------------------------------------------

_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from fake_engine import FakeEngine
from bridge import cli
from engine import atomic
point = {point!r}
engine = FakeEngine(hold_at={hold_at})
if point == "queued":  # stop between the job's folder and the engine's start
    real = cli.execute_job
    def slow(*args, **kwargs):
        time.sleep(60)
        return real(*args, **kwargs)
    cli.execute_job = slow
if point == "writing":  # stall inside the atomic writer, its temp file half written
    real_generate = engine.generate
    def generate(request, job_dir, progress=None, cancel=None):
        def blocks():
            yield b"half a file"
            time.sleep(60)
        atomic.write_stream(job_dir / "v01" / "continuation.wav", blocks())
    engine.generate = generate
sys.exit(cli.main(["continue", {region!r}, "--out", {out!r}, "--variants", "3"],
                  engine_factory=lambda spec, **options: engine))
"""


def _spawn(point: str, region: Path, out: Path) -> subprocess.Popen[bytes]:
    hold_at = {"queued": 0, "running": 1, "one variant written": 2, "writing": 0}[point]
    code = _CHILD.format(
        tests=str(REPO / "tests" / "support"), point=point, hold_at=hold_at, region=str(region), out=str(out)
    )
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, stderr=subprocess.DEVNULL)


def _wait_for(what: Callable[[], bool], child: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert child.poll() is None, f"the child exited early ({child.returncode})"
        assert time.monotonic() < deadline, "the child never got there"
        time.sleep(0.05)


def _job_status(out: Path) -> str | None:
    jobs = [p for p in out.iterdir() if (p / "job.json").is_file()] if out.is_dir() else []
    if not jobs:
        return None
    return str(json.loads((jobs[0] / "job.json").read_text())["status"])


REACHED: dict[str, Callable[[Path], bool]] = {
    "queued": lambda out: _job_status(out) == "queued",
    "running": lambda out: _job_status(out) == "running",
    "one variant written": lambda out: _job_status(out) == "running" and any(out.glob("*/v01/continuation.wav")),
    # the variant's own half-written temp file (job.json's temp files come and go before it, while it is queued)
    "writing": lambda out: any(atomic.temp_owner(p.name)[0] for p in out.glob("*/v01/.*")),
}


@pytest.mark.parametrize("point", list(REACHED))
def test_a_segue_killed_with_kill_9_is_recovered_at_the_next_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], point: str
) -> None:
    region = write_midi_region(tmp_path / "region.mid")
    out = tmp_path / "out"
    child = _spawn(point, region, out)
    try:
        _wait_for(lambda: REACHED[point](out), child)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        child.wait(10)
    (killed,) = [p for p in out.iterdir()]
    assert load_job(killed).status in ("queued", "running")  # what the killed Segue left: nobody will finish it
    code = cli.main(["continue", str(region), "--out", str(out)], engine_factory=lambda spec, **o: FakeEngine())
    assert code == 0, capsys.readouterr().err
    record = load_job(killed)
    assert record.status == "failed" and record.error is not None and record.error.message == INTERRUPTED
    assert record.finished is not None
    leftovers = [p.name for p in out.rglob(".*")]
    assert leftovers == [], f"temp files or owner locks left: {leftovers}"
    assert sorted(load_job(p).status for p in out.iterdir()) == ["done", "failed"]


def test_a_second_segue_leaves_a_job_that_a_live_segue_is_running_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    region = write_midi_region(tmp_path / "region.mid")
    out = tmp_path / "out"
    child = _spawn("writing", region, out)  # running, and stays so for a minute (its write stalls)
    try:
        _wait_for(lambda: REACHED["writing"](out), child)
        (live,) = [p for p in out.iterdir()]
        code = cli.main(["continue", str(region), "--out", str(out)], engine_factory=lambda spec, **o: FakeEngine())
        assert code == 0, capsys.readouterr().err
        assert load_job(live).status == "running"  # its owner is alive: not "interrupted"
        service = BridgeService(FakeEngine(), out)
        service.start()  # the bridge and the app recover at start too
        service.close()
        assert load_job(live).status == "running"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        child.wait(10)
    assert recover_jobs(out) == [live.name]
    assert load_job(live).status == "failed"


def test_segue_jobs_lists_a_killed_job_as_interrupted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    region = write_midi_region(tmp_path / "region.mid")
    out = tmp_path / "out"
    child = _spawn("running", region, out)
    try:
        _wait_for(lambda: REACHED["running"](out), child)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        child.wait(10)
    assert cli.main(["jobs", "--out", str(out), "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["status"] == "failed" and listed["error"]["message"] == INTERRUPTED
