"""A MIDI region continued by the MIDI engine.

Per variant: ``continuation.mid`` (the generated bars, tick 0 = the bar line after the region), ``full.mid``
(the region, or its last bars when it is long, then the continuation), and the audio rendered from them:
``continuation.wav``, ``stems/<part>.wav`` and ``full.wav``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from symusic.core import TimeSignatureTick

from engine.api import DEFAULT_SAMPLE_RATE, GenerationRequest, GenerationResult, Meter, RegionInfo, VariantResult
from engine.errors import BadInputError
from engine.midi_io import Conductor, Note, PartNotes, build_midi
from engine.pipelines.context import JobContext, Stopwatch, variant_seeds
from engine.pipelines.files import VariantFolder, write_note_variants
from engine.render.soundfont import SoundFont, find_soundfont
from engine.symbolic.continuation import ContinuationInfo, continue_region
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import Region, read_region, seconds_at

MAX_AUDITION_LEAD_IN_SECONDS = 300.0  # full.wav holds the whole region up to this length...
LONG_REGION_LEAD_IN_BARS = 8  # ...else only its last bars
T = TypeVar("T")


def run(request: GenerationRequest, job_dir: Path, context: JobContext) -> GenerationResult:
    """Continue the region's MIDI file and write every variant's folder (see the module docstring)."""
    params, prompt, report = request.params, request.prompt, context.report
    if prompt.midi_path is None:
        raise BadInputError("audio-only regions are not supported in this version yet: give the region as a MIDI file")
    notes = context.notes
    timings = Stopwatch()
    report(0.0, "reading the region")
    region = read_region(prompt)
    sample_rate = request.sample_rate or DEFAULT_SAMPLE_RATE
    soundfont = find_soundfont(context.soundfont_path)
    with context.lock:
        report(0.02, "loading the model")
        model = context.models.symbolic(request.model)
        timings.since_start("load_seconds")
        seeds = variant_seeds(params)
        names = part_names_for(region.parts)
        used = ContinuationInfo()  # what the region guidance, candidates and adaptation did (job.json)
        with timings.step("generate_seconds"):
            variants = continue_region(
                model,
                region,
                params,
                seeds,
                names,
                progress=lambda f: report(0.05 + 0.6 * f, "generating"),
                cancel=context.cancel,
                info=used,
            )
        seeds = used.seeds or seeds  # candidates: the kept variants' own seeds
        notes += used.notes()
        timings.seconds.update(used.timings())
    job = MidiJobFiles(job_dir, region, params.bars, sample_rate, soundfont, prompt.tempo_bpm)
    results = write_note_variants(job, seeds, variants, context, timings)
    return GenerationResult(
        kind="midi",
        mode=params.mode,
        model=model.name,
        region=region_info(region, sample_rate, notes + region.notes + job.notes),
        place_at_beats=region.length_beats,
        place_at_seconds=region.place_at_seconds,
        variants=results,
        timings=timings.seconds,
    )


def region_info(region: Region, sample_rate: int, notes: tuple[str, ...]) -> RegionInfo:
    """What the engine read from a MIDI region (the grid every variant is placed on), with ``notes`` said."""
    names = part_names_for(region.parts)
    return RegionInfo(
        tempo_bpm=region.tempo_bpm,
        meter=region.meter,
        length_beats=region.length_beats,
        length_bars=region.length_bars,
        sample_rate=sample_rate,
        parts=tuple(names[p.program] for p in region.parts),
        notes="; ".join(notes),
    )


@dataclass(frozen=True)
class MidiJobFiles:
    """Writes the MIDI engine's files of each variant: MIDI first, then the audio rendered from that MIDI."""

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
        folder = VariantFolder(self.job_dir, variant_id)
        tpq = region.ticks_per_quarter
        length_ticks = self.bars * region.bar_ticks
        duration = length_ticks / tpq * 60.0 / region.tempo_bpm
        conductor = Conductor(tempos=((0, region.tempo_bpm),), meters=((0, region.meter),))
        continuation = folder.midi("continuation.mid", build_midi(tpq, conductor, parts, length_ticks), "midi")
        start = self.audition_start
        full_parts, full_conductor = _region_with_continuation(
            region, parts, start, self.tempo_override_bpm is not None
        )
        full_end = region.place_at_tick - start + length_ticks
        full = folder.midi("full.mid", build_midi(tpq, full_conductor, full_parts, full_end), "full_midi")
        mix_role, full_role = self.mix_roles
        folder.rendered(continuation, self.sample_rate, duration, self.soundfont, (self.mix_name, mix_role), True)
        lead_in = region.place_at_seconds - seconds_at(region.score, start, self.tempo_override_bpm)
        full_mix = (self.full_mix_name, full_role)
        folder.rendered(full, self.sample_rate, lead_in + duration, self.soundfont, full_mix, False)
        return VariantResult(
            id=variant_id, seed=seed, files=folder.files, duration_seconds=duration, parts=tuple(p.name for p in parts)
        )


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
