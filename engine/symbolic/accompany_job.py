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

An audio-only region is transcribed to MIDI first (:mod:`engine.transcribe`; it needs ``--tempo``), the
transcription kept as ``<job>/region/transcribed.mid``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import torch
from symusic import Score
from symusic.core import ScoreTick

from engine.api import (
    DEFAULT_SAMPLE_RATE,
    CancelToken,
    GenerationRequest,
    GenerationResult,
    Meter,
    ProgressCallback,
    RegionInfo,
    VariantResult,
)
from engine.checkpoints import find_checkpoint
from engine.errors import BadInputError, EngineError, ModelNotFoundError
from engine.render.soundfont import SoundFont, find_soundfont
from engine.render.synth import Rendering, render
from engine.render.wavfile import write_wav
from engine.symbolic.accompany import is_accompany_checkpoint
from engine.symbolic.accompany_gen import AccompanyModel, accompany_region, check_model_parts, describe_key
from engine.symbolic.midifile import Conductor, Note, PartNotes, build_midi, save_midi
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import Region, read_region, seconds_at

log = logging.getLogger(__name__)

TRANSCRIBED_MIDI = Path("region") / "transcribed.mid"
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


def _transcribe(request: GenerationRequest, job_dir: Path) -> tuple[GenerationRequest, tuple[str, ...]]:
    """An audio-only region as a MIDI file of its melody (basic-pitch), for the accompany model to read."""
    prompt = request.prompt
    assert prompt.audio_path is not None
    try:
        from engine.transcribe import transcribe_region
    except ImportError as e:  # pragma: no cover - the module ships with Segue
        raise BadInputError(
            "accompanying an audio region needs audio-to-MIDI transcription, which this install lacks: "
            "give the region as a MIDI file"
        ) from e
    if prompt.tempo_bpm is None:
        raise BadInputError(
            "an audio region needs its tempo to be accompanied: give --tempo BPM (and --meter if not 4/4), "
            "or give the region's MIDI file"
        )
    meter = prompt.meter or Meter(4, 4)
    out = job_dir / TRANSCRIBED_MIDI
    out.parent.mkdir(parents=True, exist_ok=True)
    result = transcribe_region(Path(prompt.audio_path), prompt.tempo_bpm, meter, prompt.length_beats, out)
    midi_prompt = replace(
        prompt, midi_path=Path(result.midi_path), audio_path=None, meter=meter, length_beats=result.length_beats
    )
    return replace(request, prompt=midi_prompt), (result.summary, *result.notes)


def generate_accompaniment(
    request: GenerationRequest,
    job_dir: Path,
    report: ProgressCallback,
    cancel: CancelToken,
    device: torch.device,
    soundfont_path: str | None,
    lock: threading.Lock,
) -> GenerationResult:
    """Run one accompany job (see the module docstring)."""
    params = request.params
    timings: dict[str, float] = {}
    started = time.perf_counter()
    notes: tuple[str, ...] = ()
    taken = [f"v{i:02d}" for i in range(1, params.variants + 1) if (job_dir / f"v{i:02d}").exists()]
    if taken:  # before any work: Segue never overwrites
        raise EngineError(f"{job_dir / taken[0]} already exists; Segue never overwrites files")
    report(0.0, "reading the region")
    if request.prompt.midi_path is None:
        if request.prompt.audio_path is None:
            raise BadInputError("give the region to accompany as a MIDI file (or an audio file with --tempo)")
        report(0.01, "transcribing the audio")
        request, notes = _transcribe(request, job_dir)
    prompt = request.prompt
    region = read_region(prompt)
    if not any(not p.is_drum for p in region.parts):
        raise BadInputError(
            f"{region.path} has no pitched notes (only drums): accompany mode needs a melody or other pitched part"
        )
    sample_rate = request.sample_rate or DEFAULT_SAMPLE_RATE
    soundfont = find_soundfont(soundfont_path)
    with lock:
        report(0.03, "loading the model")
        model = load_model(request.model, device)
        parts = check_model_parts(model, params.parts)
        timings["load_seconds"] = time.perf_counter() - started
        base_seed = params.seed if params.seed is not None else random.randrange(2**31)
        seeds = [base_seed + i for i in range(params.variants)]
        t0 = time.perf_counter()
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
        timings["generate_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    job = AccompanyFiles(job_dir, region, sample_rate, soundfont, prompt.tempo_bpm)
    results = []
    for index, (seed, generated) in enumerate(zip(seeds, variants, strict=True), start=1):
        cancel.raise_if_cancelled()
        report(0.65 + 0.35 * (index - 1) / len(variants), f"rendering variant {index}")
        results.append(job.write_variant(f"v{index:02d}", seed, generated))
    timings["render_seconds"] = time.perf_counter() - t0
    timings["total_seconds"] = time.perf_counter() - started
    report(1.0, "done")
    names = part_names_for(region.parts)
    region_notes = notes + region.notes + (f"accompanied in {describe_key(region)} ({', '.join(parts)})",)
    return GenerationResult(
        kind="midi",
        mode="accompany",
        model=model.name,
        region=RegionInfo(
            tempo_bpm=region.tempo_bpm,
            meter=region.meter,
            length_beats=region.length_beats,
            length_bars=region.length_bars,
            sample_rate=sample_rate,
            parts=tuple(names[p.program] for p in region.parts),
            notes="; ".join(region_notes),
        ),
        place_at_beats=0.0,
        place_at_seconds=0.0,
        variants=tuple(results),
        timings=timings,
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
        folder = self.job_dir / variant_id
        try:
            folder.mkdir(parents=True, exist_ok=False)
        except FileExistsError as e:
            raise EngineError(f"{folder} already exists; Segue never overwrites files") from e
        tpq = region.ticks_per_quarter
        end = region.place_at_tick
        duration = seconds_at(region.score, end, self.tempo_override_bpm)
        conductor = self.conductor()
        save_midi(build_midi(tpq, conductor, parts, end), folder / "continuation.mid")
        files = {"midi": f"{variant_id}/continuation.mid"}
        for part in parts:
            save_midi(build_midi(tpq, conductor, [part], end), folder / "stems" / f"{part.name}.mid")
            files[f"stem_midi:{part.name}"] = f"{variant_id}/stems/{part.name}.mid"
        save_midi(build_midi(tpq, conductor, self.region_parts() + parts, end), folder / "full.mid")
        files["full_midi"] = f"{variant_id}/full.mid"
        rendering = _render_file(folder / "continuation.mid", self.sample_rate, duration, self.soundfont)
        write_wav(folder / "continuation.wav", rendering.mix, self.sample_rate)
        files["audio"] = f"{variant_id}/continuation.wav"
        for name, stem in rendering.stems.items():
            write_wav(folder / "stems" / f"{name}.wav", stem, self.sample_rate)
            files[f"stem:{name}"] = f"{variant_id}/stems/{name}.wav"
        full = _render_file(folder / "full.mid", self.sample_rate, duration, self.soundfont)
        write_wav(folder / "full.wav", full.mix, self.sample_rate)
        files["full_audio"] = f"{variant_id}/full.wav"
        return VariantResult(
            id=variant_id, seed=seed, files=files, duration_seconds=duration, parts=tuple(p.name for p in parts)
        )


def _render_file(path: Path, sample_rate: int, length_seconds: float, soundfont: SoundFont) -> Rendering:
    """Render the MIDI file just written, so the audio is exactly what the MIDI says."""
    return render(cast(ScoreTick, Score(str(path))), sample_rate, length_seconds, soundfont)
