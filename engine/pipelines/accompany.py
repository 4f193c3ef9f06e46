"""An accompany job: read the region, write the asked parts with the accompany model, write the job folder.

Per variant (``v01``, ``v02``, ...), everything on the region's own timeline (tick 0 = the region's start, the
result's ``place_at`` is 0 beats: the bridge puts the files at the region's start):

- ``continuation.mid``: the generated parts only (one track each), tempo and meter at tick 0, end of track at
  the region's end (role ``midi``);
- ``stems/<part>.mid`` and ``stems/<part>.wav``: each generated part alone (roles ``stem_midi:<part>`` and
  ``stem:<part>``);
- ``continuation.wav``: the mix of the generated parts without the region (role ``audio``);
- ``full.mid`` / ``full.wav``: the region's own parts with the generated ones (roles ``full_midi``,
  ``full_audio``).

An audio-only region is transcribed to MIDI first (:func:`engine.pipelines.transcribed.transcribe_prompt`; it
needs ``--tempo``), the transcription kept as ``<job>/region/transcribed.mid``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from engine.api import DEFAULT_SAMPLE_RATE, GenerationRequest, GenerationResult, VariantResult
from engine.checkpoints import find_checkpoint
from engine.errors import BadInputError, ModelNotFoundError
from engine.midi_io import Conductor, Note, PartNotes, build_midi
from engine.nn.model_fast import apply_settings
from engine.pipelines.context import JobContext, Stopwatch, refuse_taken_variants, variant_seeds
from engine.pipelines.files import VariantFolder, write_note_variants
from engine.pipelines.midi import region_info
from engine.render.soundfont import SoundFont, find_soundfont
from engine.symbolic.accompany.generate import AccompanyModel, accompany_region, check_model_parts, describe_key
from engine.symbolic.accompany.layout import is_accompany_checkpoint
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import Region, read_region, seconds_at

log = logging.getLogger(__name__)

NO_ACCOMPANY_MODEL = (
    "no accompany model is installed (segue-accompany-small ships in engine/models/: reinstall Segue to get it "
    "back), or train one with `segue train accompany --data MIDI_DIR --out MODEL_DIR` and give --model MODEL_DIR"
)

_models: dict[tuple[str, str], AccompanyModel] = {}
_models_lock = threading.Lock()


def load_model(name: str, device: torch.device) -> AccompanyModel:
    """The accompany model ``name`` ("default": the shipped one; an installed name; a checkpoint folder)."""
    try:
        ckpt = find_checkpoint(name or "default", kind="accompany")
    except ModelNotFoundError as e:
        if name in ("", "default"):
            raise ModelNotFoundError(NO_ACCOMPANY_MODEL) from e
        raise
    if not is_accompany_checkpoint(ckpt):
        modes = ", ".join(ckpt.config.get("modes", ["continue"]))
        raise BadInputError(
            f"model {ckpt.name!r} cannot accompany (its modes: {modes}); leave --model out for the default "
            "accompany model, or see `segue models` for models whose modes include accompany"
        )
    key = (str(ckpt.path.resolve()), str(device))
    with _models_lock:
        if key not in _models:
            _models[key] = AccompanyModel.load(ckpt, device)
        return _models[key]


def _transcribe(request: GenerationRequest, job_dir: Path, threads: int) -> tuple[GenerationRequest, tuple[str, ...]]:
    """An audio-only region as a MIDI file of its melody (basic-pitch), for the accompany model to read."""
    from engine.pipelines.transcribed import transcribe_prompt

    if request.prompt.tempo_bpm is None:
        raise BadInputError(
            "an audio region needs its tempo to be accompanied: give --tempo BPM (and --meter if not 4/4), "
            "or give the region's MIDI file"
        )
    midi_prompt, _, notes = transcribe_prompt(request.prompt, job_dir, threads=threads)
    return replace(request, prompt=replace(midi_prompt, audio_path=None)), notes


def run(request: GenerationRequest, job_dir: Path, context: JobContext) -> GenerationResult:
    """Run one accompany job (see the module docstring)."""
    params, report, cancel = request.params, context.report, context.cancel
    timings = Stopwatch()
    notes = context.notes
    refuse_taken_variants(job_dir, params.variants)  # before any work: Segue never overwrites
    report(0.0, "reading the region")
    if request.prompt.midi_path is None:
        if request.prompt.audio_path is None:
            raise BadInputError("give the region to accompany as a MIDI file (or an audio file with --tempo)")
        report(0.01, "transcribing the audio")
        request, transcribed = _transcribe(request, job_dir, context.threads)
        notes += transcribed
    prompt = request.prompt
    region = read_region(prompt)
    if not any(not p.is_drum for p in region.parts):
        raise BadInputError(
            f"{region.path} has no pitched notes (only drums): accompany mode needs a melody or other pitched part"
        )
    sample_rate = request.sample_rate or DEFAULT_SAMPLE_RATE
    soundfont = find_soundfont(context.soundfont_path)
    with context.lock:
        report(0.03, "loading the model")
        model = load_model(request.model, context.models.device)
        apply_settings(model.model, context.models.decode)
        parts = check_model_parts(model, params.parts)
        timings.since_start("load_seconds")
        seeds = variant_seeds(params)
        with timings.step("generate_seconds"):
            variants = accompany_region(
                model,
                region,
                parts,
                seeds,
                temperature=params.temperature,
                top_p=params.top_p,
                progress=lambda f: report(0.05 + 0.6 * f, "generating"),
                cancel=cancel,
            )
    job = AccompanyFiles(job_dir, region, sample_rate, soundfont, prompt.tempo_bpm)
    results = write_note_variants(job, seeds, variants, context, timings)
    region_notes = notes + region.notes + (f"accompanied in {describe_key(region)} ({', '.join(parts)})",)
    return GenerationResult(
        kind="midi",
        mode="accompany",
        model=model.name,
        region=region_info(region, sample_rate, region_notes),
        place_at_beats=0.0,
        place_at_seconds=0.0,
        variants=results,
        timings=timings.seconds,
    )


@dataclass(frozen=True)
class AccompanyFiles:
    """Writes one accompany job's variant folders: MIDI first, then the audio rendered from that MIDI."""

    job_dir: Path
    region: Region
    sample_rate: int
    soundfont: SoundFont
    tempo_override_bpm: float | None

    def conductor(self) -> Conductor:
        region = self.region
        if self.tempo_override_bpm is not None:
            tempos: tuple[tuple[int, float], ...] = ((0, self.tempo_override_bpm),)
        else:
            events = sorted((int(t.time), float(t.qpm)) for t in region.score.tempos if t.time < region.place_at_tick)
            first = next((bpm for tick, bpm in events if tick == 0), None)
            tempos = ((0, first if first is not None else (events[0][1] if events else 120.0)),)
            tempos += tuple((tick, bpm) for tick, bpm in events if tick > 0)
        return Conductor(tempos=tempos, meters=((0, region.meter),))

    def region_parts(self) -> tuple[PartNotes, ...]:
        """The region's own notes, one part per program (drums: -1)."""
        region = self.region
        names = part_names_for(region.parts)
        by_program: dict[int, list[Note]] = {p.program: [] for p in region.parts}
        for track in region.score.tracks:
            program = -1 if track.is_drum else int(track.program)
            if program not in by_program:
                continue
            for n in track.notes:
                if int(n.time) < region.place_at_tick:
                    duration = max(1, min(int(n.duration), region.place_at_tick - int(n.time)))
                    by_program[program].append(Note(int(n.time), duration, int(n.pitch), int(n.velocity)))
        return tuple(
            PartNotes(names[p.program], p.program, tuple(sorted(by_program[p.program], key=lambda n: n.start)))
            for p in region.parts
        )

    def write_variant(self, variant_id: str, seed: int, parts: tuple[PartNotes, ...]) -> VariantResult:
        region = self.region
        folder = VariantFolder(self.job_dir, variant_id)
        tpq = region.ticks_per_quarter
        end = region.place_at_tick
        duration = seconds_at(region.score, end, self.tempo_override_bpm)
        conductor = self.conductor()
        continuation = folder.midi("continuation.mid", build_midi(tpq, conductor, parts, end), "midi")
        for part in parts:
            midi = build_midi(tpq, conductor, [part], end)
            folder.midi(f"stems/{part.name}.mid", midi, f"stem_midi:{part.name}")
        full = folder.midi("full.mid", build_midi(tpq, conductor, self.region_parts() + parts, end), "full_midi")
        folder.rendered(continuation, self.sample_rate, duration, self.soundfont, ("continuation.wav", "audio"), True)
        folder.rendered(full, self.sample_rate, duration, self.soundfont, ("full.wav", "full_audio"), False)
        return VariantResult(
            id=variant_id, seed=seed, files=folder.files, duration_seconds=duration, parts=tuple(p.name for p in parts)
        )
