"""Synthetic, rule-based drum parts for training data (the music21 corpus has no drums).

Kick, snare and closed hat in a pattern per meter (4/4 backbeat, 3/4 waltz, 6/8 / 9/8 / 12/8 compound, 2/4 and
2/2, otherwise kick on the downbeat and hats on the beats), with seeded variations (busier hats, an extra kick),
a snare/tom fill at the end of each phrase and a crash on the next downbeat. Files that carry such a part are
marked as synthetic in the corpus manifest.
"""

from __future__ import annotations

import random

from symusic.core import NoteTick, TrackTick

KICK, SNARE, HAT, OPEN_HAT, CRASH, TOMS = 36, 38, 42, 46, 49, (50, 47, 45)


def bar_starts(time_sigs: list[tuple[int, int, int]], end_tick: int, tpq: int) -> list[tuple[int, int, int]]:
    """(tick, numerator, denominator) at every bar line up to ``end_tick``."""
    bars: list[tuple[int, int, int]] = []
    for i, (tick, num, den) in enumerate(time_sigs):
        stop = time_sigs[i + 1][0] if i + 1 < len(time_sigs) else end_tick
        bar_len = num * tpq * 4 // den
        t = tick
        while t < stop:
            bars.append((t, num, den))
            t += bar_len
    return bars


def _bar_pattern(num: int, den: int, busy: bool) -> list[tuple[float, int]]:
    """(position in quarters, drum pitch) for one bar of the meter."""
    beat = 4 / den
    hat_step = beat / 2 if den == 4 and busy else beat
    length = num * beat
    hits: list[tuple[float, int]] = [(i * hat_step, HAT) for i in range(round(length / hat_step))]
    if (num, den) == (4, 4):
        hits += [(0, KICK), (2, KICK), (1, SNARE), (3, SNARE)] + ([(2.5, KICK)] if busy else [])
    elif (num, den) in ((2, 4), (2, 2)):
        hits += [(0, KICK), (length / 2, SNARE)]
    elif (num, den) == (3, 4):
        hits += [(0, KICK), (1, SNARE), (2, SNARE)]
    elif den == 8 and num in (6, 9, 12):  # compound: kick on the first dotted beat, snare on the others
        hits += [(0, KICK)] + [(1.5 * i, SNARE if i % 2 else KICK) for i in range(1, num // 3)]
    else:
        hits += [(0, KICK)]
    return hits


def drum_track(time_sigs: list[tuple[int, int, int]], end_tick: int, rng: random.Random, tpq: int) -> TrackTick:
    """A synthetic drum part (kick, snare, closed hat; a fill and crash at phrase ends) over the piece's bars."""
    track = TrackTick("Drums (synthetic)", 0, True)
    busy = rng.random() < 0.5
    phrase = rng.choice([4, 8])
    base_velocity = rng.randint(70, 105)
    bars = bar_starts(time_sigs, end_tick, tpq)
    sixteenth = tpq // 4
    for index, (tick, num, den) in enumerate(bars):
        bar_len = num * tpq * 4 // den
        fill = index % phrase == phrase - 1 and index + 1 < len(bars)
        hits = _bar_pattern(num, den, busy)
        if fill:  # replace the last beat by a snare/tom run
            fill_start = bar_len - tpq * 4 // den
            hits = [(q, p) for q, p in hits if q * tpq < fill_start]
            for k, t in enumerate(range(fill_start, bar_len, sixteenth)):
                pitch = SNARE if rng.random() < 0.5 else TOMS[min(k, 2)]
                hits.append((t / tpq, pitch))
        if index > 0 and index % phrase == 0:
            hits.append((0, CRASH))
        for quarters, pitch in hits:
            t = tick + round(quarters * tpq)
            if t >= tick + bar_len or t >= end_tick:
                continue
            accent = 12 if quarters == 0 else (0 if pitch != HAT else -15)
            velocity = max(20, min(127, base_velocity + accent + rng.randint(-8, 8)))
            track.notes.append(NoteTick(t, sixteenth, pitch, velocity))
    return track
