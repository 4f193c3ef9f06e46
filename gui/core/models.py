"""The app's panel models: frozen values held in :class:`Observable` boxes that views subscribe to.

A view takes a plain model (napari's ``QtDims(Dims(...))``): the session (:mod:`gui.core.session`) changes the values
on the GUI thread, views redraw from them, and views hand user actions back to the session. No Qt here, so every
model can be tested without a window.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from bridge.events import DawRegion
from bridge.jobs import JobRecord
from engine.api import GenerationParams, ModelInfo
from gui.core.media import MediaSummary

T = TypeVar("T")


class Observable(Generic[T]):
    """A value and the callbacks to call when it changes (compared with ``==``). Use from one thread."""

    def __init__(self, value: T) -> None:
        self._value = value
        self._subscribers: list[Callable[[T], None]] = []

    @property
    def value(self) -> T:
        return self._value

    def set(self, value: T) -> None:
        if value == self._value:
            return
        self._value = value
        for subscriber in list(self._subscribers):
            subscriber(value)

    def update(self, **changes: Any) -> None:
        """``set(dataclasses.replace(value, **changes))``."""
        self.set(dataclasses.replace(self._value, **changes))  # type: ignore[type-var]

    def subscribe(self, callback: Callable[[T], None], now: bool = True) -> Callable[[], None]:
        """Call ``callback(value)`` on every change (and at once when ``now``); returns the unsubscribe."""
        self._subscribers.append(callback)
        if now:
            callback(self._value)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None


# -- Connections ---------------------------------------------------------------------------------------------

LinkStatus = Literal["off", "listening", "connected", "error"]


@dataclass(frozen=True)
class LinkPluginRow:
    """A Segue Link plugin instance seen this session (Connections lists them)."""

    instance_id: str
    track: str
    connected: bool  # said hello within the last 6 s
    sample_rate: int = 0


@dataclass(frozen=True)
class DawLinkState:
    """The embedded OSC server and the DAW it talks to."""

    daw: str = "generic"
    osc_host: str = "127.0.0.1"
    osc_port: int = 9750
    daw_host: str = ""
    daw_port: int = 0
    status: LinkStatus = "off"
    detail: str = ""  # "listening on 127.0.0.1:9750", or why not
    last_message: str = ""  # "/segue/region from 127.0.0.1:53211"
    last_message_time: str = ""  # "14:03:22"
    peer: str = ""  # "127.0.0.1:53211": where replies go
    watch_dir: str = ""  # the watched folder ("" = off)
    watch_detail: str = ""  # "watching ~/Segue/watch/requests", or why not
    plugins: tuple[LinkPluginRow, ...] = ()  # Segue Link instances, connected or not


@dataclass(frozen=True)
class ClockStateView:
    """MIDI clock in: the port and what it says."""

    ports: tuple[str, ...] = ()
    ports_message: str = ""  # why there is no port list
    port: str = ""  # "" = off
    connected: bool = False
    tempo_bpm: float = 0.0
    playing: bool = False
    position_beats: float = 0.0
    bar: int = 1
    beat: int = 1
    source: str = "none"


@dataclass(frozen=True)
class EngineView:
    spec: str = "local"
    token: str = ""
    status: Literal["opening", "ready", "failed"] = "opening"
    name: str = ""
    models: tuple[ModelInfo, ...] = ()
    message: str = ""


# -- Region ----------------------------------------------------------------------------------------------------


# whose tempo the region has: the DAW's, the user's (typed or tapped), its file's name, a MIDI file's tempo map
# ("file"), the job's it came from, an estimate from the audio, or an assumed 120 BPM
TempoSource = Literal["daw", "user", "name", "file", "job", "estimate", "assumed"]


@dataclass(frozen=True)
class RegionState:
    region: DawRegion | None = None
    origin: Literal["", "daw", "file", "variant", "job"] = ""
    name: str = ""
    midi: MediaSummary | None = None
    audio: MediaSummary | None = None
    key: str = ""
    bars: float = 0.0
    tempo_source: TempoSource = "file"
    tempo_estimate: float | None = None  # from the audio (beat tracking), when it is an audio region


# -- Generate ----------------------------------------------------------------------------------------------


_ENGINE_DEFAULTS = GenerationParams()


@dataclass(frozen=True)
class GenerateForm:
    """The generate panel's values as typed (checked by GenerationParams when a job is made); they start at the
    engine's defaults."""

    mode: str = _ENGINE_DEFAULTS.mode
    bars: int = _ENGINE_DEFAULTS.bars
    variants: int = _ENGINE_DEFAULTS.variants
    temperature: float = _ENGINE_DEFAULTS.temperature
    top_p: float = _ENGINE_DEFAULTS.top_p
    seed: int | None = None  # None: random
    model: str = "default"
    parts: tuple[str, ...] = ()  # accompany: the parts to write; () = the model's default set
    output: str = _ENGINE_DEFAULTS.output  # what an audio region becomes: auto | audio | midi | both
    # the producer's controls (engine.api.GenerationParams); None: auto, the engine's measured default
    similarity: float | None = None  # 1 = close to the region, 0 = free
    keep_opening: bool | None = None  # audio
    density: float | None = None  # MIDI, a factor of the region's notes per bar
    hold_notes: bool | None = None  # MIDI
    end_on_tonic: bool | None = None  # MIDI
    part_density: tuple[tuple[str, float], ...] = ()  # MIDI, per part: only "Same seed" of a CLI/OSC job sets it


# GenerateForm's (and GuiSettings') fields that are GenerationParams's producer's controls, by the same names
CONTROLS = ("similarity", "keep_opening", "density", "hold_notes", "end_on_tonic")
# GenerateForm's fields that GuiSettings keeps between runs, by the same names (not part_density: see its comment)
SAVED_FORM_FIELDS = ("mode", "bars", "variants", "temperature", "top_p", "seed", "model", "parts", "output", *CONTROLS)

# the accompany model's roles (engine/symbolic/accompany/layout.py), offered when no model lists the parts it writes
FALLBACK_PARTS = ("soprano", "alto", "tenor", "bass", "piano")


def known_parts(models: tuple[ModelInfo, ...], chosen: str = "default") -> tuple[str, ...]:
    """The part names to offer for accompany: the chosen model's (``ModelInfo.parts``); for ``"default"``
    those of every model that accompanies, in order; :data:`FALLBACK_PARTS` when none says."""
    offering = [m for m in models if "accompany" in m.modes and (chosen == "default" or m.name == chosen)]
    names = tuple(dict.fromkeys(part for m in offering for part in m.parts))
    return names or FALLBACK_PARTS


JobStatus = Literal["waiting", "queued", "running", "done", "failed", "cancelled"]


@dataclass(frozen=True)
class JobRow:
    job_id: str
    status: JobStatus
    fraction: float = 0.0
    message: str = ""


@dataclass(frozen=True)
class JobsState:
    rows: tuple[JobRow, ...] = ()
    waiting: int = 0  # asked for here, not started yet

    @property
    def running(self) -> tuple[str, ...]:
        return tuple(r.job_id for r in self.rows if r.status == "running")


# -- Variants ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantItem:
    job_id: str
    variant_id: str  # "v01"
    number: int  # 1-based, as /segue/choose counts
    seed: int
    files: Mapping[str, Path]  # role -> absolute path: "audio", "midi", "full_audio", "full_midi", "stem:<part>"
    duration_seconds: float
    parts: tuple[str, ...] = ()
    starred: bool = False
    midi: MediaSummary | None = None
    audio: MediaSummary | None = None
    name: str = ""  # the producer's name for it ("" = none)
    notes: str = ""

    @property
    def key(self) -> str:
        return f"{self.job_id}/{self.variant_id}"

    @property
    def stems(self) -> dict[str, Path]:
        return {role.split(":", 1)[1]: path for role, path in self.files.items() if role.startswith("stem:")}


@dataclass(frozen=True)
class VariantsState:
    job: JobRecord | None = None
    job_dir: Path | None = None
    items: tuple[VariantItem, ...] = ()
    selected: str = ""  # variant_id
    playing: str = ""  # the take's key: "v01", "v01+region"; "" = stopped
    loop: bool = False
    region_first: bool = False
    slot_a: str = ""  # variant ids for A/B
    slot_b: str = ""
    audition_message: str = ""
    take_seconds: float = 0.0  # the length of what plays (the region and the variant, with region first)
    muted: tuple[str, ...] = ()  # stems (parts) muted in audition
    soloed: tuple[str, ...] = ()  # stems soloed in audition (any soloed: only those play)

    def item(self, variant_id: str) -> VariantItem | None:
        return next((i for i in self.items if i.variant_id == variant_id), None)


def plays_together(state: VariantsState) -> bool:
    """True when "region first" plays the region and the variant at once: an accompaniment's ``full.wav`` is the
    region mixed with the parts written under it (a continuation's is the region followed by the variant)."""
    return state.job is not None and state.job.mode == "accompany"


# -- History -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    job_id: str
    job_dir: Path
    created: str
    status: str
    mode: str
    bars: int
    variants: int
    model: str
    region_name: str
    message: str = ""


@dataclass(frozen=True)
class HistoryState:
    rows: tuple[HistoryRow, ...] = ()  # newest first
    out_dir: Path | None = None


# -- Messages ------------------------------------------------------------------------------------------------

_serial = itertools.count(1)


@dataclass(frozen=True)
class Message:
    level: Literal["info", "warning", "error"]
    text: str
    serial: int = field(default_factory=lambda: next(_serial))  # two equal texts are two messages
    when: str = field(default_factory=lambda: time.strftime("%H:%M:%S"), compare=False)


MESSAGES_KEPT = 100  # the message log keeps the latest this many


@dataclass
class Models:
    """Every panel's model, as the main window gets them."""

    link: Observable[DawLinkState] = field(default_factory=lambda: Observable(DawLinkState()))
    clock: Observable[ClockStateView] = field(default_factory=lambda: Observable(ClockStateView()))
    engine: Observable[EngineView] = field(default_factory=lambda: Observable(EngineView()))
    region: Observable[RegionState] = field(default_factory=lambda: Observable(RegionState()))
    form: Observable[GenerateForm] = field(default_factory=lambda: Observable(GenerateForm()))
    jobs: Observable[JobsState] = field(default_factory=lambda: Observable(JobsState()))
    variants: Observable[VariantsState] = field(default_factory=lambda: Observable(VariantsState()))
    history: Observable[HistoryState] = field(default_factory=lambda: Observable(HistoryState()))
    message: Observable[Message | None] = field(default_factory=lambda: Observable[Message | None](None))
    messages: Observable[tuple[Message, ...]] = field(default_factory=lambda: Observable[tuple[Message, ...]](()))
    playhead: Observable[float] = field(default_factory=lambda: Observable(0.0))  # seconds into the take playing
