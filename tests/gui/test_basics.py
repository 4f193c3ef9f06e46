"""Producer's basics: the region's piano roll numbered from its real bar on the DAW's timeline, and placing by
itself as a visible setting (off by default: the producer auditions, then places)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gui_rig import Rig, generate_and_wait, wait_engine
from PyQt6.QtCore import QPoint, QPointF, Qt
from PyQt6.QtGui import QWheelEvent
from PyQt6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from bridge.events import DawRegion
from engine.api import Meter
from gui.core.daw_link import RegionFromDaw
from gui.drawing import bar_numbers
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def test_the_piano_roll_numbers_the_regions_real_bars(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    assert bar_numbers(8.0, Meter(4, 4), 17) == [(0.0, 17), (4.0, 18)]
    assert bar_numbers(9.0, Meter(3, 4)) == [(0.0, 1), (3.0, 2), (6.0, 3)]
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    daw = DawRegion(None, region_file, start_beats=64.0, length_beats=8.0, tempo_bpm=120.0, meter=Meter(4, 4))
    rig.session.apply(RegionFromDaw(daw))  # bar 17 on the DAW's timeline
    assert window.region.view.first_bar == 17 and window.region.position.text() == "bar 17"
    rig.session.open_files([region_file])  # a file has no place on the timeline: bar 1
    assert window.region.view.first_bar == 1


def test_placing_by_itself_is_a_visible_setting_off_by_default(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    check = window.connections.place_first
    assert not check.isChecked() and rig.session.service.place == "none"
    rig.session.open_files([region_file])
    rig.models.link.update(peer="127.0.0.1:53211")
    generate_and_wait(qtbot, rig, variants=2)
    qtbot.wait(200)
    assert not rig.models.message.value.text.startswith("Sent ")  # type: ignore[union-attr]
    check.setChecked(True)
    assert rig.session.settings.place_first and rig.session.service.place == "first"
    generate_and_wait(qtbot, rig, variants=2)
    qtbot.waitUntil(lambda: rig.models.message.value.text.startswith("Sent v01"), timeout=5000)  # type: ignore[union-attr]
    rig.session.close()
    again = make_rig()  # kept across a restart
    assert again.session.settings.place_first and again.session.service.place == "first"


def test_the_region_view_zooms_and_scrolls(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])  # 2 bars: 8 quarter notes
    view = window.region.view
    assert view.visible_beats() == (0.0, 8.0)
    view.zoom_at(4.0, 0.5)  # around the middle
    assert view.zoom == 4.0 and view.visible_beats() == (3.0, 5.0)
    middle = QPointF(view.width() / 2, view.height() / 2)
    wheel = QWheelEvent(
        middle,
        view.mapToGlobal(middle),
        QPoint(0, 0),
        QPoint(0, -120),  # one notch towards the user: scroll on along the region
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view, wheel)
    start, end = view.visible_beats()
    assert start > 3.0 and end - start == 2.0
    ctrl = QWheelEvent(
        middle,
        view.mapToGlobal(middle),
        QPoint(0, 0),
        QPoint(0, -120),  # Ctrl: zoom out a step
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view, ctrl)
    assert view.zoom == 4.0 / 1.25
    qtbot.mouseDClick(view, Qt.MouseButton.LeftButton)
    assert view.visible_beats() == (0.0, 8.0)
    view.zoom_at(100.0, 0.0)
    assert view.zoom == 16.0  # at most 16 times
