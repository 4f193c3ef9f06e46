"""Each panel: the model's values show in its widgets, and what the user does in the widgets reaches the model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gui_rig import Rig, generate_and_wait, wait_engine
from PyQt6.QtCore import Qt
from pytestqt.qtbot import QtBot

from engine.api import Meter, ModelInfo
from gui.core.models import HistoryState
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


# -- Connections -----------------------------------------------------------------------------------------------


def test_connections_show_the_link_clock_and_engine(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow) -> None:
    rig = make_rig()
    window = make_window(rig)
    panel = window.connections
    wait_engine(qtbot, rig)
    rig.models.link.update(
        daw="reaper",
        osc_port=9761,
        status="connected",
        detail="listening on 127.0.0.1:9761",
        last_message="/segue/region verse.mid",
        last_message_time="14:03:22",
        peer="127.0.0.1:53211",
    )
    assert panel.daw_combo.currentData() == "reaper"
    assert panel.osc_port.value() == 9761
    assert panel.daw_light.status == "connected" and window.daw_light.status == "connected"
    assert "/segue/region verse.mid" in panel.last_message.text() and "127.0.0.1:53211" in panel.last_message.text()
    assert [panel.port_combo.itemText(i) for i in range(panel.port_combo.count())] == ["Off", "Clock A", "Clock B"]
    assert panel.engine_name.text() == "fake" and panel.engine_light.status == "ready"
    assert "fake-midi\n   midi, 1.2M parameters" in panel.model_list.text()  # continues (and accompanies): MIDI
    acc = ModelInfo("acc", "midi", "/models/acc", "writes parts", 5_000_000, ("accompany",), ("bass", "piano"))
    rig.models.engine.update(models=(*rig.models.engine.value.models, acc))
    assert "acc\n   accompany, 5.0M parameters" in panel.model_list.text()  # what it does, not only its kind
    rig.models.engine.update(status="failed", message="the server said: bad token")
    assert panel.engine_light.status == "failed" and panel.engine_message.text() == "the server said: bad token"
    assert panel.engine_name.text() == "unavailable"


def test_connections_widgets_change_the_session(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow) -> None:
    rig = make_rig()
    window = make_window(rig)
    panel = window.connections
    wait_engine(qtbot, rig)
    # DAW: choose REAPER and a port, Apply
    panel.daw_combo.setCurrentIndex(panel.daw_combo.findData("reaper"))
    panel.daw_port.setValue(8000)
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert rig.session.settings.daw == "reaper" and rig.session.settings.daw_port == 8000
    assert rig.models.link.value.daw == "reaper"
    # MIDI clock: choosing a port follows it; Off stops
    panel.port_combo.setCurrentIndex(panel.port_combo.findData("Clock B"))
    assert [c.port for c in rig.clocks] == ["Clock B"] and rig.clocks[0].started
    assert rig.session.settings.midi_clock_in == "Clock B"
    panel.port_combo.setCurrentIndex(panel.port_combo.findData(""))
    assert rig.clocks[0].closed and rig.session.settings.midi_clock_in == ""
    # engine: a server URL and a token
    panel.engine_kind.setCurrentIndex(panel.engine_kind.findData("remote"))
    assert panel.engine_url.isVisibleTo(panel) and panel.engine_token.isVisibleTo(panel)
    panel.engine_url.setText("http://gpu-box:8750")
    panel.engine_token.setText("s3cret")
    qtbot.mouseClick(panel.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rig.models.engine.value.status == "ready", timeout=3000)
    assert rig.engine_specs[-1] == ("http://gpu-box:8750", {"token": "s3cret"})
    assert rig.session.settings.engine == "http://gpu-box:8750"


def test_midi_clock_drives_the_transport_readout(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow) -> None:
    rig = make_rig()
    window = make_window(rig)
    rig.session.set_clock_port("Clock A")  # FakeClock: 120 BPM, playing, at beat 9 (bar 3, beat 2)
    rig.session.tick()
    assert window.tempo_readout.text() == "120.00 BPM" and window.play_readout.text() == "▶"
    assert window.position_readout.text() == "003.2"
    assert window.connections.play_state.text() == "▶ playing"
    assert window.connections.clock_light.status == "connected"


# -- Region ----------------------------------------------------------------------------------------------------


def test_region_shows_a_file(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path) -> None:
    rig = make_rig()
    window = make_window(rig)
    panel = window.region
    assert panel.name.full_text == "No region yet" and not panel.tempo.isEnabled() and panel.tempo.text() == "--"
    rig.session.open_files([region_file])
    assert panel.name.full_text == "verse" and panel.origin.text() == "FILE"
    assert panel.tempo.value() == 120.0 and panel.meter.currentData() == "4/4"
    assert panel.bars.text() == "2" and panel.key.text() == "C major"
    assert len(panel.view.notes) == 2 and panel.view.length_beats == 8.0
    assert rig.session.service.region is not None and rig.session.service.region.midi_path == region_file.resolve()


def test_region_widgets_change_tempo_and_meter(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    rig.session.open_files([region_file])
    panel = window.region
    panel.tempo.setValue(96.0)
    panel.tempo.editingFinished.emit()
    assert rig.models.region.value.region is not None and rig.models.region.value.region.tempo_bpm == 96.0
    panel.meter.setCurrentIndex(panel.meter.findData("3/4"))
    region = rig.models.region.value.region
    assert region is not None and region.meter == Meter(3, 4)
    assert rig.session.service.region == region  # what the next job uses


def test_region_from_a_file_dropped_on_the_window(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    from PyQt6.QtCore import QPointF
    from PyQt6.QtGui import QDragEnterEvent, QDropEvent

    from gui.widgets import mime_for_paths

    rig = make_rig()
    window = make_window(rig)
    mime = mime_for_paths([region_file])
    enter = QDragEnterEvent(
        window.rect().center(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(window.rect().center()),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(drop)
    assert window.region.name.full_text == "verse"
    assert rig.session.settings.last_open_dir == str(region_file.parent)


def test_a_file_that_is_not_a_region_is_explained(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, tmp_path: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    broken = tmp_path / "notes.mid"
    broken.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")  # a truncated MIDI header
    rig.session.open_files([broken])
    assert window.message_bar.isVisible()
    text = window.message_bar.text.text()
    assert text.startswith("Cannot use that file:") and "notes.mid" in text
    assert rig.models.region.value.region is None
    text_file = tmp_path / "lyrics.txt"
    text_file.write_text("la la la")
    rig.session.open_files([text_file])
    assert "lyrics.txt" in window.message_bar.text.text()


# -- Generate ----------------------------------------------------------------------------------------------------


def test_generate_form_model_to_widgets_and_back(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow) -> None:
    rig = make_rig()
    window = make_window(rig)
    panel = window.generate
    wait_engine(qtbot, rig)
    rig.session.update_form(bars=8, variants=2, temperature=0.8, top_p=0.9, seed=42)
    assert (panel.bars.value(), panel.variants.value()) == (8, 2)
    assert (panel.temperature.value(), panel.top_p.value(), panel.seed.text()) == (0.8, 0.9, "42")
    assert [panel.model.itemData(i) for i in range(panel.model.count())] == ["default", "fake-midi"]
    panel.bars.setValue(12)
    panel.variants.setValue(6)
    panel.temperature.setValue(1.25)
    qtbot.keyClicks(panel.seed, "7")  # "427"
    panel.model.setCurrentIndex(panel.model.findData("fake-midi"))
    form = rig.models.form.value
    assert (form.bars, form.variants, form.temperature, form.seed, form.model) == (12, 6, 1.25, 427, "fake-midi")
    panel.seed.clear()
    panel.seed.textEdited.emit("")
    assert rig.models.form.value.seed is None
    qtbot.mouseClick(panel.dice, Qt.MouseButton.LeftButton)
    assert rig.models.form.value.seed is not None and panel.seed.text() == str(rig.models.form.value.seed)
    assert rig.session.settings.bars == 12  # remembered for the next start


def test_accompany_is_offered_only_when_a_model_offers_it(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow
) -> None:
    rig = make_rig()
    window = make_window(rig)
    panel = window.generate
    view = panel.mode.view()
    index = panel.mode.findData("accompany")
    rig.models.engine.update(models=(ModelInfo("m", "midi", "/m", "", 1, ("continue",)),))
    assert view is not None and view.isRowHidden(index)  # type: ignore[attr-defined]
    rig.models.engine.update(models=(ModelInfo("m", "midi", "/m", "", 1, ("continue", "accompany")),))
    assert not view.isRowHidden(index)  # type: ignore[attr-defined]


# -- Variants --------------------------------------------------------------------------------------------------


def test_variants_show_a_job_and_the_buttons_change_the_model(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    panel = window.variants
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=3, seed=5)
    assert panel.list_model.rowCount() == 3 and not panel.empty.isVisibleTo(panel)
    item = panel.list_model.items[0]
    assert (item.variant_id, item.seed, item.number) == ("v01", 5, 1)
    # the thumbnails are read on another thread, then drawn
    qtbot.waitUntil(lambda: all(i.midi and i.audio for i in panel.list_model.items), timeout=3000)
    item = panel.list_model.items[0]
    assert item.midi is not None and item.audio is not None and item.audio.peaks and item.midi.notes
    assert "continue · 4 bars · 120.00 BPM 4/4 · fake-midi" in panel.job_label.full_text
    assert (panel.slot_a.currentData(), panel.slot_b.currentData()) == ("v01", "v02")
    assert [c.text() for c in panel.stem_chips] == ["⇱ bass", "⇱ piano"]
    # select a row
    panel.list.setCurrentIndex(panel.list_model.index(2))
    assert rig.models.variants.value.selected == "v03"
    # star it (and it is remembered)
    qtbot.mouseClick(panel.star_button, Qt.MouseButton.LeftButton)
    assert rig.models.variants.value.item("v03").starred  # type: ignore[union-attr]
    assert panel.star_button.text() == "★ Starred"
    assert f"{item.job_id}/v03" in rig.session.settings.starred
    # loop and region-first toggles
    qtbot.mouseClick(panel.loop_button, Qt.MouseButton.LeftButton)
    assert rig.models.variants.value.loop and rig.session.player.playhead.loop
    qtbot.mouseClick(panel.region_first_button, Qt.MouseButton.LeftButton)
    assert rig.models.variants.value.region_first
    # A/B slots
    panel.slot_b.setCurrentIndex(panel.slot_b.findData("v03"))
    assert rig.models.variants.value.slot_b == "v03"
    # model -> widgets: a changed selection moves the list
    rig.session.select("v02")
    assert panel.list.currentIndex().row() == 1


# -- History ---------------------------------------------------------------------------------------------------


def test_history_lists_jobs_and_opens_one(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    panel = window.history
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=1)
    generate_and_wait(qtbot, rig, variants=2)
    assert panel.tree.topLevelItemCount() == 2
    newest = panel.tree.topLevelItem(0)
    assert newest is not None and newest.text(1) == "verse" and newest.text(2) == "4 × 2" and newest.text(3) == "done"
    assert str(rig.out_dir) in panel.folder.full_text
    oldest = panel.tree.topLevelItem(1)
    assert oldest is not None
    panel.tree.itemDoubleClicked.emit(oldest, 0)
    assert len(rig.models.variants.value.items) == 1  # the first job's one variant
    rig.models.history.set(HistoryState())
    assert panel.tree.topLevelItemCount() == 0


def test_an_audio_region_takes_its_tempo_from_the_name_or_asks(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, tmp_path: Path
) -> None:
    from fake_engine import write_wav

    from gui.core.media import tempo_from_name

    assert tempo_from_name(Path("Loop 92 BPM.wav")) == 92.0 and tempo_from_name(Path("take_3.wav")) is None
    assert tempo_from_name(Path("kick_128bpm_v2.flac")) == 128.0 and tempo_from_name(Path("x_1200bpm.wav")) is None
    rig = make_rig()
    window = make_window(rig)
    window.show()
    named = write_wav(tmp_path / "loop_96bpm.wav", 10.0)  # 16 beats at 96 BPM: 4 bars
    rig.session.open_files([named])
    panel = window.region
    assert panel.tempo.value() == 96.0 and panel.bars.text() == "4"
    qtbot.waitUntil(lambda: len(panel.view.peaks) > 100, timeout=3000)  # the waveform, read on a worker thread
    assert "96 BPM, 4/4 from its file name" in window.message_bar.text.text()
    unnamed = write_wav(tmp_path / "take.wav", 10.0)
    rig.session.open_files([unnamed])
    assert panel.tempo.value() == 120.0 and panel.bars.text() == "5"
    said = window.message_bar.text.text()
    assert "assumed" in said and "set Tempo in the Region panel" in said
    panel.tempo.setValue(96.0)  # the user corrects it: the length in bars follows
    panel.tempo.editingFinished.emit()
    assert panel.bars.text() == "4"


def test_an_unreadable_audio_region_is_a_warning_not_a_freeze(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, tmp_path: Path
) -> None:
    from fake_engine import write_wav

    from gui.core.readers import RegionAudioRead

    rig = make_rig()
    window = make_window(rig)
    window.show()
    take = write_wav(tmp_path / "take_90bpm.wav", 4.0)
    rig.session.open_files([take])
    assert window.region.name.full_text == "take_90bpm"  # shown at once; the waveform follows
    qtbot.waitUntil(lambda: bool(window.region.view.peaks), timeout=3000)
    rig.session.apply(RegionAudioRead(tmp_path / "older.wav", None, "gone"))  # news about another region: ignored
    assert "gone" not in window.message_bar.text.text()
    rig.session.apply(RegionAudioRead(take.resolve(), None, "take_90bpm.wav could not be read as audio (truncated)"))
    assert "The region's waveform cannot be drawn: take_90bpm.wav could not be read" in window.message_bar.text.text()
    assert window.region.name.full_text == "take_90bpm"  # still the region: it can be generated from


def test_the_window_fits_a_1280_pixel_laptop_screen(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=4)  # stems shown as chips
    rig.models.variants.update(audition_message="No sound output is available (no device). " * 4)
    rig.session.say("error", "a long message for the bar above the panels " * 6)
    assert window.minimumSizeHint().width() <= 1280


def test_a_rows_context_menu_acts_on_that_row(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=3)
    menu = window.variants.row_menu("v03")
    actions = {a.text(): a for a in menu.actions()}
    assert list(actions) == [
        "Play",
        "Set as A",
        "Set as B",
        "Star",
        "Make again with the same seed",
        "Continue from this variant",
        "Place in DAW",
        "Show the files",
        "Rename…",
        "Notes…",
        "Delete (to the trash)",
    ]
    actions["Set as B"].trigger()
    actions["Star"].trigger()
    state = rig.models.variants.value
    assert state.slot_b == "v03" and state.item("v03").starred  # type: ignore[union-attr]
    assert window.variants.row_menu("v03").actions()[3].text() == "Unstar"
    actions["Play"].trigger()
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "v03", timeout=2000)
