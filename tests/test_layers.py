"""The layer rules of shared/DESIGN.md: imports only point down, and the bridge starts without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tools.import_cycles import import_graph, strongly_connected

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
    allowed = ("engine", "engine.api", "engine.entrypoints", "engine.errors", "engine.atomic", "engine.ownership")
    allowed += ("engine.process",)  # the local engine in a child process (the app's; the bridge may use it too)
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


def test_no_module_of_ours_is_imported_by_name() -> None:
    # importlib.import_module("engine.local") hides an edge from the layer contracts (pyproject.toml): import in
    # the function instead; the gui is found through its entry point
    by_name = []
    for package in ("engine", "bridge", "gui"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute | ast.Name)
                    and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and str(node.args[0].value).split(".")[0] in ("engine", "bridge", "gui")
                ):
                    by_name.append((str(path.relative_to(ROOT)), node.args[0].value))
    assert by_name == []


def test_the_modules_import_one_another_without_a_cycle() -> None:
    # the runtime import graph (imports inside functions count, `if TYPE_CHECKING:` ones do not); `make lint` runs
    # the same check: `.venv/bin/python -m tools.import_cycles`
    ours = import_graph()
    assert strongly_connected(ours) == []
