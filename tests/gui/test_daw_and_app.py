"""A DAW talking to the app over real OSC (UDP on 127.0.0.1): its region shows, the app generates, "Place in DAW"
sends the files back. And ``segue gui --screenshot`` renders the window to a PNG and exits."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from gui_rig import Rig, StemEngine, wait_engine
from osc_helpers import DawSocket
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QImage
from pytestqt.qtbot import QtBot

from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def test_a_region_from_the_daw_is_generated_and_placed_back(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig(osc=True)
    window = make_window(rig)
    wait_engine(qtbot, rig)
    link = rig.models.link.value
    assert link.status == "listening" and link.osc_port > 0
    daw = DawSocket(("127.0.0.1", link.osc_port))
    try:
        daw.send("/segue/region", "", str(region_file), 16.0, 8.0, 96.0, 4, 4, "Keys")
        qtbot.waitUntil(lambda: rig.models.region.value.origin == "daw", timeout=5000)
        assert window.region.origin.text() == "FROM DAW" and window.region.name.full_text == "Keys"
        assert window.region.position.text() == "bar 5" and window.region.tempo.value() == 96.0
        assert window.connections.daw_light.status == "connected"
        assert "/segue/region" in window.connections.last_message.text()
        qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(rig.models.variants.value.items) == 4, timeout=5000)
        qtbot.mouseClick(window.variants.place_button, Qt.MouseButton.LeftButton)
        place = daw.expect("/segue/place")
        path, beats, _seconds, track, kind = place
        assert Path(path).is_file() and kind in ("audio", "midi") and "Keys" in track
        assert beats == pytest.approx(16.0 + 8.0)  # after the region, on the DAW's timeline
    finally:
        daw.close()


def test_the_screenshot_renders_the_window_and_exits(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gui import app

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # run() installs its dialog hook; put it back after
    png = tmp_path / "shot.png"
    said: list[str] = []
    options = app.GuiOptions(screenshot=png, out_dir=tmp_path / "jobs", settings_path=tmp_path / "gui.json")
    code = app.run(options, lambda spec, **kw: StemEngine(), say=said.append)
    assert code == 0, said
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1440, 900)
    colors = {image.pixel(x, y) for x in range(0, 1440, 16) for y in range(0, 900, 16)}
    assert len(colors) > 30  # drawn panels, not a blank frame
    assert "screenshot saved" in said[-1]
    assert not (tmp_path / "gui.json").exists()  # the demo never touches the user's settings
    assert list((tmp_path / "jobs").iterdir())  # the demo's job folders


def test_segue_gui_screenshot_of_an_existing_job_from_the_command_line(
    qtbot: QtBot, make_rig: MakeRig, tmp_path: Path, region_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gui_rig import generate_and_wait

    from bridge import cli

    rig = make_rig()
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=3)
    job_dir = rig.models.variants.value.job_dir
    assert job_dir is not None
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    png = tmp_path / "job.png"
    argv = ["gui", "--screenshot", str(png), "--demo-job", str(job_dir), "--out", str(tmp_path / "other")]
    assert cli.main(argv, engine_factory=lambda spec, **kw: StemEngine()) == 0
    assert QImage(str(png)).width() == 1440
    assert not (tmp_path / "other").exists() or not list((tmp_path / "other").iterdir())  # nothing generated


def test_choosing_a_daw_adapter_reopens_the_link(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow) -> None:
    import socket

    rig = make_rig(osc=True)
    window = make_window(rig)
    panel = window.connections
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as fake_reaper:
        fake_reaper.bind(("127.0.0.1", 0))
        panel.daw_combo.setCurrentIndex(panel.daw_combo.findData("reaper"))
        panel.daw_port.setValue(fake_reaper.getsockname()[1])
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
        link = rig.models.link.value
        assert link.status == "listening" and link.daw == "reaper"
        assert f"talking to reaper at 127.0.0.1:{fake_reaper.getsockname()[1]}" in panel.daw_status.text()
    # a port that is taken: a red light and a message, never a crash
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        panel.daw_combo.setCurrentIndex(panel.daw_combo.findData("generic"))
        panel.osc_port.setValue(taken.getsockname()[1])
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
        assert rig.models.link.value.status == "error" and panel.daw_light.status == "error"
        said = rig.models.message.value.text if rig.models.message.value else ""
        assert f"cannot listen for your DAW on UDP 127.0.0.1:{taken.getsockname()[1]}" in said
        assert "choose another port under Connections > DAW" in said and "--osc-port" not in said


def test_a_watched_folder_takes_regions_from_reaper_and_gets_the_placements(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path, tmp_path: Path
) -> None:
    import json

    rig = make_rig()
    window = make_window(rig)
    panel = window.connections
    wait_engine(qtbot, rig)
    folder = tmp_path / "watch"
    panel.watch_dir.setText(str(folder))
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert rig.session.settings.watch_dir == str(folder) and "watching" in panel.watch_detail.text()
    request = {
        "segue": 1, "audio_path": "", "midi_path": str(region_file), "start_beats": 8.0, "length_beats": 8.0,
        "tempo_bpm": 120.0, "meter_num": 4, "meter_den": 4, "track": "Piano",
        "generate": {"mode": "continue", "bars": 2, "variants": 2},
    }  # fmt: skip
    tmp = folder / "requests" / "take.json.tmp"
    tmp.write_text(json.dumps(request))
    tmp.rename(folder / "requests" / "take.json")  # as the REAPER script does
    window.show()  # the window's timer shows a region that came this way
    qtbot.waitUntil(lambda: window.region.name.full_text == "Piano", timeout=5000)
    assert window.region.origin.text() == "FROM DAW"
    qtbot.waitUntil(lambda: len(rig.models.variants.value.items) == 2, timeout=5000)  # its generate ran
    qtbot.mouseClick(window.variants.place_button, Qt.MouseButton.LeftButton)  # no OSC peer: the folder will do
    qtbot.waitUntil(lambda: len(list((folder / "placed").glob("*.json"))) >= 2, timeout=5000)  # the mix and MIDI
    placed = [json.loads(p.read_text()) for p in sorted((folder / "placed").glob("*.json"))]
    assert {p["kind"] for p in placed} == {"audio", "midi"} and all(Path(p["file_path"]).is_file() for p in placed)
    assert placed[0]["position_beats"] == 16.0 and "Piano" in placed[0]["track_name"]
    panel.watch_dir.setText("")
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert rig.session.settings.watch_dir == "" and not panel.watch_detail.isVisible()
