"""Audio -> MIDI for audio regions: basic-pitch's note model, quantised onto the region's bar grid.

:func:`transcribe_region` reads an audio region (any rate, mono or stereo, through :mod:`engine.audio.audio_io`),
runs basic-pitch's ICASSP 2022 model (the ``nmp.onnx`` file inside the basic-pitch wheel, through onnxruntime;
no TensorFlow, nothing downloaded), decodes note events with basic-pitch's own decoder (both:
:mod:`engine.transcribe.model`), and writes a one-track
MIDI file on the region's grid: onsets and ends snapped to 16ths (and 8th-note triplets when the playing asks for
them), notes shorter than half a step dropped, tempo and meter at tick 0, end of track at the region's last bar
line (the clean-up and the grid: :mod:`engine.transcribe.grid`). It says how monophonic and how confident the
transcription is; silence, noise or drums alone are a :class:`BadInputError`; a dense polyphonic mess is a plain
note (an error only when nothing usable is left).

Install: ``pip install 'segue[transcribe]'`` and ``pip install --no-deps basic-pitch`` (its metadata demands
TensorFlow on Linux with Python 3.11, which it does not need for the ONNX model).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from engine.api import CancelToken, Meter
from engine.audio.audio_io import SILENCE_PEAK, AudioInfo, check_audio, probe_audio, read_audio, resample, to_mono
from engine.audio.continuation import BarGrid, locate_region
from engine.errors import BadInputError, EngineError
from engine.midi_io import Conductor, PartNotes, build_midi, save_midi
from engine.transcribe.grid import (
    MODEL_SAMPLE_RATE,
    TICKS_PER_QUARTER,
    NoteEvent,
    Texture,
    TranscriptionOptions,
    drop_echoes,
    drop_ghosts,
    join_fragments,
    quantise,
    texture,
)
from engine.transcribe.model import ModelRunner, Progress, note_events

log = logging.getLogger(__name__)
LEAD_PROGRAM = 73  # GM flute: the lead voice a monophonic line (a vocal, a solo) becomes
LEAD_NAME = "melody"
POLY_PROGRAM = 0  # GM acoustic grand piano, for polyphonic audio
POLY_NAME = "piano"
NO_PITCHED = (
    "has no pitched content to transcribe ({why}); give a region with a melody, chords or a bass line (drums, "
    "noise and silence cannot become notes), or give the region's MIDI file"
)


@dataclass(frozen=True)
class AudioRegion:
    """An audio region to transcribe: its file (its first sample on a bar line), its grid (``tempo_bpm``,
    ``meter``) and its length in quarter notes, as the DAW gives it (None: the audio's, rounded to whole bars as the
    audio engine rounds it)."""

    path: Path
    tempo_bpm: float
    meter: Meter
    length_beats: float | None = None


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
    texture: Texture  # how the notes kept sound together
    confidence: float  # mean activation of the notes kept, 0..1
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
        return self.texture.monophonic

    @property
    def summary(self) -> str:
        return (
            f"transcribed from audio: {self.note_count} notes, {self.texture.describe()}, "
            f"confidence {self.confidence:.2f}, quantised to {self.grid} at {self.tempo_bpm:g} BPM in {self.meter}, "
            f"as {self.part_name} (GM program {self.program}); the MIDI is region/transcribed.mid"
        )


# -- the region -----------------------------------------------------------------------------------------------


def _clean_up(events: list[NoteEvent], options: TranscriptionOptions, seconds: float) -> tuple[list[NoteEvent], int]:
    """The note events less a slow attack's split-off start, faint ghosts and echoes (and a single line's
    overtones, when removing them leaves a line): (the events kept, how many were joined or dropped)."""
    events, fragments = join_fragments(events, options.onset_threshold)
    events, ghosts = drop_ghosts(events, options.onset_threshold)
    events, echoes = drop_echoes(events)
    echoes += fragments + ghosts
    line, more = drop_echoes(events, overtones=True)
    if more and texture(line, seconds).monophonic:  # a single line once its overtones are gone
        events, echoes = line, echoes + more
    return events, echoes


def _what_was_adjusted(texture: Texture, messy: bool, confidence: float, latency: float, dropped: int) -> list[str]:
    """The transcription's notes for the manifest: a messy polyphonic result, late notes moved, notes dropped."""
    notes = []
    clusters = texture.cluster_share
    if messy:
        notes.append(
            f"the audio is densely polyphonic and transcribes to a mess (confidence {confidence:.2f}, "
            f"{texture.mean_polyphony:.1f} notes at once on average"
            + (f", {100 * clusters:.0f}% of the time 3+ notes within 3 semitones" if clusters else "")
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
    region: AudioRegion,
    midi_out: Path,
    options: TranscriptionOptions | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    model: ModelRunner | None = None,
) -> Transcription:
    """Transcribe ``region`` to a one-part MIDI file at ``midi_out`` (written atomically, never over an existing
    file) on the region's grid.

    :class:`BadInputError` when the audio is unreadable, silent, or holds no pitched content; :class:`EngineError`
    when basic-pitch is not installed. ``progress`` gets the share of the model's work done (0..1); ``cancel``
    stops it (:class:`CancelledError`) between batches of 8 windows (16 s). ``model`` runs the model (default
    :func:`model_output`; tests hand in a stand-in that perturbs its output).
    """
    options = options or TranscriptionOptions()
    started = time.perf_counter()
    audio_path, tempo_bpm, meter = Path(region.path), float(region.tempo_bpm), region.meter
    if midi_out.exists():
        raise EngineError(f"{midi_out} already exists; Segue never overwrites files")
    info = probe_audio(audio_path)
    grid = BarGrid(tempo_bpm, meter)
    bars, seam, region_notes = locate_region(info, grid, region.length_beats)
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
    sound = texture(in_range, seconds)
    confidence = float(np.mean([e.amplitude for e in in_range])) if in_range else 0.0
    _refuse_unpitched(audio_path, len(in_range), confidence, sound.coverage, options)
    monophonic = sound.monophonic
    end_tick = round(bars * meter.quarters_per_bar * TICKS_PER_QUARTER)
    mono_for_velocity = mono if start == 0 else None  # (a long region's tail: velocities from the model's amplitude)
    quantised, grid_name, dropped, latency = quantise(in_range, grid, end_tick, mono_for_velocity, options, monophonic)
    if len(quantised) < options.min_notes:
        raise BadInputError(f"{audio_path} " + NO_PITCHED.format(why=f"no notes last a 16th at {tempo_bpm:g} BPM"))
    messy = sound.messy(confidence, options)
    dropped += echoes
    notes += _what_was_adjusted(sound, messy, confidence, latency, dropped)
    program, name = (LEAD_PROGRAM, LEAD_NAME) if monophonic else (POLY_PROGRAM, POLY_NAME)
    conductor = Conductor(tempos=((0, tempo_bpm),), meters=((0, meter),))
    part = PartNotes(name, program, tuple(quantised))
    save_midi(build_midi(TICKS_PER_QUARTER, conductor, [part], end_tick), midi_out)
    timings["transcribe_seconds"] = time.perf_counter() - started
    result = Transcription(
        midi_path=midi_out,
        tempo_bpm=tempo_bpm,
        meter=meter,
        length_bars=bars,
        program=program,
        part_name=name,
        note_count=len(quantised),
        heard_notes=len(in_range),
        dropped_notes=dropped,
        out_of_range_notes=out_of_range,
        texture=sound,
        confidence=confidence,
        grid=grid_name,
        messy=messy,
        notes=tuple(notes),
        region_notes=region_notes,
        timings=timings,
    )
    log.info("%s: %s", audio_path, result.summary)
    return result
