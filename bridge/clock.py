"""MIDI clock, pure: follow a clock stream (:class:`ClockFollower`) and plan one (:class:`ClockSender`).

No threads, no ports, no sockets, no Qt: the follower is fed ``(message, timestamp_seconds)`` pairs and answers a
frozen :class:`ClockState`; the sender turns a tempo into absolute tick deadlines. The port layer
(:mod:`bridge.midiports`) does the I/O, the locking and the timestamping.

MIDI clock (MIDI 1.0 spec): Timing Clock (0xF8) 24 times per quarter note; Start (0xFA) plays from position 0;
Continue (0xFB) plays from the current position; Stop (0xFC) stops and keeps the position; Song Position Pointer
(0xF2) sets the position in sixteenth notes and is honoured while stopped only. After Start or Continue the first
clock marks the current position; every further clock advances it by 1/24 beat (beats are quarter notes).

Tempo: a least-squares line through the timestamps of the last ``window_ticks`` clocks (96 = one 4/4 bar by
default), numbered by tick index so that a dropped tick leaves a hole instead of a long period. A tempo change is
detected when ``change_ticks`` clocks in a row land more than ``change_threshold_s`` off the fitted line on the same
side; the window then restarts at the change, so the estimate settles within about half a beat instead of a window.
With 1 ms (1 sigma) timestamp jitter the estimate is within 0.1 BPM after one bar (see tests/bridge/test_clock.py).

Coarse timestamps: some MIDI stacks stamp messages when a whole audio period of them is delivered (JACK: rtmidi
reads a period's events in one callback, so stamps are quantized to 1024/48000 s = 21.3 ms, and two clocks may
share one stamp). The follower measures the timestamp noise (the RMS residual of its line) and, once it is large
against the clock period, stops treating long intervals as dropped clocks, raises the change threshold above the
noise, and fits a longer window (``coarse_window_ticks``, 4 bars) so the estimate still reaches 0.1 BPM within two
bars. Every clock counts once: a clock arriving very soon after another is a burst, not a duplicate (MIDI does not
duplicate messages; filtering "duplicates" made a follower on JACK read 117.19 BPM for 120).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import mido

log = logging.getLogger(__name__)

PPQN = 24
"""MIDI clocks per quarter note."""
TICKS_PER_SIXTEENTH = PPQN // 4
MAX_SONG_POSITION = 0x3FFF  # 14-bit Song Position Pointer, in sixteenths
MIN_TEMPO_BPM, MAX_TEMPO_BPM = 1.0, 1000.0


class ClockMessage(Protocol):
    """What the follower reads from a message: mido's ``type`` ('clock', 'start', ...) and, for 'songpos', ``pos``."""

    @property
    def type(self) -> str: ...


@dataclass(frozen=True)
class ClockState:
    """The transport as the clock tells it. ``tempo_bpm`` is None until known; ``stale``: playing, but no clock
    arrived for longer than the follower's ``stale_after_s`` (a dropout, or a vanished port)."""

    tempo_bpm: float | None = None
    playing: bool = False
    position_beats: float = 0.0  # quarter notes from the song start
    last_tick_time: float | None = None  # timestamp (seconds) of the last clock, on the caller's time base
    source: str = "midi-clock"
    stale: bool = False


@dataclass(frozen=True)
class FollowerSettings:
    """How :class:`ClockFollower` fits the tempo (see the module doc); checked on construction."""

    window_ticks: int = 96
    coarse_window_ticks: int = 384
    min_fit_ticks: int = 8
    change_threshold_s: float = 0.004
    change_ticks: int = 3
    stale_after_s: float = 0.5

    def __post_init__(self) -> None:
        w, coarse, fit = self.window_ticks, self.coarse_window_ticks, self.min_fit_ticks
        if w < 3 or not 2 <= fit <= w or coarse < w:
            raise ValueError(
                "need 3 <= window_ticks <= coarse_window_ticks and 2 <= min_fit_ticks <= window_ticks, got "
                f"{w}, {coarse}, {fit}"
            )
        if self.change_ticks < 1 or self.change_threshold_s <= 0 or self.stale_after_s <= 0:
            raise ValueError("change_ticks must be >= 1; change_threshold_s and stale_after_s must be > 0")


class ClockFollower:
    """Follow one MIDI clock stream. Not thread-safe: feed and read it under one lock (the port layer does)."""

    def __init__(self, source: str = "midi-clock", settings: FollowerSettings | None = None) -> None:
        self.source = source
        self.settings = settings or FollowerSettings()
        # (tick index, timestamp) of the last clocks, enough for the coarse window
        self._window: deque[tuple[int, float]] = deque(maxlen=self.settings.coarse_window_ticks)
        self._noise_s: float | None = None  # RMS residual of the fitted line: the timestamps' own noise
        self._burst_at: int | None = None  # tick index of the last clock that came with the one before it
        self._outliers: list[tuple[int, float]] = []  # consecutive same-side misses of the fitted line
        self._tick_index = 0  # counts clocks (and the holes of dropped ones) since the first clock
        self._period_s: float | None = None  # seconds per clock, the current estimate
        self._last_tick: float | None = None  # timestamp of the last accepted clock
        self._playing = False
        self._await_first_tick = False  # after Start/Continue the first clock marks the position
        self._position_ticks = 0
        self._last_event: float | None = None  # last clock or transport message, for `stale`

    # -- input -----------------------------------------------------------------------------------------------

    def feed(self, message: ClockMessage, timestamp_s: float) -> None:
        """Take one message received at ``timestamp_s`` (seconds, any monotonic base). Others are ignored."""
        kind = message.type
        if kind == "clock":
            self._on_clock(timestamp_s)
        elif kind == "start":
            self._playing, self._await_first_tick, self._position_ticks = True, True, 0
            log.debug("%s: start", self.source)
        elif kind == "continue":
            self._playing, self._await_first_tick = True, True
            log.debug("%s: continue at %g beats", self.source, self._position_ticks / PPQN)
        elif kind == "stop":
            self._playing = False
            log.debug("%s: stop at %g beats", self.source, self._position_ticks / PPQN)
        elif kind == "songpos":
            pos = int(getattr(message, "pos", 0))
            if self._playing:
                log.debug("%s: song position %d ignored while playing", self.source, pos)
            else:
                self._position_ticks = max(0, min(pos, MAX_SONG_POSITION)) * TICKS_PER_SIXTEENTH
        else:
            return
        self._last_event = timestamp_s

    def state(self, now_s: float | None = None) -> ClockState:
        """The current state; ``now_s`` (same time base as the timestamps) decides whether it is ``stale``."""
        stale = False
        if self._playing and now_s is not None and self._last_event is not None:
            stale = now_s - self._last_event > self.settings.stale_after_s
        return ClockState(
            tempo_bpm=self.tempo_bpm,
            playing=self._playing,
            position_beats=self._position_ticks / PPQN,
            last_tick_time=self._last_tick,
            source=self.source,
            stale=stale,
        )

    @property
    def tempo_bpm(self) -> float | None:
        return None if self._period_s is None else 60.0 / (self._period_s * PPQN)

    # -- clocks ----------------------------------------------------------------------------------------------

    def _on_clock(self, t: float) -> None:
        period = self._period_s
        advance = 1
        if self._last_tick is not None:
            dt = t - self._last_tick
            if dt < 0 and period is not None and -dt < 0.5 * period:
                t, dt = self._last_tick, 0.0  # stamped a hair before the clock it came with: a burst
            if dt < 0:
                log.debug("%s: clock timestamp went back %.6f s; restarting the tempo window", self.source, -dt)
                self._restart_window()
            elif dt > self.settings.stale_after_s:
                log.debug("%s: clock resumed after %.3f s", self.source, dt)
                if period is not None and self._playing and not self._await_first_tick:
                    advance = max(1, round(dt / period))  # the master kept playing; count what we missed
                self._restart_window()
            elif period is not None and self._fine(period) and dt > 1.5 * period + 4.0 * (self._noise_s or 0.0):
                advance = max(1, round(dt / period))  # dropped clocks leave a hole in the window
            elif period is not None and dt < 0.5 * period:
                self._burst_at = self._tick_index  # two clocks delivered together: the stamps are coarse
        self._tick_index += advance
        self._last_tick = self._last_event = t
        if self._playing:
            if self._await_first_tick:
                self._await_first_tick = False
            else:
                self._position_ticks += advance
        self._add_point(self._tick_index, t)

    def _bursty(self) -> bool:
        """Whether clocks came in bursts (two at once) within the last ``coarse_window_ticks``."""
        return self._burst_at is not None and self._tick_index - self._burst_at < self.settings.coarse_window_ticks

    def _fine(self, period: float) -> bool:
        """Whether the timestamps are precise enough to tell a dropped clock from delivery jitter."""
        return self._noise_s is not None and self._noise_s < 0.1 * period and not self._bursty()

    def _coarse(self) -> bool:
        period = self._period_s
        if period is None:
            return False
        return self._bursty() or (self._noise_s is not None and self._noise_s >= 0.05 * period)

    def _change_threshold(self) -> float:
        """How far off the line a clock must land to count towards a tempo change: above the stamps' noise."""
        threshold = max(self.settings.change_threshold_s, 4.0 * (self._noise_s or 0.0))
        if self._bursty() and self._period_s is not None:
            # bursts hide the quantum from the residuals until one happens: stamps may be a whole clock off
            threshold = max(threshold, 1.5 * self._period_s)
        return threshold

    def _fit_points(self) -> list[tuple[int, float]]:
        """The clocks the line is fitted to: one bar, or ``coarse_window_ticks`` when the timestamps are coarse."""
        points = list(self._window)
        return points if self._coarse() else points[-self.settings.window_ticks :]

    def _restart_window(self) -> None:
        self._window.clear()
        self._outliers.clear()

    def _add_point(self, index: int, t: float) -> None:
        points = self._fit_points()
        # no change detection until the noise is known: coarse stamps would look like a change every few clocks
        fit = _fit(points) if len(points) >= 2 * self.settings.min_fit_ticks and self._noise_s is not None else None
        if fit is not None:
            intercept, slope = fit
            residual = t - (intercept + slope * index)
            same_side = not self._outliers or (residual > 0) == (self._outliers[-1][1] > 0)
            threshold = self._change_threshold()
            if abs(residual) > threshold and same_side:
                self._outliers.append((index, residual))
                if len(self._outliers) >= self.settings.change_ticks:
                    # the line no longer fits: keep only the clocks since the change
                    first = self._outliers[0][0]
                    kept = [(i, s) for i, s in self._window if i >= first]
                    self._restart_window()
                    self._window.extend(kept)
                    log.debug("%s: tempo change detected at clock %d", self.source, first)
            else:
                self._outliers.clear()
                if abs(residual) > threshold:
                    self._outliers.append((index, residual))
        self._window.append((index, t))
        points = self._fit_points()
        if len(points) >= self.settings.min_fit_ticks:
            fit = _fit(points)
            if fit is None or not MIN_TEMPO_BPM <= 60.0 / (fit[1] * PPQN) <= MAX_TEMPO_BPM:
                return
            if len(points) >= 2 * self.settings.min_fit_ticks:  # enough clocks to tell the noise from the line
                self._noise_s = _rms_residual(points, *fit)
            old = self._period_s
            if old is not None and len(points) < PPQN:
                # a short, fresh window (after a dropout or a change): keep the old estimate while the new one
                # agrees with it within 6 standard errors; only a real change replaces it this early
                if abs(fit[1] - old) <= 6.0 * _slope_error(points, *fit):
                    return
            self._period_s = fit[1]
        elif self._period_s is None and len(self._window) >= 2:
            self._period_s = _first_guess(self._window)


def _fit(points: deque[tuple[int, float]] | list[tuple[int, float]]) -> tuple[float, float] | None:
    """Least-squares ``t = intercept + slope * index``; None when degenerate or not increasing."""
    n = len(points)
    if n < 2:
        return None
    i0, t0 = points[0]
    mean_i = sum(i - i0 for i, _ in points) / n
    mean_t = sum(t - t0 for _, t in points) / n
    sxx = sum((i - i0 - mean_i) ** 2 for i, _ in points)
    if sxx <= 0:
        return None
    sxy = sum((i - i0 - mean_i) * (t - t0 - mean_t) for i, t in points)
    slope = sxy / sxx
    if not math.isfinite(slope) or slope <= 0:
        return None
    intercept = t0 + mean_t - slope * (i0 + mean_i)
    return intercept, slope


def _rms_residual(points: list[tuple[int, float]], intercept: float, slope: float) -> float:
    """Root-mean-square distance (seconds) of the timestamps from the fitted line."""
    return math.sqrt(sum((t - intercept - slope * i) ** 2 for i, t in points) / len(points))


def _slope_error(points: deque[tuple[int, float]] | list[tuple[int, float]], intercept: float, slope: float) -> float:
    """Standard error of the fitted slope (seconds per clock)."""
    n = len(points)
    mean_i = sum(i for i, _ in points) / n
    sxx = sum((i - mean_i) ** 2 for i, _ in points)
    ssr = sum((t - intercept - slope * i) ** 2 for i, t in points)
    return math.sqrt(ssr / max(n - 2, 1) / sxx) if sxx > 0 else math.inf


def _first_guess(points: deque[tuple[int, float]]) -> float | None:
    (i_a, t_a), (i_b, t_b) = points[0], points[-1]
    if i_b <= i_a or t_b <= t_a:
        return None
    period = (t_b - t_a) / (i_b - i_a)
    return period if MIN_TEMPO_BPM <= 60.0 / (period * PPQN) <= MAX_TEMPO_BPM else None


# -- sending -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduledMessage:
    """Send ``message`` at ``time_s`` (absolute, on the sender's time base)."""

    time_s: float
    message: mido.Message


def tick_period_s(tempo_bpm: float) -> float:
    """Seconds between two clocks at ``tempo_bpm``."""
    if not (math.isfinite(tempo_bpm) and MIN_TEMPO_BPM <= tempo_bpm <= MAX_TEMPO_BPM):
        raise ValueError(f"tempo must be in {MIN_TEMPO_BPM:g}..{MAX_TEMPO_BPM:g} BPM, got {tempo_bpm}")
    return 60.0 / (tempo_bpm * PPQN)


class ClockSender:
    """The plan of a clock master: absolute deadlines for every clock, so that late wake-ups never add up.

    Clock ``k`` (counted from :meth:`start`) is due at ``anchor_time + (k - anchor_tick) * period``; a tempo
    change re-anchors at the next clock. Pure: the thread that sends lives in :mod:`bridge.midiports`.
    """

    def __init__(self, tempo_bpm: float) -> None:
        self._period_s = tick_period_s(tempo_bpm)
        self._tempo_bpm = tempo_bpm
        self._anchor_time = 0.0
        self._anchor_tick = 0
        self.next_tick = 0  # index of the next clock to send

    @property
    def tempo_bpm(self) -> float:
        return self._tempo_bpm

    def start(self, at_s: float, position_beats: float = 0.0) -> list[ScheduledMessage]:
        """Start (position 0) or Song Position Pointer + Continue; the first clock is due at ``at_s`` too.

        The position is rounded down to a sixteenth note (the pointer's resolution)."""
        if not (math.isfinite(position_beats) and position_beats >= 0):
            raise ValueError(f"position must be >= 0 beats, got {position_beats}")
        sixteenths = min(int(position_beats * 4 + 1e-9), MAX_SONG_POSITION)
        self._anchor_time, self._anchor_tick, self.next_tick = at_s, 0, 0
        if sixteenths == 0:
            return [ScheduledMessage(at_s, mido.Message("start"))]
        return [
            ScheduledMessage(at_s, mido.Message("songpos", pos=sixteenths)),
            ScheduledMessage(at_s, mido.Message("continue")),
        ]

    def stop(self, at_s: float) -> list[ScheduledMessage]:
        return [ScheduledMessage(at_s, mido.Message("stop"))]

    def tick_time(self, index: int) -> float:
        """When clock ``index`` (since :meth:`start`) is due."""
        return self._anchor_time + (index - self._anchor_tick) * self._period_s

    def set_tempo(self, tempo_bpm: float) -> None:
        """Change the tempo from the next clock on (the clocks already due keep their times)."""
        period = tick_period_s(tempo_bpm)
        self._anchor_time, self._anchor_tick = self.tick_time(self.next_tick), self.next_tick
        self._period_s, self._tempo_bpm = period, tempo_bpm

    def take_tick(self) -> float:
        """Deadline of the next clock; the next call gives the one after."""
        due = self.tick_time(self.next_tick)
        self.next_tick += 1
        return due

    def ticks(self, count: int) -> list[ScheduledMessage]:
        """The next ``count`` clocks, with their deadlines."""
        return [ScheduledMessage(self.take_tick(), mido.Message("clock")) for _ in range(count)]
