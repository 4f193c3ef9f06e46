"""Score a job folder (:func:`evaluate_job`) and print the scores as a table (:func:`format_table`)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.api import Meter
from engine.errors import BadInputError
from engine.evaluate import audio as audio_measures
from engine.evaluate import midi as midi_measures
from engine.evaluate.checks import (
    Check,
    check_accompaniment,
    check_audio,
    check_midi,
    region_bars,
)
from engine.evaluate.reference import Reference, ReferenceScore, format_reference, load_reference, score_reference
from engine.evaluate.table import table_lines


@dataclass(frozen=True)
class VariantScore:
    id: str
    checks: tuple[Check, ...]

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


@dataclass(frozen=True)
class JobScore:
    job_id: str
    path: str
    kind: str
    mode: str
    bars: int
    tempo_bpm: float
    meter: str
    variants: tuple[VariantScore, ...]
    summary: tuple[Check, ...]
    notes: tuple[str, ...] = field(default=())
    reference: ReferenceScore | None = None  # against the real continuation (segue eval --reference)

    @property
    def passed(self) -> bool:
        return (
            all(c.ok is not False for c in self.summary)
            and all(c.ok is not False for v in self.variants for c in v.checks)
            and (self.reference is None or self.reference.passed)
        )

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        if self.reference is not None:
            out["reference"]["passed"] = self.reference.passed
        cleaned: dict[str, Any] = _finite(out)
        return cleaned


def _finite(value: Any) -> Any:
    """JSON has no inf/NaN: those become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _load_job(job_dir: Path) -> dict[str, Any]:
    path = job_dir / "job.json"
    if not path.is_file():
        raise BadInputError(
            f"{job_dir} is not a Segue job folder (no job.json); give the folder `segue continue` wrote"
        )
    try:
        job: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise BadInputError(f"{path} is not readable JSON ({e})") from e
    if job.get("status") != "done":
        raise BadInputError(
            f"job {job.get('id', job_dir.name)} is {job.get('status', 'unknown')}, not done: nothing to score"
        )
    if not job.get("variants"):
        raise BadInputError(f"job {job.get('id', job_dir.name)} has no variants")
    return job


def evaluate_job(job_dir: Path, reference: Path | None = None, reference_from_bar: int | None = None) -> JobScore:
    """Score every variant of the finished job in ``job_dir``; :class:`BadInputError` for a folder that is not one.

    ``reference``: a MIDI file of the bars that really followed the region (from its first bar, or from
    ``reference_from_bar``, 1-based, when it is the whole piece): the job is also measured against it
    (:mod:`engine.evaluate.reference`). It is read and checked before anything is scored."""
    job_dir = Path(job_dir)
    job = _load_job(job_dir)
    region = job.get("region", {})
    tempo = float(region["tempo_bpm"])
    meter = Meter.parse(str(region.get("meter", "4/4")))
    accompany = job.get("mode") == "accompany"
    if reference_from_bar is not None and reference is None:
        raise BadInputError("--reference-from-bar needs --reference FILE.mid (the file it counts bars in)")
    ref = _reference(job_dir, job, Path(reference), reference_from_bar, meter) if reference is not None else None
    notes: list[str] = []
    if accompany:  # the parts are written under the region: its own bars, not the bars asked for
        bars = region_bars(region, meter)
        notes.append(
            "accompany: the parts are scored against the region they play with (full.mid less the parts); "
            "join_click and loudness against the region are n/a (nothing follows the region)"
        )
    else:
        bars = int(job["params"]["bars"])
    expected_beats = bars * meter.quarters_per_bar
    variant_scores: list[VariantScore] = []
    midi_conts: list[midi_measures.MidiContent] = []
    audio_conts: list[np.ndarray] = []
    grid_division: int | None = None
    for variant in job["variants"]:
        files: dict[str, str] = variant.get("files", {})
        checks: list[Check] = []
        if accompany:
            checks += check_accompaniment(job_dir, variant, job, expected_beats, tempo, meter)
        if "midi" in files:
            cont, region_midi, midi_checks = check_midi(job_dir, files, expected_beats, tempo, meter, accompany)
            checks += midi_checks
            midi_conts.append(cont)
            if region_midi is not None and grid_division is None:
                grid_division = midi_measures.onset_grid(region_midi)
        if "audio" in files:
            signal, audio_checks = check_audio(job_dir, files, expected_beats, tempo, job, accompany)
            checks += audio_checks
            audio_conts.append(signal)
        variant_scores.append(VariantScore(str(variant["id"]), tuple(checks)))

    summary = _summary(job, variant_scores, midi_conts, audio_conts, grid_division)
    if len(variant_scores) < 2:
        notes.append("one variant: no variety measure")
    reference_score = _score_reference(job_dir, job, ref, meter) if ref is not None else None
    return JobScore(
        job_id=str(job.get("id", job_dir.name)),
        path=str(job_dir),
        kind=str(job.get("kind", "")),
        mode=str(job.get("mode", "")),
        bars=bars,
        tempo_bpm=tempo,
        meter=str(meter),
        variants=tuple(variant_scores),
        summary=tuple(summary),
        notes=tuple(notes),
        reference=reference_score,
    )


def _reference(job_dir: Path, job: dict[str, Any], path: Path, from_bar: int | None, meter: Meter) -> Reference:
    """The reference, read and checked for this job: a MIDI continuation of the region with its files."""
    name = job.get("id", job_dir.name)
    if job.get("mode") == "accompany":
        raise BadInputError(
            f"--reference measures a continuation against the bars that followed the region; job {name} is an "
            "accompaniment (mode accompany): score it without --reference"
        )
    midi = [v for v in job["variants"] if "midi" in v.get("files", {})]
    if job.get("kind") == "audio" or not midi:
        raise BadInputError(
            f"--reference compares MIDI notes; job {name} is an audio job (its variants have no MIDI file): "
            "score it without --reference"
        )
    for variant in midi:
        files = variant["files"]
        for role in ("midi", "full_midi"):
            if role not in files or not (job_dir / files[role]).is_file():
                raise BadInputError(
                    f"job {name}'s variant {variant.get('id')} has no {role.replace('_', '.')} file "
                    f"({files.get(role, 'not in job.json')}); --reference reads the region from full.mid"
                )
    return load_reference(path, from_bar, meter, int(job["params"]["bars"]))


def _score_reference(job_dir: Path, job: dict[str, Any], ref: Reference, meter: Meter) -> ReferenceScore:
    """The job's MIDI variants, parts keyed by program (as the bench does), against ``ref``."""
    variants = []
    region: midi_measures.MidiContent | None = None
    for variant in job["variants"]:
        files: dict[str, str] = variant.get("files", {})
        if "midi" not in files:
            continue
        cont = midi_measures.read_midi(job_dir / files["midi"], by_part=True)
        variants.append((str(variant["id"]), cont))
        if region is None:  # full.mid: the region, then the continuation
            full = midi_measures.read_midi(job_dir / files["full_midi"], by_part=True)
            scale = full.ticks_per_beat / cont.ticks_per_beat
            region = full.window(0, int(round(full.end_tick - cont.end_tick * scale)))
    assert region is not None  # _reference: at least one MIDI variant with its full.mid
    return score_reference(ref, variants, region, meter)


def _summary(
    job: dict[str, Any],
    variant_scores: list[VariantScore],
    midi_conts: list[midi_measures.MidiContent],
    audio_conts: list[np.ndarray],
    grid_division: int | None,
) -> list[Check]:
    """The job's own checks: how the variants differ, and how many pass each check."""
    summary: list[Check] = []
    if len(midi_conts) > 1:
        distance, identical = midi_measures.variety(midi_conts, grid_division or 4)
        summary.append(
            Check(
                "midi_variety",
                distance,
                identical == 0,
                f"mean pairwise note-set distance (0: same notes, 1: none shared); {identical} identical pair(s)",
            )
        )
    if len(audio_conts) > 1:
        distance, identical = audio_measures.variety(audio_conts)
        summary.append(
            Check(
                "audio_variety",
                distance,
                identical == 0,
                f"mean pairwise log-spectrogram distance; {identical} identical pair(s)",
            )
        )
    if job.get("kind") == "audio" and len(audio_conts) > 1:
        closest = audio_measures.max_pairwise_correlation(audio_conts)
        if closest is not None:
            summary.append(Check("variants_distinct", round(closest, 4), closest < audio_measures.COPY_CORRELATION,
                                 "largest correlation between two variants (the same: >= "
                                 f"{audio_measures.COPY_CORRELATION})"))  # fmt: skip
    for name in _check_names(variant_scores):
        oks = [c.ok for v in variant_scores if (c := v.check(name)) is not None and c.ok is not None]
        if oks:
            summary.append(Check(f"{name}_passed", f"{sum(oks)}/{len(oks)}", all(oks), "variants passing"))
    return summary


def _check_names(scores: list[VariantScore]) -> list[str]:
    names: list[str] = []
    for v in scores:
        for c in v.checks:
            if c.name not in names:
                names.append(c.name)
    return names


def _cell(check: Check | None) -> str:
    if check is None or check.value is None:
        return "-"
    value = f"{check.value:g}" if isinstance(check.value, float) else str(check.value)
    mark = "" if check.ok is None else (" ok" if check.ok else " NO")
    return value + mark


def format_table(score: JobScore) -> str:
    """The per-variant table, the summary and what each column means."""
    names = _check_names(list(score.variants))
    header = ["variant", *names]
    rows = [[v.id, *(_cell(v.check(n)) for n in names)] for v in score.variants]
    bars = f"the region's {score.bars} bar(s)" if score.mode == "accompany" else f"{score.bars} bar(s)"
    out = [
        f"job {score.job_id}: {score.kind} {score.mode}, {bars} of {score.meter} at {score.tempo_bpm:g} BPM",
        "",
        *table_lines(header, rows),
        "",
        "summary:",
        *(f"  {c.name}: {_cell(c)} ({c.detail})" for c in score.summary),
        "",
        "columns:",
    ]
    first = {n: next(c for v in score.variants if (c := v.check(n)) is not None) for n in names}
    out += [f"  {n}: {first[n].detail}" for n in names]
    out += [f"note: {n}" for n in score.notes]
    if score.reference is not None:
        out += ["", *format_reference(score.reference)]
    out.append(f"result: {'all checks passed' if score.passed else 'some checks failed (NO)'}")
    return "\n".join(out)
