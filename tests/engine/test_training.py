"""The trainers' shared loop: it evaluates every --eval-every steps and at the end of the budget, writes resume/
after each evaluation, counts what was seen, keeps the best weights, and a run without a budget is a usage error."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import training


class _Regression(torch.nn.Module):
    """``model(x, y)`` -> (prediction, mean squared error), as the GPTs return (logits, loss)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.linear(x)
        return out, torch.nn.functional.mse_loss(out, y)


def _args(out: Path, *extra: str) -> argparse.Namespace:
    p = training.trainer_parser("test", None)
    p.add_argument("--out", type=Path)
    training.add_schedule_arguments(p, lr=0.05, weight_decay=0.0, warmup_steps=1, eval_every=3)
    training.add_run_arguments(p)
    return training.parse_with_budget(p, ["--out", str(out), "--device", "cpu", *extra])


def _run(args: argparse.Namespace) -> tuple[training.Run, dict[str, torch.Tensor] | None, list[float]]:
    torch.manual_seed(0)
    model = _Regression()
    state = {"step": 0, "tokens_seen": 0, "elapsed_s": 0.0, "best_val": float("inf"), "best_step": -1}
    rng = np.random.default_rng(0)
    run = training.Run.start(args, model, training.optimizer(model, args), state, (0, 1, torch.device("cpu"), rng))
    weights = torch.tensor([[1.0], [-2.0], [0.5]])
    val_x = torch.from_numpy(np.random.default_rng(1).normal(size=(32, 3))).float()
    saved: list[float] = []

    def batch() -> tuple[torch.Tensor, torch.Tensor, int]:
        x = torch.from_numpy(rng.normal(size=(8, 3))).float()
        return x, x @ weights, 8

    def validate() -> float:
        with torch.no_grad():
            return float(model(val_x, val_x @ weights)[1])

    best = training.train_lm(run, batch, validate, saved.append, training.LogConsole(training.log), "tokens_seen")
    return run, best, saved


def test_the_loop_evaluates_on_schedule_and_at_the_end_and_resumes(tmp_path: Path) -> None:
    args = _args(tmp_path, "--max-steps", "7")
    args.out.mkdir(exist_ok=True)
    run, best, saved = _run(args)
    records = [json.loads(line) for line in (tmp_path / training.LOG_NAME).read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6, 7]
    assert [r["tokens_seen"] for r in records] == [24, 48, 56]
    assert records[-1]["val_loss"] < records[0]["val_loss"], "a linear target is learnt in a few steps"
    assert saved and saved[-1] == run.state["best_val"] == min(r["val_loss"] for r in records)
    assert best is not None and torch.equal(best["linear.weight"], run.model.state_dict()["linear.weight"])
    assert (tmp_path / "resume" / "state.pt").is_file()

    resumed, _, _ = _run(_args(tmp_path, "--max-steps", "9", "--resume"))
    assert resumed.resumed and resumed.state["step"] == 9 and resumed.state["tokens_seen"] == 72
    records = [json.loads(line) for line in (tmp_path / training.LOG_NAME).read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6, 7, 9]


def test_a_run_without_a_budget_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stopped:
        _args(tmp_path)
    assert stopped.value.code == 2
