"""Train an accompany model (track infilling): ``segue train accompany --data DIR [--data DIR2] --out OUT [...]``.

The pieces are the multi-part MIDI files under the ``--data`` folders (single-line melodies and the ``__drums``
copies are left out); each is read into per-role, per-bar tokens once (cached in ``OUT/pieces.json``) and split
by piece (a hash of its path, as :mod:`engine.symbolic.dataset` does). Every training example is drawn afresh:
a window of 2..8 bars, which tracks are known and which are missing (half the time: the top voice alone is known,
as when harmonising a melody), and a transposition of -5..+6 semitones. The loss is the cross-entropy of the
missing tracks' tokens only (:func:`engine.symbolic.accompany.layout.build_sequence`).

``--init CHECKPOINT`` starts from a MIDI model (by default the shipped segue-midi-small) with its vocabulary
extended by the two layout tokens; ``--init none`` trains from scratch (``--preset``). AdamW, warmup then cosine
over the budget (``--max-steps`` / ``--max-minutes``, whichever ends first: :mod:`engine.training`'s loop).
``OUT`` gets the best-by-validation checkpoint, ``train_log.jsonl`` and ``resume/`` (``--resume`` continues a
killed run).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import training
from engine.checkpoints import find_checkpoint, write_json_atomic
from engine.errors import BadInputError
from engine.nn.model import GPT, PRESETS
from engine.symbolic.accompany.layout import (
    ROLES,
    Piece,
    Sequence_,
    Tokens,
    encode_piece,
    extend_vocabulary,
    load_accompany,
    sample_example,
    save_accompany,
)
from engine.symbolic.dataset import draw_shift, find_midi_files, is_val, shifted_ids
from engine.symbolic.train import TIED

log = logging.getLogger(__name__)

PIECES_NAME = "pieces.json"
TRANSPOSE = (-5, 6)
WEIGHT_CAP_BARS = 64


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = training.trainer_parser("segue train accompany", __doc__)
    p.add_argument("--data", type=Path, action="append", required=True, help="folder of MIDI files (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder (its name is the model name)")
    p.add_argument("--init", default="segue-midi-small", help="MIDI model to start from, or 'none'")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small", help="architecture with --init none")
    p.add_argument("--batch-size", type=int, default=8)
    training.add_schedule_arguments(p, lr=5e-4, weight_decay=0.1, warmup_steps=50, eval_every=100)
    p.add_argument("--max-bars", type=int, default=8, help="longest training window in bars")
    p.add_argument("--eval-examples", type=int, default=96, help="val examples per periodic eval (final: all)")
    p.add_argument("--val-per-piece", type=int, default=6, help="val examples drawn from each held-out piece")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--resume", action="store_true", help="continue from OUT/resume")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--description", default="")
    return training.parse_with_budget(p, argv)


# ---------------------------------------------------------------------------------------------- data


def collect_files(folders: list[Path]) -> list[tuple[str, Path]]:
    """(key, path) of every MIDI file under the folders, except ``__variant`` copies (synthetic drums)."""
    out = []
    for folder in folders:
        if not folder.is_dir():
            raise BadInputError(f"training data folder {folder} does not exist: pass a folder of .mid files")
        for path in find_midi_files(folder):
            rel = str(path.relative_to(folder))
            if "__" in path.stem:
                continue
            out.append((rel, path))
    return out


def load_pieces(folders: list[Path], tokenizer: Any, tokens: Tokens, cache: Path | None) -> list[Piece]:
    """Every multi-part piece of the folders (cached as JSON: per-role per-bar token ids)."""
    files = collect_files(folders)
    signature = [[k, p.stat().st_size] for k, p in files]
    if cache is not None and cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("signature") == signature and data.get("vocab_size") == tokens.vocab_size:
            return [Piece(**p) for p in data["pieces"]]
    pieces = []
    for n, (key, path) in enumerate(files):
        try:
            piece = encode_piece(tokenizer, tokens, path, key)
        except Exception as e:  # noqa: BLE001 - one unreadable file must not stop training
            log.warning("skipping %s: %s", path, e)
            continue
        if piece is not None:
            pieces.append(piece)
        if (n + 1) % 100 == 0:
            log.info("read %d/%d files, %d multi-part pieces", n + 1, len(files), len(pieces))
    if not pieces:
        where = ", ".join(map(str, folders))
        raise BadInputError(f"no multi-part MIDI files (two or more pitched parts) under {where}")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            cache,
            {
                "signature": signature,
                "vocab_size": tokens.vocab_size,
                "pieces": [p.__dict__ for p in pieces],
            },
        )
    return pieces


def split_pieces(pieces: list[Piece], val_fraction: float) -> tuple[list[Piece], list[Piece]]:
    val = [p for p in pieces if is_val(p.key, val_fraction)]
    train = [p for p in pieces if not is_val(p.key, val_fraction)]
    if not val:  # tiny folders: one piece for validation
        val = [train.pop()] if len(train) > 1 else list(train)
    return train, val


class ShiftTable:
    """Transposition of token ids: ``table[shift - TRANSPOSE[0]][id]``; pitch range per example to keep shifts in
    the vocabulary."""

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        self.pitch_of = np.full(vocab_size, -1, dtype=np.int32)
        id_of: dict[int, int] = {}
        for token, idx in tokenizer.vocab.items():
            if token.startswith("Pitch_"):
                self.pitch_of[idx] = int(token.split("_", 1)[1])
                id_of[int(token.split("_", 1)[1])] = idx
        self.low, self.high = min(id_of), max(id_of)
        self.table = shifted_ids(id_of, vocab_size, TRANSPOSE)  # row shift - TRANSPOSE[0]

    def transpose(self, seq: Sequence_, rng: np.random.Generator) -> Sequence_:
        ids = np.asarray(seq.ids)
        shift = draw_shift(self.pitch_of[ids], self.low, self.high, TRANSPOSE, rng)
        if shift == 0:
            return seq
        return Sequence_(self.table[shift - TRANSPOSE[0]][ids].tolist(), seq.loss_mask)


def draw_examples(
    pieces: list[Piece], tokens: Tokens, rng: np.random.Generator, n: int, block: int, max_bars: int
) -> list[Sequence_]:
    """``n`` examples from pieces drawn in proportion to their length in bars, up to :data:`WEIGHT_CAP_BARS`
    (so that a few long movements do not crowd out the short chorales)."""
    weights = np.asarray([min(p.bar_count, WEIGHT_CAP_BARS) for p in pieces], dtype=np.float64)
    weights /= weights.sum()
    out: list[Sequence_] = []
    attempts = 0
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        piece = pieces[int(rng.choice(len(pieces), p=weights))]
        example = sample_example(piece, tokens, rng, block, max_bars)
        if example is not None:
            out.append(example)
    if not out:
        raise BadInputError("no training window fits the model's context; the pieces may be too dense")
    return out


def val_examples(pieces: list[Piece], tokens: Tokens, per_piece: int, block: int, max_bars: int) -> list[Sequence_]:
    """A fixed set: ``per_piece`` untransposed examples from each held-out piece (seeded by its key)."""
    out = []
    for piece in pieces:
        rng = np.random.default_rng(int.from_bytes(piece.key.encode()[:8].ljust(8, b"\0"), "little") % 2**32)
        for _ in range(per_piece):
            example = sample_example(piece, tokens, rng, block, max_bars)
            if example is not None:
                out.append(example)
    return out


def collate(examples: list[Sequence_], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs [B, T] and targets [B, T] (``-100`` where not scored or padded)."""
    length = max(len(e.ids) for e in examples) - 1
    x = torch.full((len(examples), length), pad, dtype=torch.long)
    y = torch.full((len(examples), length), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        ids = torch.tensor(e.ids, dtype=torch.long)
        mask = torch.tensor(e.loss_mask[1:], dtype=torch.bool)
        n = len(e.ids) - 1
        x[i, :n] = ids[:-1]
        y[i, :n] = torch.where(mask, ids[1:], torch.full_like(ids[1:], -100))
    return x, y


@torch.no_grad()
def evaluate_examples(model: GPT, examples: list[Sequence_], pad: int, device: torch.device, batch: int = 8) -> float:
    """Mean cross-entropy (nats/token) over the scored tokens of ``examples``."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    ordered = sorted(examples, key=lambda e: len(e.ids))
    for start in range(0, len(ordered), batch):
        x, y = collate(ordered[start : start + batch], pad)
        logits, _ = model(x.to(device))
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), y.to(device).reshape(-1), ignore_index=-100, reduction="sum"
        )
        total += float(loss)
        count += int((y != -100).sum())
    model.train(was_training)
    return total / max(1, count)


# ---------------------------------------------------------------------------------------------- training


def initial_model(args: argparse.Namespace, tokens: Tokens, device: torch.device) -> tuple[GPT, Any, str]:
    """The model to train (warm-started from ``--init`` with its vocabulary extended) and its tokenizer."""
    from dataclasses import replace

    from engine.symbolic.tokenizer import make_tokenizer
    from engine.symbolic.weights import load_symbolic

    if args.init == "none":
        tokenizer = make_tokenizer()
        config = replace(PRESETS[args.preset], vocab_size=Tokens.from_tokenizer(tokenizer).vocab_size)
        return GPT(config).to(device), tokenizer, "none"
    ckpt = find_checkpoint(args.init, kind="midi")
    if ckpt.config.get("task") == "accompany":
        model, tokenizer = load_accompany(ckpt, device)
        return model, tokenizer, ckpt.name
    base, tokenizer = load_symbolic(ckpt, device)
    model = extend_vocabulary(base, Tokens.from_tokenizer(tokenizer).vocab_size, args.seed).to(device)
    return model, tokenizer, ckpt.name


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    training.log_to_console()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    from engine.symbolic.tokenizer import make_tokenizer

    tokens = Tokens.from_tokenizer(make_tokenizer())
    args.out.mkdir(parents=True, exist_ok=True)
    model, tokenizer, init_name = initial_model(args, tokens, device)
    tokens = Tokens.from_tokenizer(tokenizer)
    block = model.config.block_size
    pieces = load_pieces(args.data, tokenizer, tokens, args.out / PIECES_NAME)
    train, val = split_pieces(pieces, args.val_fraction)
    shifts = ShiftTable(tokenizer, tokens.vocab_size)
    val_set = val_examples(val, tokens, args.val_per_piece, block, args.max_bars)
    eval_rng = np.random.default_rng(12345)
    eval_subset = [val_set[i] for i in sorted(eval_rng.permutation(len(val_set))[: args.eval_examples])]
    summary = _summary(args, train, val, val_set)
    log.info(
        "%.2fM parameters (init %s); %d train pieces (%d bars), %d val pieces, %d val examples",
        model.num_parameters() / 1e6, init_name, len(train), summary["train_bars"], len(val), len(val_set),
    )  # fmt: skip
    state: dict[str, Any] = {"step": 0, "examples_seen": 0, "elapsed_s": 0.0, "best_val": float("inf"), "best_step": -1}
    opt = training.optimizer(model, args)
    run = training.Run.start(args, model, opt, state, (0, 1, device, rng), skip=TIED)
    if not run.resumed and "init_val" not in state:
        state["init_val"] = evaluate_examples(model, eval_subset, tokens.pad, device)
        log.info("val loss before training: %.4f", state["init_val"])
    model.train()

    def batch() -> tuple[torch.Tensor, torch.Tensor, int]:
        drawn = draw_examples(train, tokens, rng, args.batch_size, block, args.max_bars)
        x, y = collate([shifts.transpose(e, rng) for e in drawn], tokens.pad)
        return x, y, len(drawn)

    def save(val_loss: float) -> None:
        save_accompany(model, tokenizer, args.out, _extra(args, summary, state, init_name, val_loss))

    def validate() -> float:
        return evaluate_examples(model, eval_subset, tokens.pad, device)

    best = training.train_lm(run, batch, validate, save, training.LogConsole(log), "examples_seen", autocast=False)
    if training.restore_best(model, best, args.out, device):
        _finish(args, model, tokenizer, val_set, tokens, summary, state, init_name, device)
    return 0


def _summary(
    args: argparse.Namespace, train: list[Piece], val: list[Piece], val_set: list[Sequence_]
) -> dict[str, Any]:
    """The data as config.json's ``training`` describes it."""
    return {
        "sources": [str(d.resolve()) for d in args.data],
        "train_pieces": len(train),
        "val_pieces": len(val),
        "train_bars": sum(p.bar_count for p in train),
        "val_bars": sum(p.bar_count for p in val),
        "train_notes": sum(sum(p.notes.get(r, 0) for r in ("soprano", "alto", "tenor", "bass")) for p in train),
        "val_examples": len(val_set),
        "val_scored_tokens": sum(sum(e.loss_mask) for e in val_set),
        "val_fraction": args.val_fraction,
        "val_piece_keys": sorted(p.key for p in val),
    }


def _extra(
    args: argparse.Namespace, summary: dict[str, Any], state: dict[str, Any], init_name: str, val: float
) -> dict[str, Any]:
    return {
        "description": args.description
        or (
            "Writes the parts a region lacks (bass, piano = inner voices, or soprano/alto/tenor/bass voices) under "
            "its own bars: a GPT trained for track infilling on the music21 corpus's multi-part works (mostly Bach "
            "chorales). Non-commercial use only."
        ),
        "training": {
            **summary,
            "init": init_name,
            "steps": state.get("best_step", state["step"]),
            "examples_seen": state.get("best_examples", state["examples_seen"]),
            "minutes": round(state.get("best_elapsed_s", state["elapsed_s"]) / 60, 2),
            "batch_size": args.batch_size,
            "lr": args.lr,
            "max_bars": args.max_bars,
            "transpose_augmentation": list(TRANSPOSE),
            "seed": args.seed,
            "val_loss_before_training": state.get("init_val"),
        },
        "val_loss": val,
        "roles_note": "parts are roles by register: " + ", ".join(f"{r.name} (program {r.program})" for r in ROLES),
    }


def _finish(
    args: argparse.Namespace,
    model: GPT,
    tokenizer: Any,
    val_set: list[Sequence_],
    tokens: Tokens,
    summary: dict[str, Any],
    state: dict[str, Any],
    init_name: str,
    device: torch.device,
) -> None:
    """Score the best weights (loaded in ``model``) on every val example and store that figure in config.json."""
    full = evaluate_examples(model, val_set, tokens.pad, device)
    extra = _extra(args, summary, state, init_name, full)
    extra["val_loss_subset"] = state["best_val"]
    extra["training"]["total_steps_run"] = state["step"]
    save_accompany(model, tokenizer, args.out, extra)
    training.append_log(args.out, {"final": True, "best_step": state["best_step"], "val_loss_full": full})
    log.info("best step %d: val loss %.4f nats/token on %d val examples", state["best_step"], full, len(val_set))


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
