"""``segue eval``: each measure on material made to pass or fail it, and a real job from the shipped model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from bridge.cli import main
from engine.errors import BadInputError
from engine.evaluate import evaluate_job, format_table
from engine.evaluate.audio import estimate_tempo, join_click, loudness_lufs
from engine.evaluate.midi import onset_grid, read_midi
from engine.evaluate.music import Key, estimate_key

REPO = Path(__file__).resolve().parents[2]
TPB = 480
RATE = 44_100
C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


def write_midi(
    path: Path,
    notes: list[tuple[float, float, int]],
    length_beats: float,
    bpm: float = 120.0,
    meter: tuple[int, int] = (4, 4),
) -> None:
    """``notes``: (start beat, duration beats, pitch) on channel 0; end of track at ``length_beats``."""
    events = []
    for start, dur, pitch in notes:
        events.append((round(start * TPB), 1, mido.Message("note_on", note=pitch, velocity=80)))
        events.append((round((start + dur) * TPB), 0, mido.Message("note_off", note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=meter[0], denominator=meter[1], time=0))
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=round(length_beats * TPB) - now))
    midi = mido.MidiFile(ticks_per_beat=TPB)
    midi.tracks.append(track)
    midi.save(str(path))


def tone_audio(beats: float, bpm: float, pitch_hz: float = 261.63, gain: float = 0.3, seed: int = 0) -> np.ndarray:
    """A plucked tone on every beat, stereo [2, samples]."""
    n = round(beats * 60.0 / bpm * RATE)
    t = np.arange(n) / RATE
    beat_s = 60.0 / bpm
    phase = np.mod(t, beat_s)
    rng = np.random.default_rng(seed)
    x = gain * np.sin(2 * np.pi * pitch_hz * t) * np.exp(-phase * 8.0) + 1e-4 * rng.standard_normal(n)
    return np.stack([x, 0.8 * x])


def make_job(tmp_path: Path, variants: list[dict], bars: int = 2, bpm: float = 120.0) -> Path:
    """A MIDI job folder: each variant dict has ``notes`` (continuation), optional ``length_beats``, ``bpm``,
    ``audio`` (continuation [2, n]); the region is two bars of C major quavers."""
    job = tmp_path / "job"
    region_notes = [(i * 0.5, 0.5, C_MAJOR[i % 8]) for i in range(16)]
    region_audio = tone_audio(8, bpm)
    records = []
    for k, v in enumerate(variants, start=1):
        vid = f"v{k:02d}"
        (job / vid).mkdir(parents=True)
        length = v.get("length_beats", bars * 4.0)
        write_midi(job / vid / "continuation.mid", v["notes"], length, bpm=v.get("bpm", bpm))
        full_notes = region_notes + [(8 + s, d, p) for s, d, p in v["notes"]]
        write_midi(job / vid / "full.mid", full_notes, 8 + length, bpm=bpm)
        cont_audio = v.get("audio", tone_audio(bars * 4, bpm, seed=k))
        sf.write(job / vid / "continuation.wav", cont_audio.T, RATE, subtype="FLOAT")
        sf.write(job / vid / "full.wav", np.concatenate([region_audio, cont_audio], axis=1).T, RATE, subtype="FLOAT")
        files = {
            "midi": f"{vid}/continuation.mid",
            "full_midi": f"{vid}/full.mid",
            "audio": f"{vid}/continuation.wav",
            "full_audio": f"{vid}/full.wav",
        }
        records.append({"id": vid, "seed": k, "files": files})
    manifest = {
        "id": "test-job",
        "status": "done",
        "mode": "continue",
        "kind": "midi",
        "params": {"bars": bars, "variants": len(variants)},
        "region": {"tempo_bpm": bpm, "meter": "4/4", "sample_rate": RATE, "sources": []},
        "variants": records,
    }
    (job / "job.json").write_text(json.dumps(manifest))
    return job


def good_notes(offset: int = 0) -> list[tuple[float, float, int]]:
    return [(i * 0.5, 0.5, C_MAJOR[(i + offset) % 8]) for i in range(16)]


def test_key_estimates() -> None:
    major = np.zeros(12)
    for pc in (0, 2, 4, 5, 7, 9, 11):
        major[pc] = 1
    major[0] = major[7] = 3
    assert (estimate_key(major).tonic, estimate_key(major).mode) == (0, "major")  # type: ignore[union-attr]
    minor = np.zeros(12)
    for pc in (9, 11, 0, 2, 4, 5, 8):
        minor[pc] = 1
    minor[9] = minor[4] = 3
    key = estimate_key(minor)
    assert key is not None and str(key) == "A minor"
    assert key.same_or_relative(Key(0, "major", 1.0)) and not key.same_or_relative(Key(7, "major", 1.0))
    assert estimate_key(np.zeros(12)) is None


@pytest.mark.parametrize("bpm", [84.0, 100.0, 138.0])
def test_tempo_estimate_of_a_beat(bpm: float) -> None:
    x = tone_audio(16, bpm)[0]
    estimate = estimate_tempo(x, RATE, reference_bpm=bpm)
    assert estimate is not None and abs(estimate / bpm - 1) < 0.02, estimate
    assert estimate_tempo(x[:RATE], RATE) is None  # under 4 s: not measured


def test_join_click_and_loudness() -> None:
    t = np.arange(2 * RATE) / RATE
    smooth = 0.3 * np.sin(2 * np.pi * 220 * t)[None, :]
    assert not join_click(smooth, RATE, RATE).click  # type: ignore[union-attr]
    jumped = smooth.copy()
    jumped[:, RATE:] = 0.3 * np.sin(2 * np.pi * 220 * t[RATE:] + np.pi)  # a phase flip: a step of up to 0.6
    jumped[:, RATE] = 0.6
    join = join_click(jumped, RATE, RATE)
    assert join is not None and join.click, join
    assert loudness_lufs(0.5 * smooth, RATE) == pytest.approx(
        loudness_lufs(smooth, RATE) - 20 * math.log10(2), abs=0.05
    )


def test_a_good_job_passes_everything(tmp_path: Path) -> None:
    job = make_job(tmp_path, [{"notes": good_notes(0)}, {"notes": good_notes(3)}])
    score = evaluate_job(job)
    table = format_table(score)
    assert score.passed, table
    v1 = score.variants[0]
    assert v1.check("midi_length").value == 2.0  # type: ignore[union-attr]
    assert v1.check("key").value == "C major"  # type: ignore[union-attr]
    assert v1.check("on_grid").value == 1.0  # type: ignore[union-attr]
    assert abs(v1.check("loudness_diff_db").value) < 0.5  # type: ignore[union-attr, arg-type]
    assert "result: all checks passed" in table
    assert onset_grid(read_midi(job / "v01" / "continuation.mid")) == 2  # quavers


def test_each_fault_is_found(tmp_path: Path) -> None:
    off_key = [(i * 0.5, 0.5, p) for i, p in enumerate([61, 63, 66, 68, 70, 73, 61, 66] * 2)]  # F# major pentatonic
    off_grid = [(i * 0.5 + 0.13, 0.3, C_MAJOR[i % 8]) for i in range(16)]
    quiet = 0.1 * tone_audio(8, 120.0, seed=9)
    clicked = tone_audio(8, 120.0, seed=10)
    clicked[:, 0] = 0.95
    variants = [
        {"notes": good_notes(0)[:15], "length_beats": 7.5},  # half a beat short
        {"notes": good_notes(1), "bpm": 121.0},  # another tempo in the file
        {"notes": off_key},
        {"notes": off_grid},
        {"notes": good_notes(2), "audio": quiet},  # 20 dB quieter
        {"notes": good_notes(2), "audio": clicked},  # a click at the seam
        {"notes": [(0.0, 1.0, 60)]},  # only the first bar has a note
    ]
    score = evaluate_job(make_job(tmp_path, variants))
    failed = {v.id: {c.name for c in v.checks if c.ok is False} for v in score.variants}
    assert "midi_length" in failed["v01"]
    assert "midi_tempo" in failed["v02"]
    assert {"key", "in_key"} <= failed["v03"]
    assert "on_grid" in failed["v04"]
    assert "loudness_diff_db" in failed["v05"]
    assert "join_click" in failed["v06"]
    assert "bars_with_notes" in failed["v07"]
    assert not failed["v05"] - {"loudness_diff_db"}, failed["v05"]
    assert not score.passed


def test_identical_variants_have_no_variety(tmp_path: Path) -> None:
    audio = tone_audio(8, 120.0, seed=1)
    score = evaluate_job(make_job(tmp_path, [{"notes": good_notes(0), "audio": audio}] * 2))
    summary = {c.name: c for c in score.summary}
    assert summary["midi_variety"].value == 0.0 and summary["midi_variety"].ok is False
    assert summary["audio_variety"].ok is False


def test_not_a_job_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no job.json"):
        evaluate_job(tmp_path)
    (tmp_path / "job.json").write_text("{")
    with pytest.raises(BadInputError, match="not readable JSON"):
        evaluate_job(tmp_path)
    (tmp_path / "job.json").write_text(json.dumps({"id": "x", "status": "failed"}))
    with pytest.raises(BadInputError, match="failed, not done"):
        evaluate_job(tmp_path)


def test_segue_eval_on_a_real_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped model continues the pop example; `segue eval` scores the folder it wrote."""
    region = REPO / "examples" / "regions" / "pop_100bpm_4-4.mid"
    assert (
        main(
            ["continue", str(region), "--bars", "2", "--variants", "2", "--seed", "5", "--out", str(tmp_path), "--json"]
        )
        == 0
    )
    capsys.readouterr()
    [job_dir] = [p for p in tmp_path.iterdir() if (p / "job.json").is_file()]
    assert main(["eval", str(job_dir), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["kind"] == "midi" and len(scores["variants"]) == 2
    for variant in scores["variants"]:
        checks = {c["name"]: c for c in variant["checks"]}
        for name in ("midi_length", "midi_tempo", "midi_meter", "audio_length", "sample_rate"):
            assert checks[name]["ok"] is True, (name, checks[name])
        assert checks["midi_length"]["value"] == 2.0
    assert main(["eval", str(job_dir)]) == 0
    assert "| variant |" in capsys.readouterr().out
    # the region's own first two bars as the reference (whole-piece form): every measure is taken, whatever it says
    assert main(["eval", str(job_dir), "--reference", str(region), "--reference-from-bar", "1", "--json"]) == 0
    reference = json.loads(capsys.readouterr().out)["reference"]
    assert (reference["from_bar"], reference["bars"]) == (1, 2)
    found = {c["name"]: c for c in reference["comparisons"]}
    for name in ("pitch_class_overlap", "onset_overlap", "in_scale:v01", "in_scale:v02", "variety"):
        assert found[name]["ok"] is not None, found[name]
    assert any(name.startswith("notes_per_bar:") and c["ok"] is not None for name, c in found.items())
