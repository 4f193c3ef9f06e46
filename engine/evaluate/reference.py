"""A job against the real continuation: ``segue eval JOB_DIR --reference FILE.mid [--reference-from-bar N]``.

Issue 16's measures, as ``bench/bench_midi_quality.py`` takes them against the composer's continuation
(:func:`compare` is the bench's own arithmetic), for a tester or producer who has the bars that really came next:

* the variants' mean **pitch-class overlap** with the region against the reference's (gap within 0.05);
* the same for the **onset-position-in-bar overlap**;
* **notes per bar per part**, the variants' mean over the reference's (within x0.67-1.5); parts are matched by
  General MIDI program and drum flag, whatever their channel or track; a part the reference does not play is said
  and not counted;
* every variant's share of pitched notes in the region's scale at least the region's own share - 0.1;
* **variety**: mean pairwise note-set distance at least 0.5, no two variants the same.

The reference is read once and checked (:func:`load_reference`) before anything is scored. A reference shorter
than the continuation is measured over the bars it has, the variants over the same bars, and the report says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.api import Meter
from engine.errors import BadInputError
from engine.evaluate import midi as measures
from engine.evaluate.music import Key
from engine.evaluate.table import table_lines
from engine.midi_io import MidiFile, read_midi_file
from engine.render.parts import program_name

OVERLAP_GAP = 0.05  # the variants' mean overlap within this of the reference's
DENSITY_RANGE = (0.67, 1.5)  # notes per bar per part, variants / reference
SCALE_MARGIN = 0.1  # a variant's share in the region's scale at least the region's own share less this
VARIETY_MIN = 0.5  # mean pairwise note-set distance between the variants


@dataclass(frozen=True)
class Fit:
    """The variants and a reference continuation against the region (``bench_midi_quality.py``'s figures).
    Parts are keyed by their ``channel`` (:func:`engine.evaluate.midi.part_channel` in a ``by_part`` reading)."""

    variant_pc: tuple[float | None, ...]  # each variant's pitch-class overlap with the region
    reference_pc: float | None
    pc_gap: float | None  # variants' mean - reference's
    variant_onset: tuple[float | None, ...]
    reference_onset: float | None
    onset_gap: float | None
    variant_rates: dict[int, float]  # part -> notes per bar, mean over the variants (0 where one is silent)
    reference_rates: dict[int, float]  # part -> the reference's notes per bar (parts it plays)
    density: dict[int, float]  # part -> variants' mean / reference's, for the parts the reference plays
    region_key: Key | None
    region_share: float | None  # the region's own share of pitched notes in its key's scale
    shares: tuple[float | None, ...]  # each variant's share in the region's scale
    variety: float | None  # mean pairwise note-set distance between the variants
    identical: int  # identical pairs

    @property
    def in_scale(self) -> list[bool]:
        """Per variant with pitched notes: its share at least the region's own - :data:`SCALE_MARGIN`."""
        own = self.region_share
        return [s >= own - SCALE_MARGIN for s in self.shares if s is not None and own is not None]


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.mean(kept) if kept else None


def _gap(variants: Sequence[float | None], reference: float | None) -> float | None:
    mean = _mean(variants)
    return mean - reference if mean is not None and reference is not None else None


def compare(
    variants: Sequence[measures.MidiContent],
    region: measures.MidiContent,
    reference: measures.MidiContent,
    bar_beats: float,
    bars: int,
) -> Fit:
    """The variants (each ``bars`` bars) and ``reference`` (the same bars) against ``region``."""
    pcs = tuple(measures.pitch_class_overlap(c, region) for c in variants)
    onsets = tuple(measures.onset_position_overlap(c, region, bar_beats) for c in variants)
    reference_pc = measures.pitch_class_overlap(reference, region)
    reference_onset = measures.onset_position_overlap(reference, region, bar_beats)
    reference_rates = measures.notes_per_bar(reference, bar_beats, bars)
    rates = [measures.notes_per_bar(c, bar_beats, bars) for c in variants]
    parts = sorted({ch for r in rates for ch in r} | set(reference_rates))
    variant_rates = {ch: statistics.mean(r.get(ch, 0.0) for r in rates) for ch in parts} if rates else {}
    density = {ch: variant_rates.get(ch, 0.0) / rate for ch, rate in reference_rates.items() if rate > 0}
    key, own = measures.region_scale_share(region)
    shares = tuple(measures.in_scale_share(c, key) for c in variants) if key is not None else ()
    distance, identical = measures.variety(list(variants), measures.onset_grid(region) or 4)
    return Fit(
        pcs,
        reference_pc,
        _gap(pcs, reference_pc),
        onsets,
        reference_onset,
        _gap(onsets, reference_onset),
        variant_rates,
        reference_rates,
        density,
        key,
        own,
        shares,
        distance,
        identical,
    )


# --- the reference file ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """The reference's bars, read and checked: ``content`` holds bars ``from_bar``.. of ``path`` moved to 0."""

    path: Path
    from_bar: int  # 1-based, as a DAW numbers the bars
    bars: int  # bars measured: the job's, or fewer when the file ends (or its meter changes) before
    content: measures.MidiContent
    parts_in_file: frozenset[int]  # every part (by_part channel) the file plays anywhere
    note: str = ""  # why fewer bars than the job's, if so


Signature = tuple[int, int]  # a time signature as the file has it: (numerator, denominator)


def _meter_changes(midi: MidiFile) -> list[tuple[int, Signature]]:
    """(tick, time signature) of every time signature in the file, in order (MIDI's default is 4/4)."""
    changes: list[tuple[int, Signature]] = []
    for track in midi.tracks:
        tick = 0
        for event in track:
            tick += event.time
            if event.type == "time_signature":
                changes.append((tick, (event.numerator, event.denominator)))
    changes.sort(key=lambda c: c[0])
    return changes


def _bars(midi: MidiFile, end_tick: int, upto: int) -> list[tuple[int, Signature, bool]]:
    """The file's first ``upto`` bars at most, up to its end: (start tick, time signature, whole) each. A time
    signature in the middle of a bar starts a new bar there (the bar before it is not whole); a last bar the file
    ends within is counted when it holds more than a grid tolerance."""
    changes = _meter_changes(midi)
    tpq = midi.ticks_per_quarter
    tolerance = measures.GRID_TOLERANCE_BEATS * tpq
    out: list[tuple[int, Signature, bool]] = []
    tick, meter, i = 0, (4, 4), 0
    while len(out) < upto and tick < end_tick - tolerance:
        while i < len(changes) and changes[i][0] <= tick:
            meter = changes[i][1]
            i += 1
        length = max(1, round(meter[0] * 4 / meter[1] * tpq))
        following = tick + length
        if i < len(changes) and changes[i][0] < following:
            out.append((tick, meter, False))
            tick = changes[i][0]
        else:
            out.append((tick, meter, True))
            tick = following
    return out


def bar_span(first: int, last: int) -> str:
    """``bars 5-12``, or ``bar 5``."""
    return f"bar {first}" if first == last else f"bars {first}-{last}"


def load_reference(path: Path, from_bar: int | None, meter: Meter, bars: int) -> Reference:
    """Read ``path`` and take its bars ``from_bar``.. (1-based; None: the file starts where the continuation
    does) for ``bars`` bars, or as many as it has in ``meter``. :class:`BadInputError`, saying what to do, for a
    file that is not a readable MIDI file, a bar beyond it, another meter, or no notes in those bars."""
    start_bar = 1 if from_bar is None else from_bar
    if start_bar < 1:
        raise BadInputError(f"--reference-from-bar counts bars from 1, as a DAW does; got {start_bar}")
    try:
        midi = read_midi_file(path)
    except BadInputError as e:
        raise BadInputError(f"--reference: {e}") from e
    whole = measures.midi_content(midi, path, by_part=True)
    file_bars = _bars(midi, whole.end_tick, start_bar - 1 + bars)
    if start_bar > len(file_bars):
        raise BadInputError(
            f"--reference-from-bar {start_bar} is beyond {path.name}: it has {len(file_bars)} bar(s); give the bar "
            "where the continuation starts in that file (1 = its first bar)"
        )
    window = file_bars[start_bar - 1 :]
    wanted = (meter.numerator, meter.denominator)
    begin, first_meter, _ = window[0]
    if first_meter != wanted:
        said = "has no time signature (MIDI's default: 4/4)" if not _meter_changes(midi) else "is in {}/{}"
        said = said.format(*first_meter)
        raise BadInputError(
            f"--reference: bar {start_bar} of {path.name} {said}, the job is in {meter}; the measures compare bars "
            "of one meter: give a reference in the job's meter"
        )
    kept, cut = 0, "then the file ends"
    for _, bar_meter, whole_bar in window:
        if bar_meter != wanted:
            cut = "then its meter changes to {}/{}".format(*bar_meter)
            break
        kept += 1
        if not whole_bar:
            cut = "then its meter changes within the bar"
            break
    last = start_bar + kept - 1
    note = ""
    if kept < bars:
        note = (
            f"the reference has {kept} of the job's {bars} bar(s) ({path.name} {bar_span(start_bar, last)}, {cut}): "
            f"the variants and the reference are measured over their first {kept} bar(s)"
        )
    end = begin + kept * round(meter.quarters_per_bar * midi.ticks_per_quarter)
    if kept < len(window):
        end = min(end, window[kept][0])
    content = whole.window(begin, end)
    if not content.notes:
        raise BadInputError(
            f"--reference: {path.name} has no notes in {bar_span(start_bar, last)}; give the bars that followed the "
            "region (with --reference-from-bar N when the file is the whole piece)"
        )
    parts = frozenset(n.channel for n in whole.notes)
    return Reference(path, start_bar, kept, content, parts, note)


# --- the comparison as segue eval reports it -------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One measure against the reference: ``variants`` (the variants' figure), ``against`` (what it is held to:
    the reference's figure; for ``in_scale:<variant>`` the region's own share; for ``variety`` the minimum 0.5),
    ``value`` (the gap, the ratio, the difference; for ``variety`` the identical pairs), ``ok`` (None: not counted,
    ``detail`` says why)."""

    name: str
    variants: float | None
    against: float | None
    value: float | None
    ok: bool | None
    detail: str


@dataclass(frozen=True)
class ReferenceScore:
    path: str
    from_bar: int
    bars: int  # measured
    comparisons: tuple[Comparison, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return all(c.ok is not False for c in self.comparisons)


def part_label(channel: int) -> str:
    """A part key's name: ``drums``, or the General MIDI name of its program."""
    return program_name(0, True) if channel == 9 else program_name(channel - 16)


def _r(x: float | None, digits: int = 3) -> float | None:
    return round(x, digits) if x is not None and math.isfinite(x) else None


def score_reference(
    reference: Reference,
    variants: Sequence[tuple[str, measures.MidiContent]],
    region: measures.MidiContent,
    meter: Meter,
) -> ReferenceScore:
    """The job's variants (id, content read ``by_part``) and its region against ``reference``."""
    bar_beats = meter.quarters_per_bar
    contents = [
        c.window(0, round(reference.bars * bar_beats * c.ticks_per_beat)) for _, c in variants
    ]  # the bars the reference has
    fit = compare(contents, region, reference.content, bar_beats, reference.bars)
    rows: list[Comparison] = []
    for name, each, ref, gap, what in (
        ("pitch_class_overlap", fit.variant_pc, fit.reference_pc, fit.pc_gap, "pitch classes"),
        ("onset_overlap", fit.variant_onset, fit.reference_onset, fit.onset_gap, "onset positions in the bar"),
    ):
        detail = f"{what}: the variants' mean overlap with the region against the reference's; gap within ±0.05"
        if gap is None:
            detail += " (not measured: no such notes in the region, the variants or the reference)"
        ok = abs(gap) <= OVERLAP_GAP if gap is not None else None
        rows.append(Comparison(name, _r(_mean(each)), _r(ref), _r(gap), ok, detail))
    low, high = DENSITY_RANGE
    for ch, mean in fit.variant_rates.items():
        label = f"notes_per_bar:{part_label(ch)}"
        if ch in fit.density:
            ratio = fit.density[ch]
            rows.append(
                Comparison(label, _r(mean, 2), _r(fit.reference_rates[ch], 2), _r(ratio, 2), low <= ratio <= high,
                           f"notes per bar, the variants' mean / the reference's; within x{low}-{high}")
            )  # fmt: skip
        else:
            why = "silent in the reference's bars" if ch in reference.parts_in_file else "absent from the reference"
            rows.append(Comparison(label, _r(mean, 2), None, None, None, f"{why}: not counted"))
    own = fit.region_share
    for (vid, _), share in zip(variants, fit.shares or (None,) * len(variants), strict=True):
        if share is None or own is None:
            rows.append(
                Comparison(
                    f"in_scale:{vid}",
                    _r(share),
                    _r(own),
                    None,
                    None,
                    "no pitched notes (variant or region): not counted",
                )
            )
            continue
        rows.append(
            Comparison(f"in_scale:{vid}", _r(share), _r(own), _r(share - own), share >= own - SCALE_MARGIN,
                       f"share of pitched notes in {fit.region_key}'s scale against the region's own; at least -0.1")
        )  # fmt: skip
    if len(variants) > 1 and fit.variety is not None:
        ok = fit.variety >= VARIETY_MIN and fit.identical == 0
        detail = (
            f"mean pairwise note-set distance between the variants, at least {VARIETY_MIN}; "
            f"{fit.identical} identical pair(s)"
        )
        rows.append(Comparison("variety", _r(fit.variety), VARIETY_MIN, float(fit.identical), ok, detail))
    notes = [reference.note] if reference.note else []
    if len(variants) < 2:
        notes.append("one variant: no variety measure")
    return ReferenceScore(str(reference.path), reference.from_bar, reference.bars, tuple(rows), tuple(notes))


def format_reference(score: ReferenceScore) -> list[str]:
    """The table's lines for the comparison with the reference."""
    last = score.from_bar + score.bars - 1
    head = ["measure", "variants", "reference", "gap/ratio", "ok"]
    rows = []
    for c in score.comparisons:
        against = "-" if c.against is None else f"{c.against:g}"
        if c.name.startswith("in_scale:"):
            against += " (region)" if c.against is not None else ""
        value = "-" if c.value is None else f"{c.value:g}"
        if c.name.startswith("notes_per_bar:") and c.value is not None:
            value = f"x{c.value:g}"
        if c.name == "variety":
            against, value = f">= {c.against:g}", f"{c.value:g} identical"
        mark = "ok" if c.ok else "NO" if c.ok is False else c.detail
        rows.append([c.name, "-" if c.variants is None else f"{c.variants:g}", against, value, mark])
    out = [
        f"against the reference {score.path}, {bar_span(score.from_bar, last)} ({score.bars} bar(s)):",
        "",
        *table_lines(head, rows),
        "",
    ]
    shown: set[str] = set()
    for c in score.comparisons:
        kind = c.name.split(":")[0]
        if c.ok is not None and kind not in shown:
            shown.add(kind)
            out.append(f"  {kind}: {c.detail}")
    out += [f"note: {n}" for n in score.notes]
    return out
