"""An n-gram baseline for the symbolic GPT: interpolated Kneser-Ney, fit on a token cache's train stream.

``python -m engine.symbolic.ngram --data TOKEN_CACHE_DIR [--order 4]`` prints the validation loss in nats/token
on the same untransposed val stream (every val token after the first) that :mod:`engine.symbolic.train` scores.

P_k(w | h) = max(c_k(h w) - D_k, 0) / c_k(h) + D_k * N1+(h .) / c_k(h) * P_{k-1}(w | h'), with raw counts at the
highest order, continuation counts (distinct left neighbours) below it, and the uniform distribution at the
bottom; D_k = n1 / (n1 + 2 n2). Everything is vectorised with numpy over packed integer n-gram keys.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import BadInputError

log = logging.getLogger(__name__)

BITS = 9  # bits per token in a packed key (vocabularies up to 512 tokens)
MAX_ORDER = 63 // BITS


def _pack(columns: list[np.ndarray]) -> np.ndarray:
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for col in columns:
        key = (key << BITS) | col.astype(np.int64)
    return key


def _grams(stream: np.ndarray, k: int) -> np.ndarray:
    """Packed keys of every k-gram of ``stream``."""
    n = stream.size - k + 1
    return _pack([stream[j : j + n] for j in range(k)])


@dataclass
class _Level:
    gram_keys: np.ndarray  # sorted unique keys of k-grams
    gram_counts: np.ndarray  # their (raw or continuation) counts
    hist_keys: np.ndarray  # sorted unique keys of (k-1)-token histories
    hist_totals: np.ndarray  # sum of gram counts per history
    hist_types: np.ndarray  # distinct next tokens per history
    discount: float


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at ``query`` keys (0 where absent)."""
    if keys.size == 0:
        return np.zeros(query.shape, dtype=np.float64)
    idx = np.clip(np.searchsorted(keys, query), 0, keys.size - 1)
    found = keys[idx] == query
    return np.where(found, values[idx], 0).astype(np.float64)


def _level(gram_keys: np.ndarray, counts: np.ndarray) -> _Level:
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    discount = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
    hist = gram_keys >> BITS
    hist_keys, start = np.unique(hist, return_index=True)  # gram_keys are sorted, so histories are contiguous
    totals = np.add.reduceat(counts, start) if counts.size else counts
    types = np.diff(np.append(start, counts.size))
    return _Level(gram_keys, counts, hist_keys, totals, types, min(max(discount, 0.05), 0.95))


class NGramModel:
    """Interpolated Kneser-Ney n-gram language model over token ids."""

    def __init__(self, order: int, vocab_size: int) -> None:
        if not 1 <= order <= MAX_ORDER:
            raise ValueError(f"order must be in range 1..{MAX_ORDER}, got {order}")
        if vocab_size > 2**BITS:
            raise ValueError(f"vocab_size must be at most {2**BITS}, got {vocab_size}")
        self.order = order
        self.vocab_size = vocab_size
        self.levels: list[_Level] = []

    def fit(self, stream: np.ndarray) -> NGramModel:
        stream = np.asarray(stream, dtype=np.int64)
        if stream.size < self.order:
            raise BadInputError(f"the train stream has {stream.size} tokens, fewer than the order {self.order}")
        if stream.max() >= self.vocab_size:
            raise BadInputError("the token stream holds ids beyond the vocabulary size; rebuild the token cache")
        levels = []
        for k in range(1, self.order + 1):
            if k == self.order:  # raw counts at the highest order
                keys, counts = np.unique(_grams(stream, k), return_counts=True)
            else:  # continuation counts: distinct tokens seen before each k-gram
                longer = np.unique(_grams(stream, k + 1))
                keys, counts = np.unique(longer & ((1 << (BITS * k)) - 1), return_counts=True)
            levels.append(_level(keys, counts.astype(np.int64)))
        self.levels = levels
        return self

    def prob(self, contexts: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """P(token | context) for each row; ``contexts`` [M, order-1] (left-padded with -1), ``tokens`` [M]."""
        p = np.full(tokens.shape, 1.0 / self.vocab_size)
        for k, level in enumerate(self.levels, start=1):
            hist = contexts[:, contexts.shape[1] - (k - 1) :] if k > 1 else contexts[:, :0]
            valid = (hist >= 0).all(axis=1)
            safe = np.where(hist >= 0, hist, 0)
            hist_key = _pack([safe[:, j] for j in range(k - 1)]) if k > 1 else np.zeros(len(tokens), np.int64)
            gram_key = (hist_key << BITS) | tokens.astype(np.int64)
            total = _lookup(level.hist_keys, level.hist_totals, hist_key)
            types = _lookup(level.hist_keys, level.hist_types, hist_key)
            count = _lookup(level.gram_keys, level.gram_counts, gram_key)
            seen = valid & (total > 0)
            denom = np.where(seen, total, 1.0)
            mixed = np.maximum(count - level.discount, 0) / denom + level.discount * types / denom * p
            p = np.where(seen, mixed, p)
        return p

    def contexts(self, stream: np.ndarray) -> np.ndarray:
        """[len(stream), order-1] preceding tokens of every position (-1 before the start)."""
        stream = np.asarray(stream, dtype=np.int64)
        width = self.order - 1
        if width == 0:
            return np.zeros((stream.size, 0), dtype=np.int64)
        padded = np.concatenate([np.full(width, -1, dtype=np.int64), stream])
        return np.stack([padded[j : j + stream.size] for j in range(width)], axis=1).reshape(stream.size, width)

    def loss(self, stream: np.ndarray, chunk: int = 1_000_000) -> float:
        """Mean negative log-likelihood (nats/token) of every token of ``stream`` after the first."""
        stream = np.asarray(stream, dtype=np.int64)
        ctx = self.contexts(stream)
        total = 0.0
        for start in range(1, stream.size, chunk):
            stop = min(stream.size, start + chunk)
            total -= float(np.log(self.prob(ctx[start:stop], stream[start:stop])).sum())
        return total / max(1, stream.size - 1)

    def distribution(self, context: list[int]) -> np.ndarray:
        """The full next-token distribution [vocab] after ``context`` (its last order-1 tokens are used)."""
        width = self.order - 1
        ctx = ([-1] * width + list(context))[len(context) :] if width else []
        rows = np.tile(np.asarray(ctx, dtype=np.int64), (self.vocab_size, 1)).reshape(self.vocab_size, width)
        return self.prob(rows, np.arange(self.vocab_size))


def evaluate_cache(cache_dir: Path, order: int) -> dict[str, float]:
    """Fit on ``train.npy`` and score ``val.npy`` of a token cache (see :mod:`engine.symbolic.dataset`)."""
    meta_path = cache_dir / "meta.json"
    if not meta_path.is_file():
        raise BadInputError(f"{cache_dir} is not a token cache (no meta.json); train once to build it")
    meta = json.loads(meta_path.read_text())
    train = np.load(cache_dir / "train.npy")
    val = np.load(cache_dir / "val.npy")
    t0 = time.monotonic()
    model = NGramModel(order, int(meta["vocab_size"])).fit(train)
    fit_s = time.monotonic() - t0
    val_loss = model.loss(val)
    log.info("order %d: fit in %.1fs, val loss %.4f nats/token", order, fit_s, val_loss)
    return {
        "order": order,
        "val_loss": val_loss,
        "uniform_loss": math.log(model.vocab_size),
        "train_tokens": int(train.size),
        "val_tokens": int(val.size),
        "fit_seconds": fit_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="token cache folder (train.npy, val.npy)")
    parser.add_argument("--order", type=int, nargs="+", default=[4], help="one or more n-gram orders")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for order in args.order:
        print(json.dumps(evaluate_cache(args.data, order)))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
