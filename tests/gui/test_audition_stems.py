"""Audition per stem (mute and solo while it plays, from the same position) and the region alone (its audio, or a
sketch of its notes), through the fake output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
from gui_rig import Rig, generate_and_wait, wait_engine
from pytestqt.qtbot import QtBot

from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]
RATE = 8000


def _tone(path: Path, hz: float, seconds: float) -> None:
    t = np.arange(int(seconds * RATE)) / RATE
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), RATE)


def _pitch(block: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(block[:, 0] * np.hanning(len(block))))
    return float(np.argmax(spectrum) * RATE / len(block))


def test_stems_are_muted_and_soloed_while_the_variant_plays(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=1)
    item = rig.models.variants.value.items[0]
    _tone(item.stems["piano"], 440.0, item.duration_seconds)  # stems we can tell apart (made here)
    _tone(item.stems["bass"], 110.0, item.duration_seconds)
    panel = window.variants
    assert set(panel.stem_mutes) == {"bass", "piano"} and set(panel.stem_solos) == {"bass", "piano"}
    panel.stem_mutes["bass"].click()  # bass muted: the piano alone
    assert rig.models.variants.value.muted == ("bass",)
    rig.session.play("v01")
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "v01+stems", timeout=3000)
    output = rig.outputs[-1]
    assert abs(_pitch(output.advance(0.5)) - 440.0) < 20
    panel.stem_solos["bass"].click()  # solo wins over mute: the bass alone, from the same place
    qtbot.waitUntil(lambda: abs(_pitch(output.advance(0.25)) - 110.0) < 20, timeout=3000)
    assert rig.session.player.position_seconds() > 0.5  # not from the start
    panel.stem_solos["bass"].click()
    panel.stem_mutes["bass"].click()  # nothing muted or soloed: the variant's mix again
    state = rig.models.variants.value
    assert state.muted == () and state.soloed == ()
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "v01", timeout=3000)


def test_the_region_plays_alone(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path, tmp_path: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])  # MIDI: a sketch of its notes (one C4 per bar)
    window.region.play_button.click()
    qtbot.waitUntil(lambda: rig.models.variants.value.playing == "region", timeout=3000)
    output = rig.outputs[-1]
    block = output.advance(0.5)
    assert output.rate == 22_050 and np.abs(block).max() > 0.01
    assert abs(_pitch_at(block, 22_050) - 261.6) < 15  # middle C
    rig.session.stop()
    take = tmp_path / "take_120bpm.wav"
    _tone(take, 330.0, 2.0)
    rig.session.open_files([take])  # audio: the file itself
    window.region.play_button.click()
    qtbot.waitUntil(
        lambda: rig.models.variants.value.playing == "region" and rig.outputs[-1].rate == RATE, timeout=3000
    )
    assert abs(_pitch(rig.outputs[-1].advance(0.5)) - 330.0) < 20


def _pitch_at(block: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(block[:, 0] * np.hanning(len(block))))
    return float(np.argmax(spectrum) * rate / len(block))
