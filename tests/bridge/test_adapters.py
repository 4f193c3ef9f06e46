"""The Ardour and REAPER adapters against fake DAWs on loopback UDP (python-osc messages, bounded waits)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine
from osc_helpers import DawSocket
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.parsing import osc_types

from bridge import cli
from bridge.adapters import ADAPTERS, ArdourAdapter, ReaperAdapter, open_adapter
from bridge.adapters.ardour import SET_SURFACE_ARGS, parse_bbt
from bridge.adapters.reaper import parse_beat
from bridge.daemon import BridgeRunning

Received = tuple[str, str, list[Any], tuple[str, int]]  # address, type tags, arguments, sender


class FakeDaw:
    """A UDP socket playing the DAW: records what it receives; :meth:`feed` answers the last sender."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.received: list[Received] = []
        self.surface: tuple[str, int] | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(65_535)
            except (TimeoutError, OSError):
                continue
            address, index = osc_types.get_string(data, 0)
            tags = osc_types.get_string(data, index)[0].lstrip(",") if index < len(data) else ""
            with self._cond:
                self.received.append((address, tags, list(OscMessage(data).params), sender))
                if address == "/set_surface":
                    self.surface = sender
                self._cond.notify_all()

    def wait_for(self, address: str, count: int = 1, timeout: float = 5.0) -> list[Received]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.of(address)) >= count, timeout)
            found = self.of(address)
        assert len(found) >= count, f"no {address} within {timeout} s; got {[r[0] for r in self.received]}"
        return found

    def of(self, address: str) -> list[Received]:
        return [r for r in self.received if r[0] == address]

    def feed(self, to: tuple[str, int], address: str, *args: tuple[str, Any]) -> None:
        builder = OscMessageBuilder(address=address)
        for tag, value in args:
            builder.add_arg(value, tag)
        self.sock.sendto(builder.build().dgram, to)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.sock.close()


def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


@pytest.fixture
def daw() -> Iterator[FakeDaw]:
    fake = FakeDaw()
    yield fake
    fake.close()


@pytest.fixture
def ardour(daw: FakeDaw) -> Iterator[ArdourAdapter]:
    adapter = ArdourAdapter(daw.address, register_interval_s=0.2)
    adapter.start()
    yield adapter
    adapter.close()


@pytest.fixture
def reaper(daw: FakeDaw) -> Iterator[ReaperAdapter]:
    adapter = ReaperAdapter(daw.address, listen=("127.0.0.1", 0))
    adapter.start()
    yield adapter
    adapter.close()


def test_ardour_registers_for_feedback_from_its_listening_port(daw: FakeDaw, ardour: ArdourAdapter) -> None:
    (address, tags, args, sender) = daw.wait_for("/set_surface")[0]
    assert (tags, tuple(args)) == ("iiiiiii", SET_SURFACE_ARGS)
    assert sender == ardour.address
    daw.wait_for("/set_surface", count=2)  # repeated while Ardour stays silent
    assert ardour.transport().clock_source.endswith("(no feedback)")


def test_ardour_feedback_updates_position_and_playing(daw: FakeDaw, ardour: ArdourAdapter) -> None:
    daw.wait_for("/set_surface")
    assert daw.surface is not None
    daw.feed(daw.surface, "/position/samples", ("s", "96000"))
    daw.feed(daw.surface, "/position/bbt", ("s", " 003|02|0960"))
    daw.feed(daw.surface, "/transport_speed", ("f", 1.0))
    until(lambda: ardour.transport().playing and ardour.state().bbt is not None)
    state = ardour.transport()
    assert state.position_beats == pytest.approx(2 * 4 + 1 + 0.5)
    assert state.tempo_bpm == 0.0 and state.clock_source == f"ardour-osc:{daw.address[0]}:{daw.address[1]}"
    until(lambda: ardour.state().position_samples == 96000)
    daw.feed(daw.surface, "/position/samples", ("h", 2**33))  # an int64 works too
    daw.feed(daw.surface, "/transport_stop", ("i", 1))
    until(lambda: not ardour.transport().playing and ardour.state().position_samples == 2**33)
    daw.feed(daw.surface, "/transport_play", ("i", 1))
    until(lambda: ardour.transport().playing)


def test_ardour_commands_have_the_right_arguments(daw: FakeDaw, ardour: ArdourAdapter) -> None:
    ardour.play()
    ardour.stop()
    ardour.locate(2**33 + 5, roll=True)
    ardour.goto_start()
    ardour.add_marker("verse 2")
    for address in ("/transport_play", "/transport_stop", "/goto_start"):
        assert daw.wait_for(address)[0][1:3] == ("", [])
    assert daw.wait_for("/locate")[0][1:3] == ("hi", [2**33 + 5, 1])
    assert daw.wait_for("/add_marker")[0][1:3] == ("s", ["verse 2"])
    with pytest.raises(ValueError, match="sample must be an int >= 0"):
        ardour.locate(-1)
    assert not ardour.capabilities.read_tempo and not ardour.capabilities.import_files
    assert "no tempo address" in ardour.capabilities.limitations and "Lua" in ardour.capabilities.limitations


def test_ardour_malformed_feedback_is_logged_and_ignored(
    daw: FakeDaw, ardour: ArdourAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    daw.wait_for("/set_surface")
    assert daw.surface is not None
    with caplog.at_level(logging.DEBUG, logger="bridge.adapters"):
        daw.feed(daw.surface, "/position/bbt", ("s", "not|a bbt"))
        daw.feed(daw.surface, "/position/samples", ("s", "lots"))
        daw.feed(daw.surface, "/transport_speed", ("s", "fast"))
        daw.feed(daw.surface, "/position/bbt", ("i", 3))
        daw.sock.sendto(b"\x00garbage", daw.surface)
        daw.feed(daw.surface, "/position/bbt", ("s", "002|01|0000"))  # a good one after the bad ones
        until(lambda: ardour.state().bbt == (2, 1, 0))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 5, warnings
    assert any("malformed /position/samples" in w for w in warnings)
    assert any("undecodable datagram" in w for w in warnings)
    assert ardour.state().position_samples is None and ardour.state().speed == 0.0


def test_reaper_feedback_and_commands(daw: FakeDaw, reaper: ReaperAdapter) -> None:
    assert reaper.transport().clock_source.endswith("(no feedback)")
    reaper.play()
    reaper.stop()
    reaper.locate(12.5)
    assert daw.wait_for("/play")[0][1:3] == ("", [])
    assert daw.wait_for("/stop")[0][1:3] == ("", [])
    (_, tags, args, sender) = daw.wait_for("/time")[0]
    assert (tags, args, sender) == ("f", [12.5], reaper.address)
    with pytest.raises(ValueError, match="finite"):
        reaper.locate(float("nan"))
    to = reaper.address
    daw.feed(to, "/tempo/raw", ("f", 96.0))
    daw.feed(to, "/time", ("f", 3.75))
    daw.feed(to, "/beat/str", ("s", "2.3.50"))
    daw.feed(to, "/play", ("f", 1.0))
    until(lambda: reaper.transport().playing and reaper.state().beat is not None)
    state = reaper.transport()
    assert state.tempo_bpm == 96.0
    assert state.position_beats == pytest.approx(4 + 2 + 0.5)
    until(lambda: reaper.state().position_seconds == 3.75)
    daw.feed(to, "/stop", ("f", 1.0))
    until(lambda: not reaper.transport().playing)
    assert reaper.capabilities.read_tempo and not reaper.capabilities.import_files
    assert "ReaScript" in reaper.capabilities.limitations


def test_reaper_malformed_feedback_is_logged_and_ignored(
    daw: FakeDaw, reaper: ReaperAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    to = reaper.address
    with caplog.at_level(logging.WARNING, logger="bridge.adapters"):
        daw.feed(to, "/tempo/raw", ("f", -5.0))
        daw.feed(to, "/tempo/raw", ("s", "120"))
        daw.feed(to, "/beat/str", ("s", "1-1-00"))
        daw.feed(to, "/time", ("s", "soon"))
        daw.feed(to, "/tempo/raw", ("f", 120.0))
        until(lambda: reaper.state().tempo_bpm == 120.0)
    assert len(caplog.records) == 4, [r.getMessage() for r in caplog.records]
    assert reaper.state().beat is None and reaper.state().position_seconds is None


def test_parsers() -> None:
    assert parse_bbt("-001|04|1919") == (-1, 4, 1919)
    assert parse_beat("10.4.05") == (10, 4, 0.05)
    for bad in ("1|2", "1|0|0", "1|1|1920", "a|b|c"):
        with pytest.raises(ValueError):
            parse_bbt(bad)
    for bad in ("1.2", "1.0.00", "1.1.x"):
        with pytest.raises(ValueError):
            parse_beat(bad)
    assert ADAPTERS == ("ardour", "reaper", "live", "bitwig")
    with pytest.raises(ValueError, match="no adapter called 'logic'"):
        open_adapter("logic", ("127.0.0.1", 1))


def test_segue_bridge_with_ardour_reports_its_transport(
    daw: FakeDaw, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers: list[list[Any]] = []

    def ready(running: BridgeRunning) -> None:
        segue = DawSocket(running.osc_address)
        try:
            daw.wait_for("/set_surface")
            assert daw.surface is not None
            daw.feed(daw.surface, "/position/bbt", ("s", "002|01|0000"))
            daw.feed(daw.surface, "/transport_speed", ("f", 1.0))
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                segue.send("/segue/status")
                answers.append(segue.expect("/segue/status", timeout=2))
                if answers[-1][1] == 1:
                    break
                time.sleep(0.02)
        finally:
            segue.close()
            running.stop()

    host, port = daw.address
    argv = ["bridge", "--daw", "ardour", "--daw-host", host, "--daw-port", str(port), "--osc-port", "0"]
    code = cli.main([*argv, "--out", str(tmp_path)], engine_factory=lambda *a, **k: FakeEngine(), bridge_ready=ready)
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"talking to ardour OSC at {host}:{port}" in err and "replies to the sender" in err
    assert answers[-1] == [0.0, 1, 4.0, f"ardour-osc:{host}:{port}"]
