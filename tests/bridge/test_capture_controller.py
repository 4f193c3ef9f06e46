"""The bridge's capture: the controller arming a take in the simulated world, the OSC addresses, the CLI's
checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capture_rig import BAR, SR, World
from fake_engine import FakeEngine
from osc_helpers import CLIENT, Recorder
from pythonosc.osc_message_builder import build_msg

from bridge.capture.controller import CaptureArmed, CaptureController, CaptureDone, CaptureFailed, CaptureProgress
from bridge.capture.options import TakeOptions, TakeResult
from bridge.cli import main
from bridge.daemon import region_of_take
from bridge.osc import OscBridge
from bridge.service import BridgeService
from engine.api import Meter
from engine.errors import BadInputError


def test_controller_arms_a_take_and_hands_it_over(tmp_path: Path) -> None:
    world = World(t0=time.perf_counter())  # the take's thread reads the real clock: the world follows it
    done: list[TakeResult] = []
    events: list[Any] = []
    controller = CaptureController(
        world.clock,  # type: ignore[arg-type]
        tmp_path / "captures",
        TakeOptions(realtime=False),
        on_done=done.append,
        open_recorder=lambda o: world.recorder,
    )
    controller.add_listener(events.append)
    # the take's thread sleeps for real: drive the simulated world from here until it is done
    controller.arm(1, origin=("127.0.0.1", 9))
    with pytest.raises(BadInputError, match="already armed"):
        controller.arm(1)
    deadline = time.monotonic() + 20
    while controller.armed and time.monotonic() < deadline:
        time.sleep(0.01)
        world.sleep(time.perf_counter() - world.t)
    assert not controller.armed
    assert isinstance(events[0], CaptureArmed) and events[0].bars == 1
    assert isinstance(events[-1], CaptureDone), events[-1]
    assert done and done[0].path.parent == tmp_path / "captures" and done[0].length_bars == 1
    region = region_of_take(done[0])
    assert (region.audio_path, region.start_beats, region.length_beats, region.tempo_bpm) == (
        done[0].path,
        0.0,
        4.0,
        120.0,
    )
    assert not controller.cancel()
    controller.close()


def test_controller_without_a_clock_says_how_to_get_one(tmp_path: Path) -> None:
    controller = CaptureController(None, tmp_path, TakeOptions())
    with pytest.raises(BadInputError, match="--midi-clock-in PORT"):
        controller.arm(2)


class FakeController:
    def __init__(self) -> None:
        self.armed_with: list[tuple[int | None, Any]] = []
        self.listeners: list[Callable[[Any], None]] = []
        self.cancelled = 0

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        self.listeners.append(listener)

    def arm(self, bars: int | None, origin: Any = None) -> None:
        self.armed_with.append((bars, origin))

    def cancel(self) -> bool:
        self.cancelled += 1
        return self.cancelled == 1


def test_osc_capture_addresses(tmp_path: Path) -> None:
    service = BridgeService(FakeEngine(), tmp_path / "out")  # type: ignore[arg-type]
    controller = FakeController()
    bridge = OscBridge(service, capture=controller)  # type: ignore[arg-type]
    sent = Recorder()
    bridge.attach(sent)

    def send(address: str, *args: Any) -> None:
        bridge.handle_datagram(build_msg(address, list(args)).dgram, CLIENT)

    send("/segue/capture/arm", 4)
    send("/segue/capture/arm", 0)
    send("/segue/capture/arm", 65)
    send("/segue/capture/arm", "four")
    assert controller.armed_with == [(4, CLIENT), (None, CLIENT)]
    errors = [args[0] for args in sent.of("/segue/error")]
    assert "bars must be in 0..64" in errors[0] and "must be a whole number" in errors[1]
    send("/segue/capture/cancel")
    send("/segue/capture/cancel")
    assert "no capture is armed" in sent.of("/segue/error")[-1][0]
    take = TakeResult(
        path=tmp_path / "c.wav",
        sample_rate_hz=SR,
        channels=2,
        frames=BAR,
        start_beats=8.0,
        length_bars=1,
        length_beats=4.0,
        tempo_bpm=120.0,
        meter=Meter(4, 4),
        tempo_changes=0,
        latency_frames=0,
        ended_by="bars",
        device="fake",
        clock_source="fake",
        clocks=97,
        quantized_stamps=True,
    )
    for event in (
        CaptureArmed(4, origin=CLIENT),
        CaptureProgress(0.5, "recording bar 1 of 1", origin=CLIENT),
        CaptureDone(take, origin=CLIENT),
        CaptureFailed("no Start", False, origin=CLIENT),
    ):
        controller.listeners[0](event)
    assert sent.of("/segue/capture/armed") == [[4]]
    assert sent.of("/segue/capture/progress") == [[0.5, "recording bar 1 of 1"]]
    assert sent.of("/segue/capture/done") == [[str(tmp_path / "c.wav"), 8.0, 4.0, 120.0]]
    assert sent.of("/segue/capture/failed") == [["no Start"]]
    service.close()


def test_cli_capture_refuses_an_existing_file_before_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "mine.wav"
    existing.write_bytes(b"x")
    code = main(["capture", "--bars", "2", "--midi-clock-in", "p", "--out", str(existing)])
    assert code == 2 and "already exists" in capsys.readouterr().err
    code = main(["capture", "--bars", "0", "--midi-clock-in", "p", "--out", str(tmp_path / "n.wav")])
    assert code == 2 and "bars must be in 1..64" in capsys.readouterr().err
    code = main(["capture", "--help"])
    assert code == 0 and "--latency-frames" in capsys.readouterr().out
