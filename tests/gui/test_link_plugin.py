"""Segue Link in the app (gui/core/session_plugins.py): a fake plugin written here in Python speaks the plugin's OSC
contract (docs/osc.md) over real UDP on 127.0.0.1; Connections lists it, "Play in DAW" appears and sends the
variant to it, and the plugin's answer shows as a message. Offscreen (pytest-qt)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gui_rig import Rig, generate_and_wait, wait_engine
from osc_helpers import DawSocket
from PyQt6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bridge import segue_version
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def test_a_connected_link_plugin_is_listed_and_plays_the_chosen_variant(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig(osc=True)
    window = make_window(rig)
    wait_engine(qtbot, rig)
    port = rig.models.link.value.osc_port
    plugin, daw = DawSocket(("127.0.0.1", port)), DawSocket(("127.0.0.1", port))
    try:
        assert not window.variants.play_daw_button.isVisibleTo(window)  # no plugin yet
        plugin.send("/segue/link/hello", "inst-1", "Bass", "", 48000, "test")
        assert plugin.expect("/segue/link/welcome") == [segue_version()]
        qtbot.waitUntil(lambda: "● Bass connected" in window.connections.plugins.text(), timeout=5000)
        daw.send("/segue/region", "", str(region_file), 16.0, 8.0, 96.0, 4, 4, "Bass")
        qtbot.waitUntil(lambda: rig.models.region.value.origin == "daw", timeout=5000)
        generate_and_wait(qtbot, rig, variants=2)
        assert window.variants.play_daw_button.isVisibleTo(window)
        assert window.connections.daw_light.status == "connected"
        assert "/segue/link/hello" not in window.connections.last_message.text()  # heartbeats are not shown
        rig.session.select(rig.models.variants.value.items[1].variant_id)
        qtbot.mouseClick(window.variants.play_daw_button, Qt.MouseButton.LeftButton)
        path, beats, replace = plugin.expect("/segue/link/play")
        job_dir = rig.models.variants.value.job_dir
        assert job_dir is not None and Path(path) == job_dir / "v02" / "continuation.wav"
        assert beats == pytest.approx(16.0 + 8.0) and replace == 1  # after the region (the fake's place_at)
        plugin.send("/segue/link/loaded", "inst-1", path, 5.0)
        qtbot.waitUntil(lambda: "Segue Link loaded continuation.wav" in rig.models.message.value.text, timeout=5000)
        assert daw.received == []  # nothing went to the DAW script: the plugin plays it
        plugin.send("/segue/link/bye", "inst-1")
        qtbot.waitUntil(lambda: "○ Bass not connected" in window.connections.plugins.text(), timeout=5000)
        assert not window.variants.play_daw_button.isVisibleTo(window)
    finally:
        plugin.close()
        daw.close()


def test_play_in_daw_without_a_plugin_says_what_to_do(qtbot: QtBot, make_rig: MakeRig, region_file: Path) -> None:
    rig = make_rig(osc=True)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    generate_and_wait(qtbot, rig, variants=1)
    rig.session.play_in_daw(rig.models.variants.value.items[0].variant_id)
    assert "No Segue Link plugin is connected" in rig.models.message.value.text


def test_the_app_follows_the_plugins_transport(qtbot: QtBot, make_rig: MakeRig) -> None:
    rig = make_rig(osc=True)
    wait_engine(qtbot, rig)
    plugin = DawSocket(("127.0.0.1", rig.models.link.value.osc_port))
    try:
        plugin.send("/segue/link/hello", "inst-1", "Drums", "", 44100, "test")
        plugin.expect("/segue/link/welcome")
        plugin.send("/segue/link/transport", "inst-1", 97.5, 3, 4, 13.5, 0)  # bar 5, beat 2 in 3/4

        def followed() -> bool:
            rig.session.tick()
            return rig.models.clock.value.source == "link:Drums"

        qtbot.waitUntil(followed, timeout=5000)
        clock = rig.models.clock.value
        assert (clock.tempo_bpm, clock.playing, clock.position_beats) == (97.5, False, 13.5)
        assert rig.session.transport().clock_source == "link:Drums"  # what audition starts on
    finally:
        plugin.close()


def test_talking_to_the_plugin_a_capture_is_placed_back_through_it(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    """Connections > Talks to: Segue Link plugin. The plugin's own capture (/segue/region from its socket) does not
    make it the DAW peer: Place in DAW plays the variant through it, and no /segue/place goes to it."""
    import dataclasses

    from gui.core.settings import GuiSettings

    rig = make_rig(osc=True, settings=dataclasses.replace(GuiSettings(), daw="link"))
    window = make_window(rig)
    wait_engine(qtbot, rig)
    plugin = DawSocket(("127.0.0.1", rig.models.link.value.osc_port))
    try:
        plugin.send("/segue/link/hello", "inst-1", "Keys", "", 48000, "test")
        plugin.expect("/segue/link/welcome")
        plugin.send("/segue/region", "", str(region_file), 12.0, 8.0, 96.0, 4, 4, "Keys")
        qtbot.waitUntil(lambda: rig.models.region.value.origin == "daw", timeout=5000)
        assert rig.models.link.value.peer == ""  # the plugin is not where /segue/place goes
        generate_and_wait(qtbot, rig, variants=2)
        qtbot.waitUntil(lambda: rig.session.can_place(), timeout=5000)
        qtbot.mouseClick(window.variants.place_button, Qt.MouseButton.LeftButton)
        path, beats, replace = plugin.expect("/segue/link/play")
        assert Path(path).is_file() and beats == pytest.approx(12.0 + 8.0) and replace == 1
        assert "/segue/place" not in [address for address, _ in plugin.received]
    finally:
        plugin.close()
