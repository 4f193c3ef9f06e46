"""Guidance from the region, candidates and test-time adaptation, with the shipped model (segue-midi-small).

Real material: Bach's chorale BWV 311 as encoded in the music21 corpus (music21/corpus/bach/bwv311.mxl; the corpus
is distributed with the encoders' permission, some encodings for non-commercial use only), converted by
bench/midi_quality_set.py into bench/data/midi_quality/bach_bwv311.mid. It is on the validation side of the shipped
model's training split, so the model never saw it. Everything else is written here (tests/support/midi_fixtures.py).

Sampling is seeded; each comparison is an aggregate over several variants with a margin far wider than what
float differences between CPUs can move.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import midi_fixtures
import mido
import pytest
import torch

from engine.api import GenerationParams, Prompt
from engine.checkpoints import find_checkpoint
from engine.evaluate import midi as measures
from engine.symbolic.adapt import AdaptSettings, adapted
from engine.symbolic.candidates import content_from_parts, content_from_score, select
from engine.symbolic.continuation import ContinuationInfo, SymbolicModel, continue_region, encode_prompt
from engine.symbolic.guidance import GuidanceSettings, region_stats, tonic_of
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import Region, read_region

ROOT = Path(__file__).resolve().parents[3]
CHORALE = ROOT / "bench" / "data" / "midi_quality" / "bach_bwv311.mid"
OFF = GuidanceSettings(enabled=False)


@pytest.fixture(scope="module")
def model() -> SymbolicModel:
    return SymbolicModel.load(find_checkpoint("default"))


def _run(
    model: SymbolicModel,
    region: Region,
    guidance: GuidanceSettings,
    bars: int = 4,
    variants: int = 4,
    candidates: int = 1,
    adapt: AdaptSettings | None = None,
    seed: int = 11,
    cache: bool = True,
) -> list[tuple]:  # type: ignore[type-arg]
    params = GenerationParams(bars=bars, variants=variants, seed=seed)
    seeds = [seed + i for i in range(variants)]
    return continue_region(
        model, region, params, seeds, part_names_for(region.parts), guidance=guidance, candidates=candidates,
        adapt=adapt, cache=cache,
    )  # fmt: skip


def _chorale_region(tmp_path: Path) -> Region:
    from symusic import Score

    score = Score(str(CHORALE))
    bar = 4 * score.ticks_per_quarter
    path = tmp_path / "bwv311_region.mid"
    score.clip(0, 4 * bar, clip_end=True).dump_midi(str(path))
    return read_region(Prompt(midi_path=path, length_beats=16.0))


def _write(path: Path, parts: list[tuple[int, list[tuple[int, int, int]]]], bars: int, tempo: float = 120.0) -> Path:
    """A type-1 file: (program, [(start, end, pitch)] in ticks at 480 per quarter) per part, 4/4."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    mid.tracks.append(conductor)
    for channel, (program, notes) in enumerate(parts):
        events = [(s, 1, mido.Message("note_on", channel=channel, note=p, velocity=90)) for s, _, p in notes]
        events += [(e, 0, mido.Message("note_off", channel=channel, note=p)) for _, e, p in notes]
        track = mido.MidiTrack([mido.Message("program_change", channel=channel, program=program, time=0)])
        now = 0
        for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=bars * 1920 - now))
        mid.tracks.append(track)
    mid.save(path)
    return path


def test_guidance_moves_pitch_and_rhythm_towards_a_held_out_chorale(model: SymbolicModel, tmp_path: Path) -> None:
    region = _chorale_region(tmp_path)
    start = region.place_at_tick - region.length_bars * region.bar_ticks
    own = content_from_score(region.score, start, region.place_at_tick)

    def overlaps(guidance: GuidanceSettings) -> tuple[float, float]:
        variants = _run(model, region, guidance, variants=6, cache=False)  # the guidance alone
        contents = [content_from_parts(v, region.ticks_per_quarter, 4 * region.bar_ticks) for v in variants]
        pc = statistics.mean(measures.pitch_class_overlap(c, own) or 0.0 for c in contents)
        onset = statistics.mean(measures.onset_position_overlap(c, own, 4.0) or 0.0 for c in contents)
        return pc, onset

    free_pc, free_onset = overlaps(OFF)
    close_pc, close_onset = overlaps(GuidanceSettings(similarity=1.0))
    assert close_pc > free_pc + 0.02, (free_pc, close_pc)
    assert close_onset > free_onset + 0.02, (free_onset, close_onset)


def test_held_chords_stay_held(model: SymbolicModel, tmp_path: Path) -> None:
    chords = [(0, 60), (0, 64), (0, 67), (1920, 57), (1920, 60), (1920, 64)] * 2
    pad = [(bar * 3840 + s, bar * 3840 + s + 1920, p) for bar in range(2) for s, p in chords[:6]]
    melody = [(i * 240, i * 240 + 240, 72 + (0, 2, 4, 5, 7, 5, 4, 2)[i % 8]) for i in range(32)]
    region = read_region(Prompt(midi_path=_write(tmp_path / "pad.mid", [(89, pad), (73, melody)], bars=4)))

    def pad_lengths(hold: bool) -> float:
        variants = _run(model, region, GuidanceSettings(hold_notes=hold, duration_weight=1.0 if hold else 0.0))
        lengths = [n.duration for v in variants for p in v if p.program == 89 for n in p.notes]
        return statistics.mean(lengths) / 480 if lengths else 0.0

    held = pad_lengths(True)
    assert held >= 1.5, f"the pad's notes last {held:.2f} quarters on average; the region holds them 4"
    assert held > pad_lengths(False)


def test_density_changes_notes_per_bar(model: SymbolicModel, tmp_path: Path) -> None:
    region = read_region(Prompt(midi_path=midi_fixtures.region(tmp_path, parts=[(0, False), (33, False)])))

    def notes(density: float) -> int:
        return sum(len(p.notes) for v in _run(model, region, GuidanceSettings(density=density)) for p in v)

    sparse, dense = notes(0.5), notes(1.5)
    assert dense > 1.4 * sparse, (sparse, dense)


def test_end_on_tonic_puts_the_bass_on_the_tonic_in_the_last_bar(model: SymbolicModel, tmp_path: Path) -> None:
    path = midi_fixtures.region(tmp_path, parts=[(0, False), (33, False)], tonic=62, scale=midi_fixtures.MAJOR)
    region = read_region(Prompt(midi_path=path))
    stats = region_stats(encode_prompt(region, model.tokenizer, model.vocab, 384), model.vocab, 32)
    tonic = tonic_of(stats)
    assert tonic == 2  # D major
    variants = _run(model, region, GuidanceSettings(end_on_tonic=True), bars=2)
    last_bar = region.bar_ticks
    lowest = min(stats.pitch_classes, key=lambda program: statistics.mean(stats.pitches[program]))
    assert lowest == 0  # the fixture's piano sits an octave under its bass guitar
    for variant in variants:
        bass = next(p for p in variant if p.program == lowest)
        final = [n for n in bass.notes if n.start >= last_bar]
        assert final and all(n.pitch % 12 == tonic for n in final)


def test_candidates_keep_distinct_variants(model: SymbolicModel, tmp_path: Path) -> None:
    # the selection: each variant takes its best-fitting candidate unless it repeats one already kept
    sets = [{(0, 60, False)}, {(0, 60, False)}, {(0, 62, False)}, {(0, 64, False), (1, 65, False)}]
    assert select([3.0, 3.0, 1.0, 0.5], sets, [[0, 2], [1, 3]]) == [0, 3]
    assert select([3.0, 3.0, 1.0, 0.5], sets, [[0], [1]]) == [0, 1]  # nothing else in the group: kept anyway
    region = read_region(Prompt(midi_path=midi_fixtures.region(tmp_path, parts=[(0, False), (33, False)])))
    variants = _run(model, region, GuidanceSettings(), bars=2, variants=3, candidates=3)
    contents = [content_from_parts(v, region.ticks_per_quarter, 2 * region.bar_ticks) for v in variants]
    _, identical = measures.variety(contents, 4)
    assert len(variants) == 3 and identical == 0


def test_adaptation_lowers_the_region_loss_and_restores_the_weights(model: SymbolicModel, tmp_path: Path) -> None:
    region = _chorale_region(tmp_path)
    ids = encode_prompt(region, model.tokenizer, model.vocab, 384)
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    with adapted(model.model, ids, model.tokenizer, AdaptSettings(steps=3, max_seconds=60.0)) as report:
        changed = any(not torch.equal(before[k], v) for k, v in model.model.state_dict().items())
    assert report.steps == 3 and changed
    assert report.loss_after is not None and report.loss_before is not None
    assert report.loss_after < report.loss_before
    assert all(torch.equal(before[k], v) for k, v in model.model.state_dict().items())
    assert not model.model.training and all(p.requires_grad for p in model.model.parameters())


def test_adaptation_stops_at_its_time_budget(model: SymbolicModel, tmp_path: Path) -> None:
    region = _chorale_region(tmp_path)
    ids = encode_prompt(region, model.tokenizer, model.vocab, 384)
    with adapted(model.model, ids, model.tokenizer, AdaptSettings(steps=50, max_seconds=0.0)) as report:
        pass
    assert report.steps == 0


def _one_bar(path: Path) -> Path:
    return midi_fixtures.region(path, bars=1, parts=[(0, False), (33, False)], name="one_bar.mid")


def _held_chord(path: Path) -> Path:
    return _write(path / "held.mid", [(48, [(0, 4 * 1920, p) for p in (60, 64, 67)])], bars=4)


def _sixteen_parts(path: Path) -> Path:
    parts = [(p, False) for p in range(0, 120, 8)] + [(0, True)]
    return midi_fixtures.region(path, parts=parts, notes_per_bar=2, name="sixteen.mid")


@pytest.mark.parametrize(
    "make",
    [
        _one_bar,
        midi_fixtures.drums_only,
        _held_chord,
        _sixteen_parts,
        lambda p: midi_fixtures.region(p, tempo_bpm=30.0, parts=[(0, False), (33, False)], name="slow.mid"),
        lambda p: midi_fixtures.region(p, tempo_bpm=300.0, parts=[(0, False), (33, False)], name="fast.mid"),
    ],
    ids=["one-bar", "drums-only", "held-chord", "16-parts", "30-bpm", "300-bpm"],
)
def test_awkward_regions_continue_with_the_defaults(model: SymbolicModel, tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    region = read_region(Prompt(midi_path=make(tmp_path)))
    budget = AdaptSettings(steps=2, max_seconds=30.0)
    info = ContinuationInfo()
    params = GenerationParams(bars=2, variants=2, seed=3, end_on_tonic=True)
    variants = continue_region(model, region, params, [3, 4], part_names_for(region.parts), adapt=budget, info=info)
    assert len(variants) == 2
    assert all(any(p.notes for p in v) for v in variants)
    assert info.adapt is not None and info.adapt.steps <= 2 and len(info.seeds) == 2
