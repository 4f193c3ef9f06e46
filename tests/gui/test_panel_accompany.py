"""Accompany in the app: the parts selector and "audio region as" (model -> widgets, widgets -> model, settings,
the request), and an accompaniment's variants: its stems, played together with the region."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fake_engine import MODEL_PARTS
from gui_rig import Rig, generate_and_wait, wait_engine
from PyQt6.QtCore import Qt
from pytestqt.qtbot import QtBot

from engine.api import ModelInfo
from gui.core.models import FALLBACK_PARTS, known_parts
from gui.core.settings import GuiSettings, load_settings
from gui.panel_variants import playhead_fraction
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]
ACCOMPANY = ("continue", "accompany")


def test_known_parts_come_from_the_models_that_accompany() -> None:
    a = ModelInfo("a", "midi", "/a", modes=ACCOMPANY, parts=("bass", "piano"))
    b = ModelInfo("b", "midi", "/b", modes=ACCOMPANY, parts=("alto", "bass"))
    plain = ModelInfo("c", "midi", "/c", parts=("drums",))  # does not accompany: not offered
    assert known_parts((a, b, plain)) == ("bass", "piano", "alto")
    assert known_parts((a, b, plain), "b") == ("alto", "bass")
    assert known_parts((plain,)) == FALLBACK_PARTS  # nobody says: the usual roles
    assert known_parts((ModelInfo("d", "midi", "/d", modes=ACCOMPANY),)) == FALLBACK_PARTS


def test_the_parts_selector_follows_the_model_and_the_form(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    panel = window.generate
    assert not panel.parts_box.isVisible() and panel.bars.isEnabled()  # continue: no parts to choose
    rig.session.update_form(mode="accompany", parts=("bass",))
    assert panel.mode.currentData() == "accompany"
    assert panel.parts_box.isVisible() and not panel.bars.isEnabled()  # accompany writes the region's bars
    assert list(panel.part_buttons) == list(MODEL_PARTS)  # the fake model's ModelInfo.parts
    assert [n for n, b in panel.part_buttons.items() if b.isChecked()] == ["bass"]
    rig.models.engine.update(models=(ModelInfo("m", "midi", "/m", modes=ACCOMPANY, parts=("alto", "tenor")),))
    assert list(panel.part_buttons) == ["alto", "tenor", "bass"]  # bass was asked for: kept, said unknown
    assert "does not list bass" in panel.part_buttons["bass"].toolTip()
    rig.models.engine.update(models=(ModelInfo("m", "midi", "/m", modes=ACCOMPANY),))
    assert list(panel.part_buttons) == list(FALLBACK_PARTS)
    assert "has not said which parts" in panel.parts_label.toolTip()
    rig.session.update_form(output="both")
    assert panel.output.currentData() == "both" and panel.output.currentText() == "Audio + MIDI"
    rig.session.update_form(mode="continue")
    assert not panel.parts_box.isVisible()


def test_the_widgets_change_the_form_and_the_settings(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    panel = window.generate
    panel.mode.setCurrentIndex(panel.mode.findData("accompany"))
    qtbot.mouseClick(panel.part_buttons["strings"], Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.part_buttons["bass"], Qt.MouseButton.LeftButton)
    assert rig.models.form.value.parts == ("bass", "strings")  # in the order the buttons show them
    qtbot.mouseClick(panel.part_buttons["strings"], Qt.MouseButton.LeftButton)
    assert rig.models.form.value.parts == ("bass",)
    panel.output.setCurrentIndex(panel.output.findData("midi"))
    assert rig.models.form.value.output == "midi"
    assert (rig.session.settings.mode, rig.session.settings.parts, rig.session.settings.output) == (
        "accompany",
        ("bass",),
        "midi",
    )
    rig.session.save()
    stored = json.loads(rig.settings_path.read_text())
    assert stored["parts"] == ["bass"] and stored["output"] == "midi"
    again = make_rig()  # a restart: the form comes back from the settings
    assert again.models.form.value.parts == ("bass",) and again.models.form.value.output == "midi"


def test_bad_parts_or_output_in_the_settings_file_fall_back(tmp_path: Path) -> None:
    path = tmp_path / "gui.json"
    path.write_text(json.dumps({"parts": ["bass", "Double Bass"], "output": "video"}))
    loaded = load_settings(path)
    assert loaded.settings.parts == () and loaded.settings.output == "auto"
    assert any("parts" in p for p in loaded.problems) and any("output" in p for p in loaded.problems)
    path.write_text(json.dumps({"parts": "bass"}))
    assert load_settings(path).settings.parts == ()


def test_the_request_carries_the_parts_and_the_output(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    settings = dataclasses.replace(GuiSettings(), mode="accompany", parts=("bass", "strings"), output="both")
    rig = make_rig(settings=settings)
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rig.models.variants.value.job is not None, timeout=5000)
    params = rig.engine.requests[-1].params
    assert (params.mode, params.parts, params.output) == ("accompany", ("bass", "strings"), "both")
    job = rig.models.variants.value.job
    assert job is not None and job.params.parts == ("bass", "strings")
    rig.session.regenerate("v01")  # same seed, same parts
    assert "Generating 1 accompaniment(s) (bass, strings) under the region" in window.message_bar.text.text()
    qtbot.waitUntil(lambda: len(rig.engine.requests) == 2, timeout=5000)
    assert rig.engine.requests[-1].params.parts == ("bass", "strings")
    rig.session.update_form(mode="continue")  # the parts stay in the form, but a continuation has none
    assert rig.session.generate()
    qtbot.waitUntil(lambda: len(rig.engine.requests) == 3, timeout=5000)
    params = rig.engine.requests[-1].params
    assert params.mode == "continue" and params.parts == () and params.output == "both"
    assert rig.models.form.value.parts == ("bass", "strings")


def test_an_accompaniment_shows_its_stems_and_plays_with_the_region(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, mode="accompany", parts=("bass", "drums"), variants=2)
    panel = window.variants
    state = rig.models.variants.value
    assert [c.text() for c in panel.stem_chips] == ["⇱ bass", "⇱ drums"]
    assert panel.drag_stems.isEnabled()
    assert [p.name for p in rig.session.drag_paths("v01", "stems")] == ["bass.wav", "drums.wav"]
    assert panel.job_label.full_text.startswith("accompany bass, drums · 2 bars")
    assert panel.region_first_button.text() == "With region"
    assert "together" in panel.region_first_button.toolTip()
    qtbot.mouseClick(panel.region_first_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "v01+region", timeout=2000)
    assert panel.audition.full_text == "Playing V1 with the region"
    state = rig.models.variants.value
    item = state.item("v01")
    assert item is not None and state.take_seconds == pytest.approx(item.duration_seconds)  # full.wav, same bars
    assert playhead_fraction(item, state, 1.0) == pytest.approx(1.0 / item.duration_seconds)  # no region first
    longer = dataclasses.replace(state, take_seconds=item.duration_seconds + 0.5)  # a tail that rings on
    assert playhead_fraction(item, longer, 0.0) == 0.0
    history = rig.models.history.value.rows
    assert history[0].mode == "accompany" and history[0].bars == 2  # the region's bars, not the form's
    rig.session.stop()
    assert state.job is not None
    rig.models.variants.set(dataclasses.replace(state, job=dataclasses.replace(state.job, mode="continue")))
    assert panel.region_first_button.text() == "Region first"  # a continuation: the region, then the variant


def test_continue_it_on_an_accompaniment_continues_the_whole_piece(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    rig.session.update_form(bars=3)
    generate_and_wait(qtbot, rig, mode="accompany", parts=("bass", "drums"), variants=2)
    first = rig.models.variants.value.job
    item = rig.models.variants.value.item("v01")
    assert item is not None
    qtbot.mouseClick(window.variants.continue_button, Qt.MouseButton.LeftButton)
    assert window.region.name.full_text == "verse + v01 (bass, drums)"  # not "full"
    assert rig.models.form.value.mode == "continue" and window.generate.mode.currentData() == "continue"
    qtbot.waitUntil(lambda: rig.models.variants.value.job is not first, timeout=5000)
    request = rig.engine.requests[-1]
    assert request.params.mode == "continue" and request.params.parts == () and request.params.bars == 3
    assert request.prompt.midi_path == item.files["full_midi"]  # the region and its parts, together
    assert request.prompt.length_beats == 8  # the region's own 2 bars: the parts are under it, not after
    history = rig.models.history.value.rows
    assert history[0].mode == "continue" and history[0].region_name == "verse + v01"  # its region: a variant's full.mid
