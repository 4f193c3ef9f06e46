"""The in-process engine: loads checkpoints, runs jobs, writes each variant's files into the job folder.

Per variant (``v01``, ``v02``, ...): ``continuation.mid``, ``continuation.wav``, ``stems/<part>.wav``,
``full.mid`` and ``full.wav``, per shared/DESIGN.md. Every file is written atomically and never overwrites.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import torch
from symusic import Score
from symusic.core import ScoreTick, TimeSignatureTick

from engine.api import (
    DEFAULT_SAMPLE_RATE,
    CancelToken,
    GenerationRequest,
    GenerationResult,
    Meter,
    ModelInfo,
    ProgressCallback,
    Prompt,
    RegionInfo,
    VariantResult,
)
from engine.checkpoints import (
    AUDIO_PRIOR_TYPE,
    CONCAT_TYPE,
    SYMBOLIC_TYPE,
    find_checkpoint,
    installed_checkpoints,
    model_info,
)
from engine.errors import BadInputError, EngineError, ModelNotFoundError
from engine.render.soundfont import SoundFont, find_soundfont
from engine.render.synth import Rendering, render
from engine.render.wavfile import write_wav
from engine.symbolic.continuation import ContinuationInfo, SymbolicModel, continue_region
from engine.symbolic.midifile import Conductor, Note, PartNotes, build_midi, save_midi
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import Region, read_region, seconds_at
from engine.transcribe_job import generate_transcribed, transcription_route

if TYPE_CHECKING:
    from engine.audio.audio_io import Audio, AudioInfo
    from engine.audio.concat.job import ConcatModel
    from engine.audio.continuation import BarGrid
    from engine.audio.prior import AudioModel

log = logging.getLogger(__name__)

NO_AUDIO_MODEL = (
    "no audio model is installed (the default audio engine, segue-concat, and the neural segue-audio-small ship in "
    "engine/models/: reinstall Segue to get them back): train one on a folder of your own audio with "
    "`segue train audio --data AUDIO_DIR --out MODEL_DIR`, then give it with --model MODEL_DIR (or add its "
    "parent folder to $SEGUE_MODELS_DIR)"
)
MAX_AUDITION_LEAD_IN_SECONDS = 300.0  # full.wav holds the whole region up to this length...
LONG_REGION_LEAD_IN_BARS = 8  # ...else only its last bars
T = TypeVar("T")


def _noop(fraction: float, message: str) -> None:
    pass


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class LocalEngine:
    """Runs models in this process. Thread-safe: one job at a time per engine instance."""

    def __init__(self, device: str = "auto", soundfont: str | None = None, threads: int | None = None) -> None:
        self.device = pick_device(device)
        threads = threads or int(os.environ.get("SEGUE_THREADS", "0") or 0)
        if threads > 0:  # fewer threads keep a busy machine (a DAW playing) responsive
            torch.set_num_threads(threads)
        self._soundfont_path = soundfont
        self._models: dict[str, SymbolicModel] = {}
        self._audio_models: dict[str, AudioModel | ConcatModel] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"local ({self.device.type})"

    def models(self) -> list[ModelInfo]:
        return [model_info(c) for c in installed_checkpoints()]

    def _symbolic(self, name: str) -> SymbolicModel:
        ckpt = find_checkpoint(name, kind="midi")
        if ckpt.type != SYMBOLIC_TYPE:
            raise BadInputError(f"model {ckpt.name!r} is a {ckpt.type} model; this region needs a MIDI model")
        if "continue" not in ckpt.config.get("modes", ["continue"]):  # an accompany model
            raise BadInputError(f"model {ckpt.name!r} only accompanies: use --mode accompany, or another model")
        key = str(ckpt.path)
        if key not in self._models:
            self._models[key] = SymbolicModel.load(ckpt, self.device)
        return self._models[key]

    def _audio(self, name: str) -> AudioModel | ConcatModel:
        from engine.audio.concat.job import ConcatModel
        from engine.audio.musicgen import is_musicgen_spec, load_musicgen
        from engine.audio.prior import AudioModel

        if is_musicgen_spec(name):  # --model musicgen:DIR (transformers, local files only)
            if name not in self._audio_models:
                self._audio_models[name] = load_musicgen(name, self.device)
            return self._audio_models[name]
        try:
            ckpt = find_checkpoint(name, kind="audio")
        except ModelNotFoundError as e:
            if name in ("", "default"):
                raise ModelNotFoundError(NO_AUDIO_MODEL) from e
            raise
        if ckpt.type == CONCAT_TYPE:  # segue-concat: fitted on each region, nothing to load
            return ConcatModel(ckpt.config)
        if ckpt.type != AUDIO_PRIOR_TYPE:
            raise BadInputError(
                f"model {ckpt.name!r} is a {ckpt.type or 'unknown'} model; an audio region needs an audio model "
                f"({CONCAT_TYPE} or {AUDIO_PRIOR_TYPE}): see `segue models`, or train one with `segue train audio`"
            )
        key = str(ckpt.path)
        if key not in self._audio_models:
            self._audio_models[key] = AudioModel.load(ckpt, self.device)
        return self._audio_models[key]

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        report = progress or _noop
        cancel = cancel or CancelToken()
        params = request.params
        prompt = request.prompt
        if params.mode == "accompany":  # the accompany model writes the other parts (engine.symbolic.accompany_job)
            from engine.symbolic.accompany_job import generate_accompaniment

            device, soundfont = self.device, self._soundfont_path
            return generate_accompaniment(request, job_dir, report, cancel, device, soundfont, self._lock)
        stem_notes: tuple[str, ...] = ()
        if prompt.stems:  # several tracks of one region: segue-concat continues them together
            if params.output not in ("auto", "audio"):
                raise BadInputError("stems are continued as audio (by segue-concat): leave out --as midi/both")
            if prompt.audio_path is None:
                from engine.audio.concat.stems import mix_stems

                prompt, stem_notes = mix_stems(prompt, job_dir)
                request = replace(request, prompt=prompt)
        if prompt.audio_path is None:
            return self._generate_midi(request, job_dir, report, cancel)
        if params.output == "midi" and prompt.midi_path is not None:  # audio and MIDI of one region, as MIDI
            midi_request = replace(request, prompt=replace(prompt, audio_path=None))
            return self._generate_midi(midi_request, job_dir, report, cancel)
        route, route_notes = transcription_route(self, request)
        if route is not None:  # an audio-only region as MIDI (or both): transcribed first (engine.transcribe_job)
            return generate_transcribed(self, request, route, job_dir, report, cancel, route_notes)
        audio_name, midi_name = self._model_names(request)
        if audio_name is None:  # MIDI and audio of one region, no audio model: continue the MIDI, say why
            note = "the audio was not continued: " + NO_AUDIO_MODEL
            midi_request = replace(request, prompt=replace(prompt, audio_path=None), model=midi_name)
            return self._generate_midi(midi_request, job_dir, report, cancel, (note,))
        return self._generate_audio(request, audio_name, midi_name, job_dir, report, cancel, stem_notes)

    def _model_names(self, request: GenerationRequest) -> tuple[str | None, str]:
        """(audio model, MIDI model) for an audio region; ``--model`` names one, the other is the default.

        The audio model is None when the region has MIDI too and no audio model is installed."""
        name, has_midi = request.model, request.prompt.midi_path is not None
        if not has_midi or name.startswith("musicgen:"):
            return name, "default"
        if name not in ("", "default"):
            ckpt = find_checkpoint(name, kind="audio")
            if ckpt.type == SYMBOLIC_TYPE:
                return (self._installed_audio_default(), name)
            return name, "default"
        return self._installed_audio_default(), "default"

    def _installed_audio_default(self) -> str | None:
        try:
            ckpt = find_checkpoint("default", kind="audio")
        except ModelNotFoundError:
            return None
        return str(ckpt.path) if ckpt.type in (AUDIO_PRIOR_TYPE, CONCAT_TYPE) else None

    def _generate_midi(
        self,
        request: GenerationRequest,
        job_dir: Path,
        report: ProgressCallback,
        cancel: CancelToken,
        extra_notes: tuple[str, ...] = (),
    ) -> GenerationResult:
        params = request.params
        prompt = request.prompt
        if prompt.midi_path is None:
            raise BadInputError(
                "audio-only regions are not supported in this version yet: give the region as a MIDI file"
            )
        timings: dict[str, float] = {}
        started = time.perf_counter()
        report(0.0, "reading the region")
        region = read_region(prompt)
        sample_rate = request.sample_rate or DEFAULT_SAMPLE_RATE
        soundfont = find_soundfont(self._soundfont_path)
        with self._lock:
            report(0.02, "loading the model")
            model = self._symbolic(request.model)
            timings["load_seconds"] = time.perf_counter() - started
            base_seed = params.seed if params.seed is not None else random.randrange(2**31)
            seeds = [base_seed + i for i in range(params.variants)]
            names = part_names_for(region.parts)
            t0 = time.perf_counter()
            used = ContinuationInfo()  # what the region guidance, candidates and adaptation did (job.json)
            variants = continue_region(
                model,
                region,
                params,
                seeds,
                names,
                progress=lambda f: report(0.05 + 0.6 * f, "generating"),
                cancel=cancel,
                info=used,
            )
            timings["generate_seconds"] = time.perf_counter() - t0
            seeds = used.seeds or seeds  # candidates: the kept variants' own seeds
            extra_notes += used.notes()
            timings.update(used.timings())
        t0 = time.perf_counter()
        job = _JobFiles(job_dir, region, params.bars, sample_rate, soundfont, prompt.tempo_bpm)
        results = []
        for index, (seed, parts) in enumerate(zip(seeds, variants, strict=True), start=1):
            cancel.raise_if_cancelled()
            report(0.65 + 0.35 * (index - 1) / len(variants), f"rendering variant {index}")
            results.append(job.write_variant(f"v{index:02d}", seed, parts))
        timings["render_seconds"] = time.perf_counter() - t0
        timings["total_seconds"] = time.perf_counter() - started
        report(1.0, "done")
        return GenerationResult(
            kind="midi",
            mode=params.mode,
            model=model.name,
            region=RegionInfo(
                tempo_bpm=region.tempo_bpm,
                meter=region.meter,
                length_beats=region.length_beats,
                length_bars=region.length_bars,
                sample_rate=sample_rate,
                parts=tuple(names[p.program] for p in region.parts),
                notes="; ".join(extra_notes + region.notes + job.notes),
            ),
            place_at_beats=region.length_beats,
            place_at_seconds=region.place_at_seconds,
            variants=tuple(results),
            timings=timings,
        )


    def _generate_audio(
        self,
        request: GenerationRequest,
        audio_name: str,
        midi_name: str,
        job_dir: Path,
        report: ProgressCallback,
        cancel: CancelToken,
        extra_notes: tuple[str, ...] = (),
    ) -> GenerationResult:
        """An audio region (and its MIDI file, when given): the audio engine continues the audio; the MIDI, if
        any, is continued by the symbolic engine into the same variant folders (:mod:`engine.audio.job`); the
        region's stems, if any, by segue-concat with the mix (:mod:`engine.audio.concat.stems`)."""
        from engine.audio.audio_io import probe_audio
        from engine.audio.concat.job import ConcatContinuation, ConcatModel
        from engine.audio.continuation import (
            AudioContinuation,
            continue_audio,
            locate_region,
            plan_prompt,
            prompt_samples_needed,
            read_region_tail,
        )
        from engine.audio.job import AUDIO_ROLES, AudioJobFiles, align_midi_to_audio, audio_grid
        from engine.audio.sampling import SamplingOptions

        params, prompt = request.params, request.prompt
        assert prompt.audio_path is not None
        timings: dict[str, float] = {}
        started = time.perf_counter()
        report(0.0, "reading the region")
        info = probe_audio(prompt.audio_path)
        midi_region = read_region(prompt) if prompt.midi_path is not None else None
        grid, notes = audio_grid(prompt, midi_region)
        notes = extra_notes + notes
        if midi_region is not None:
            midi_region, align_notes = align_midi_to_audio(prompt, midi_region, info.seconds, grid)
            _, seam, located = locate_region(info, grid, seam_seconds=midi_region.place_at_seconds)
            bars = midi_region.length_bars
            notes += align_notes + located
        else:
            bars, seam, located = locate_region(info, grid, prompt.length_beats, start_beats=prompt.start_beats)
            notes += located
        taken = [f"v{i:02d}" for i in range(1, params.variants + 1) if (job_dir / f"v{i:02d}").exists()]
        if taken:  # before any work: Segue never overwrites
            raise EngineError(f"{job_dir / taken[0]} already exists; Segue never overwrites files")
        with self._lock:
            report(0.02, "loading the audio model")
            model = self._audio(audio_name)
            symbolic = self._symbolic(midi_name) if midi_region is not None else None
            timings["load_seconds"] = time.perf_counter() - started
            lead_in = seam
            if seam / info.sample_rate > MAX_AUDITION_LEAD_IN_SECONDS:
                lead_in = min(seam, grid.samples(LONG_REGION_LEAD_IN_BARS, info.sample_rate))
                notes += (f"the region is long: full.wav starts {LONG_REGION_LEAD_IN_BARS} bars before its end",)
            base_seed = params.seed if params.seed is not None else random.randrange(2**31)
            seeds = [base_seed + i for i in range(params.variants)]
            span = 0.6 if symbolic is not None else 0.8
            t0 = time.perf_counter()
            progress = lambda f: report(0.05 + span * f, "generating audio")  # noqa: E731
            if prompt.stems and not isinstance(model, ConcatModel):
                raise BadInputError(f"stems are continued by segue-concat, not by {model.name}: leave out --model")
            if isinstance(model, ConcatModel):  # segue-concat: the region's own sound, recombined
                region = read_region_tail(info, grid, bars, seam, max(lead_in, model.samples_needed(
                    grid, bars, info.sample_rate)))  # fmt: skip
                stems = _region_stems(prompt, info, grid, seam, region.audio.shape[1])
                continuation: AudioContinuation | ConcatContinuation = model.continue_region(
                    region, params.bars, seeds, params.similarity, params.keep_opening, progress, cancel, stems
                )
            else:
                options = SamplingOptions(step_threads=model.step_threads)
                plan = plan_prompt(model, grid, bars, options)
                region = read_region_tail(
                    info, grid, bars, seam, max(lead_in, prompt_samples_needed(model, plan, info.sample_rate))
                )
                continuation = continue_audio(
                    model, region, params.bars, seeds, params.temperature, params.top_p, options, progress, cancel
                )
            timings["generate_seconds"] = time.perf_counter() - t0
            timings.update({f"audio_{k}": float(v) for k, v in continuation.timings.items()})
            midi_variants: list[tuple[PartNotes, ...]] = []
            names: dict[int, str] = {}
            if symbolic is not None and midi_region is not None:
                names = part_names_for(midi_region.parts)
                t0 = time.perf_counter()
                midi_variants = continue_region(
                    symbolic,
                    midi_region,
                    params,
                    seeds,
                    names,
                    progress=lambda f: report(0.65 + 0.2 * f, "generating MIDI"),
                    cancel=cancel,
                )
                timings["midi_generate_seconds"] = time.perf_counter() - t0
        out_rate = request.sample_rate or info.sample_rate
        t0 = time.perf_counter()
        midi_files = None
        if midi_region is not None:
            soundfont = find_soundfont(self._soundfont_path)
            midi_files = _JobFiles(
                job_dir, midi_region, params.bars, out_rate, soundfont, prompt.tempo_bpm,
                mix_name="continuation_midi.wav", full_mix_name="full_midi.wav",
            )  # fmt: skip
        audio_files = AudioJobFiles(job_dir, region, lead_in, params.bars, out_rate)
        results = []
        for index, (seed, audio) in enumerate(zip(seeds, continuation.variants, strict=True), start=1):
            cancel.raise_if_cancelled()
            report(0.85 + 0.15 * (index - 1) / len(seeds), f"writing variant {index}")
            variant_id = f"v{index:02d}"
            files: dict[str, str] = {}
            parts: tuple[str, ...] = ()
            if midi_files is not None:
                midi_result = midi_files.write_variant(variant_id, seed, midi_variants[index - 1])
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
            results.append(
                VariantResult(variant_id, seed, files, audio_files.duration_seconds, parts)
            )
        timings["write_seconds"] = time.perf_counter() - t0
        timings["total_seconds"] = time.perf_counter() - started
        report(1.0, "done")
        sources = {role: f"audio:{model.name}" for role in AUDIO_ROLES}
        sources.update({role: f"audio:{model.name}" for role in results[0].files if role.startswith("stem:")
                        and symbolic is None})  # fmt: skip
        if symbolic is not None:
            sources.update({role: f"midi:{symbolic.name}" for role in results[0].files if role not in AUDIO_ROLES})
        length_beats = (
            midi_region.length_beats
            if midi_region is not None
            else round(seam / info.sample_rate / grid.bar_seconds * grid.meter.quarters_per_bar, 6)
        )
        return GenerationResult(
            kind="audio",
            mode=params.mode,
            model=model.name if symbolic is None else f"{model.name} + {symbolic.name}",
            region=RegionInfo(
                tempo_bpm=grid.tempo_bpm,
                meter=grid.meter,
                length_beats=length_beats,
                length_bars=bars,
                sample_rate=out_rate,
                parts=tuple(names[p.program] for p in midi_region.parts) if midi_region is not None
                else tuple(name for name, _ in prompt.stems),
                notes="; ".join(
                    notes
                    + (midi_region.notes if midi_region is not None else ())
                    + region.notes
                    + continuation.notes
                    + (midi_files.notes if midi_files is not None else ())
                ),
            ),
            place_at_beats=length_beats,
            place_at_seconds=seam / info.sample_rate,
            variants=tuple(results),
            timings=timings,
            file_sources=sources,
        )


@dataclass(frozen=True)
class _JobFiles:
    """Writes one job's variant folders: MIDI first, then the audio rendered from that MIDI."""

    job_dir: Path
    region: Region
    bars: int
    sample_rate: int
    soundfont: SoundFont
    tempo_override_bpm: float | None
    mix_name: str = "continuation.wav"  # (role "audio"); MIDI + audio jobs: continuation_midi.wav ("midi_audio")
    full_mix_name: str = "full.wav"  # (role "full_audio"); MIDI + audio jobs: full_midi.wav ("full_midi_audio")

    @property
    def mix_roles(self) -> tuple[str, str]:
        if self.mix_name == "continuation.wav":
            return "audio", "full_audio"
        return "midi_audio", "full_midi_audio"

    @property
    def audition_start(self) -> int:
        return audition_start_tick(self.region)

    @property
    def notes(self) -> tuple[str, ...]:
        if self.audition_start == 0:
            return ()
        return (f"the region is long: full.wav/full.mid start {LONG_REGION_LEAD_IN_BARS} bars before its end",)

    def write_variant(self, variant_id: str, seed: int, parts: tuple[PartNotes, ...]) -> VariantResult:
        region = self.region
        folder = self.job_dir / variant_id
        try:
            folder.mkdir(parents=True, exist_ok=False)
        except FileExistsError as e:
            raise EngineError(f"{folder} already exists; Segue never overwrites files") from e
        tpq = region.ticks_per_quarter
        length_ticks = self.bars * region.bar_ticks
        duration = length_ticks / tpq * 60.0 / region.tempo_bpm
        conductor = Conductor(tempos=((0, region.tempo_bpm),), meters=((0, region.meter),))
        save_midi(build_midi(tpq, conductor, parts, length_ticks), folder / "continuation.mid")
        start = self.audition_start
        full_parts, full_conductor = _region_with_continuation(
            region, parts, start, self.tempo_override_bpm is not None
        )
        full_end = region.place_at_tick - start + length_ticks
        save_midi(build_midi(tpq, full_conductor, full_parts, full_end), folder / "full.mid")
        files = {"midi": f"{variant_id}/continuation.mid", "full_midi": f"{variant_id}/full.mid"}

        mix_role, full_role = self.mix_roles
        rendering = _render_file(folder / "continuation.mid", self.sample_rate, duration, self.soundfont)
        write_wav(folder / self.mix_name, rendering.mix, self.sample_rate)
        files[mix_role] = f"{variant_id}/{self.mix_name}"
        for name, stem in rendering.stems.items():
            write_wav(folder / "stems" / f"{name}.wav", stem, self.sample_rate)
            files[f"stem:{name}"] = f"{variant_id}/stems/{name}.wav"
        lead_in = region.place_at_seconds - seconds_at(region.score, start, self.tempo_override_bpm)
        full = _render_file(folder / "full.mid", self.sample_rate, lead_in + duration, self.soundfont)
        write_wav(folder / self.full_mix_name, full.mix, self.sample_rate)
        files[full_role] = f"{variant_id}/{self.full_mix_name}"
        return VariantResult(
            id=variant_id, seed=seed, files=files, duration_seconds=duration, parts=tuple(p.name for p in parts)
        )


def _render_file(path: Path, sample_rate: int, length_seconds: float, soundfont: SoundFont) -> Rendering:
    """Render the MIDI file we just wrote, so the audio is exactly what the MIDI says."""
    return render(cast(ScoreTick, Score(str(path))), sample_rate, length_seconds, soundfont)


def audition_start_tick(region: Region) -> int:
    """Where ``full.*`` starts: the region's start, or for a region longer than
    :data:`MAX_AUDITION_LEAD_IN_SECONDS`, the bar line :data:`LONG_REGION_LEAD_IN_BARS` bars before its end."""
    if region.place_at_seconds <= MAX_AUDITION_LEAD_IN_SECONDS:
        return 0
    return max(0, region.place_at_tick - LONG_REGION_LEAD_IN_BARS * region.bar_ticks)


def _events_from(events: list[tuple[int, T]], start: int, end: int, default: T) -> tuple[tuple[int, T], ...]:
    """Conductor events in ``[start, end)`` shifted to start at 0, with the one in force at ``start`` first."""
    current = default
    for tick, value in events:
        if tick <= start:
            current = value
    return ((0, current),) + tuple((tick - start, v) for tick, v in events if start < tick < end)


def _region_with_continuation(
    region: Region, parts: tuple[PartNotes, ...], start: int, tempo_override: bool
) -> tuple[tuple[PartNotes, ...], Conductor]:
    """The region's notes from ``start`` (merged by part), then the continuation at the region's end."""
    offset = region.place_at_tick
    by_program: dict[int, list[Note]] = {p.program: [] for p in parts}
    for track in region.score.tracks:
        program = -1 if track.is_drum else int(track.program)
        if program not in by_program:
            continue
        for n in track.notes:
            if start <= int(n.time) < offset:
                duration = max(1, min(int(n.duration), offset - int(n.time)))
                by_program[program].append(Note(int(n.time) - start, duration, int(n.pitch), int(n.velocity)))
    lead_in = offset - start
    merged = tuple(
        PartNotes(
            p.name,
            p.program,
            tuple(sorted(by_program[p.program], key=lambda n: n.start))
            + tuple(Note(n.start + lead_in, n.duration, n.pitch, n.velocity) for n in p.notes),
        )
        for p in parts
    )
    if tempo_override:
        tempos: tuple[tuple[int, float], ...] = ((0, region.tempo_bpm),)
    else:
        tempo_events = sorted((int(t.time), float(t.qpm)) for t in region.score.tempos)
        tempos = _events_from(tempo_events, start, offset, 120.0)
    meter_events = sorted((int(t.time), _meter_of(t)) for t in region.score.time_signatures)
    meters = _events_from(meter_events, start, offset, region.meter)
    if meters[-1][1] != region.meter:  # --meter overrides the file's
        meters = ((0, region.meter),)
    return merged, Conductor(tempos=tempos, meters=meters)


def _meter_of(ts: TimeSignatureTick) -> Meter:
    try:
        return Meter(int(ts.numerator), int(ts.denominator))
    except BadInputError:
        return Meter(4, 4)


def _region_stems(prompt: Prompt, info: AudioInfo, grid: BarGrid, seam: int, samples: int) -> list[tuple[str, Audio]]:
    """The region's stems (``Prompt.stems``), checked against the mix and read on the same samples."""
    if not prompt.stems:
        return []
    from engine.audio.concat.stems import check_stems, probe_stems, read_stem_tails

    stems = probe_stems(prompt)
    check_stems(stems, info, grid)
    return read_stem_tails(stems, seam, samples, info.channels)
