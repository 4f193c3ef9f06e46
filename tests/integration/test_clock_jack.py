"""MIDI clock through a real JACK server: jack_midi_clock -> rtmidi (UNIX_JACK) -> ReconnectingInput ->
ClockInput -> ClockFollower, assembled as the daemon does (:class:`bridge.daemon.MidiClockIn`).

Measured on a 2-core Debian bookworm box, JACK dummy driver at 48 kHz:

* 256-frame periods (5.3 ms): the estimate stays within about 0.08 BPM of 120 from the second bar on.
* 1024-frame periods (21.3 ms, the NOTES.md recipe): rtmidi delivers a period's events in one callback, so the
  stamps are quantized to 21.3 ms and at 120 BPM two clocks sometimes share one. ClockFollower used to lock onto
  the period (117.19 BPM at 100 and at 120); it now measures the stamps' noise and bursts, counts every clock once
  and fits a longer window (bridge/clock.py), and reads within about 0.02 BPM.
* The watcher lists ports through one long-lived rtmidi client (bridge.midiports.InputLister): mido's
  ``get_input_names`` opens a JACK client per call, which stalled the JACK server for 0.5-2 s while our own
  port's callback waited for the GIL.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable

import pytest
from jack_procs import MIDI_CLOCK_PORT, JackServer, stop_process, wait_until

from bridge.clock import ClockState
from bridge.daemon import MidiClockIn

pytestmark = pytest.mark.integration
ClockFactory = Callable[..., subprocess.Popen[bytes]]

TEMPO_BOUND_BPM = 0.1  # on the mean of the estimates over bars 3 and 4
SAMPLE_BOUND_BPM = 0.25  # on every single estimate over bars 3 and 4


def _follow(server: JackServer, **kwargs: object) -> MidiClockIn:
    clock = MidiClockIn(MIDI_CLOCK_PORT, retry_s=0.2, lister=server.midi_ports, **kwargs)  # type: ignore[arg-type]
    clock.start()
    return clock


def _estimates(clock: MidiClockIn, seconds: float, every: float = 0.1) -> list[ClockState]:
    out: list[ClockState] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(every)
        out.append(clock.input.state())
    return out


def _play_two_bars(server: JackServer, clock: MidiClockIn, bpm: float) -> int:
    """Roll for two bars; where jackd's log stood when the transport started (for :func:`_check_tempo`)."""
    assert clock.watcher.connected.wait(10), "the clock port was not opened"
    mark = server.log_offset()
    server.transport("stop", "locate 0", "play")
    assert wait_until(lambda: clock.input.state().playing, 5), "no Start arrived"
    time.sleep(2 * 4 * 60.0 / bpm)  # two bars of 4/4
    return mark


def _check_tempo(server: JackServer, clock: MidiClockIn, bpm: float, seconds: float, mark: int) -> float:
    """Sample the estimate for ``seconds`` and hold it to the clock jack_midi_clock really sent: ``bpm`` on JACK's
    timeline, which is ``bpm`` x the timeline's speed in real time (the dummy driver falls behind on a machine
    short of CPU; measured here with jack_showtime). When the bounds are missed while jackd itself logged xruns
    since ``mark`` (the clock came in bursts), the test skips with the figures: the machine's fault, not ours."""
    start = server.showtime()
    states = _estimates(clock, seconds)
    speed = server.timeline_speed(start, server.showtime())
    sent = bpm * speed
    tempos = [s.tempo_bpm for s in states]
    assert all(t is not None for t in tempos)
    errors = [abs(t - sent) for t in tempos if t is not None]
    assert all(s.playing and not s.stale for s in states), states[-1]
    mean_err = abs(statistics.fmean(t for t in tempos if t is not None) - sent)
    figures = (
        f"tempo {bpm:g} BPM at JACK timeline speed {speed:.5f} (sent {sent:.3f} BPM in real time): {len(errors)} "
        f"estimates (mean {statistics.fmean(t for t in tempos if t is not None):.3f}), worst off {max(errors):.4f}, "
        f"mean off by {mean_err:.4f} BPM"
    )
    print(figures)
    if (max(errors) >= SAMPLE_BOUND_BPM or mean_err >= TEMPO_BOUND_BPM) and (xruns := server.xruns_since(mark)):
        pytest.skip(
            f"this machine could not run real-time MIDI now: jackd logged {len(xruns)} xrun(s) while the clock "
            f"played (e.g. {xruns[0]!r}; load average {os.getloadavg()[0]:.1f}); {figures}"
        )
    assert max(errors) < SAMPLE_BOUND_BPM, f"worst estimate off by {max(errors):.3f} BPM"
    assert mean_err < TEMPO_BOUND_BPM, f"mean estimate off by {mean_err:.3f} BPM"
    return max(errors)


@pytest.mark.parametrize("bpm", [120.0, 97.0])
def test_tempo_through_jack(
    jack_server_factory: Callable[..., JackServer], midi_clock_factory: ClockFactory, bpm: float
) -> None:
    server = jack_server_factory(period=256)
    midi_clock_factory(server, bpm)
    clock = _follow(server)
    try:
        mark = _play_two_bars(server, clock, bpm)
        _check_tempo(server, clock, bpm, 2 * 4 * 60.0 / bpm, mark)
        assert clock.transport().clock_source == f"midi-clock:{MIDI_CLOCK_PORT}"
    finally:
        clock.close()


def test_stale_after_kill_and_reconnect_after_restart(
    jack_server_factory: Callable[..., JackServer], midi_clock_factory: ClockFactory
) -> None:
    bpm = 120.0
    server = jack_server_factory(period=256)
    proc = midi_clock_factory(server, bpm)
    clock = _follow(server)
    try:
        _play_two_bars(server, clock, bpm)
        assert not clock.input.state().stale
        stop_process(proc)
        assert wait_until(lambda: clock.input.state().stale, 3), "not stale after the clock source died"
        assert clock.transport().clock_source.endswith("(stale)")
        assert wait_until(lambda: not clock.watcher.connected.is_set(), 3), "the vanished port was not dropped"
        # the transport keeps rolling; a new jack_midi_clock sends clocks (and no Start) once it is connected
        midi_clock_factory(server, bpm)
        assert clock.watcher.connected.wait(5), "the restarted port was not reopened"
        assert wait_until(lambda: not clock.input.state().stale, 3), "no clocks after reconnecting"
        state = clock.input.state()
        assert state.playing and state.tempo_bpm is not None
        mark = server.log_offset()
        time.sleep(2 * 4 * 60.0 / bpm)
        _check_tempo(server, clock, bpm, 1.0, mark)
    finally:
        clock.close()


@pytest.mark.parametrize("bpm", [100.0, 120.0])
def test_tempo_with_1024_frame_periods(jack_server: JackServer, midi_clock_factory: ClockFactory, bpm: float) -> None:
    midi_clock_factory(jack_server, bpm)
    clock = _follow(jack_server)
    try:
        mark = _play_two_bars(jack_server, clock, bpm)
        _check_tempo(jack_server, clock, bpm, 2 * 4 * 60.0 / bpm, mark)
    finally:
        clock.close()


def test_default_lister_does_not_stall_jack(
    jack_server_factory: Callable[..., JackServer], midi_clock_factory: ClockFactory
) -> None:
    bpm = 120.0
    server = jack_server_factory(period=256)
    midi_clock_factory(server, bpm)
    stamps: list[float] = []
    clock = MidiClockIn(MIDI_CLOCK_PORT, retry_s=0.2)  # the daemon's default lister, polled often
    handle = clock.input.handle

    def spy(message):  # type: ignore[no-untyped-def]
        if message.type == "clock":
            stamps.append(time.perf_counter())
        handle(message)

    clock.watcher._callback = spy
    clock.start()
    try:
        _play_two_bars(server, clock, bpm)
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        assert gaps and max(gaps) < 0.1, f"longest gap between clocks {max(gaps, default=0):.3f} s"
    finally:
        clock.close()
