"""Codec training under torchrun with DistributedDataParallel (two CPU processes, gloo). Slow: `make test-slow`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.audio.codec import load_codec

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_torchrun_two_processes_train_one_codec(tmp_path: Path) -> None:
    data = tmp_path / "audio"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        t = np.arange(16000) / 8000
        sf.write(data / f"take{i}.wav", 0.3 * np.sin(2 * np.pi * rng.uniform(100, 900) * t), 8000)
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "engine.audio.train_codec", "--data", str(data), "--out", str(out), "--preset", "tiny",
        "--batch-size", "2", "--segment-seconds", "0.25", "--max-steps", "4", "--eval-every", "2",
        "--eval-seconds", "0.5", "--warmup-steps", "1", "--val-fraction", "0.3", "--device", "cpu", "--threads", "1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "step" in r] == [2, 4], "only rank 0 writes the log"
    codec = load_codec(out)
    with torch.inference_mode():
        assert codec.decode(codec.encode(torch.zeros(1, 1, 100))).shape == (1, 1, 128)
