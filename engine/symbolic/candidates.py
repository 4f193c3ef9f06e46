"""Choose among candidates: sample more continuations than variants, keep those that fit the region best while
staying different from each other (greedy max-min diversity).

Fit is measured as :mod:`engine.evaluate.midi` measures it (bench/bench_midi_quality.py): the onset-position
overlap with the region, notes per bar per part against the region's (times the asked density),
and the share of pitched notes in the region's scale. Distance is one minus the Jaccard similarity of the
(grid onset, pitch) note sets. Each variant chooses among its own candidates (seeded from its seed), so variant i
still carries seed i; it depends on its seed, the job's settings and the variants chosen before it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from symusic.core import ScoreTick

from engine.evaluate import midi as measures
from engine.evaluate.music import Key
from engine.midi_io import PartNotes

SEED_STRIDE = 1_000_003  # candidate j of a variant seeded s is seeded s + j * SEED_STRIDE
MIN_DISTANCE = 0.05  # candidates closer than this to a kept one are taken only when nothing else is left
DIVERSITY_WEIGHT = 1.0  # fit points one unit of min-distance is worth


def candidate_seeds(seeds: Sequence[int], factor: int) -> list[int]:
    """The variants' own seeds first, then ``factor - 1`` more per variant."""
    out = [int(s) for s in seeds]
    for j in range(1, max(1, factor)):
        out += [(int(s) + j * SEED_STRIDE) % 2**63 for s in seeds]
    return out


def channel_of(program: int) -> int:
    """A channel per part for the measures: drums 9, a pitched program its own number above 15."""
    return 9 if program == -1 else 16 + program


def content_from_parts(parts: Sequence[PartNotes], ticks_per_quarter: int, end_tick: int) -> measures.MidiContent:
    notes = sorted(
        (measures.Note(n.start, n.start + n.duration, n.pitch, channel_of(p.program)) for p in parts for n in p.notes),
        key=lambda n: (n.start, n.pitch, n.channel),
    )
    return measures.MidiContent(None, ticks_per_quarter, tuple(notes), end_tick, (), ())  # type: ignore[arg-type]


def content_from_score(score: ScoreTick, start_tick: int, end_tick: int) -> measures.MidiContent:
    """The notes of ``score`` starting in ``[start_tick, end_tick)``, moved to 0, a part per program."""
    notes = []
    for track in score.tracks:
        channel = channel_of(-1 if track.is_drum else int(track.program))
        for n in track.notes:
            if start_tick <= int(n.time) < end_tick:
                s = int(n.time) - start_tick
                notes.append(measures.Note(s, s + int(n.duration), int(n.pitch), channel))
    notes.sort(key=lambda n: (n.start, n.pitch, n.channel))
    return measures.MidiContent(
        None,  # type: ignore[arg-type]
        int(score.ticks_per_quarter),
        tuple(notes),
        end_tick - start_tick,
        (),
        (),
    )


def fit(
    candidate: measures.MidiContent,
    region: measures.MidiContent,
    bar_beats: float,
    bars: int,
    region_bars: int,
    region_scale: tuple[Key | None, float | None],
    density: dict[int, float],
) -> float:
    """How well a candidate fits the region (higher is better; about 0..2)."""
    # the pitch-class overlap is left to the pitch prior (engine.symbolic.guidance): choosing by it as well
    # overshot the composers' own overlap (bench: +0.09 against +0.05 without)
    score = 0.0
    onset = measures.onset_position_overlap(candidate, region, bar_beats)
    score += onset if onset is not None else 0.5
    own = measures.notes_per_bar(candidate, bar_beats, bars)
    theirs = measures.notes_per_bar(region, bar_beats, region_bars)
    errors = []
    for channel, rate in theirs.items():
        want = rate * density.get(channel, 1.0)
        if want > 0:
            errors.append(min(2.0, abs(math.log((own.get(channel, 0.0) + 0.1) / (want + 0.1)))))
    score += 1.0 - (sum(errors) / len(errors) if errors else 0.0)
    key, region_share = region_scale
    if key is not None and region_share is not None:
        share = measures.in_scale_share(candidate, key)
        if share is not None:
            score += min(0.0, share - (region_share - 0.05)) * 4  # only a shortfall costs
    return score


def distance(a: set[tuple[int, int, bool]], b: set[tuple[int, int, bool]]) -> float:
    union = a | b
    return 1.0 - len(a & b) / len(union) if union else 0.0


def select(
    fits: Sequence[float], note_sets: Sequence[set[tuple[int, int, bool]]], groups: Sequence[Sequence[int]]
) -> list[int]:
    """One candidate index per group (a variant's own candidates), in order: the one maximising its fit plus
    :data:`DIVERSITY_WEIGHT` x its distance to the nearest one kept so far; one closer than
    :data:`MIN_DISTANCE` (the same notes) only when its group has nothing else.

    Grouping by variant keeps each variant tied to its seed: variant i is drawn from the candidates of seed i."""
    chosen: list[int] = []
    for group in groups:

        def value(i: int) -> tuple[bool, float]:
            nearest = min((distance(note_sets[i], note_sets[j]) for j in chosen), default=1.0)
            return nearest >= MIN_DISTANCE, fits[i] + DIVERSITY_WEIGHT * nearest

        chosen.append(max(group, key=value))
    return chosen
