"""The real JACK graph of the capture tests (tests/integration/test_capture_jack*.py): wiring PortAudio's inputs,
rolling the transport, the clock input, retried takes (:class:`Tries`) and measuring a take's clicks against the
bar grid (:func:`check_alignment`).

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

The fixtures ``rt_jack_server_factory`` and ``metro_factory`` are in tests/integration/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from jack_procs import MIDI_CLOCK_PORT, JackServer, wait_until

from bridge.daemon import MidiClockIn

RATE = 48_000
ALIGN_TOLERANCE_FRAMES = 24
ATTEMPTS = 4
DROPOUT_WORDS = ("dropped out", "out of step", "stopped arriving")


def wire_inputs(server: JackServer, sources: list[str], timeout: float = 10.0) -> None:
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


def play(server: JackServer, observer: MidiClockIn) -> None:
    """Locate to 0 and roll, until the clock says so: a jack_transport client can fail on a loaded machine."""
    for attempt in range(3):
        server.transport("locate 0", "play")
        if wait_until(lambda: observer.input.state().playing, 3, 0.02):
            return
        print(f"  the transport did not start (jack_transport, try {attempt + 1}); again")
    raise AssertionError("the JACK transport did not start")


def open_clock(server: JackServer) -> MidiClockIn:
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


def onsets(x: npt.NDArray[np.float64], threshold: float = 1e-3, gap: int = 2000) -> list[int]:
    """First frame of each click. jack_metro's tone starts with sin(0) = 0, so a click begins one frame before its
    first audible sample."""
    above = np.flatnonzero(np.abs(x) > threshold)
    if not len(above):
        return []
    starts = [int(above[0])] + [int(b) for a, b in zip(above[:-1], above[1:], strict=True) if b - a > gap]
    return [s - 1 for s in starts]


def grid_offsets(x: npt.NDArray[np.float64], step: float, count: int) -> list[int]:
    """How far each click after the first is from ``k * step`` (the first may have begun before the file)."""
    found = onsets(x)
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


def check_alignment(path: Path, bpm: float, bars: int, channels: int = 2) -> tuple[int, float]:
    audio, rate = sf.read(str(path), always_2d=True)
    beat_frames = RATE * 60 / bpm
    assert rate == RATE and audio.shape[1] == channels
    offsets = grid_offsets(audio[:, 0], beat_frames, 4 * bars)
    if channels > 1:  # bar clicks: only on bar lines, so the take starts on the bar and not a beat off
        offsets += grid_offsets(audio[:, 1], 4 * beat_frames, bars)
    worst = max(offsets, key=abs)
    spread = max(offsets) - min(offsets)
    print(
        f"  alignment {bpm:g} BPM, {bars} bar(s): clicks off the grid by {min(offsets)}..{max(offsets)} frames "
        f"(mean {np.mean(offsets):+.1f}, {1000 * abs(worst) / RATE:.3f} ms at worst); spread {spread} frames"
    )
    assert abs(worst) <= ALIGN_TOLERANCE_FRAMES, f"clicks off by {worst} frames (> {ALIGN_TOLERANCE_FRAMES})"
    assert spread <= 2, f"the grid drifts within the take ({spread} frames): the tempo is off"
    return worst, float(np.mean(offsets))
