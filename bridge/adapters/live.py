"""Ableton Live (11+) through the AbletonOSC remote script: commands to UDP 11000, replies on 11001.

What this relies on (ideoforms/AbletonOSC):

- ``README.md``: AbletonOSC listens on 11000 and "sends replies on port 11001 ... to the same IP as the
  originating message"; song getters answer on the address they were asked on (``/live/song/get/tempo`` ->
  ``/live/song/get/tempo tempo_bpm``), ``current_song_time`` is "the current song time, in beats";
  ``/live/song/start_listen/<property>`` sends changes to ``/live/song/get/<property>``; ``/live/startup`` is sent
  when AbletonOSC starts.
- ``abletonosc/osc_server.py``: replies and listener updates go to ``(sender's host, 11001)``, a fixed port (not
  the sender's port), and the listener target is the host of the most recent client. So we listen on 11001.
- ``abletonosc/handler.py``: ``_get_property`` replies with ``(value,)``; ``_start_listen`` sends the current value
  at once and then every change; values are built by python-osc's type inference, so ``is_playing`` arrives as an
  OSC ``T``/``F`` (a Python bool).
- ``abletonosc/song.py``: methods ``start_playing``, ``continue_playing``, ``stop_playing`` (no arguments);
  read/write ``current_song_time`` and ``tempo``; ``/live/song/start_listen/beat`` sends
  ``/live/song/get/beat i:beat`` whenever the song time crosses a whole beat (older versions always sent
  ``/live/song/beat i`` instead; both are read).

What we do: on :meth:`LiveAdapter.start` (and again whenever Live answers after a silence, or says
``/live/startup``) listen to ``tempo``, ``is_playing`` and ``beat``; poll ``current_song_time`` every
``poll_interval_s`` (each poll is one INFO line in AbletonOSC's own log, so not faster than needed). The position
is the last song time Live reported (poll or beat), moved on at the tempo while playing, by at most one beat past
that report. Commands: ``/live/song/continue_playing`` (plays from the current song time, so ``locate`` then
``play`` starts there; ``start_playing`` would start from the insert marker), ``/live/song/stop_playing``,
``/live/song/set/current_song_time f:beats``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.adapters.base import (
    Address,
    Capabilities,
    DawFeedback,
    PollingAdapter,
    as_float,
    as_int,
    as_tempo,
    timeline_position,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 11000
DEFAULT_FEEDBACK_PORT = 11001  # fixed in AbletonOSC (constants.OSC_RESPONSE_PORT)
LISTENS = ("/live/song/start_listen/tempo", "/live/song/start_listen/is_playing", "/live/song/start_listen/beat")
POLL = "/live/song/get/current_song_time"
MAX_AHEAD_BEATS = 1.0  # how far past Live's last report the position may be moved on at the tempo
CAPABILITIES = Capabilities.transport_only(
    "Needs the AbletonOSC remote script (Live 11 or later) chosen as a control surface in Live. AbletonOSC "
    "always replies to UDP port 11001 on the sender's host, so Segue listens there and only one AbletonOSC "
    "client per host gets the feedback. The position is Live's song time in beats, polled once a second and "
    "updated on every beat while playing (in between it is moved on at the tempo). Files cannot be placed in "
    "Live over stock AbletonOSC: it has no way to import audio, and putting an audio clip on the arrangement "
    "needs Live 12.0.5's Track.create_audio_clip (a Segue remote script, or an AbletonOSC build that exposes "
    "it); drag the variant's files from Segue instead. Markers (cue points) are not wired here."
)


@dataclass(frozen=True)
class LiveState(DawFeedback):
    """Live's transport as AbletonOSC last said; ``None`` where it has not said yet."""

    song_time_beats: float | None = None  # the last song time Live reported (poll or beat)
    song_time_at: float | None = None  # when that report arrived (the adapter's clock)


def as_bool(value: Any, what: str) -> bool:
    """An OSC ``T``/``F`` or an int 0/1 (older AbletonOSC builds); TypeError/ValueError otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, int):
        raise ValueError(f"{what} must be 0 or 1, got {value}")
    raise TypeError(f"{what} must be a bool, got {value!r}")


class LiveAdapter(PollingAdapter[LiveState]):
    """Talk to AbletonOSC at ``daw``; its replies arrive on ``listen`` (port 11001 unless AbletonOSC was changed)."""

    name = "live"
    thread_name = "segue-live-poll"
    capabilities = CAPABILITIES
    default_port = DEFAULT_PORT

    def __init__(
        self,
        daw: Address = ("127.0.0.1", DEFAULT_PORT),
        *,
        poll_interval_s: float = 1.0,
        listen: Address = ("127.0.0.1", DEFAULT_FEEDBACK_PORT),
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if not poll_interval_s > 0:
            raise ValueError(f"poll_interval_s must be > 0, got {poll_interval_s}")
        super().__init__(daw, listen, LiveState(), now, poll_interval_s)
        self.poll_interval_s = poll_interval_s
        self.stale_after_s = 3.0 * poll_interval_s  # every poll is answered while Live is there
        self.link.handlers.update(
            {
                "/live/song/get/tempo": self._on_tempo,
                "/live/song/get/is_playing": self._on_playing,
                "/live/song/get/current_song_time": self._on_song_time,
                "/live/song/get/beat": self._on_beat,
                "/live/song/beat": self._on_beat,
                "/live/startup": lambda args: self.listen(),
                "/live/error": self._on_error,
            }
        )

    def opened(self) -> None:
        self.listen()
        self.poll()

    def tick(self) -> None:
        self.poll()

    def listen(self) -> None:
        """Ask AbletonOSC to send tempo, play state and beats as they change (it sends the current values at once)."""
        for address in LISTENS:
            self.link.send(address)

    def poll(self) -> None:
        self.link.send(POLL)

    def position_beats(self, state: LiveState) -> float:
        """The last song time Live reported, moved on at the tempo while playing (unless stale)."""
        beats = state.song_time_beats or 0.0
        if state.playing and state.tempo_bpm and state.song_time_at is not None and not self.stale(state):
            ahead = (self._now() - state.song_time_at) * state.tempo_bpm / 60.0
            beats += min(max(ahead, 0.0), MAX_AHEAD_BEATS)
        return beats

    # commands
    def play(self) -> None:
        """Play from the current song time (``continue_playing``)."""
        self.link.send("/live/song/continue_playing")

    def stop(self) -> None:
        self.link.send("/live/song/stop_playing")

    def locate(self, beats: float) -> None:
        """Move the song time to ``beats`` (finite, >= 0) from the start of the arrangement."""
        self.link.send("/live/song/set/current_song_time", [("f", timeline_position(beats, "beats"))])

    # feedback (on the link's thread)
    def heard(self) -> None:
        with self._lock:
            before = self._state
            self._state = dataclasses.replace(before, feedback_at=self._now())
        if self.stale(before):  # never heard before, or not for a while
            log.debug("live: AbletonOSC answers (again); listening to tempo, play state and beats")
            self.listen()  # Live may have started (or restarted) after us: its listeners are gone

    def _on_tempo(self, args: list[object]) -> None:
        self._update(tempo_bpm=as_tempo(args[0], "/live/song/get/tempo"))

    def _on_playing(self, args: list[object]) -> None:
        self._update(playing=as_bool(args[0], "/live/song/get/is_playing"))

    def _on_song_time(self, args: list[object]) -> None:
        self._set_song_time(as_float(args[0], "/live/song/get/current_song_time"))

    def _on_beat(self, args: list[object]) -> None:
        self._set_song_time(float(as_int(args[0], "/live/song/get/beat")))

    def _set_song_time(self, beats: float) -> None:
        if beats < 0:
            raise ValueError(f"the song time must be >= 0 beats, got {beats}")
        self._update(song_time_beats=beats, song_time_at=self._now())

    def _on_error(self, args: list[object]) -> None:
        log.info("live: AbletonOSC reports an error: %.200s", " ".join(str(a) for a in args))
