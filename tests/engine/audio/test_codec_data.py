"""Audio data preparation: a tiny MIDI corpus renders to FLAC with a provenance manifest; audio folders convert to
mono at the codec's rate; the split matches the symbolic model's."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from symusic.core import NoteTick, ScoreTick, TempoTick, TimeSignatureTick, TrackTick

from engine.audio.data import (
    DRUM_KITS,
    RenderOptions,
    convert_folder,
    is_val,
    load_split,
    main,
    render_corpus,
    vary_score,
)
from engine.errors import BadInputError

LICENCE = "test licence: non-commercial"


def _score(programs: list[int], drums: bool, bars: int = 2) -> ScoreTick:
    score = ScoreTick(480)
    score.tempos.append(TempoTick(0, 120.0))
    score.time_signatures.append(TimeSignatureTick(0, 4, 4))
    for i, program in enumerate(programs):
        track = TrackTick(f"Part {i}", program, False)
        for beat in range(4 * bars):
            track.notes.append(NoteTick(beat * 480, 400, 60 + 4 * i + beat % 3, 90))
        score.tracks.append(track)
    if drums:
        kit = TrackTick("Drums (synthetic)", 0, True)
        for beat in range(4 * bars):
            kit.notes.append(NoteTick(beat * 480, 120, 36 if beat % 2 == 0 else 38, 100))
        score.tracks.append(kit)
    return score


def _corpus(root: Path) -> Path:
    files = {
        "bach/bach_a.mid": ([40, 41, 42, 43], False),
        "bach/bach_a__drums.mid": ([40, 41, 42, 43], True),
        "essenFolksong/folk_b.mid": ([73], False),
        "essenFolksong/folk_c.mid": ([0], False),
        "oneills1850/reel_d.mid": ([22], False),
    }
    manifest: dict[str, object] = {"licence": LICENCE, "synthetic_drums": "marked", "files": {}}
    for rel, (programs, drums) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        _score(programs, drums).dump_midi(str(path))
        manifest["files"][rel] = {  # type: ignore[index]
            "source": f"music21/corpus/{rel}",
            "collection": rel.split("/")[0],
            "licence": LICENCE,
            "parts": len(programs),
            "drums": "SYNTHETIC" if drums else None,
        }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_render_tiny_corpus(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    out = tmp_path / "audio"
    options = RenderOptions(minutes=10.0, sample_rate=8000, val_fraction=0.3, seed=1)
    manifest = render_corpus(corpus, out, options)
    entries = manifest["files"]
    assert len(entries) == 5  # every piece rendered (10 minutes asked, 20 s available)
    assert manifest["sample_rate"] == 8000 and manifest["licence"] == LICENCE
    assert manifest["soundfonts"] and manifest["soundfonts"][0]["licence"]
    for name, entry in entries.items():
        assert name.startswith(entry["split"] + "/") and name.endswith(".flac")
        assert entry["split"] == ("val" if is_val(entry["midi"], 0.3) else "train")
        assert entry["collection"] and entry["licence"] == LICENCE and entry["source"].startswith("music21/corpus/")
        info = sf.info(str(out / name))
        assert info.samplerate == 8000 and info.channels == 1
        assert info.frames / 8000 == pytest.approx(entry["seconds"], abs=1e-3)
        assert 4.0 < entry["seconds"] < 7.0  # two bars at 96-150 BPM plus the release tail
        audio, _ = sf.read(str(out / name))
        assert np.sqrt(np.mean(audio**2)) > 0.01  # not silent
    drums = [e for e in entries.values() if e["synthetic_drums"]]
    assert len(drums) == 1 and drums[0]["drum_kit"] in DRUM_KITS.values()
    # the drum copy lands on its piece's side of the split
    assert entries_split(entries, "bach/bach_a.mid") == entries_split(entries, "bach/bach_a__drums.mid")
    assert manifest["totals"]["train"]["files"] + manifest["totals"]["val"]["files"] == 5
    # resumable: a second run adds nothing new and keeps the files
    again = render_corpus(corpus, out, options)
    assert again["files"] == entries


def entries_split(entries: dict[str, dict[str, object]], midi: str) -> object:
    return next(e["split"] for e in entries.values() if e["midi"] == midi)


def test_render_stops_at_the_budget_and_checks_rate(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    manifest = render_corpus(corpus, tmp_path / "audio", RenderOptions(minutes=0.1, sample_rate=8000))
    assert 1 <= len(manifest["files"]) <= 2
    with pytest.raises(BadInputError, match="already holds audio at 8000 Hz"):
        render_corpus(corpus, tmp_path / "audio", RenderOptions(minutes=1, sample_rate=16000))
    with pytest.raises(BadInputError, match="no manifest.json"):
        render_corpus(tmp_path / "nothing", tmp_path / "x", RenderOptions(minutes=1))


def test_vary_score_changes_programs_tempo_and_kit() -> None:
    seen_programs, seen_kits = set(), set()
    for seed in range(20):
        score = _score([40, 41], drums=True)
        chosen = vary_score(score, random.Random(seed))
        seen_programs.add(tuple(chosen["programs"]))
        seen_kits.add(chosen["drum_kit"])
        assert 0.8 * 120 - 1 <= chosen["tempo_bpm"] <= 1.25 * 120 + 1
        assert score.tracks[-1].program in DRUM_KITS
    assert len(seen_programs) > 5 and len(seen_kits) > 2


def test_audio_folder_converts_to_mono_at_the_codec_rate(tmp_path: Path) -> None:
    src = tmp_path / "mine"
    (src / "sub").mkdir(parents=True)
    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t)], axis=1) * 0.5
    sf.write(src / "a.wav", stereo, 44100, subtype="PCM_24")
    sf.write(src / "sub" / "b.aiff", np.zeros((8000, 6)) + 0.1, 8000)  # 6 channels, 8 kHz
    sf.write(src / "c.flac", stereo[:100], 44100)  # too short: skipped
    (src / "notes.txt").write_text("not audio")
    (src / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    manifest = convert_folder(src, tmp_path / "out", 24000, val_fraction=0.0)
    names = sorted(manifest["files"])
    assert names == ["train/a.flac", "train/sub_b.flac"]
    a, rate = sf.read(str(tmp_path / "out" / "train" / "a.flac"))
    assert rate == 24000 and a.ndim == 1 and abs(a.size - 24000) <= 1
    assert np.max(np.abs(a)) == pytest.approx(0.375, abs=0.01)  # mean of the two channels
    clips = load_split(tmp_path / "out", "train", 24000)
    assert len(clips) == 2 and all(c.dtype == np.int16 for c in clips)
    # a plain folder works directly too, split by file and resampled in memory
    plain = sorted(c.size for c in load_split(src, "train", 16000, val_fraction=0.0))  # broken.wav skipped
    assert len(plain) == 3 and abs(plain[0] - 36) <= 1 and plain[1:] == [16000, 16000]
    (tmp_path / "nothing").mkdir()
    with pytest.raises(BadInputError, match="holds no audio files"):
        convert_folder(tmp_path / "nothing", tmp_path / "o2", 24000)


def test_split_rule_matches_the_symbolic_dataset() -> None:
    from engine.symbolic.dataset import is_val as symbolic_is_val

    for i in range(300):
        rel = f"essenFolksong/piece_{i}.mid"
        assert is_val(rel, 0.05) == symbolic_is_val(rel, 0.05)
        assert is_val(rel.replace(".mid", "__drums.mid"), 0.05) == is_val(rel, 0.05)


def test_cli_prints_totals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _corpus(tmp_path / "corpus")
    assert main(["--out", str(tmp_path / "a"), "--corpus", str(corpus), "--minutes", "1", "--sample-rate", "8000"]) == 0
    assert "train" in capsys.readouterr().out
