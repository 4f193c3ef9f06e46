"""Audio -> MIDI for audio regions: basic-pitch's note model, quantised onto the region's bar grid.

:func:`transcribe_region` reads an audio region (any rate, mono or stereo, through :mod:`engine.audio.audio_io`),
runs basic-pitch's ICASSP 2022 model (the ``nmp.onnx`` file inside the basic-pitch wheel, through onnxruntime;
no TensorFlow, nothing downloaded), decodes note events with basic-pitch's own decoder, and writes a one-track
MIDI file on the region's grid: onsets and ends snapped to 16ths (and 8th-note triplets when the playing asks for
them), notes shorter than half a step dropped, tempo and meter at tick 0, end of track at the region's last bar
line. It says how monophonic and how confident the transcription is; silence, noise or drums alone are a
:class:`BadInputError`; a dense polyphonic mess is a plain note (an error only when nothing usable is left).

Install: ``pip install 'segue[transcribe]'`` and ``pip install --no-deps basic-pitch`` (its metadata demands
TensorFlow on Linux with Python 3.11, which it does not need for the ONNX model).
"""

from __future__ import annotations

import bisect
import contextlib
import importlib.util
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.api import CancelToken, Meter
from engine.audio.audio_io import SILENCE_PEAK, check_audio, probe_audio, read_audio, resample, to_mono
from engine.audio.continuation import BarGrid, locate_region
from engine.errors import BadInputError, EngineError
from engine.symbolic.midifile import Conductor, Note, PartNotes, build_midi, save_midi

log = logging.getLogger(__name__)
Progress = Callable[[float], None]

TICKS_PER_QUARTER = 480
MODEL_SAMPLE_RATE = 22_050  # basic-pitch's input rate
FFT_HOP = 256  # its frame hop: 86.13 frames per second
WINDOW_SAMPLES = MODEL_SAMPLE_RATE * 2 - FFT_HOP  # one model call sees 2 s (43844 samples)
OVERLAP_FRAMES = 30  # windows overlap by 30 frames; half of it is cut from each side
BATCH_WINDOWS = 8
MIDI_OFFSET = 21  # the model's lowest key, A0
ATTACK_FRAMES = 8  # a note's start moves back at most this many frames (93 ms) onto its attack
LEAD_PROGRAM = 73  # GM flute: the lead voice a monophonic line (a vocal, a solo) becomes
LEAD_NAME = "melody"
POLY_PROGRAM = 0  # GM acoustic grand piano, for polyphonic audio
POLY_NAME = "piano"
MISSING = (
    "audio-to-MIDI transcription needs basic-pitch and its runtime: pip install 'segue[transcribe]' and then "
    "pip install --no-deps basic-pitch (or run `make venv`)"
)
NO_PITCHED = (
    "has no pitched content to transcribe ({why}); give a region with a melody, chords or a bass line (drums, "
    "noise and silence cannot become notes), or give the region's MIDI file"
)


@dataclass(frozen=True)
class TranscriptionOptions:
    onset_threshold: float = 0.5  # basic-pitch's defaults
    frame_threshold: float = 0.3
    min_pitch: int = 28  # E1, a bass guitar's lowest string...
    max_pitch: int = 108  # ...to C8, a piano's top key
    max_seconds: float = 600.0  # a longer region: only its last 10 minutes are transcribed
    # a note whose onset is this much closer (as a share of a 16th; at most 1/3) to an 8th-note triplet point than
    # to a 16th counts as a triplet; triplets are used when at least `triplet_share` of the onsets are
    triplet_margin: float = 0.15
    triplet_share: float = 0.3
    min_notes: int = 2  # fewer notes than this (after quantising) is "no pitched content"
    min_confidence: float = 0.3  # a transcription whose mean note activation is below this is noise
    # polyphonic audio is a mess when the model is unsure of its notes (clean piano chords score ~0.53, a
    # semitone cluster ~0.4), when more than 4 notes sound at once on average, or when 30% of the sounding time
    # holds 3+ notes within 3 semitones; a faint transcription with notes sounding less than 10% of the time is
    # noise, not music
    messy_confidence: float = 0.47
    messy_polyphony: float = 4.0
    messy_cluster_share: float = 0.3


@dataclass(frozen=True)
class NoteEvent:
    """A note as the model heard it, in seconds from the region's start; ``amplitude`` is its mean activation."""

    start_seconds: float
    end_seconds: float
    pitch: int
    amplitude: float


@dataclass(frozen=True)
class Transcription:
    """What :func:`transcribe_region` wrote and how much to trust it."""

    midi_path: Path
    tempo_bpm: float
    meter: Meter
    length_bars: int
    program: int
    part_name: str
    note_count: int  # in the MIDI file
    heard_notes: int  # note events the model found in range (before quantising)
    dropped_notes: int  # echoes, shorter than half a grid step, or merged into another on one grid point
    out_of_range_notes: int
    monophonic_fraction: float  # share of notes that sound alone (see _texture)
    mean_polyphony: float  # notes sounding at once, averaged over sounding time
    max_polyphony: int
    confidence: float  # mean activation of the notes kept, 0..1
    cluster_share: float  # share of sounding time with 3+ notes within 3 semitones
    coverage: float  # share of the region's time with a note sounding (first halves of notes)
    grid: str  # "16ths" or "16ths and 8th-note triplets"
    messy: bool
    notes: tuple[str, ...]  # plain words for the manifest
    region_notes: tuple[str, ...] = ()  # how the region's length was read (from engine.audio.continuation)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def length_beats(self) -> float:
        return self.length_bars * self.meter.quarters_per_bar

    @property
    def monophonic(self) -> bool:
        return self.monophonic_fraction >= MONOPHONIC_SHARE

    @property
    def texture(self) -> str:
        if self.monophonic:
            return f"monophonic ({100 * self.monophonic_fraction:.0f}% of the notes alone)"
        return f"polyphonic (up to {self.max_polyphony} notes at once, {self.mean_polyphony:.1f} on average)"

    @property
    def summary(self) -> str:
        return (
            f"transcribed from audio: {self.note_count} notes, {self.texture}, confidence {self.confidence:.2f}, "
            f"quantised to {self.grid} at {self.tempo_bpm:g} BPM in {self.meter}, as {self.part_name} "
            f"(GM program {self.program}); the MIDI is region/transcribed.mid"
        )


# -- the model ------------------------------------------------------------------------------------------------

_session_lock = threading.Lock()
_sessions: dict[str, Any] = {}


@contextlib.contextmanager
def _quiet_import() -> Iterator[None]:
    """basic-pitch logs a warning on the root logger per runtime it lacks (and so configures logging) when it is
    imported, and resampy warns that pkg_resources is deprecated: neither concerns us."""
    root = logging.getLogger()
    sink = logging.NullHandler()
    root.addHandler(sink)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        root.removeHandler(sink)


def model_path() -> Path:
    """The ONNX note model inside the installed basic-pitch package (its package is not imported)."""
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(MISSING)
    path = Path(list(spec.submodule_search_locations)[0]) / "saved_models" / "icassp_2022" / "nmp.onnx"
    if not path.is_file():
        raise EngineError(f"basic-pitch is installed but its model {path} is missing; reinstall it. {MISSING}")
    return path


def _session() -> Any:
    """One onnxruntime session per process (loading costs ~0.1 s; the first run compiles for ~1 s more)."""
    path = str(model_path())
    with _session_lock:
        if path not in _sessions:
            try:
                import onnxruntime as ort
            except ImportError as e:
                raise EngineError(MISSING) from e
            options = ort.SessionOptions()
            threads = int(os.environ.get("SEGUE_THREADS", "0") or 0)
            if threads > 0:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            options.log_severity_level = 3
            _sessions[path] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return _sessions[path]


def _note_creation() -> Any:
    try:
        with _quiet_import():
            from basic_pitch import note_creation
    except ImportError as e:
        raise EngineError(f"{MISSING} ({e.name or e} is missing)") from e
    return note_creation


def model_output(
    mono: npt.NDArray[np.float32], progress: Progress | None = None, cancel: CancelToken | None = None
) -> dict[str, npt.NDArray[np.float32]]:
    """basic-pitch's activations for ``[samples]`` at 22.05 kHz: ``note``, ``onset`` ``[frames, 88]`` and
    ``contour`` ``[frames, 264]``, windowed and unwrapped as basic-pitch's ``run_inference`` does; ``progress``
    gets the share done and ``cancel`` is polled after each batch of windows."""
    session = _session()
    overlap = OVERLAP_FRAMES * FFT_HOP
    hop = WINDOW_SAMPLES - overlap
    padded = np.concatenate([np.zeros(overlap // 2, np.float32), mono.astype(np.float32)])
    starts = list(range(0, padded.shape[0], hop))
    windows = np.zeros((len(starts), WINDOW_SAMPLES, 1), np.float32)
    for i, start in enumerate(starts):
        chunk = padded[start : start + WINDOW_SAMPLES]
        windows[i, : chunk.shape[0], 0] = chunk
    outputs: dict[str, list[npt.NDArray[np.float32]]] = {"note": [], "onset": [], "contour": []}
    names = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0"]
    for b in range(0, len(starts), BATCH_WINDOWS):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(b / len(starts))
        batch = windows[b : b + BATCH_WINDOWS]
        for key, value in zip(("note", "onset", "contour"), session.run(names, {"serving_default_input_2:0": batch}),
                              strict=True):  # fmt: skip
            outputs[key].append(np.asarray(value, np.float32))
    half = OVERLAP_FRAMES // 2
    n_frames = int(math.floor(mono.shape[0] * (MODEL_SAMPLE_RATE // FFT_HOP) / MODEL_SAMPLE_RATE))
    unwrapped = {}
    for key, parts in outputs.items():
        stacked = np.concatenate(parts)[:, half:-half, :]
        unwrapped[key] = stacked.reshape(-1, stacked.shape[2])[:n_frames]
    return unwrapped


def note_events(
    mono: npt.NDArray[np.float32],
    min_note_seconds: float,
    options: TranscriptionOptions,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> list[NoteEvent]:
    """Note events of ``[samples]`` at 22.05 kHz, by basic-pitch's decoder (onsets, then the melodia trick)."""
    output = model_output(mono, progress, cancel)
    creation = _note_creation()
    frames_per_second = MODEL_SAMPLE_RATE / FFT_HOP
    min_frames = max(3, round(min_note_seconds * frames_per_second))
    with np.errstate(divide="ignore", invalid="ignore"):
        events = creation.output_to_notes_polyphonic(
            output["note"].copy(),
            output["onset"].copy(),
            onset_thresh=options.onset_threshold,
            frame_thresh=options.frame_threshold,
            min_note_len=min_frames,
            infer_onsets=True,
            max_freq=None,
            min_freq=None,
            melodia_trick=True,
        )
    if not events:
        return []
    times = creation.model_frames_to_time(output["note"].shape[0] + 1)
    note = output["note"]
    found = []
    previous_end: dict[int, int] = {}  # per pitch: a note never starts before the one before it ended
    for start, end, pitch, amplitude in sorted(events, key=lambda e: (e[2], e[0])):
        floor = previous_end.get(int(pitch), 0)
        previous_end[int(pitch)] = int(end)
        start = _attack_start(note[:, int(pitch) - MIDI_OFFSET], int(start), options.frame_threshold, floor)
        end_seconds = float(times[min(end, len(times) - 1)])
        found.append(NoteEvent(float(times[start]), end_seconds, int(pitch), float(amplitude)))
    return sorted(found, key=lambda n: (n.start_seconds, n.pitch))


def _attack_start(activation: npt.NDArray[np.float32], onset_frame: int, frame_threshold: float, floor: int) -> int:
    """The frame where a note really starts: a slow attack (a voice, a bowed string) already sounds at its pitch
    before the model's onset peak; walk back while the note's own activation holds (at most ~90 ms, never into
    the previous note of that pitch, which ends at ``floor``)."""
    frame = onset_frame
    while frame > max(0, floor) and onset_frame - frame < ATTACK_FRAMES and activation[frame - 1] >= frame_threshold:
        frame -= 1
    return frame


# -- the grid -------------------------------------------------------------------------------------------------


CORE_SHARE = 0.5  # a note's second half may be its release: a legato line's notes overlap only there
FRAGMENT_SECONDS = 0.13  # a note's attack heard alone is this short...
FRAGMENT_GAP_SECONDS = 0.015  # ...and the note follows it within about a frame (11.6 ms)
OVERTONES = (12, 19, 24)  # semitones above a note where the model hears its 2nd, 3rd and 4th harmonics
MAX_LATENCY_SECONDS = 0.05
MONOPHONIC_SHARE = 0.85  # this share of the notes sound alone: a monophonic line


def drop_echoes(events: list[NoteEvent], overtones: bool = False) -> tuple[list[NoteEvent], int]:
    """Drop faint short notes that start with a much stronger, longer one (attack noise the model hears as
    notes, a note's release heard again at the next onset); with ``overtones``, also a weaker note an octave, a
    twelfth or two octaves above a note that starts with it and outlasts it (a bass's overtones); (kept, dropped)."""
    events = sorted(events, key=lambda n: n.start_seconds)
    starts = [n.start_seconds for n in events]
    kept = []
    for e in events:
        lo, hi = bisect.bisect_left(starts, e.start_seconds - 0.1), bisect.bisect_right(starts, e.start_seconds + 0.1)
        near = events[lo:hi]
        echo = any(
            f is not e
            and (
                (e.amplitude < 0.65 * f.amplitude
                 and (e.end_seconds - e.start_seconds) < 0.5 * (f.end_seconds - f.start_seconds))
                or (overtones and e.pitch - f.pitch in OVERTONES and e.amplitude < 0.75 * f.amplitude
                    and e.end_seconds <= f.end_seconds + 0.05)
            )
            for f in near
        )  # fmt: skip
        if not echo:
            kept.append(e)
    return kept, len(events) - len(kept)


def join_fragments(events: list[NoteEvent]) -> tuple[list[NoteEvent], int]:
    """A slow attack (a voice, a bowed string) is often heard as a short fragment and then the note again at the
    same pitch right where the fragment ends: one note. (joined events, fragments merged)"""
    by_pitch: dict[int, list[NoteEvent]] = {}
    for e in sorted(events, key=lambda n: n.start_seconds):
        line = by_pitch.setdefault(e.pitch, [])
        if line:
            prev = line[-1]
            short = prev.end_seconds - prev.start_seconds <= FRAGMENT_SECONDS
            if short and 0.0 <= e.start_seconds - prev.end_seconds <= FRAGMENT_GAP_SECONDS:
                line[-1] = NoteEvent(prev.start_seconds, e.end_seconds, e.pitch, max(prev.amplitude, e.amplitude))
                continue
        line.append(e)
    joined = sorted((e for line in by_pitch.values() for e in line), key=lambda n: (n.start_seconds, n.pitch))
    return joined, len(events) - len(joined)


def _texture(events: list[NoteEvent], seconds: float) -> tuple[float, float, int, float, float]:
    """(share of notes that sound alone, mean notes at once, most at once, share of sounding time with a 3-note
    cluster, share of the region's time with a note sounding).

    A note sounds alone when no other note sounds during its first half; the counts are taken on a 10 ms raster
    of the notes' first halves, and a cluster is 3+ notes within 3 semitones sounding together."""
    if not events:
        return 0.0, 0.0, 0, 0.0, 0.0
    steps = max(1, math.ceil(seconds * 100))
    active = np.zeros((steps, 128), bool)
    cores = []
    for n in events:
        core_end = n.start_seconds + max(0.05, CORE_SHARE * (n.end_seconds - n.start_seconds))
        a = min(steps - 1, max(0, int(n.start_seconds * 100)))
        b = min(steps, max(a + 1, int(core_end * 100)))
        active[a:b, n.pitch] = True
        cores.append((a, b))
    counts: npt.NDArray[np.int64] = active.sum(axis=1)
    alone = sum(int(counts[a:b].max()) <= 1 for a, b in cores)
    sounding: npt.NDArray[np.bool_] = np.asarray(counts > 0)
    if not sounding.any():
        return alone / len(events), 0.0, 0, 0.0, 0.0
    cluster_counts = np.zeros((steps, 125), np.int32)
    for shift in range(4):
        cluster_counts += active[:, shift : 125 + shift]
    clustered: npt.NDArray[np.bool_] = np.asarray((cluster_counts >= 3).any(axis=1))
    return (
        alone / len(events),
        float(np.mean(counts[sounding])),
        int(counts.max()),
        float(np.mean(clustered[sounding])),
        float(np.mean(sounding)),
    )


def _snap(beats: float, use_triplets: bool) -> tuple[int, bool]:
    """(tick, on a triplet) of the grid point nearest to ``beats``: 16ths, or when triplets are in use, the
    nearest of the 16ths and the 8th-note triplets (a tie goes to the 16th)."""
    sixteenth = TICKS_PER_QUARTER // 4
    triplet = TICKS_PER_QUARTER // 3
    tick = beats * TICKS_PER_QUARTER
    straight = round(tick / sixteenth) * sixteenth
    if not use_triplets:
        return int(straight), False
    swung = round(tick / triplet) * triplet
    if abs(tick - swung) < abs(tick - straight):
        return int(swung), swung % sixteenth != 0
    return int(straight), False


def _grid_errors(onsets_beats: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Distances (beats) of each onset to the nearest 16th and the nearest 8th-note triplet point."""
    e16 = np.abs(onsets_beats - np.round(onsets_beats * 4) / 4)
    e3 = np.abs(onsets_beats - np.round(onsets_beats * 3) / 3)
    return e16, e3


def fit_grid(onsets_seconds: list[float], grid: BarGrid, options: TranscriptionOptions) -> tuple[float, bool]:
    """(latency in seconds, use triplets): how late the model hears the onsets (a soft attack is heard up to
    ~50 ms late; the shift that puts the onsets nearest the grid), and whether enough onsets sit clearly nearer
    an 8th-note triplet point than a 16th. Compound meters (6/8, 9/8, 12/8) split their beat in three on the
    16th grid already, so they never use triplets."""
    if not onsets_seconds:
        return 0.0, False
    beats_per_second = grid.tempo_bpm / 60.0
    onsets = np.asarray(onsets_seconds, np.float64)
    lags = np.arange(0.0, MAX_LATENCY_SECONDS + 1e-9, 0.005)
    straight, mixed = [], []
    for lag in lags:
        e16, e3 = _grid_errors((onsets - lag) * beats_per_second)
        straight.append(float(np.mean(e16)))
        mixed.append(float(np.mean(np.minimum(e16, e3))))
    lag_straight = float(lags[int(np.argmin(straight))])
    compound = grid.meter.denominator == 8 and grid.meter.numerator % 3 == 0
    if compound or len(onsets) < 2:
        return lag_straight, False
    lag_mixed = float(lags[int(np.argmin(mixed))])
    e16, e3 = _grid_errors((onsets - lag_mixed) * beats_per_second)
    near = int(np.sum(e16 - e3 >= options.triplet_margin * 0.25 - 1e-9))
    triplets = near >= max(2, options.triplet_share * len(onsets)) and min(mixed) < 0.6 * min(straight)
    return (lag_mixed, True) if triplets else (lag_straight, False)


def _velocity(mono: npt.NDArray[np.float32], start_seconds: float, loudest_rms: float) -> int:
    a = int(start_seconds * MODEL_SAMPLE_RATE)
    chunk = mono[a : a + int(0.06 * MODEL_SAMPLE_RATE)]
    rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64)))) if chunk.size else 0.0
    level_db = 20 * math.log10(max(rms, 1e-9) / max(loudest_rms, 1e-9))
    return int(np.clip(round(112 + 1.6 * level_db), 24, 127))


def quantise(
    events: list[NoteEvent],
    grid: BarGrid,
    end_tick: int,
    mono: npt.NDArray[np.float32] | None,
    options: TranscriptionOptions,
    monophonic: bool,
) -> tuple[list[Note], str, int, float]:
    """(notes on the grid, the grid's name, notes dropped, latency corrected in seconds): onsets and ends
    snapped, notes shorter than half a step dropped, a note shorter than a step lengthened to one, same-pitch
    overlaps cut; a monophonic line is made strictly one note at a time (each note ends where the next begins)."""
    beats_per_second = grid.tempo_bpm / 60.0
    latency, use_triplets = fit_grid([e.start_seconds for e in events], grid, options)
    events = [NoteEvent(e.start_seconds - latency, e.end_seconds - latency, e.pitch, e.amplitude) for e in events]
    step = TICKS_PER_QUARTER // 4
    loudest = 0.0
    if mono is not None and events:
        loudest = max(
            float(np.sqrt(np.mean(np.square(mono[int(e.start_seconds * MODEL_SAMPLE_RATE) :][: int(0.06 *
                  MODEL_SAMPLE_RATE)], dtype=np.float64)))) if mono.size else 0.0 for e in events
        )  # fmt: skip
    placed: dict[tuple[int, int], Note] = {}
    dropped = 0
    for e in events:
        start, start_triplet = _snap(e.start_seconds * beats_per_second, use_triplets)
        end, end_triplet = _snap(e.end_seconds * beats_per_second, use_triplets)
        this_step = TICKS_PER_QUARTER // 3 if (start_triplet or end_triplet) else step
        raw_ticks = (e.end_seconds - e.start_seconds) * beats_per_second * TICKS_PER_QUARTER
        if raw_ticks < 0.5 * this_step or start >= end_tick:
            dropped += 1
            continue
        end = min(max(end, start + this_step), end_tick)
        velocity = _velocity(mono, e.start_seconds, loudest) if mono is not None else round(127 * e.amplitude)
        key = (start, e.pitch)
        if key in placed:  # two events on one grid point: one note, the longer and louder
            dropped += 1
            old = placed[key]
            placed[key] = Note(start, max(old.duration, end - start), e.pitch, max(old.velocity, velocity))
            continue
        placed[key] = Note(start, end - start, e.pitch, velocity)
    notes = sorted(placed.values(), key=lambda n: (n.start, n.pitch))
    # same pitch: a note ends where the next one of that pitch starts
    last_of_pitch: dict[int, int] = {}
    trimmed: list[Note] = list(notes)
    for i, n in enumerate(trimmed):
        j = last_of_pitch.get(n.pitch)
        if j is not None:
            prev = trimmed[j]
            if prev.start + prev.duration > n.start:
                trimmed[j] = Note(prev.start, n.start - prev.start, prev.pitch, prev.velocity)
        last_of_pitch[n.pitch] = i
    if monophonic:  # one voice: the strongest note wins an onset; each note ends where the next begins
        by_start: dict[int, Note] = {}
        for n in trimmed:
            held = by_start.get(n.start)
            if held is None or n.velocity * n.duration > held.velocity * held.duration:
                if held is not None:
                    dropped += 1
                by_start[n.start] = n
            else:
                dropped += 1
        line = [by_start[s] for s in sorted(by_start)]
        trimmed = [
            Note(n.start, min(n.duration, line[i + 1].start - n.start) if i + 1 < len(line) else n.duration,
                 n.pitch, n.velocity)
            for i, n in enumerate(line)
        ]  # fmt: skip
    grid_name = "16ths and 8th-note triplets" if use_triplets else "16ths"
    return [n for n in trimmed if n.duration > 0], grid_name, dropped, latency


# -- the region -----------------------------------------------------------------------------------------------


def transcribe_region(
    audio_path: Path,
    tempo_bpm: float,
    meter: Meter,
    length_beats: float | None,
    midi_out: Path,
    options: TranscriptionOptions | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Transcription:
    """Transcribe the audio region ``audio_path`` (its first sample on a bar line) to a one-part MIDI file at
    ``midi_out`` (written atomically, never over an existing file) on the grid of ``tempo_bpm`` and ``meter``.

    ``length_beats`` (quarter notes, from the DAW) is the region's length; None: the audio's, rounded to whole
    bars as the audio engine rounds it. :class:`BadInputError` when the audio is unreadable, silent, or holds no
    pitched content; :class:`EngineError` when basic-pitch is not installed. ``progress`` gets the share of the
    model's work done (0..1); ``cancel`` stops it (:class:`CancelledError`) between batches of 8 windows (16 s).
    """
    options = options or TranscriptionOptions()
    started = time.perf_counter()
    audio_path = Path(audio_path)
    if midi_out.exists():
        raise EngineError(f"{midi_out} already exists; Segue never overwrites files")
    info = probe_audio(audio_path)
    grid = BarGrid(float(tempo_bpm), meter)
    bars, seam, region_notes = locate_region(info, grid, length_beats)
    stop = min(seam, info.frames)
    start = max(0, stop - int(options.max_seconds * info.sample_rate))
    notes: list[str] = []
    if start > 0:
        notes.append(f"the audio is long: only its last {options.max_seconds:.0f} s were transcribed")
    audio = read_audio(audio_path, start, stop, info)
    if bool(np.isfinite(audio).all()) and float(np.max(np.abs(audio), initial=0.0)) < SILENCE_PEAK:
        raise BadInputError(f"{audio_path} " + NO_PITCHED.format(why="it is silent"))
    notes.extend(check_audio(audio, audio_path, info.sample_rate).notes)
    mono = resample(to_mono(audio), info.sample_rate, MODEL_SAMPLE_RATE)
    timings = {"read_seconds": time.perf_counter() - started}

    t0 = time.perf_counter()
    sixteenth_seconds = grid.beat_seconds * meter.denominator / 16
    heard = note_events(mono, min(0.1277, 0.6 * sixteenth_seconds), options, progress, cancel)
    offset = start / info.sample_rate
    heard = [NoteEvent(e.start_seconds + offset, e.end_seconds + offset, e.pitch, e.amplitude) for e in heard]
    timings["model_seconds"] = time.perf_counter() - t0
    in_range = [e for e in heard if options.min_pitch <= e.pitch <= options.max_pitch]
    out_of_range = len(heard) - len(in_range)
    if out_of_range:
        notes.append(f"{out_of_range} note(s) outside MIDI {options.min_pitch}..{options.max_pitch} were left out")

    seconds = seam / info.sample_rate
    in_range, fragments = join_fragments(in_range)
    in_range, echoes = drop_echoes(in_range)
    echoes += fragments
    line, more = drop_echoes(in_range, overtones=True)
    if more and _texture(line, seconds)[0] >= MONOPHONIC_SHARE:  # a single line once its overtones are gone
        in_range, echoes = line, echoes + more
    mono_share, mean_poly, max_poly, cluster_share, coverage = _texture(in_range, seconds)
    confidence = float(np.mean([e.amplitude for e in in_range])) if in_range else 0.0
    if len(in_range) < options.min_notes:
        why = "the model heard no notes" if not in_range else f"the model heard only {len(in_range)} note"
        raise BadInputError(f"{audio_path} " + NO_PITCHED.format(why=why))
    if confidence < options.min_confidence or (coverage < 0.1 and confidence < options.messy_confidence):
        raise BadInputError(
            f"{audio_path} " + NO_PITCHED.format(
                why=f"the {len(in_range)} notes the model heard are faint guesses, confidence {confidence:.2f}")
        )  # fmt: skip
    monophonic = mono_share >= MONOPHONIC_SHARE
    end_tick = round(bars * meter.quarters_per_bar * TICKS_PER_QUARTER)
    mono_for_velocity = mono if start == 0 else None  # (a long region's tail: velocities from the model's amplitude)
    quantised, grid_name, dropped, latency = quantise(in_range, grid, end_tick, mono_for_velocity, options, monophonic)
    if len(quantised) < options.min_notes:
        raise BadInputError(
            f"{audio_path} " + NO_PITCHED.format(why=f"no notes last a 16th at {tempo_bpm:g} BPM")
        )
    messy = not monophonic and (
        mean_poly > options.messy_polyphony
        or cluster_share > options.messy_cluster_share
        or confidence < options.messy_confidence
    )
    if messy:
        notes.append(
            f"the audio is densely polyphonic and transcribes to a mess (confidence {confidence:.2f}, "
            f"{mean_poly:.1f} notes at once on average"
            + (f", {100 * cluster_share:.0f}% of the time 3+ notes within 3 semitones" if cluster_share else "")
            + "): the MIDI and its continuation are rough; a single melody or a cleaner mix transcribes far better"
        )
    if latency >= 0.015:
        notes.append(
            f"the notes were heard {1000 * latency:.0f} ms late (soft attacks, or audio starting late) and were "
            "moved onto the grid"
        )
    dropped += echoes
    if dropped:
        notes.append(
            f"{dropped} note(s) were dropped or joined: a note's attack heard apart from it, faint echoes or "
            "overtones of stronger notes, shorter than half a grid step, or doubled on one grid point"
        )
    program, name = (LEAD_PROGRAM, LEAD_NAME) if monophonic else (POLY_PROGRAM, POLY_NAME)
    conductor = Conductor(tempos=((0, float(tempo_bpm)),), meters=((0, meter),))
    part = PartNotes(name, program, tuple(quantised))
    save_midi(build_midi(TICKS_PER_QUARTER, conductor, [part], end_tick), midi_out)
    timings["transcribe_seconds"] = time.perf_counter() - started
    result = Transcription(
        midi_path=midi_out,
        tempo_bpm=float(tempo_bpm),
        meter=meter,
        length_bars=bars,
        program=program,
        part_name=name,
        note_count=len(quantised),
        heard_notes=len(in_range),
        dropped_notes=dropped,
        out_of_range_notes=out_of_range,
        monophonic_fraction=mono_share,
        mean_polyphony=mean_poly,
        max_polyphony=max_poly,
        confidence=confidence,
        cluster_share=cluster_share,
        coverage=coverage,
        grid=grid_name,
        messy=messy,
        notes=tuple(notes),
        region_notes=region_notes,
        timings=timings,
    )
    log.info("%s: %s", audio_path, result.summary)
    return result
