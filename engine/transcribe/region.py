"""Audio -> MIDI for audio regions: basic-pitch's note model, quantised onto the region's bar grid.

:func:`transcribe_region` reads an audio region (any rate, mono or stereo, through :mod:`engine.audio.audio_io`),
runs basic-pitch's ICASSP 2022 model (the ``nmp.onnx`` file inside the basic-pitch wheel, through onnxruntime;
no TensorFlow, nothing downloaded), decodes note events with basic-pitch's own decoder, and writes a one-track
MIDI file on the region's grid: onsets and ends snapped to 16ths (and 8th-note triplets when the playing asks for
them), notes shorter than half a step dropped, tempo and meter at tick 0, end of track at the region's last bar
line (the clean-up and the grid: :mod:`engine.transcribe.grid`). It says how monophonic and how confident the
transcription is; silence, noise or drums alone are a :class:`BadInputError`; a dense polyphonic mess is a plain
note (an error only when nothing usable is left).

Install: ``pip install 'segue[transcribe]'`` and ``pip install --no-deps basic-pitch`` (its metadata demands
TensorFlow on Linux with Python 3.11, which it does not need for the ONNX model).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
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
from engine.audio.audio_io import SILENCE_PEAK, AudioInfo, check_audio, probe_audio, read_audio, resample, to_mono
from engine.audio.continuation import BarGrid, locate_region
from engine.errors import BadInputError, EngineError
from engine.midi_io import Conductor, PartNotes, build_midi, save_midi
from engine.transcribe.grid import (
    MODEL_SAMPLE_RATE,
    MONOPHONIC_SHARE,
    TICKS_PER_QUARTER,
    NoteEvent,
    TranscriptionOptions,
    drop_echoes,
    drop_ghosts,
    join_fragments,
    quantise,
    texture,
)

log = logging.getLogger(__name__)
Progress = Callable[[float], None]
Activations = dict[str, npt.NDArray[np.float32]]
# runs the model on [samples] at 22.05 kHz: model_output, or a stand-in a test hands to transcribe_region
ModelRunner = Callable[[npt.NDArray[np.float32], "Progress | None", "CancelToken | None"], Activations]

FFT_HOP = 256  # its frame hop: 86.13 frames per second
WINDOW_SAMPLES = MODEL_SAMPLE_RATE * 2 - FFT_HOP  # one model call sees 2 s (43844 samples)
OVERLAP_FRAMES = 30  # windows overlap by 30 frames; half of it is cut from each side
BATCH_WINDOWS = 8
MIDI_OFFSET = 21  # the model's lowest key, A0
ATTACK_FRAMES = 8  # a note's start moves back at most this many frames (93 ms) onto its attack
INFER_FRAMES = 2  # basic-pitch infers an onset from a rise over 1 and 2 frames
BLEED_KEYS = 2  # an attack's onset bleeds into the keys up to a whole tone away...
BLEED_FRAMES = 2  # ...within two frames either side
BLEED_SHARE = 0.85  # bleed is under this share of the attack it comes from (0.55-0.61; 0.76 at most perturbed)
BLEED_RISE = 0.15  # and sits on a key whose activation rises less than this over +-2 frames (a new note: ~0.5)
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
    monophonic_fraction: float  # share of the sounding time with one note (see engine.transcribe.grid.texture)
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
            return f"monophonic (one note at a time {100 * self.monophonic_fraction:.0f}% of the time)"
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
_sessions: dict[tuple[str, int], Any] = {}


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


def _session(threads: int = 0) -> Any:
    """One onnxruntime session per process and thread count (loading costs ~0.1 s; the first run compiles for
    ~1 s more). ``threads``: intra-op threads, 0 for onnxruntime's default."""
    path = str(model_path())
    key = (path, max(threads, 0))
    with _session_lock:
        if key not in _sessions:
            try:
                import onnxruntime as ort
            except ImportError as e:
                raise EngineError(MISSING) from e
            options = ort.SessionOptions()
            if threads > 0:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            options.log_severity_level = 3
            _sessions[key] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return _sessions[key]


def _note_creation() -> Any:
    try:
        with _quiet_import():
            from basic_pitch import note_creation
    except ImportError as e:
        raise EngineError(f"{MISSING} ({e.name or e} is missing)") from e
    return note_creation


def model_output(
    mono: npt.NDArray[np.float32],
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    threads: int = 0,
) -> dict[str, npt.NDArray[np.float32]]:
    """basic-pitch's activations for ``[samples]`` at 22.05 kHz: ``note``, ``onset`` ``[frames, 88]`` and
    ``contour`` ``[frames, 264]``, windowed and unwrapped as basic-pitch's ``run_inference`` does; ``progress``
    gets the share done and ``cancel`` is polled after each batch of windows; ``threads``: onnxruntime's (0: its
    default)."""
    session = _session(threads)
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


def onset_support(
    onset: npt.NDArray[np.float32], note: npt.NDArray[np.float32], frame_threshold: float, creation: Any
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(the model's onsets without bleed, the onsets for the decoder: those and basic-pitch's onsets inferred from
    jumps in the note activation where a note appears).

    Bleed: one attack's onset spills into the keys beside it. An onset within ``BLEED_KEYS`` and ``BLEED_FRAMES``
    of one it is under ``BLEED_SHARE`` of, on a key whose own note activation does not rise there (it is sounding
    already and fading: the attack is its neighbour's), is zeroed. basic-pitch's decoder walks the onsets backwards
    in time and a note takes the keys beside it, so such a bleed (0.53 to 0.57 where the attack beside it scored
    0.94 to 0.97, on a rendered piano melody) one frame after the real attack took the real note's key away or
    re-struck the fading note, and a change in the third decimal (as between CPUs' kernels) decided whether it
    crossed the 0.5 onset threshold. A new note's activation rises by ~0.5 over its onset, a fading one's falls:
    ``BLEED_RISE`` is far from both. A chord tone re-struck with a neighbour's attack rises less, but its onset is
    as strong as the neighbour's (0.93-0.98): ``BLEED_SHARE`` keeps it.

    Inferred onsets count only where the note's activation two frames before is under ``frame_threshold``:
    basic-pitch scales the jumps to the strongest onset, and a held chord tone's activation wobbling up by 0.15 in
    one frame scored 0.88."""
    from scipy.ndimage import maximum_filter

    around = np.ones((2 * BLEED_FRAMES + 1, 2 * BLEED_KEYS + 1), bool)
    around[:, BLEED_KEYS] = False  # the neighbouring keys only
    neighbours = maximum_filter(onset, footprint=around, mode="constant", cval=0.0)
    later = np.concatenate([note[BLEED_FRAMES:], np.repeat(note[-1:], BLEED_FRAMES, axis=0)])
    earlier = np.concatenate([np.repeat(note[:1], BLEED_FRAMES, axis=0), note[:-BLEED_FRAMES]])
    bleed = (onset < BLEED_SHARE * neighbours) & (later - earlier < BLEED_RISE)
    quiet = np.where(bleed, np.float32(0.0), onset).astype(np.float32)
    before = np.concatenate([np.zeros((INFER_FRAMES, note.shape[1]), np.float32), note[:-INFER_FRAMES]])
    inferred = np.asarray(creation.get_infered_onsets(quiet, note, n_diff=INFER_FRAMES), np.float32)
    return quiet, np.where(before < frame_threshold, inferred, quiet).astype(np.float32)


def onset_peaks(support: npt.NDArray[np.float32], min_frames: int) -> npt.NDArray[np.float32]:
    """``support`` with only its peaks left: the frames that are the highest on their key within ``min_frames``
    either side, the first frame of a flat top. Two onsets on one key closer than the shortest note kept are one
    attack (the decoder, walking back in time, let a noise-born second peak a few frames after a re-struck chord
    tone end that note before it reached its shortest length, and the re-strike was lost), and basic-pitch's peak
    picking needs a strict maximum (two saturated frames in a row were no onset at all)."""
    from scipy.ndimage import maximum_filter1d

    highest = maximum_filter1d(support, size=2 * min_frames + 1, axis=0, mode="constant", cval=0.0)
    peak = (support >= highest) & (support > 0)
    peak[1:] &= ~peak[:-1]  # a flat top (a saturated onset: 1.0 twice) is one peak, at its first frame
    return np.where(peak, support, np.float32(0.0)).astype(np.float32)


def note_events(
    mono: npt.NDArray[np.float32],
    min_note_seconds: float,
    options: TranscriptionOptions,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    model: ModelRunner | None = None,
) -> list[NoteEvent]:
    """Note events of ``[samples]`` at 22.05 kHz, by basic-pitch's decoder (onsets, then the melodia trick) on the
    activations of ``model`` (default :func:`model_output`), its onsets cleaned (:func:`onset_support`,
    :func:`onset_peaks`); each event carries the model's support for it: its mean and peak note activation and its
    own onset activation (without bleed; basic-pitch's inferred onsets start notes but are no witness)."""
    output = model(mono, progress, cancel) if model else model_output(mono, progress, cancel, options.threads)
    creation = _note_creation()
    frames_per_second = MODEL_SAMPLE_RATE / FFT_HOP
    min_frames = max(3, round(min_note_seconds * frames_per_second))
    note = np.asarray(output["note"], np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        onset, decoded = onset_support(np.asarray(output["onset"], np.float32), note, options.frame_threshold, creation)
        events = creation.output_to_notes_polyphonic(
            note.copy(),
            onset_peaks(decoded, min_frames),
            onset_thresh=options.onset_threshold,
            frame_thresh=options.frame_threshold,
            min_note_len=min_frames,
            infer_onsets=False,  # inferred in onset_support
            max_freq=None,
            min_freq=None,
            melodia_trick=True,
        )
    if not events:
        return []
    times = creation.model_frames_to_time(note.shape[0] + 1)
    found = []
    previous_end: dict[int, int] = {}  # per pitch: a note never starts before the one before it ended
    for start, end, pitch, amplitude in sorted(events, key=lambda e: (e[2], e[0])):
        key = int(pitch) - MIDI_OFFSET
        floor = previous_end.get(int(pitch), 0)
        previous_end[int(pitch)] = int(end)
        struck = float(onset[max(0, int(start) - BLEED_FRAMES) : int(start) + BLEED_FRAMES + 1, key].max())
        peak = float(note[int(start) : max(int(end), int(start) + 1), key].max())
        start = _attack_start(note[:, key], int(start), options.frame_threshold, floor)
        end_seconds = float(times[min(end, len(times) - 1)])
        found.append(NoteEvent(float(times[start]), end_seconds, int(pitch), float(amplitude), peak, struck))
    return sorted(found, key=lambda n: (n.start_seconds, n.pitch))


def _attack_start(activation: npt.NDArray[np.float32], onset_frame: int, frame_threshold: float, floor: int) -> int:
    """The frame where a note really starts: a slow attack (a voice, a bowed string) already sounds at its pitch
    before the model's onset peak. Walk back over the rise into the onset (the activation over 3 frames falling as
    we go back; at most ~90 ms, never into the previous note of that pitch, which ends at ``floor``) to its
    trough, and start where the activation has risen ``frame_threshold`` above it: for a note out of silence where
    it crosses about the frame threshold; for one struck while that pitch still rings (its trough is the release
    of the note before), where it rises clear of that release (walking back over the release to a fixed threshold
    put such notes 70-90 ms early, on the midpoint between two 16ths)."""
    offset = max(0, onset_frame - ATTACK_FRAMES - 2)
    smooth = np.convolve(activation[offset : onset_frame + 2], np.ones(3) / 3, "same")
    frame = onset_frame
    while (
        frame > max(0, floor)
        and onset_frame - frame < ATTACK_FRAMES
        and smooth[frame - 1 - offset] <= smooth[frame - offset]
    ):
        frame -= 1
    level = float(activation[frame]) + frame_threshold
    while frame < onset_frame and activation[frame] < level:
        frame += 1
    return frame


# -- the region -----------------------------------------------------------------------------------------------


def _clean_up(events: list[NoteEvent], options: TranscriptionOptions, seconds: float) -> tuple[list[NoteEvent], int]:
    """The note events less a slow attack's split-off start, faint ghosts and echoes (and a single line's
    overtones, when removing them leaves a line): (the events kept, how many were joined or dropped)."""
    events, fragments = join_fragments(events, options.onset_threshold)
    events, ghosts = drop_ghosts(events, options.onset_threshold)
    events, echoes = drop_echoes(events)
    echoes += fragments + ghosts
    line, more = drop_echoes(events, overtones=True)
    if more and texture(line, seconds)[0] >= MONOPHONIC_SHARE:  # a single line once its overtones are gone
        events, echoes = line, echoes + more
    return events, echoes


def _what_was_adjusted(
    messy: bool, confidence: float, mean_poly: float, cluster_share: float, latency: float, dropped: int
) -> list[str]:
    """The transcription's notes for the manifest: a messy polyphonic result, late notes moved, notes dropped."""
    notes = []
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
    if dropped:
        notes.append(
            f"{dropped} note(s) were dropped or joined: a note's attack heard apart from it, faint echoes or "
            "overtones of stronger notes, shorter than half a grid step, or doubled on one grid point"
        )
    return notes


def _model_input(audio_path: Path, info: AudioInfo, start: int, stop: int, notes: list[str]) -> npt.NDArray[np.float32]:
    """Frames ``start:stop`` of the region, mono at the model's rate; what the audio check says joins ``notes``.
    :class:`BadInputError` when they are silent."""
    audio = read_audio(audio_path, start, stop, info)
    if bool(np.isfinite(audio).all()) and float(np.max(np.abs(audio), initial=0.0)) < SILENCE_PEAK:
        raise BadInputError(f"{audio_path} " + NO_PITCHED.format(why="it is silent"))
    notes.extend(check_audio(audio, audio_path, info.sample_rate).notes)
    return resample(to_mono(audio), info.sample_rate, MODEL_SAMPLE_RATE)


def _refuse_unpitched(
    audio_path: Path, heard: int, confidence: float, coverage: float, options: TranscriptionOptions
) -> None:
    """:class:`BadInputError` when the model heard too few notes, or only faint guesses."""
    if heard < options.min_notes:
        why = "the model heard no notes" if not heard else f"the model heard only {heard} note"
        raise BadInputError(f"{audio_path} " + NO_PITCHED.format(why=why))
    if confidence < options.min_confidence or (coverage < 0.1 and confidence < options.messy_confidence):
        raise BadInputError(
            f"{audio_path} " + NO_PITCHED.format(
                why=f"the {heard} notes the model heard are faint guesses, confidence {confidence:.2f}")
        )  # fmt: skip


def transcribe_region(
    audio_path: Path,
    tempo_bpm: float,
    meter: Meter,
    length_beats: float | None,
    midi_out: Path,
    options: TranscriptionOptions | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    model: ModelRunner | None = None,
) -> Transcription:
    """Transcribe the audio region ``audio_path`` (its first sample on a bar line) to a one-part MIDI file at
    ``midi_out`` (written atomically, never over an existing file) on the grid of ``tempo_bpm`` and ``meter``.

    ``length_beats`` (quarter notes, from the DAW) is the region's length; None: the audio's, rounded to whole
    bars as the audio engine rounds it. :class:`BadInputError` when the audio is unreadable, silent, or holds no
    pitched content; :class:`EngineError` when basic-pitch is not installed. ``progress`` gets the share of the
    model's work done (0..1); ``cancel`` stops it (:class:`CancelledError`) between batches of 8 windows (16 s).
    ``model`` runs the model (default :func:`model_output`; tests hand in a stand-in that perturbs its output).
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
    mono = _model_input(audio_path, info, start, stop, notes)
    timings = {"read_seconds": time.perf_counter() - started}

    t0 = time.perf_counter()
    sixteenth_seconds = grid.beat_seconds * meter.denominator / 16
    heard = note_events(mono, min(0.1277, 0.6 * sixteenth_seconds), options, progress, cancel, model)
    offset = start / info.sample_rate
    heard = [e.shifted(offset) for e in heard]
    timings["model_seconds"] = time.perf_counter() - t0
    in_range = [e for e in heard if options.min_pitch <= e.pitch <= options.max_pitch]
    out_of_range = len(heard) - len(in_range)
    if out_of_range:
        notes.append(f"{out_of_range} note(s) outside MIDI {options.min_pitch}..{options.max_pitch} were left out")

    seconds = seam / info.sample_rate
    in_range, echoes = _clean_up(in_range, options, seconds)
    mono_share, mean_poly, max_poly, cluster_share, coverage = texture(in_range, seconds)
    confidence = float(np.mean([e.amplitude for e in in_range])) if in_range else 0.0
    _refuse_unpitched(audio_path, len(in_range), confidence, coverage, options)
    monophonic = mono_share >= MONOPHONIC_SHARE
    end_tick = round(bars * meter.quarters_per_bar * TICKS_PER_QUARTER)
    mono_for_velocity = mono if start == 0 else None  # (a long region's tail: velocities from the model's amplitude)
    quantised, grid_name, dropped, latency = quantise(in_range, grid, end_tick, mono_for_velocity, options, monophonic)
    if len(quantised) < options.min_notes:
        raise BadInputError(f"{audio_path} " + NO_PITCHED.format(why=f"no notes last a 16th at {tempo_bpm:g} BPM"))
    messy = not monophonic and (
        mean_poly > options.messy_polyphony
        or cluster_share > options.messy_cluster_share
        or confidence < options.messy_confidence
    )
    dropped += echoes
    notes += _what_was_adjusted(messy, confidence, mean_poly, cluster_share, latency, dropped)
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
