"""Guidance from the region: its own statistics, read from the prompt's tokens, become logit biases for the sampler.

The model was trained on folk tunes and chorales; a producer's region speaks its own language. These priors pull
every variant towards it, each scaled by ``similarity`` (1 = close to the region, 0 = free):

- **pitch**: the region's pitch-class profile, per part (blended with the whole region's), as a smoothed
  log-prior added to the ``Pitch_`` logits (not only a penalty on absent classes);
- **rhythm**: the region's onset positions in the bar, as a log-prior on ``Position_`` tokens (each part's own
  positions as a prior on its ``Program_`` token there is built but off: ``part_position_weight``);
- **note lengths** (``hold_notes``): each part's ``Duration_`` histogram as a log-prior, and with ``hold_notes``
  durations more than four duration steps under the part's shortest usual one are forbidden (a pad of whole
  notes holds at least 3.5 beats), so held chords stay held;
- **density**: each part's notes per bar times ``density`` / ``part_density`` becomes a target the sampler
  steers to (a bonus while a part is behind it, a penalty once it is a chord ahead); the notes per bar are read
  from the model's prompt by default; ``density_from`` can read them over the whole region and/or from each
  part's first note on (a part that enters in the region's third bar, a fugue's later voice or a producer's
  build-up, counted at its own rate, not thinned over the bars before it came in), ``density_half_life`` weighs
  recent bars more (both measured, not better than the prompt's reading: see DENSITY_FROM);
- **end on the tonic**: in the last bar the lowest part plays only the tonic and the others favour the tonic
  triad (the tonic from the region's pitch-class profile, Krumhansl-Kessler).

Every statistic comes from the prompt's token ids, so it is in the model's own units (positions, duration
tokens) and needs no second parse of the file. Numbers are in nats; the defaults are the settings measured best
by ``bench/bench_midi_quality.py`` (docs/symbolic-engine.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from engine.api import GenerationParams
from engine.evaluate.music import estimate_key
from engine.symbolic.constraints import Constraints, Vocabulary

# Measured defaults (bench/bench_midi_quality.py; docs/symbolic-engine.md "Fitting the region")
DEFAULT_SIMILARITY = 0.7
DEFAULT_DENSITY = 1.0
DEFAULT_HOLD_NOTES = True
DEFAULT_END_ON_TONIC = False
# where each part's target notes per bar is read (docs/symbolic-engine.md, "Notes per bar: the density target"):
# "prompt": the model's prompt (the region's last bars that fit half a context: one bar of a dense region), as
# before; "prompt-entry": the prompt from the part's first note on; "region": the whole region's mean; "entry":
# the whole region from the part's first note on. Measured (bench/midi_quality_density.py): "entry" and
# "prompt-entry" did not beat "prompt" by the margin set before the verification runs, so it stays
DENSITY_FROM = "prompt"
DENSITY_HALF_LIFE = 0.0  # bars: a bar this far before the region's last counts half (0: every bar alike)
DENSITY_SOURCES = ("prompt", "prompt-entry", "region", "entry")
DENSITY_FIT_TARGET = False
PITCH_WEIGHT = 0.3  # nats per unit of log-prior at similarity 1 (1.0 overshoots: bench)
CACHE_PITCH_WEIGHT = 0.0  # with the region cache on: off (the cache's pitch slot does that work per part)
POSITION_WEIGHT = 1.0
PART_POSITION_WEIGHT = 0.0  # each part's own positions on its Program token: off (make demo: the pad fell silent)
DURATION_WEIGHT = 1.0
PART_BLEND = 8.0  # pseudo-notes of the whole region's profile mixed into each part's
SMOOTHING = 0.5  # pseudo-counts per pitch class / position / duration
HOLD_FLOOR = -math.inf  # durations a held part never plays (with hold_notes): -8 nats still let 0.5-beat pads through
TONIC_BONUS = 2.0  # nats for tonic-triad pitch classes in the last bar (end_on_tonic)
TONIC_PENALTY = 2.0  # nats off other pitch classes in the last bar


@dataclass(frozen=True)
class GuidanceSettings:
    """What the sampler is told beyond the grammar; :func:`settings_from_params` fills it from the job."""

    enabled: bool = True  # False: the sampler as it was (grammar, key penalty, arrangement bonus) - the baseline
    similarity: float = DEFAULT_SIMILARITY
    pitch_weight: float = PITCH_WEIGHT
    # the pitch-class prior's weight while the region cache's pitch slot is on (which otherwise does its work)
    cache_pitch_weight: float = CACHE_PITCH_WEIGHT
    position_weight: float = POSITION_WEIGHT
    part_position_weight: float = PART_POSITION_WEIGHT
    duration_weight: float = DURATION_WEIGHT
    hold_notes: bool = DEFAULT_HOLD_NOTES
    density: float = DEFAULT_DENSITY
    part_density: dict[int, float] = field(default_factory=dict)  # program -> factor (overrides density)
    density_control: bool = True  # steer each part to its target notes per bar (else: only the old bonus)
    density_from: str = DENSITY_FROM  # one of DENSITY_SOURCES
    density_half_life: float = DENSITY_HALF_LIFE
    # the candidates' fit measures notes per bar against these targets (else: the region's mean x the density)
    density_fit_target: bool = DENSITY_FIT_TARGET
    end_on_tonic: bool = DEFAULT_END_ON_TONIC

    def describe(self) -> str:
        parts = ", ".join(f"{p}: {f:g}" for p, f in sorted(self.part_density.items()))
        return (
            f"similarity {self.similarity:g}, density {self.density:g}"
            + (f" (parts {parts})" if parts else "")
            + f", hold_notes {'on' if self.hold_notes else 'off'}, end_on_tonic {'on' if self.end_on_tonic else 'off'}"
        )


def settings_from_params(params: GenerationParams, part_names: dict[int, str]) -> GuidanceSettings:
    """The job's controls, ``None`` replaced by the measured defaults; part densities by part name -> program."""
    by_name = {name: program for program, name in part_names.items()}
    part_density: dict[int, float] = {}
    for name, factor in params.part_density:
        if name in by_name:
            part_density[by_name[name]] = float(factor)
    return GuidanceSettings(
        similarity=DEFAULT_SIMILARITY if params.similarity is None else float(params.similarity),
        hold_notes=DEFAULT_HOLD_NOTES if params.hold_notes is None else bool(params.hold_notes),
        density=DEFAULT_DENSITY if params.density is None else float(params.density),
        part_density=part_density,
        end_on_tonic=DEFAULT_END_ON_TONIC if params.end_on_tonic is None else bool(params.end_on_tonic),
    )


@dataclass
class RegionStats:
    """Counts read from the prompt's tokens: what the region plays, where in the bar and how long."""

    bars: int
    pitch_classes: dict[int, np.ndarray]  # program -> [12] note counts (pitched parts)
    pitches: dict[int, list[int]]  # program -> MIDI pitches played (drums: drum notes)
    positions: np.ndarray  # [positions per bar] onsets (distinct position per part)
    part_positions: dict[int, np.ndarray]  # program -> [positions per bar] its onsets
    durations: dict[int, np.ndarray]  # program -> [len(vocab.durations)] counts
    notes: dict[int, int]  # program -> notes
    onsets: dict[int, int]  # program -> distinct onset positions (chords count once)
    bar_notes: dict[int, list[int]] = field(default_factory=dict)  # program -> notes started in each bar
    first_onset: dict[int, float] = field(default_factory=dict)  # program -> its first note, in bars from the start

    def chord_size(self, program: int) -> float:
        return self.notes.get(program, 0) / max(1, self.onsets.get(program, 0))

    def total_pitch_classes(self) -> np.ndarray:
        total = np.zeros(12)
        for counts in self.pitch_classes.values():
            total += counts
        return total


def region_stats(prompt_ids: Sequence[int], vocab: Vocabulary, positions_per_bar: int) -> RegionStats:
    """Walk the prompt's REMI tokens (Bar, Position, Program, Pitch, Velocity, Duration) and count."""
    position_of = {tid: p for p, tid in enumerate(vocab.positions)}
    program_of = {tid: p for p, tid in vocab.programs.items()}
    pitch_of = {tid: p for p, tid in vocab.pitches.items()}
    drum_of = {tid: p for p, tid in vocab.drum_pitches.items()}
    duration_index = {tid: i for i, tid in enumerate(vocab.durations)}
    ppb = max(1, positions_per_bar)
    stats = RegionStats(0, {}, {}, np.zeros(ppb), {}, {}, {}, {})
    position, program = 0, None
    onset_seen: set[tuple[int, int, int]] = set()
    for tid in prompt_ids:
        if tid == vocab.bar:
            stats.bars += 1
        elif tid in position_of:
            position = position_of[tid]
        elif tid in program_of:
            program = program_of[tid]
        elif program is not None and (tid in pitch_of or tid in drum_of):
            pitch = pitch_of.get(tid, drum_of.get(tid, 0))
            stats.pitches.setdefault(program, []).append(pitch)
            stats.notes[program] = stats.notes.get(program, 0) + 1
            bar = max(0, stats.bars - 1)
            per_bar = stats.bar_notes.setdefault(program, [])
            per_bar.extend([0] * (bar + 1 - len(per_bar)))
            per_bar[bar] += 1
            stats.first_onset.setdefault(program, bar + min(position, ppb) / ppb)
            if program != -1 and tid in pitch_of:
                stats.pitch_classes.setdefault(program, np.zeros(12))[pitch % 12] += 1
            onset = (stats.bars, position, program)
            if onset not in onset_seen:
                onset_seen.add(onset)
                stats.onsets[program] = stats.onsets.get(program, 0) + 1
                if position < len(stats.positions):
                    stats.positions[position] += 1
                    own = stats.part_positions.setdefault(program, np.zeros(len(stats.positions)))
                    own[position] += 1
        elif program is not None and tid in duration_index:
            stats.durations.setdefault(program, np.zeros(len(vocab.durations)))[duration_index[tid]] += 1
    stats.bars = max(1, stats.bars)
    return stats


def notes_per_bar(stats: RegionStats, program: int, source: str = DENSITY_FROM, half_life: float = 0.0) -> float:
    """The part's notes per bar in ``stats`` (read from the region's tokens): over every bar (``"region"``,
    ``"prompt"``: the same count, the caller passes the tokens it means), or from the part's first note on
    (``"entry"``, ``"prompt-entry"``: at least one bar, so a part entering on the last beat is not counted four
    times). With a ``half_life`` (bars) each bar weighs 0.5 ** (its distance from the last bar / half_life)."""
    if source not in DENSITY_SOURCES:
        raise ValueError(f"unknown density source {source!r}: one of {', '.join(DENSITY_SOURCES)}")
    counts = stats.bar_notes.get(program, [])
    bars = max(1, stats.bars)
    if not counts or sum(counts) == 0:
        return 0.0
    start = stats.first_onset.get(program, 0.0) if source.endswith("entry") else 0.0
    if bars - start <= 1.0:  # the part came in during the last bar: its notes over one bar
        return float(sum(counts))
    # each bar's share of the time the part has been playing (the bar it entered in: the part after its entry)
    cover = [min(1.0, max(0.0, i + 1 - start)) for i in range(bars)]
    weight = [0.5 ** ((bars - 1 - i) / half_life) if half_life > 0 else 1.0 for i in range(bars)]
    played = sum(w * n for w, n in zip(weight, counts, strict=False))
    time = sum(w * c for w, c in zip(weight, cover, strict=True))
    return played / time


def _log_prior(counts: np.ndarray, smoothing: float = SMOOTHING) -> np.ndarray:
    """log p of a smoothed histogram, shifted so its most likely bin is 0 (a prior only takes away)."""
    p = (counts + smoothing) / (counts.sum() + smoothing * len(counts))
    logp = np.log(p)
    out: np.ndarray = logp - logp.max()
    return out


def tonic_of(stats: RegionStats) -> int | None:
    """The region's tonic pitch class (Krumhansl-Kessler on its pitch-class profile), None without pitches."""
    key = estimate_key(stats.total_pitch_classes())
    return key.tonic if key is not None else None


def tonic_triad(stats: RegionStats) -> tuple[int, frozenset[int]] | None:
    key = estimate_key(stats.total_pitch_classes())
    if key is None:
        return None
    third = 4 if key.mode == "major" else 3
    return key.tonic, frozenset({key.tonic, (key.tonic + third) % 12, (key.tonic + 7) % 12})


def guided_constraints(
    constraints: Constraints,
    stats: RegionStats,
    vocab: Vocabulary,
    settings: GuidanceSettings,
    region: RegionStats | None = None,
) -> Constraints:
    """``constraints`` with the region's priors, density targets and cadence as the settings ask.

    ``stats`` is read from the model's prompt, ``region`` (when given) from the whole region's tokens: the density
    targets come from it unless ``settings.density_from`` reads the prompt (``"prompt"``, ``"prompt-entry"``)."""
    s = settings.similarity
    pitch_bias: dict[int, tuple[float, ...]] = {}
    total = stats.total_pitch_classes()
    overall = total / total.sum() if total.sum() > 0 else np.full(12, 1 / 12)
    for program in constraints.parts:
        if program == -1:
            continue
        counts = stats.pitch_classes.get(program, np.zeros(12)) + PART_BLEND * overall
        prior = _log_prior(counts) * settings.pitch_weight * s
        pitch_bias[program] = tuple(float(prior[p % 12]) for p in range(128))
    positions = _log_prior(stats.positions) * settings.position_weight * s
    position_bias = tuple(float(x) for x in positions)
    # each part's own onset positions, as a prior on its Program token at each position (a pad on the downbeats)
    part_position_bias: dict[int, tuple[float, ...]] = {}
    overall_positions = stats.positions / max(1.0, stats.positions.sum())
    for program in constraints.parts:
        own = stats.part_positions.get(program)
        if settings.part_position_weight > 0 and own is not None and own.sum() > 0:
            prior = _log_prior(own + PART_BLEND * overall_positions) * settings.part_position_weight * s
            part_position_bias[program] = tuple(float(x) for x in prior)
    duration_bias: dict[int, tuple[float, ...]] = {}
    all_durations = sum(stats.durations.values(), np.zeros(len(vocab.durations)))
    for program in constraints.parts:
        counts = stats.durations.get(program)
        if counts is None or counts.sum() == 0:
            continue
        weight = settings.duration_weight * (max(s, 0.5) if settings.hold_notes else s)
        blended = counts + 0.25 * all_durations / max(1.0, all_durations.sum()) * counts.sum()
        # neighbouring duration tokens share a little mass (a held whole note also makes a dotted half likely)
        kernel = np.convolve(blended, [0.25, 0.5, 0.25], mode="same") + 0.5 * blended
        bias = _log_prior(kernel) * weight
        if settings.hold_notes:
            used = np.flatnonzero(counts)
            shortest = int(np.percentile(used, 10, method="lower")) if used.size else 0
            # forbid durations more than four duration tokens under the part's shortest usual one
            cut = max(0, shortest - 4)
            bias[:cut] = np.minimum(bias[:cut], HOLD_FLOOR)
        duration_bias[program] = tuple(float(x) for x in bias)
    density_target: dict[int, float] = {}
    chord_size: dict[int, float] = {}
    for program in constraints.parts:
        factor = settings.part_density.get(program, settings.density)
        source = region if region is not None and not settings.density_from.startswith("prompt") else stats
        rate = notes_per_bar(source, program, settings.density_from, settings.density_half_life)
        density_target[program] = rate * factor
        chord_size[program] = max(1.0, stats.chord_size(program))
    final_bias: dict[int, tuple[float, ...]] = {}
    if settings.end_on_tonic:
        triad = tonic_triad(stats)
        pitched = [p for p in constraints.parts if p != -1]
        if triad is not None and pitched:
            tonic, chord = triad
            lowest = min(pitched, key=lambda p: float(np.mean(stats.pitches.get(p, [60]))))
            for program in pitched:
                if program == lowest and any(x % 12 == tonic for x in constraints.parts[program]):
                    final_bias[program] = tuple(0.0 if p % 12 == tonic else -math.inf for p in range(128))
                else:
                    final_bias[program] = tuple(TONIC_BONUS if p % 12 in chord else -TONIC_PENALTY for p in range(128))
    return replace(
        constraints,
        pitch_bias=pitch_bias,
        position_bias=position_bias,
        part_position_bias=part_position_bias,
        duration_bias=duration_bias,
        density_target=density_target if settings.density_control else {},
        chord_size=chord_size,
        final_bar_pitch_bias=final_bias,
    )
