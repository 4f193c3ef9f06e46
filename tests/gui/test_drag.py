"""Dragging a variant (its mix, its MIDI, all stems or one) out of the window gives file URLs of existing files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gui_rig import Rig, generate_and_wait, wait_engine
from PyQt6.QtCore import QMimeData, Qt
from pytestqt.qtbot import QtBot

from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def _files(mime: QMimeData | None) -> list[Path]:
    assert mime is not None and mime.hasUrls()
    urls = mime.urls()
    assert all(url.isLocalFile() and url.scheme() == "file" for url in urls)
    paths = [Path(url.toLocalFile()) for url in urls]
    assert all(path.is_absolute() and path.is_file() for path in paths)
    return paths


def _with_variants(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region: Path) -> tuple[Rig, QtMainWindow]:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region])
    generate_and_wait(qtbot, rig, variants=2)
    return rig, window


def test_dragging_a_row_gives_the_variants_audio(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _with_variants(qtbot, make_rig, make_window, region_file)
    model = window.variants.list_model
    assert "text/uri-list" in model.mimeTypes()
    assert model.flags(model.index(1)) & model.flags(model.index(1)).ItemIsDragEnabled
    paths = _files(model.mimeData([model.index(1)]))
    job_dir = rig.models.variants.value.job_dir
    assert job_dir is not None and paths == [(job_dir / "v02" / "continuation.wav").resolve()]


def test_drag_chips_give_audio_midi_stems_and_one_stem(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _with_variants(qtbot, make_rig, make_window, region_file)
    panel = window.variants
    rig.session.select("v02")
    assert [p.name for p in _files(panel.drag_audio.mime_data())] == ["continuation.wav"]
    assert [p.name for p in _files(panel.drag_midi.mime_data())] == ["continuation.mid"]
    assert sorted(p.name for p in _files(panel.drag_stems.mime_data())) == ["bass.wav", "piano.wav"]
    bass = next(c for c in panel.stem_chips if c.text().endswith("bass"))
    (only,) = _files(bass.mime_data())
    assert only.name == "bass.wav" and only.parent.parent.name == "v02"


def test_a_missing_file_is_never_dragged(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _with_variants(qtbot, make_rig, make_window, region_file)
    item = rig.models.variants.value.items[0]
    item.files["midi"].unlink()
    rig.session.select(item.variant_id)
    assert window.variants.drag_midi.mime_data() is None
    assert [p.name for p in _files(window.variants.drag_audio.mime_data())] == ["continuation.wav"]


def test_pressing_and_moving_on_a_chip_starts_a_drag_with_the_files(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PyQt6.QtCore import QPoint
    from PyQt6.QtWidgets import QApplication

    from gui import widgets

    started: list[tuple[list[Path], object]] = []

    class FakeDrag:  # QDrag.exec runs the platform's drag loop, which needs a real desktop
        def __init__(self, source: object) -> None:
            self.mime: QMimeData | None = None

        def setMimeData(self, mime: QMimeData) -> None:
            self.mime = mime

        def exec(self, action: object) -> object:
            started.append((_files(self.mime), action))
            return action

    monkeypatch.setattr(widgets, "QDrag", FakeDrag)
    rig, window = _with_variants(qtbot, make_rig, make_window, region_file)
    window.show()
    chip = window.variants.drag_midi
    qtbot.mousePress(chip, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    far = QPoint(5 + 3 * QApplication.startDragDistance(), 5)
    qtbot.mouseMove(chip, far)
    chip.mouseMoveEvent(_move(far))  # offscreen Qt may not deliver a move with the button held
    assert len(started) == 1
    files, action = started[0]
    assert [p.name for p in files] == ["continuation.mid"] and action == Qt.DropAction.CopyAction


def _move(pos: object) -> object:
    from PyQt6.QtCore import QEvent, QPointF
    from PyQt6.QtGui import QMouseEvent

    point = QPointF(pos)  # type: ignore[call-overload]
    return QMouseEvent(
        QEvent.Type.MouseMove,
        point,
        point,
        Qt.MouseButton.LeftButton,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
