"""The engine's public vocabulary: requests, results and the :class:`Engine` protocol.

This module imports no torch, so the bridge and the GUI start fast and install without the heavy parts when they
use a remote engine. Everything here is a frozen dataclass; copy with :func:`dataclasses.replace`.

An engine writes each variant's files into the job folder it is given (``v01/continuation.mid`` ...), relative
paths in :attr:`VariantResult.files`, and reports progress through a callback; a :class:`CancelToken` stops it.
The entry points that open an engine, serve, train or check the install are in :mod:`engine.entrypoints`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from engine.errors import BadInputError, CancelledError

Mode = Literal["continue", "accompany"]
Kind = Literal["midi", "audio"]
# What an audio region becomes: "audio" (the audio engine continues the sound), "midi" (transcribed, then the
# MIDI engine: notes, stems and a rendered mix), "both" (one job, both kinds), "auto" (audio when an audio model
# is installed, else MIDI). MIDI regions are always MIDI jobs.
Output = Literal["auto", "audio", "midi", "both"]
OUTPUTS: tuple[str, ...] = ("auto", "audio", "midi", "both")
MAX_PARTS = 8
_PART_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def is_part_name(name: object) -> bool:
    """A part or stem name as the engine takes it: lowercase letters, digits, '-' or '_', from a letter, at most
    32 characters (bass, piano, drums-l)."""
    return isinstance(name, str) and _PART_NAME.match(name) is not None


MAX_BARS = 64
MAX_VARIANTS = 16
DEFAULT_SAMPLE_RATE = 44_100
VALID_DENOMINATORS = (1, 2, 4, 8, 16, 32)

# The bounds of every number that places a region on the DAW timeline, checked here once (Prompt), so the CLI,
# OSC, HTTP and the GUI refuse the same values with the same words. A region is at most MAX_REGION_BEATS quarter
# notes long: 8192 bars of 4/4, four and a half hours at 120 BPM (a whole three-hour MIDI file is read, and the
# engines keep only its last bars), so nothing sized by the region's bars (the bar grid: at most a few hundred
# thousand entries, even in 1/32) can grow without bound. It starts at most MAX_START_BEATS quarter notes into
# the timeline (over 40 hours at 400 BPM). NaN, infinities and non-numbers are refused.
MIN_TEMPO_BPM, MAX_TEMPO_BPM = 10.0, 400.0
MAX_REGION_BEATS = 32_768.0
MAX_START_BEATS = 1_000_000.0
# The largest region files read, checked from the file's size before anything reads or hashes it: a MIDI region
# is far smaller; an hour of 24-bit stereo at 48 kHz is about 1 GB.
MAX_MIDI_FILE_BYTES = 64 * 1024 * 1024
MAX_AUDIO_FILE_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class Meter:
    """A time signature, e.g. ``Meter(6, 8)``."""

    numerator: int = 4
    denominator: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.numerator, int) or not 1 <= self.numerator <= 32:
            raise BadInputError(f"meter numerator must be a whole number in 1..32, got {self.numerator!r}")
        if self.denominator not in VALID_DENOMINATORS:
            raise BadInputError(f"meter denominator must be one of {VALID_DENOMINATORS}, got {self.denominator!r}")

    @property
    def quarters_per_bar(self) -> float:
        """Length of one bar in quarter notes (the DAW's "beats"): 4/4 -> 4.0, 6/8 -> 3.0, 7/8 -> 3.5."""
        return self.numerator * 4.0 / self.denominator

    @classmethod
    def parse(cls, text: str) -> Meter:
        """Parse ``"6/8"``; raises :class:`BadInputError` with the expected form."""
        try:
            num_text, den_text = text.strip().split("/")
            return cls(int(num_text), int(den_text))
        except ValueError as e:
            if isinstance(e, BadInputError):
                raise
            raise BadInputError(f"meter must look like 4/4 or 6/8, got {text!r}") from e

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True)
class Prompt:
    """The region the DAW (or the user) handed us. Source files are never modified.

    ``tempo_bpm`` and ``meter`` override what the MIDI file says (and are required for audio-only input);
    ``length_beats`` (quarter notes) overrides the region length read from the files; ``start_beats`` is the
    region's position on the DAW timeline when the DAW told it.
    """

    midi_path: Path | None = None
    audio_path: Path | None = None
    tempo_bpm: float | None = None
    meter: Meter | None = None
    length_beats: float | None = None
    start_beats: float | None = None
    # several tracks' audio of the same region, (name, path) per track (drums, bass, keys): continued together with
    # one structure by segue-concat, each returned as a stem beside the mix (``audio_path``, or their sum)
    stems: tuple[tuple[str, Path], ...] = ()

    def __post_init__(self) -> None:
        if self.midi_path is None and self.audio_path is None and not self.stems:
            raise BadInputError("a region needs a MIDI file, an audio file, or both")
        _check_stems(self.stems)
        check_tempo_bpm(self.tempo_bpm)
        check_length_beats(self.length_beats)
        check_start_beats(self.start_beats)


def _in_range(value: object, low: float, high: float, low_open: bool = False) -> bool:
    """A real number (not a bool, not NaN or infinite) in ``low..high``; exact for ints of any size."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return (low < value if low_open else low <= value) and value <= high


def _shown(value: object) -> str:
    """``repr(value)`` cut to 40 characters; a float as OSC's 32 bits make it, to 6 digits (1e+30, not
    1.0000000150474662e+30); a huge int has no repr in Python 3.11: it says so."""
    try:
        text = repr(value)
    except ValueError:
        return "a number too long to show"
    if isinstance(value, float) and len(text) > 12:
        text = f"{value:.6g}"
    return text if len(text) <= 40 else f"{text[:40]}..."


def check_tempo_bpm(value: object) -> None:
    """A tempo in MIN_TEMPO_BPM..MAX_TEMPO_BPM, or None (from the file); :class:`BadInputError` otherwise."""
    if value is not None and not _in_range(value, MIN_TEMPO_BPM, MAX_TEMPO_BPM):
        raise BadInputError(f"tempo must be between {MIN_TEMPO_BPM:g} and {MAX_TEMPO_BPM:g} BPM, got {_shown(value)}")


def check_length_beats(value: object) -> None:
    """A region length in quarter notes, in (0, MAX_REGION_BEATS], or None (from the files)."""
    if value is not None and not _in_range(value, 0.0, MAX_REGION_BEATS, low_open=True):
        raise BadInputError(
            f"region length (length_beats) must be a positive number of beats (quarter notes) up to "
            f"{MAX_REGION_BEATS:g} ({MAX_REGION_BEATS / 4:.0f} bars of 4/4), got {_shown(value)}; "
            "select a shorter region"
        )


def check_start_beats(value: object) -> None:
    """A region's position on the DAW timeline in quarter notes, in 0..MAX_START_BEATS, or None (unknown)."""
    if value is not None and not _in_range(value, 0.0, MAX_START_BEATS):
        raise BadInputError(
            f"region start (start_beats) must be a number of beats (quarter notes) from the timeline's start, in "
            f"0..{MAX_START_BEATS:.0f}, got {_shown(value)}"
        )


MAX_STEMS = 16


def _check_stems(stems: object) -> None:
    if not isinstance(stems, tuple) or any(not (isinstance(s, tuple) and len(s) == 2) for s in stems):
        raise BadInputError(f"stems are (name, path) pairs, e.g. (('drums', 'drums.wav'),), got {stems!r}")
    if len(stems) > MAX_STEMS:
        raise BadInputError(f"at most {MAX_STEMS} stems per region, got {len(stems)}")
    names = [name for name, _ in stems]
    for name, path in stems:
        if not isinstance(name, str) or not _PART_NAME.match(name):
            raise BadInputError(f"a stem name is lowercase letters, digits, '-' or '_' (e.g. drums), got {name!r}")
        if not isinstance(path, (str, Path)) or not str(path):
            raise BadInputError(f"stem {name!r} needs the path of its audio file, got {path!r}")
    if len(set(names)) != len(names):
        raise BadInputError(f"a stem name is given twice in {', '.join(names)}")


@dataclass(frozen=True)
class GenerationParams:
    """How to generate. ``seed=None`` picks a random seed, which is returned on every variant."""

    mode: Mode = "continue"
    bars: int = 4
    variants: int = 4
    temperature: float = 1.0
    top_p: float = 0.95
    seed: int | None = None
    # accompany: the parts to write under the region, by name ("bass", "piano", "alto", ...); () = the model's
    # default set. The model says which names it knows (BadInputError otherwise).
    parts: tuple[str, ...] = ()
    output: Output = "auto"
    # Controls a producer understands. ``None`` means "the engine's default", which is the setting that measured
    # best (see docs/audio-engine.md and docs/symbolic-engine.md); the engine records what it used in job.json.
    # similarity: 1.0 stays close to the region, 0.0 recombines / invents freely (audio and MIDI).
    similarity: float | None = None
    # audio continuation: open the continuation with the region's first bar (a phrase restart) or not.
    keep_opening: bool | None = None
    # MIDI continuation: notes per bar relative to the region's own (1.0 = as dense as the region), for every
    # part, and per part by name ("bass", "piano", ...), which overrides the global value for that part.
    density: float | None = None
    part_density: tuple[tuple[str, float], ...] = ()
    # MIDI continuation: keep the region's note lengths per part (held chords and pads stay held).
    hold_notes: bool | None = None
    # MIDI continuation: end on the region's tonic (a cadence in the last bar).
    end_on_tonic: bool | None = None

    def __post_init__(self) -> None:
        if self.similarity is not None and (
            isinstance(self.similarity, bool)
            or not isinstance(self.similarity, (int, float))
            or not (math.isfinite(self.similarity) and 0.0 <= self.similarity <= 1.0)
        ):
            raise BadInputError(
                f"similarity must be a number in 0..1 (1 = stay close to the region, 0 = free), got {self.similarity!r}"
            )
        for name, flag in (
            ("keep_opening", self.keep_opening),
            ("hold_notes", self.hold_notes),
            ("end_on_tonic", self.end_on_tonic),
        ):
            if flag is not None and not isinstance(flag, bool):
                raise BadInputError(f"{name} must be true or false, got {flag!r}")
        _check_density("density", self.density)
        if not isinstance(self.part_density, tuple):
            raise BadInputError(f"part_density must be a tuple of (part, factor) pairs, got {self.part_density!r}")
        seen: set[str] = set()
        for item in self.part_density:
            if not (
                isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and _PART_NAME.match(item[0])
            ):
                raise BadInputError(f"a part density is (part name, factor), e.g. ('bass', 0.5), got {item!r}")
            if item[0] in seen:
                raise BadInputError(f"the density of part {item[0]!r} is given twice")
            seen.add(item[0])
            _check_density(f"density of {item[0]}", item[1])
        if isinstance(self.parts, str) or not isinstance(self.parts, tuple):
            raise BadInputError(f"parts must be a tuple of part names, got {self.parts!r}")
        if len(self.parts) > MAX_PARTS:
            raise BadInputError(f"at most {MAX_PARTS} parts can be asked for, got {len(self.parts)}")
        for name in self.parts:
            if not isinstance(name, str) or not _PART_NAME.match(name):
                raise BadInputError(
                    f"a part name is lowercase letters, digits, '-' or '_' (e.g. bass, piano), got {name!r}"
                )
        if len(set(self.parts)) != len(self.parts):
            raise BadInputError(f"a part is named twice in {','.join(self.parts)}")
        if self.parts and self.mode != "accompany":
            raise BadInputError("parts are only for --mode accompany (continue keeps the region's own parts)")
        if self.output not in OUTPUTS:
            raise BadInputError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")
        if self.mode not in ("continue", "accompany"):
            raise BadInputError(f"mode must be 'continue' or 'accompany', got {self.mode!r}")
        if isinstance(self.bars, bool) or not isinstance(self.bars, int) or not 1 <= self.bars <= MAX_BARS:
            raise BadInputError(f"bars must be a whole number in 1..{MAX_BARS}, got {self.bars!r}")
        if (
            isinstance(self.variants, bool)
            or not isinstance(self.variants, int)
            or not 1 <= self.variants <= MAX_VARIANTS
        ):
            raise BadInputError(f"variants must be a whole number in 1..{MAX_VARIANTS}, got {self.variants!r}")
        if not (math.isfinite(self.temperature) and 0.05 <= self.temperature <= 3.0):
            raise BadInputError(f"temperature must be in 0.05..3.0, got {self.temperature!r}")
        if not (math.isfinite(self.top_p) and 0.0 < self.top_p <= 1.0):
            raise BadInputError(f"top-p must be in (0, 1], got {self.top_p!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not 0 <= self.seed < 2**63):
            raise BadInputError(f"seed must be a whole number in 0..2**63-1, got {self.seed!r}")


MIN_DENSITY, MAX_DENSITY = 0.25, 4.0


def _check_density(name: str, value: object) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and MIN_DENSITY <= value <= MAX_DENSITY)
    ):
        raise BadInputError(
            f"{name} must be a factor in {MIN_DENSITY}..{MAX_DENSITY} of the region's notes per bar "
            f"(1 = as dense as the region), got {value!r}"
        )


def controls_of(params: GenerationParams) -> dict[str, Any]:
    """The producer's controls of ``params`` as plain JSON values (``part_density`` as an object
    ``{part: factor}``); ``None``: the engine's default. job.json and the HTTP request carry them so."""
    return {
        "similarity": params.similarity,
        "keep_opening": params.keep_opening,
        "density": params.density,
        "part_density": dict(params.part_density),
        "hold_notes": params.hold_notes,
        "end_on_tonic": params.end_on_tonic,
    }


@dataclass(frozen=True)
class GenerationRequest:
    prompt: Prompt
    params: GenerationParams = field(default_factory=GenerationParams)
    model: str = "default"
    sample_rate: int | None = None  # output sample rate; None: the region's, else 44.1 kHz

    def __post_init__(self) -> None:
        if self.prompt.stems and self.params.mode == "accompany":  # the accompany engine reads no stems
            raise BadInputError(
                "stems are continued together (mode continue); to accompany a region, give its mix or its MIDI"
            )


@dataclass(frozen=True)
class RegionInfo:
    """What the engine read from the region: the grid every variant is placed on."""

    tempo_bpm: float
    meter: Meter
    length_beats: float  # quarter notes, a whole number of bars
    length_bars: int
    sample_rate: int
    parts: tuple[str, ...] = ()
    notes: str = ""  # anything the engine adjusted, said plainly (e.g. "tempo changes: used the last, 96 BPM")


@dataclass(frozen=True)
class VariantResult:
    """One generated variant. ``files`` maps a role to a path relative to the job folder.

    Roles: ``midi`` (continuation.mid), ``audio`` (continuation.wav), ``full_midi``, ``full_audio`` and
    ``stem:<part>`` (stems/<part>.wav).
    """

    id: str
    seed: int
    files: Mapping[str, str]
    duration_seconds: float
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenerationResult:
    kind: Kind
    mode: Mode
    model: str
    region: RegionInfo
    place_at_beats: float  # relative to the region's start
    place_at_seconds: float
    variants: tuple[VariantResult, ...]
    timings: Mapping[str, float] = field(default_factory=dict)
    # which engine and model wrote each file role, "<kind>:<model>" (e.g. "audio": "audio:segue-audio-small",
    # "midi": "midi:segue-midi-small"); set when one job mixes engines (a region given as audio and MIDI)
    file_sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: Kind
    path: str
    description: str = ""
    parameters: int = 0
    modes: tuple[Mode, ...] = ("continue",)
    # accompany models: the part names they can write (GenerationParams.parts); () for other models
    parts: tuple[str, ...] = ()


class ProgressCallback(Protocol):
    def __call__(self, fraction: float, message: str) -> None: ...


class CancelToken:
    """Thread-safe cancellation flag that engines poll between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError("cancelled by the user")


@runtime_checkable
class Engine(Protocol):
    """What the bridge and the GUI use, whether the engine runs here or on a server."""

    @property
    def name(self) -> str: ...

    def models(self) -> list[ModelInfo]: ...

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        """Write every variant's files under ``job_dir`` (which exists and is empty of variants)."""
        ...


def to_jsonable(obj: Any) -> Any:
    """Turn the dataclasses of this module into plain JSON values (paths as strings, meters as "4/4")."""
    if isinstance(obj, Meter):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
