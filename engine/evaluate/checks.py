"""The checks of one variant of a job (:mod:`engine.evaluate.report` runs them): MIDI (key, grid, length, parts,
accompaniment against the region) and audio (length, join, loudness, tempo, key, sound against the region)."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


def region_bars(region: dict[str, Any], meter: Meter) -> int:
    """An accompany job's length: the region's whole bars, as the engine read them (job.json ``region``)."""
    if region.get("length_bars"):
        return int(region["length_bars"])
    if region.get("length_beats"):
        return max(1, round(float(region["length_beats"]) / meter.quarters_per_bar))
    raise BadInputError("this accompany job's job.json does not say how long the region is (region.length_bars)")


def check_accompaniment(
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


def check_midi(
    job_dir: Path,
    files: dict[str, str],
    expected_beats: float,
    tempo: float,
    meter: Meter,
    accompany: bool = False,
) -> tuple[midi_measures.MidiContent, midi_measures.MidiContent | None, list[Check]]:
    cont = midi_measures.read_midi(job_dir / files["midi"])
    region = _midi_region(job_dir, files, cont, accompany)
    checks = _midi_file_checks(cont, expected_beats, tempo, meter)
    if region is not None and region.notes:
        checks += _midi_region_checks(cont, region, meter, accompany)
    return cont, region, checks


def _midi_file_checks(
    cont: midi_measures.MidiContent, expected_beats: float, tempo: float, meter: Meter
) -> list[Check]:
    """The continuation's file on its own: its length, tempo and meter, and a note in every bar."""
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
    bar_beats = meter.quarters_per_bar
    bars = round(expected_beats / bar_beats)
    filled = midi_measures.bars_with_notes(cont, bar_beats, bars)
    checks.append(Check("bars_with_notes", f"{filled}/{bars}", filled == bars, "bars holding at least one onset"))
    return checks


def _midi_region(
    job_dir: Path, files: dict[str, str], cont: midi_measures.MidiContent, accompany: bool
) -> midi_measures.MidiContent | None:
    """The region, read back from the variant's ``full.mid`` (None without one)."""
    if "full_midi" not in files or not (job_dir / files["full_midi"]).is_file():
        return None
    full = midi_measures.read_midi(job_dir / files["full_midi"])
    if accompany:  # full.mid: the region's parts and the generated ones over the same bars
        return midi_measures.without(full, cont)
    scale = full.ticks_per_beat / cont.ticks_per_beat  # full.mid: the region, then the continuation
    return full.window(0, int(round(full.end_tick - cont.end_tick * scale)))


def _midi_region_checks(
    cont: midi_measures.MidiContent, region: midi_measures.MidiContent, meter: Meter, accompany: bool
) -> list[Check]:
    """The continuation against the region it continues (or plays with): key, scale, closeness, grid."""
    checks: list[Check] = []
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
    return checks


def read(path: Path) -> tuple[np.ndarray, int]:
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as e:
        raise BadInputError(f"{path} is not readable audio ({e})") from e
    return data.T, int(rate)


def check_audio(
    job_dir: Path,
    files: dict[str, str],
    expected_beats: float,
    tempo: float,
    job: dict[str, Any],
    accompany: bool = False,
) -> tuple[np.ndarray, list[Check]]:
    cont, rate = read(job_dir / files["audio"])
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
        channels = source_channels(job)
        if channels is not None:
            checks.append(Check("channels", int(cont.shape[0]), cont.shape[0] == channels, f"region {channels}"))
    mono = signal.mono(cont)
    region_audio = None
    if accompany:
        checks.append(Check("join_click", "n/a", None, "accompany: the parts play with the region; there is no join"))
    elif "full_audio" in files and (job_dir / files["full_audio"]).is_file():
        full, full_rate = read(job_dir / files["full_audio"])
        seam = full.shape[1] - cont.shape[1]
        if full_rate == rate and seam > 0:
            region_audio = full[:, :seam]
            checks += _join_check(full, seam, rate, tempo, job)
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
            meter = Meter.parse(str(job.get("region", {}).get("meter", "4/4")))
            joins = concat_joins(job_dir / files["audio"], rate)
            checks += check_sound(region_audio, cont, rate, tempo, meter, joins)
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


def _join_check(full: np.ndarray, seam: int, rate: int, tempo: float, job: dict[str, Any]) -> list[Check]:
    """The click at the seam of ``full.wav`` (the region's last frame is ``seam - 1``), if it can be measured."""
    join = audio_measures.join_click(full, seam, rate)
    if join is None:
        return []
    # a region that clicks at its own bar lines (a loop cut on a hard attack) may do so at the seam
    bar_beats = Meter.parse(str(job.get("region", {}).get("meter", "4/4"))).quarters_per_bar
    bar = bar_beats * 60.0 / tempo * rate
    own = audio_measures.bar_line_click(full[:, :seam], bar, rate) if join.click else None
    return [
        Check(
            "join_click",
            round(join.burst_db, 1),
            not join.click or (own is not None and own >= join.burst_db - 3.0),
            "dB of high-frequency burst at the seam of full.wav over the second around it (a click: "
            "over 10 dB, with a step larger than the region's 99th-percentile step, unless the region "
            "clicks as much at one of its own bar lines)"
            + (f"; the region's own bar lines: up to {own:.1f} dB" if own is not None else ""),
        )
    ]


def check_sound(
    region: np.ndarray, cont: np.ndarray, rate: int, tempo: float, meter: Meter, joins: list[Any] | None
) -> list[Check]:
    """Issue 15's measures of an audio continuation (:func:`engine.evaluate.audio.sound_measures`); ``joins``: a
    segue-concat variant's, from its ``units.json`` (:func:`concat_joins`)."""
    measures = audio_measures.sound_measures(region, cont, rate, tempo, meter.quarters_per_bar, joins)
    return [Check(m.name, m.value, m.ok, m.detail) for m in measures]


def concat_joins(audio_path: Path, rate: int) -> list[Any] | None:
    """The joins of the segue-concat variant whose audio is ``audio_path``, from the ``units.json`` beside it; None
    when there is none, it is unreadable, or it was written at another rate."""
    units_path = audio_path.parent / "units.json"
    if not units_path.is_file():
        return None
    try:
        units = json.loads(units_path.read_text(encoding="utf-8"))
        return list(units.get("joins", [])) if int(units.get("sample_rate", rate)) == rate else None
    except (OSError, ValueError, TypeError):
        return None


def source_channels(job: dict[str, Any]) -> int | None:
    for source in job.get("region", {}).get("sources", []):
        if source.get("role") == "audio":
            try:
                return int(sf.info(str(source["path"])).channels)
            except (OSError, RuntimeError, KeyError):
                return None
    return None


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None
