"""Audition through the real sound path: sounddevice (PortAudio) into a JACK dummy server, no sound card needed.
An integration test (`make test-integ` style): it starts jackd, and skips where jackd or PortAudio is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_engine import write_wav

from gui.core.audition import AuditionEvent, AuditionFailed, AuditionStarted, AuditionStopped, Player, SoundDeviceOutput

pytestmark = pytest.mark.integration


def _shut_down(sd: Any) -> None:
    """Terminate PortAudio however often it was started (an earlier test may have shut it down already)."""
    while getattr(sd, "_initialized", 0) > 0:
        sd._terminate()


@pytest.fixture
def jack(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        pytest.skip("needs jackd and jack_wait (apt install jackd2)")
    sd = pytest.importorskip("sounddevice", reason="needs PortAudio (apt install libportaudio2)")
    name = f"segue-gui-{os.getpid()}"
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    proc = subprocess.Popen(
        ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        subprocess.run(["jack_wait", "-s", name, "-w", "-t", "10"], env=env, capture_output=True, timeout=15)
        monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
        _shut_down(sd)  # PortAudio finds JACK servers when it starts: start it again, now that ours runs
        sd._initialize()
        yield name
    finally:
        _shut_down(sd)  # PortAudio lets go of the server before it stops
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        monkeypatch.delenv("JACK_DEFAULT_SERVER", raising=False)
        sd._initialize()


def test_a_take_plays_to_its_end_through_portaudio(jack: str, tmp_path: Path) -> None:
    take = write_wav(tmp_path / "take.wav", 0.5, sample_rate=48000)
    events: list[AuditionEvent] = []
    player = Player(SoundDeviceOutput, listener=events.append)
    try:
        started = time.monotonic()
        player.play("v01", (take,))
        deadline = started + 10
        while not any(isinstance(e, AuditionStopped) for e in events) and time.monotonic() < deadline:
            time.sleep(0.02)
        elapsed = time.monotonic() - started
    finally:
        player.close()
    assert [type(e) for e in events] == [AuditionStarted, AuditionStopped], events
    stopped = events[-1]
    assert isinstance(stopped, AuditionStopped) and stopped.finished  # the device pulled every frame
    # at the device's pace, not all at once: never faster than the take (no upper bound: a loaded machine may be slow
    # to open the stream; the 10 s deadline above bounds the wait, and `finished` says every frame was pulled)
    assert elapsed > 0.45


def test_a_44k_take_plays_through_a_48k_jack_server(jack: str, tmp_path: Path) -> None:
    """JACK runs at one rate (48 kHz here); PortAudio refuses a stream at the file's 44.1 kHz: the take is resampled."""
    take = write_wav(tmp_path / "take.wav", 0.5, sample_rate=44100)
    events: list[AuditionEvent] = []
    player = Player(SoundDeviceOutput, listener=events.append)
    try:
        player.play("v01", (take,))
        deadline = time.monotonic() + 10
        while not any(isinstance(e, AuditionStopped) for e in events) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        player.close()
    assert [type(e) for e in events] == [AuditionStarted, AuditionStopped], events
    stopped = events[-1]
    assert isinstance(stopped, AuditionStopped) and stopped.finished


def test_a_jack_server_started_after_the_first_play_is_found_on_the_next(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The producer presses Play before JACK runs ("No sound output"), starts JACK, presses Play again: it plays,
    without restarting Segue (PortAudio lists devices only when it starts; the output starts it again)."""
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        pytest.skip("needs jackd and jack_wait (apt install jackd2)")
    sd = pytest.importorskip("sounddevice", reason="needs PortAudio (apt install libportaudio2)")
    name = f"segue-gui-late-{os.getpid()}"
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    _shut_down(sd)
    sd._initialize()  # PortAudio starts with no JACK server of that name
    if any(d["max_output_channels"] > 0 for d in sd.query_devices()):
        _shut_down(sd)
        sd._initialize()
        pytest.skip("this machine has a sound output already: nothing appears later")
    take = write_wav(tmp_path / "take.wav", 0.3, sample_rate=48000)
    events: list[AuditionEvent] = []
    player = Player(SoundDeviceOutput, listener=events.append)
    proc = None
    try:
        player.play("v01", (take,))
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            time.sleep(0.02)
        assert events and isinstance(events[0], AuditionFailed) and "start JACK" in events[0].message
        proc = subprocess.Popen(
            ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        subprocess.run(["jack_wait", "-s", name, "-w", "-t", "10"], env=env, capture_output=True, timeout=15)
        player.play("v01", (take,))
        deadline = time.monotonic() + 10
        while not any(isinstance(e, AuditionStopped) for e in events) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        player.close()
        _shut_down(sd)  # PortAudio lets go of the server before it stops
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        monkeypatch.delenv("JACK_DEFAULT_SERVER", raising=False)
        sd._initialize()
    assert [type(e) for e in events] == [AuditionFailed, AuditionStarted, AuditionStopped], events
