"""The GUI's layer rules (shared/DESIGN.md): it uses the engine only through engine.api, nothing imports it, and
its model layer has no Qt; the window starts without loading torch (a remote engine needs none)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# the Qt-free half of the gui is a package of its own (pyproject.toml's contracts check it imports no Qt at all),
# and the app's entry module imports Qt only when it runs
QT_FREE = [*sorted((ROOT / "gui" / "core").glob("*.py")), ROOT / "gui" / "app.py"]


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def test_the_gui_uses_only_the_engines_public_api() -> None:
    bad = [
        (path.name, module)
        for path in sorted((ROOT / "gui").rglob("*.py"))
        for module in _imports(path)
        # engine.atomic: the one torch-free file writer, shared with the bridge; engine.provenance.record: the
        # (stdlib) provenance settings the app's Files card sets; engine.evaluate.audio: the numpy-only tempo
        # estimate of an audio region; engine.environment: the (stdlib) SEGUE_* variables the app reads at start
        if module.startswith("engine")
        and module
        not in (
            "engine",
            "engine.api",
            "engine.entrypoints",
            "engine.process",
            "engine.errors",
            "engine.atomic",
            "engine.environment",
            "engine.provenance.record",
            "engine.evaluate.audio",
        )
    ]
    assert bad == []


def test_nothing_imports_the_gui() -> None:
    bad = [
        (str(path.relative_to(ROOT)), module)
        for package in ("engine", "bridge")
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in _imports(path)
        if module.split(".")[0] == "gui"
    ]
    assert bad == []


def test_the_panel_models_and_session_have_no_qt_at_module_level() -> None:
    for path in QT_FREE:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        modules = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        modules += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        assert not [m for m in modules if m.startswith("PyQt6")], path.name


def test_the_window_starts_without_torch() -> None:
    code = (
        "import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PyQt6.QtWidgets import QApplication; app = QApplication([])\n"
        "import gui.window, gui.app, gui.core.session\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
