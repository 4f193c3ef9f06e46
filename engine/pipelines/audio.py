"""An audio region (and its MIDI file, when given) continued by the audio engine.

The audio engine continues the audio: per variant ``continuation.wav`` (exactly N bars from the bar line after the
region) and ``full.wav`` (the region, or its last bars when it is long, then the continuation); segue-concat adds
``units.json`` (its plan and joins) and, for a region given as stems, ``stems/<name>.wav``. The MIDI file, if
any, is continued by the MIDI engine into the same variant folders (``continuation.mid``, ``full.mid``,
``stems/<part>.wav``, ``continuation_midi.wav``, ``full_midi.wav``); ``file_sources`` says which engine wrote what.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.api import GenerationRequest, GenerationResult, Meter, Prompt, RegionInfo, VariantResult
from engine.audio.audio_io import Audio, AudioInfo, probe_audio, resample
from engine.audio.continuation import BAR_TOLERANCE, BarGrid, RegionAudio
from engine.errors import BadInputError, ModelNotFoundError
from engine.midi_io import PartNotes
from engine.pipelines.context import NO_AUDIO_MODEL, JobContext, Stopwatch, variant_seeds
from engine.pipelines.files import VariantFolder
from engine.pipelines.midi import LONG_REGION_LEAD_IN_BARS, MAX_AUDITION_LEAD_IN_SECONDS, MidiJobFiles
from engine.render.soundfont import find_soundfont
from engine.symbolic.continuation import continue_region
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import Region, read_region

if TYPE_CHECKING:
    from engine.audio.concat.job import ConcatContinuation
    from engine.audio.continuation import AudioContinuation

AUDIO_ROLES = ("audio", "full_audio")  # the audio engine's files; a MIDI + audio job adds the MIDI engine's
UNITS_NAME = "units.json"  # segue-concat: each variant's plan and joins, beside continuation.wav


def audio_grid(prompt: Prompt, midi_region: Region | None) -> tuple[BarGrid, tuple[str, ...]]:
    """Tempo and meter for the audio: the MIDI file's (or the overrides it was read with), else the request's."""
    if midi_region is not None:
        return BarGrid(midi_region.tempo_bpm, midi_region.meter), ()
    if prompt.tempo_bpm is None:
        raise BadInputError(
            f"{prompt.audio_path} is audio only, so Segue needs its tempo: give --tempo BPM (and --meter N/D if it "
            "is not 4/4), or give the region's MIDI file as well"
        )
    if prompt.meter is None:
        return BarGrid(prompt.tempo_bpm, Meter(4, 4)), ("no meter given: assumed 4/4 (give --meter N/D)",)
    return BarGrid(prompt.tempo_bpm, prompt.meter), ()


def align_midi_to_audio(
    prompt: Prompt, region: Region, audio_seconds: float, grid: BarGrid
) -> tuple[Region, tuple[str, ...]]:
    """One region length for both files: when the audio lasts whole bars longer than the MIDI file's notes (a
    quiet ending), the region is the audio's length; a length from the DAW wins over both."""
    if prompt.length_beats is not None:
        return region, ()
    extra = math.ceil((audio_seconds - region.place_at_seconds) / grid.bar_seconds - BAR_TOLERANCE)
    if extra <= 0:
        return region, ()
    length_beats = region.length_beats + extra * grid.meter.quarters_per_bar
    longer = read_region(replace(prompt, length_beats=length_beats))
    return longer, (f"the audio lasts {extra} bar(s) longer than the MIDI file's notes: the region is taken as "
                    f"{longer.length_bars} bars, the audio's length",)  # fmt: skip


@dataclass(frozen=True)
class _Located:
    """Where the region sits: its audio file, its MIDI region (if given), its bar grid, bars and seam sample."""

    info: AudioInfo
    midi_region: Region | None
    grid: BarGrid
    bars: int
    seam: int
    notes: tuple[str, ...]

    @property
    def length_beats(self) -> float:
        if self.midi_region is not None:
            return self.midi_region.length_beats
        return round(self.seam / self.info.sample_rate / self.grid.bar_seconds * self.grid.meter.quarters_per_bar, 6)


def _locate(prompt: Prompt) -> _Located:
    from engine.audio.continuation import locate_region

    assert prompt.audio_path is not None
    info = probe_audio(prompt.audio_path)
    midi_region = read_region(prompt) if prompt.midi_path is not None else None
    grid, notes = audio_grid(prompt, midi_region)
    if midi_region is not None:
        midi_region, align_notes = align_midi_to_audio(prompt, midi_region, info.seconds, grid)
        _, seam, located = locate_region(info, grid, seam_seconds=midi_region.place_at_seconds)
        bars = midi_region.length_bars
        notes += align_notes + located
    else:
        bars, seam, located = locate_region(info, grid, prompt.length_beats, start_beats=prompt.start_beats)
        notes += located
    return _Located(info, midi_region, grid, bars, seam, notes)


@dataclass(frozen=True)
class _Generated:
    """What the engines made of the region: the audio continuation and, for a region with MIDI, the MIDI one."""

    model_name: str
    symbolic_name: str | None
    region: RegionAudio  # the audio read before the seam: the audio prompt and full.wav's lead-in
    lead_in: int  # samples of it that full.wav starts with
    seeds: list[int]
    audio: AudioContinuation | ConcatContinuation
    midi: list[tuple[PartNotes, ...]]  # per variant, when the region has MIDI
    part_names: dict[int, str]
    notes: tuple[str, ...]


def run(request: GenerationRequest, job_dir: Path, context: JobContext) -> GenerationResult:
    """Continue the region's audio (and MIDI) and write every variant's folder (see the module docstring)."""
    from engine.pipelines.context import refuse_taken_variants

    params, prompt, report = request.params, request.prompt, context.report
    audio_name, midi_name = context.models.names_for_audio(request)
    if audio_name is None:
        raise ModelNotFoundError(NO_AUDIO_MODEL)
    timings = Stopwatch()
    report(0.0, "reading the region")
    at = _locate(prompt)
    refuse_taken_variants(job_dir, params.variants)
    made = _generate(request, at, audio_name, midi_name, context, timings)
    out_rate = request.sample_rate or at.info.sample_rate
    with timings.step("write_seconds"):
        results, midi_notes = _write_variants(request, job_dir, at, made, out_rate, context)
    timings.since_start("total_seconds")
    report(1.0, "done")
    midi_region = at.midi_region
    if midi_region is not None:
        parts = tuple(made.part_names[p.program] for p in midi_region.parts)
    else:
        parts = tuple(name for name, _ in prompt.stems)
    notes = context.notes + at.notes + made.notes + (midi_region.notes if midi_region is not None else ())
    return GenerationResult(
        kind="audio",
        mode=params.mode,
        model=made.model_name if made.symbolic_name is None else f"{made.model_name} + {made.symbolic_name}",
        region=RegionInfo(
            tempo_bpm=at.grid.tempo_bpm,
            meter=at.grid.meter,
            length_beats=at.length_beats,
            length_bars=at.bars,
            sample_rate=out_rate,
            parts=parts,
            notes="; ".join(notes + made.region.notes + made.audio.notes + midi_notes),
        ),
        place_at_beats=at.length_beats,
        place_at_seconds=at.seam / at.info.sample_rate,
        variants=tuple(results),
        timings=timings.seconds,
        file_sources=_sources(made, results[0].files),
    )


def _generate(
    request: GenerationRequest,
    at: _Located,
    audio_name: str,
    midi_name: str,
    context: JobContext,
    timings: Stopwatch,
) -> _Generated:
    """Load the models and continue the audio (then the MIDI, if any) under the engine's job lock."""
    from engine.audio.concat.job import ConcatModel
    from engine.audio.continuation import continue_audio, plan_prompt, prompt_samples_needed, read_region_tail
    from engine.audio.sampling import Draws, SamplingOptions

    params, prompt, report = request.params, request.prompt, context.report
    grid, info = at.grid, at.info
    notes: tuple[str, ...] = ()
    with context.lock:
        report(0.02, "loading the audio model")
        model = context.models.audio(audio_name)
        symbolic = context.models.symbolic(midi_name) if at.midi_region is not None else None
        timings.since_start("load_seconds")
        lead_in = at.seam
        if at.seam / info.sample_rate > MAX_AUDITION_LEAD_IN_SECONDS:
            lead_in = min(at.seam, grid.samples(LONG_REGION_LEAD_IN_BARS, info.sample_rate))
            notes += (f"the region is long: full.wav starts {LONG_REGION_LEAD_IN_BARS} bars before its end",)
        seeds = variant_seeds(params)
        span = 0.6 if symbolic is not None else 0.8
        progress = lambda f: report(0.05 + span * f, "generating audio")  # noqa: E731
        if prompt.stems and not isinstance(model, ConcatModel):
            raise BadInputError(f"stems are continued by segue-concat, not by {model.name}: leave out --model")
        with timings.step("generate_seconds"):
            if isinstance(model, ConcatModel):  # segue-concat: the region's own sound, recombined
                needed = max(lead_in, model.samples_needed(grid, at.bars, info.sample_rate))
                region = read_region_tail(info, grid, at.bars, at.seam, needed)
                stems = _region_stems(prompt, info, grid, at.seam, region.audio.shape[1])
                continuation: AudioContinuation | ConcatContinuation = model.continue_region(
                    region, params, seeds, progress, context.cancel, stems
                )
            else:
                options = SamplingOptions(step_threads=model.step_threads)
                plan = plan_prompt(model, grid, at.bars, options)
                needed = max(lead_in, prompt_samples_needed(model, plan, info.sample_rate))
                region = read_region_tail(info, grid, at.bars, at.seam, needed)
                draws = Draws(seeds, params.temperature, params.top_p)
                continuation = continue_audio(model, region, params.bars, draws, options, progress, context.cancel)
        timings.seconds.update({f"audio_{k}": float(v) for k, v in continuation.timings.items()})
        midi_variants: list[tuple[PartNotes, ...]] = []
        names: dict[int, str] = {}
        if symbolic is not None and at.midi_region is not None:
            names = part_names_for(at.midi_region.parts)
            with timings.step("midi_generate_seconds"):
                midi_variants = continue_region(
                    symbolic,
                    at.midi_region,
                    params,
                    seeds,
                    names,
                    progress=lambda f: report(0.65 + 0.2 * f, "generating MIDI"),
                    cancel=context.cancel,
                )
    symbolic_name = symbolic.name if symbolic is not None else None
    return _Generated(model.name, symbolic_name, region, lead_in, seeds, continuation, midi_variants, names, notes)


def _write_variants(
    request: GenerationRequest, job_dir: Path, at: _Located, made: _Generated, out_rate: int, context: JobContext
) -> tuple[list[VariantResult], tuple[str, ...]]:
    """Each variant's folder: the MIDI engine's files first (a region with MIDI), then the audio engine's.
    Returns the variants and the MIDI writer's notes."""
    from engine.audio.concat.job import ConcatContinuation

    params, prompt = request.params, request.prompt
    midi_files = None
    if at.midi_region is not None:
        midi_files = MidiJobFiles(
            job_dir, at.midi_region, params.bars, out_rate, find_soundfont(context.soundfont_path), prompt.tempo_bpm,
            mix_name="continuation_midi.wav", full_mix_name="full_midi.wav",
        )  # fmt: skip
    audio_files = AudioJobFiles(job_dir, made.region, made.lead_in, params.bars, out_rate)
    continuation = made.audio
    results = []
    for index, (seed, audio) in enumerate(zip(made.seeds, continuation.variants, strict=True), start=1):
        context.cancel.raise_if_cancelled()
        context.report(0.85 + 0.15 * (index - 1) / len(made.seeds), f"writing variant {index}")
        variant_id = f"v{index:02d}"
        files: dict[str, str] = {}
        parts: tuple[str, ...] = ()
        if midi_files is not None:
            midi_result = midi_files.write_variant(variant_id, seed, made.midi[index - 1])
            files.update(midi_result.files)
            parts = midi_result.parts
        record: dict[str, Any] | None = None
        stem_audio: tuple[tuple[str, Audio], ...] = ()
        if isinstance(continuation, ConcatContinuation):
            record = continuation.units[index - 1]
            if continuation.stems:
                stem_audio = tuple(zip(continuation.stem_names, continuation.stems[index - 1], strict=True))
                parts = continuation.stem_names
        files.update(audio_files.write_variant(variant_id, audio, midi_files is not None, record, stem_audio))
        results.append(VariantResult(variant_id, seed, files, audio_files.duration_seconds, parts))
    return results, (midi_files.notes if midi_files is not None else ())


def _sources(made: _Generated, files: Mapping[str, str]) -> dict[str, str]:
    """Which engine and model wrote each file role ("audio:<model>", "midi:<model>")."""
    audio_source = f"audio:{made.model_name}"
    sources = {role: audio_source for role in AUDIO_ROLES}
    if made.symbolic_name is None:
        sources.update({role: audio_source for role in files if role.startswith("stem:")})
    else:
        sources.update({role: f"midi:{made.symbolic_name}" for role in files if role not in AUDIO_ROLES})
    return sources


def _region_stems(prompt: Prompt, info: AudioInfo, grid: BarGrid, seam: int, samples: int) -> list[tuple[str, Audio]]:
    """The region's stems (``Prompt.stems``), checked against the mix and read on the same samples."""
    if not prompt.stems:
        return []
    from engine.audio.concat.stems import check_stems, probe_stems, read_stem_tails

    stems = probe_stems(prompt)
    check_stems(stems, info, grid)
    return read_stem_tails(stems, seam, samples, info.channels)


@dataclass(frozen=True)
class AudioJobFiles:
    """Writes the audio engine's files of each variant: ``continuation.wav`` (exactly N bars from the bar line after
    the region) and ``full.wav`` (the region, or its last bars when it is long, then the continuation)."""

    job_dir: Path
    region: RegionAudio
    lead_in_samples: int
    bars: int
    sample_rate: int  # of the files; the region's unless the request asked for another

    @property
    def duration_seconds(self) -> float:
        return self.region.grid.samples(self.bars, self.sample_rate) / self.sample_rate

    def write_variant(
        self,
        variant_id: str,
        audio: np.ndarray,
        folder_exists: bool = False,
        units: dict[str, Any] | None = None,
        stems: tuple[tuple[str, np.ndarray], ...] = (),
    ) -> dict[str, str]:
        """Write the variant's audio files; ``units`` (segue-concat: the plan and its joins) goes to
        ``units.json`` beside them, which ``segue eval`` reads to measure a click at every join; ``stems``
        (name, audio) to ``stems/<name>.wav`` (role ``stem:<name>``), on the continuation's timeline."""
        folder = VariantFolder(self.job_dir, variant_id, exist_ok=folder_exists)
        region_rate = self.region.sample_rate
        lead_in = self.region.audio[:, self.region.audio.shape[1] - self.lead_in_samples :]
        full = np.concatenate([lead_in, audio], axis=1)
        if self.sample_rate != region_rate:
            audio = _exactly(resample(audio, region_rate, self.sample_rate), self.region.grid.samples(
                self.bars, self.sample_rate))  # fmt: skip
            full = resample(full, region_rate, self.sample_rate)
        folder.wav("continuation.wav", audio, self.sample_rate, "audio")
        folder.wav("full.wav", full, self.sample_rate, "full_audio")
        for name, stem in stems:
            if self.sample_rate != region_rate:
                stem = _exactly(resample(stem, region_rate, self.sample_rate), audio.shape[1])
            folder.wav(f"stems/{name}.wav", stem, self.sample_rate, f"stem:{name}")
        if units is not None:
            record = dict(units, sample_rate=region_rate)
            if self.sample_rate != region_rate:  # the joins, in samples of the files written
                scale = self.sample_rate / region_rate
                record["joins"] = [dict(j, at=round(j["at"] * scale)) for j in units.get("joins", [])]
                record["sample_rate"] = self.sample_rate
            folder.json(UNITS_NAME, record)
        return folder.files


def _exactly(audio: np.ndarray, samples: int) -> np.ndarray:
    if audio.shape[1] >= samples:
        return audio[:, :samples]
    return np.pad(audio, ((0, 0), (0, samples - audio.shape[1])))
