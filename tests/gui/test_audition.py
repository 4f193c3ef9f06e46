"""Audition through a fake output (no sound card): play, stop, loop, region then variant, A/B, the DAW's bar line,
and a machine without sound that says so."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_engine import write_wav
from gui_rig import Rig, generate_and_wait, wait_engine
from PyQt6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bridge.events import TransportState
from engine.api import Meter
from gui.core.audition import (
    AuditionError,
    AuditionEvent,
    AuditionStarted,
    AuditionStopped,
    FakeOutput,
    Player,
    SoundDeviceOutput,
    seconds_to_next_bar,
)
from gui.panel_variants import playhead_fraction
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


class Events:
    def __init__(self) -> None:
        self.seen: list[AuditionEvent] = []

    def __call__(self, event: AuditionEvent) -> None:
        self.seen.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.seen if isinstance(e, kind)]


def test_player_plays_to_the_end_loops_and_stops(qtbot: QtBot, tmp_path: Path) -> None:
    take = write_wav(tmp_path / "take.wav", 0.5)  # 8 kHz mono sine
    output = FakeOutput()
    events = Events()
    player = Player(lambda: output, listener=events)
    try:
        player.play("v01", (take,))
        qtbot.waitUntil(lambda: bool(events.of(AuditionStarted)), timeout=2000)
        assert output.rate == 8000 and events.of(AuditionStarted)[0].seconds == pytest.approx(0.5)
        block = output.advance(0.25)
        assert block.shape == (2000, 2) and np.abs(block).max() > 0.05  # sound, in stereo
        output.advance(0.3)  # past the end
        qtbot.waitUntil(lambda: bool(events.of(AuditionStopped)), timeout=2000)
        assert events.of(AuditionStopped)[0].finished and player.playing is None
        player.set_loop(True)
        player.play("v01", (take,))
        qtbot.waitUntil(lambda: len(events.of(AuditionStarted)) == 2, timeout=2000)
        output.advance(0.75)  # wraps around
        assert np.abs(output.advance(0.1)).max() > 0.05 and player.playing == "v01"
        player.stop()
        qtbot.waitUntil(lambda: len(events.of(AuditionStopped)) == 2, timeout=2000)
        assert not events.of(AuditionStopped)[1].finished
        assert np.abs(output.advance(0.1)).max() == 0.0  # silence once stopped
    finally:
        player.close()


def test_ab_switch_keeps_the_position(qtbot: QtBot, tmp_path: Path) -> None:
    a = write_wav(tmp_path / "a.wav", 2.0)
    b = write_wav(tmp_path / "b.wav", 2.0)
    output = FakeOutput()
    events = Events()
    player = Player(lambda: output, listener=events)
    try:
        player.play("v01", (a,))
        qtbot.waitUntil(lambda: player.playing == "v01", timeout=2000)
        output.advance(0.5)
        player.switch("v02", (b,))
        qtbot.waitUntil(lambda: player.playing == "v02", timeout=2000)
        assert player.playhead.position == 4000  # 0.5 s at 8 kHz: B goes on where A was
        assert not events.of(AuditionStopped)  # a switch is not a stop
    finally:
        player.close()


def test_playback_waits_for_the_daws_next_bar() -> None:
    meter = Meter(4, 4)
    assert seconds_to_next_bar(TransportState(120.0, True, 9.0), meter) == pytest.approx(1.5)  # 3 beats at 120
    assert seconds_to_next_bar(TransportState(120.0, True, 12.0), meter) == 0.0  # on the bar line
    assert seconds_to_next_bar(TransportState(120.0, False, 9.0), meter) == 0.0  # the DAW is stopped
    assert seconds_to_next_bar(TransportState(0.0, True, 9.0), meter) == 0.0  # no tempo known


def test_a_take_started_while_the_daw_plays_starts_on_its_bar(qtbot: QtBot, tmp_path: Path) -> None:
    take = write_wav(tmp_path / "take.wav", 0.5)
    output = FakeOutput()
    events = Events()
    player = Player(lambda: output, lambda: TransportState(120.0, True, 11.8), events)  # 0.1 s before bar 4
    try:
        player.play("v01", (take,), Meter(4, 4))
        qtbot.waitUntil(lambda: bool(events.of(AuditionStarted)), timeout=2000)
        assert events.of(AuditionStarted)[0].waited_seconds == pytest.approx(0.1)
    finally:
        player.close()


def test_no_sound_device_is_a_message_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_sd = types.ModuleType("sounddevice")

    def no_stream(**kwargs: Any) -> Any:
        raise RuntimeError("Error querying device -1")

    fake_sd.OutputStream = no_stream  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sd)
    with pytest.raises(AuditionError, match="No sound output is available .*drag the variants"):
        SoundDeviceOutput().open(44100, lambda frames: np.zeros((frames, 2), dtype=np.float32))


def test_the_variants_panel_plays_stops_and_switches(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    panel = window.variants
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=2)
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "v01", timeout=2000)
    assert panel.audition.full_text == "Playing V1" and panel.stop_button.isEnabled()
    output = rig.outputs[0]
    output.advance(1.0)
    rig.session.tick()  # the window's timer does this: the playhead follows the output
    assert rig.models.playhead.value == pytest.approx(1.0)
    item = rig.models.variants.value.item("v01")
    assert item is not None and playhead_fraction(item, rig.models.variants.value, 1.0) == pytest.approx(0.125)
    assert panel.list_model.playhead_seconds == pytest.approx(1.0)
    assert panel.clock.text() == "0:01.0 / 0:08.0"
    qtbot.mouseClick(panel.ab_button, Qt.MouseButton.LeftButton)  # A is v01: B takes over
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "v02", timeout=2000)
    assert rig.session.player.playhead.position == 8000
    assert rig.models.variants.value.selected == "v02"
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "", timeout=2000)
    assert not panel.stop_button.isEnabled()
    # the region, then the variant: full.wav
    qtbot.mouseClick(panel.region_first_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "v02+region", timeout=2000)
    assert panel.audition.full_text == "Playing the region, then V2"
    state = rig.models.variants.value  # full.wav: 8 s of region, then the 8 s variant
    second = state.item("v02")
    assert second is not None and state.take_seconds == pytest.approx(16.0)
    assert playhead_fraction(second, state, 4.0) is None  # the region is playing
    assert playhead_fraction(second, state, 10.0) == pytest.approx(0.25)
    panel.list.grab()  # paints the playing row with its playhead
    assert rig.outputs == [output]  # one output, reused


def test_a_broken_output_shows_a_message(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()

    def no_sound() -> FakeOutput:
        raise AuditionError("No sound output is available (no device). Connect an audio interface.")

    rig.session.player._output_factory = no_sound
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=1)
    qtbot.mouseClick(window.variants.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "No sound output" in window.message_bar.text.text(), timeout=2000)
    assert rig.models.variants.value.playing == ""
    assert "No sound output" in window.variants.audition.full_text
    message = rig.models.message.value
    assert message is not None and message.level == "warning"


def test_with_midi_clock_playing_a_take_waits_for_the_bar_and_says_so(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=1)
    rig.session.set_clock_port("Clock A")
    rig.clocks[0].state = TransportState(120.0, True, 11.4, "midi-clock:Clock A")  # 0.3 s before bar 4
    qtbot.mouseClick(window.variants.play_button, Qt.MouseButton.LeftButton)
    assert window.variants.audition.full_text == "V1 starts on the DAW's next bar (in 0.3 s)..."
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "v01", timeout=3000)
    assert "started on the DAW's bar after 0.3 s" in window.variants.audition.full_text


def test_space_plays_and_stops_and_ctrl_enter_generates(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    window.variants.list.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(rig.models.variants.value.items) == 4, timeout=5000)
    qtbot.keyClick(window.variants.list, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "v01", timeout=2000)
    qtbot.keyClick(window.variants.list, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "", timeout=2000)
    assert "(Space)" in window.variants.play_button.toolTip()
