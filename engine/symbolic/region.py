"""Read a MIDI region: check it, find its tempo, meter, bar grid and parts, and cut the prompt on a bar line.

A region is a whole number of bars: it ends on the first bar line at or after its last sound (or after the
length the DAW gave). The continuation starts exactly there (``place_at``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from symusic import Score, Tempo, TimeSignature
from symusic.core import ScoreTick, TempoTick, TimeSignatureTick

from engine.api import MAX_MIDI_FILE_BYTES, MAX_REGION_BEATS, MAX_TEMPO_BPM, MIN_TEMPO_BPM, Meter, Prompt
from engine.errors import BadInputError
from engine.midi_io import end_of_track_tick

log = logging.getLogger(__name__)

MAX_FILE_BYTES = MAX_MIDI_FILE_BYTES
SNAP_FRACTION = 1 / 64  # a region ending this little past a bar line (in bars) still ends on that bar line


@dataclass(frozen=True)
class Part:
    """One instrument of the region: notes of tracks that share a program (drums: program -1)."""

    program: int  # 0..127, -1 for drums
    name: str
    pitch_min: int
    pitch_max: int
    note_count: int

    @property
    def is_drum(self) -> bool:
        return self.program == -1


@dataclass(frozen=True)
class Region:
    path: Path
    score: ScoreTick  # as read, in the file's ticks
    tempo_bpm: float  # the tempo in force at the end of the region
    meter: Meter  # the meter in force at the end of the region
    bar_ticks: int  # length of one bar of ``meter`` in the file's ticks
    place_at_tick: int  # the bar line where the continuation starts
    length_bars: int
    length_beats: float  # quarter notes from the region's start to place_at
    place_at_seconds: float
    parts: tuple[Part, ...]
    notes: tuple[str, ...]  # adjustments, said plainly

    @property
    def ticks_per_quarter(self) -> int:
        return int(self.score.ticks_per_quarter)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise BadInputError(f"{path}: no such file")
    if not path.is_file():
        raise BadInputError(f"{path} is not a file")
    size = path.stat().st_size
    if size == 0:
        raise BadInputError(f"{path} is empty (0 bytes); export the region from your DAW again")
    if size > MAX_FILE_BYTES:
        raise BadInputError(f"{path} is {size // 2**20} MB; a MIDI region should be far smaller (max 64 MB)")
    with path.open("rb") as f:
        head = f.read(4)
    if head != b"MThd":
        raise BadInputError(f"{path} is not a MIDI file (it does not start with 'MThd'); give a .mid file")


def _meter_at(score: ScoreTick, tick: int) -> Meter:
    current: TimeSignatureTick | None = None
    for ts in sorted(score.time_signatures, key=lambda t: t.time):
        if ts.time <= tick:
            current = ts
    if current is None:
        return Meter(4, 4)
    try:
        return Meter(int(current.numerator), int(current.denominator))
    except BadInputError:
        log.warning("unusable time signature %s/%s; using 4/4", current.numerator, current.denominator)
        return Meter(4, 4)


def _tempo_at(score: ScoreTick, tick: int) -> float:
    tempos = sorted(score.tempos, key=lambda t: t.time)
    qpm = 120.0
    for t in tempos:
        if t.time <= tick:
            qpm = float(t.qpm)
    return qpm


def bar_lines(score: ScoreTick, end_tick: int, meter_override: Meter | None = None) -> list[int]:
    """Bar-line ticks from 0 up to and including the first one at or after ``end_tick``.

    Bounded by construction: ``end_tick`` past :data:`~engine.api.MAX_REGION_BEATS` quarter notes is a
    :class:`BadInputError` before anything is allocated, and every bar is at least one tick, so the list holds at
    most ``MAX_REGION_BEATS * ticks_per_quarter / shortest bar`` entries (a few hundred thousand in 1/32, whose
    bar is an eighth of a quarter note; 8193 in 4/4)."""
    tpq = int(score.ticks_per_quarter)
    if tpq <= 0:
        raise BadInputError(f"invalid time division ({tpq} ticks per quarter note)")
    if end_tick > MAX_REGION_BEATS * tpq:
        raise BadInputError(
            f"the region runs for {end_tick / tpq:.0f} beats (quarter notes); Segue reads regions of at most "
            f"{MAX_REGION_BEATS:g} beats ({MAX_REGION_BEATS / 4:.0f} bars of 4/4): select a shorter region or give its "
            "length"
        )
    changes: list[tuple[int, Meter]] = []
    if meter_override is not None:
        changes = [(0, meter_override)]
    else:
        for ts in sorted(score.time_signatures, key=lambda t: t.time):
            try:
                changes.append((int(ts.time), Meter(int(ts.numerator), int(ts.denominator))))
            except BadInputError:
                continue
        if not changes or changes[0][0] > 0:
            changes.insert(0, (0, Meter(4, 4)))
    return bar_lines_for([(tick, meter.numerator, meter.denominator) for tick, meter in changes], tpq, end_tick)


def bar_lines_for(meters: Sequence[tuple[int, int, int]], tpq: int, end: int) -> list[int]:
    """Bar-line ticks from 0 up to and including the first one at or after ``end``; ``meters``: the meter changes
    as ``(tick, numerator, denominator)``, sorted, the first at tick 0. Every bar is at least one tick."""
    lines = [0]
    tick = 0
    index = 0
    while tick < end:
        while index + 1 < len(meters) and meters[index + 1][0] <= tick:
            index += 1
        _, num, den = meters[index]
        tick += max(1, round(num * 4 / den * tpq))
        lines.append(tick)
    return lines


def _parts(score: ScoreTick) -> tuple[Part, ...]:
    by_program: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for track in score.tracks:
        if len(track.notes) == 0:
            continue
        program = -1 if track.is_drum else int(track.program)
        pitches = by_program.setdefault(program, [])
        pitches.extend(int(n.pitch) for n in track.notes)
        names.setdefault(program, str(track.name).strip())
    return tuple(
        Part(p, names.get(p, ""), min(pitches), max(pitches), len(pitches)) for p, pitches in sorted(by_program.items())
    )


def read_region(prompt: Prompt) -> Region:
    """Read and check the MIDI file of ``prompt``; raise :class:`BadInputError` naming the problem."""
    if prompt.midi_path is None:
        raise BadInputError("this engine continues MIDI regions: give a .mid file of the region")
    path = Path(prompt.midi_path)
    _check_file(path)
    try:
        score = cast(ScoreTick, Score(str(path)))
    except Exception as e:  # symusic raises plain RuntimeError/ValueError on corrupt data
        raise BadInputError(f"{path} could not be read as MIDI ({e}); is it truncated or corrupt?") from e
    tpq = int(score.ticks_per_quarter)
    if tpq <= 0:
        raise BadInputError(f"{path} has an invalid time division ({tpq} ticks per quarter note)")
    if score.note_num() == 0:
        raise BadInputError(f"{path} has no notes; select a region that contains notes")

    notes: list[str] = []
    sound_end = int(score.end())
    if prompt.length_beats is not None:
        end_tick = round(prompt.length_beats * tpq)
    else:
        end_tick = max(sound_end, end_of_track_tick(path))
    meter = prompt.meter or _meter_at(score, max(0, end_tick - 1))
    if prompt.meter is None and not score.time_signatures:
        notes.append("no time signature in the file: assumed 4/4")
    lines = bar_lines(score, end_tick, prompt.meter)
    place_at = lines[-1]
    if len(lines) >= 2:
        last_bar = lines[-1] - lines[-2]
        if end_tick - lines[-2] <= SNAP_FRACTION * last_bar and lines[-2] > 0:
            place_at = lines[-2]  # ends a hair after a bar line: that bar line is the end
    if place_at != end_tick:
        notes.append("region rounded up to the next bar line")
    length_bars = max(1, sum(1 for t in lines[1:] if t <= place_at))
    tempos = {round(float(t.qpm), 2) for t in score.tempos if t.time < place_at}
    tempo_bpm = prompt.tempo_bpm or _tempo_at(score, max(0, place_at - 1))
    if prompt.tempo_bpm is None and len(tempos) > 1:
        notes.append(f"tempo changes inside the region: continuing at the last tempo, {tempo_bpm:.2f} BPM")
    if not (MIN_TEMPO_BPM <= tempo_bpm <= MAX_TEMPO_BPM):
        raise BadInputError(f"{path}: tempo {tempo_bpm:.1f} BPM is out of range; give --tempo")
    parts = _parts(score)
    seconds = seconds_at(score, place_at, prompt.tempo_bpm)
    return Region(
        path=path,
        score=score,
        tempo_bpm=float(tempo_bpm),
        meter=meter,
        bar_ticks=round(meter.quarters_per_bar * tpq),
        place_at_tick=place_at,
        length_bars=length_bars,
        length_beats=place_at / tpq,
        place_at_seconds=seconds,
        parts=parts,
        notes=tuple(notes),
    )


def seconds_at(score: ScoreTick, tick: int, tempo_override: float | None = None) -> float:
    """Seconds from tick 0 to ``tick`` through the score's tempo map (or a fixed tempo)."""
    tpq = int(score.ticks_per_quarter)
    if tempo_override is not None:
        return tick / tpq * 60.0 / tempo_override
    seconds = 0.0
    last_tick = 0
    qpm = 120.0
    for t in sorted(score.tempos, key=lambda t: t.time):
        if t.time >= tick:
            break
        seconds += (int(t.time) - last_tick) / tpq * 60.0 / qpm
        last_tick = int(t.time)
        qpm = float(t.qpm)
    return seconds + (tick - last_tick) / tpq * 60.0 / qpm


def prompt_window(region: Region, bars: int) -> ScoreTick:
    """The last ``bars`` bars of the region as a new score starting at tick 0, with the region's tempo and
    meter at tick 0 (notes that start before the window are dropped)."""
    bars = max(1, min(bars, region.length_bars))
    start = region.place_at_tick - bars * region.bar_ticks
    start = max(0, start)
    window = region.score.clip(start, region.place_at_tick, clip_end=True).shift_time(-start)
    window.tempos.clear()
    window.time_signatures.clear()
    window.key_signatures.clear()
    window.tempos.append(cast(TempoTick, Tempo(0, qpm=region.tempo_bpm)))
    window.time_signatures.append(
        cast(TimeSignatureTick, TimeSignature(0, region.meter.numerator, region.meter.denominator))
    )
    return window


def bars_in_window(region: Region, bars: int) -> int:
    return max(1, min(bars, region.length_bars, math.ceil(region.place_at_tick / max(1, region.bar_ticks))))
