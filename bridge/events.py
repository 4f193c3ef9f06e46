"""What the bridge service tells its listeners, and the values they carry: the DAW's region and transport, and
one frozen event per step of a job (:class:`JobStarted`, :class:`JobProgress`, :class:`JobDone`, :class:`JobFailed`),
per file to place (:class:`Placement`) and per request that could not become a job (:class:`RequestFailed`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.api import Meter

Origin = tuple[str, int] | None
"""Who asked (for OSC: the sender's host and port), handed back on every event of that request."""


@dataclass(frozen=True)
class Event:
    """What every event that answers a request carries (the service's, a capture's in
    :mod:`bridge.capture.controller`, a Segue Link plugin's in :mod:`bridge.link`): its :data:`Origin`, given by
    keyword after the event's own fields (``JobDone(job_id, path, origin=sender)``)."""

    origin: Origin = field(default=None, kw_only=True)


@dataclass(frozen=True)
class DawRegion:
    """A region as the DAW describes it (``/segue/region``). Paths are absolute; at least one is set."""

    audio_path: Path | None
    midi_path: Path | None
    start_beats: float  # on the DAW timeline, quarter notes
    length_beats: float  # quarter notes
    tempo_bpm: float
    meter: Meter
    track: str = ""
    # several tracks' audio of this region, (name, absolute path) per track (``/segue/region/stems``): continued
    # together (engine.api.Prompt.stems); ``audio_path`` is then their mix when the DAW sent one, else None
    stems: tuple[tuple[str, Path], ...] = ()


@dataclass(frozen=True)
class TransportState:
    """What ``/segue/status`` reports. ``tempo_bpm`` 0.0 means unknown; ``clock_source`` says where it came from."""

    tempo_bpm: float = 0.0
    playing: bool = False
    position_beats: float = 0.0
    clock_source: str = "none"


TransportProvider = Callable[[], TransportState]
"""Returns the current transport state (the MIDI clock follower's, a DAW adapter's, a Segue Link plugin's:
:func:`bridge.daemon.combined_transport`, :func:`bridge.link.link_transport`). Called on any thread."""


@dataclass(frozen=True)
class JobStarted(Event):
    job_id: str
    job_dir: Path


@dataclass(frozen=True)
class JobProgress(Event):
    job_id: str
    fraction: float  # 0..1
    message: str


@dataclass(frozen=True)
class JobDone(Event):
    job_id: str
    job_json_path: Path


@dataclass(frozen=True)
class JobFailed(Event):
    job_id: str
    message: str
    status: Literal["failed", "cancelled"]
    error_type: str = ""  # the error's class name, e.g. "DiskFullError" (the OSC layer also sends /segue/error)


@dataclass(frozen=True)
class Placement(Event):
    """Put ``file_path`` on a new DAW track named ``track_name`` at this timeline position."""

    job_id: str
    variant_id: str
    file_path: Path
    position_beats: float
    position_seconds: float
    track_name: str
    kind: Literal["audio", "midi"]
    region_track: str = ""  # the track the region came from (a Segue Link plugin on it plays the variant)


@dataclass(frozen=True)
class RequestFailed(Event):
    """A queued request that could not become a job (e.g. its region file vanished); no job folder exists."""

    message: str


BridgeEvent = JobStarted | JobProgress | JobDone | JobFailed | Placement | RequestFailed
Listener = Callable[[BridgeEvent], None]
