"""Run Lua for the tests: a stock ``lua5.4`` (Debian ``lua5.4``; ``make system-deps``). Not a test module."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "daw_templates"
LUA_CANDIDATES = ("lua5.4", "lua5.3", "lua")


def lua_binary() -> str:
    for name in LUA_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Lua interpreter (install Debian lua5.4: `apt-get install -y lua5.4`, or run `make system-deps`)")


def run_lua(code: str, workdir: Path, timeout: float = 30.0) -> str:
    """Run ``code`` (a Lua chunk) with the working directory ``workdir``; its stdout, or the test fails with stderr."""
    script = workdir / "test-chunk.lua"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [lua_binary(), str(script)], capture_output=True, text=True, timeout=timeout, cwd=workdir, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"lua failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def lua_string(text: str) -> str:
    """``text`` as a Lua string literal."""
    return '"' + "".join(c if c.isalnum() or c in " /._-+:,@" else f"\\{ord(c):03d}" for c in text) + '"'
