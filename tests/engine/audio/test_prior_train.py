"""Training the prior on a tiny audio folder: code cache, val loss log, a loadable model folder, resume,
and `segue train audio` (codec, then prior)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_fakes import musical_region, write_region

from engine.audio.codec import PRESETS, Codec, save_codec
from engine.audio.prior import AudioModel
from engine.audio.train_prior import CodeSet, main
from engine.checkpoints import read_checkpoint
from engine.entrypoints import run_training
from engine.errors import BadInputError


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("audio")
    for i in range(8):
        write_region(folder / f"take{i}.wav", musical_region(0.6, 16_000, 1 + i % 2, seed=i), 16_000)
    return folder


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_codec(Codec(PRESETS["tiny"]), tmp_path_factory.mktemp("c") / "codec")


def test_train_resume_and_load(tmp_path: Path, audio_dir: Path, codec_dir: Path) -> None:
    out = tmp_path / "my-audio"
    common = ["--data", str(audio_dir), "--codec", str(codec_dir), "--out", str(out), "--preset", "tiny",
              "--block-size", "32", "--batch-size", "4", "--eval-every", "3", "--val-fraction", "0.5",
              "--threads", "1", "--device", "cpu"]  # fmt: skip
    assert main([*common, "--max-steps", "6"]) == 0
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val_loss" in r] == [3, 6]
    assert records[-1]["final"] and np.isfinite(records[-1]["val_loss_full"])
    config = json.loads((out / "config.json").read_text())
    assert config["type"] == "segue-audio-prior" and config["gpt"]["n_streams"] == 2
    assert config["codec"] == str(codec_dir.resolve()) and config["training"]["steps"] in (3, 6)
    model = AudioModel.load(read_checkpoint(out))
    assert model.prior.config.block_size == 32
    cache = CodeSet.load(out / "code_cache", 64)
    assert cache.codes["train"].shape[0] == 2 and cache.meta["splits"]["val"]["files"] >= 1
    x, y = cache.batch("train", 3, 32, np.random.default_rng(0))
    assert x.shape == y.shape == (3, 2, 32) and int(x.max()) <= 64 and int(y.max()) < 64
    assert main([*common, "--max-steps", "9", "--resume"]) == 0
    steps = [json.loads(line).get("step") for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert 9 in steps and steps.count(3) == 1, "resumed at step 6, not from scratch"


def test_segue_train_audio_trains_codec_then_prior(tmp_path: Path, audio_dir: Path) -> None:
    out = tmp_path / "model"
    code = run_training("audio", [
        "--data", str(audio_dir), "--out", str(out), "--codec-preset", "tiny", "--codec-minutes", "0.02",
        "--codec-args", "--batch-size 2 --segment-seconds 0.2 --eval-clips 2 --eval-seconds 0.3 --val-fraction 0.5",
        "--prior-minutes", "0.02", "--preset", "tiny", "--block-size", "32", "--batch-size", "2",
        "--val-fraction", "0.5", "--device", "cpu", "--threads", "1",
    ])  # fmt: skip
    assert code == 0
    ckpt = read_checkpoint(out)
    assert ckpt.config["codec"] == "codec" and (out / "codec" / "model.safetensors").is_file()
    assert AudioModel.load(ckpt).codec.sample_rate == 8000
    with pytest.raises(BadInputError, match="--data .* is not a folder"):
        run_training("audio", ["--data", str(tmp_path / "nothing"), "--out", str(out)])
