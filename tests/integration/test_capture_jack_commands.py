"""Capture through a real JACK server (jack_midi_clock, jack_metro; tests/support/capture_jack_rig.py) by the
``segue capture`` command in its own process and by the bridge's ``/segue/capture/arm``, whose take becomes the
region that ``/segue/generate`` continues."""

from __future__ import annotations

import faulthandler
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from capture_jack_rig import (
    Tries,
    check_alignment,
    open_clock,
    play,
)
from jack_procs import MIDI_CLOCK_PORT, JackServer, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.realtime]  # not in `make test`: see the Makefile
ClockFactory = Callable[..., subprocess.Popen[bytes]]
REPO = Path(__file__).resolve().parents[2]


def test_segue_capture_command(
    rt_jack_server_factory: Callable[..., JackServer],
    midi_clock_factory: ClockFactory,
    metro_factory: Callable[[JackServer, float], tuple[str, str]],
    tmp_path: Path,
) -> None:
    """``segue capture`` in its own process; ``--input beat`` names the JACK client, which PortAudio connects."""
    bpm = 120
    server = rt_jack_server_factory(1024)  # 21 ms of slack per cycle: fewer xruns on a loaded machine
    midi_clock_factory(server, bpm)
    metro_factory(server, bpm)
    observer = open_clock(server)  # sees the DAW start; segue capture has its own clock input
    try:
        tries = Tries(server)
        for attempt in tries:
            out = tmp_path / f"take-{attempt}.wav"
            argv = [sys.executable, "-m", "bridge.cli", "capture", "--bars", "1", "--midi-clock-in", MIDI_CLOCK_PORT]
            argv += ["--input", "beat", "--out", str(out), "--json", "--wait", "20"]
            server.transport("stop", "locate 0")
            proc = subprocess.Popen(
                argv, cwd=REPO, env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            try:
                armed = wait_until(lambda: "PortAudio:in_0" in server.run("jack_lsp", timeout=5).stdout, 20, 0.1)
                assert armed, "segue capture did not open its input"
                time.sleep(0.3)
                play(server, observer)
                stdout, stderr = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
                server.transport("stop")
            if proc.returncode == 2 and tries.refused(attempt, stderr.strip()):
                continue
            break
    finally:
        observer.close()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{stderr[-2000:]}"
    assert "armed (1 bar(s), beat, 48000 Hz)" in stderr, stderr
    take = json.loads(stdout)
    assert (take["length_bars"], take["tempo_bpm"], take["frames"], take["device"]) == (1, 120.0, 96000, "beat")
    assert take["path"] == str(out) and take["channels"] == 1
    check_alignment(out, bpm, 1, channels=1)
    again = subprocess.run(argv, cwd=REPO, env=server.env, capture_output=True, text=True, timeout=30)
    assert again.returncode == 2 and "already exists" in again.stderr  # the take is never overwritten


def test_bridge_capture_becomes_the_region(
    rt_jack_server_factory: Callable[..., JackServer],
    midi_clock_factory: ClockFactory,
    metro_factory: Callable[[JackServer, float], tuple[str, str]],
    tmp_path: Path,
) -> None:
    """``segue bridge`` (in this process, a fake engine): ``/segue/capture/arm 1`` over UDP, play, then the take is
    the region that ``/segue/generate`` continues."""
    from fake_engine import FakeEngine
    from osc_helpers import DawSocket

    from bridge.cli import main
    from bridge.daemon import BridgeRunning

    bpm = 120
    server = rt_jack_server_factory(1024)  # 21 ms of slack per cycle: fewer xruns on a loaded machine
    midi_clock_factory(server, bpm)
    metro_factory(server, bpm)
    engine = FakeEngine()
    observer = open_clock(server)
    running: list[BridgeRunning] = []
    argv = ["bridge", "--osc-port", "0", "--midi-clock-in", MIDI_CLOCK_PORT, "--capture-input", "beat"]
    argv += ["--out", str(tmp_path / "jobs"), "--place", "none"]
    bridge = threading.Thread(
        target=main,
        args=(argv,),
        kwargs={"engine_factory": lambda spec, **kw: engine, "bridge_ready": running.append},
        daemon=True,
    )
    bridge.start()
    assert wait_until(lambda: bool(running), 10), "the bridge did not start"
    daw = DawSocket(running[0].osc_address)
    try:
        daw.ping()
        tries = Tries(server)
        for attempt in tries:
            server.transport("stop", "locate 0")
            daw.send("/segue/capture/arm", 1)
            assert daw.expect("/segue/capture/armed", timeout=5) == [1]
            assert wait_until(lambda: "PortAudio:in_0" in server.run("jack_lsp", timeout=5).stdout, 10, 0.1)
            time.sleep(0.3)
            play(server, observer)
            reply = _next_of(daw, ("/segue/capture/done", "/segue/capture/failed"), timeout=20)
            server.transport("stop")
            if reply[0] == "/segue/capture/failed" and tries.refused(attempt, reply[1][0]):
                continue
            break
        address, args = reply
        assert address == "/segue/capture/done", args
        path, start_beats, length_beats, tempo = args
        assert Path(path).parent == tmp_path / "jobs" / "captures" and Path(path).is_file()
        assert (start_beats, length_beats, tempo) == (0.0, 4.0, 120.0)
        assert sf.info(path).frames == 96_000
        daw.send("/segue/generate", "continue", 1, 1)
        daw.expect("/segue/job/done", timeout=20)
        assert engine.requests[0].prompt.audio_path == Path(path)
        assert engine.requests[0].prompt.tempo_bpm == 120.0 and engine.requests[0].prompt.length_beats == 4.0
    finally:
        observer.close()
        daw.close()
        running[0].stop()
        bridge.join(10)


def _next_of(daw: Any, addresses: tuple[str, ...], timeout: float) -> tuple[str, list[Any]]:
    """The next message to ``daw`` with one of ``addresses`` (the others stay in ``daw.received``)."""
    deadline = time.monotonic() + timeout
    seen = len(daw.received)
    while True:
        for address, args in daw.received[seen:]:
            if address in addresses:
                return address, args
        seen = len(daw.received)
        if time.monotonic() >= deadline:
            faulthandler.dump_traceback(all_threads=True)  # where the take is stuck
            raise AssertionError(f"none of {addresses} within {timeout} s: {daw.received[-5:]}")
        try:
            daw.expect("/segue/none", timeout=0.2)  # reads what comes in for 0.2 s
        except AssertionError:
            pass
