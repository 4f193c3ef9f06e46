"""The window over the real local engine and the shipped MIDI model (slow: loads torch; `make test-slow`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gui_rig import Rig
from PyQt6.QtCore import Qt
from pytestqt.qtbot import QtBot

from engine.process import process_engine_factory
from gui.window import QtMainWindow

pytestmark = pytest.mark.slow
REGION = Path(__file__).resolve().parents[2] / "examples" / "regions" / "pop_100bpm_4-4.mid"


def test_generate_with_the_shipped_model_from_the_window(
    qtbot: QtBot, make_rig: Callable[..., Rig], make_window: Callable[[Rig], QtMainWindow], monkeypatch: Any
) -> None:
    pytest.importorskip("torch")
    monkeypatch.setenv("SEGUE_THREADS", "1")
    rig = make_rig(engine_factory=process_engine_factory)  # as the app runs it: in its own process
    window = make_window(rig)
    window.show()
    qtbot.waitUntil(lambda: rig.models.engine.value.status == "ready", timeout=120_000)
    assert "segue-midi-small" in window.connections.model_list.text()
    rig.session.open_files([REGION])
    window.generate.bars.setValue(2)
    window.generate.variants.setValue(2)
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(rig.models.variants.value.items) == 2, timeout=180_000)
    qtbot.waitUntil(lambda: all(i.audio and i.midi for i in rig.models.variants.value.items), timeout=10_000)
    item = rig.models.variants.value.items[0]
    assert item.stems and all(p.is_file() for p in item.files.values())
    assert [c.text() for c in window.variants.stem_chips]  # one chip per rendered part
    assert rig.models.variants.value.job is not None and rig.models.variants.value.job.model == "segue-midi-small"
