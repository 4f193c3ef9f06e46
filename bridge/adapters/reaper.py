"""REAPER through its OSC control surface with the default pattern file (``Default.ReaperOSC``).

REAPER listens on the surface's "local listen port" (8000 by default) and sends feedback to the "device port"
(we listen on 9000 by default). Feedback: ``/tempo/raw f:bpm``, ``/time f:seconds``, ``/beat/str s``
(``"bar.beat.hundredths"``), ``/play f``, ``/stop f``. Commands: ``/play``, ``/stop`` (triggers, sent without
arguments) and ``/time f:seconds`` to move the edit cursor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bridge.adapters.base import (
    Address,
    Capabilities,
    DawFeedback,
    PollingAdapter,
    as_float,
    as_tempo,
    as_text,
    bar_beats,
    checked_beats_per_bar,
    timeline_position,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 8000
DEFAULT_FEEDBACK_PORT = 9000
CAPABILITIES = Capabilities.transport_only(
    "Uses REAPER's default OSC pattern: tempo, time, beat position, play and stop. It has no time-selection "
    "pattern, markers are not wired here, and inserting media needs a ReaScript in REAPER. Beats are counted "
    "from the bar.beat feedback assuming a fixed number of beats per bar (4 unless set). REAPER must send "
    "feedback to the port we listen on (its OSC 'device port', 9000 by default)."
)


@dataclass(frozen=True)
class ReaperState(DawFeedback):
    """REAPER's transport as its feedback last said; ``None`` where it has not said yet."""

    position_seconds: float | None = None
    beat: tuple[int, int, float] | None = None  # bar, beat (1-based), fraction of a beat 0..1


def parse_beat(text: str) -> tuple[int, int, float]:
    """``"3.2.50"`` -> ``(3, 2, 0.5)``; ValueError if it is not ``bar.beat.hundredths``."""
    parts = text.strip().split(".")
    if len(parts) != 3 or not parts[2].isdigit():
        raise ValueError(f"bar.beat.hundredths expected, got {text!r}")
    bar, beat = int(parts[0]), int(parts[1])
    if beat < 1:
        raise ValueError(f"beat must be >= 1, got {text!r}")
    return bar, beat, int(parts[2]) / 10 ** len(parts[2])


class ReaperAdapter(PollingAdapter[ReaperState]):
    """Talk to REAPER at ``daw``; feedback arrives on ``listen`` (REAPER's device port)."""

    name = "reaper"
    capabilities = CAPABILITIES
    default_port = DEFAULT_PORT

    def __init__(
        self,
        daw: Address = ("127.0.0.1", DEFAULT_PORT),
        *,
        beats_per_bar: int = 4,
        listen: Address = ("127.0.0.1", DEFAULT_FEEDBACK_PORT),
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(daw, listen, ReaperState(), now)
        self.beats_per_bar = checked_beats_per_bar(beats_per_bar)
        self.link.handlers.update(
            {
                "/tempo/raw": self._on_tempo,
                "/time": self._on_time,
                "/beat/str": self._on_beat,
                "/play": self._on_play,
                "/stop": self._on_stop,
            }
        )

    def position_beats(self, state: ReaperState) -> float:
        return 0.0 if state.beat is None else bar_beats(*state.beat, self.beats_per_bar)

    # commands
    def play(self) -> None:
        self.link.send("/play")

    def stop(self) -> None:
        self.link.send("/stop")

    def locate(self, seconds: float) -> None:
        """Move the edit cursor to ``seconds`` (finite, >= 0) from the project start."""
        self.link.send("/time", [("f", timeline_position(seconds, "seconds"))])

    # feedback (on the link's thread)
    def _on_tempo(self, args: list[object]) -> None:
        self._update(tempo_bpm=as_tempo(args[0], "/tempo/raw"))

    def _on_time(self, args: list[object]) -> None:
        self._update(position_seconds=as_float(args[0], "/time"))

    def _on_beat(self, args: list[object]) -> None:
        self._update(beat=parse_beat(as_text(args[0], "/beat/str")))

    def _on_play(self, args: list[object]) -> None:
        self._update(playing=as_float(args[0], "/play") != 0.0)

    def _on_stop(self, args: list[object]) -> None:
        if as_float(args[0], "/stop") != 0.0:
            self._update(playing=False)
