"""Fixtures for integration tests (helpers in jack_procs.py): a JACK dummy server and jack_midi_clock, started with
bounded waits and always stopped. Missing binaries skip the test with the install hint (or run `make test-integ`)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from typing import IO

import pytest
from capture_jack_rig import RATE
from jack_procs import (
    JACK_BACKEND,
    MIDI_CLOCK_PORT,
    JackServer,
    clean_stale_jack_servers,
    need,
    next_server_name,
    stop_process,
    wait_until,
)

from bridge.sound_devices import release_audio


@pytest.fixture
def jack_server_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., JackServer]]:
    """``start(period=1024, rate=48000, realtime=True)`` starts a JACK dummy server; the test's environment
    points at it."""
    need("jackd", "jack_wait", "jack_lsp", "jack_transport")
    started: list[JackServer] = []
    logs: list[IO[bytes]] = []

    def start(period: int = 1024, rate: int = 48000, realtime: bool = True) -> JackServer:
        clean_stale_jack_servers()  # else jackd may refuse: "Too many servers already active"
        name = next_server_name()
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, MIDO_BACKEND=JACK_BACKEND, JACK_NO_AUDIO_RESERVATION="1")
        log = tempfile.TemporaryFile(mode="a+b")  # a file, not a pipe (a full pipe would block jackd); appended to
        logs.append(log)
        proc = subprocess.Popen(
            # realtime (-R, SCHED_FIFO 70, as root here): a loaded 2-core machine cannot starve the dummy driver
            ["jackd", "-n", name, *(["-R", "-P", "70"] if realtime else ["--no-realtime"])]
            + ["-d", "dummy", "-r", str(rate), "-p", str(period)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        server = JackServer(name, rate, period, env, proc, log)
        started.append(server)
        try:
            subprocess.run(["jack_wait", "-s", name, "-w", "-t", "10"], env=env, capture_output=True, timeout=15)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is not None or server.run("jack_wait", "-s", name, "-c", timeout=5).returncode != 0:
            stop_process(proc)
            log.seek(0)
            err = log.read().decode(errors="replace")[-2000:]
            pytest.fail(f"JACK dummy server {name} did not start:\n{err}")
        monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
        monkeypatch.setenv("MIDO_BACKEND", JACK_BACKEND)
        return server

    yield start
    for server in reversed(started):
        stop_process(server.proc)
    for log in logs:
        log.close()


@pytest.fixture
def jack_server(jack_server_factory: Callable[..., JackServer]) -> JackServer:
    """A JACK dummy server as in NOTES.md: 48 kHz, 1024-frame periods."""
    return jack_server_factory()


@pytest.fixture
def midi_clock_factory() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """``start(server, bpm)`` runs ``jack_midi_clock -b BPM -B`` (fixed tempo, follows JACK transport state)
    and waits until its port ``jack_midi_clock:mclk_out`` is listed."""
    need("jack_midi_clock")
    procs: list[subprocess.Popen[bytes]] = []

    def start(server: JackServer, bpm: float, timeout: float = 10.0) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["jack_midi_clock", "-b", f"{bpm:g}", "-B"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=server.env,
        )
        procs.append(proc)
        if not wait_until(lambda: MIDI_CLOCK_PORT in server.midi_ports() or proc.poll() is not None, timeout):
            pytest.fail(f"jack_midi_clock did not register {MIDI_CLOCK_PORT} within {timeout} s")
        if proc.poll() is not None:
            pytest.fail(f"jack_midi_clock exited with {proc.returncode}")
        return proc

    yield start
    for proc in reversed(procs):
        stop_process(proc)


# -- capture through a real-time JACK graph (test_capture_jack*.py; helpers in capture_jack_rig.py) -------------


@pytest.fixture
def rt_jack_server_factory(jack_server_factory: Callable[..., JackServer]) -> Iterator[Callable[..., JackServer]]:
    """``start(period)``: jack_server_factory's dummy server at 48 kHz with realtime scheduling (see
    capture_jack_rig.py's doc).
    PortAudio is shut down before the servers stop (this fixture's teardown runs first): it aborts the process
    when it shuts down after its JACK server is gone."""
    need("jack_connect", "jack_disconnect", "jack_metro")
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as e:
        pytest.skip(f"capture needs sounddevice and PortAudio (pip install sounddevice; apt install libportaudio2) {e}")

    def start(period: int = 256) -> JackServer:
        server: JackServer = jack_server_factory(period=period, rate=RATE, realtime=True)
        return server

    yield start
    release_audio()


@pytest.fixture
def metro_factory() -> Iterator[Callable[[JackServer, float], tuple[str, str]]]:
    """``start(server, bpm)``: the DAW's output, two transport-aware ``jack_metro`` clients: ``beat`` clicks on every
    beat (1 kHz), ``bar`` on every bar line of 4/4 (2 kHz, a metronome at bpm / 4). Returns their ports."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(server: JackServer, bpm: float) -> tuple[str, str]:
        ports = []
        for name, rate, freq in (("beat", bpm, 1000), ("bar", bpm / 4, 2000)):
            assert float(rate).is_integer(), "jack_metro takes whole BPM"
            argv = ["jack_metro", "-t", "-n", name, "-b", str(int(rate)), "-f", str(freq), "-A", "0.5", "-D", "10"]
            quiet = subprocess.DEVNULL
            procs.append(subprocess.Popen([*argv, "-a", "0"], env=server.env, stdout=quiet, stderr=quiet))
            port = f"{name}:{int(rate)}_bpm"
            if not wait_until(lambda port=port: port in server.run("jack_lsp", timeout=5).stdout.split(), 10, 0.1):  # type: ignore[misc]
                pytest.fail(f"jack_metro did not register {port}")
            ports.append(port)
        return ports[0], ports[1]

    yield start
    for proc in reversed(procs):
        stop_process(proc)
