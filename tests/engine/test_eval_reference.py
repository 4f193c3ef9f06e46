"""``segue eval JOB --reference FILE.mid [--reference-from-bar N]``: the job against the real continuation
(engine/evaluate/reference.py), on hand-made job folders (tests/engine/test_evaluate.py's ``make_job``: a region
of two bars of C major quavers, piano on channel 1, 120 BPM, 4/4)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mido
import pytest
from test_evaluate import TPB, good_notes, make_job, write_midi

from bridge.cli import main
from engine.api import Meter
from engine.errors import BadInputError
from engine.evaluate import evaluate_job, format_table
from engine.evaluate.midi import MidiContent, Note, part_channel
from engine.evaluate.reference import load_reference, score_reference

QUARTERS_ON_C = [(float(i), 1.0, 60) for i in range(8)]  # two bars of crotchets, all C
HALVES_C_G = [(0.0, 2.0, 60), (2.0, 2.0, 67), (4.0, 2.0, 60), (6.0, 2.0, 67)]


def comparisons(scores: dict) -> dict[str, dict]:
    return {c["name"]: c for c in scores["reference"]["comparisons"]}


def run_eval(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["eval", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_reference_equal_to_the_variant_has_no_gap(tmp_path: Path) -> None:
    job = make_job(tmp_path, [{"notes": QUARTERS_ON_C}])
    reference = tmp_path / "ref.mid"
    write_midi(reference, QUARTERS_ON_C, 8.0)
    score = evaluate_job(job, reference)
    assert score.reference is not None and score.reference.bars == 2
    found = {c.name: c for c in score.reference.comparisons}
    assert found["pitch_class_overlap"].value == 0.0 and found["pitch_class_overlap"].ok
    assert found["onset_overlap"].value == 0.0 and found["onset_overlap"].ok
    assert found["notes_per_bar:acoustic_grand_piano"].value == 1.0
    assert found["pitch_class_overlap"].variants == found["pitch_class_overlap"].against == 0.25
    assert "variety" not in found and "one variant: no variety measure" in score.reference.notes
    assert score.reference.passed


def test_hand_computed_figures_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Region: quavers C D E F G A B C (pitch classes C 2/8, the others 1/8; 8 onset positions, 1/8 each).
    v01 crotchets on C: pc overlap 0.25, onsets on 4 of the region's 8 positions: 0.5; v02 = the region: 1 and 1.
    Reference: minims C G C G: pc min(.5,.25)+min(.5,.125) = 0.375, onsets 2 positions: 0.25. Notes per bar:
    v01 4, v02 8, mean 6, reference 2: x3. Variety on the region's quaver grid: 2 shared of 8 + 16 - 2: 1 - 2/22."""
    job = make_job(tmp_path, [{"notes": QUARTERS_ON_C}, {"notes": good_notes(0)}])
    reference = tmp_path / "ref.mid"
    write_midi(reference, HALVES_C_G, 8.0)
    code, out, _ = run_eval([str(job), "--reference", str(reference), "--json"], capsys)
    assert code == 0  # not --strict
    scores = json.loads(out)
    assert scores["passed"] is False and scores["reference"]["passed"] is False
    assert scores["reference"]["from_bar"] == 1 and scores["reference"]["bars"] == 2
    found = comparisons(scores)
    assert set(found) == {
        "pitch_class_overlap",
        "onset_overlap",
        "notes_per_bar:acoustic_grand_piano",
        "in_scale:v01",
        "in_scale:v02",
        "variety",
    }
    for c in found.values():
        assert set(c) == {"name", "variants", "against", "value", "ok", "detail"}
    pc, onset = found["pitch_class_overlap"], found["onset_overlap"]
    assert (pc["variants"], pc["against"], pc["value"], pc["ok"]) == (0.625, 0.375, 0.25, False)
    assert (onset["variants"], onset["against"], onset["value"], onset["ok"]) == (0.75, 0.25, 0.5, False)
    density = found["notes_per_bar:acoustic_grand_piano"]
    assert (density["variants"], density["against"], density["value"], density["ok"]) == (6.0, 2.0, 3.0, False)
    for vid in ("v01", "v02"):
        assert (found[f"in_scale:{vid}"]["value"], found[f"in_scale:{vid}"]["ok"]) == (0.0, True)
    variety = found["variety"]
    assert variety["variants"] == round(1 - 2 / 22, 3) and variety["value"] == 0 and variety["ok"] is True

    code, out, _ = run_eval([str(job), "--reference", str(reference)], capsys)
    assert code == 0
    assert f"against the reference {reference}, bars 1-2 (2 bar(s))" in out
    assert "| notes_per_bar:acoustic_grand_piano | 6" in out and "x3" in out


def test_strict_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A job that passes every check: --strict exits 0 against a reference like it, 1 against one in another key
    (its pitch-class overlap with the region falls, the variants' does not)."""
    job = make_job(tmp_path, [{"notes": good_notes(0)}, {"notes": good_notes(3)}])
    assert run_eval([str(job), "--strict"], capsys)[0] == 0
    alike = tmp_path / "alike.mid"
    write_midi(alike, good_notes(5), 8.0)
    assert run_eval([str(job), "--reference", str(alike), "--strict"], capsys)[0] == 0
    other_key = tmp_path / "f_sharp.mid"
    write_midi(other_key, [(s, d, p + 6) for s, d, p in good_notes(0)], 8.0)
    code, out, _ = run_eval([str(job), "--reference", str(other_key), "--strict", "--json"], capsys)
    assert code == 1
    found = comparisons(json.loads(out))
    assert found["pitch_class_overlap"]["ok"] is False and found["pitch_class_overlap"]["value"] > 0.3
    assert found["onset_overlap"]["ok"] is True  # the same rhythm
    assert run_eval([str(job), "--reference", str(other_key)], capsys)[0] == 0  # without --strict: a report


def test_reference_from_bar_and_a_short_reference(tmp_path: Path) -> None:
    """The whole piece (the region's 2 bars, then the reference's) with --reference-from-bar 3; a file that holds
    one bar of the two is measured over that bar, the variants too, and says so."""
    job = make_job(tmp_path, [{"notes": QUARTERS_ON_C}, {"notes": good_notes(0)}])
    piece = tmp_path / "piece.mid"
    region = [(i * 0.5, 0.5, [60, 62, 64, 65, 67, 69, 71, 72][i % 8]) for i in range(16)]
    write_midi(piece, region + [(8 + s, d, p) for s, d, p in HALVES_C_G], 16.0)
    whole = evaluate_job(job, piece, 3)
    alone = tmp_path / "ref.mid"
    write_midi(alone, HALVES_C_G, 8.0)
    assert whole.reference is not None and whole.reference.from_bar == 3
    assert whole.reference.comparisons == evaluate_job(job, alone).reference.comparisons  # type: ignore[union-attr]

    short = tmp_path / "short.mid"
    write_midi(short, HALVES_C_G[:2], 4.0)  # one bar: minims C G
    score = evaluate_job(job, short)
    assert score.reference is not None and score.reference.bars == 1
    assert any("has 1 of the job's 2 bar(s)" in n for n in score.reference.notes)
    found = {c.name: c for c in score.reference.comparisons}
    density = found["notes_per_bar:acoustic_grand_piano"]  # the variants' first bar: 4 and 8 notes; the reference 2
    assert (density.variants, density.against, density.value) == (6.0, 2.0, 3.0)
    assert "has 1 of the job's 2 bar(s)" in format_table(score)


def test_parts_matched_by_program_absent_and_silent(tmp_path: Path) -> None:
    """The reference's piano on another channel and track is the variants' piano; a bass it never plays is said
    absent, its strings silent in the bars measured; neither is counted."""
    path = tmp_path / "ref.mid"
    midi = mido.MidiFile(ticks_per_beat=TPB)
    conductor = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)])
    piano = mido.MidiTrack([mido.Message("program_change", channel=5, program=0, time=0)])
    strings = mido.MidiTrack([mido.Message("program_change", channel=2, program=48, time=0)])
    for bar in range(3):  # bar 1: strings and piano; bars 2-3 (the reference): piano only, 2 notes a bar
        if bar == 0:
            strings.append(mido.Message("note_on", channel=2, note=55, velocity=80, time=0))
            strings.append(mido.Message("note_off", channel=2, note=55, velocity=0, time=4 * TPB))
        for _ in range(2):
            piano.append(mido.Message("note_on", channel=5, note=60, velocity=80, time=0))
            piano.append(mido.Message("note_off", channel=5, note=60, velocity=0, time=2 * TPB))
    midi.tracks += [conductor, piano, strings]
    midi.save(str(path))
    reference = load_reference(path, 2, Meter(4, 4), 2)
    assert reference.bars == 2 and len(reference.content.notes) == 4

    def content(parts: dict[int, int]) -> MidiContent:  # part channel -> notes in each of two bars (crotchets)
        notes = [Note(i * TPB, (i + 1) * TPB, 60, ch) for ch, count in parts.items() for i in range(0, 8, 4 // count)]
        return MidiContent(tmp_path, TPB, tuple(sorted(notes, key=lambda n: n.start)), 8 * TPB, (), ())

    piano_part, bass_part, strings_part = part_channel(0), part_channel(33), part_channel(48)
    variants = [("v01", content({piano_part: 2, bass_part: 4, strings_part: 1}))]
    region = content({piano_part: 4})
    found = {c.name: c for c in score_reference(reference, variants, region, Meter(4, 4)).comparisons}
    assert found["notes_per_bar:acoustic_grand_piano"].value == 1.0
    assert found["notes_per_bar:electric_bass_finger"].ok is None
    assert "absent from the reference" in found["notes_per_bar:electric_bass_finger"].detail
    assert found["notes_per_bar:string_ensemble_1"].ok is None
    assert "silent in the reference's bars" in found["notes_per_bar:string_ensemble_1"].detail


def bad_reference(kind: str, folder: Path) -> Path:
    path = folder / f"{kind}.mid"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("C D E F G")
    elif kind == "truncated":  # a header, then a track that says 256 bytes and holds none
        path.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x01\x00")
    elif kind == "fifo":
        os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "No such file"),
        ("empty", "the file is empty"),
        ("text", "not MThd"),
        ("truncated", "declares 256 bytes"),
        ("fifo", "not a regular file"),
    ],
)
def test_unreadable_references(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, message: str) -> None:
    job = make_job(tmp_path, [{"notes": good_notes(0)}])
    path = bad_reference(kind, tmp_path)
    code, out, err = run_eval([str(job), "--reference", str(path)], capsys)
    assert code == 2 and not out
    assert "--reference:" in err and message in err and "not a readable MIDI file" in err


def test_references_that_do_not_fit_the_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = make_job(tmp_path, [{"notes": good_notes(0)}])
    waltz = tmp_path / "waltz.mid"
    write_midi(waltz, good_notes(0)[:12], 6.0, meter=(3, 4))
    with pytest.raises(BadInputError, match=r"bar 1 of waltz.mid is in 3/4, the job is in 4/4"):
        evaluate_job(job, waltz)
    code, _, err = run_eval([str(job), "--reference", str(waltz)], capsys)
    assert code == 2 and "3/4" in err and "job's meter" in err

    piece = tmp_path / "piece.mid"
    write_midi(piece, good_notes(0), 8.0)
    with pytest.raises(BadInputError, match=r"--reference-from-bar 4 is beyond piece.mid: it has 2 bar\(s\)"):
        evaluate_job(job, piece, 4)
    with pytest.raises(BadInputError, match="counts bars from 1"):
        evaluate_job(job, piece, 0)
    rests = tmp_path / "rests.mid"
    write_midi(rests, [(0.0, 1.0, 60)], 12.0)  # a note in bar 1, then two empty bars
    with pytest.raises(BadInputError, match="has no notes in bars 2-3"):
        evaluate_job(job, rests, 2)
    code, _, err = run_eval([str(job), "--reference-from-bar", "2"], capsys)
    assert code == 2 and "needs --reference" in err


def test_audio_and_accompany_jobs_are_refused(tmp_path: Path) -> None:
    job = make_job(tmp_path, [{"notes": good_notes(0)}])
    reference = tmp_path / "ref.mid"
    write_midi(reference, good_notes(0), 8.0)
    manifest = json.loads((job / "job.json").read_text())
    audio_files = ("audio", "full_audio")
    variants = [dict(v, files={k: f for k, f in v["files"].items() if k in audio_files}) for v in manifest["variants"]]
    audio_only = dict(manifest, kind="audio", variants=variants)
    (job / "job.json").write_text(json.dumps(audio_only))
    with pytest.raises(BadInputError, match="audio job .* score it without --reference"):
        evaluate_job(job, reference)
    (job / "job.json").write_text(json.dumps(dict(manifest, mode="accompany")))
    with pytest.raises(BadInputError, match="accompaniment"):
        evaluate_job(job, reference)


def test_help_says_how_bars_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--reference FILE.mid" in text and "counted from 1, as the DAW shows them" in text


def test_a_meter_change_ends_the_reference(tmp_path: Path) -> None:
    """A 4/4 bar, then 3/4: measured over the one bar in the job's meter, and said; a file with no time signature
    is 4/4 (MIDI's default), which a 6/8 job is told."""
    path = tmp_path / "changes.mid"
    track = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)])
    for _ in range(4):
        track.append(mido.Message("note_on", note=60, velocity=80, time=0))
        track.append(mido.Message("note_off", note=60, velocity=0, time=TPB))
    track.append(mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0))
    for _ in range(3):
        track.append(mido.Message("note_on", note=62, velocity=80, time=0))
        track.append(mido.Message("note_off", note=62, velocity=0, time=TPB))
    midi = mido.MidiFile(ticks_per_beat=TPB)
    midi.tracks.append(track)
    midi.save(str(path))
    reference = load_reference(path, None, Meter(4, 4), 2)
    assert reference.bars == 1 and {n.pitch for n in reference.content.notes} == {60}
    assert "then its meter changes to 3/4" in reference.note
    with pytest.raises(BadInputError, match="bar 2 of changes.mid is in 3/4"):
        load_reference(path, 2, Meter(4, 4), 2)

    bare = tmp_path / "bare.mid"
    mido.MidiFile(tracks=[mido.MidiTrack(track[1:9])], ticks_per_beat=TPB).save(str(bare))
    with pytest.raises(BadInputError, match=r"has no time signature \(MIDI's default: 4/4\), the job is in 6/8"):
        load_reference(bare, None, Meter(6, 8), 2)
    assert load_reference(bare, None, Meter(4, 4), 2).bars == 1
