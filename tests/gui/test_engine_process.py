"""The local engine in its own process (engine/process.py): generation, progress, cancel, failures and a child
that dies, through the window. The child is spawned and runs the bridge tests' fake engine."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from child_engines import broken_factory, fake_engine_factory
from gui_rig import Rig
from PyQt6.QtCore import Qt
from pytestqt.qtbot import QtBot

from engine.errors import EngineError
from engine.process import ProcessEngine
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def _process_rig(make_rig: MakeRig, engines: list[ProcessEngine], **options: Any) -> Rig:
    def factory(spec: str, **ignored: Any) -> ProcessEngine:
        engines.append(ProcessEngine(spec, fake_engine_factory, options))
        return engines[-1]

    return make_rig(engine_factory=factory)  # the fake engine, in a child process


def test_generation_runs_in_the_child_and_the_window_shows_it(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    engines: list[ProcessEngine] = []
    rig = _process_rig(make_rig, engines)
    window = make_window(rig)
    qtbot.waitUntil(lambda: rig.models.engine.value.status == "ready", timeout=30_000)
    child = engines[0].pid
    assert child is not None and child != os.getpid()
    assert rig.models.engine.value.name == f"fake in process {child}"
    rig.session.open_files([region_file])
    fractions: list[float] = []
    rig.models.jobs.subscribe(lambda s: fractions.extend(r.fraction for r in s.rows if r.status == "running"))
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(rig.models.variants.value.items) == 4, timeout=15_000)
    assert {0.25, 0.5, 0.75} <= set(fractions)
    assert all(p.is_file() for item in rig.models.variants.value.items for p in item.files.values())
    rig.session.close()
    assert not engines[0]._process.is_alive()  # closing the app stops the engine process


def test_cancel_and_failure_cross_the_process_boundary(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    engines: list[ProcessEngine] = []
    rig = _process_rig(make_rig, engines, hold_at=2)
    window = make_window(rig)
    qtbot.waitUntil(lambda: rig.models.engine.value.status == "ready", timeout=30_000)
    rig.session.open_files([region_file])
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(r.fraction >= 0.25 for r in rig.models.jobs.value.rows), timeout=15_000)
    qtbot.mouseClick(window.generate.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: [r.status for r in rig.models.jobs.value.rows] == ["cancelled"], timeout=15_000)
    assert window.message_bar.text.text() == "Generation cancelled."


def test_an_error_in_the_child_is_the_jobs_message(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    engines: list[ProcessEngine] = []
    rig = _process_rig(make_rig, engines, fail=EngineError("the model ran out of memory; try fewer variants"))
    window = make_window(rig)
    qtbot.waitUntil(lambda: rig.models.engine.value.status == "ready", timeout=30_000)
    rig.session.open_files([region_file])
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(r.status == "failed" for r in rig.models.jobs.value.rows), timeout=15_000)
    assert "ran out of memory; try fewer variants" in window.message_bar.text.text()


def test_a_child_that_dies_mid_job_is_explained(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    engines: list[ProcessEngine] = []
    rig = _process_rig(make_rig, engines, hold_at=1)
    window = make_window(rig)
    qtbot.waitUntil(lambda: rig.models.engine.value.status == "ready", timeout=30_000)
    rig.session.open_files([region_file])
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(r.status == "running" for r in rig.models.jobs.value.rows), timeout=15_000)
    pid = engines[0].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # the kernel's out-of-memory killer, say
    qtbot.waitUntil(lambda: any(r.status == "failed" for r in rig.models.jobs.value.rows), timeout=15_000)
    row = window.generate.job_rows[0]
    assert "the engine process stopped while generating (exit code -9)" in row.message.full_text
    qtbot.waitUntil(lambda: window.engine_light.status == "failed", timeout=5_000)  # and the engine shows it
    assert "Engine: the engine process stopped; press Connect" in window.message_bar.text.text()
    qtbot.mouseClick(window.connections.connect_button, Qt.MouseButton.LeftButton)  # start it again
    qtbot.waitUntil(lambda: rig.models.engine.value.status == "ready", timeout=30_000)
    assert len(engines) == 2 and engines[1].alive


def test_a_child_that_cannot_build_its_engine_says_why() -> None:
    with pytest.raises(ConnectionRefusedError, match="not mounted"):
        ProcessEngine("local", broken_factory)
