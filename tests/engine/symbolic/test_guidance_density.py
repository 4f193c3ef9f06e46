"""The density target's reading of the region (engine.symbolic.guidance.notes_per_bar, issue 16), on hand-made
REMI token streams: no model, no sampling, so every figure is exact; and one job (the shipped model,
engine/models/segue-midi-small, trained by this project) on a region written here, where only the targets handed
to the sampler are checked, not what it samples."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import mido
import pytest

from engine.api import GenerationParams, Meter, Prompt
from engine.checkpoints import find_checkpoint
from engine.midi_io import Note, PartNotes
from engine.symbolic import continuation
from engine.symbolic.constraints import Constraints, Vocabulary
from engine.symbolic.continuation import SymbolicModel, choose, continue_region
from engine.symbolic.guidance import GuidanceSettings, guided_constraints, notes_per_bar, region_stats
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import read_region

PPB = 32  # positions per bar of 4/4 (8 a beat)
VOCAB = Vocabulary(
    size=400,
    bar=1,
    pad=0,
    time_signatures={(4, 4): 2},
    positions=list(range(10, 10 + PPB)),
    programs={0: 50, 33: 51, -1: 52},
    pitches={p: 100 + p for p in range(21, 109)},
    drum_pitches={p: 300 + p for p in range(35, 82)},
    velocities=[250, 251],
    durations=[260, 261, 262, 263],
)
PIANO, BASS, DRUMS = 0, 33, -1


def tokens(bars: list[list[tuple[int, int]]]) -> list[int]:
    """A REMI stream: per bar, (position, program) onsets of one note each (drums: a kick)."""
    ids: list[int] = []
    for onsets in bars:
        ids += [VOCAB.bar, VOCAB.time_signatures[(4, 4)]]
        for position, program in sorted(onsets):
            pitch = VOCAB.drum_pitches[36] if program == -1 else VOCAB.pitches[48 if program == BASS else 60]
            ids += [VOCAB.positions[position], VOCAB.programs[program], pitch, VOCAB.velocities[0], VOCAB.durations[1]]
    return ids


def every(step: int, program: int) -> list[tuple[int, int]]:
    return [(p, program) for p in range(0, PPB, step)]


# the bass plays 4 notes a bar throughout; the piano comes in at bar 3 with 8 a bar; the last bar has a kick on 4
REGION = [every(8, BASS), every(8, BASS), every(8, BASS) + every(4, PIANO), every(8, BASS) + every(4, PIANO)]


def test_region_stats_counts_each_bar_and_the_first_note() -> None:
    stats = region_stats(tokens(REGION), VOCAB, PPB)
    assert stats.bars == 4
    assert stats.bar_notes[BASS] == [4, 4, 4, 4]
    assert stats.bar_notes[PIANO] == [0, 0, 8, 8]
    assert stats.first_onset[BASS] == 0.0
    assert stats.first_onset[PIANO] == 2.0


def test_a_part_that_enters_late_keeps_its_own_rate() -> None:
    stats = region_stats(tokens(REGION), VOCAB, PPB)
    assert notes_per_bar(stats, PIANO, "region") == pytest.approx(4.0)  # 16 notes over 4 bars: half its rate
    assert notes_per_bar(stats, PIANO, "entry") == pytest.approx(8.0)  # from its first note on
    assert notes_per_bar(stats, BASS, "entry") == pytest.approx(4.0)  # a part there from the start: the same
    assert notes_per_bar(stats, BASS, "region") == pytest.approx(4.0)
    assert notes_per_bar(stats, DRUMS, "entry") == 0.0  # a part the tokens never play


def test_an_entry_in_mid_bar_counts_the_part_of_the_bar_after_it() -> None:
    # the piano enters at the half bar of bar 3 (4 notes there), then 8 in bar 4: 12 notes in 1.5 bars
    region = [every(8, BASS), every(8, BASS), every(8, BASS) + every(4, PIANO)[4:], every(8, BASS) + every(4, PIANO)]
    stats = region_stats(tokens(region), VOCAB, PPB)
    assert stats.first_onset[PIANO] == pytest.approx(2.5)
    assert notes_per_bar(stats, PIANO, "entry") == pytest.approx(8.0)


def test_an_entry_in_the_last_bar_counts_over_one_bar_at_least() -> None:
    # two kicks on the last beat: two notes a bar, not eight (two notes over a quarter of a bar)
    region = [every(8, BASS), every(8, BASS), every(8, BASS), every(8, BASS) + [(24, DRUMS), (28, DRUMS)]]
    stats = region_stats(tokens(region), VOCAB, PPB)
    assert notes_per_bar(stats, DRUMS, "entry") == pytest.approx(2.0)


def test_a_part_silent_in_the_last_bars_still_counts_them() -> None:
    region = [every(4, PIANO), every(4, PIANO), every(4, PIANO), []]
    stats = region_stats(tokens(region), VOCAB, PPB)
    assert stats.bars == 4
    assert notes_per_bar(stats, PIANO, "entry") == pytest.approx(6.0)  # 24 notes over 4 bars


def test_a_half_life_weighs_the_last_bars_more() -> None:
    region = [every(16, BASS), every(16, BASS), every(16, BASS), every(4, BASS)]  # 2, 2, 2 then 8 notes
    stats = region_stats(tokens(region), VOCAB, PPB)
    flat = notes_per_bar(stats, BASS, "entry")
    recent = notes_per_bar(stats, BASS, "entry", half_life=1.0)
    assert flat == pytest.approx(3.5)
    assert flat < recent < 8.0
    # weights 1/8, 1/4, 1/2, 1: (2/8 + 2/4 + 2/2 + 8) / (15/8)
    assert recent == pytest.approx((0.25 + 0.5 + 1.0 + 8.0) / 1.875)


def test_an_unknown_source_is_refused() -> None:
    stats = region_stats(tokens(REGION), VOCAB, PPB)
    with pytest.raises(ValueError, match="density source"):
        notes_per_bar(stats, PIANO, "recent")


def _constraints() -> Constraints:
    return Constraints(bars=4, meter=Meter(4, 4), parts={PIANO: (60,), BASS: (48,)})


def test_guided_constraints_reads_the_targets_from_the_whole_region() -> None:
    whole = region_stats(tokens(REGION), VOCAB, PPB)
    prompt = region_stats(tokens(REGION[-1:]), VOCAB, PPB)  # the model's prompt: the last bar only
    thin = region_stats(tokens([every(8, BASS) + every(16, PIANO)]), VOCAB, PPB)  # a last bar unlike the rest
    settings = GuidanceSettings(density_from="entry", density_half_life=0.0)
    targets = guided_constraints(_constraints(), prompt, VOCAB, settings, whole).density_target
    assert targets == pytest.approx({PIANO: 8.0, BASS: 4.0})
    # the prompt's own figures where asked, or where no whole-region reading is given
    before = replace(settings, density_from="prompt")
    assert guided_constraints(_constraints(), thin, VOCAB, before, whole).density_target == pytest.approx(
        {PIANO: 2.0, BASS: 4.0}
    )
    assert guided_constraints(_constraints(), thin, VOCAB, settings).density_target == pytest.approx(
        {PIANO: 2.0, BASS: 4.0}
    )
    # the density asked scales the target, per part where asked
    asked = replace(settings, density=0.5, part_density={BASS: 2.0})
    assert guided_constraints(_constraints(), prompt, VOCAB, asked, whole).density_target == pytest.approx(
        {PIANO: 4.0, BASS: 8.0}
    )
    region = replace(settings, density_from="region")
    assert guided_constraints(_constraints(), prompt, VOCAB, region, whole).density_target == pytest.approx(
        {PIANO: 4.0, BASS: 4.0}
    )


def _dense_region(path: Path) -> Path:
    """4 bars of 4/4: a bass (program 33) in three-note chords on every 16th (48 notes a bar: the model's prompt,
    half a context, holds only the last bar) and a piano (program 0) in eighths in bars 1-3, silent in bar 4."""
    tpq, bar = 480, 1920
    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    conductor.append(mido.MetaMessage("end_of_track", time=4 * bar))
    mid.tracks.append(conductor)
    for channel, program, chord, step, bars in ((0, 0, (72,), tpq // 2, 3), (1, 33, (40, 44, 47), tpq // 4, 4)):
        track = mido.MidiTrack()
        track.append(mido.Message("program_change", channel=channel, program=program, time=0))
        now = 0
        for on in range(0, bars * bar, step):
            for k, pitch in enumerate(chord):
                track.append(
                    mido.Message("note_on", channel=channel, note=pitch, velocity=90, time=on - now if k == 0 else 0)
                )
                now = on
            for k, pitch in enumerate(chord):
                track.append(mido.Message("note_off", channel=channel, note=pitch, time=step // 2 if k == 0 else 0))
            now = on + step // 2
        track.append(mido.MetaMessage("end_of_track", time=4 * bar - now))
        mid.tracks.append(track)
    out = path / "dense.mid"
    mid.save(out)
    return out


def test_a_job_reads_the_targets_from_the_whole_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """continue_region hands the guidance the whole region's tokens, not only the model's prompt (here the last
    bar, where the piano rests): the piano's target is its 24 notes over the 4 bars, not 0."""
    model = SymbolicModel.load(find_checkpoint("default"))
    region = read_region(Prompt(midi_path=_dense_region(tmp_path)))
    prompt_ids = continuation.encode_prompt(region, model.tokenizer, model.vocab, model.model.config.block_size // 2)
    assert prompt_ids.count(model.vocab.bar) == 1  # the premise: the prompt is the last bar only
    seen: list[dict[int, float]] = []
    original = guided_constraints

    def spy(*args: Any, **kwargs: Any) -> Constraints:
        out = original(*args, **kwargs)
        seen.append(dict(out.density_target))
        return out

    monkeypatch.setattr(continuation, "guided_constraints", spy)
    params = GenerationParams(bars=1, variants=1, seed=3)
    names = part_names_for(region.parts)
    for source in ("entry", "region", "prompt"):
        settings = GuidanceSettings(density_from=source)
        continue_region(model, region, params, [3], names, guidance=settings, candidates=1, adapt=None, cache=None)
    entry, whole, prompt = seen
    assert entry == pytest.approx({0: 6.0, 33: 48.0})
    assert whole == pytest.approx({0: 6.0, 33: 48.0})
    assert prompt == pytest.approx({0: 0.0, 33: 48.0})


def test_prompt_entry_reads_the_prompt_from_each_part_s_first_note() -> None:
    whole = region_stats(tokens(REGION), VOCAB, PPB)
    # the prompt: the last two bars, where the piano enters half way through the first of them
    prompt = region_stats(tokens([every(8, BASS) + every(4, PIANO)[4:], every(8, BASS) + every(4, PIANO)]), VOCAB, PPB)
    settings = GuidanceSettings(density_from="prompt-entry")
    targets = guided_constraints(_constraints(), prompt, VOCAB, settings, whole).density_target
    assert targets == pytest.approx({PIANO: 8.0, BASS: 4.0})  # 12 notes in 1.5 bars; the whole region not read
    before = replace(settings, density_from="prompt")
    assert guided_constraints(_constraints(), prompt, VOCAB, before, whole).density_target == pytest.approx(
        {PIANO: 6.0, BASS: 4.0}
    )


def _late_entry_region(path: Path) -> Path:
    """4 bars of 4/4: a bass (program 33) in quarters throughout, a piano (program 0) in eighths from bar 3."""
    tpq, bar = 480, 1920
    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    conductor.append(mido.MetaMessage("end_of_track", time=4 * bar))
    mid.tracks.append(conductor)
    for channel, program, pitch, step, first in ((0, 0, 72, tpq // 2, 2), (1, 33, 40, tpq, 0)):
        track = mido.MidiTrack()
        track.append(mido.Message("program_change", channel=channel, program=program, time=0))
        now = 0
        for on in range(first * bar, 4 * bar, step):
            track.append(mido.Message("note_on", channel=channel, note=pitch, velocity=90, time=on - now))
            track.append(mido.Message("note_off", channel=channel, note=pitch, time=step // 2))
            now = on + step // 2
        track.append(mido.MetaMessage("end_of_track", time=4 * bar - now))
        mid.tracks.append(track)
    out = path / "late.mid"
    mid.save(out)
    return out


def test_the_candidates_fit_can_measure_against_the_targets(tmp_path: Path) -> None:
    """Of two candidates, the piano in quarters (4 a bar: the region's mean) or in eighths (8 a bar: its rate since
    it came in, the target), the fit keeps the region's mean unless asked to measure against the targets."""
    region = read_region(Prompt(midi_path=_late_entry_region(tmp_path)))
    names = part_names_for(region.parts)
    tpq, bars = region.ticks_per_quarter, 2

    def candidate(piano_step: int) -> tuple[PartNotes, ...]:
        piano = tuple(Note(at, piano_step // 2, 72, 90) for at in range(0, bars * region.bar_ticks, piano_step))
        bass = tuple(Note(at, tpq // 2, 40, 90) for at in range(0, bars * region.bar_ticks, tpq))
        return tuple(PartNotes(names[p.program], p.program, piano if p.program == 0 else bass) for p in region.parts)

    decoded = [candidate(tpq), candidate(tpq // 2)]
    targets = replace(_constraints(), bars=bars, density_target={PIANO: 8.0, BASS: 4.0})
    assert choose(region, decoded, bars, [[0, 1]], GuidanceSettings(density_fit_target=False), targets) == [0]
    assert choose(region, decoded, bars, [[0, 1]], GuidanceSettings(density_fit_target=True), targets) == [1]
