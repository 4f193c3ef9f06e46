"""Token sets for training: a folder of MIDI files -> cached ``train.npy`` / ``val.npy`` token streams.

Each piece is encoded with the tokenizer of :mod:`engine.symbolic.tokenizer` into one time-ordered stream and
prefixed with ``BOS_None``; the pieces are concatenated into ``uint16`` streams. The split is by piece and
deterministic (a hash of the relative path). Augmented copies named ``<piece>__<variant>.mid`` (for instance
the ``__drums`` copies made by :mod:`engine.symbolic.corpus`) land on the same side as their piece.

Batches are random windows of ``block_size + 1`` tokens (as in nanoGPT), optionally transposed by -5..+6
semitones: ``Pitch_`` tokens shift, ``PitchDrum_`` tokens do not, and shifts that would leave the pitch range
of the vocabulary are not drawn for that window.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from miditok import REMI

from engine.atomic import write_with
from engine.checkpoints import write_json_atomic
from engine.errors import BadInputError

log = logging.getLogger(__name__)

META_NAME = "meta.json"
MIDI_SUFFIXES = {".mid", ".midi"}
TRANSPOSE_RANGE = (-5, 6)  # semitones, inclusive


def vocab_hash(tokenizer: REMI) -> str:
    """A short hash of the vocabulary (token -> id), to detect a token cache made with another vocabulary."""
    items = sorted(tokenizer.vocab.items(), key=lambda kv: kv[1])
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def piece_key(rel_path: str) -> str:
    """The piece a file belongs to: its relative path without suffix and without a ``__variant`` ending."""
    stem = re.sub(r"\.(mid|midi)$", "", rel_path, flags=re.IGNORECASE)
    return stem.split("__", 1)[0]


def is_val(rel_path: str, val_fraction: float) -> bool:
    digest = hashlib.sha256(piece_key(rel_path).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < val_fraction


def find_midi_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())


def encode_file(tokenizer: REMI, path: Path) -> list[int]:
    """Token ids of one MIDI file (without BOS); empty when the file has no notes."""
    from symusic import Score

    seq = tokenizer.encode(Score(str(path)))
    if isinstance(seq, list):  # a tokenizer with one stream per track: concatenate
        return [i for s in seq for i in s.ids]
    return list(seq.ids)


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    write_with(path, lambda tmp: np.save(tmp, array))


def build_token_cache(
    data_dir: Path,
    cache_dir: Path,
    tokenizer: REMI,
    val_fraction: float = 0.05,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Tokenize every MIDI file under ``data_dir`` into ``cache_dir`` (reused when files and vocabulary match).

    Returns the cache's meta data. Raises :class:`BadInputError` when no file yields tokens.
    """
    if not data_dir.is_dir():
        raise BadInputError(f"training data folder {data_dir} does not exist: pass a folder of .mid files")
    files = find_midi_files(data_dir)
    listing = [[str(p.relative_to(data_dir)), p.stat().st_size] for p in files]
    signature = hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:16]
    meta_path = cache_dir / META_NAME
    vhash = vocab_hash(tokenizer)
    if meta_path.is_file():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        if meta.get("vocab_hash") == vhash and meta.get("files_signature") == signature:
            log.info("reusing token cache %s", cache_dir)
            return meta
    bos = tokenizer.vocab["BOS_None"]
    streams: dict[str, list[np.ndarray]] = {"train": [], "val": []}
    entries = []
    for n, path in enumerate(files):
        rel = str(path.relative_to(data_dir))
        try:
            ids = encode_file(tokenizer, path)
        except Exception as e:  # noqa: BLE001 - a broken file is skipped, not fatal
            log.warning("skipping unreadable MIDI file %s: %s", path, e)
            ids = []
        if progress is not None:
            progress(n + 1, len(files))
        if not ids:
            log.warning("skipping %s: no notes", path)
            continue
        split = "val" if is_val(rel, val_fraction) else "train"
        streams[split].append(np.asarray([bos, *ids], dtype=np.uint16))
        entries.append({"path": rel, "tokens": len(ids) + 1, "split": split})
    if not entries:
        raise BadInputError(
            f"no usable MIDI files under {data_dir} ({len(files)} .mid/.midi files found, none with notes); "
            "point --data at a folder of MIDI files"
        )
    if not streams["val"]:  # tiny folders: move the last piece to validation so a val loss exists
        streams["val"].append(streams["train"].pop())
        entries[-1]["split"] = "val"
    if not streams["train"]:
        streams["train"] = list(streams["val"])
    cache_dir.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.concatenate(v) for k, v in streams.items()}
    for split, array in arrays.items():
        _save_npy_atomic(cache_dir / f"{split}.npy", array)
    vocab = tokenizer.vocab
    pitch_ids = {i for t, i in vocab.items() if t.startswith("Pitch_")}
    train = arrays["train"]
    meta = {
        "source_dir": str(data_dir.resolve()),
        "vocab_size": len(tokenizer),
        "vocab_hash": vhash,
        "files_signature": signature,
        "val_fraction": val_fraction,
        "train_tokens": int(train.size),
        "val_tokens": int(arrays["val"].size),
        "train_files": sum(1 for e in entries if e["split"] == "train"),
        "val_files": sum(1 for e in entries if e["split"] == "val"),
        "train_notes": int(np.isin(train, list(pitch_ids | _drum_ids(vocab))).sum()),
        "skipped_files": len(files) - len(entries),
        "files": entries,
    }
    write_json_atomic(meta_path, meta)
    log.info("token cache: %d train / %d val tokens", meta["train_tokens"], meta["val_tokens"])
    return meta


def _drum_ids(vocab: dict[str, int]) -> set[int]:
    return {i for t, i in vocab.items() if t.startswith("PitchDrum_")}


def transposition_table(tokenizer: REMI) -> tuple[np.ndarray, dict[int, int]]:
    """``pitch_of[id]`` (the pitch of a ``Pitch_`` token, -1 for others) and ``id_of[pitch]``."""
    pitch_of = np.full(len(tokenizer), -1, dtype=np.int32)
    id_of: dict[int, int] = {}
    for token, idx in tokenizer.vocab.items():
        if token.startswith("Pitch_"):
            pitch = int(token.split("_", 1)[1])
            pitch_of[idx] = pitch
            id_of[pitch] = idx
    return pitch_of, id_of


def shifted_ids(id_of: dict[int, int], vocab_size: int, shifts: tuple[int, int]) -> np.ndarray:
    """Row ``s - shifts[0]`` for each shift ``s`` in ``shifts`` (inclusive): every token id, the ``Pitch_`` ones
    (``id_of[pitch]``) moved by ``s`` semitones where the vocabulary has the pitch they land on."""
    lo, hi = min(id_of), max(id_of)
    rows = range(shifts[0], shifts[1] + 1)
    shifted = np.tile(np.arange(vocab_size, dtype=np.int64), (len(rows), 1))
    for row, s in enumerate(rows):
        for pitch, idx in id_of.items():
            if lo <= pitch + s <= hi:
                shifted[row, idx] = id_of[pitch + s]
    return shifted


def draw_shift(
    pitches: np.ndarray, lowest: int, highest: int, shifts: tuple[int, int], rng: np.random.Generator
) -> int:
    """A random transposition in ``shifts`` (semitones, inclusive) that keeps ``pitches`` (-1: not a pitch, left
    out) within ``lowest..highest``; 0 when there is no pitch or no such shift (then ``rng`` is not drawn from)."""
    pitches = pitches[pitches >= 0]
    if pitches.size == 0:
        return 0
    low = max(shifts[0], lowest - int(pitches.min()))
    high = min(shifts[1], highest - int(pitches.max()))
    return int(rng.integers(low, high + 1)) if high >= low else 0


@dataclass
class TokenSet:
    """The cached streams plus batch sampling with transposition."""

    train: np.ndarray
    val: np.ndarray
    meta: dict[str, Any]
    pitch_of: np.ndarray
    shifted: np.ndarray  # [n_shifts, vocab]: id after each shift (identity for non-pitch tokens)
    pitch_min: int
    pitch_max: int

    @classmethod
    def load(cls, cache_dir: Path, tokenizer: REMI) -> TokenSet:
        meta_path = cache_dir / META_NAME
        if not meta_path.is_file():
            raise BadInputError(f"{cache_dir} is not a token cache (no {META_NAME}); build it from a MIDI folder")
        meta = json.loads(meta_path.read_text())
        if meta.get("vocab_hash") != vocab_hash(tokenizer):
            raise BadInputError(f"token cache {cache_dir} was made with another vocabulary; delete it and rebuild")
        train = np.load(cache_dir / "train.npy", mmap_mode="r")
        val = np.load(cache_dir / "val.npy", mmap_mode="r")
        pitch_of, id_of = transposition_table(tokenizer)
        shifted = shifted_ids(id_of, len(tokenizer), TRANSPOSE_RANGE)
        return cls(train, val, meta, pitch_of, shifted, min(id_of), max(id_of))

    def transpose(self, window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Shift the ``Pitch_`` tokens of ``window`` by a random allowed number of semitones."""
        shift = draw_shift(self.pitch_of[window], self.pitch_min, self.pitch_max, TRANSPOSE_RANGE, rng)
        if shift == 0:
            return window
        out: np.ndarray = self.shifted[shift - TRANSPOSE_RANGE[0]][window]
        return out

    def batch(
        self, split: str, batch_size: int, block_size: int, rng: np.random.Generator, transpose: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows: inputs ``x`` [B, T] and next-token targets ``y`` [B, T] (int64)."""
        data = self.train if split == "train" else self.val
        if data.size < 2:
            raise BadInputError("the token stream is too short to train on; add more MIDI files")
        span = min(block_size + 1, int(data.size))
        starts = rng.integers(0, data.size - span + 1, size=batch_size)
        rows = []
        for s in starts:
            window = np.asarray(data[s : s + span], dtype=np.int64)
            rows.append(self.transpose(window, rng) if transpose else window)
        stacked = torch.from_numpy(np.stack(rows))
        return stacked[:, :-1].contiguous(), stacked[:, 1:].contiguous()

    def eval_windows(self, block_size: int, max_windows: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Consecutive non-overlapping windows of the untransposed val stream; together they predict every
        val token after the first exactly once (or an evenly spaced subset when ``max_windows`` is given)."""
        data = self.val
        starts = list(range(0, int(data.size) - 1, block_size))
        if max_windows is not None and len(starts) > max_windows:
            step = len(starts) / max_windows
            starts = [starts[int(i * step)] for i in range(max_windows)]
        out = []
        for s in starts:
            window = torch.from_numpy(np.asarray(data[s : s + block_size + 1], dtype=np.int64))
            out.append((window[:-1].unsqueeze(0), window[1:].unsqueeze(0)))
        return out
