"""The MIDI model's held-out loss against n-gram baselines, on the same tokens.

    python bench/bench_loss.py [--model default] [--token-cache data/tokens] [--corpus data/corpus]
                               [--windows 120] [--orders 4 6] [--threads 1] [--quick]

The held-out set is the val stream of a token cache (:mod:`engine.symbolic.dataset`: pieces split by a hash of
their path, 5%, the same rule the shipped model's training used, so these pieces were never trained on). As in the
model card (engine/models/segue-midi-small/MODEL_CARD.md), the GPT reads the untransposed val stream in
consecutive windows of its context (768 tokens); ``--windows`` of them, evenly spaced, bound the time. The n-gram
baselines (:mod:`engine.symbolic.ngram`, interpolated Kneser-Ney) are fit on the cache's train stream and score
exactly the same target tokens, each with its previous n-1 tokens. Loss in nats/token (lower is better). One torch
thread by default: the figure is a loss, not a speed, and on a shared 2-core machine one thread is several times
faster than two (120 windows: about half a minute).

Without a token cache at ``--token-cache``, one is built from ``--corpus`` when that folder exists (tokenizing
~4,600 files takes about half a minute); without either, the result says how to make one and no number is given.
Prints a table and writes bench/results/loss.json.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from _common import ROOT, bench_parser, machine, markdown_table, parse_bench_args, write_json

HOW_TO = (
    "no token cache: make the corpus with `.venv/bin/python -m engine.symbolic.corpus --out data/corpus "
    "--max-minutes 12` (needs music21: pip install 'music21>=9'), then run `make bench` again (it tokenizes "
    "data/corpus into data/tokens)"
)


def not_measured(out: Path, reason: str, settings: dict[str, Any]) -> int:
    write_json(out, {"bench": "loss", "machine": machine(), "settings": settings, "not_measured": reason})
    print(f"MIDI model held-out loss: not measured: {reason}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--model", default="default")
    parser.add_argument("--token-cache", type=Path, default=ROOT / "data/tokens")
    parser.add_argument("--corpus", type=Path, default=ROOT / "data/corpus", help="to build a missing token cache")
    parser.add_argument("--windows", type=int, default=120, help="val windows of 768 tokens scored (default 120)")
    parser.add_argument("--orders", type=int, nargs="+", default=[4, 6])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a loss, not a speed)")
    return parse_bench_args(parser, argv, out="loss.json", quick_settings={"windows": 8, "orders": [4]})


def gpt_loss(model: Any, windows: list[Any]) -> tuple[float, int, float]:
    """The GPT's mean loss over ``windows`` (nats per token), the tokens scored and the seconds it took."""
    import torch

    t0 = time.perf_counter()
    total, count = 0.0, 0
    with torch.inference_mode():
        for x, y in windows:
            _, loss = model(x, y)
            assert loss is not None
            total += float(loss) * y.numel()
            count += y.numel()
    return (total / count if count else float("nan")), count, time.perf_counter() - t0


def ngram_baselines(orders: list[int], vocab: int, train: Any, val: Any, targets: Any) -> list[dict[str, Any]]:
    """Kneser-Ney n-grams of each order fitted on ``train``, scored on the ``targets`` positions of ``val``."""
    import numpy as np

    from engine.symbolic.ngram import NGramModel

    baselines = []
    for order in orders:
        t0 = time.perf_counter()
        ngram = NGramModel(order, vocab).fit(train)
        fit_s = time.perf_counter() - t0
        ctx = ngram.contexts(val)[targets]
        loss = -float(np.log(ngram.prob(ctx, val[targets])).mean())
        baselines.append({"order": order, "val_loss": round(loss, 4), "fit_seconds": round(fit_s, 1),
                          "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
    return baselines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"}

    if not (args.token_cache / "meta.json").is_file() and not args.corpus.is_dir():
        return not_measured(args.out, HOW_TO, settings)  # before torch is imported: this answer takes no time

    import numpy as np
    import torch

    from engine.checkpoints import find_checkpoint
    from engine.symbolic.dataset import META_NAME, TokenSet, build_token_cache
    from engine.symbolic.weights import load_symbolic

    torch.set_num_threads(args.threads)
    ckpt = find_checkpoint(args.model)
    model, tokenizer = load_symbolic(ckpt)
    built_seconds = None
    if not (args.token_cache / META_NAME).is_file():
        print(f"tokenizing {args.corpus} into {args.token_cache} ...", flush=True)
        t0 = time.perf_counter()
        build_token_cache(args.corpus, args.token_cache, tokenizer)
        built_seconds = round(time.perf_counter() - t0, 1)
    tokens = TokenSet.load(args.token_cache, tokenizer)
    block = model.config.block_size
    windows = tokens.eval_windows(block, args.windows)
    val = np.asarray(tokens.val, dtype=np.int64)
    starts = list(range(0, int(val.size) - 1, block))
    if len(starts) > args.windows:
        step = len(starts) / args.windows
        starts = [starts[int(i * step)] for i in range(args.windows)]
    targets = np.concatenate([np.arange(s + 1, min(s + block + 1, val.size)) for s in starts])

    loss, count, gpt_seconds = gpt_loss(model, windows)
    if count != targets.size:
        raise RuntimeError(f"the GPT scored {count} tokens, the n-grams would score {targets.size}")
    vocab = len(tokenizer)
    baselines = ngram_baselines(args.orders, vocab, np.asarray(tokens.train, dtype=np.int64), val, targets)
    meta = tokens.meta
    main_baseline = baselines[0]
    best = min(baselines, key=lambda b: b["val_loss"])
    data = {
        "bench": "loss",
        "machine": machine(args.threads),
        "settings": settings,
        "model": ckpt.name,
        "model_val_loss_full": ckpt.config.get("val_loss"),
        "token_cache": {
            "path": str(args.token_cache),
            "source_dir": meta.get("source_dir"),
            "train_tokens": meta.get("train_tokens"),
            "val_tokens": meta.get("val_tokens"),
            "train_files": meta.get("train_files"),
            "val_files": meta.get("val_files"),
            "built_seconds": built_seconds,
        },
        "scored_tokens": int(targets.size),
        "windows": len(starts),
        "segue": {"val_loss": round(loss, 4), "seconds": round(gpt_seconds, 1)},
        "uniform": round(math.log(vocab), 4),
        "baselines": baselines,
        "baseline": main_baseline,
        "best_baseline": best,
        "ratio": round(loss / main_baseline["val_loss"], 3),
    }
    write_json(args.out, data)
    rows = [[f"{ckpt.name} (GPT, {model.num_parameters() / 1e6:.1f}M)", f"{loss:.3f}", f"{gpt_seconds:.1f}"]]
    rows += [[f"Kneser-Ney {b['order']}-gram (fit on the cache's train stream)", f"{b['val_loss']:.3f}",
              f"{b['seconds']:.1f}"] for b in baselines]  # fmt: skip
    rows.append([f"uniform over {vocab} tokens", f"{math.log(vocab):.3f}", ""])
    print(f"MIDI model held-out loss: {targets.size} val tokens ({len(starts)} windows of {block}) of "
          f"{meta.get('val_tokens')} in {args.token_cache} ({meta.get('val_files')} held-out files); "
          f"n-grams fit on {meta.get('train_tokens')} train tokens")  # fmt: skip
    print(markdown_table(["model", "val loss nats/token", "seconds"], rows, right=(1, 2)))
    print(f"ratio GPT / {main_baseline['order']}-gram: {data['ratio']} (lower is better; json: {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
