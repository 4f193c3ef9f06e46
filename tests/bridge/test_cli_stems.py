"""``segue continue drums.wav bass.wav keys.wav --stems --tempo T``: every input is one track's audio of the region,
named after its file; bad stems are refused before a job folder exists, and a real segue-concat job brings each
stem back beside the mix.

Material: sine tones (fake_engine.write_wav) for the fake-engine tests; for the real engine, the numpy drums of
tests/support/concat_material.py (synthetic_groove), split into tracks here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from concat_material import synthetic_groove
from fake_engine import write_wav
from test_cli import Run

from bridge.cli_args import stem_name
from engine.api import MAX_STEMS


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(tmp_path, capsys)


def test_each_input_is_a_stem_named_after_its_file(run: Run) -> None:
    paths = [write_wav(run.tmp_path / name, 1.0) for name in ("drums.wav", "Bass.wav", "01 Keys (L).flac")]
    code, _, err = run("continue", *map(str, paths), "--stems", "--tempo", "120", "--meter", "4/4", "--out",
                       str(run.out))  # fmt: skip
    assert code == 0, err
    prompt = run.engine.requests[0].prompt
    assert prompt.stems == tuple(zip(("drums", "bass", "keys-l"), (p.resolve() for p in paths), strict=True))
    assert prompt.audio_path is None and prompt.midi_path is None and prompt.tempo_bpm == 120.0
    (job_dir,) = run.job_dirs()
    sources = json.loads((job_dir / "job.json").read_text())["region"]["sources"]
    assert [(s["role"], s["path"]) for s in sources] == [
        ("stem:drums", str(paths[0].resolve())), ("stem:bass", str(paths[1].resolve())),
        ("stem:keys-l", str(paths[2].resolve())),
    ]  # fmt: skip
    assert all(len(s["sha256"]) == 64 for s in sources)


def test_stem_names_follow_the_engine_rule() -> None:
    assert stem_name(Path("01 Drums (L).wav")) == "drums-l"
    assert stem_name(Path("Lead_Vox.wav")) == "lead_vox"
    assert stem_name(Path("2024.wav")) == ""
    assert len(stem_name(Path("a" * 80 + ".wav"))) == 32


@pytest.mark.parametrize(
    ("names", "extra", "says"),
    [
        (("drums.wav", "bass.wav"), (), "stems are audio only, so Segue needs its tempo: add --tempo BPM"),
        (("drums.wav", "MIDI"), ("--tempo", "120"), "is a MIDI file; with --stems every input is one track's audio"),
        (("Drums.wav", "drums.flac"), ("--tempo", "120"), "both make the stem name 'drums'; rename one"),
        (("2024.wav",), ("--tempo", "120"), "gives no name (it needs a letter)"),
        (tuple(f"t{i}.wav" for i in range(MAX_STEMS + 1)), ("--tempo", "120"), f"at most {MAX_STEMS} stems"),
        (("drums.wav", "gone.wav"), ("--tempo", "120"), "gone.wav: no such file"),
        (("drums.wav", "bass.wav"), ("--tempo", "120", "--mode", "accompany"), "stems are continued together (mode"),
    ],
)
def test_bad_stems_exit_2_before_any_job_folder(run: Run, names: tuple[str, ...], extra: tuple[str, ...],
                                                says: str) -> None:  # fmt: skip
    paths = []
    for name in names:
        if name == "MIDI":
            paths.append(str(run.region))
        elif name == "gone.wav":
            paths.append(str(run.tmp_path / name))
        else:
            paths.append(str(write_wav(run.tmp_path / name, 0.2)))
    code, _, err = run("continue", *paths, "--stems", *extra, "--out", str(run.out))
    assert code == 2 and says in err, err
    assert run.job_dirs() == [] and run.engine.requests == []


def test_without_stems_one_audio_path_stays_as_it_was(run: Run) -> None:
    wav = write_wav(run.tmp_path / "take.wav", 1.0)
    code, _, err = run("continue", str(wav), "--tempo", "100", "--out", str(run.out))
    assert code == 0, err
    assert run.engine.requests[0].prompt.stems == () and run.engine.requests[0].prompt.audio_path == wav.resolve()
    three = [str(write_wav(run.tmp_path / f"{n}.wav", 0.2)) for n in ("a", "b", "c")]
    code, _, err = run("continue", *three, "--tempo", "100", "--out", str(run.out))
    assert code == 2 and "give one or two input files" in err


def _tracks(folder: Path, rate_of_hats: int = 44_100) -> list[Path]:
    """Three tracks of one 4-bar numpy groove at 110 BPM: kick and snare in stereo, hats in mono."""
    tempo, rate = 110.0, 44_100
    full = synthetic_groove(tempo, 4, rate, 2, seed=9)
    eighth = round(30.0 / tempo * rate)
    paths = []
    for name, keep in (("kick", (0, 4)), ("snare", (2, 6)), ("hats", (1, 3, 5, 7))):
        mask = np.zeros(full.shape[1], np.float32)
        for e in range(full.shape[1] // eighth):
            if e % 8 in keep:
                mask[e * eighth : (e + 1) * eighth] = 1.0
        part = 0.6 * full * mask
        if name == "hats":
            part = part.mean(axis=0, keepdims=True)
        path = folder / f"{name}.wav"
        sf.write(str(path), part.T, rate_of_hats if name == "hats" else rate, subtype="PCM_24")
        paths.append(path)
    return paths


def test_a_real_segue_concat_job_brings_each_stem_back_and_refuses_mixed_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bridge import cli

    out = tmp_path / "out"
    (tmp_path / "a").mkdir()
    paths = _tracks(tmp_path / "a")
    argv = ["continue", *map(str, paths), "--stems", "--tempo", "110", "--bars", "2", "--variants", "1", "--seed",
            "1", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    (job_dir,) = sorted(out.iterdir())
    job = json.loads((job_dir / "job.json").read_text())
    assert job["status"] == "done" and job["model"] == "segue-concat"
    files = job["variants"][0]["files"]
    assert {"audio", "stem:kick", "stem:snare", "stem:hats"} <= set(files)
    assert sf.info(str(job_dir / files["stem:hats"])).channels == 1  # a mono stem beside stereo ones stays mono
    assert sf.info(str(job_dir / files["stem:kick"])).channels == 2
    (tmp_path / "b").mkdir()
    capsys.readouterr()
    argv[1:4] = map(str, _tracks(tmp_path / "b", rate_of_hats=48_000))
    assert cli.main(argv) == 2
    assert "sample rate" in capsys.readouterr().err
