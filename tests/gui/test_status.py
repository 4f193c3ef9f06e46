"""Status a producer can trust: the History shows a job's real status while it runs, a placement's message names
every file sent, every message of the session stays reachable (the log), the job list can be cleared and shows
the latest jobs only, and the keyboard shortcuts are listed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gui_rig import Rig, StemEngine, generate_and_wait, wait_engine
from PyQt6.QtCore import Qt
from pytestqt.qtbot import QtBot

from gui.messages import log_text
from gui.panel_generate import JOB_ROWS_SHOWN
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def test_the_history_shows_a_running_jobs_real_status(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    engine = StemEngine(hold_at=2)  # the first variant written (progress reported), then it holds
    rig = make_rig(engine=engine)
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    assert rig.session.generate(variants=3)
    qtbot.waitUntil(lambda: engine.holding.is_set(), timeout=5000)
    qtbot.waitUntil(lambda: any(r.fraction > 0 for r in rig.models.jobs.value.rows), timeout=5000)
    rig.session.refresh_history()
    item = window.history.tree.topLevelItem(0)
    assert item is not None and item.text(3).startswith("running ")  # job.json alone says "queued"
    fraction = rig.models.jobs.value.rows[-1].fraction
    assert item.text(3) == f"running {fraction * 100:.0f}%"
    rig.session.cancel()
    qtbot.waitUntil(lambda: window.history.tree.topLevelItem(0).text(3) == "cancelled", timeout=8000)  # type: ignore[union-attr]


def test_the_place_message_names_every_file_sent(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=2)
    rig.models.link.update(peer="127.0.0.1:53211")
    rig.session.place("v02")

    def both_named() -> bool:
        message = rig.models.message.value
        return (
            message is not None
            and "_v02_mix.wav (audio, track" in message.text
            and "_v02.mid (midi, track" in message.text
        )

    qtbot.waitUntil(both_named, timeout=5000)
    assert window.message_bar.text.text().startswith("Sent v02 to 127.0.0.1:53211 at beat ")


def test_several_errors_are_all_reachable_in_the_message_log(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    for n in (1, 2, 3):
        rig.session.say("error", f"error number {n}")
    bar = window.message_bar
    assert bar.text.text() == "error number 3" and bar.log_button.isVisible()
    assert bar.log_button.text() == f"All messages ({len(rig.models.messages.value)})"
    qtbot.mouseClick(bar.log_button, Qt.MouseButton.LeftButton)
    log = window.message_log
    assert log is not None and log.isVisible()
    shown = log.text.toPlainText()
    assert all(f"error    error number {n}" in shown for n in (1, 2, 3))
    assert shown == log_text(rig.models.messages.value)
    assert [a.text() for a in window.view_menu.actions()] == ["&Messages…", "&Keyboard shortcuts…"]


def test_the_job_list_shows_the_latest_jobs_and_can_be_cleared(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    for seed in range(JOB_ROWS_SHOWN + 2):
        generate_and_wait(qtbot, rig, variants=1, seed=seed)
    panel = window.generate
    shown = [w for w in panel.job_rows if w.isVisible()]
    assert len(rig.models.jobs.value.rows) == JOB_ROWS_SHOWN + 2 and len(shown) == JOB_ROWS_SHOWN
    newest = rig.models.jobs.value.rows[-1].job_id
    assert shown[0].name.toolTip() == newest  # newest first
    assert panel.clear_button.isVisible()
    qtbot.mouseClick(panel.clear_button, Qt.MouseButton.LeftButton)
    assert rig.models.jobs.value.rows == () and not any(w.isVisible() for w in panel.job_rows)
    assert not panel.clear_button.isVisible()
    assert len(rig.models.history.value.rows) == JOB_ROWS_SHOWN + 2  # the History keeps them all


def test_the_keyboard_shortcuts_are_listed(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow) -> None:
    rig = make_rig()
    window = make_window(rig)
    listed = dict(window.shortcut_list())
    assert listed["Space"] == "play / stop the selected variant" and "Ctrl+T" in listed and "Ctrl+B" in listed
    window.show_shortcuts()
    assert "tap the region's tempo" in window.shortcuts_box.text()
    for shortcut in window.shortcuts:  # every listed key is a live shortcut
        assert shortcut.key().toString() in listed
