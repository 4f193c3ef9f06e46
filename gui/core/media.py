"""What the app draws and says about a MIDI or audio file: notes for a piano roll, peaks for a waveform, tempo,
meter, length in bars and an estimated key. Also turns a file the user opened or dropped into a region.

Pure reading with mido, soundfile and numpy (no Qt, no torch). Errors are :class:`BadInputError` with the file
named, in words a producer understands.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import numpy.typing as npt
import soundfile

from bridge.events import DawRegion
from bridge.inputs import ACCEPTED_FORMATS, sniff_format
from engine.api import Meter
from engine.errors import BadInputError

log = logging.getLogger(__name__)

PEAK_BUCKETS = 400
DEFAULT_TEMPO_BPM = 120.0
_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl-Kessler key profiles (major, minor), from C
_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


@dataclass(frozen=True)
class Note:
    pitch: int
    start_beats: float  # quarter notes from the file's start
    end_beats: float
    velocity: int
    drum: bool = False


@dataclass(frozen=True)
class MediaSummary:
    """What a region or variant file holds, for display. ``peaks``: max |sample| per bucket, 0..1."""

    path: Path
    kind: str  # "midi" | "audio"
    tempo_bpm: float | None = None
    meter: Meter | None = None
    length_beats: float = 0.0
    duration_seconds: float = 0.0
    notes: tuple[Note, ...] = ()
    peaks: tuple[float, ...] = ()
    sample_rate: int = 0
    channels: int = 0
    key: str = ""

    @property
    def bars(self) -> float:
        qpb = (self.meter or Meter()).quarters_per_bar
        return self.length_beats / qpb if qpb else 0.0


def read_midi(path: Path) -> MediaSummary:
    """Notes (all tracks), the tempo and meter in force at the end, the length to the last note or the
    end-of-track marker, and the key."""
    try:
        mid = mido.MidiFile(str(path))
    except FileNotFoundError as e:
        raise BadInputError(f"{path}: no such file") from e
    except (OSError, EOFError, ValueError, KeyError, IndexError) as e:
        raise BadInputError(f"{path.name} could not be read as MIDI ({e}); is it truncated or corrupt?") from e
    tpq = mid.ticks_per_beat or 480
    tempo_us: int | None = None
    meter: Meter | None = None
    notes: list[Note] = []
    end_tick = 0
    for track in mid.tracks:
        tick = 0
        open_notes: dict[tuple[int, int], tuple[int, int]] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempo_us = msg.tempo
            elif msg.type == "time_signature":
                try:
                    meter = Meter(msg.numerator, msg.denominator)
                except BadInputError:
                    log.debug("%s: unusable time signature %s", path, msg)
            elif msg.type == "note_on" and msg.velocity > 0:
                open_notes[(msg.channel, msg.note)] = (tick, msg.velocity)
            elif msg.type in ("note_off", "note_on"):
                started = open_notes.pop((msg.channel, msg.note), None)
                if started is not None:
                    notes.append(Note(msg.note, started[0] / tpq, tick / tpq, started[1], drum=msg.channel == 9))
        end_tick = max(end_tick, tick)
    notes.sort(key=lambda n: (n.start_beats, n.pitch))
    tempo_bpm = mido.tempo2bpm(tempo_us) if tempo_us else None
    length = max([end_tick / tpq, *(n.end_beats for n in notes)]) if notes or end_tick else 0.0
    seconds = length * 60.0 / (tempo_bpm or DEFAULT_TEMPO_BPM)
    return MediaSummary(
        path=path,
        kind="midi",
        tempo_bpm=tempo_bpm,
        meter=meter,
        length_beats=length,
        duration_seconds=seconds,
        notes=tuple(notes),
        key=estimate_key(notes),
    )


def read_audio(path: Path, buckets: int = PEAK_BUCKETS) -> MediaSummary:
    """Peaks for a waveform (mono mix, ``buckets`` values), duration, sample rate, channels."""
    try:
        info = soundfile.info(str(path))
        audio, sample_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError as e:
        raise BadInputError(f"{path}: no such file") from e
    except (RuntimeError, OSError, soundfile.LibsndfileError) as e:
        raise BadInputError(f"{path.name} could not be read as audio ({e}); {ACCEPTED_FORMATS}") from e
    return MediaSummary(
        path=path,
        kind="audio",
        duration_seconds=float(info.frames) / float(info.samplerate) if info.samplerate else 0.0,
        peaks=peaks_of(audio, buckets),
        sample_rate=int(sample_rate),
        channels=int(info.channels),
    )


def audio_seconds(path: Path) -> float:
    """The length of an audio file from its header (no samples read)."""
    try:
        info = soundfile.info(str(path))
    except FileNotFoundError as e:
        raise BadInputError(f"{path}: no such file") from e
    except (RuntimeError, OSError, soundfile.LibsndfileError) as e:
        raise BadInputError(f"{path.name} could not be read as audio ({e}); {ACCEPTED_FORMATS}") from e
    return float(info.frames) / float(info.samplerate) if info.samplerate else 0.0


def peaks_of(audio: np.ndarray, buckets: int = PEAK_BUCKETS) -> tuple[float, ...]:
    """Max absolute value per bucket of ``audio`` ``[frames, channels]``, scaled to the loudest (0..1)."""
    if audio.size == 0 or buckets <= 0:
        return ()
    mono = np.abs(audio).max(axis=1) if audio.ndim == 2 else np.abs(audio)
    edges = np.linspace(0, len(mono), num=min(buckets, len(mono)) + 1).astype(int)
    values = np.maximum.reduceat(mono, edges[:-1]) if len(edges) > 1 else mono[:1]
    top = float(values.max()) if values.size else 0.0
    if not math.isfinite(top) or top <= 0:
        return tuple(0.0 for _ in values)
    return tuple(float(v) / top for v in values)


def read_media(path: Path) -> MediaSummary:
    """:func:`read_midi` or :func:`read_audio`, by the file's content."""
    return read_midi(path) if sniff_format(path) == "midi" else read_audio(path)


def estimate_key(notes: list[Note] | tuple[Note, ...]) -> str:
    """The best-matching major or minor key (Krumhansl-Kessler), e.g. ``"A minor"``; ``""`` without pitched notes."""
    histogram = np.zeros(12)
    for note in notes:
        if not note.drum:
            histogram[note.pitch % 12] += max(note.end_beats - note.start_beats, 0.05)
    if histogram.sum() <= 0:
        return ""
    best, name = -2.0, ""
    for tonic in range(12):
        for profile, quality in ((_MAJOR, "major"), (_MINOR, "minor")):
            rotated = np.roll(np.asarray(profile), tonic)
            score = float(np.corrcoef(histogram, rotated)[0, 1])
            if score > best:
                best, name = score, f"{_NAMES[tonic]} {quality}"
    return name


def region_from_files(midi_path: Path | None, audio_path: Path | None, tempo_bpm: float | None = None) -> DawRegion:
    """A region from files the user opened or dropped (MIDI and/or audio), starting at beat 0 on no track.

    Tempo and meter come from the MIDI file; an audio file alone gets ``tempo_bpm``, else the tempo its name
    states (``loop_100bpm.wav``), else 120 BPM, which the user can change in the Region panel; and 4/4.
    """
    if midi_path is None and audio_path is None:
        raise BadInputError(f"open {ACCEPTED_FORMATS}")
    if midi_path is not None:
        midi = read_midi(midi_path)
        if not midi.notes:
            raise BadInputError(f"{midi_path.name} has no notes; choose a region that contains notes")
        tempo = tempo_bpm or midi.tempo_bpm or DEFAULT_TEMPO_BPM
        length = midi.length_beats
        meter = midi.meter or Meter()
    else:
        assert audio_path is not None
        tempo = tempo_bpm or tempo_from_name(audio_path) or DEFAULT_TEMPO_BPM
        length = audio_seconds(audio_path) * tempo / 60.0
        meter = Meter()
    if length <= 0:
        raise BadInputError(f"{(midi_path or audio_path)} is empty")
    name = (midi_path or audio_path or Path("region")).stem
    return DawRegion(
        audio_path=audio_path.resolve() if audio_path else None,
        midi_path=midi_path.resolve() if midi_path else None,
        start_beats=0.0,
        length_beats=length,
        tempo_bpm=float(min(400.0, max(10.0, tempo))),
        meter=meter,
        track=name,
    )


_BPM_IN_NAME = re.compile(r"(?<![\d.])(\d{2,3}(?:\.\d+)?)\s*[-_ ]?bpm", re.IGNORECASE)


def tempo_from_name(path: Path) -> float | None:
    """The tempo a file name states, as sample packs and bounces often do (``loop_100bpm.wav``, ``92 BPM``)."""
    match = _BPM_IN_NAME.search(path.stem)
    if match is None:
        return None
    tempo = float(match.group(1))
    return tempo if 40.0 <= tempo <= 300.0 else None


def classify_dropped(paths: list[Path]) -> tuple[Path | None, Path | None]:
    """(midi, audio) among the files the user dropped or opened: at most one of each, sniffed by content."""
    midi: Path | None = None
    audio: Path | None = None
    for path in paths:
        role = sniff_format(path)
        if role == "midi" and midi is None:
            midi = path
        elif role == "audio" and audio is None:
            audio = path
        else:
            raise BadInputError(f"give at most one MIDI file and one audio file of the same region ({path.name})")
    return midi, audio


ESTIMATE_SECONDS = 60.0  # the first minute is plenty for a tempo


def estimate_audio_tempo(path: Path) -> float | None:
    """The tempo of an audio file by beat tracking (:func:`engine.evaluate.audio.estimate_tempo`: onset strength
    and its autocorrelation, numpy only; librosa's beat tracker was measured here at 45 s for its first call, with
    the window's event loop held up to 500 ms), or None for under 4 s, no clear beat, or an unreadable file."""
    from engine.evaluate.audio import estimate_tempo  # numpy only: no torch in the window's process

    try:
        info = soundfile.info(str(path))
        frames = int(min(info.frames, ESTIMATE_SECONDS * info.samplerate))
        audio, rate = soundfile.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except (RuntimeError, OSError, soundfile.LibsndfileError):
        return None
    tempo = estimate_tempo(audio.mean(axis=1).astype(np.float64), int(rate))
    return round(tempo, 1) if tempo is not None and 40.0 <= tempo <= 300.0 else None


PREVIEW_RATE = 22_050


def preview_notes(notes: tuple[Note, ...], tempo_bpm: float, length_beats: float) -> npt.NDArray[np.float32]:
    """A plain sketch of MIDI notes to hear a region alone (no soundfont in the window's process): each note a sine
    with two overtones and a decay, a drum hit a short noise burst; ``[frames, 2]`` float32 at :data:`PREVIEW_RATE`."""
    seconds_per_beat = 60.0 / tempo_bpm
    frames = int(max(length_beats, max((n.end_beats for n in notes), default=0.0)) * seconds_per_beat * PREVIEW_RATE)
    out = np.zeros(frames + PREVIEW_RATE // 2, dtype=np.float32)
    noise = np.random.default_rng(0).standard_normal(PREVIEW_RATE // 8).astype(np.float32)
    for note in notes:
        start = int(note.start_beats * seconds_per_beat * PREVIEW_RATE)
        if note.drum:
            burst = noise * np.exp(-np.arange(len(noise)) / (PREVIEW_RATE * 0.02)).astype(np.float32)
            wave = burst[: len(out) - start]
        else:
            length = max(1, int((note.end_beats - note.start_beats) * seconds_per_beat * PREVIEW_RATE))
            t = np.arange(min(length, len(out) - start)) / PREVIEW_RATE
            hz = 440.0 * 2.0 ** ((note.pitch - 69) / 12.0)
            tone = np.sin(2 * np.pi * hz * t) + 0.3 * np.sin(4 * np.pi * hz * t) + 0.1 * np.sin(6 * np.pi * hz * t)
            wave = (tone * np.exp(-t * 3.0) * np.minimum(1.0, t * 200.0)).astype(np.float32)
        out[start : start + len(wave)] += 0.15 * (note.velocity / 127.0) * wave
    peak = float(np.abs(out).max()) if len(out) else 0.0
    if peak > 0.95:
        out *= 0.95 / peak
    return np.stack([out, out], axis=1)
