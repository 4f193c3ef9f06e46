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
    out = tmp_path / "run"
    assert main(_args(data, out, "--max-steps", "6")) == 0
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

    assert main(_args(data, out, "--max-steps", "9", "--resume")) == 0
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
