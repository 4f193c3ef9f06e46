"""The untouched classical set (bench/classical_rest_set.py, ``bench_midi_quality.py --set classical-rest``): pieces
on the validation side of the model's split that no other set uses, and the passages after the bench's of bench
pieces, each loading and splitting as the bench expects.

Material: the committed excerpts in bench/data/midi_quality/classical_rest/, converted from music21 corpus files
(their sources and licence in the set's manifest.json).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import bench_midi_quality  # noqa: E402
import classical_rest_set  # noqa: E402
import midi_quality_set  # noqa: E402

from engine.symbolic.dataset import is_val  # noqa: E402

MANIFEST = json.loads((classical_rest_set.SET_DIR / "manifest.json").read_text())
PIECES = list(MANIFEST["pieces"].items())


def sources(manifest_path: Path) -> dict[str, dict[str, Any]]:
    pieces: dict[str, dict[str, Any]] = json.loads(manifest_path.read_text())["pieces"]
    return {meta["source"]: meta for meta in pieces.values()}


def test_new_pieces_are_held_out_and_in_no_other_set_and_later_passages_follow_the_benchs() -> None:
    bench = sources(midi_quality_set.SET_DIR / "manifest.json")
    tuning = sources(midi_quality_set.TUNING_DIR / "manifest.json")
    assert len(PIECES) >= 10
    for _, meta in PIECES:
        assert is_val(meta["corpus_key"], midi_quality_set.VAL_FRACTION)  # no bar of it was trained on
        assert meta["source"].startswith("music21/corpus/") and meta["licence"]
        assert meta["source"] not in tuning
        if meta["passage"] == "first":
            assert meta["source"] not in bench
        else:  # the bars right after the bench's region and reference
            first = bench[meta["source"]]
            assert meta["passage"] == "later"
            assert meta["start_bar"] == first["region_bars"] + first["reference_bars"]


def test_every_piece_splits_into_its_region_and_the_composers_next_eight_bars(tmp_path: Path) -> None:
    for name, meta in PIECES:
        loaded = bench_midi_quality.load_piece(classical_rest_set.SET_DIR / name, meta, tmp_path)
        region, region_content, reference = loaded[:3]
        assert region.length_bars == meta["region_bars"] and meta["reference_bars"] == 8, name
        assert region.length_bars == midi_quality_set.region_bars_for(region.meter.quarters_per_bar), name
        assert region_content.notes and reference.notes, name
