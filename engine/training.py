"""The pieces every trainer's loop shares (MIDI GPT, accompany fine-tuning, audio codec, audio prior).

A budget of steps or minutes, whichever ends first, that every DDP rank stops on together; linear warmup then
cosine learning rate; AdamW with weight decay on matrices only; ``resume/`` (weights + optimizer and loop state)
written atomically so ``--resume`` continues a killed run; ``train_log.jsonl`` with one record per evaluation;
one process or several under ``torchrun`` (DistributedDataParallel; rank 0 writes).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from engine.atomic import write_bytes, write_with
from engine.errors import BadInputError

log = logging.getLogger(__name__)

LOG_NAME = "train_log.jsonl"
RESUME_DIR = "resume"


def budget_progress(step: int, elapsed_s: float, max_steps: int | None, max_minutes: float | None) -> float:
    """How much of the training budget is used: steps or minutes, whichever ends first (1.0: spent)."""
    return max(
        step / max_steps if max_steps else 0.0,
        elapsed_s / (60 * max_minutes) if max_minutes else 0.0,
    )


def budget_spent(progress: float, world: int, device: torch.device) -> bool:
    """Whether the budget is spent; under DDP rank 0's clock decides for every rank, so all stop on the same
    step."""
    stop = torch.tensor([1.0 if progress >= 1.0 else 0.0])
    if world > 1:
        shared = stop.to(device)
        torch.distributed.broadcast(shared, 0)
        stop = shared.cpu()
    return bool(stop.item())


def lr_at(step: int, progress: float, args: argparse.Namespace) -> float:
    """Linear warmup over ``warmup_steps``, then cosine from ``lr`` to ``lr/10`` as ``progress`` goes 0 -> 1."""
    if step < args.warmup_steps:
        return float(args.lr * (step + 1) / args.warmup_steps)
    return float(args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))))


def optimizer(model: torch.nn.Module, args: argparse.Namespace) -> torch.optim.AdamW:
    """AdamW (betas 0.9, 0.95) with ``args.weight_decay`` on matrices and none on vectors (norms, biases)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95))


def save_resume(
    out: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any], skip: tuple[str, ...] = ()
) -> None:
    """``out/resume/``: the weights (less ``skip``, e.g. a tied head) and the optimizer and loop ``state``."""
    folder = out / RESUME_DIR
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k not in skip}
    write_with(folder / "model.safetensors", lambda tmp: save_file(weights, str(tmp)))
    buffer = io.BytesIO()  # in memory: torch's own file writer does not say when the disk is full
    torch.save({"optimizer": opt.state_dict(), **state}, buffer)
    write_bytes(folder / "state.pt", buffer.getbuffer())


def load_resume(
    out: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, device: torch.device, strict: bool = True
) -> dict[str, Any]:
    """Load ``out/resume/`` into ``model`` and ``opt``; returns the loop state. ``strict=False`` for weights saved
    without a tied head. :class:`BadInputError` when there is nothing to resume."""
    folder = out / RESUME_DIR
    if not (folder / "state.pt").is_file() or not (folder / "model.safetensors").is_file():
        raise BadInputError(f"--resume: {folder} holds no resume state; start without --resume")
    model.load_state_dict(load_file(str(folder / "model.safetensors"), device=str(device)), strict=strict)
    state: dict[str, Any] = torch.load(folder / "state.pt", map_location=device, weights_only=True)
    opt.load_state_dict(state.pop("optimizer"))
    return state


def resume_into(
    state: dict[str, Any],
    args: argparse.Namespace,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    device: torch.device,
    rng: np.random.Generator,
    strict: bool = True,
) -> bool:
    """With ``--resume``: ``state`` and ``rng`` continue where ``out/resume/`` left them; False without it."""
    if not args.resume:
        return False
    state.update(load_resume(args.out, model, opt, device, strict))
    if "numpy_rng" in state:
        rng.bit_generator.state = state.pop("numpy_rng")
    log.info("resumed at step %d (%.1f minutes trained)", state["step"], state["elapsed_s"] / 60)
    return True


def append_log(out: Path, record: dict[str, Any]) -> None:
    """One evaluation's record, a line of ``out/train_log.jsonl``."""
    with open(out / LOG_NAME, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def setup_distributed(args: argparse.Namespace) -> tuple[int, int, torch.device]:
    """(rank, world size, device): several processes under ``torchrun`` (NCCL on CUDA, else gloo), else one on
    ``args.device`` ("auto": CUDA when there is one)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    want_cuda = (args.device == "auto" and torch.cuda.is_available()) or args.device.startswith("cuda")
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.distributed.init_process_group("nccl" if want_cuda else "gloo")
        device = torch.device(f"cuda:{local}") if want_cuda else torch.device("cpu")
        if want_cuda:
            torch.cuda.set_device(device)
        return rank, world, device
    if args.device == "auto":
        return 0, 1, torch.device("cuda" if want_cuda else "cpu")
    return 0, 1, torch.device(args.device)


def for_training(model: torch.nn.Module, args: argparse.Namespace, world: int, device: torch.device) -> torch.nn.Module:
    """The module the loop steps: ``model`` compiled with ``--compile``, wrapped in DDP under ``torchrun``."""
    train_model: torch.nn.Module = model
    if args.compile:
        train_model = torch.compile(model)  # type: ignore[assignment]
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [device.index] if device.type == "cuda" else None
        train_model = DistributedDataParallel(train_model, device_ids=device_ids)
    return train_model


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, windows: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device, autocast: bool
) -> float:
    """A language model's mean cross-entropy (nats/token) over every target of ``windows`` (``model(x, y)``
    returns ``(logits, loss)``)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in windows:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            _, loss = model(x.to(device), y.to(device))
        assert loss is not None
        total += float(loss) * y.numel()
        count += y.numel()
    model.train(was_training)
    return total / max(1, count)


def add_schedule_arguments(
    p: argparse.ArgumentParser, *, lr: float, warmup_steps: int, eval_every: int, weight_decay: float | None = None
) -> None:
    """``--lr`` (``--weight-decay``), ``--warmup-steps``, ``--max-steps``, ``--max-minutes`` and ``--eval-every``,
    with a trainer's defaults; :func:`check_budget` after parsing."""
    p.add_argument("--lr", type=float, default=lr)
    if weight_decay is not None:
        p.add_argument("--weight-decay", type=float, default=weight_decay)
    p.add_argument("--warmup-steps", type=int, default=warmup_steps)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None, help="total training time, resumed runs included")
    p.add_argument("--eval-every", type=int, default=eval_every)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """``--resume``, ``--seed``, ``--device``, ``--threads``, ``--compile`` and ``--name``."""
    p.add_argument("--resume", action="store_true", help="continue from OUT/resume")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (worth it on GPUs)")
    p.add_argument("--name", default=None, help="model name in config.json (default: OUT's folder name)")


def check_budget(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error (exit 2) without a budget."""
    if args.max_steps is None and args.max_minutes is None:
        p.error("give --max-steps and/or --max-minutes")


def start_process(args: argparse.Namespace) -> tuple[int, int, torch.device, np.random.Generator]:
    """(rank, world size, device, numpy generator) of this training process: :func:`setup_distributed`, one voice
    on the console (rank 0's), ``--threads``, and seeds that differ per rank."""
    rank, world, device = setup_distributed(args)
    if rank != 0:
        logging.getLogger().setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed + rank)
    return rank, world, device, np.random.default_rng(args.seed + 1000 * rank)


def eval_record(
    step: int, seen: tuple[str, int], losses: list[float], val_loss: float, opt: torch.optim.Optimizer, elapsed_s: float
) -> dict[str, Any]:
    """One evaluation's line of train_log.jsonl: the step, what was seen so far (``("tokens_seen", n)``), the
    mean training loss since the last one, the validation loss, the learning rate and the minutes trained."""
    return {
        "step": step,
        seen[0]: seen[1],
        "train_loss": float(np.mean(losses)),
        "val_loss": val_loss,
        "lr": opt.param_groups[0]["lr"],
        "minutes": elapsed_s / 60,
    }
