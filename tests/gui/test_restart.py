"""What the app remembers: settings persist across a restart, the history shows earlier jobs from the jobs folder,
stars stay; a damaged settings file never stops the app."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from gui_rig import Rig, generate_and_wait, wait_engine
from pytestqt.qtbot import QtBot

from gui.core.settings import GuiSettings, load_settings, save_settings
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def test_settings_and_history_survive_a_restart(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    first = make_rig()
    window = make_window(first)
    wait_engine(qtbot, first)
    first.session.open_files([region_file])
    window.generate.bars.setValue(6)
    window.generate.temperature.setValue(0.85)
    generate_and_wait(qtbot, first, variants=3, seed=40)
    first.session.toggle_star("v02")
    first.session.set_loop(True)
    first.session.set_clock_port("Clock A")
    job_id = first.models.variants.value.items[0].job_id
    window.close()  # closes the session: settings saved
    assert first.settings_path.is_file()

    second = make_rig()
    again = make_window(second)
    s = second.session.settings
    assert (s.bars, s.temperature, s.loop, s.midi_clock_in) == (6, 0.85, True, "Clock A")
    assert (again.generate.bars.value(), again.generate.temperature.value()) == (6, 0.85)
    assert again.variants.loop_button.isChecked()
    assert again.connections.port_combo.currentData() == "Clock A" and second.clocks[0].port == "Clock A"
    assert s.last_open_dir == str(region_file.parent)
    # the history lists the earlier job, and its variants are shown, starred as they were
    tree = again.history.tree
    assert tree.topLevelItemCount() == 1
    row = tree.topLevelItem(0)
    assert row is not None and row.text(1) == "verse" and row.text(3) == "done"
    state = second.models.variants.value
    assert state.job is not None and state.job.id == job_id and len(state.items) == 3
    assert [i.starred for i in state.items] == [False, True, False]


def test_a_damaged_settings_file_gives_defaults_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "gui.json"
    path.write_text("{ not json")
    loaded = load_settings(path)
    assert loaded.settings == GuiSettings() and "damaged" in loaded.problems[0]
    path.write_text(json.dumps({"bars": 9999, "loop": True, "colour": "red"}))
    loaded = load_settings(path)
    assert loaded.settings.loop is True and loaded.settings.bars == GuiSettings().bars
    assert any("bars" in p for p in loaded.problems) and any("colour" in p for p in loaded.problems)


def test_settings_are_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "config" / "gui.json"
    save_settings(path, GuiSettings(bars=3, starred=("job/v01",), seed=None))
    assert load_settings(path).settings == GuiSettings(bars=3, starred=("job/v01",), seed=None)
    assert [p.name for p in path.parent.iterdir()] == ["gui.json"]  # no temp files left


def test_the_settings_live_in_the_users_config_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import platformdirs

    from gui.core.settings import default_out_dir, default_settings_path

    monkeypatch.delenv("SEGUE_GUI_SETTINGS", raising=False)
    assert default_settings_path() == platformdirs.user_config_path("segue") / "gui.json"
    assert default_out_dir() == platformdirs.user_data_path("segue") / "jobs"
    monkeypatch.setenv("SEGUE_GUI_SETTINGS", str(tmp_path / "s.json"))
    assert default_settings_path() == tmp_path / "s.json"


def test_news_after_closing_never_reaches_the_gone_window(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    from bridge.events import JobFailed

    rig = make_rig()
    window = make_window(rig)
    window.close()  # closes the session too
    rig.pump.post(JobFailed("20260101-000000-x-continue-0000", "late", "failed"))  # a worker thread's late event
    qtbot.wait(20)  # delivered on the GUI thread: dropped, no error
    assert rig.models.message.value is None


def test_command_line_overrides_are_for_this_run_only(tmp_path: Path) -> None:
    from gui.core.session import Session, SessionDeps

    path = tmp_path / "gui.json"
    save_settings(path, GuiSettings(out_dir=str(tmp_path / "mine"), engine="local", bars=4))
    stored = load_settings(path).settings
    run = dataclasses.replace(
        stored, out_dir=str(tmp_path / "elsewhere"), engine="http://gpu-box:8750"
    )  # --out, --engine
    deps = SessionDeps(osc=False, midi_inputs=lambda: [])
    session = Session(run, path, deps, saved=stored)
    session.update_form(bars=8)  # changed in the window: kept
    session.settings = dataclasses.replace(session.settings, engine="http://other:8750")  # changed in Connections
    session.save()
    again = load_settings(path).settings
    assert again.out_dir == str(tmp_path / "mine")  # --out was for that run
    assert again.bars == 8 and again.engine == "http://other:8750"
