"""Capture through a real JACK server: jack_midi_clock is the DAW's MIDI clock and two transport-aware jack_metro
clients are its output (a click on every beat, another on every bar line), both following JACK transport; Segue
records them through sounddevice (PortAudio's JACK host API) and cuts the take by the clock.

What it proves: a take armed before play is exactly N bars long (+-1 sample) at the clock's tempo; its beat and bar
clicks sit on the bar grid (bar clicks only on bar lines, so the bars are not a beat off); the DAW's Stop keeps the
whole bars. The same through ``segue capture`` and the bridge: test_capture_jack_commands.py; from
headless Ardour: test_capture_jack_ardour.py; the rig and why the tolerance is what it is:
tests/support/capture_jack_rig.py.
"""

from __future__ import annotations

import faulthandler
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from capture_jack_rig import (
    RATE,
    Tries,
    check_alignment,
    open_clock,
    play,
    wire_inputs,
)
from jack_procs import JackServer, wait_until

from bridge.capture.options import TakeOptions, TakeResult
from bridge.capture.take import record_take
from bridge.daemon import MidiClockIn
from engine.api import CancelToken
from engine.errors import BadInputError

pytestmark = [pytest.mark.integration, pytest.mark.realtime]  # not in `make test`: see the Makefile
ClockFactory = Callable[..., subprocess.Popen[bytes]]


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
            wire_inputs(server, sources)
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
    clock = open_clock(server)
    try:
        options = TakeOptions(bars=bars, wait_start_s=20)
        play = lambda: play(server, clock)  # noqa: E731
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
    check_alignment(result.path, bpm, bars)


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
    clock = open_clock(server)

    def play_then_stop() -> None:
        play(server, clock)
        assert wait_until(lambda: clock.input.state().position_beats >= 2 * 4 + 2.5, 15, 0.02), "no clock"
        server.transport("stop")  # 2.6 bars in

    try:
        options = TakeOptions(wait_start_s=20)  # until the DAW stops
        result = _take(server, clock, tmp_path / "take.wav", options, [beat, bar], play_then_stop, 20)
    finally:
        clock.close()
    assert (result.length_bars, result.ended_by, result.frames) == (2, "stop", 2 * 4 * 60 * RATE // bpm)
    check_alignment(result.path, bpm, 2)
