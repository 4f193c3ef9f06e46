"""The notes a transcription keeps, and where they go on the region's grid (see :mod:`engine.transcribe.region`).

Clean-up of basic-pitch's note events (a slow attack's split-off start, faint echoes, a single line's overtones),
the texture figures (how monophonic, how dense), the grid fit (the onsets' common lateness, 16ths or 8th-note
triplets) and the quantisation to ticks with velocities from the audio.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from engine.audio.continuation import BarGrid
from engine.midi_io import Note

TICKS_PER_QUARTER = 480
MODEL_SAMPLE_RATE = 22_050  # basic-pitch's input rate


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
    threads: int = 0  # onnxruntime's threads for the model (0: its default); the engine passes SEGUE_THREADS


@dataclass(frozen=True)
class NoteEvent:
    """A note as the model heard it, in seconds from the region's start, and the model's support for it:
    ``amplitude`` its mean note activation, ``peak`` its highest, ``onset`` the onset activation at its start."""

    start_seconds: float
    end_seconds: float
    pitch: int
    amplitude: float
    peak: float
    onset: float

    @property
    def seconds(self) -> float:
        return self.end_seconds - self.start_seconds

    def shifted(self, seconds: float) -> NoteEvent:
        return replace(self, start_seconds=self.start_seconds + seconds, end_seconds=self.end_seconds + seconds)


CORE_SHARE = 0.5  # a note's second half may be its release: a legato line's notes overlap only there
FRAGMENT_SECONDS = 0.13  # a note's attack heard alone is this short...
FRAGMENT_GAP_SECONDS = 0.015  # ...and the note follows it within about a frame (11.6 ms)
OVERTONES = (12, 19, 24)  # semitones above a note where the model hears its 2nd, 3rd and 4th harmonics
HARMONICS = (12, 19, 24, 28)  # semitones between a note and its 2nd, 3rd, 4th and 5th harmonics
GHOST_SLACK_SECONDS = 0.1
# on the rendered test material (TimGM6mb and MuseScore General, also with the activations perturbed as CPUs
# differ) faint ghosts peak at most 0.70 of the strongest note over them, real notes under a stronger one (chord
# tones) at least 0.94
GHOST_PEAK_SHARE = 0.75
# a confident onset is this far above the decoder's threshold: a held note's split-off second part and bleed score
# 0.51-0.62 there, struck notes 0.83-0.99 (5th to 100th percentile; MuseScore's softest piano attacks 0.61, which
# the rules below never drop: they also ask for a faint note, a rumble far below, or a same-pitch continuation)
ONSET_MARGIN = 0.25
MAX_LATENCY_SECONDS = 0.05
# one note sounds (in the notes' first halves) this share of the sounding time: a monophonic line (rendered lines
# score 0.98-1.00 and piano triads 0.04, also with the model's activations perturbed)
MONOPHONIC_SHARE = 0.85


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


def drop_ghosts(events: list[NoteEvent], onset_threshold: float) -> tuple[list[NoteEvent], int]:
    """Drop the notes that the model's own figures do not support beside a stronger line. A ghost sounds only while
    stronger notes (higher peak activation) sound: they cover its span but for ``GHOST_SLACK_SECONDS`` at either
    end. It is either faint (peaks under ``GHOST_PEAK_SHARE`` of the strongest of them) and a harmonic away from one
    of them (an octave, a twelfth, two octaves or two octaves and a third, above: its overtones; below:
    sub-harmonics, such as MuseScore General's piano gives, mostly two octaves and a third down) or has no confident
    onset of its own (under ``onset_threshold`` + ``ONSET_MARGIN``: a release, a bleed, not a note struck); or it
    lies at least an octave below all of them, has no confident onset and is shorter than the longest (a rumble
    under the line, not a bass: a bass is struck, or outlasts the notes above it). (kept, dropped)"""
    events = sorted(events, key=lambda n: n.start_seconds)
    longest = max((e.seconds for e in events), default=0.0)
    starts = [n.start_seconds for n in events]
    confident = onset_threshold + ONSET_MARGIN
    kept = []
    for e in events:
        lo = bisect.bisect_left(starts, e.start_seconds - longest)
        hi = bisect.bisect_left(starts, e.end_seconds)
        over = [f for f in events[lo:hi] if f is not e and f.end_seconds > e.start_seconds and f.peak > e.peak]
        middle = (e.start_seconds + e.end_seconds) / 2  # a note under 0.2 s: its middle must be covered
        inner = min(e.start_seconds + GHOST_SLACK_SECONDS, middle), max(e.end_seconds - GHOST_SLACK_SECONDS, middle)
        if not over or not _covers(over, *inner):
            kept.append(e)
            continue
        strongest = max(f.peak for f in over)
        faint = e.peak < GHOST_PEAK_SHARE * strongest and (
            any(abs(e.pitch - f.pitch) in HARMONICS for f in over) or e.onset < confident
        )
        rumble = (
            e.onset < confident
            and all(f.pitch - e.pitch >= 12 for f in over)
            and e.seconds < max(f.seconds for f in over)
        )
        if not (faint or rumble):
            kept.append(e)
    return kept, len(events) - len(kept)


def _covers(notes: list[NoteEvent], start: float, end: float) -> bool:
    """Whether ``notes`` together sound all the time from ``start`` to ``end`` (gaps under 20 ms, two frames)."""
    reach = start
    for n in sorted(notes, key=lambda n: n.start_seconds):
        if n.start_seconds > reach + 0.02:
            break
        reach = max(reach, n.end_seconds)
    return reach >= end


def join_fragments(events: list[NoteEvent], onset_threshold: float) -> tuple[list[NoteEvent], int]:
    """One note heard as two at the same pitch, the second starting right where the first ends: a slow attack (a
    voice, a bowed string) heard as a short fragment before its note, or a held note split where its activation
    wobbles or a neighbour's onset bleeds into it (the second part has no confident onset of its own: under
    ``onset_threshold`` + ``ONSET_MARGIN``). (joined events, fragments merged)"""
    by_pitch: dict[int, list[NoteEvent]] = {}
    for e in sorted(events, key=lambda n: n.start_seconds):
        line = by_pitch.setdefault(e.pitch, [])
        if line:
            prev = line[-1]
            held_on = prev.seconds <= FRAGMENT_SECONDS or e.onset < onset_threshold + ONSET_MARGIN
            if held_on and 0.0 <= e.start_seconds - prev.end_seconds <= FRAGMENT_GAP_SECONDS:
                mean = (prev.amplitude * prev.seconds + e.amplitude * e.seconds) / max(prev.seconds + e.seconds, 1e-9)
                line[-1] = NoteEvent(prev.start_seconds, e.end_seconds, e.pitch, mean, max(prev.peak, e.peak),
                                     max(prev.onset, e.onset))  # fmt: skip
                continue
        line.append(e)
    joined = sorted((e for line in by_pitch.values() for e in line), key=lambda n: (n.start_seconds, n.pitch))
    return joined, len(events) - len(joined)


@dataclass(frozen=True)
class Texture:
    """How the notes sound together (:func:`texture`); nothing sounding: all 0."""

    monophonic_fraction: float = 0.0  # share of the sounding time with one note
    mean_polyphony: float = 0.0  # notes sounding at once, averaged over sounding time
    max_polyphony: int = 0
    cluster_share: float = 0.0  # share of sounding time with 3+ notes within 3 semitones
    coverage: float = 0.0  # share of the region's time with a note sounding (first halves of notes)

    @property
    def monophonic(self) -> bool:
        return self.monophonic_fraction >= MONOPHONIC_SHARE

    def messy(self, confidence: float, options: TranscriptionOptions) -> bool:
        """Polyphonic and a mess: too many notes at once, too many close clusters, or the model unsure of its
        notes (``confidence``, the notes' mean activation)."""
        return not self.monophonic and (
            self.mean_polyphony > options.messy_polyphony
            or self.cluster_share > options.messy_cluster_share
            or confidence < options.messy_confidence
        )

    def describe(self) -> str:
        if self.monophonic:
            return f"monophonic (one note at a time {100 * self.monophonic_fraction:.0f}% of the time)"
        return f"polyphonic (up to {self.max_polyphony} notes at once, {self.mean_polyphony:.1f} on average)"


def texture(events: list[NoteEvent], seconds: float) -> Texture:
    """How ``events`` sound together over ``seconds``: see :class:`Texture`.

    Counted on a 10 ms raster of the notes' first halves (a note's second half may be its release, which a legato
    or ringing line overlaps with the next note); a cluster is 3+ notes within 3 semitones sounding together. The
    figures are shares of time, so one faint extra note moves them by its own length, never by a whole note's
    share."""
    if not events:
        return Texture()
    steps = max(1, math.ceil(seconds * 100))
    active = np.zeros((steps, 128), bool)
    for n in events:
        core_end = n.start_seconds + max(0.05, CORE_SHARE * n.seconds)
        a = min(steps - 1, max(0, int(n.start_seconds * 100)))
        b = min(steps, max(a + 1, int(core_end * 100)))
        active[a:b, n.pitch] = True
    counts: npt.NDArray[np.int64] = active.sum(axis=1)
    sounding: npt.NDArray[np.bool_] = np.asarray(counts > 0)
    if not sounding.any():
        return Texture()
    cluster_counts = np.zeros((steps, 125), np.int32)
    for shift in range(4):
        cluster_counts += active[:, shift : 125 + shift]
    clustered: npt.NDArray[np.bool_] = np.asarray((cluster_counts >= 3).any(axis=1))
    return Texture(
        monophonic_fraction=float(np.mean(counts[sounding] == 1)),
        mean_polyphony=float(np.mean(counts[sounding])),
        max_polyphony=int(counts.max()),
        cluster_share=float(np.mean(clustered[sounding])),
        coverage=float(np.mean(sounding)),
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
    events = [e.shifted(-latency) for e in events]
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
