"""engine/atomic.py: every write is a checked temp file renamed into place; a full disk says so plainly."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tmpfs import tmpfs

from engine import atomic
from engine.errors import BadInputError, DiskFullError, EngineError
from engine.render import wavfile
from engine.render.wavfile import write_wav

DISK_FULL = r"^the disk is full at .+: free \d+ MB and run again$"
REPO = Path(__file__).resolve().parents[2]


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_write_lands_whole_under_its_name_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = atomic.write_bytes(tmp_path / "sub" / "a.bin", b"x" * 10_000)
    assert target.read_bytes() == b"x" * 10_000
    assert _names(target.parent) == ["a.bin"]
    atomic.write_json(tmp_path / "sub" / "a.bin", {"k": "é"})  # overwrite is the default for our own files
    assert target.read_text(encoding="utf-8") == '{\n  "k": "é"\n}\n'


def test_a_file_that_exists_is_never_overwritten_when_asked_not_to(tmp_path: Path) -> None:
    (tmp_path / "user.wav").write_bytes(b"the user's")
    with pytest.raises(EngineError, match="already exists"):
        atomic.write_bytes(tmp_path / "user.wav", b"ours", overwrite=False)
    assert (tmp_path / "user.wav").read_bytes() == b"the user's"
    assert _names(tmp_path) == ["user.wav"]


def test_a_disk_that_fills_up_mid_write_is_a_disk_full_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls = {"n": 0}

    def write_then_full(fd: int, data: memoryview) -> int:  # the first block lands, the next one finds no room
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data[: len(data) // 2]))

    monkeypatch.setattr(atomic.os, "write", write_then_full)
    with pytest.raises(DiskFullError, match=DISK_FULL) as caught:
        atomic.write_bytes(tmp_path / "job.json", b"{}" * 5000)
    assert isinstance(caught.value, BadInputError)  # exit code 2: the user frees space and runs again
    assert caught.value.path == str(tmp_path / "job.json")
    assert _names(tmp_path) == []


def test_a_short_write_never_gets_the_final_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def short(fd: int, view: memoryview) -> int:  # a writer that silently drops the second half
        os.write(fd, bytes(view[: len(view) // 2]))
        return len(view)

    monkeypatch.setattr(atomic, "_write_all", short)
    with pytest.raises(EngineError, match="500 of 1000 bytes reached the disk"):
        atomic.write_bytes(tmp_path / "a.bin", b"y" * 1000)
    assert _names(tmp_path) == []


def test_a_wav_that_reads_back_short_is_refused_even_with_a_consistent_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What PYTHONOPTIMIZE did: soundfile's write came up short, and the header was fixed to match the frames
    that did land, so the torn file looked whole. The frames are checked on disk now."""
    real_encode = wavfile._encode

    def torn(audio: np.ndarray, rate: int) -> bytes | memoryview:
        return real_encode(audio[:, : audio.shape[1] * 2 // 3], rate)

    monkeypatch.setattr(wavfile, "_encode", torn)
    with pytest.raises(EngineError, match="reads back as 6000 frames, 2 channels at 8000 Hz, not 9000 frames"):
        write_wav(tmp_path / "stem.wav", np.zeros((2, 9000), np.float32), 8000)
    assert _names(tmp_path) == []


def test_a_wav_on_a_2_mb_disk_is_a_disk_full_error_with_no_torn_file(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        write_wav(disk / "small.wav", np.zeros((2, 8000), np.float32), 8000)  # fits
        with pytest.raises(DiskFullError, match=DISK_FULL):
            write_wav(disk / "stem.wav", np.zeros((2, 441_000), np.float32), 44_100)  # 2.6 MB
        assert _names(disk) == ["small.wav"]


@pytest.mark.parametrize("optimize", ["", "-O"], ids=["plain", "PYTHONOPTIMIZE"])
def test_a_wav_on_a_full_disk_fails_the_same_under_python_dash_o(tmp_path: Path, optimize: str) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        code = (
            "import numpy as np, sys\n"
            "from engine.render.wavfile import write_wav\n"
            "from engine.errors import DiskFullError\n"
            "try:\n"
            f"    write_wav({str(disk / 'stem.wav')!r}, np.zeros((2, 441000), np.float32), 44100)\n"
            "except DiskFullError as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        argv = [sys.executable, *([optimize] if optimize else []), "-c", code]
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 3, done.stderr
        assert "the disk is full at" in done.stdout and "AssertionError" not in done.stderr
        assert _names(disk) == []  # no file under its final name, truncated or not, and no temp file


def test_a_12_kb_disk_takes_a_small_file_and_refuses_a_big_one(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "12k") as disk:
        atomic.write_text(disk / "small.json", "{}\n")
        with pytest.raises(DiskFullError, match=DISK_FULL):
            atomic.write_bytes(disk / "big.bin", b"z" * 64_000)
        assert _names(disk) == ["small.json"]


def test_a_library_writer_that_hides_a_full_disk_in_its_own_error_is_still_a_disk_full_error(tmp_path: Path) -> None:
    def fill(path: Path) -> None:
        path.write_bytes(b"part")
        raise RuntimeError("safetensors: No space left on device (os error 28)")

    with pytest.raises(DiskFullError, match=DISK_FULL):
        atomic.write_with(tmp_path / "model.safetensors", fill)
    assert _names(tmp_path) == []

    def bad(path: Path) -> None:
        raise ValueError("not a tensor")

    with pytest.raises(ValueError, match="not a tensor"):  # other errors pass on unchanged
        atomic.write_with(tmp_path / "model.safetensors", bad)


def test_a_library_writer_keeps_the_suffix_it_needs(tmp_path: Path) -> None:
    atomic.write_with(tmp_path / "codes.npy", lambda p: np.save(p, np.arange(3)))
    assert _names(tmp_path) == ["codes.npy"]
    assert np.load(tmp_path / "codes.npy").tolist() == [0, 1, 2]


def test_stray_temp_files_of_dead_writers_go_and_a_live_writers_stay(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    job = tmp_path / "job" / "v01"
    job.mkdir(parents=True)
    live_temp = job / f".continuation.{os.getpid()}-0123abcd.tmp.wav"
    dead_temp = job / f".continuation.{dead_pid}-0123abcd.tmp.wav"
    legacy_old = job / ".job.json.k2j4h5g6.tmp"
    legacy_new = job / ".job.json.a1b2c3d4.tmp"
    legacy_pid = job / f".model.tmp-{dead_pid}"
    user = job / "my notes.tmp"  # not one of ours: never touched
    for path in (live_temp, dead_temp, legacy_old, legacy_new, legacy_pid, user):
        path.write_bytes(b"x")
    old = time.time() - 2 * atomic.STALE_TEMP_AGE_S
    os.utime(legacy_old, (old, old))
    removed = atomic.remove_stray_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted([dead_temp.name, legacy_old.name, legacy_pid.name])
    assert _names(job) == sorted([live_temp.name, legacy_new.name, user.name])
    atomic.remove_stray_temps(tmp_path, any_writer=True)  # a folder we own: every temp of ours goes
    assert _names(job) == [user.name]


def test_disk_full_is_recognised_through_chained_errors() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("write failed") from inner
    except RuntimeError as outer:
        assert atomic.is_disk_full(outer)
    assert not atomic.is_disk_full(OSError(errno.EACCES, "Permission denied"))


def test_a_new_file_takes_the_first_free_name_and_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "take.wav").write_bytes(b"the user's")
    names = ["take.wav", "take-2.wav", "take-3.wav"]
    first = atomic.write_first_free(tmp_path, iter(names), lambda out: out.write(b"ours"))
    second = atomic.write_first_free(tmp_path, iter(names), lambda out: out.write(b"ours too"))
    assert (first, second) == (tmp_path / "take-2.wav", tmp_path / "take-3.wav")
    assert atomic.write_first_free(tmp_path, iter(names), lambda out: out.write(b"no room")) is None
    assert (tmp_path / "take.wav").read_bytes() == b"the user's"
    assert _names(tmp_path) == sorted(names)  # no temp file left


def test_a_new_file_on_a_full_disk_is_a_disk_full_error(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "12k") as disk:
        with pytest.raises(DiskFullError, match=DISK_FULL):
            atomic.write_first_free(disk, iter(["a.wav"]), lambda out: out.write(b"x" * 64_000))
        assert _names(disk) == []
