"""Context kept: after a restart the last job's region is shown with its variants; a job opened from the History
brings its own region (tempo, meter) above its variants; an audio region gets a tempo from its beat (the DAW's and
the user's always win: typed, tapped or in the file's name); tap tempo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile
from fake_engine import write_midi
from gui_rig import Rig, generate_and_wait, wait_engine
from pytestqt.qtbot import QtBot

from engine.api import Meter
from gui.core.session_region import TapTempo
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def _clicks(path: Path, bpm: float, seconds: float = 10.0, rate: int = 22_050) -> Path:
    """A click on every beat at ``bpm`` (made here: a decaying 1 kHz burst per beat)."""
    x = np.zeros(int(seconds * rate), dtype=np.float32)
    burst = (np.sin(2 * np.pi * 1000 * np.arange(600) / rate) * np.exp(-np.arange(600) / 120)).astype(np.float32)
    for beat in np.arange(0.0, seconds - 0.1, 60.0 / bpm):
        start = int(beat * rate)
        x[start : start + len(burst)] += 0.5 * burst[: len(x) - start]
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, x, rate)
    return path


def test_after_a_restart_the_last_jobs_region_is_shown_with_its_variants(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, tmp_path: Path
) -> None:
    first = make_rig()
    wait_engine(qtbot, first)
    first.session.open_files([write_midi(tmp_path / "regions" / "chorus.mid", 2, tempo_bpm=100)])
    generate_and_wait(qtbot, first, variants=2)
    first.session.close()
    second = make_rig()
    window = make_window(second)
    qtbot.waitUntil(lambda: second.models.variants.value.job is not None, timeout=3000)
    region = second.models.region.value
    assert region.region is not None and region.name == "chorus"  # not "No region yet"
    assert region.region.tempo_bpm == pytest.approx(100) and region.tempo_source == "job"
    assert window.region.name.full_text == "chorus" and window.region.origin.text() == "FROM HISTORY"
    assert window.region.tempo.value() == pytest.approx(100)


def test_a_history_job_brings_its_own_region_above_its_variants(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, tmp_path: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([write_midi(tmp_path / "regions" / "verse.mid", 2, tempo_bpm=100)])
    generate_and_wait(qtbot, rig, variants=2)
    verse_job = rig.models.variants.value.job_dir
    rig.session.open_files([write_midi(tmp_path / "regions" / "bridge.mid", 3, tempo_bpm=138)])
    rig.session.set_region_timing(meter=Meter(3, 4))
    generate_and_wait(qtbot, rig, variants=2)
    assert rig.models.region.value.region.tempo_bpm == pytest.approx(138)  # type: ignore[union-attr]
    assert verse_job is not None
    rig.session.open_job(verse_job)  # what a double-click in the History does
    region = rig.models.region.value.region
    assert region is not None and rig.models.region.value.name == "verse"
    assert region.tempo_bpm == pytest.approx(100) and str(region.meter) == "4/4"
    assert window.region.tempo.value() == pytest.approx(100) and window.region.meter.currentText() == "4/4"
    assert rig.models.variants.value.job_dir == verse_job
    rig.session.generate()  # the next job continues the region shown
    qtbot.waitUntil(lambda: rig.engine.requests[-1].prompt.tempo_bpm == pytest.approx(100), timeout=5000)


def test_an_audio_region_gets_its_tempo_from_its_beat(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, tmp_path: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([_clicks(tmp_path / "take.wav", 96.0)])
    assert rig.models.region.value.tempo_source == "assumed"  # 120 until the beat is read
    qtbot.waitUntil(lambda: rig.models.region.value.tempo_source == "estimate", timeout=10_000)
    region = rig.models.region.value.region
    assert region is not None and region.tempo_bpm == pytest.approx(96, abs=1.5)
    assert region.length_beats == pytest.approx(10.0 * region.tempo_bpm / 60.0)  # the audio's length, in its beats
    assert window.region.tempo_source.text() == "estimated"
    assert "Tempo estimated from the audio" in rig.models.message.value.text  # type: ignore[union-attr]


def test_the_users_tempo_and_the_file_names_win_over_the_estimate(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, tmp_path: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([_clicks(tmp_path / "named_90bpm.wav", 96.0)])  # the name says 90: the producer's word
    qtbot.waitUntil(lambda: rig.models.region.value.tempo_estimate is not None, timeout=10_000)
    state = rig.models.region.value
    assert state.region is not None and state.region.tempo_bpm == 90 and state.tempo_source == "name"
    assert "The audio's beat says 9" in window.region.tempo.toolTip()  # the estimate is offered, not imposed
    rig.session.open_files([_clicks(tmp_path / "other.wav", 96.0)])
    rig.session.set_region_timing(tempo_bpm=101.0)  # typed before the beat was read
    qtbot.waitUntil(lambda: rig.models.region.value.tempo_estimate is not None, timeout=10_000)
    state = rig.models.region.value
    assert state.region is not None and state.region.tempo_bpm == 101.0 and state.tempo_source == "user"


def test_tap_tempo_takes_the_median_of_the_taps(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    now = [0.0]
    taps = TapTempo(clock=lambda: now[0])
    results = []
    for t in (0.0, 0.5, 1.0, 1.52, 2.0, 6.0):  # 120 BPM, one late tap; then a pause starts a new count
        now[0] = t
        results.append(taps.tap())
    assert results == [None, None, 120.0, 120.0, 120.0, None]  # the late tap does not move the median
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    rig.session.tapper = TapTempo(clock=lambda: now[0])
    for t in (10.0, 10.6, 11.2):
        now[0] = t
        window.region.tap_button.click()
    state = rig.models.region.value
    assert state.region is not None and state.region.tempo_bpm == 100.0 and state.tempo_source == "user"
    assert window.region.tempo_source.text() == "yours"
