"""Train a symbolic (MIDI) GPT: ``segue train symbolic --data MIDI_DIR --out OUT [...]``.

One CPU/GPU process, or several under ``torchrun --nproc_per_node=N`` (DistributedDataParallel; rank 0 writes).
AdamW with linear warmup and a cosine decay over whichever budget ends first (``--max-steps`` or
``--max-minutes``), gradient clipping, validation loss in nats/token on the untransposed val stream.
``OUT`` receives the best-by-validation checkpoint (``model.safetensors``, ``config.json``, ``tokenizer.json``),
``train_log.jsonl`` and ``resume/`` (weights + optimizer state) so that ``--resume`` continues a killed run.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from engine.nn.model import GPT, PRESETS
from engine.symbolic.dataset import TokenSet, build_token_cache
from engine.symbolic.tokenizer import make_tokenizer
from engine.symbolic.weights import save_symbolic
from engine.training import (
    add_run_arguments,
    add_schedule_arguments,
    append_log,
    budget_progress,
    budget_spent,
    check_budget,
    eval_record,
    evaluate,
    for_training,
    lr_at,
    optimizer,
    resume_into,
    save_resume,
    start_process,
)

log = logging.getLogger(__name__)

TIED = ("lm_head.weight",)  # the GPT's head shares the embedding: not saved twice


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="segue train symbolic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, required=True, help="folder of MIDI files (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder (its name is the model name)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--block-size", type=int, default=None, help="context length (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=16)
    add_schedule_arguments(p, lr=1e-3, weight_decay=0.1, warmup_steps=100, eval_every=200)
    p.add_argument("--eval-windows", type=int, default=64, help="val windows per periodic eval (final: all)")
    p.add_argument("--token-cache", type=Path, default=None, help="default: OUT/token_cache")
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--no-transpose", action="store_true", help="switch off transposition augmentation")
    add_run_arguments(p)
    p.add_argument("--description", default="", help="description stored in config.json")
    args = p.parse_args(argv)
    check_budget(p, args)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tqdm import tqdm

    rank, world, device, rng = start_process(args)
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
    opt = optimizer(model, args)
    state: dict[str, Any] = {"step": 0, "tokens_seen": 0, "elapsed_s": 0.0, "best_val": float("inf"), "best_step": -1}
    resume_into(state, args, model, opt, device, rng, strict=False)
    autocast = device.type == "cuda"
    train_model = for_training(model, args, world, device)
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
            record = eval_record(step, ("tokens_seen", state["tokens_seen"]), losses, val, opt, elapsed)
            losses = []
            append_log(args.out, record)
            bar.write(json.dumps(record))
            if val < state["best_val"]:
                state["best_val"], state["best_step"] = val, step
                state["best_tokens"], state["best_elapsed_s"] = state["tokens_seen"], elapsed
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                save_symbolic(model, tokenizer, args.out, _extra(args, summary, state, val))
            save_resume(args.out, model, opt, {**state, "numpy_rng": rng.bit_generator.state}, TIED)
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
    append_log(args.out, {"final": True, "best_step": state["best_step"], "val_loss_full": full})
    log.info(
        "best step %d: val loss %.4f nats/token on all %d val tokens", state["best_step"], full, summary["val_tokens"]
    )


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
