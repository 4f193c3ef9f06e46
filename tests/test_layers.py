"""The layer rules of shared/DESIGN.md: imports only point down, and the bridge starts without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> list[tuple[str, str]]:
    """(file, module) for every import in a package's files."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.extend((str(path.relative_to(ROOT)), alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(path.relative_to(ROOT)), node.module))
    return found


def test_engine_imports_nothing_above_it() -> None:
    forbidden = ("bridge", "gui", "PyQt6", "pythonosc", "mido.ports", "rtmidi", "sounddevice")
    bad = [(f, m) for f, m in imported_modules("engine") if m.split(".")[0] in forbidden or m in forbidden]
    assert bad == []


def test_bridge_uses_only_the_engine_api() -> None:
    # engine.atomic (the one file writer) and engine.ownership (who owns a job folder) are torch-free, like the api
    allowed = ("engine", "engine.api", "engine.errors", "engine.atomic", "engine.ownership")
    # engine.provenance (what a file says about where it came from) is stdlib-only too: placement and the CLI use it
    allowed += tuple(f"engine.provenance.{m}" for m in ("riff", "record", "stamp", "report"))
    bad = [
        (f, m)
        for f, m in imported_modules("bridge")
        if m.split(".")[0] in ("gui", "PyQt6") or (m.startswith("engine") and m not in allowed)
    ]
    assert bad == []


def test_engine_api_imports_no_torch() -> None:
    light_files = ("api.py", "errors.py", "atomic.py", "ownership.py")
    light = [m for f, m in imported_modules("engine") if f.endswith(light_files)]
    assert light and not [m for m in light if m.split(".")[0] in ("torch", "miditok", "symusic", "numpy")]


@pytest.mark.parametrize("module", ["bridge.cli", "engine.api"])
def test_starts_without_loading_torch(module: str) -> None:
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
