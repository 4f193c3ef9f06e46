"""The window from a 1024x640 laptop beside the DAW to a 2560x1440 screen, in Continue and Accompany, with variants,
stems and a long message shown: every text widget as wide as its text, nothing cut off or covered, and the window
shrinks to 1024x640 (its minimum width was 1271 px)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fake_engine import write_midi
from gui_rig import Rig, generate_and_wait, wait_engine
from layout_check import layout_faults
from pytestqt.qtbot import QtBot

from gui.window import NARROW_WINDOW, QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def _settle(qtbot: QtBot, window: QtMainWindow, width: int, height: int) -> None:
    window.resize(width, height)
    qtbot.wait(80)  # the flow rows and the column split settle on the next turns of the event loop
    window.resize(width, height)
    qtbot.wait(80)


@pytest.mark.parametrize("mode", ["continue", "accompany"])
def test_the_window_lays_out_cleanly_from_1024x640_to_2560x1440(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path, mode: str
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    rig.session.update_form(mode=mode, parts=("bass", "drums") if mode == "accompany" else ())
    generate_and_wait(qtbot, rig, variants=4)  # buttons enabled, stems as chips, a long job name
    rig.session.say("error", "a long message for the bar above the panels " * 3)
    rig.models.link.update(status="listening", osc_port=9750)  # the top bar as the real app fills it
    rig.models.engine.update(name="segue-midi-small, segue-accompany-small (cuda:0)")
    assert window.minimumSizeHint().width() <= 1024 and window.minimumSizeHint().height() <= 640
    for width, height in ((1024, 640), (1440, 900), (2560, 1440), (1024, 640)):
        _settle(qtbot, window, width, height)
        assert (window.width(), window.height()) == (width, height)
        assert layout_faults(window) == [], f"at {width}x{height}"
    assert window.variants.list.height() >= window.variants.list.minimumHeight()  # a variant row stays in view


def test_the_window_never_grows_by_itself_after_a_long_named_job(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, tmp_path: Path
) -> None:
    long_name = "verse-take-" + "with-a-very-long-name-" * 6
    region = write_midi(tmp_path / "regions" / f"{long_name}.mid", 2)
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    rig.session.open_files([region])
    rig.session.update_form(mode="accompany", parts=("bass", "drums"))
    generate_and_wait(qtbot, rig, variants=2)
    qtbot.wait(80)
    shown = window.variants.job_label
    assert "verse-take-with-a-very-long-name" in shown.full_text and shown.toolTip() == shown.full_text
    assert (window.width(), window.height()) == (1440, 900)
    assert window.minimumSizeHint().width() < NARROW_WINDOW  # so it shrinks on until the Connections column hides
    _settle(qtbot, window, 1024, 640)
    assert (window.width(), window.height()) == (1024, 640)
    rig.session.close()
    again = make_rig()  # a restart: the latest job opens at start
    window = make_window(again)
    window.show()
    qtbot.waitUntil(lambda: again.models.variants.value.job is not None, timeout=3000)
    qtbot.wait(80)
    assert (window.width(), window.height()) == (1440, 900) and window.minimumSizeHint().width() < NARROW_WINDOW


def test_a_long_message_never_pushes_the_window_taller(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=4)
    _settle(qtbot, window, 1024, 640)
    long = "the engine process stopped while generating: " + "a very long traceback line " * 60
    rig.session.say("error", long)
    qtbot.wait(80)
    assert (window.width(), window.height()) == (1024, 640)
    bar = window.message_bar
    assert bar.text.toolTip() == long.strip() or bar.text.toolTip() == long  # whole in the tooltip
    assert rig.models.messages.value[-1].text == long  # and in All messages


@pytest.mark.parametrize("mode", ["continue", "accompany"])
def test_variants_arriving_in_a_small_window_do_not_grow_it(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path, mode: str
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    _settle(qtbot, window, 1024, 640)
    rig.session.open_files([region_file])
    rig.session.update_form(mode=mode, parts=("bass", "drums") if mode == "accompany" else ())
    generate_and_wait(qtbot, rig, variants=4)  # stems, a job row, messages, thumbnails
    qtbot.wait(150)
    assert (window.width(), window.height()) == (1024, 640)
