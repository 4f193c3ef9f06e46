"""Bitwig Studio through DrivenByMoss's "Open Sound Control" controller: commands to UDP 8000, feedback on 9000.

What this relies on (git-moss/DrivenByMoss and its documentation, DrivenByMoss-Documentation):

- ``Generic-Tools-Protocols/Open-Sound-Control-(OSC).md``: the script sends ``/play {0,1}``, ``/tempo/raw``,
  ``/beat/str`` ("play position as beats: measures.quarters.eights:ticks"), ``/time/str`` (hours.minutes.seconds),
  ``/time/signature`` ("numerator / denominator") and ``/update 1`` / ``/update 0`` around each update cycle. It
  receives ``/refresh`` (flush all values), ``/play {0,1,-}``, ``/stop``, ``/time {beats}`` (set the playback
  position, in beats), ``/track/{n}/clip/{m}/insertFile {path}`` and ``/clip/insertFile {path}`` (load a file
  into a launcher slot). Ports: it listens on 8000 and sends to the configured host on 9000
  (``controller/osc/OSCConfiguration.java``: ``receivePort = 8000``, ``sendPort = 9000``).
- ``framework/osc/AbstractOpenSoundControlWriter.java``: booleans are sent as ints 1/0, doubles as floats; values
  are sent only when they change (``/refresh`` sends them all), as one bundle per update cycle.
- ``controller/osc/module/TransportModule.java``: ``/play`` with a value > 0 starts playback only if it is stopped
  and with 0 stops it only if it plays; ``/stop`` while stopped also rewinds to 0 (so we stop with ``/play 0``);
  ``/time`` calls ``setPosition(beats)`` (``bitwig/framework/daw/TransportImpl.java``: sets the play start
  position and jumps there when playing).
- ``TransportImpl.getBeatText`` + ``framework/utils/StringUtils.formatMeasures``: ``/beat/str`` is
  ``"%d.%d.%d:%02d"`` (some versions pad: ``%d.%02d.%02d:%02d``): measure, quarter and sixteenth (all 1-based),
  then hundredths of a sixteenth, with ``quartersPerMeasure = 4 * numerator / denominator`` (integer division).
  We invert exactly that. There is no numeric position feedback (``/time`` is only a command).

DrivenByMoss is silent while nothing changes (a stopped transport), so after ``refresh_interval_s`` of silence we
send ``/refresh``; it answers with its whole state (a few hundred messages), which is also how we tell that Bitwig
is still there.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bridge.adapters.base import (
    Address,
    Capabilities,
    DawFeedback,
    PollingAdapter,
    as_int,
    as_tempo,
    as_text,
    timeline_position,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 8000
DEFAULT_FEEDBACK_PORT = 9000
_BEAT_TEXT = re.compile(r"\s*(-?\d+)\.(\d+)\.(\d+)(?::(\d+))?\s*")
_SIGNATURE_TEXT = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
CAPABILITIES = Capabilities.transport_only(
    "Needs DrivenByMoss's 'Open Sound Control' controller added in Bitwig (it listens on 8000 and must send to "
    "this host on the port we listen on, 9000 by default). Files cannot be placed on Bitwig's arranger over "
    "DrivenByMoss: its insertFile only loads a file into a clip launcher slot (insert_into_slot here), not at a "
    "timeline position; drag the variant's files from Segue instead. The position is read from the "
    "measures.quarters.sixteenths text DrivenByMoss sends (1/400 beat resolution, one time signature assumed); "
    "there is no numeric position feedback. DrivenByMoss is silent while the transport is stopped, so Segue "
    "asks it to /refresh (resend everything) after a few seconds of silence. Markers are not wired here."
)


@dataclass(frozen=True)
class BitwigState(DawFeedback):
    """Bitwig's transport as DrivenByMoss last said; ``None`` where it has not said yet."""

    beat: tuple[int, int, int, int] | None = None  # measure, quarter, sixteenth (1-based), hundredths of a 16th
    signature: tuple[int, int] = (4, 4)  # numerator, denominator


def parse_beat_text(text: str) -> tuple[int, int, int, int]:
    """``"3.2.4:50"`` (or ``"3.02.04:50"``) -> ``(3, 2, 4, 50)``; ValueError if it is not DrivenByMoss's format."""
    match = _BEAT_TEXT.fullmatch(text)
    if match is None:
        raise ValueError(f"measures.quarters.sixteenths:ticks expected, got {text!r}")
    measure, quarter, sixteenth = (int(match.group(i)) for i in (1, 2, 3))
    ticks = int(match.group(4) or 0)
    if quarter < 1 or not 1 <= sixteenth <= 4 or not 0 <= ticks <= 99:
        raise ValueError(f"quarter must be >= 1, sixteenth in 1..4 and ticks in 0..99, got {text!r}")
    return measure, quarter, sixteenth, ticks


def parse_signature(text: str) -> tuple[int, int]:
    """``"6 / 8"`` -> ``(6, 8)``; ValueError unless both are positive."""
    match = _SIGNATURE_TEXT.fullmatch(text)
    if match is None:
        raise ValueError(f"'numerator / denominator' expected, got {text!r}")
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if numerator < 1 or denominator < 1:
        raise ValueError(f"numerator and denominator must be >= 1, got {text!r}")
    return numerator, denominator


def quarters_per_measure(signature: tuple[int, int]) -> int:
    """As DrivenByMoss computes it: ``4 * numerator / denominator`` in integers (at least 1)."""
    return max(1, 4 * signature[0] // signature[1])


def beat_to_quarters(beat: tuple[int, int, int, int], signature: tuple[int, int]) -> float:
    """The position in quarter notes from the start of the arranger, inverting ``StringUtils.formatMeasures``."""
    measure, quarter, sixteenth, ticks = beat
    return (measure - 1) * quarters_per_measure(signature) + (quarter - 1) + (sixteenth - 1 + ticks / 100.0) * 0.25


class BitwigAdapter(PollingAdapter[BitwigState]):
    """Talk to DrivenByMoss at ``daw``; its feedback arrives on ``listen`` (its "port to send to", 9000)."""

    name = "bitwig"
    thread_name = "segue-bitwig-refresh"
    capabilities = CAPABILITIES
    default_port = DEFAULT_PORT

    def __init__(
        self,
        daw: Address = ("127.0.0.1", DEFAULT_PORT),
        *,
        refresh_interval_s: float = 5.0,
        listen: Address = ("127.0.0.1", DEFAULT_FEEDBACK_PORT),
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if not refresh_interval_s > 0:
            raise ValueError(f"refresh_interval_s must be > 0, got {refresh_interval_s}")
        super().__init__(daw, listen, BitwigState(), now, refresh_interval_s)
        self.refresh_interval_s = refresh_interval_s
        self.stale_after_s = 2.5 * refresh_interval_s  # a /refresh went unanswered
        self.link.handlers.update(
            {
                "/tempo/raw": self._on_tempo,
                "/play": self._on_play,
                "/beat/str": self._on_beat,
                "/time/signature": self._on_signature,
                "/update": lambda args: None,
            }
        )

    def opened(self) -> None:
        self.refresh()

    def tick(self) -> None:
        if self.silent_for(self.state()) >= self.refresh_interval_s:
            log.debug("bitwig: no feedback for %.1f s; asking DrivenByMoss to /refresh", self.refresh_interval_s)
            self.refresh()

    def refresh(self) -> None:
        """Ask DrivenByMoss to send all its values now."""
        self.link.send("/refresh")

    def position_beats(self, state: BitwigState) -> float:
        return 0.0 if state.beat is None else beat_to_quarters(state.beat, state.signature)

    # commands
    def play(self) -> None:
        """Start playback (nothing if it plays already)."""
        self.link.send("/play", [("i", 1)])

    def stop(self) -> None:
        """Stop playback (``/play 0``: unlike ``/stop``, it does not rewind when already stopped)."""
        self.link.send("/play", [("i", 0)])

    def locate(self, beats: float) -> None:
        """Set the play position to ``beats`` (quarter notes, finite, >= 0); playback jumps there if playing."""
        self.link.send("/time", [("f", timeline_position(beats, "beats"))])

    def insert_into_slot(self, track: int, slot: int, path: Path) -> None:
        """Load the file ``path`` into launcher slot ``slot`` of track ``track`` (both 1-based, in DrivenByMoss's
        current track and slot banks). Not the arranger: DrivenByMoss cannot place a file on the timeline."""
        for what, number in (("track", track), ("slot", slot)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise ValueError(f"{what} must be an int >= 1, got {number!r}")
        if not path.is_absolute():
            raise ValueError(f"the path must be absolute (Bitwig resolves it, not us), got {str(path)!r}")
        self.link.send(f"/track/{track}/clip/{slot}/insertFile", [("s", str(path))])

    # feedback (on the link's thread)
    def _on_tempo(self, args: list[object]) -> None:
        self._update(tempo_bpm=as_tempo(args[0], "/tempo/raw"))

    def _on_play(self, args: list[object]) -> None:
        value = as_int(args[0], "/play")
        if value not in (0, 1):
            raise ValueError(f"/play must be 0 or 1, got {value}")
        self._update(playing=value == 1)

    def _on_beat(self, args: list[object]) -> None:
        self._update(beat=parse_beat_text(as_text(args[0], "/beat/str")))

    def _on_signature(self, args: list[object]) -> None:
        self._update(signature=parse_signature(as_text(args[0], "/time/signature")))
