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
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

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
    RegionInfo,
    VariantResult,
)
from engine.checkpoints import SYMBOLIC_TYPE, find_checkpoint, installed_checkpoints, model_info
from engine.errors import BadInputError, EngineError
from engine.render.soundfont import SoundFont, find_soundfont
from engine.render.synth import Rendering, render
from engine.render.wavfile import write_wav
from engine.symbolic.continuation import SymbolicModel, continue_region
from engine.symbolic.midifile import Conductor, Note, PartNotes, build_midi, save_midi
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import Region, read_region, seconds_at

log = logging.getLogger(__name__)

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
        key = str(ckpt.path)
        if key not in self._models:
            self._models[key] = SymbolicModel.load(ckpt, self.device)
        return self._models[key]

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
        if params.mode != "continue":
            raise BadInputError("accompany mode is not available in this version yet; use --mode continue")
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
            variants = continue_region(
                model,
                region,
                params,
                seeds,
                names,
                progress=lambda f: report(0.05 + 0.6 * f, "generating"),
                cancel=cancel,
            )
            timings["generate_seconds"] = time.perf_counter() - t0
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
                notes="; ".join(region.notes + job.notes),
            ),
            place_at_beats=region.length_beats,
            place_at_seconds=region.place_at_seconds,
            variants=tuple(results),
            timings=timings,
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

        rendering = _render_file(folder / "continuation.mid", self.sample_rate, duration, self.soundfont)
        write_wav(folder / "continuation.wav", rendering.mix, self.sample_rate)
        files["audio"] = f"{variant_id}/continuation.wav"
        for name, stem in rendering.stems.items():
            write_wav(folder / "stems" / f"{name}.wav", stem, self.sample_rate)
            files[f"stem:{name}"] = f"{variant_id}/stems/{name}.wav"
        lead_in = region.place_at_seconds - seconds_at(region.score, start, self.tempo_override_bpm)
        full = _render_file(folder / "full.mid", self.sample_rate, lead_in + duration, self.soundfont)
        write_wav(folder / "full.wav", full.mix, self.sample_rate)
        files["full_audio"] = f"{variant_id}/full.wav"
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
