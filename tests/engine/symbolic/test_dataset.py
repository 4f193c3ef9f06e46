"""Token caches: deterministic piece-level split, skipping bad files, batches and transposition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import symusic

from engine.errors import BadInputError
from engine.symbolic.dataset import TokenSet, build_token_cache, is_val, piece_key
from engine.symbolic.tokenizer import make_tokenizer


def write_piece(path: Path, seed: int, bars: int = 8, drums: bool = False) -> Path:
    """A two-part (plus optional drums) 4/4 piece at 480 ticks per quarter."""
    rng = np.random.default_rng(seed)
    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, 110.0))
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    for program, low in ((0, 60), (33, 36)):
        track = symusic.Track(name=f"p{program}", program=program, is_drum=False)
        for beat in range(bars * 4):
            track.notes.append(symusic.Note(beat * 480, 480, int(low + rng.integers(0, 12)), 80))
        score.tracks.append(track)
    if drums:
        kit = symusic.Track(name="drums", program=0, is_drum=True)
        for beat in range(bars * 4):
            kit.notes.append(symusic.Note(beat * 480, 120, 36 if beat % 2 == 0 else 38, 90))
        score.tracks.append(kit)
    path.parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(path))
    return path


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return make_tokenizer()


def test_piece_key_groups_augmented_copies() -> None:
    assert piece_key("bach/bwv1.6__drums.mid") == piece_key("bach/bwv1.6.mid") == "bach/bwv1.6"
    keys = [f"coll/piece{i}" for i in range(400)]
    for k in keys:
        assert is_val(k + ".mid", 0.2) == is_val(k + "__drums.mid", 0.2)
    share = sum(is_val(k + ".mid", 0.2) for k in keys) / len(keys)
    assert 0.1 < share < 0.3


def test_cache_split_skip_and_reuse(tmp_path: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "midi"
    for i in range(12):
        write_piece(data / "a" / f"p{i}.mid", i)
        write_piece(data / "a" / f"p{i}__drums.MIDI", i, drums=True)
    (data / "broken.mid").write_bytes(b"not a midi file")
    meta = build_token_cache(data, tmp_path / "cache", tokenizer, val_fraction=0.3)
    assert meta["skipped_files"] == 1
    assert meta["train_files"] + meta["val_files"] == 24
    sides = {}
    for entry in meta["files"]:
        sides.setdefault(piece_key(entry["path"]), set()).add(entry["split"])
    assert all(len(s) == 1 for s in sides.values())  # drum copies stay with their piece
    train = np.load(tmp_path / "cache" / "train.npy")
    assert train.dtype == np.uint16
    bos = tokenizer.vocab["BOS_None"]
    assert int((train == bos).sum()) == meta["train_files"]
    assert int(train[0]) == bos
    assert meta["train_tokens"] == train.size
    again = build_token_cache(data, tmp_path / "cache", tokenizer, val_fraction=0.3)
    assert again["files_signature"] == meta["files_signature"]


def test_empty_folder_raises(tmp_path: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no usable MIDI"):
        build_token_cache(tmp_path / "empty", tmp_path / "cache", tokenizer)
    with pytest.raises(BadInputError, match="does not exist"):
        build_token_cache(tmp_path / "missing", tmp_path / "cache", tokenizer)


def test_batches_transpose_pitch_but_not_drums(tmp_path: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "midi"
    for i in range(4):
        write_piece(data / f"p{i}__drums.mid", i, drums=True)
    build_token_cache(data, tmp_path / "cache", tokenizer, val_fraction=0.3)
    tokens = TokenSet.load(tmp_path / "cache", tokenizer)
    rng = np.random.default_rng(0)
    x, y = tokens.batch("train", 4, 64, rng)
    assert x.shape == y.shape == (4, 64)
    assert (x[:, 1:] == y[:, :-1]).all()
    inv = {i: t for t, i in tokenizer.vocab.items()}
    window = np.asarray(tokens.train[:200], dtype=np.int64)
    shifted_any = False
    for seed in range(10):
        out = tokens.transpose(window, np.random.default_rng(seed))
        kinds_before = [inv[int(i)].split("_")[0] for i in window]
        kinds_after = [inv[int(i)].split("_")[0] for i in out]
        assert kinds_before == kinds_after
        drums_before = [int(i) for i in window if inv[int(i)].startswith("PitchDrum_")]
        drums_after = [int(i) for i in out if inv[int(i)].startswith("PitchDrum_")]
        assert drums_before == drums_after and drums_before
        deltas = {
            int(inv[int(b)][6:]) - int(inv[int(a)][6:])
            for a, b in zip(window, out, strict=True)
            if inv[int(a)].startswith("Pitch_")
        }
        assert len(deltas) == 1 and -5 <= deltas.pop() <= 6
        shifted_any |= not np.array_equal(out, window)
    assert shifted_any
    windows = tokens.eval_windows(32)
    assert sum(w[1].numel() for w in windows) == tokens.val.size - 1
