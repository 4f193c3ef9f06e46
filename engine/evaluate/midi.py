"""Measures on MIDI files: notes, length, tempo and meter, onset grid, key, variety."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.evaluate.music import Key, estimate_key
from engine.midi_io import MidiFile, read_midi_file, tempo_to_bpm

GRID_DIVISIONS = (1, 2, 3, 4, 6, 8, 12, 16, 24)  # onset grids tried, in divisions of a quarter note
GRID_SHARE = 0.95  # the region's grid: the coarsest that holds this share of its onsets
GRID_TOLERANCE_BEATS = 1 / 48  # an onset this close to a grid line is on it (10 ms at 120 BPM)


@dataclass(frozen=True)
class Note:
    start: int  # ticks
    end: int
    pitch: int
    channel: int

    @property
    def is_drum(self) -> bool:
        return self.channel == 9


@dataclass(frozen=True)
class MidiContent:
    path: Path
    ticks_per_beat: int
    notes: tuple[Note, ...]
    end_tick: int  # the last end-of-track (or event) over all tracks
    tempos_bpm: tuple[float, ...]  # in file order
    meters: tuple[tuple[int, int], ...]

    @property
    def length_beats(self) -> float:
        return self.end_tick / self.ticks_per_beat

    def window(self, start_tick: int, end_tick: int) -> MidiContent:
        """The notes starting in ``[start_tick, end_tick)``, moved to start at 0."""
        notes = tuple(
            Note(n.start - start_tick, n.end - start_tick, n.pitch, n.channel)
            for n in self.notes
            if start_tick <= n.start < end_tick
        )
        return MidiContent(self.path, self.ticks_per_beat, notes, end_tick - start_tick, self.tempos_bpm, self.meters)


def without(content: MidiContent, other: MidiContent) -> MidiContent:
    """``content``'s notes less one matching note of ``other`` each (same pitch, onset within
    :data:`GRID_TOLERANCE_BEATS`; ``other`` may use another resolution): an accompaniment's ``full.mid`` less its
    generated parts is the region."""
    unit = GRID_TOLERANCE_BEATS

    def key(note: Note, ticks_per_beat: int) -> tuple[int, int]:
        return round(note.start / ticks_per_beat / unit), note.pitch

    left: dict[tuple[int, int], int] = {}
    for n in other.notes:
        k = key(n, other.ticks_per_beat)
        left[k] = left.get(k, 0) + 1
    kept = []
    for n in content.notes:
        k = key(n, content.ticks_per_beat)
        if left.get(k, 0) > 0:
            left[k] -= 1
        else:
            kept.append(n)
    return MidiContent(
        content.path, content.ticks_per_beat, tuple(kept), content.end_tick, content.tempos_bpm, content.meters
    )


def read_midi(path: Path, by_part: bool = False) -> MidiContent:
    """Notes (note-on/off pairs per channel and pitch), tempos, meters and the length of ``path``; ``by_part``: see
    :func:`midi_content`."""
    return midi_content(read_midi_file(path), path, by_part)


def part_channel(program: int) -> int:
    """The channel a part's notes get in a ``by_part`` reading: drums (program -1) 9, a pitched program its own
    number above 15 (as the bench's measures key the parts: by General MIDI program and drum flag)."""
    return 9 if program == -1 else 16 + program


def midi_content(midi: MidiFile, path: Path, by_part: bool = False) -> MidiContent:
    """The notes, tempos, meters and length of a parsed file. ``by_part``: each note's ``channel`` is its part
    (:func:`part_channel` of the program its channel plays when it starts; channel 10 is drums), so the same
    instrument is one part whatever channel or track it is on."""
    notes: list[Note] = []
    tempos: list[float] = []
    meters: list[tuple[int, int]] = []
    end_tick = 0
    first_program: dict[int, int] = {}  # a channel's first program change, for its notes in other tracks
    for track in midi.tracks:
        for event in track:
            if event.type == "program_change":
                first_program.setdefault(event.channel, event.program)
    for track in midi.tracks:
        tick = 0
        programs = dict(first_program)
        open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (channel, pitch) -> [(start, part)]
        for event in track:
            tick += event.time
            if event.type == "set_tempo":
                tempos.append(tempo_to_bpm(event.tempo))
            elif event.type == "time_signature":
                meters.append((event.numerator, event.denominator))
            elif event.type == "program_change":
                programs[event.channel] = event.program
            elif event.type == "note_on" and event.velocity > 0:
                channel = event.channel
                if by_part:
                    channel = part_channel(-1 if channel == 9 else programs.get(channel, 0))
                open_notes.setdefault((event.channel, event.note), []).append((tick, channel))
            elif event.type in ("note_off", "note_on"):
                starts = open_notes.get((event.channel, event.note))
                if starts:
                    start, channel = starts.pop(0)
                    notes.append(Note(start, tick, event.note, channel))
        for (_, pitch), starts in open_notes.items():  # never released: they end with the track
            notes.extend(Note(s, tick, pitch, channel) for s, channel in starts)
        end_tick = max(end_tick, tick)
    notes.sort(key=lambda n: (n.start, n.pitch, n.channel))
    return MidiContent(path, midi.ticks_per_quarter, tuple(notes), end_tick, tuple(tempos), tuple(meters))


def pitch_class_histogram(content: MidiContent) -> np.ndarray:
    """Duration-weighted pitch classes of the pitched notes."""
    h = np.zeros(12)
    for n in content.notes:
        if not n.is_drum:
            h[n.pitch % 12] += max(1, n.end - n.start)
    return h


def midi_key(content: MidiContent) -> Key | None:
    return estimate_key(pitch_class_histogram(content))


def in_scale_share(content: MidiContent, key: Key) -> float | None:
    pitched = [n for n in content.notes if not n.is_drum]
    if not pitched:
        return None
    scale = key.scale()
    return sum(1 for n in pitched if n.pitch % 12 in scale) / len(pitched)


def _on_grid(content: MidiContent, division: int) -> float | None:
    if not content.notes:
        return None
    step = content.ticks_per_beat / division
    tolerance = GRID_TOLERANCE_BEATS * content.ticks_per_beat
    on = 0
    for n in content.notes:
        offset = n.start % step
        if min(offset, step - offset) <= tolerance:
            on += 1
    return on / len(content.notes)


def onset_grid(content: MidiContent) -> int | None:
    """The region's grid: the coarsest division of the beat that holds :data:`GRID_SHARE` of its onsets."""
    for division in GRID_DIVISIONS:
        share = _on_grid(content, division)
        if share is None:
            return None
        if share >= GRID_SHARE:
            return division
    return GRID_DIVISIONS[-1]


def grid_share(content: MidiContent, division: int) -> float | None:
    """The share of ``content``'s onsets on a grid of ``division`` per beat."""
    return _on_grid(content, division)


def bars_with_notes(content: MidiContent, bar_beats: float, bars: int) -> int:
    bar_ticks = bar_beats * content.ticks_per_beat
    return len({int(n.start // bar_ticks) for n in content.notes if 0 <= n.start // bar_ticks < bars})


def note_set(content: MidiContent, division: int) -> set[tuple[int, int, bool]]:
    step = content.ticks_per_beat / division
    return {(round(n.start / step), n.pitch, n.is_drum) for n in content.notes}


def variety(contents: list[MidiContent], division: int) -> tuple[float | None, int]:
    """Mean pairwise distance (1 - Jaccard similarity of the (grid onset, pitch) sets) between the variants, and
    how many pairs are identical."""
    sets = [note_set(c, division) for c in contents]
    distances = []
    identical = 0
    for a, b in itertools.combinations(sets, 2):
        union = a | b
        d = 1.0 - len(a & b) / len(union) if union else 0.0
        identical += d == 0.0
        distances.append(d)
    return (float(np.mean(distances)) if distances else None), identical


# --- fit to the region: the measures of bench/bench_midi_quality.py and `segue eval` ---------------------------
ONSET_BINS_PER_BEAT = 12  # onset positions in the bar, in twelfths of a quarter note (16ths and triplets)


def histogram_overlap(a: np.ndarray, b: np.ndarray) -> float | None:
    """Shared mass of two histograms, each normalised to 1 (1: the same shape, 0: disjoint); None if one is empty."""
    sa, sb = float(np.sum(a)), float(np.sum(b))
    if sa <= 0 or sb <= 0:
        return None
    return float(np.minimum(a / sa, b / sb).sum())


def pitch_class_overlap(content: MidiContent, region: MidiContent) -> float | None:
    """How much of ``content``'s (duration-weighted) pitch-class histogram the region's shares."""
    return histogram_overlap(pitch_class_histogram(content), pitch_class_histogram(region))


def onset_position_histogram(content: MidiContent, bar_beats: float) -> np.ndarray:
    """Onsets per position in the bar (twelfths of a quarter note); a chord's notes in one part count once."""
    bins = max(1, round(bar_beats * ONSET_BINS_PER_BEAT))
    step = content.ticks_per_beat / ONSET_BINS_PER_BEAT
    h = np.zeros(bins)
    for _channel, start in {(n.channel, n.start) for n in content.notes}:
        h[round(start / step) % bins] += 1
    return h


def onset_position_overlap(content: MidiContent, region: MidiContent, bar_beats: float) -> float | None:
    """How much of ``content``'s onset-position-in-bar histogram the region's shares (rhythm, not pitch)."""
    return histogram_overlap(onset_position_histogram(content, bar_beats), onset_position_histogram(region, bar_beats))


def notes_per_bar(content: MidiContent, bar_beats: float, bars: int) -> dict[int, float]:
    """Notes started per bar, per channel (a part)."""
    counts: dict[int, int] = {}
    for n in content.notes:
        counts[n.channel] = counts.get(n.channel, 0) + 1
    return {channel: count / max(1, bars) for channel, count in sorted(counts.items())}


def region_scale_share(region: MidiContent) -> tuple[Key | None, float | None]:
    """The region's estimated key and the share of its own pitched notes in that key's scale."""
    key = midi_key(region)
    return key, (in_scale_share(region, key) if key is not None else None)
