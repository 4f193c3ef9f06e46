"""Training: a few steps of the tiny preset write a loadable checkpoint; --resume continues; empty data fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_dataset import write_piece

from engine.checkpoints import read_checkpoint
from engine.errors import BadInputError
from engine.symbolic.train import main
from engine.symbolic.weights import load_symbolic


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--data",
        str(data),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--block-size",
        "64",
        "--batch-size",
        "4",
        "--eval-every",
        "3",
        "--eval-windows",
        "4",
        "--warmup-steps",
        "2",
        "--device",
        "cpu",
        "--threads",
        "1",
        *extra,
    ]


def test_train_checkpoint_and_resume(tmp_path: Path) -> None:
    data = tmp_path / "midi"
    for i in range(6):
        write_piece(data / f"p{i}.mid", i, bars=6, drums=i % 2 == 0)
    out = tmp_path / "runs" / "run"  # does not exist yet; the token cache lives elsewhere
    cache = ["--token-cache", str(tmp_path / "tokens")]
    assert main(_args(data, out, "--max-steps", "6", *cache)) == 0
    assert (tmp_path / "tokens" / "train.npy").is_file() and not (out / "token_cache").exists()
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if "step" in r]
    assert steps == [3, 6]
    assert all(r["val_loss"] > 0 for r in log if "val_loss" in r)
    config = json.loads((out / "config.json").read_text())
    assert config["modes"] == ["continue"]
    assert config["training"]["total_steps_run"] == 6
    model, tokenizer = load_symbolic(read_checkpoint(out))
    assert model.config.block_size == 64 and model.config.vocab_size == len(tokenizer)
    with torch.no_grad():
        logits, _ = model(torch.zeros(1, 8, dtype=torch.long))
    assert logits.shape == (1, 8, len(tokenizer))
    assert (out / "resume" / "state.pt").is_file()

    assert main(_args(data, out, "--max-steps", "9", "--resume", *cache)) == 0
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "step" in r] == [3, 6, 9]
    state = torch.load(out / "resume" / "state.pt", weights_only=True)
    assert state["step"] == 9
    assert state["tokens_seen"] == 9 * 4 * 64


def test_empty_data_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no usable MIDI"):
        main(_args(tmp_path / "empty", tmp_path / "run", "--max-steps", "2"))


def test_needs_a_budget(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(_args(tmp_path, tmp_path / "run"))


def test_export_half_precision(tmp_path: Path) -> None:
    from engine.symbolic.export import export_checkpoint

    data = tmp_path / "midi"
    for i in range(4):
        write_piece(data / f"p{i}.mid", i, bars=4)
    src = tmp_path / "run"
    assert main(_args(data, src, "--max-steps", "3")) == 0
    out = tmp_path / "shipped" / "my-model"
    config = export_checkpoint(src, out, src / "token_cache", "float16")
    assert config["name"] == "my-model" and config["weights_dtype"] == "float16"
    assert config["val_loss"] == pytest.approx(config["val_loss_float32"], rel=1e-3)
    assert (out / "model.safetensors").stat().st_size < 0.6 * (src / "model.safetensors").stat().st_size
    model, _ = load_symbolic(read_checkpoint(out))
    assert next(model.parameters()).dtype == torch.float32
    with pytest.raises(BadInputError, match="differ"):
        export_checkpoint(src, src, src / "token_cache")
