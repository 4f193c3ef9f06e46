"""What the bridge service tells its listeners, and the values they carry: the DAW's region and transport, and
one frozen event per step of a job (:class:`JobStarted`, :class:`JobProgress`, :class:`JobDone`, :class:`JobFailed`),
per file to place (:class:`Placement`) and per request that could not become a job (:class:`RequestFailed`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.api import Meter

Origin = tuple[str, int] | None
"""Who asked (for OSC: the sender's host and port), handed back on every event of that request."""


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
class JobStarted:
    job_id: str
    job_dir: Path
    origin: Origin = None


@dataclass(frozen=True)
class JobProgress:
    job_id: str
    fraction: float  # 0..1
    message: str
    origin: Origin = None


@dataclass(frozen=True)
class JobDone:
    job_id: str
    job_json_path: Path
    origin: Origin = None


@dataclass(frozen=True)
class JobFailed:
    job_id: str
    message: str
    status: Literal["failed", "cancelled"]
    origin: Origin = None
    error_type: str = ""  # the error's class name, e.g. "DiskFullError" (the OSC layer also sends /segue/error)


@dataclass(frozen=True)
class Placement:
    """Put ``file_path`` on a new DAW track named ``track_name`` at this timeline position."""

    job_id: str
    variant_id: str
    file_path: Path
    position_beats: float
    position_seconds: float
    track_name: str
    kind: Literal["audio", "midi"]
    origin: Origin = None
    region_track: str = ""  # the track the region came from (a Segue Link plugin on it plays the variant)


@dataclass(frozen=True)
class RequestFailed:
    """A queued request that could not become a job (e.g. its region file vanished); no job folder exists."""

    message: str
    origin: Origin = None


BridgeEvent = JobStarted | JobProgress | JobDone | JobFailed | Placement | RequestFailed
Listener = Callable[[BridgeEvent], None]
