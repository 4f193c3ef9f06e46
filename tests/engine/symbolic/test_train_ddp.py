"""Training under torchrun with DistributedDataParallel (two CPU processes, gloo). Slow: `make test-slow`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_dataset import write_piece

from engine.checkpoints import read_checkpoint
from engine.symbolic.weights import load_symbolic

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_torchrun_two_processes_train_one_model(tmp_path: Path) -> None:
    data = tmp_path / "midi"
    for i in range(6):
        write_piece(data / f"p{i}.mid", i, bars=6, drums=i % 2 == 0)
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "engine.symbolic.train",
        "--data", str(data), "--out", str(out), "--token-cache", str(tmp_path / "tokens"),
        "--preset", "tiny", "--block-size", "64", "--batch-size", "2", "--max-steps", "4",
        "--eval-every", "2", "--eval-windows", "2", "--warmup-steps", "1", "--device", "cpu", "--threads", "1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "step" in r] == [2, 4], "only rank 0 writes the log"
    model, tokenizer = load_symbolic(read_checkpoint(out))
    assert model.config.vocab_size == len(tokenizer)
