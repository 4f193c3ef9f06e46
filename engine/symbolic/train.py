"""Train a symbolic (MIDI) GPT: ``segue train symbolic --data MIDI_DIR --out OUT [...]``.

One CPU/GPU process, or several under ``torchrun --nproc_per_node=N`` (DistributedDataParallel; rank 0 writes).
AdamW with linear warmup and a cosine decay over whichever budget ends first (``--max-steps`` or
``--max-minutes``), gradient clipping, validation loss in nats/token on the untransposed val stream.
``OUT`` receives the best-by-validation checkpoint (``model.safetensors``, ``config.json``, ``tokenizer.json``),
``train_log.jsonl`` and ``resume/`` (weights + optimizer state) so that ``--resume`` continues a killed run.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from engine.atomic import write_bytes, write_with
from engine.errors import BadInputError
from engine.symbolic.dataset import TokenSet, build_token_cache
from engine.symbolic.model import GPT, PRESETS
from engine.symbolic.tokenizer import make_tokenizer
from engine.symbolic.weights import save_symbolic

log = logging.getLogger(__name__)

LOG_NAME = "train_log.jsonl"
RESUME_DIR = "resume"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="segue train symbolic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, required=True, help="folder of MIDI files (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder (its name is the model name)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--block-size", type=int, default=None, help="context length (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None, help="total training time, resumed runs included")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--eval-windows", type=int, default=64, help="val windows per periodic eval (final: all)")
    p.add_argument("--token-cache", type=Path, default=None, help="default: OUT/token_cache")
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--no-transpose", action="store_true", help="switch off transposition augmentation")
    p.add_argument("--resume", action="store_true", help="continue from OUT/resume")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (worth it on GPUs)")
    p.add_argument("--name", default=None, help="model name in config.json (default: OUT's folder name)")
    p.add_argument("--description", default="", help="description stored in config.json")
    args = p.parse_args(argv)
    if args.max_steps is None and args.max_minutes is None:
        p.error("give --max-steps and/or --max-minutes")
    return args


def budget_progress(step: int, elapsed_s: float, max_steps: int | None, max_minutes: float | None) -> float:
    """How much of the training budget is used: steps or minutes, whichever ends first (1.0: spent)."""
    return max(
        step / max_steps if max_steps else 0.0,
        elapsed_s / (60 * max_minutes) if max_minutes else 0.0,
    )


def budget_spent(progress: float, world: int, device: torch.device) -> bool:
    """Whether the budget is spent; under DDP rank 0's clock decides for every rank, so all stop on the same step.
    Shared by the MIDI, codec and audio-prior trainers."""
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


@torch.no_grad()
def evaluate(
    model: GPT, windows: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device, autocast: bool
) -> float:
    """Mean cross-entropy (nats/token) over every target of ``windows``."""
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


def _optimizer(model: GPT, args: argparse.Namespace) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95))


def _save_resume(out: Path, model: GPT, opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    folder = out / RESUME_DIR
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    write_with(folder / "model.safetensors", lambda tmp: save_file(weights, str(tmp)))
    buffer = io.BytesIO()  # in memory: torch's own file writer does not say when the disk is full
    torch.save({"optimizer": opt.state_dict(), **state}, buffer)
    write_bytes(folder / "state.pt", buffer.getbuffer())


def _load_resume(out: Path, model: GPT, opt: torch.optim.Optimizer, device: torch.device) -> dict[str, Any]:
    folder = out / RESUME_DIR
    if not (folder / "state.pt").is_file():
        raise BadInputError(f"--resume: {folder} holds no resume state; start without --resume")
    model.load_state_dict(load_file(str(folder / "model.safetensors"), device=str(device)), strict=False)
    state: dict[str, Any] = torch.load(folder / "state.pt", map_location=device, weights_only=True)
    opt.load_state_dict(state.pop("optimizer"))
    return state


def _append_log(out: Path, record: dict[str, Any]) -> None:
    with open(out / LOG_NAME, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _setup_distributed(args: argparse.Namespace) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    want_cuda = args.device == "auto" and torch.cuda.is_available() or args.device.startswith("cuda")
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.distributed.init_process_group("nccl" if want_cuda else "gloo")
        device = torch.device(f"cuda:{local}") if want_cuda else torch.device("cpu")
        if want_cuda:
            torch.cuda.set_device(device)
        return rank, world, device
    return (
        0,
        1,
        torch.device(
            "cuda" if want_cuda and args.device == "auto" else ("cpu" if args.device == "auto" else args.device)
        ),
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tqdm import tqdm

    rank, world, device = _setup_distributed(args)
    if rank != 0:  # one voice on the console
        logging.getLogger().setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed + rank)
    rng = np.random.default_rng(args.seed + 1000 * rank)
    tokenizer = make_tokenizer()
    cache = args.token_cache or args.out / "token_cache"
    if rank == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        build_token_cache(args.data, cache, tokenizer, args.val_fraction)
    if world > 1:
        torch.distributed.barrier()
    tokens = TokenSet.load(cache, tokenizer)
    config = replace(PRESETS[args.preset], vocab_size=len(tokenizer))
    if args.block_size:
        config = replace(config, block_size=args.block_size)
    model = GPT(config).to(device)
    opt = _optimizer(model, args)
    state: dict[str, Any] = {"step": 0, "tokens_seen": 0, "elapsed_s": 0.0, "best_val": float("inf"), "best_step": -1}
    if args.resume:
        state.update(_load_resume(args.out, model, opt, device))
        if "numpy_rng" in state:
            rng.bit_generator.state = state.pop("numpy_rng")
        log.info("resumed at step %d (%.1f minutes trained)", state["step"], state["elapsed_s"] / 60)
    autocast = device.type == "cuda"
    train_model: torch.nn.Module = model
    if args.compile:
        train_model = torch.compile(model)  # type: ignore[assignment]
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(train_model, device_ids=[device.index] if autocast else None)
    eval_windows = tokens.eval_windows(config.block_size, args.eval_windows)
    summary = {
        k: tokens.meta[k]
        for k in ("source_dir", "train_tokens", "val_tokens", "train_files", "val_files", "train_notes", "val_fraction")
    }
    log.info(
        "%s: %.2fM parameters, %d train tokens, %d val tokens, device %s x%d",
        args.preset,
        model.num_parameters() / 1e6,
        summary["train_tokens"],
        summary["val_tokens"],
        device,
        world,
    )
    best_state: dict[str, torch.Tensor] | None = None
    started = time.monotonic() - state["elapsed_s"]
    bar = tqdm(total=args.max_steps, initial=state["step"], disable=rank != 0, unit="step")
    losses: list[float] = []
    while True:
        elapsed = time.monotonic() - started
        progress = budget_progress(state["step"], elapsed, args.max_steps, args.max_minutes)
        stop = budget_spent(progress, world, device)
        step = state["step"]
        last_eval = step % args.eval_every == 0 and step > 0
        if rank == 0 and losses and (last_eval or stop):
            val = evaluate(model, eval_windows, device, autocast)
            state["elapsed_s"] = elapsed
            record = {
                "step": step,
                "tokens_seen": state["tokens_seen"],
                "train_loss": float(np.mean(losses)),
                "val_loss": val,
                "lr": opt.param_groups[0]["lr"],
                "minutes": elapsed / 60,
            }
            losses = []
            _append_log(args.out, record)
            bar.write(json.dumps(record))
            if val < state["best_val"]:
                state["best_val"], state["best_step"] = val, step
                state["best_tokens"], state["best_elapsed_s"] = state["tokens_seen"], elapsed
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                save_symbolic(model, tokenizer, args.out, _extra(args, summary, state, val))
            _save_resume(args.out, model, opt, {**state, "numpy_rng": rng.bit_generator.state})
        if stop:
            break
        lr = lr_at(step, progress, args)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = tokens.batch("train", args.batch_size, config.block_size, rng, not args.no_transpose)
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            _, loss = train_model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        state["step"] += 1
        state["tokens_seen"] += x.numel() * world
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{lr:.2e}")
    bar.close()
    if rank == 0:
        _finish(args, model, tokenizer, tokens, summary, state, best_state, device, autocast)
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


def _extra(args: argparse.Namespace, summary: dict[str, Any], state: dict[str, Any], val: float) -> dict[str, Any]:
    extra = {
        "modes": ["continue"],
        "description": args.description,
        "training": {
            **summary,
            "preset": args.preset,
            "steps": state["step"],
            "tokens_seen": state["tokens_seen"],
            "minutes": round(state["elapsed_s"] / 60, 2),
            "batch_size": args.batch_size,
            "lr": args.lr,
            "transpose_augmentation": not args.no_transpose,
            "seed": args.seed,
        },
        "val_loss": val,
    }
    if args.name:
        extra["name"] = args.name
    return extra


def _finish(
    args: argparse.Namespace,
    model: GPT,
    tokenizer: Any,
    tokens: TokenSet,
    summary: dict[str, Any],
    state: dict[str, Any],
    best_state: dict[str, torch.Tensor] | None,
    device: torch.device,
    autocast: bool,
) -> None:
    """Score the best weights on the whole val stream and store that figure in config.json."""
    if best_state is not None:
        model.load_state_dict(best_state)
    elif not (args.out / "config.json").is_file():
        return
    else:  # best was saved by an earlier (resumed) run: load it
        model.load_state_dict(load_file(str(args.out / "model.safetensors"), device=str(device)), strict=False)
    full = evaluate(model, tokens.eval_windows(model.config.block_size), device, autocast)
    best = {
        **state,
        "step": state["best_step"],
        "tokens_seen": state.get("best_tokens", state["tokens_seen"]),
        "elapsed_s": state.get("best_elapsed_s", state["elapsed_s"]),
    }
    extra = _extra(args, summary, best, full)
    extra["val_loss_subset"] = state["best_val"]
    extra["training"]["total_steps_run"] = state["step"]
    save_symbolic(model, tokenizer, args.out, extra)
    _append_log(args.out, {"final": True, "best_step": state["best_step"], "val_loss_full": full})
    log.info(
        "best step %d: val loss %.4f nats/token on all %d val tokens", state["best_step"], full, summary["val_tokens"]
    )


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
