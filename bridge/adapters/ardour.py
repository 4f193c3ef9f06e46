"""Ardour 7.x through its own OSC surface (default UDP 3819).

We register for feedback with ``/set_surface 0 159 3192 0 0 0 0`` (feedback bits: heartbeat, master section,
bar/beat, timecode, samples, minutes/seconds) sent from our listening socket; Ardour must be set to reply to the
sender's port (``address-only="0"`` in the session's OSC protocol settings), else it replies to port 8000. Until
feedback arrives the registration is repeated every ``register_interval_s``, so Ardour may start after us.

Feedback: ``/position/samples`` (Ardour sends a decimal string; ints are accepted too), ``/position/bbt``
(``"bars|beats|ticks"``, 1920 ticks per beat), ``/transport_speed f``, ``/transport_play i``,
``/transport_stop i``. Commands: ``/transport_play``, ``/transport_stop``, ``/locate h:sample i:roll``,
``/goto_start``, ``/add_marker s:name``.
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
    as_int,
    as_text,
    bar_beats,
    checked_beats_per_bar,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 3819
SET_SURFACE_ARGS = (0, 159, 3192, 0, 0, 0, 0)  # bank size, strip types, feedback, fader mode, send/plugin pages
TICKS_PER_BEAT = 1920
CAPABILITIES = Capabilities(
    read_tempo=False,
    read_position=True,
    transport_control=True,
    markers=True,
    import_files=False,
    limitations=(
        "Ardour 7.3's OSC has no tempo address, so the tempo is unknown here (use --midi-clock-in with Ardour "
        "sending MIDI clock). Beats are counted from bar|beat|tick feedback assuming a fixed number of beats per "
        "bar (4 unless set) and quarter-note beats. Files cannot be imported over Ardour's OSC: that needs a "
        "Lua script in Ardour. Ardour must reply to the sender's port (OSC setting 'address-only' off)."
    ),
)


@dataclass(frozen=True)
class ArdourState(DawFeedback):
    """Ardour's transport as its feedback last said; ``None`` where it has not said yet (the tempo: never)."""

    speed: float = 0.0
    position_samples: int | None = None
    bbt: tuple[int, int, int] | None = None  # bars, beats, ticks (1-based bars and beats)


def parse_bbt(text: str) -> tuple[int, int, int]:
    """``" 001|02|0960"`` -> ``(1, 2, 960)``; ValueError if it is not three ``|``-separated integers."""
    parts = text.strip().split("|")
    if len(parts) != 3:
        raise ValueError(f"bar|beat|tick expected, got {text!r}")
    bars, beats, ticks = (int(part) for part in parts)
    if beats < 1 or not 0 <= ticks < TICKS_PER_BEAT:
        raise ValueError(f"beat must be >= 1 and tick in 0..{TICKS_PER_BEAT - 1}, got {text!r}")
    return bars, beats, ticks


class ArdourAdapter(PollingAdapter[ArdourState]):
    """Talk to Ardour at ``daw`` (host, port); :meth:`start` listens and registers for feedback."""

    name = "ardour"
    thread_name = "segue-ardour-register"
    capabilities = CAPABILITIES
    default_port = DEFAULT_PORT

    def __init__(
        self,
        daw: Address = ("127.0.0.1", DEFAULT_PORT),
        *,
        listen: Address = ("127.0.0.1", 0),
        beats_per_bar: int = 4,
        register_interval_s: float = 2.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(daw, listen, ArdourState(), now, register_interval_s)
        self.beats_per_bar = checked_beats_per_bar(beats_per_bar)
        self.register_interval_s = register_interval_s
        self.link.handlers.update(
            {
                "/position/samples": self._on_samples,
                "/position/bbt": self._on_bbt,
                "/transport_speed": self._on_speed,
                "/transport_play": self._on_play,
                "/transport_stop": self._on_stop,
                "/heartbeat": lambda args: None,
            }
        )

    def opened(self) -> None:
        self.register()

    def tick(self) -> None:
        if self.silent_for(self.state()) > self.register_interval_s:
            log.debug("ardour: no feedback for %.1f s; registering again", self.register_interval_s)
            self.register()

    def register(self) -> None:
        self.link.send("/set_surface", SET_SURFACE_ARGS)

    # commands
    def play(self) -> None:
        self.link.send("/transport_play")

    def stop(self) -> None:
        self.link.send("/transport_stop")

    def locate(self, sample: int, roll: bool = False) -> None:
        """Move the playhead to ``sample`` (>= 0); ``roll``: start playing there."""
        if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
            raise ValueError(f"sample must be an int >= 0, got {sample!r}")
        self.link.send("/locate", [("h", sample), ("i", 1 if roll else 0)])

    def goto_start(self) -> None:
        self.link.send("/goto_start")

    def add_marker(self, name: str) -> None:
        """Add a location marker named ``name`` at the playhead."""
        self.link.send("/add_marker", [("s", name)])

    def position_beats(self, state: ArdourState) -> float:
        return self._beats(state.bbt)

    def _beats(self, bbt: tuple[int, int, int] | None) -> float:
        if bbt is None:
            return 0.0
        bars, beats, ticks = bbt
        return bar_beats(bars, beats, ticks / TICKS_PER_BEAT, self.beats_per_bar)

    # feedback (on the link's thread)

    def _on_samples(self, args: list[object]) -> None:
        sample = as_int(args[0], "/position/samples")
        self._update(position_samples=sample)

    def _on_bbt(self, args: list[object]) -> None:
        self._update(bbt=parse_bbt(as_text(args[0], "/position/bbt")))

    def _on_speed(self, args: list[object]) -> None:
        speed = as_float(args[0], "/transport_speed")
        self._update(speed=speed, playing=speed != 0.0)

    def _on_play(self, args: list[object]) -> None:
        self._update(playing=as_int(args[0], "/transport_play") != 0)

    def _on_stop(self, args: list[object]) -> None:
        self._update(playing=as_int(args[0], "/transport_stop") == 0)
