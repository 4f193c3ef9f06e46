"""Capture through a real JACK server: jack_midi_clock is the DAW's MIDI clock and two transport-aware jack_metro
clients are its output (a click on every beat, another on every bar line), both following JACK transport; Segue
records them through sounddevice (PortAudio's JACK host API) and cuts the take by the clock.

What it proves: a take armed before play is exactly N bars long (+-1 sample) at the clock's tempo; its beat and bar
clicks sit on the bar grid (bar clicks only on bar lines, so the bars are not a beat off); the DAW's Stop keeps the
whole bars; ``segue capture`` and the bridge's ``/segue/capture/arm`` (whose take becomes the region that
``/segue/generate`` continues) work the same way.

Alignment, measured (2-core box shared with other test runs, load 2-4): the clicks land 2-4 frames early at
256-frame periods / 120 BPM and 8-10 frames early at 1024-frame periods / 100 BPM, the same on every click of a take.
Why not 0: mido gives no timestamps inside a JACK period, so Segue knows only the cycle a clock came in and places
it mid-cycle; fitted over a take, the start is then off by about gcd(clock period, JACK period) / 2 frames
(clocks 1000 frames apart fall on offsets 0, 8, 16, ... of a 256-frame cycle: 4 frames; 1200 in 1024: 8 frames),
plus one frame of onset detection. ``ALIGN_TOLERANCE_FRAMES`` = 24 (0.5 ms) covers that with room for short takes
that do not visit every offset; 0.5 ms is far below the ~10 ms at which two onsets start to sound apart.

The JACK server runs with realtime scheduling (``jack_server_factory(realtime=True)``, ``jackd -R``): without it, a
loaded 2-core machine starves the dummy driver and our callbacks, and JACK loses whole periods of our audio
mid-take (seen in 3 takes of 3 at load 4: grids stepping by 256 frames). Segue refuses such takes (audio gaps are
found on PortAudio's device timeline, lost clocks in the fit); a take that hits one here is retried, at most
``ATTEMPTS`` times, and every retry is printed.

Realtime scheduling does not help once the machine's CPU quota is spent (a shared CI box: every thread waits,
jackd's too). jackd then logs xruns itself ("JackTimedDriver::Process XRun", "client = beat was not finished"),
and Segue refuses the take, as it must. When jackd logged xruns during every one of the ``ATTEMPTS`` refused takes,
the test skips and says so: the machine could not run real-time audio, which is not a fault of Segue's. A take
refused while jackd logged no xrun still fails the test, and so does a take accepted but off the grid.
"""

from __future__ import annotations

import faulthandler
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from jack_procs import MIDI_CLOCK_PORT, JackServer, need, stop_process, wait_until

from bridge.capture.options import TakeOptions, TakeResult
from bridge.capture.take import record_take
from bridge.daemon import MidiClockIn
from bridge.sound_devices import release_audio
from engine.api import CancelToken
from engine.errors import BadInputError

pytestmark = [pytest.mark.integration, pytest.mark.realtime]  # not in `make test`: see the Makefile

RATE = 48_000
ALIGN_TOLERANCE_FRAMES = 24
ATTEMPTS = 4
DROPOUT_WORDS = ("dropped out", "out of step", "stopped arriving")
ClockFactory = Callable[..., subprocess.Popen[bytes]]
REPO = Path(__file__).resolve().parents[2]


# -- processes -----------------------------------------------------------------------------------------------------


@pytest.fixture
def rt_jack_server_factory(jack_server_factory: Callable[..., JackServer]) -> Iterator[Callable[..., JackServer]]:
    """``start(period)``: conftest's JACK dummy server at 48 kHz with realtime scheduling (see the module doc).
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


def _wire(server: JackServer, sources: list[str], timeout: float = 10.0) -> None:
    """Once the capture's PortAudio inputs exist, feed them ``sources`` (instead of system:capture_*)."""
    inputs: list[str] = []

    def ready() -> bool:
        nonlocal inputs
        inputs = [p for p in server.run("jack_lsp", timeout=5).stdout.split() if p.startswith("PortAudio:in_")]
        return len(inputs) >= len(sources)

    assert wait_until(ready, timeout, 0.1), "the capture's PortAudio inputs did not appear"
    for port in inputs:
        for system in ("system:capture_1", "system:capture_2"):
            server.run("jack_disconnect", system, port)
    for source, port in zip(sources, sorted(inputs), strict=False):
        assert server.run("jack_connect", source, port).returncode == 0, f"cannot connect {source} to {port}"


def _play(server: JackServer, observer: MidiClockIn) -> None:
    """Locate to 0 and roll, until the clock says so: a jack_transport client can fail on a loaded machine."""
    for attempt in range(3):
        server.transport("locate 0", "play")
        if wait_until(lambda: observer.input.state().playing, 3, 0.02):
            return
        print(f"  the transport did not start (jack_transport, try {attempt + 1}); again")
    raise AssertionError("the JACK transport did not start")


def _clock(server: JackServer) -> MidiClockIn:
    clock = MidiClockIn(MIDI_CLOCK_PORT, retry_s=1.0)  # the default lister: one long-lived rtmidi client
    clock.start()
    assert clock.watcher.connected.wait(10), "the clock port was not opened"
    return clock


class Tries:
    """``for attempt in Tries(server): ...`` with :meth:`refused` deciding whether a refused take is tried again."""

    def __init__(self, server: JackServer, attempts: int = ATTEMPTS) -> None:
        self.server, self.attempts = server, attempts
        self.with_xruns = 0
        self._mark = 0

    def __iter__(self) -> Iterator[int]:
        for attempt in range(1, self.attempts + 1):
            self._mark = self.server.log_offset()
            yield attempt

    def refused(self, attempt: int, message: str) -> bool:
        """Segue refused take ``attempt`` with ``message``: True to try again; skips the test when jackd logged
        xruns during every refused take (the machine's, see the module doc); False: a failure of ours."""
        xruns = self.server.xruns_since(self._mark)
        dropout = any(w in message for w in DROPOUT_WORDS)
        if not dropout and not xruns:
            return False
        self.with_xruns += bool(xruns)
        seen = f"jackd logged {len(xruns)} xrun(s), e.g. {xruns[0]!r}" if xruns else "jackd logged no xrun"
        print(f"  take {attempt} refused ({seen}; load {os.getloadavg()[0]:.1f}): {message[-300:]}")
        if attempt < self.attempts:
            return True
        if self.with_xruns == self.attempts:
            pytest.skip(
                f"this machine could not run real-time audio now: jackd itself logged xruns during all "
                f"{self.attempts} takes (load average {os.getloadavg()[0]:.1f}), and Segue refused each take, as it "
                f"must; the last refusal: {message[-300:]}"
            )
        return False


# -- measuring the take --------------------------------------------------------------------------------------------


def _onsets(x: npt.NDArray[np.float64], threshold: float = 1e-3, gap: int = 2000) -> list[int]:
    """First frame of each click. jack_metro's tone starts with sin(0) = 0, so a click begins one frame before its
    first audible sample."""
    above = np.flatnonzero(np.abs(x) > threshold)
    if not len(above):
        return []
    starts = [int(above[0])] + [int(b) for a, b in zip(above[:-1], above[1:], strict=True) if b - a > gap]
    return [s - 1 for s in starts]


def _grid_offsets(x: npt.NDArray[np.float64], step: float, count: int) -> list[int]:
    """How far each click after the first is from ``k * step`` (the first may have begun before the file)."""
    found = _onsets(x)
    offsets = []
    for k in range(1, count):
        expected = k * step
        near = [f - expected for f in found if abs(f - expected) < step / 4]
        assert len(near) == 1, f"click {k} (at {expected:g}) not found once: {found[:12]}"
        offsets.append(int(round(near[0])))
    # nothing off the grid (a click a few frames before the end is the next bar's, already begun)
    assert not [f for f in found if min(abs(f - k * step) for k in range(count + 1)) >= step / 4], found
    # the first click: it began at frame 0 + offset, possibly a few frames before the file
    assert np.abs(x[:ALIGN_TOLERANCE_FRAMES]).max() > 0.01, "no click at the start of the take"
    return offsets


def _check_alignment(path: Path, bpm: float, bars: int, channels: int = 2) -> tuple[int, float]:
    audio, rate = sf.read(str(path), always_2d=True)
    beat_frames = RATE * 60 / bpm
    assert rate == RATE and audio.shape[1] == channels
    offsets = _grid_offsets(audio[:, 0], beat_frames, 4 * bars)
    if channels > 1:  # bar clicks: only on bar lines, so the take starts on the bar and not a beat off
        offsets += _grid_offsets(audio[:, 1], 4 * beat_frames, bars)
    worst = max(offsets, key=abs)
    spread = max(offsets) - min(offsets)
    print(
        f"  alignment {bpm:g} BPM, {bars} bar(s): clicks off the grid by {min(offsets)}..{max(offsets)} frames "
        f"(mean {np.mean(offsets):+.1f}, {1000 * abs(worst) / RATE:.3f} ms at worst); spread {spread} frames"
    )
    assert abs(worst) <= ALIGN_TOLERANCE_FRAMES, f"clicks off by {worst} frames (> {ALIGN_TOLERANCE_FRAMES})"
    assert spread <= 2, f"the grid drifts within the take ({spread} frames): the tempo is off"
    return worst, float(np.mean(offsets))


def _take(
    server: JackServer,
    clock: MidiClockIn,
    out: Path,
    options: TakeOptions,
    sources: list[str],
    play: Callable[[], None],
    timeout: float,
) -> TakeResult:
    """Arm on a thread, wire the inputs, play; retried on a dropout that Segue detected (printed)."""
    tries = Tries(server)
    for attempt in tries:
        outcome: dict[str, Any] = {}
        path = out.with_name(f"{out.stem}-{attempt}.wav")

        cancel = CancelToken()

        def run(path: Path = path, outcome: dict[str, Any] = outcome, cancel: CancelToken = cancel) -> None:
            try:
                outcome["result"] = record_take(clock, path, options, cancel=cancel)
            except BaseException as e:
                outcome["error"] = e

        server.transport("stop", "locate 0")
        thread = threading.Thread(target=run, name="capture-take", daemon=True)
        thread.start()
        try:
            _wire(server, sources)
            time.sleep(0.3)  # pre-roll
            play()
            thread.join(timeout)
        finally:  # never leave a take running into the clock's close (PortAudio and rtmidi would crash pytest)
            server.transport("stop")
            hung = thread.is_alive()
            if hung:
                faulthandler.dump_traceback(all_threads=True)  # where the take is stuck
                cancel.cancel()
                thread.join(10)
        assert not hung, f"the take did not finish within {timeout} s (cancelled: {outcome.get('error')!r})"
        error = outcome.get("error")
        if error is None:
            result: TakeResult = outcome["result"]
            print(f"  take {attempt}: {result.length_bars} bar(s), {result.frames} frames at {result.tempo_bpm:g} BPM")
            return result
        if isinstance(error, BadInputError) and tries.refused(attempt, str(error)):
            continue
        raise error
    raise AssertionError("unreachable")


# -- the tests -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("period", "bpm", "bars"), [(256, 120, 4), (1024, 100, 2)])
def test_take_is_whole_bars_on_the_grid(
    rt_jack_server_factory: Callable[..., JackServer],
    midi_clock_factory: ClockFactory,
    metro_factory: Callable[[JackServer, float], tuple[str, str]],
    tmp_path: Path,
    period: int,
    bpm: int,
    bars: int,
) -> None:
    server = rt_jack_server_factory(period)
    midi_clock_factory(server, bpm)
    beat, bar = metro_factory(server, bpm)
    clock = _clock(server)
    try:
        options = TakeOptions(bars=bars, wait_start_s=20)
        play = lambda: _play(server, clock)  # noqa: E731
        result = _take(server, clock, tmp_path / "take.wav", options, [beat, bar], play, bars * 240 / bpm + 20)
    finally:
        clock.close()
    bar_frames = 4 * 60 * RATE / bpm
    print(f"  {period}-frame periods: {result.frames} frames, expected {bars} x {bar_frames:g}")
    assert abs(result.frames - bars * bar_frames) <= 1
    assert (result.length_bars, result.start_beats, result.tempo_bpm, result.ended_by) == (bars, 0.0, bpm, "bars")
    assert result.quantized_stamps and result.sample_rate_hz == RATE and result.channels == 2
    info = sf.info(str(result.path))
    assert (info.samplerate, info.frames, info.channels, info.subtype) == (RATE, result.frames, 2, "PCM_24")
    _check_alignment(result.path, bpm, bars)


def test_the_daws_stop_keeps_the_whole_bars(
    rt_jack_server_factory: Callable[..., JackServer],
    midi_clock_factory: ClockFactory,
    metro_factory: Callable[[JackServer, float], tuple[str, str]],
    tmp_path: Path,
) -> None:
    bpm = 120
    server = rt_jack_server_factory(1024)  # 21 ms of slack per cycle: fewer xruns on a loaded machine
    midi_clock_factory(server, bpm)
    beat, bar = metro_factory(server, bpm)
    clock = _clock(server)

    def play_then_stop() -> None:
        _play(server, clock)
        assert wait_until(lambda: clock.input.state().position_beats >= 2 * 4 + 2.5, 15, 0.02), "no clock"
        server.transport("stop")  # 2.6 bars in

    try:
        options = TakeOptions(wait_start_s=20)  # until the DAW stops
        result = _take(server, clock, tmp_path / "take.wav", options, [beat, bar], play_then_stop, 20)
    finally:
        clock.close()
    assert (result.length_bars, result.ended_by, result.frames) == (2, "stop", 2 * 4 * 60 * RATE // bpm)
    _check_alignment(result.path, bpm, 2)


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
    observer = _clock(server)  # sees the DAW start; segue capture has its own clock input
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
                _play(server, observer)
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
    _check_alignment(out, bpm, 1, channels=1)
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
    observer = _clock(server)
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
            _play(server, observer)
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


def test_capture_from_ardours_master_output(rt_jack_server_factory: Callable[..., JackServer], tmp_path: Path) -> None:
    """A real DAW: headless Ardour plays a click track and sends MIDI clock; Segue records Ardour's master output
    through sounddevice, started by the clock, with Ardour's playback latency (``--latency-frames -2048``, see
    docs/capture.md), and every click of the take sits on its beat; bar clicks (louder) only on bar lines."""
    from ardour_procs import MIDI_CLOCK_OUT, ArdourProcess, OscPeer, need_ardour, new_session

    from bridge.adapters.ardour_session import insert_audio_file

    need_ardour()
    bpm, bars = 120, 2
    beat = RATE * 60 // bpm
    session = new_session(tmp_path, "capture", tempo_bpm=bpm)
    clicks = np.zeros(4 * 4 * beat, dtype=np.float32)  # 4 bars of clicks from the session's start
    for k in range(1, 4 * 4):  # not at sample 0: Ardour fades a region in over its first 64 samples
        clicks[k * beat] = 0.8 if k % 4 == 0 else 0.3
    click_file = tmp_path / "clicks.wav"
    sf.write(click_file, clicks, RATE, subtype="FLOAT")
    insert_audio_file(session, click_file, position_samples=0, track_name="Click")

    server = rt_jack_server_factory(1024)
    workdir = tmp_path / "ardour"
    workdir.mkdir()
    ardour = ArdourProcess(session, server, workdir, send_midi_clock=True)
    ardour.start()
    daw: OscPeer | None = None
    clock: MidiClockIn | None = None
    try:
        daw = OscPeer(ardour.osc_address)
        masters = sorted(p for p in server.run("jack_lsp", timeout=5).stdout.splitlines() if "Master/audio_out" in p)
        assert len(masters) == 2, f"Ardour's master outputs not found: {server.run('jack_lsp').stdout}"
        clock = MidiClockIn(MIDI_CLOCK_OUT, retry_s=1.0)
        clock.start()
        assert clock.watcher.connected.wait(10), "Ardour's clock port was not opened"
        observer = clock

        def play() -> None:
            for attempt in range(3):
                daw.send("/transport_play")  # type: ignore[union-attr]
                if wait_until(lambda: observer.input.state().playing, 3, 0.02):
                    return
                print(f"  Ardour did not start rolling (try {attempt + 1}); again")
            raise AssertionError("Ardour's transport did not start")

        result = None
        tries = Tries(server)
        for attempt in tries:
            daw.send("/transport_stop")
            daw.send("/goto_start")
            time.sleep(0.5)
            outcome: dict[str, Any] = {}
            path = tmp_path / f"take-{attempt}.wav"

            def run(path: Path = path, outcome: dict[str, Any] = outcome) -> None:
                try:
                    options = TakeOptions(bars=bars, latency_frames=-2048, wait_start_s=20)
                    outcome["result"] = record_take(clock, path, options)  # type: ignore[arg-type]
                except BaseException as e:
                    outcome["error"] = e

            thread = threading.Thread(target=run, name="capture-take", daemon=True)
            thread.start()
            _wire(server, masters)
            time.sleep(0.3)
            play()
            thread.join(bars * 240 / bpm + 20)
            daw.send("/transport_stop")
            assert not thread.is_alive(), "the take did not finish"
            error = outcome.get("error")
            if error is None:
                result = outcome["result"]
                break
            if isinstance(error, BadInputError) and tries.refused(attempt, str(error)):
                continue
            raise error
        assert result is not None
    finally:
        if clock is not None:
            clock.close()
        if daw is not None:
            daw.close()
        release_audio()
        ardour.stop()

    assert (result.length_bars, result.start_beats, result.tempo_bpm) == (bars, 0.0, bpm)
    assert result.frames == bars * 4 * beat and result.channels == 2
    audio, rate = sf.read(str(result.path), always_2d=True)
    assert rate == RATE and audio.shape == (bars * 4 * beat, 2)
    level = np.abs(audio).max(axis=1)
    found = _onsets(level.astype(np.float64), threshold=0.05, gap=beat // 2)
    found = [f + 1 for f in found]  # _onsets steps back a frame for jack_metro's sine; these clicks are impulses
    expected = [k * beat for k in range(1, bars * 4)]
    offsets = []
    for k, want in enumerate(expected, start=1):
        near = [f for f in found if abs(f - want) < beat // 4]
        assert len(near) == 1, f"the click of beat {k} (frame {want}) not found once: {found}"
        offsets.append(near[0] - want)
        peak = level[near[0] : near[0] + 4].max()
        loud = k % 4 == 0
        assert (peak > 0.4) == loud, f"beat {k}: peak {peak:.2f}; bar clicks should fall on bar lines only"
    print(f"  Ardour's master captured: clicks off their beats by {min(offsets)}..{max(offsets)} frames")
    grid = [*expected, bars * 4 * beat]  # a click a few frames before the end is the next bar's, already begun
    assert not [f for f in found if min(abs(f - w) for w in grid) >= beat // 4], f"stray clicks: {found}"
    assert max(abs(o) for o in offsets) <= ALIGN_TOLERANCE_FRAMES, offsets
