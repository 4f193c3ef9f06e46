"""``segue-concat``: continue an audio region with its own sound; the musical decisions come from a model fitted
on the region (units -> codes -> prior -> concatenative decoder). No weights, no torch, no GPU.

:class:`ConcatModel` is what :class:`engine.pipelines.context.Models` loads for the model ``segue-concat``
(its folder in ``engine/models/`` holds only ``config.json``). Per job: the region is analysed once
(:func:`engine.audio.concat.units.analyse_region`, :func:`engine.audio.concat.codes.quantise`), then each variant
is planned with its own seed (:func:`engine.audio.concat.prior.plan_continuation`) and rendered
(:func:`engine.audio.concat.decode.render_plan`) at the region's rate and channel count, exactly N bars long.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine.api import CancelToken, GenerationParams
from engine.audio.audio_io import Audio
from engine.audio.concat.codes import quantise
from engine.audio.concat.decode import match_region_loudness, render_plan
from engine.audio.concat.prior import Knobs, Plan, phrase_bars, plan_continuation, plan_similarity
from engine.audio.concat.units import MAX_BARS, RegionUnits, analyse_region
from engine.audio.continuation import BarGrid, RegionAudio, fade_out
from engine.evaluate.loudness import gated_loudness, k_weighted

CONCAT_TYPE = "segue-concat"
NAME = "segue-concat"
# Defaults (GenerationParams None), chosen on the measures of docs/audio-engine.md ("Choosing the defaults")
DEFAULT_SIMILARITY = 0.6
DEFAULT_KEEP_OPENING = False
RESEED = 1_000_003  # a variant too like an earlier one is planned again with seed + k x this...
DISTINCT = 0.95  # ...when its (estimated) correlation with it reaches this (segue eval's "the same": 0.98)
MAX_REPLANS = 6


@dataclass(frozen=True)
class ConcatContinuation:
    variants: tuple[Audio, ...]  # each [C, N bars] at the region's rate, from the seam
    units: tuple[dict[str, Any], ...]  # per variant: its plan and joins (written as vNN/units.json)
    similarity: float
    keep_opening: bool
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    stem_names: tuple[str, ...] = ()
    stems: tuple[tuple[Audio, ...], ...] = ()  # per variant, one [C_i, N bars] per stem name


def settings_for(similarity: float | None, keep_opening: bool | None) -> tuple[float, bool, str]:
    """(similarity, keep_opening, a note saying which values were used and whether they were defaults)."""
    s = DEFAULT_SIMILARITY if similarity is None else float(similarity)
    k = DEFAULT_KEEP_OPENING if keep_opening is None else bool(keep_opening)
    note = (
        f"segue-concat: similarity {s:g}{' (default)' if similarity is None else ''}, "
        f"keep_opening {'true' if k else 'false'}{' (default)' if keep_opening is None else ''}"
    )
    return s, k, note


class ConcatModel:
    """The ``segue-concat`` model: fitted on each region, nothing to load."""

    name = NAME
    step_threads = None

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    def samples_needed(self, grid: BarGrid, region_bars: int, sample_rate: int) -> int:
        """Samples before the seam the engine reads: the region's last :data:`MAX_BARS` bars."""
        return grid.samples(min(region_bars, MAX_BARS), sample_rate)

    def continue_region(
        self,
        region: RegionAudio,
        params: GenerationParams,
        seeds: Sequence[int],
        progress: Callable[[float], None] | None = None,
        cancel: CancelToken | None = None,
        stems: Sequence[tuple[str, Audio]] = (),
    ) -> ConcatContinuation:
        """``len(seeds)`` continuations of ``region``, each exactly ``params.bars`` bars at the region's rate and
        channels, with ``params.similarity`` and ``params.keep_opening`` (None: the defaults).

        ``stems``: (name, audio) of each track of the region, on the same samples as ``region.audio`` (the mix):
        the plan is made on the mix and each stem is cut and crossfaded the same way (one structure), with the
        mix's loudness gain, so the stems still add up to the mix."""
        report = progress or (lambda f: None)
        cancel = cancel or CancelToken()
        bars = params.bars
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        own = max(0, min(region.info.frames, region.seam_sample) - region.start_sample)
        units = analyse_region(region.audio, region.sample_rate, region.grid, region.bars, own)
        codes, explained = quantise(units.features)
        timings["analyse_seconds"] = time.perf_counter() - t0
        s, opening, setting_note = settings_for(params.similarity, params.keep_opening)
        knobs = Knobs(s, opening, phrase_bars(units.bars))
        notes = [
            setting_note,
            f"{units.count} slices of the region's last {units.bars} bar(s) in "
            f"{int(codes.max()) + 1} codes ({explained:.0%} of their feature variance)",
        ] + list(units.notes)
        t0 = time.perf_counter()
        plans: list[Plan] = []
        for index, seed in enumerate(seeds):
            cancel.raise_if_cancelled()
            plan, attempt = _distinct_plan(units, codes, bars, seed, knobs, plans)
            if attempt:
                notes.append(f"variant {index + 1} came out like an earlier one: planned again ({attempt}x)")
            notes.extend(f"variant {index + 1}: {n}" for n in plan.notes)
            plans.append(plan)
            report(0.3 * (index + 1) / len(seeds))
        timings["plan_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        variants: list[Audio] = []
        records: list[dict[str, Any]] = []
        weighted_region = k_weighted(units.audio, region.sample_rate)
        target = gated_loudness(weighted_region, region.sample_rate)
        peak = float(np.abs(units.audio).max(initial=0.0))
        length = units.audio.shape[1]
        stem_sources = [(np.ascontiguousarray(a[:, a.shape[1] - length :]), a[:, -1]) for _, a in stems]
        stem_variants: list[tuple[Audio, ...]] = []
        for index, plan in enumerate(plans):
            cancel.raise_if_cancelled()
            rendering, weighted, tracks = render_plan(
                units, plan.slices, bars, region.audio[:, -1], weighted_region, stem_sources
            )
            rendering = match_region_loudness(rendering, target, weighted, region.sample_rate, peak)
            if rendering.limited_db > 0.5:
                notes.append(f"variant {index + 1}: peaks limited by up to {rendering.limited_db:.1f} dB"
                             + (" (in the mix; the stems are not limited)" if stems else ""))  # fmt: skip
            gain = 10 ** (rendering.gain_db / 20)
            stem_variants.append(tuple(np.asarray(fade_out(t * gain, region.sample_rate), np.float32) for t in tracks))
            variants.append(rendering.audio)
            records.append(_record(units, plan, rendering, s, opening, codes))
            report(0.3 + 0.7 * (index + 1) / len(plans))
        timings["render_seconds"] = time.perf_counter() - t0
        names = tuple(name for name, _ in stems)
        return ConcatContinuation(
            tuple(variants), tuple(records), s, opening, tuple(notes), timings, names, tuple(stem_variants)
        )


def _distinct_plan(
    units: RegionUnits, codes: np.ndarray, bars: int, seed: int, knobs: Knobs, earlier: Sequence[Plan]
) -> tuple[Plan, int]:
    """A plan for ``seed`` that is not too like the ``earlier`` variants' (:data:`DISTINCT`): planned again with
    another seed, then with more freedom, up to :data:`MAX_REPLANS` times. Returns it and how often it was redone."""
    plan = plan_continuation(units, codes, bars, seed, knobs)
    attempt = 0
    while attempt < MAX_REPLANS and any(plan_similarity(units, plan.slices, p.slices) >= DISTINCT for p in earlier):
        attempt += 1
        freer = replace(knobs, similarity=knobs.similarity * 0.6 ** max(0, attempt - 2))
        plan = plan_continuation(units, codes, bars, seed + attempt * RESEED, freer)
    return plan, attempt


def _record(
    units: RegionUnits, plan: Plan, rendering: Any, similarity: float, opening: bool, codes: np.ndarray
) -> dict[str, Any]:
    """What ``vNN/units.json`` holds: the settings, each bar's role and slices, and every join (``segue eval``
    measures a click at each)."""
    n = units.slices.slices_per_bar
    region_length = int(units.audio.shape[1])
    return {
        "engine": NAME,
        "similarity": similarity,
        "keep_opening": opening,
        "slices_per_bar": n,
        "region_bars_used": units.bars,
        "codes": int(codes.max()) + 1,
        "gain_db": round(rendering.gain_db, 2),
        "bars": [
            {
                "role": role,
                "copy_correlation": round(corr, 3),
                # each slot: [region bar counted from the region's first analysed bar, position in the bar]
                "slices": [[int(s) // n, int(s) % n] for s in plan.slices[b * n : (b + 1) * n]],
            }
            for b, (role, corr) in enumerate(zip(plan.roles, plan.copy_correlation, strict=True))
        ],
        "joins": [
            {
                "at": int(j.at),
                "source_from_seam": int(j.source) - region_length,
                "source_out_from_seam": int(j.source_out) - region_length,
                "tail": int(j.tail),
            }
            for j in rendering.joins
        ],
    }
