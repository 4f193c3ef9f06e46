"""Controls that say what they do: the star in each row is clickable, Place in DAW is the primary button only when a
placement has somewhere to go, no MIDI chip for a variant without MIDI, Show the files always says where they are,
and each row gives its length in bars."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from gui_rig import Rig, generate_and_wait, wait_engine
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QDesktopServices
from PyQt6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from gui.variant_list import length_text, star_rect
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def _ready(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path) -> tuple[Rig, QtMainWindow]:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=3)
    return rig, window


def test_clicking_a_rows_star_stars_that_variant(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    view = window.variants.list
    row = view.visualRect(window.variants.list_model.index(1))
    star = star_rect(row.toRectF()).center().toPoint()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=star)
    assert [i.starred for i in rig.models.variants.value.items] == [False, True, False]
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=star)
    assert not any(i.starred for i in rig.models.variants.value.items)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=row.center())  # elsewhere: selects only
    assert not any(i.starred for i in rig.models.variants.value.items)


def test_place_in_daw_is_primary_only_when_a_daw_is_there(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    button = window.variants.place_button
    assert button.objectName() != "primary" and "No DAW has talked to Segue" in button.toolTip()
    rig.models.link.update(peer="127.0.0.1:53211", status="connected")
    assert button.objectName() == "primary" and "Insert the variant" in button.toolTip()


def test_no_midi_chip_for_a_variant_without_midi(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    assert window.variants.drag_midi.isVisible()
    state = rig.models.variants.value
    audio_only = tuple(
        dataclasses.replace(i, files={k: v for k, v in i.files.items() if "midi" not in k}) for i in state.items
    )
    rig.models.variants.update(items=audio_only)
    assert not window.variants.drag_midi.isVisible() and window.variants.drag_audio.isVisible()


@pytest.mark.parametrize("opened", [False, True])
def test_show_the_files_always_says_where_they_are(
    qtbot: QtBot,
    make_rig: MakeRig,
    make_window: MakeWindow,
    region_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    opened: bool,
) -> None:
    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened)  # no file manager registered, or one
    actions = {a.text(): a for a in window.variants.row_menu("v02").actions()}
    actions["Show the files"].trigger()
    folder = rig.models.variants.value.items[1].files["audio"].parent
    message = rig.models.message.value
    assert message is not None and str(folder) in message.text and "copied to the clipboard" in message.text
    assert ("no file manager answered" in message.text) is not opened
    clipboard = QApplication.clipboard()
    assert clipboard is not None and clipboard.text() == str(folder)


def test_each_row_gives_its_length_in_bars(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, _ = _ready(qtbot, make_rig, make_window, region_file)
    state = rig.models.variants.value
    item = state.items[0]
    assert item.duration_seconds == pytest.approx(8.0)  # the fake's 4 bars at 120 BPM
    assert length_text(item, state) == "4 bars · 8.0 s"
