"""Score a job folder (:func:`evaluate_job`) and print the scores as a table (:func:`format_table`)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from engine.api import Meter
from engine.errors import BadInputError
from engine.evaluate import audio as audio_measures
from engine.evaluate import midi as midi_measures
from engine.evaluate import signal

IN_KEY_MIN = 0.75  # share of pitched notes in the region's scale
GRID_MIN = 0.90  # share of onsets on the region's grid
LOUDNESS_DB = 3.0  # continuation within this of the region's integrated loudness
TEMPO_TOLERANCE = 0.04  # beat-tracked tempo within 4 % of the region's (audio)


@dataclass(frozen=True)
class Check:
    """One measure: ``value`` (a number or a short text), ``ok`` (None: not applicable or not measurable)."""

    name: str
    value: float | str | None
    ok: bool | None
    detail: str = ""


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

    @property
    def passed(self) -> bool:
        return all(c.ok is not False for c in self.summary) and all(
            c.ok is not False for v in self.variants for c in v.checks
        )

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
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


def evaluate_job(job_dir: Path) -> JobScore:
    """Score every variant of the finished job in ``job_dir``; :class:`BadInputError` for a folder that is not one."""
    job_dir = Path(job_dir)
    job = _load_job(job_dir)
    region = job.get("region", {})
    tempo = float(region["tempo_bpm"])
    meter = Meter.parse(str(region.get("meter", "4/4")))
    accompany = job.get("mode") == "accompany"
    notes: list[str] = []
    if accompany:  # the parts are written under the region: its own bars, not the bars asked for
        bars = _region_bars(region, meter)
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
            checks += _accompany_checks(job_dir, variant, job, expected_beats, tempo, meter)
        if "midi" in files:
            cont, region_midi, midi_checks = _midi_checks(job_dir, files, expected_beats, tempo, meter, accompany)
            checks += midi_checks
            midi_conts.append(cont)
            if region_midi is not None and grid_division is None:
                grid_division = midi_measures.onset_grid(region_midi)
        if "audio" in files:
            signal, audio_checks = _audio_checks(job_dir, files, expected_beats, tempo, job, accompany)
            checks += audio_checks
            audio_conts.append(signal)
        variant_scores.append(VariantScore(str(variant["id"]), tuple(checks)))

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
    if len(variant_scores) < 2:
        notes.append("one variant: no variety measure")
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
    )


def _check_names(scores: list[VariantScore]) -> list[str]:
    names: list[str] = []
    for v in scores:
        for c in v.checks:
            if c.name not in names:
                names.append(c.name)
    return names


def _region_bars(region: dict[str, Any], meter: Meter) -> int:
    """An accompany job's length: the region's whole bars, as the engine read them (job.json ``region``)."""
    if region.get("length_bars"):
        return int(region["length_bars"])
    if region.get("length_beats"):
        return max(1, round(float(region["length_beats"]) / meter.quarters_per_bar))
    raise BadInputError("this accompany job's job.json does not say how long the region is (region.length_bars)")


def _accompany_checks(
    job_dir: Path, variant: dict[str, Any], job: dict[str, Any], expected_beats: float, tempo: float, meter: Meter
) -> list[Check]:
    """The parts asked for came back, and every stem (MIDI and audio) is exactly the region's bars long."""
    checks: list[Check] = []
    asked = [str(p) for p in job.get("params", {}).get("parts", [])]
    written = [str(p) for p in variant.get("parts", [])]
    checks.append(
        Check(
            "parts",
            ",".join(written) or None,
            sorted(asked) == sorted(written) if asked else bool(written),
            f"parts written; asked: {','.join(asked) or 'the model default'}",
        )
    )
    files: dict[str, str] = variant.get("files", {})
    stems = sorted(role for role in files if role.startswith(("stem:", "stem_midi:")))
    if not stems:
        checks.append(Check("stems_length", None, False, "stems of the exact length (none were written)"))
        return checks
    exact = 0
    for role in stems:
        path = job_dir / files[role]
        if role.startswith("stem_midi:"):
            content = midi_measures.read_midi(path)
            exact += abs(content.end_tick - expected_beats * content.ticks_per_beat) <= 1
        else:
            info = sf.info(str(path))
            exact += abs(info.frames - expected_beats * 60.0 / tempo * info.samplerate) <= 1.0
    checks.append(
        Check(
            "stems_length",
            f"{exact}/{len(stems)}",
            exact == len(stems),
            f"stems (.mid end of track, .wav frames) exactly the region's {expected_beats / meter.quarters_per_bar:g} "
            "bar(s)",
        )
    )
    return checks


def _midi_checks(
    job_dir: Path,
    files: dict[str, str],
    expected_beats: float,
    tempo: float,
    meter: Meter,
    accompany: bool = False,
) -> tuple[midi_measures.MidiContent, midi_measures.MidiContent | None, list[Check]]:
    cont = midi_measures.read_midi(job_dir / files["midi"])
    tpb = cont.ticks_per_beat
    checks = [
        Check(
            "midi_length",
            round(cont.length_beats / meter.quarters_per_bar, 4),
            abs(cont.end_tick - expected_beats * tpb) <= 1,
            f"bars (end of track), {expected_beats / meter.quarters_per_bar:g} asked",
        )
    ]
    file_tempo = cont.tempos_bpm[0] if cont.tempos_bpm else None
    checks.append(
        Check(
            "midi_tempo",
            round(file_tempo, 3) if file_tempo is not None else None,
            file_tempo is not None and abs(file_tempo - tempo) < 0.01 and len(set(cont.tempos_bpm)) == 1,
            f"BPM in the file, region {tempo:.3f}",
        )
    )
    file_meter = cont.meters[0] if cont.meters else None
    checks.append(
        Check(
            "midi_meter",
            f"{file_meter[0]}/{file_meter[1]}" if file_meter else None,
            file_meter == (meter.numerator, meter.denominator),
            f"region {meter}",
        )
    )
    region: midi_measures.MidiContent | None = None
    if "full_midi" in files and (job_dir / files["full_midi"]).is_file():
        full = midi_measures.read_midi(job_dir / files["full_midi"])
        if accompany:  # full.mid: the region's parts and the generated ones over the same bars
            region = midi_measures.without(full, cont)
        else:  # full.mid: the region, then the continuation
            scale = full.ticks_per_beat / tpb
            region = full.window(0, int(round(full.end_tick - cont.end_tick * scale)))
    bar_beats = meter.quarters_per_bar
    bars = round(expected_beats / bar_beats)
    filled = midi_measures.bars_with_notes(cont, bar_beats, bars)
    checks.append(Check("bars_with_notes", f"{filled}/{bars}", filled == bars, "bars holding at least one onset"))
    if region is not None and region.notes:
        region_key = midi_measures.midi_key(region)
        cont_key = midi_measures.midi_key(cont)
        if region_key is not None and cont_key is not None:
            checks.append(
                Check(
                    "key",
                    str(cont_key),
                    cont_key.same_or_relative(region_key),
                    f"estimated, region {region_key} (relative keys count as the same)",
                )
            )
            share = midi_measures.in_scale_share(cont, region_key)
            if share is not None:
                checks.append(
                    Check("in_key", round(share, 3), share >= IN_KEY_MIN, f"pitched notes in {region_key}'s scale")
                )
                _, own = midi_measures.region_scale_share(region)
                if own is not None and not accompany:
                    checks.append(
                        Check(
                            "in_scale_vs_region",
                            round(share - own, 3),
                            share >= own - 0.1,
                            f"share in {region_key}'s scale minus the region's own ({own:.2f}); at least -0.1",
                        )
                    )
        if not accompany:  # how close to the region's language (the composer's own continuations: 0.8-0.95)
            pc = midi_measures.pitch_class_overlap(cont, region)
            onset = midi_measures.onset_position_overlap(cont, region, meter.quarters_per_bar)
            detail = "overlap of the normalised histograms with the region's (1: the same)"
            checks.append(Check("pitch_class_overlap", _round(pc), None, f"pitch classes: {detail}"))
            checks.append(Check("onset_overlap", _round(onset), None, f"onset positions in the bar: {detail}"))
        division = midi_measures.onset_grid(region)
        if division is not None:
            # parts under a region may move one subdivision finer than it (eighth-note passing tones under a
            # quarter-note tune, as in Bach's basses); a continuation keeps the region's own grid
            grid = 2 * division if accompany else division
            share = midi_measures.grid_share(cont, grid)
            what = "one subdivision finer than the region's grid" if accompany else "the region's grid"
            checks.append(
                Check(
                    "on_grid",
                    round(share, 3) if share is not None else None,
                    share is not None and share >= GRID_MIN,
                    f"onsets on {what} (1/{grid} beat)",
                )
            )
    return cont, region, checks


def _read(path: Path) -> tuple[np.ndarray, int]:
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as e:
        raise BadInputError(f"{path} is not readable audio ({e})") from e
    return data.T, int(rate)


def _audio_checks(
    job_dir: Path,
    files: dict[str, str],
    expected_beats: float,
    tempo: float,
    job: dict[str, Any],
    accompany: bool = False,
) -> tuple[np.ndarray, list[Check]]:
    cont, rate = _read(job_dir / files["audio"])
    expected_frames = expected_beats * 60.0 / tempo * rate
    checks = [
        Check(
            "audio_length",
            int(cont.shape[1]),
            abs(cont.shape[1] - expected_frames) <= 1.0,
            f"frames, {expected_frames:.1f} for the bars asked at {rate} Hz",
        )
    ]
    region_rate = job.get("region", {}).get("sample_rate")
    if region_rate:
        checks.append(Check("sample_rate", rate, rate == int(region_rate), f"Hz, region {region_rate}"))
    if job.get("kind") == "audio":
        channels = _source_channels(job)
        if channels is not None:
            checks.append(Check("channels", int(cont.shape[0]), cont.shape[0] == channels, f"region {channels}"))
    mono = signal.mono(cont)
    region_audio = None
    if accompany:
        checks.append(Check("join_click", "n/a", None, "accompany: the parts play with the region; there is no join"))
    elif "full_audio" in files and (job_dir / files["full_audio"]).is_file():
        full, full_rate = _read(job_dir / files["full_audio"])
        seam = full.shape[1] - cont.shape[1]
        if full_rate == rate and seam > 0:
            region_audio = full[:, :seam]
            join = audio_measures.join_click(full, seam, rate)
            if join is not None:
                # a region that clicks at its own bar lines (a loop cut on a hard attack) may do so at the seam
                bar_beats = Meter.parse(str(job.get("region", {}).get("meter", "4/4"))).quarters_per_bar
                bar = bar_beats * 60.0 / tempo * rate
                own = audio_measures.bar_line_click(region_audio, bar, rate) if join.click else None
                checks.append(
                    Check(
                        "join_click",
                        round(join.burst_db, 1),
                        not join.click or (own is not None and own >= join.burst_db - 3.0),
                        "dB of high-frequency burst at the seam of full.wav over the second around it (a click: "
                        "over 10 dB, with a step larger than the region's 99th-percentile step, unless the region "
                        "clicks as much at one of its own bar lines)"
                        + (f"; the region's own bar lines: up to {own:.1f} dB" if own is not None else ""),
                    )
                )
    lufs = audio_measures.loudness_lufs(cont, rate)
    if region_audio is not None:
        region_lufs = audio_measures.loudness_lufs(region_audio, rate)
        diff = lufs - region_lufs
        checks.append(
            Check(
                "loudness_diff_db",
                round(diff, 2),
                abs(diff) <= LOUDNESS_DB,
                f"continuation {lufs:.1f} LUFS, region {region_lufs:.1f} LUFS (BS.1770)",
            )
        )
        est_region = audio_measures.estimate_tempo(signal.mono(region_audio), rate, reference_bpm=tempo)
        est_cont = audio_measures.estimate_tempo(mono, rate, reference_bpm=tempo)
        if est_region is not None and est_cont is not None:
            ratio = est_cont / est_region
            checks.append(
                Check(
                    "beat_tempo",
                    round(est_cont, 1),
                    abs(ratio - 1.0) <= TEMPO_TOLERANCE,
                    f"BPM beat-tracked; region beat-tracked {est_region:.1f}, declared {tempo:.1f}",
                )
            )
        if job.get("kind") == "audio":
            checks += _sound_checks(job_dir, files, region_audio, cont, rate, tempo, job)
            region_key = audio_measures.audio_key(signal.mono(region_audio), rate)
            cont_key = audio_measures.audio_key(mono, rate)
            if region_key is not None and cont_key is not None:
                checks.append(
                    Check(
                        "audio_key",
                        str(cont_key),
                        cont_key.same_or_relative(region_key),
                        f"chroma estimate, region {region_key}",
                    )
                )
    checks.append(Check("silent", round(lufs, 1), lufs > -70.0, "LUFS of the continuation (not silent: > -70)"))
    return mono, checks


def _sound_checks(job_dir: Path, files: dict[str, str], region: np.ndarray, cont: np.ndarray, rate: int,
                  tempo: float, job: dict[str, Any]) -> list[Check]:  # fmt: skip
    """Issue 15's measures of an audio continuation (:func:`engine.evaluate.audio.sound_measures`); the joins of a
    segue-concat variant come from its ``units.json``."""
    meter = Meter.parse(str(job.get("region", {}).get("meter", "4/4")))
    units_path = (job_dir / files["audio"]).parent / "units.json"
    joins = None
    if units_path.is_file():
        try:
            units = json.loads(units_path.read_text(encoding="utf-8"))
            if int(units.get("sample_rate", rate)) == rate:
                joins = list(units.get("joins", []))
        except (OSError, ValueError, TypeError):
            joins = None
    measures = audio_measures.sound_measures(region, cont, rate, tempo, meter.quarters_per_bar, joins)
    return [Check(m.name, m.value, m.ok, m.detail) for m in measures]


def _source_channels(job: dict[str, Any]) -> int | None:
    for source in job.get("region", {}).get("sources", []):
        if source.get("role") == "audio":
            try:
                return int(sf.info(str(source["path"])).channels)
            except (OSError, RuntimeError, KeyError):
                return None
    return None


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
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    bars = f"the region's {score.bars} bar(s)" if score.mode == "accompany" else f"{score.bars} bar(s)"
    out = [
        f"job {score.job_id}: {score.kind} {score.mode}, {bars} of {score.meter} at {score.tempo_bpm:g} BPM",
        "",
        line(header),
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        *(line(r) for r in rows),
        "",
        "summary:",
        *(f"  {c.name}: {_cell(c)} ({c.detail})" for c in score.summary),
        "",
        "columns:",
    ]
    first = {n: next(c for v in score.variants if (c := v.check(n)) is not None) for n in names}
    out += [f"  {n}: {first[n].detail}" for n in names]
    out += [f"note: {n}" for n in score.notes]
    out.append(f"result: {'all checks passed' if score.passed else 'some checks failed (NO)'}")
    return "\n".join(out)


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None
