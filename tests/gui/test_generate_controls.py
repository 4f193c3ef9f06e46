"""The producer's controls in the Generate panel (gui/panel_controls.py): widgets -> form -> settings -> the
engine's GenerationParams, form -> widgets, "auto" (None) as the start, a restart keeps them, bad values are
refused with the api's words, and the form gets its whole height when the window has room."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from gui_rig import Rig, generate_and_wait, wait_engine
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from gui.core.settings import GuiSettings, load_settings
from gui.panel_controls import SLIDER_STEPS, position_of, similarity_of
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]
CONTROL_NAMES = ("similarity", "keep_opening", "density", "hold_notes", "end_on_tonic")


def _controls(params: object) -> dict[str, object]:
    return {name: getattr(params, name) for name in CONTROL_NAMES}


def test_the_slider_reads_close_on_the_left_and_free_on_the_right() -> None:
    assert similarity_of(0) == 1.0 and similarity_of(SLIDER_STEPS) == 0.0 and similarity_of(30) == 0.7
    assert all(similarity_of(position_of(s / 100)) == s / 100 for s in range(101))


def test_every_control_starts_on_auto_and_a_job_asks_for_the_engines_default(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    controls = window.generate.controls
    assert controls.similarity_auto.isChecked() and controls.similarity_value.text() == "auto"
    assert controls.density.text() == "auto"
    assert controls.hold_notes.checkState() == Qt.CheckState.PartiallyChecked
    assert controls.hold_notes.value is None and controls.end_on_tonic.value is None
    assert controls.keep_opening.value is None and "auto (the engine's measured default)" in (
        controls.keep_opening.toolTip()
    )
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig)
    assert _controls(rig.engine.requests[-1].params) == dict.fromkeys(CONTROL_NAMES)


def test_the_widgets_reach_the_form_the_settings_and_the_request(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    controls = window.generate.controls
    controls.similarity.setValue(30)  # 30 % of the way to "free"
    assert rig.models.form.value.similarity == 0.7
    assert not controls.similarity_auto.isChecked() and controls.similarity_value.text() == "0.70"
    controls.density.setValue(1.5)
    qtbot.mouseClick(controls.hold_notes, Qt.MouseButton.LeftButton)  # auto -> on
    qtbot.mouseClick(controls.end_on_tonic, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(controls.end_on_tonic, Qt.MouseButton.LeftButton)  # auto -> on -> off
    for _ in range(3):  # auto -> on -> off -> auto
        qtbot.mouseClick(controls.keep_opening, Qt.MouseButton.LeftButton)
    expected = {"similarity": 0.7, "keep_opening": None, "density": 1.5, "hold_notes": True, "end_on_tonic": False}
    assert _controls(rig.models.form.value) == expected
    assert _controls(rig.session.settings) == expected
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig)
    assert _controls(rig.engine.requests[-1].params) == expected
    job = rig.models.variants.value.job
    assert job is not None and job.params.similarity == 0.7 and job.params.hold_notes is True  # in job.json
    rig.session.save()
    stored = json.loads(rig.settings_path.read_text())
    assert {name: stored[name] for name in CONTROL_NAMES} == expected
    again = make_rig()  # a restart: the form comes back from the settings
    assert _controls(again.models.form.value) == expected
    qtbot.mouseClick(controls.similarity_auto, Qt.MouseButton.LeftButton)  # back to auto
    controls.density.setValue(0.0)  # the spin box's "auto"
    assert rig.models.form.value.similarity is None and rig.models.form.value.density is None
    assert controls.similarity_value.text() == "auto"


def test_the_form_shows_in_the_widgets(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow) -> None:
    rig = make_rig()
    window = make_window(rig)
    controls = window.generate.controls
    rig.session.update_form(similarity=0.25, density=2.0, hold_notes=False, end_on_tonic=True, keep_opening=True)
    assert controls.similarity.value() == 75 and controls.similarity_value.text() == "0.25"
    assert not controls.similarity_auto.isChecked() and controls.similarity.objectName() == ""
    assert controls.density.value() == 2.0
    assert controls.hold_notes.checkState() == Qt.CheckState.Unchecked
    assert controls.end_on_tonic.checkState() == Qt.CheckState.Checked
    assert controls.keep_opening.value is True
    rig.session.update_form(similarity=None)
    assert controls.similarity_auto.isChecked() and controls.similarity.objectName() == "auto"
    assert controls.similarity.value() == 75  # auto leaves the handle where it was


def test_same_seed_asks_again_with_the_jobs_controls(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    settings = dataclasses.replace(GuiSettings(), similarity=0.9, hold_notes=True)
    rig = make_rig(settings=settings)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, part_density=(("bass", 0.5),))  # as a CLI or OSC job could have
    rig.session.update_form(similarity=0.1, hold_notes=False)  # the form moved on since
    rig.session.regenerate("v01")
    qtbot.waitUntil(lambda: len(rig.engine.requests) == 2, timeout=5000)
    params = rig.engine.requests[-1].params
    assert params.similarity == 0.9 and params.hold_notes is True and params.part_density == (("bass", 0.5),)


def test_a_density_the_engine_refuses_is_said_with_its_words(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    window.generate.controls.density.setValue(0.1)  # the spin box allows it; GenerationParams does not
    assert not rig.session.generate()
    message = rig.models.message.value
    assert message is not None and message.level == "error"
    assert "density must be a factor in 0.25..4.0" in message.text
    assert rig.engine.requests == []


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ({"similarity": 1.5}, "similarity"),
        ({"similarity": "close"}, "similarity"),
        ({"density": 0.1}, "density"),
        ({"hold_notes": "yes"}, "hold_notes"),
        ({"end_on_tonic": 1}, "end_on_tonic"),
    ],
)
def test_bad_controls_in_the_settings_file_fall_back_to_auto(
    tmp_path: Path, stored: dict[str, object], problem: str
) -> None:
    path = tmp_path / "gui.json"
    path.write_text(json.dumps({**stored, "keep_opening": False, "density": stored.get("density", 0.5)}))
    loaded = load_settings(path)
    assert getattr(loaded.settings, problem) is None
    assert any(problem in p for p in loaded.problems)
    assert loaded.settings.keep_opening is False  # the good ones are kept


def test_the_generate_form_gets_its_whole_height_when_the_history_has_room(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    for size in ((1024, 640), (1440, 900)):  # shrunk, then grown again
        window.resize(*size)
        qtbot.wait(50)
    rig.session.update_form(mode="accompany")  # the parts make the form taller

    def fitted() -> bool:
        generate, history = window.right_split.sizes()
        whole = generate >= window.generate.sizeHint().height()
        return whole or history <= window.history.minimumSizeHint().height()

    qtbot.waitUntil(fitted, timeout=2000)
    assert window.generate.minimumSizeHint().height() < window.generate.sizeHint().height()  # the form scrolls


def test_the_bars_field_keeps_typed_digits_and_shows_its_range(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    bars = window.generate.bars
    captions = [w.text() for w in window.generate.findChildren(QLabel)]
    assert "Bars (1–64)" in captions and "Variants (1–16)" in captions
    for typed, kept in (("12", 12), ("8", 8), ("100", 64), ("65", 64)):
        bars.setFocus()
        bars.selectAll()
        qtbot.keyClicks(bars, typed)
        assert bars.text() == typed  # every digit stays while typing (QSpinBox dropped the last: 100 -> 10)
        qtbot.keyClick(bars, Qt.Key.Key_Return)
        assert bars.value() == kept and rig.models.form.value.bars == kept
    message = rig.models.message.value
    assert message is not None and message.text == "Bars go from 1 to 64: 65 became 64."
