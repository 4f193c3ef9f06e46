"""One bad OSC message must cost nothing: numbers no region can have, a FIFO, a device, a folder, a 2 GB file or a
4096-character path as a region are refused at ``/segue/region`` time with one clear answer, and the OSC thread
keeps answering. The answer for a path never tells which files exist. Every wait here is bounded."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine, write_midi_region, write_wav
from osc_helpers import CLIENT, DawSocket, Recorder
from pythonosc.osc_message_builder import OscMessageBuilder, build_msg

from bridge import segue_version
from bridge.osc import OscBridge, OscServer
from bridge.service import BridgeService

UNREADABLE = "it does not exist or is not a MIDI/audio file Segue reads"
WAIT_S = 5.0


class Bridge:
    """An OscBridge over a started service with a FakeEngine; replies recorded, no sockets."""

    def __init__(self, tmp_path: Path) -> None:
        self.engine = FakeEngine()
        self.region = write_midi_region(tmp_path / "region.mid").resolve()
        self.out = tmp_path / "out"
        self.service = BridgeService(self.engine, self.out)  # type: ignore[arg-type]
        self.bridge = OscBridge(self.service)
        self.sent = Recorder()
        self.bridge.attach(self.sent)
        self.service.start()

    def send(self, address: str, *args: Any) -> None:
        """Numbers go as OSC doubles (``d``), so 1e308 travels as it is; strings as ``s``, ints as ``i``."""
        builder = OscMessageBuilder(address)
        for arg in args:
            kind = "d" if isinstance(arg, float) else "i" if isinstance(arg, int) else "s"
            builder.add_arg(arg, kind)
        self.bridge.handle_datagram(builder.build().dgram, CLIENT)

    def region_message(self, midi: str, length: float = 8.0, start: float = 0.0) -> tuple[Any, ...]:
        return ("", midi, start, length, 100.0, 4, 4, "t")

    def errors(self) -> list[str]:
        return [args[0] for args in self.sent.of("/segue/error")]


@pytest.fixture
def osc(tmp_path: Path) -> Iterator[Bridge]:
    bridge = Bridge(tmp_path)
    yield bridge
    bridge.service.close()


@pytest.mark.parametrize(
    ("start", "length", "words"),
    [
        (0.0, 1e30, "region length (length_beats) must be a positive number of beats (quarter notes) up to 32768"),
        (0.0, 1e308, "got 1e+308"),
        (0.0, 32_768.5, "select a shorter region"),
        (1e30, 8.0, "region start (start_beats) must be a number of beats"),
        (1e308, 8.0, "in 0..1000000, got 1e+308"),
    ],
)
def test_a_region_no_engine_can_read_is_refused_when_it_is_sent(
    osc: Bridge, start: float, length: float, words: str
) -> None:
    # the report's messages: /segue/region "" /abs/region.mid 0.0 1e30 100.0 4 4 "t", then generate continue 1 1
    osc.send("/segue/region", *osc.region_message(str(osc.region), length=length, start=start))
    osc.send("/segue/generate", "continue", 1, 1)
    region_error, generate_error = osc.errors()
    assert region_error.startswith("/segue/region: ") and words in region_error
    assert "no region yet: send /segue/region before /segue/generate" in generate_error
    assert osc.service.region is None and osc.engine.requests == []
    assert not osc.out.exists() or not any(osc.out.iterdir())  # no job folder was made


def test_a_32_bit_float_is_shown_as_sent(osc: Bridge) -> None:
    message = build_msg("/segue/region", ["", str(osc.region), 0.0, 1e30, 100.0, 4, 4, "t"])  # OSC 'f': 32 bits
    osc.bridge.handle_datagram(message.dgram, CLIENT)
    (error,) = osc.errors()
    assert error.endswith("got 1e+30; select a shorter region")


def test_the_same_path_problems_get_the_same_answer(osc: Bridge, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("C D E F G")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock_path = tmp_path / "s.sock"
    listener.bind(str(sock_path))
    try:
        cases = [tmp_path / "missing.mid", text, tmp_path, Path("/dev/zero"), sock_path, tmp_path / "nope" / "x.mid"]
        for path in cases:
            osc.send("/segue/region", *osc.region_message(str(path)))
    finally:
        listener.close()
    errors = osc.errors()
    assert errors == [f"/segue/region: cannot read a region at {path}: {UNREADABLE}" + errors[0].split(UNREADABLE)[1]
                      for path in cases]  # fmt: skip
    assert "64 MiB" in errors[0] and osc.service.region is None


def test_a_tilde_is_not_expanded(osc: Bridge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_midi_region(tmp_path / "mine.mid")
    osc.send("/segue/region", *osc.region_message("~/mine.mid"))
    (error,) = osc.errors()
    assert "the midi path must be absolute, got '~/mine.mid'" in error and osc.service.region is None


@pytest.mark.parametrize("length", [4096, 300])
def test_a_path_too_long_for_the_system_gets_a_clear_answer(osc: Bridge, length: int) -> None:
    path = "/" + "a" * (length - 1)  # 4096: the whole path is too long; 300: one name is
    osc.send("/segue/region", *osc.region_message(path))
    (error,) = osc.errors()
    assert f"cannot read a region at /{'a' * 79}... ({length} characters): {UNREADABLE}" in error
    assert "internal error" not in error


def test_a_two_gigabyte_region_is_refused_by_its_size(osc: Bridge, tmp_path: Path) -> None:
    big = tmp_path / "big.mid"
    with big.open("wb") as f:  # sparse: 2 GiB that take no disk
        f.write(osc.region.read_bytes())
        f.truncate(2 * 2**30)
    osc.send("/segue/region", *osc.region_message(str(big)))
    (error,) = osc.errors()
    assert UNREADABLE in error and "a Standard MIDI File up to 64 MiB" in error


@contextlib.contextmanager
def fifo(path: Path) -> Iterator[Path]:
    """A FIFO that nobody writes to; on exit a writer opens it, so a reader stuck in open() is released."""
    os.mkfifo(path)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):  # ENXIO when no reader is waiting: nothing to release
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_a_fifo_as_region_is_refused_and_the_osc_thread_keeps_answering(osc: Bridge, tmp_path: Path) -> None:
    server = OscServer(osc.bridge, "127.0.0.1", 0)
    server.start()
    daw = DawSocket(server.address)
    try:
        with fifo(tmp_path / "fifo.mid") as path:
            daw.send("/segue/region", "", str(path), 0.0, 8.0, 100.0, 4, 4, "t")
            assert UNREADABLE in daw.expect("/segue/error", timeout=WAIT_S)[0]
            assert daw.ping(attempts=2, timeout=WAIT_S) == [segue_version()]
            daw.send("/segue/region", str(path), "", 0.0, 8.0, 100.0, 4, 4, "t")  # as the audio path too
            assert UNREADABLE in daw.expect("/segue/error", timeout=WAIT_S)[0]
        assert osc.service.region is None
    finally:
        daw.close()
        server.close()


def test_a_worker_that_meets_memory_error_fails_the_job_and_keeps_serving(osc: Bridge) -> None:
    osc.engine.fail = MemoryError()
    osc.send("/segue/region", *osc.region_message(str(osc.region)))
    osc.send("/segue/generate", "continue", 1, 1)
    ((job_id, message),) = osc.sent.wait_for("/segue/job/failed", timeout=WAIT_S)
    assert (osc.out / job_id / "job.json").read_text().count('"failed"') >= 1
    osc.engine.fail = None
    osc.send("/segue/generate", "continue", 1, 1)
    (done,) = osc.sent.wait_for("/segue/job/done", timeout=WAIT_S)
    assert done[0] != job_id and threading.active_count() > 1


def test_an_audio_region_is_still_accepted(osc: Bridge, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "take.wav", 0.5)
    osc.send("/segue/region", str(wav), "", 0.0, 2.0, 120.0, 4, 4, "Vox")
    assert osc.errors() == [] and osc.service.region is not None
