"""The loop every trainer runs (MIDI GPT, accompany fine-tuning, audio codec, audio prior) and its pieces.

:func:`run_loop` steps a :class:`Run` with a trainer's hooks (a step's loss, an evaluation); :func:`train_lm` is
that loop for the GPTs (keeping the best weights by validation loss). A budget of steps or minutes, whichever ends
first, that every DDP rank stops on together; linear warmup then cosine learning rate; AdamW with weight decay on
matrices only; ``resume/`` (weights + optimizer and loop state) written atomically so ``--resume`` continues a
killed run; ``train_log.jsonl`` with one record per evaluation; one process or several under ``torchrun``
(DistributedDataParallel; rank 0 writes).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
    if getattr(args, "compile", False):
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
    with a trainer's defaults; :func:`parse_with_budget` parses."""
    p.add_argument("--lr", type=float, default=lr)
    if weight_decay is not None:
        p.add_argument("--weight-decay", type=float, default=weight_decay)
    p.add_argument("--warmup-steps", type=int, default=warmup_steps)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None, help="total training time, resumed runs included")
    p.add_argument("--eval-every", type=int, default=eval_every)


def add_lm_arguments(p: argparse.ArgumentParser, presets: list[str], block_help: str, eval_windows: int) -> None:
    """A GPT trainer's ``--preset``, ``--block-size``, ``--batch-size``, schedule (lr 1e-3, weight decay 0.1,
    100 warmup steps, an evaluation every 200) and ``--eval-windows``."""
    p.add_argument("--preset", choices=presets, default="small")
    p.add_argument("--block-size", type=int, default=None, help=f"{block_help} (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=16)
    add_schedule_arguments(p, lr=1e-3, weight_decay=0.1, warmup_steps=100, eval_every=200)
    p.add_argument("--eval-windows", type=int, default=eval_windows, help="val windows per periodic eval (final: all)")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """``--resume``, ``--seed``, ``--device``, ``--threads``, ``--compile`` and ``--name``."""
    p.add_argument("--resume", action="store_true", help="continue from OUT/resume")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (worth it on GPUs)")
    p.add_argument("--name", default=None, help="model name in config.json (default: OUT's folder name)")


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


def log_to_console() -> None:
    """INFO messages on stderr with their time, unless the caller set up logging already."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def trainer_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A trainer's argument parser: ``description`` (its module docstring) shown as written."""
    return argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


# ------------------------------------------------------------------------------------------------ the loop


class Console(Protocol):
    """Where the loop reports: each evaluation's record and each step."""

    def record(self, record: dict[str, Any]) -> None: ...
    def step(self, step: int, loss: float, lr: float, elapsed_s: float) -> None: ...
    def close(self) -> None: ...


class BarConsole:
    """A tqdm bar (rank 0 only): the records written above it, the step's loss and learning rate beside it."""

    def __init__(self, run: Run, lr_format: str = ".2e", **options: Any) -> None:
        from tqdm import tqdm

        self.lr_format = lr_format
        self.bar = tqdm(
            total=run.args.max_steps, initial=run.state["step"], disable=run.rank != 0, unit="step", **options
        )

    def record(self, record: dict[str, Any]) -> None:
        self.bar.write(json.dumps(record))

    def step(self, step: int, loss: float, lr: float, elapsed_s: float) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:{self.lr_format}}")

    def close(self) -> None:
        self.bar.close()


class LogConsole:
    """The records printed on stdout; every ``every`` steps the mean loss of the last ten steps since the last
    record, on ``logger``."""

    def __init__(self, logger: logging.Logger, every: int = 10) -> None:
        self.logger, self.every = logger, every
        self.losses: list[float] = []

    def record(self, record: dict[str, Any]) -> None:
        print(json.dumps(record), flush=True)  # noqa: T201 - progress on the console/log
        self.losses = []

    def step(self, step: int, loss: float, lr: float, elapsed_s: float) -> None:
        self.losses.append(loss)
        if step % self.every == 0:
            mean = np.mean(self.losses[-10:])
            self.logger.info("step %d loss %.3f lr %.2e (%.1f min)", step, mean, lr, elapsed_s / 60)

    def close(self) -> None:
        pass


@dataclass
class Run:
    """One training process: the model whose weights are saved and scored, the module the loop steps
    (``--compile``d, DDP-wrapped), the optimizer, the loop state written to ``resume/`` (``step``,
    ``elapsed_s``, what was seen, the best so far), the data's generator and where it runs."""

    args: argparse.Namespace
    model: torch.nn.Module
    train_model: torch.nn.Module
    opt: torch.optim.Optimizer
    state: dict[str, Any]
    rng: np.random.Generator
    device: torch.device
    rank: int = 0
    world: int = 1
    skip: tuple[str, ...] = ()  # weights resume/ leaves out (a tied head)
    resumed: bool = False

    @classmethod
    def start(
        cls,
        args: argparse.Namespace,
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        state: dict[str, Any],
        process: tuple[int, int, torch.device, np.random.Generator],
        skip: tuple[str, ...] = (),
    ) -> Run:
        """With ``--resume``, ``state``, the weights, the optimizer and the data's generator continue where
        ``out/resume/`` left them (:func:`load_resume`; the weights in ``skip``, a tied head, were not saved there, so
        they are not required when it is read);
        then the module to step (:func:`for_training`). ``process`` is :func:`start_process`'s (rank, world, device,
        generator)."""
        rank, world, device, rng = process
        resumed = bool(args.resume)
        if resumed:
            state.update(load_resume(args.out, model, opt, device, strict=not skip))
            if "numpy_rng" in state:
                rng.bit_generator.state = state.pop("numpy_rng")
            log.info("resumed at step %d (%.1f minutes trained)", state["step"], state["elapsed_s"] / 60)
        train_model = for_training(model, args, world, device)
        return cls(args, model, train_model, opt, state, rng, device, rank, world, skip, resumed)


def run_loop(
    run: Run,
    step: Callable[[], tuple[torch.Tensor, float]],
    evaluate: Callable[[int, float], None],
    console: Console,
    seen: str,
) -> None:
    """Train until the budget is spent: ``step()`` gives a batch's loss and how much it adds to
    ``state[seen]``; the loop sets the learning rate (:func:`lr_at`), steps AdamW with the gradient clipped at 1.
    Every ``--eval-every`` steps and at the end (when steps were taken since the last time), rank 0 calls
    ``evaluate(step, elapsed_s)`` and writes ``resume/``."""
    args, state = run.args, run.state
    started = time.monotonic() - state["elapsed_s"]
    pending = 0
    while True:
        elapsed = time.monotonic() - started
        progress = budget_progress(state["step"], elapsed, args.max_steps, args.max_minutes)
        stop = budget_spent(progress, run.world, run.device)
        at = state["step"]
        if run.rank == 0 and pending and (at % args.eval_every == 0 or stop):
            state["elapsed_s"] = elapsed
            evaluate(at, elapsed)
            pending = 0
            save_resume(args.out, run.model, run.opt, {**state, "numpy_rng": run.rng.bit_generator.state}, run.skip)
        if stop:
            break
        lr = lr_at(at, progress, args)
        for group in run.opt.param_groups:
            group["lr"] = lr
        loss, amount = step()
        run.opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
        run.opt.step()
        pending += 1
        state["step"] += 1
        state[seen] += amount
        console.step(state["step"], float(loss.detach()), lr, elapsed)
    console.close()


def train_lm(
    run: Run,
    batch: Callable[[], tuple[torch.Tensor, torch.Tensor, int]],
    validate: Callable[[], float],
    save_best: Callable[[float], None],
    console: Console,
    seen: str = "tokens_seen",
    autocast: bool = True,
) -> dict[str, torch.Tensor] | None:
    """:func:`run_loop` for a language model (``model(x, y)`` returns ``(logits, loss)``; in bfloat16 autocast on
    CUDA unless ``autocast`` is False): ``batch()`` gives inputs, targets and how many it adds to ``state[seen]``;
    each evaluation logs :func:`eval_record` and, when ``validate()`` is the best so far, keeps the weights and
    calls ``save_best(val)``. Returns this run's best weights (None when it never beat the best it resumed with)."""
    losses: list[float] = []
    best: dict[str, torch.Tensor] | None = None
    device = run.device

    def step() -> tuple[torch.Tensor, float]:
        x, y, amount = batch()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast and device.type == "cuda"):
            _, loss = run.train_model(x.to(device), y.to(device))
        losses.append(loss.item())
        return loss, amount

    def evaluate(at: int, elapsed: float) -> None:
        nonlocal best
        val = validate()
        record = eval_record(at, (seen, run.state[seen]), losses, val, run.opt, elapsed)
        losses.clear()
        append_log(run.args.out, record)
        console.record(record)
        if val < run.state["best_val"]:
            run.state.update({"best_val": val, "best_step": at, "best_elapsed_s": elapsed})
            run.state["best_" + seen.removesuffix("_seen")] = run.state[seen]
            best = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
            save_best(val)

    run_loop(run, step, evaluate, console, seen)
    return best


def restore_best(model: torch.nn.Module, best: dict[str, torch.Tensor] | None, out: Path, device: torch.device) -> bool:
    """Load this run's best weights into ``model``, else the best an earlier (resumed) run saved in ``out``;
    False when there are neither."""
    if best is not None:
        model.load_state_dict(best)
    elif (out / "model.safetensors").is_file():
        model.load_state_dict(load_file(str(out / "model.safetensors"), device=str(device)), strict=False)
    else:
        return False
    return True


def parse_with_budget(p: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``p``'s arguments from ``argv``; a usage error (exit 2) without a budget (``--max-steps``/``--max-minutes``)."""
    args = p.parse_args(argv)
    if args.max_steps is None and args.max_minutes is None:
        p.error("give --max-steps and/or --max-minutes")
    return args


def lm_training(
    args: argparse.Namespace, summary: dict[str, Any], state: dict[str, Any], **more: Any
) -> dict[str, Any]:
    """config.json's ``training`` for a GPT trainer: the data's ``summary``, the preset, steps, tokens seen,
    minutes, batch size and learning rate of ``state`` and ``args``, then ``more`` and the seed."""
    return {
        **summary,
        "preset": args.preset,
        "steps": state["step"],
        "tokens_seen": state["tokens_seen"],
        "minutes": round(state["elapsed_s"] / 60, 2),
        "batch_size": args.batch_size,
        "lr": args.lr,
        **more,
        "seed": args.seed,
    }


def named(extra: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``extra`` with ``--name`` as its ``name`` when one was given."""
    if args.name:
        extra["name"] = args.name
    return extra
