"""The GUI tests' setup: offscreen Qt, a session over a fake engine (no torch), a fake sound output (no sound card),
no OSC sockets unless a test asks, and a window built on it.

``QT_QPA_PLATFORM`` is set here, before anything imports Qt, so the tests need no screen.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import dataclasses  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("PyQt6.QtWidgets", reason="the GUI tests need the gui extra (PyQt6)")

from fake_engine import FakeEngine, write_midi  # noqa: E402
from gui_rig import FakeClock, Rig, StemEngine  # noqa: E402
from pytestqt.qtbot import QtBot  # noqa: E402

from engine import entrypoints  # noqa: E402
from gui.adapters import QtEventPump  # noqa: E402
from gui.core.audition import FakeOutput  # noqa: E402
from gui.core.session import Session, SessionDeps  # noqa: E402
from gui.core.settings import GuiSettings  # noqa: E402
from gui.theme import apply_theme  # noqa: E402
from gui.window import QtMainWindow  # noqa: E402

# The offscreen platform says this once per top-level window it shows; it is not a problem of ours.
OFFSCREEN_NOISE = "This plugin does not support propagateSizeHints"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOISE))


@pytest.fixture(autouse=True, scope="session")
def _themed(qapp: Any) -> None:
    apply_theme(qapp)  # once: a style sheet on the application re-polishes every widget


@pytest.fixture
def region_file(tmp_path: Path) -> Path:
    return write_midi(tmp_path / "regions" / "verse.mid", 2)


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """``make_rig(engine=..., settings=..., osc=False, ...)``: a started session; each call makes a fresh one over
    the same folders (a restart)."""
    made: list[Rig] = []

    def make(
        engine: FakeEngine | None = None,
        settings: GuiSettings | None = None,
        osc: bool = False,
        ports: tuple[str, ...] = ("Clock A", "Clock B"),
        start: bool = True,
        factory_error: Exception | None = None,
        real_engine: bool = False,
        engine_factory: Callable[..., Any] | None = None,
    ) -> Rig:
        engine = engine or StemEngine()
        out_dir = tmp_path / "jobs"
        settings_path = tmp_path / "config" / "gui.json"
        outputs: list[FakeOutput] = []
        clocks: list[FakeClock] = []
        specs: list[tuple[str, dict[str, Any]]] = []

        def fake_factory(spec: str, **options: Any) -> FakeEngine:
            specs.append((spec, options))
            if factory_error is not None:
                raise factory_error
            return engine  # type: ignore[return-value]

        def output_factory() -> FakeOutput:
            outputs.append(FakeOutput())
            return outputs[-1]

        def clock_factory(port: str) -> FakeClock:
            clocks.append(FakeClock(port))
            return clocks[-1]

        deps = SessionDeps(
            engine_factory=entrypoints.open_engine if real_engine else engine_factory or fake_factory,
            output_factory=output_factory,
            midi_inputs=lambda: list(ports),
            clock_factory=clock_factory,  # type: ignore[arg-type]
            osc=osc,
        )
        if settings is None:
            from gui.core.settings import load_settings

            settings = load_settings(settings_path).settings
        settings = dataclasses.replace(settings, out_dir=str(out_dir), osc_port=0)
        pump = QtEventPump()
        session = Session(settings, settings_path, deps, post=pump.post)
        pump.set_handler(session.apply)
        rig = Rig(session, engine, outputs, clocks, specs, out_dir, settings_path, pump)
        made.append(rig)
        if start:
            session.start()
        return rig

    yield make
    for rig in made:
        rig.session.close()


@pytest.fixture
def make_window(qtbot: QtBot) -> Callable[[Rig], QtMainWindow]:
    def make(rig: Rig) -> QtMainWindow:
        window = QtMainWindow(rig.session)
        qtbot.addWidget(window)
        window.resize(1440, 900)
        return window

    return make
