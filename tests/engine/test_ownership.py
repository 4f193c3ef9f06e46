"""engine/ownership.py: a job folder is owned through a lock its process holds; a dead owner's job is stale."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.ownership import OWNER_FILE, RESERVE_BYTES, FolderClaim, owner_of, stale_folders

REPO = Path(__file__).resolve().parents[2]


def _status(folder: Path) -> str | None:
    path = folder / "status"
    return path.read_text() if path.exists() else None


def _job(root: Path, name: str, status: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "status").write_text(status)
    return folder


def test_a_claim_records_its_process_and_a_reserve_it_can_give_back(tmp_path: Path) -> None:
    claim = FolderClaim.take(tmp_path)
    owner = owner_of(tmp_path)
    assert owner is not None and owner["pid"] == os.getpid()
    assert (tmp_path / OWNER_FILE).stat().st_size > RESERVE_BYTES
    assert claim.free_reserve() and not claim.free_reserve()
    assert (tmp_path / OWNER_FILE).stat().st_size == 0
    claim.release()
    claim.release()
    assert not (tmp_path / OWNER_FILE).exists()


def test_a_folder_held_by_a_live_process_is_not_stale_and_one_whose_process_died_is(tmp_path: Path) -> None:
    live = _job(tmp_path, "live", "running")
    dead = _job(tmp_path, "dead", "running")
    done = _job(tmp_path, "done", "done")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from engine.ownership import FolderClaim
                claims = [FolderClaim.take(Path({str(live)!r})), FolderClaim.take(Path({str(dead)!r}))]
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert list(stale_folders(tmp_path, _status)) == []  # both held by a live process
        (dead / ".continuation.999999999-0123abcd.tmp.wav").write_bytes(b"partial")
        holder.kill()  # kill -9: the kernel drops its locks
        holder.wait(10)
        found = list(stale_folders(tmp_path, _status))
        assert [(f.name, s) for f, s, _ in found] == [("dead", "running"), ("live", "running")]
        assert [p.name for p in dead.iterdir() if p.name.endswith(".wav")] == []  # its temp file is gone
        assert FolderClaim.try_take(live) is None  # this process holds it now, through the yielded claim
        for _, _, claim in found:
            claim.release()
        assert done.exists() and not (done / OWNER_FILE).exists()
    finally:
        holder.kill()
        holder.wait(10)


def test_a_job_that_ends_between_the_look_and_the_lock_is_left_alone(tmp_path: Path) -> None:
    folder = _job(tmp_path, "job", "running")
    calls = {"n": 0}

    def status_of(path: Path) -> str | None:
        calls["n"] += 1
        return "running" if calls["n"] == 1 else "done"  # its owner wrote "done" and let go meanwhile

    assert list(stale_folders(tmp_path, status_of)) == []
    assert not (folder / OWNER_FILE).exists()


def test_without_flock_the_pid_in_the_owner_file_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from engine import ownership

    def no_flock(fd: int, operation: int) -> None:  # a network mount without locks
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(ownership.fcntl, "flock", no_flock)
    (tmp_path / "mine").mkdir()
    mine = FolderClaim.take(tmp_path / "mine")
    owner = owner_of(tmp_path / "mine")
    assert owner is not None and owner["pid"] == os.getpid()
    assert FolderClaim.try_take(tmp_path / "mine") is None  # held by a live process: this one
    (tmp_path / "dead").mkdir()
    (tmp_path / "dead" / OWNER_FILE).write_text('{"pid": 999999999}\n')
    claim = FolderClaim.try_take(tmp_path / "dead")
    assert claim is not None  # its owner is gone
    claim.release()
    (tmp_path / "live").mkdir()
    (tmp_path / "live" / OWNER_FILE).write_text('{"pid": 1}\n')  # init: always alive
    assert FolderClaim.try_take(tmp_path / "live") is None
    mine.release()
