"""``segue eval`` on an accompany job: a hand-made job folder as the accompany engine writes it (generated parts in
continuation.*, one stem per part as MIDI and WAV, full.* = the region with the parts over the same bars)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from test_evaluate import RATE, TPB, tone_audio, write_midi

from bridge.cli import main
from engine.evaluate import evaluate_job, format_table
from engine.evaluate.midi import read_midi, without

BPM = 120.0
BARS = 2  # the region: two bars of a C major melody in crotchets
MELODY = [(float(i), 1.0, p) for i, p in enumerate([72, 76, 79, 77, 76, 74, 72, 71])]


def bass(offset: int = 0) -> list[tuple[float, float, int]]:
    roots = [48, 53, 55, 48]
    return [(2.0 * i, 2.0, roots[(i + offset) % 4]) for i in range(4)]


def piano(offset: int = 0) -> list[tuple[float, float, int]]:
    chords = [(60, 64, 67), (60, 65, 69), (59, 62, 67), (60, 64, 67)]
    return [(2.0 * i, 2.0, p) for i in range(4) for p in chords[(i + offset) % 4]]


def _clip(notes: list[tuple[float, float, int]], beats: float) -> list[tuple[float, float, int]]:
    return [(s, min(d, beats - s), p) for s, d, p in notes if s < beats]


def make_accompany_job(tmp_path: Path, variants: list[dict[str, Any]], asked: list[str] | None = None) -> Path:
    """Each variant: ``parts`` {name: notes}, optional ``stem_beats`` {name: length} (a stem of the wrong
    length), optional ``length_beats`` (continuation.mid)."""
    job = tmp_path / "accompany-job"
    length = BARS * 4.0
    records = []
    for k, v in enumerate(variants, start=1):
        vid = f"v{k:02d}"
        (job / vid / "stems").mkdir(parents=True)
        parts: dict[str, list[tuple[float, float, int]]] = v["parts"]
        generated = [n for notes in parts.values() for n in notes]
        cont_beats = v.get("length_beats", length)
        write_midi(job / vid / "continuation.mid", _clip(generated, cont_beats), cont_beats, bpm=BPM)
        write_midi(job / vid / "full.mid", MELODY + generated, length, bpm=BPM)
        mix = tone_audio(length, BPM, pitch_hz=130.81, seed=k)
        sf.write(job / vid / "continuation.wav", mix.T, RATE, subtype="FLOAT")
        sf.write(job / vid / "full.wav", (mix + tone_audio(length, BPM, seed=k + 10)).T, RATE, subtype="FLOAT")
        files = {
            "midi": f"{vid}/continuation.mid",
            "audio": f"{vid}/continuation.wav",
            "full_midi": f"{vid}/full.mid",
            "full_audio": f"{vid}/full.wav",
        }
        for name, notes in parts.items():
            beats = v.get("stem_beats", {}).get(name, length)
            write_midi(job / vid / "stems" / f"{name}.mid", _clip(notes, beats), beats, bpm=BPM)
            sf.write(job / vid / "stems" / f"{name}.wav", tone_audio(beats, BPM, seed=k).T, RATE, subtype="FLOAT")
            files[f"stem_midi:{name}"] = f"{vid}/stems/{name}.mid"
            files[f"stem:{name}"] = f"{vid}/stems/{name}.wav"
        records.append({"id": vid, "seed": k, "files": files, "parts": list(parts)})
    manifest = {
        "id": "20261201-120000-melody-accompany-0001",
        "status": "done",
        "mode": "accompany",
        "kind": "midi",
        "params": {"bars": 4, "variants": len(variants), "parts": asked or [], "output": "auto"},  # bars: unused
        "region": {
            "tempo_bpm": BPM,
            "meter": "4/4",
            "length_beats": length,
            "length_bars": BARS,
            "sample_rate": RATE,
            "sources": [],
        },
        "place_at": {"beats": 0.0, "seconds": 0.0},
        "variants": records,
    }
    (job / "job.json").write_text(json.dumps(manifest))
    return job


def test_the_region_is_full_midi_less_the_parts(tmp_path: Path) -> None:
    job = make_accompany_job(tmp_path, [{"parts": {"bass": bass(), "piano": piano()}}])
    region = without(read_midi(job / "v01" / "full.mid"), read_midi(job / "v01" / "continuation.mid"))
    assert [(n.start / TPB, n.pitch) for n in region.notes] == [(s, p) for s, _, p in MELODY]


def test_a_good_accompaniment_passes_over_the_region_bars(tmp_path: Path) -> None:
    variants = [{"parts": {"bass": bass(0), "piano": piano(0)}}, {"parts": {"bass": bass(2), "piano": piano(1)}}]
    score = evaluate_job(make_accompany_job(tmp_path, variants, asked=["bass", "piano"]))
    table = format_table(score)
    assert score.passed, table
    assert score.mode == "accompany" and score.bars == BARS  # the region's bars, not params.bars (4)
    v1 = score.variants[0]
    checks = {c.name: c for c in v1.checks}
    assert checks["midi_length"].value == 2.0 and checks["midi_length"].ok
    assert checks["audio_length"].ok and checks["audio_length"].value == round(BARS * 4 * 60 / BPM * RATE)
    assert checks["key"].value == "C major" and checks["key"].ok and checks["in_key"].ok
    assert checks["on_grid"].ok and checks["on_grid"].value == 1.0
    assert checks["stems_length"].value == "4/4" and checks["stems_length"].ok
    assert checks["parts"].value == "bass,piano" and checks["parts"].ok
    assert checks["join_click"].value == "n/a" and checks["join_click"].ok is None
    assert "loudness_diff_db" not in checks  # no region audio to compare with: n/a
    summary = {c.name: c for c in score.summary}
    assert summary["midi_variety"].ok and summary["midi_variety"].value > 0
    assert "accompany, the region's 2 bar(s) of 4/4" in table and "join_click" in table and "n/a" in table
    assert any("n/a" in note for note in score.notes)


def test_each_accompany_fault_is_found(tmp_path: Path) -> None:
    off_key = [(2.0 * i, 2.0, p) for i, p in enumerate([42, 49, 46, 44])]  # F#, C#, Bb, Ab
    off_grid = [(2.0 * i + 0.13, 1.5, p) for i, p in enumerate([48, 53, 55, 48])]
    variants = [
        {"parts": {"bass": bass(), "piano": piano()}, "stem_beats": {"piano": 4.0}},  # one stem a bar short
        {"parts": {"bass": bass()}},  # piano asked for, not written
        {"parts": {"bass": off_key, "piano": [(n[0], n[1], n[2] + 6) for n in piano()]}},
        {"parts": {"bass": off_grid, "piano": piano()}},
        {"parts": {"bass": bass(), "piano": piano()}, "length_beats": 7.0},  # the parts end a beat early
    ]
    score = evaluate_job(make_accompany_job(tmp_path, variants, asked=["bass", "piano"]))
    failed = {v.id: {c.name for c in v.checks if c.ok is False} for v in score.variants}
    assert failed["v01"] == {"stems_length"}
    assert failed["v02"] == {"parts"}
    assert {"key", "in_key"} <= failed["v03"]
    assert "on_grid" in failed["v04"]
    assert "midi_length" in failed["v05"]
    assert not score.passed


def test_identical_accompaniments_have_no_variety(tmp_path: Path) -> None:
    same = {"parts": {"bass": bass(), "piano": piano()}}
    score = evaluate_job(make_accompany_job(tmp_path, [same, same]))
    summary = {c.name: c for c in score.summary}
    assert summary["midi_variety"].value == 0.0 and summary["midi_variety"].ok is False


def test_segue_eval_on_an_accompany_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    variants = [{"parts": {"bass": bass(0), "piano": piano(0)}}, {"parts": {"bass": bass(1), "piano": piano(2)}}]
    job = make_accompany_job(tmp_path, variants)
    assert main(["eval", str(job), "--strict"]) == 0
    out = capsys.readouterr().out
    assert "stems_length" in out and "join_click" in out and "result: all checks passed" in out
    assert main(["eval", str(job), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "accompany" and data["passed"] is True
    first = {c["name"]: c for c in data["variants"][0]["checks"]}
    assert first["join_click"] == {
        "name": "join_click",
        "value": "n/a",
        "ok": None,
        "detail": first["join_click"]["detail"],
    }
    assert np.isclose(first["midi_length"]["value"], 2.0)


def test_parts_may_move_one_subdivision_finer_than_the_region(tmp_path: Path) -> None:
    """Under a crotchet tune, a quaver walking bass is on the accompany grid (1/2 beat); semiquavers are not."""
    walking = [(0.5 * i, 0.5, [48, 50, 52, 53][i % 4]) for i in range(16)]
    semiquavers = [(0.25 * i, 0.25, [48, 50, 52, 53][i % 4]) for i in range(32)]
    variants = [{"parts": {"bass": walking, "piano": piano()}}, {"parts": {"bass": semiquavers, "piano": piano()}}]
    score = evaluate_job(make_accompany_job(tmp_path, variants, asked=["bass", "piano"]))
    on_grid = [{c.name: c for c in v.checks}["on_grid"] for v in score.variants]
    assert on_grid[0].ok and on_grid[0].value == 1.0 and "(1/2 beat)" in on_grid[0].detail
    assert not on_grid[1].ok and on_grid[1].value < 0.8
