"""A small RAM file system for disk-full tests: ``with tmpfs(tmp_path / "disk", "2m") as disk: ...``.

Not a test module. Mounting needs root (or CAP_SYS_ADMIN); elsewhere the test is skipped and says why. The
fake-``ENOSPC`` tests next to each tmpfs test run everywhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (mount's syntax: ``2m``, ``12k``) on ``where`` (made if missing) while inside."""
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("a tmpfs needs Linux and mount(8)")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(disk: Path, leave_bytes: int) -> None:
    """Fill ``disk`` until about ``leave_bytes`` are free (a ballast file the test does not care about)."""
    free = shutil.disk_usage(disk).free
    if free > leave_bytes:
        (disk / "ballast").write_bytes(b"\xff" * (free - leave_bytes))
