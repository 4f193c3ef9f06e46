"""Continue a MIDI region with a symbolic model: prompt on the bar grid -> K sampled variants -> parts.

The flow (one call per job): encode the last bars of the region that fit the context, sample K
continuations in one batch with :func:`engine.symbolic.sampling.sample_continuations`, decode each into
:class:`~engine.midi_io.PartNotes` on the region's ticks, exactly N bars long.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from miditok import REMI, TokSequence
from symusic.core import ScoreTick

from engine.api import CancelToken, GenerationParams
from engine.checkpoints import Checkpoint
from engine.errors import BadInputError, EngineError
from engine.evaluate import midi as measures
from engine.midi_io import Note, PartNotes
from engine.nn.model import GPT
from engine.symbolic.adapt import AdaptReport, AdaptSettings, adapted
from engine.symbolic.cache import DEFAULT_CACHE, CacheSettings, TokenKinds
from engine.symbolic.candidates import (
    MIN_DISTANCE,
    SEED_STRIDE,
    candidate_seeds,
    channel_of,
    content_from_parts,
    content_from_score,
    distance,
    fit,
    select,
)
from engine.symbolic.constraints import POSITIONS_PER_BEAT, Constraints, Vocabulary, constraints_for
from engine.symbolic.guidance import (
    DEFAULT_SIMILARITY,
    GuidanceSettings,
    guided_constraints,
    region_stats,
    settings_from_params,
)
from engine.symbolic.mixer import CacheMixer, CacheReport, with_history
from engine.symbolic.region import Region, prompt_window
from engine.symbolic.sampling import ProgressFn, sample_continuations
from engine.symbolic.weights import load_symbolic

log = logging.getLogger(__name__)

MAX_PROMPT_BARS = 32
WHOLE_REGION_BLOCKS = 4  # CacheSettings.whole_region: the cache reads at most this many model contexts of tokens
DEFAULT_KEY_PENALTY = 1.5  # nats; see engine.symbolic.constraints
DEFAULT_ARRANGEMENT_BONUS = float(os.environ.get("SEGUE_ARRANGEMENT_BONUS", "3.0"))  # nats; 0 turns it off
DEFAULT_CANDIDATES = 2  # per variant: ahead of 1 on the targets summed over the sets (docs/symbolic-engine.md)
MAX_CANDIDATE_ROWS = 32  # rows of one sampling batch, whatever the variants x candidates
DEFAULT_ADAPT: AdaptSettings | None = None  # measured: it does not pay (docs/symbolic-engine.md)
DEFAULT_REGION_CACHE: CacheSettings | None = DEFAULT_CACHE  # measured: composer's loss -19 % (docs/symbolic-engine.md)


@dataclass
class ContinuationInfo:
    """What :func:`continue_region` used, for job.json: its notes and timings."""

    guidance: str = ""
    candidates: int = 0
    seeds: list[int] = field(default_factory=list)  # of the kept variants, in order
    adapt: AdaptReport | None = None
    cache: CacheReport | None = None

    def notes(self) -> tuple[str, ...]:
        out = [f"region guidance: {self.guidance}"] if self.guidance else []
        if self.candidates > len(self.seeds) > 0:
            out.append(f"{len(self.seeds)} variants kept of {self.candidates} candidates (best fit, all different)")
        if self.adapt is not None:
            out.append(self.adapt.describe())
        out.append(self.cache.describe() if self.cache is not None else "no region cache")
        return tuple(out)

    def timings(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.adapt is not None:
            out.update(adapt_seconds=self.adapt.seconds, adapt_steps=float(self.adapt.steps))
        if self.cache is not None:
            out.update(cache_seconds=self.cache.seconds, cache_tokens=float(self.cache.tokens_written))
        return out


@dataclass(frozen=True)
class SymbolicModel:
    name: str
    model: GPT
    tokenizer: REMI
    vocab: Vocabulary

    @classmethod
    def load(cls, ckpt: Checkpoint, device: str | torch.device = "cpu") -> SymbolicModel:
        model, tokenizer = load_symbolic(ckpt, device)
        return cls(ckpt.name, model, tokenizer, Vocabulary.from_tokenizer(tokenizer))


def encode_prompt(region: Region, tokenizer: REMI, vocab: Vocabulary, max_tokens: int) -> list[int]:
    """Token ids of the region's last bars (as many as fit ``max_tokens``), ending on the region's last bar line.

    Empty trailing bars are written as ``Bar TimeSig`` so the prompt has exactly one bar token per bar.
    """
    bars = min(region.length_bars, MAX_PROMPT_BARS)
    meter = (region.meter.numerator, region.meter.denominator)
    time_signature = vocab.time_signatures.get(meter)
    if time_signature is None:
        raise BadInputError(f"this model cannot read or write {region.meter}")
    while True:
        window = prompt_window(region, bars)
        encoded = tokenizer.encode(window)
        sequence = encoded[0] if isinstance(encoded, list) else encoded
        ids = [int(i) for i in sequence.ids]
        missing_bars = bars - ids.count(vocab.bar)
        ids.extend([vocab.bar, time_signature] * max(0, missing_bars))
        if len(ids) <= max_tokens or bars == 1:
            break
        bars = max(1, min(bars - 1, int(bars * max_tokens / len(ids))))
    if len(ids) > max_tokens:  # one very dense bar: keep its end
        ids = ids[-max_tokens:]
    log.debug("prompt: %d bars, %d tokens", bars, len(ids))
    return ids


def region_constraints(
    region: Region,
    vocab: Vocabulary,
    bars: int,
    key_penalty: float = DEFAULT_KEY_PENALTY,
    arrangement_bonus: float = DEFAULT_ARRANGEMENT_BONUS,
) -> Constraints:
    ranges = {p.program: (p.pitch_min, p.pitch_max) for p in region.parts}
    drum_pitches: list[int] = []
    pitch_classes = [0] * 12
    for track in region.score.tracks:
        for note in track.notes:
            if track.is_drum:
                drum_pitches.append(int(note.pitch))
            else:
                pitch_classes[int(note.pitch) % 12] += 1
    density = {p.program: p.note_count / region.length_bars for p in region.parts}
    return constraints_for(
        vocab,
        region.meter,
        bars,
        ranges,
        drum_pitches,
        pitch_classes,
        key_penalty,
        region_grid(region),
        density,
        arrangement_bonus,
    )


def region_grid(region: Region, coarsest: int = 4) -> int:
    """The region's onset grid in token positions (1/8 of the meter's beat): 2 for a 16th-note grid in 4/4.

    The gcd of every onset's position in its bar, capped at ``coarsest`` (an 8th note) so that a region of
    long notes does not forbid 8th notes; 1 when any onset falls between positions.
    """
    unit = region.ticks_per_quarter * 4 / region.meter.denominator / POSITIONS_PER_BEAT
    step = 0
    for track in region.score.tracks:
        for note in track.notes:
            position = (int(note.time) % region.bar_ticks) / unit
            if abs(position - round(position)) > 1e-6:
                return 1
            step = math.gcd(step, round(position))
    return min(step, coarsest) if step else coarsest


def decode_variant(
    tokens: Sequence[int], tokenizer: REMI, region: Region, bars: int, part_names: dict[int, str]
) -> tuple[PartNotes, ...]:
    """Decode one sampled token list into parts on the region's ticks, clipped to ``bars`` bars."""
    try:
        score: ScoreTick = tokenizer.decode(TokSequence(ids=list(tokens)))
    except Exception as e:  # miditok raises a variety of errors on malformed sequences
        raise EngineError(f"could not decode a generated sequence: {e}") from e
    scale = region.ticks_per_quarter / int(score.ticks_per_quarter)
    end_tick = bars * region.bar_ticks
    notes: dict[int, list[Note]] = {}
    for track in score.tracks:
        program = -1 if track.is_drum else int(track.program)
        for n in track.notes:
            start = round(int(n.time) * scale)
            if start >= end_tick:
                continue
            duration = max(1, min(round(int(n.duration) * scale), end_tick - start))
            notes.setdefault(program, []).append(Note(start, duration, int(n.pitch), int(n.velocity)))
    return tuple(
        PartNotes(part_names[p.program], p.program, tuple(sorted(notes.get(p.program, []), key=lambda n: n.start)))
        for p in region.parts
    )


def continue_region(
    model: SymbolicModel,
    region: Region,
    params: GenerationParams,
    seeds: Sequence[int],
    part_names: dict[int, str],
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    key_penalty: float = DEFAULT_KEY_PENALTY,
    use_cache: bool = True,
    arrangement_bonus: float = DEFAULT_ARRANGEMENT_BONUS,
    guidance: GuidanceSettings | None = None,
    candidates: int | None = None,
    adapt: AdaptSettings | None | bool = True,
    info: ContinuationInfo | None = None,
    cache: CacheSettings | None | bool = True,
) -> list[tuple[PartNotes, ...]]:
    """Sample ``len(seeds)`` continuations of ``region``, each exactly ``params.bars`` bars.

    ``guidance`` (default: from ``params``, None meaning the measured defaults of
    :mod:`engine.symbolic.guidance`; ``GuidanceSettings(enabled=False)`` for none), ``candidates`` (candidates
    sampled per variant, default :data:`DEFAULT_CANDIDATES`), ``adapt`` (``True``: the measured default,
    ``None``/``False``: none) and ``cache`` (the region cache mixed into the model, :mod:`engine.symbolic.cache`;
    ``True``: :data:`DEFAULT_REGION_CACHE`, ``None``/``False``: none) say how the region steers the model.
    ``info``, when given, receives what was used: the settings in words, the variants' seeds, the adaptation's
    and the cache's reports.
    """
    block = model.model.config.block_size
    prompt_ids = encode_prompt(region, model.tokenizer, model.vocab, max_tokens=block // 2)
    constraints = region_constraints(region, model.vocab, params.bars, key_penalty, arrangement_bonus)
    settings = guidance if guidance is not None else settings_from_params(params, part_names)
    cache_settings = DEFAULT_REGION_CACHE if cache is True else (cache or None)
    if cache is True and cache_settings is not None and settings.enabled:
        # the similarity control scales the cache too: its weights were measured at the default similarity
        cache_settings = cache_settings.scaled(settings.similarity / DEFAULT_SIMILARITY)
    if cache_settings is not None and cache_settings.pitch > 0:
        # the cache's pitch slot (per part, intervals) replaces the pitch-class prior: both together overshot the
        # composers' pitch-class overlap on the tuning pieces (docs/symbolic-engine.md)
        settings = replace(settings, pitch_weight=settings.cache_pitch_weight)
    whole_ids: list[int] | None = None  # the region's earlier bars too: encoded once, for the guidance or the cache
    if settings.enabled:
        stats = region_stats(prompt_ids, model.vocab, constraints.positions_per_bar)
        whole_stats = None
        if not settings.density_from.startswith("prompt"):  # the density targets read the whole region
            whole_ids = encode_prompt(region, model.tokenizer, model.vocab, max_tokens=WHOLE_REGION_BLOCKS * block)
            whole_stats = region_stats(whole_ids, model.vocab, constraints.positions_per_bar)
        constraints = guided_constraints(constraints, stats, model.vocab, settings, whole_stats)
    factor = DEFAULT_CANDIDATES if candidates is None else max(1, int(candidates))
    factor = max(1, min(factor, MAX_CANDIDATE_ROWS // max(1, len(seeds))))
    pool_seeds = candidate_seeds(seeds, factor)
    adapt_settings = DEFAULT_ADAPT if adapt is True else (adapt or None)
    mixer = None
    if cache_settings is not None and cache_settings.active:
        kinds = TokenKinds.from_tokenizer(model.tokenizer)
        started = time.perf_counter()  # the loop memory's forward pass over the prompt counts as the cache's time
        memory_ids = prompt_ids
        if cache_settings.whole_region:  # the cache reads the region's earlier bars too (the prompt last)
            if whole_ids is None:
                whole_ids = encode_prompt(region, model.tokenizer, model.vocab, max_tokens=WHOLE_REGION_BLOCKS * block)
            memory_ids = with_history(whole_ids, prompt_ids, model.vocab.bar)
        probs = prompt_probs(model.model, memory_ids) if cache_settings.loop is not None else None
        mixer = CacheMixer(memory_ids, kinds, len(pool_seeds), cache_settings, probs)
        mixer.report.seconds = time.perf_counter() - started
    with adapted(model.model, prompt_ids, model.tokenizer, adapt_settings, cancel) as adapt_report:
        rows = sample_continuations(
            model.model,
            prompt_ids,
            model.vocab,
            constraints,
            pool_seeds,
            temperature=params.temperature,
            top_p=params.top_p,
            progress=progress,
            cancel=cancel,
            use_cache=use_cache,
            logits_hook=mixer,
            # where the loop memory leads, the density control steps back, unless the producer asked for a density
            # other than the region's own
            density_scale=mixer.density_scale if mixer is not None and _own_density(settings) else None,
        )
    decoded = [decode_variant(tokens, model.tokenizer, region, params.bars, part_names) for tokens in rows]
    order = list(range(len(seeds)))
    if factor > 1:
        groups = [list(range(i, len(pool_seeds), len(seeds))) for i in range(len(seeds))]
        order = choose(region, decoded, params.bars, groups, settings, constraints)
    kept = [decoded[i] for i in order]
    if mixer is not None and mixer.report.loop is not None:
        job = _Job(model, region, params, part_names, prompt_ids, constraints, cancel, use_cache)
        kept = _sample_repeats_again(job, kept, [(int(s) + factor * SEED_STRIDE) % 2**63 for s in seeds], mixer, probs)
    if info is not None:
        info.guidance = settings.describe() if settings.enabled else "off"
        info.candidates = len(pool_seeds)
        info.seeds = [int(s) for s in seeds]
        info.adapt = adapt_report
        info.cache = mixer.report if mixer is not None else None
    return kept


@torch.inference_mode()
def prompt_probs(model: GPT, prompt: Sequence[int]) -> list[float]:
    """The model's probability of each prompt token given the ones before (the first: none, 0). A prompt longer
    than the model's context is scored in windows: each token given at least half a context before it."""
    device = next(model.parameters()).device
    block, half = model.config.block_size, model.config.block_size // 2
    out = [0.0]
    start = 0  # the window's first token; its tokens from `first` on are scored (`first` - 1 is the last scored)
    while len(out) < len(prompt):
        first = len(out)
        ids = torch.tensor([list(prompt[start : start + block])], dtype=torch.long, device=device)
        logits, _ = model(ids)
        log_probs = torch.log_softmax(logits[0, :-1].float(), dim=-1)
        picked = log_probs.gather(1, ids[0, 1:, None])[:, 0].exp()
        out += [float(x) for x in picked[first - start - 1 :].cpu()]
        start = len(out) - half
    return out


@dataclass(frozen=True)
class _Job:
    """What a second sampling pass needs of the job."""

    model: SymbolicModel
    region: Region
    params: GenerationParams
    part_names: dict[int, str]
    prompt_ids: list[int]
    constraints: Constraints
    cancel: CancelToken | None
    use_cache: bool


def _own_density(settings: GuidanceSettings) -> bool:
    """Whether the density asked is the region's own (every part at factor 1)."""
    return settings.density == 1.0 and all(factor == 1.0 for factor in settings.part_density.values())


def _sample_repeats_again(
    job: _Job, kept: list[tuple[PartNotes, ...]], seeds: Sequence[int], mixer: CacheMixer, probs: list[float] | None
) -> list[tuple[PartNotes, ...]]:
    """``kept`` with each variant that only repeats an earlier one (a plain loop copied by both) sampled again
    (seed ``seeds[i]``) without the loop memory and with the cache at half its weights; the report counts them."""
    repeats = near_copies(job.region, kept, job.params.bars)
    if not repeats or mixer.report.loop is None:
        return kept
    settings = mixer.report.settings
    loose = replace(settings.scaled(0.5), loop=settings.loop)
    again = CacheMixer(mixer.region_tokens, mixer.kinds, len(repeats), loose, probs, [0.0] * len(repeats))
    rows = sample_continuations(job.model.model, job.prompt_ids, job.model.vocab, job.constraints,
                                [seeds[i] for i in repeats], temperature=job.params.temperature,
                                top_p=job.params.top_p, cancel=job.cancel, use_cache=job.use_cache,
                                logits_hook=again)  # fmt: skip
    out = list(kept)
    for i, tokens in zip(repeats, rows, strict=True):
        out[i] = decode_variant(tokens, job.model.tokenizer, job.region, job.params.bars, job.part_names)
    mixer.report.seconds += again.report.seconds
    mixer.report.loop.resampled = len(repeats)
    return out


def near_copies(region: Region, variants: Sequence[tuple[PartNotes, ...]], bars: int) -> list[int]:
    """Positions of the variants whose notes are (almost) those of an earlier one (symbolic.candidates)."""
    start = max(0, region.place_at_tick - region.length_bars * region.bar_ticks)
    division = measures.onset_grid(content_from_score(region.score, start, region.place_at_tick)) or 4
    contents = [content_from_parts(parts, region.ticks_per_quarter, bars * region.bar_ticks) for parts in variants]
    note_sets = [measures.note_set(c, division) for c in contents]
    nearest = [min(distance(note_sets[i], note_sets[j]) for j in range(i)) for i in range(1, len(note_sets))]
    return [i for i, d in enumerate(nearest, start=1) if d < MIN_DISTANCE]


def choose(
    region: Region,
    decoded: Sequence[tuple[PartNotes, ...]],
    bars: int,
    groups: Sequence[Sequence[int]],
    settings: GuidanceSettings,
    constraints: Constraints | None = None,
) -> list[int]:
    """Indices of the candidates, one per group, fitting the region best while differing (symbolic.candidates).

    With ``settings.density_fit_target`` and the guidance's density targets in ``constraints``, a candidate's
    notes per bar are measured against those targets (the fit asks for the region's mean times a factor: the
    factor is the target over that mean), else against the region's mean times the density asked."""
    tpq = region.ticks_per_quarter
    bar_beats = region.meter.quarters_per_bar
    start = max(0, region.place_at_tick - region.length_bars * region.bar_ticks)
    region_content = content_from_score(region.score, start, region.place_at_tick)
    scale = measures.region_scale_share(region_content)
    density = {channel_of(p.program): settings.part_density.get(p.program, settings.density) for p in region.parts}
    targets = constraints.density_target if constraints is not None and settings.density_fit_target else {}
    mean = measures.notes_per_bar(region_content, bar_beats, region.length_bars)
    for program, target in targets.items():
        if mean.get(channel_of(program), 0.0) > 0:
            density[channel_of(program)] = target / mean[channel_of(program)]
    contents = [content_from_parts(parts, tpq, bars * region.bar_ticks) for parts in decoded]
    fits = [fit(c, region_content, bar_beats, bars, region.length_bars, scale, density) for c in contents]
    division = measures.onset_grid(region_content) or 4
    note_sets = [measures.note_set(c, division) for c in contents]
    return select(fits, note_sets, groups)
