"""Train a symbolic (MIDI) GPT: ``segue train symbolic --data MIDI_DIR --out OUT [...]``.

One CPU/GPU process, or several under ``torchrun --nproc_per_node=N`` (DistributedDataParallel; rank 0 writes).
AdamW with linear warmup and a cosine decay over whichever budget ends first (``--max-steps`` or
``--max-minutes``), gradient clipping, validation loss in nats/token on the untransposed val stream.
``OUT`` receives the best-by-validation checkpoint (``model.safetensors``, ``config.json``, ``tokenizer.json``),
``train_log.jsonl`` and ``resume/`` (weights + optimizer state) so that ``--resume`` continues a killed run.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from engine import training
from engine.nn.model import GPT, PRESETS
from engine.symbolic.dataset import TokenSet, build_token_cache
from engine.symbolic.tokenizer import make_tokenizer
from engine.symbolic.weights import save_symbolic

log = logging.getLogger(__name__)

TIED = ("lm_head.weight",)  # the GPT's head shares the embedding: not saved twice


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = training.trainer_parser("segue train symbolic", __doc__)
    p.add_argument("--data", type=Path, required=True, help="folder of MIDI files (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder (its name is the model name)")
    training.add_lm_arguments(p, sorted(PRESETS), "context length", eval_windows=64)
    p.add_argument("--token-cache", type=Path, default=None, help="default: OUT/token_cache")
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--no-transpose", action="store_true", help="switch off transposition augmentation")
    training.add_run_arguments(p)
    p.add_argument("--description", default="", help="description stored in config.json")
    return training.parse_with_budget(p, argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    training.log_to_console()
    rank, world, device, rng = process = training.start_process(args)
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
    state: dict[str, Any] = {"step": 0, "tokens_seen": 0, "elapsed_s": 0.0, "best_val": float("inf"), "best_step": -1}
    run = training.Run.start(args, model, training.optimizer(model, args), state, process, skip=TIED)
    autocast = device.type == "cuda"
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

    def batch() -> tuple[torch.Tensor, torch.Tensor, int]:
        x, y = tokens.batch("train", args.batch_size, config.block_size, rng, not args.no_transpose)
        return x, y, x.numel() * world

    best = training.train_lm(
        run,
        batch,
        lambda: training.evaluate(model, eval_windows, device, autocast),
        lambda val: save_symbolic(model, tokenizer, args.out, _extra(args, summary, state, val)),
        training.BarConsole(run),
    )
    if rank == 0 and training.restore_best(model, best, args.out, device):
        _finish(args, model, tokenizer, tokens, summary, state, device, autocast)
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


def _extra(args: argparse.Namespace, summary: dict[str, Any], state: dict[str, Any], val: float) -> dict[str, Any]:
    facts = training.lm_training(args, summary, state, transpose_augmentation=not args.no_transpose)
    extra = {"modes": ["continue"], "description": args.description, "training": facts, "val_loss": val}
    return training.named(extra, args)


def _finish(
    args: argparse.Namespace,
    model: GPT,
    tokenizer: Any,
    tokens: TokenSet,
    summary: dict[str, Any],
    state: dict[str, Any],
    device: torch.device,
    autocast: bool,
) -> None:
    """Score the best weights (loaded in ``model``) on the whole val stream and store that figure in config.json."""
    full = training.evaluate(model, tokens.eval_windows(model.config.block_size), device, autocast)
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
    training.append_log(args.out, {"final": True, "best_step": state["best_step"], "val_loss_full": full})
    log.info(
        "best step %d: val loss %.4f nats/token on all %d val tokens", state["best_step"], full, summary["val_tokens"]
    )


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
