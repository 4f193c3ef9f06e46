"""Export a trained symbolic checkpoint for shipping: half-precision weights, re-scored on the val stream.

``python -m engine.symbolic.export --src runs/segue-midi-small --out engine/models/segue-midi-small
--token-cache data/tokens``

The weights are stored as float16 (half the size; the model loads them into float32). The exported checkpoint is
read back with :func:`engine.symbolic.weights.load_symbolic` and scored on every token of the token cache's
untransposed val stream; that figure is written into its ``config.json`` as ``val_loss``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from engine.checkpoints import read_checkpoint, write_json_atomic
from engine.errors import BadInputError
from engine.symbolic.dataset import TokenSet
from engine.symbolic.weights import load_symbolic, save_symbolic
from engine.training import LOG_NAME, evaluate

log = logging.getLogger(__name__)

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def export_checkpoint(src: Path, out: Path, token_cache: Path, dtype: str = "float16") -> dict[str, Any]:
    """Write ``src``'s model into ``out`` with weights in ``dtype``; returns the new config."""
    if out.resolve() == src.resolve():
        raise BadInputError("--out must differ from --src: the export never overwrites its source")
    source = read_checkpoint(src)
    model, tokenizer = load_symbolic(source)
    extra = {k: v for k, v in source.config.items() if k not in ("type", "name", "gpt", "parameters")}
    extra["weights_dtype"] = dtype
    save_symbolic(model.to(DTYPES[dtype]), tokenizer, out, extra)
    if (src / LOG_NAME).is_file():
        shutil.copyfile(src / LOG_NAME, out / LOG_NAME)
    shipped, tokenizer = load_symbolic(read_checkpoint(out))  # exactly what users will load
    tokens = TokenSet.load(token_cache, tokenizer)
    t0 = time.monotonic()
    val = evaluate(shipped, tokens.eval_windows(shipped.config.block_size), torch.device("cpu"), False)
    seconds = time.monotonic() - t0
    log.info("exported %s: val loss %.4f nats/token over %d tokens (%.0fs)", out, val, tokens.val.size - 1, seconds)
    config: dict[str, Any] = json.loads((out / "config.json").read_text())
    config["val_loss"] = val
    config["val_loss_float32"] = source.config.get("val_loss")
    config["val_tokens_scored"] = int(tokens.val.size - 1)
    write_json_atomic(out / "config.json", config)
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, required=True, help="trained checkpoint folder")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (its name is the model name)")
    parser.add_argument("--token-cache", type=Path, required=True, help="token cache with the val stream")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float16")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = export_checkpoint(args.src, args.out, args.token_cache, args.dtype)
    size_mb = (args.out / "model.safetensors").stat().st_size / 1e6
    print(json.dumps({"val_loss": config["val_loss"], "parameters": config["parameters"], "weights_mb": size_mb}))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
