"""The Ableton Live (AbletonOSC) and Bitwig (DrivenByMoss) adapters against fake DAWs on loopback UDP.

The fake DAWs send what the real ones send (see the adapters' docstrings for the sources): AbletonOSC replies with
python-osc's inferred types (``is_playing`` as ``T``/``F``), DrivenByMoss sends ints for booleans, floats for
numbers, text positions, and bundles framed by ``/update 1`` ... ``/update 0``.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine
from osc_helpers import DawSocket
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from test_adapters import FakeDaw, until

from bridge import cli
from bridge.adapters import DEFAULT_DAW_PORTS, BitwigAdapter, LiveAdapter
from bridge.adapters.bitwig import beat_to_quarters, parse_beat_text, parse_signature, quarters_per_measure
from bridge.adapters.live import LISTENS, POLL, as_bool
from bridge.daemon import BridgeRunning
from bridge.udp import port_free


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def daw() -> Iterator[FakeDaw]:
    fake = FakeDaw()
    yield fake
    fake.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def live(daw: FakeDaw, clock: Clock) -> Iterator[LiveAdapter]:
    adapter = LiveAdapter(daw.address, listen=("127.0.0.1", 0), poll_interval_s=0.05, now=clock)
    adapter.stale_after_s = 10.0  # the test's clock moves by hand; fast polls need not make it stale
    adapter.start()
    yield adapter
    adapter.close()


@pytest.fixture
def bitwig(daw: FakeDaw, clock: Clock) -> Iterator[BitwigAdapter]:
    adapter = BitwigAdapter(daw.address, listen=("127.0.0.1", 0), refresh_interval_s=0.05, now=clock)
    adapter.stale_after_s = 10.0
    adapter.start()
    yield adapter
    adapter.close()


def malformed_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "malformed" in r.getMessage() or "undecodable" in r.getMessage()]


def send_bundle(daw: FakeDaw, to: tuple[str, int], *messages: tuple[str, tuple[str, Any]]) -> None:
    bundle = OscBundleBuilder(IMMEDIATELY)
    for address, (tag, value) in messages:
        builder = OscMessageBuilder(address=address)
        builder.add_arg(value, tag)
        bundle.add_content(builder.build())
    daw.sock.sendto(bundle.build().dgram, to)


# -- Ableton Live through AbletonOSC ---------------------------------------------------------------------------


def test_live_listens_and_polls_from_its_feedback_port(daw: FakeDaw, live: LiveAdapter) -> None:
    for address in (*LISTENS, POLL):
        (_, tags, args, sender) = daw.wait_for(address)[0]
        assert (tags, args, sender) == ("", [], live.address)
    daw.wait_for(POLL, count=3)  # polled every poll_interval_s
    state = live.transport()
    assert state.clock_source == f"live-osc:{daw.address[0]}:{daw.address[1]} (no feedback)"
    assert (state.tempo_bpm, state.playing, state.position_beats) == (0.0, False, 0.0)


def test_live_feedback_gives_tempo_play_state_and_beats(daw: FakeDaw, live: LiveAdapter, clock: Clock) -> None:
    to = live.address
    daw.feed(to, "/live/song/get/tempo", ("f", 128.0))
    daw.feed(to, "/live/song/get/is_playing", ("T", True))
    daw.feed(to, "/live/song/get/current_song_time", ("f", 16.5))
    until(lambda: live.state().playing and live.state().song_time_beats == 16.5 and live.state().tempo_bpm == 128)
    state = live.transport()
    assert (state.tempo_bpm, state.playing, state.position_beats) == (128.0, True, 16.5)
    assert state.clock_source == f"live-osc:{daw.address[0]}:{daw.address[1]}"
    clock.t += 0.25  # moved on at the tempo while playing: 0.25 s at 128 BPM is 0.5333 beats
    assert live.transport().position_beats == pytest.approx(16.5 + 0.25 * 128 / 60)
    clock.t += 0.5  # ... by at most one beat past Live's last report
    assert live.transport().position_beats == pytest.approx(17.5)
    daw.feed(to, "/live/song/get/beat", ("i", 18))  # the beat listener
    until(lambda: live.state().song_time_beats == 18.0)
    assert live.transport().position_beats == pytest.approx(18.0)
    daw.feed(to, "/live/song/beat", ("i", 19))  # older AbletonOSC
    daw.feed(to, "/live/song/get/is_playing", ("F", False))
    until(lambda: not live.state().playing and live.state().song_time_beats == 19.0)
    clock.t += 0.5
    assert live.transport().position_beats == 19.0  # stopped: where Live said
    daw.feed(to, "/live/song/get/is_playing", ("i", 1))  # an int 0/1 works too
    until(lambda: live.state().playing)


def test_live_listens_again_after_silence_or_a_restart(daw: FakeDaw, live: LiveAdapter, clock: Clock) -> None:
    tempo_listens = "/live/song/start_listen/tempo"
    daw.wait_for(tempo_listens)
    daw.feed(live.address, "/live/song/get/tempo", ("f", 120.0))
    daw.wait_for(tempo_listens, count=2)  # first answer: Live may have started after us, listen again
    assert len(daw.of(tempo_listens)) == 2
    clock.t += live.stale_after_s + 0.1
    assert live.transport().clock_source.endswith(" (stale)")
    assert live.transport().tempo_bpm == 120.0  # the last known values stay, marked stale
    daw.feed(live.address, "/live/song/get/current_song_time", ("f", 0.0))
    daw.wait_for(tempo_listens, count=3)  # answers again after a silence: its listeners may be gone
    assert not live.transport().clock_source.endswith(" (stale)")
    daw.feed(live.address, "/live/startup")
    for address in LISTENS:
        daw.wait_for(address, count=4)


def test_live_commands(daw: FakeDaw, live: LiveAdapter) -> None:
    live.play()
    live.stop()
    live.locate(32)
    assert daw.wait_for("/live/song/continue_playing")[0][1:] == ("", [], live.address)
    assert daw.wait_for("/live/song/stop_playing")[0][1:3] == ("", [])
    assert daw.wait_for("/live/song/set/current_song_time")[0][1:3] == ("f", [32.0])
    for bad in (-1.0, float("inf"), True):
        with pytest.raises(ValueError, match="beats must be"):
            live.locate(bad)
    capabilities = live.capabilities
    assert capabilities.read_tempo and capabilities.read_position and capabilities.transport_control
    assert not capabilities.import_files and not capabilities.markers
    assert "Live 12.0.5's Track.create_audio_clip" in capabilities.limitations
    assert "11001" in capabilities.limitations


def test_live_malformed_feedback_is_logged_and_ignored(
    daw: FakeDaw, live: LiveAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    to = live.address
    with caplog.at_level(logging.DEBUG, logger="bridge.adapters"):
        daw.feed(to, "/live/song/get/tempo", ("s", "120"))
        daw.feed(to, "/live/song/get/tempo", ("f", 0.0))
        daw.feed(to, "/live/song/get/is_playing", ("i", 3))
        daw.feed(to, "/live/song/get/is_playing", ("s", "yes"))
        daw.feed(to, "/live/song/get/current_song_time", ("f", -4.0))
        daw.feed(to, "/live/song/get/beat", ("f", 2.5))
        daw.feed(to, "/live/song/get/tempo")  # no argument
        daw.sock.sendto(b"\x00garbage", to)
        daw.feed(to, "/live/song/get/tempo", ("f", 99.0))  # a good one after the bad ones
        until(lambda: live.state().tempo_bpm == 99.0)
    assert len(malformed_records(caplog)) == 8, malformed_records(caplog)
    state = live.state()
    assert (state.playing, state.song_time_beats) == (False, None)


def test_live_absent_gives_a_clear_state_at_once(clock: Clock) -> None:
    """Nothing listens at the DAW's port: no hang, no error, a state that says so."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = probe.getsockname()
    adapter = LiveAdapter(nobody, listen=("127.0.0.1", 0), poll_interval_s=0.02)
    started = time.monotonic()
    adapter.start()
    adapter.play()
    time.sleep(0.1)  # a few polls into the void
    state = adapter.transport()
    adapter.close()
    assert time.monotonic() - started < 2.0
    assert (state.tempo_bpm, state.playing, state.position_beats) == (0.0, False, 0.0)
    assert state.clock_source.endswith("(no feedback)")


def test_as_bool() -> None:
    assert as_bool(True, "x") is True and as_bool(0, "x") is False
    with pytest.raises(ValueError):
        as_bool(2, "x")
    with pytest.raises(TypeError):
        as_bool(1.0, "x")


# -- Bitwig through DrivenByMoss -------------------------------------------------------------------------------


def test_bitwig_asks_for_a_refresh_while_silent(daw: FakeDaw, bitwig: BitwigAdapter) -> None:
    (_, tags, args, sender) = daw.wait_for("/refresh")[0]
    assert (tags, args, sender) == ("", [], bitwig.address)
    daw.wait_for("/refresh", count=3)  # DrivenByMoss has not answered: asked again
    assert bitwig.transport().clock_source == f"bitwig-osc:{daw.address[0]}:{daw.address[1]} (no feedback)"


def test_bitwig_feedback_bundle_gives_tempo_play_state_and_position(
    daw: FakeDaw, bitwig: BitwigAdapter, clock: Clock
) -> None:
    to = bitwig.address
    send_bundle(
        daw,
        to,
        ("/update", ("i", 1)),
        ("/play", ("i", 1)),
        ("/tempo/raw", ("f", 97.5)),
        ("/time/str", ("s", "0.00.05:538")),  # ignored
        ("/time/signature", ("s", "4 / 4")),
        ("/beat/str", ("s", "3.2.4:50")),
        ("/update", ("i", 0)),
    )
    until(lambda: bitwig.state().beat is not None and bitwig.state().playing)
    state = bitwig.transport()
    assert (state.tempo_bpm, state.playing) == (97.5, True)
    assert state.position_beats == pytest.approx(2 * 4 + 1 + (3 + 0.5) * 0.25)  # measure 3, quarter 2, 16th 4
    assert state.clock_source == f"bitwig-osc:{daw.address[0]}:{daw.address[1]}"
    daw.feed(to, "/time/signature", ("s", "6 / 8"))  # 3 quarters a measure
    daw.feed(to, "/beat/str", ("s", "2.03.01:00"))  # the padded format of newer builds
    until(lambda: bitwig.state().beat == (2, 3, 1, 0))
    assert bitwig.transport().position_beats == pytest.approx(3 + 2)
    daw.feed(to, "/play", ("i", 0))
    until(lambda: not bitwig.transport().playing)
    clock.t += bitwig.stale_after_s + 0.1
    assert bitwig.transport().clock_source.endswith(" (stale)")


def test_bitwig_commands(daw: FakeDaw, bitwig: BitwigAdapter, tmp_path: Path) -> None:
    bitwig.play()
    bitwig.stop()
    bitwig.locate(12.5)
    bitwig.insert_into_slot(2, 3, tmp_path / "take 1.wav")
    plays = daw.wait_for("/play", count=2)
    assert [r[1:3] for r in plays] == [("i", [1]), ("i", [0])]  # /play 0 stops without rewinding
    assert daw.wait_for("/time")[0][1:] == ("f", [12.5], bitwig.address)
    assert daw.wait_for("/track/2/clip/3/insertFile")[0][1:3] == ("s", [str(tmp_path / "take 1.wav")])
    assert daw.of("/stop") == []
    with pytest.raises(ValueError, match="beats must be >= 0"):
        bitwig.locate(-0.5)
    with pytest.raises(ValueError, match="slot must be an int >= 1"):
        bitwig.insert_into_slot(1, 0, tmp_path / "x.wav")
    with pytest.raises(ValueError, match="must be absolute"):
        bitwig.insert_into_slot(1, 1, Path("x.wav"))
    capabilities = bitwig.capabilities
    assert capabilities.read_tempo and capabilities.read_position and capabilities.transport_control
    assert not capabilities.import_files
    assert "clip launcher slot" in capabilities.limitations and "arranger" in capabilities.limitations


def test_bitwig_malformed_feedback_is_logged_and_ignored(
    daw: FakeDaw, bitwig: BitwigAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    to = bitwig.address
    with caplog.at_level(logging.DEBUG, logger="bridge.adapters"):
        daw.feed(to, "/tempo/raw", ("s", "120"))
        daw.feed(to, "/tempo/raw", ("f", float("nan")))
        daw.feed(to, "/play", ("i", 2))
        daw.feed(to, "/beat/str", ("s", "1.0.1:00"))  # quarter 0
        daw.feed(to, "/beat/str", ("s", "1.1.5:00"))  # sixteenth 5
        daw.feed(to, "/beat/str", ("i", 3))
        daw.feed(to, "/time/signature", ("s", "4 / 0"))
        daw.sock.sendto(b"#bundle\x00garbage", to)
        daw.feed(to, "/tempo/raw", ("f", 140.0))
        until(lambda: bitwig.state().tempo_bpm == 140.0)
    assert len(malformed_records(caplog)) == 8, malformed_records(caplog)
    state = bitwig.state()
    assert (state.playing, state.beat, state.signature) == (False, None, (4, 4))


def test_bitwig_absent_gives_a_clear_state_at_once() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = probe.getsockname()
    adapter = BitwigAdapter(nobody, listen=("127.0.0.1", 0), refresh_interval_s=0.02)
    started = time.monotonic()
    adapter.start()
    adapter.stop()
    time.sleep(0.1)
    state = adapter.transport()
    adapter.close()
    assert time.monotonic() - started < 2.0
    assert (state.tempo_bpm, state.playing, state.position_beats) == (0.0, False, 0.0)
    assert state.clock_source.endswith("(no feedback)")


def test_bitwig_parsers() -> None:
    assert parse_beat_text(" 12.4.2:07 ") == (12, 4, 2, 7)
    assert parse_beat_text("001.1.1") == (1, 1, 1, 0)  # the short format, without ticks
    assert parse_signature("7 / 8") == (7, 8)
    assert quarters_per_measure((7, 8)) == 3 and quarters_per_measure((1, 8)) == 1
    assert beat_to_quarters((1, 1, 1, 0), (4, 4)) == 0.0
    assert beat_to_quarters((0, 4, 1, 0), (4, 4)) == -1.0  # before the arranger's start, as DrivenByMoss formats it
    for bad in ("1.2", "1.1.1:100", "a.b.c", "1.1.0:00"):
        with pytest.raises(ValueError):
            parse_beat_text(bad)
    for bad in ("4/", "0 / 4", "four / four"):
        with pytest.raises(ValueError):
            parse_signature(bad)


# -- segue bridge --daw live|bitwig ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "feedback_port", "feedback"),
    [
        (
            "live",
            11001,
            [
                ("/live/song/get/tempo", ("f", 97.5)),
                ("/live/song/get/current_song_time", ("f", 8.0)),
                ("/live/song/get/is_playing", ("T", True)),
            ],
        ),
        ("bitwig", 9000, [("/tempo/raw", ("f", 97.5)), ("/beat/str", ("s", "3.1.1:00")), ("/play", ("i", 1))]),
    ],
)
def test_segue_bridge_reports_the_daw_transport(
    name: str,
    feedback_port: int,
    feedback: list[tuple[str, tuple[str, Any]]],
    daw: FakeDaw,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not port_free(feedback_port):
        pytest.skip(f"UDP port {feedback_port} (the {name} feedback port) is taken on this machine")
    assert DEFAULT_DAW_PORTS[name] == {"live": 11000, "bitwig": 8000}[name]
    answers: list[list[Any]] = []

    def ready(running: BridgeRunning) -> None:
        segue = DawSocket(running.osc_address)
        try:
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                for address, arg in feedback:  # the DAW sends to its fixed feedback port
                    daw.feed(("127.0.0.1", feedback_port), address, arg)
                segue.send("/segue/status")
                answers.append(segue.expect("/segue/status", timeout=2))
                if answers[-1][1] == 1:
                    break
                time.sleep(0.02)
        finally:
            segue.close()
            running.stop()

    host, port = daw.address
    argv = ["bridge", "--daw", name, "--daw-host", host, "--daw-port", str(port), "--osc-port", "0"]
    code = cli.main([*argv, "--out", str(tmp_path)], engine_factory=lambda *a, **k: FakeEngine(), bridge_ready=ready)
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"talking to {name} OSC at {host}:{port}" in err and "limitations:" in err
    tempo, playing, position, source = answers[-1]
    assert (tempo, playing, source) == (97.5, 1, f"{name}-osc:{host}:{port}")
    assert position == pytest.approx(8.0, abs=0.5)  # Live's position moves on at the tempo while playing
