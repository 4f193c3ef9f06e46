"""The second OpenMSX held-out set (bench/openmsx_rest_set.py, ``bench_midi_quality.py --set openmsx-rest``): the
songs the ``openmsx`` set left out for its per-composer limit, none of them in that set, each loading and splitting
as the bench expects.

Material: the committed excerpts in bench/data/midi_quality/openmsx_rest/, cut from OpenMSX 0.4.2, OpenTTD's
General MIDI songs as Debian's openttd-openmsx installs them (GPL-2.0, /usr/share/doc/openttd-openmsx/copyright;
composers in that folder's README.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import bench_midi_quality  # noqa: E402
import openmsx_rest_set  # noqa: E402
import openmsx_set  # noqa: E402

MANIFEST = json.loads((openmsx_rest_set.SET_DIR / "manifest.json").read_text())
PIECES = list(MANIFEST["pieces"].items())


def test_the_set_holds_the_songs_the_first_set_left_out_for_its_limit_and_none_of_its_own() -> None:
    first = json.loads((openmsx_set.SET_DIR / "manifest.json").read_text())
    limited = {name for name, meta in first["left_out"].items() if "already" in meta["why"]}
    assert {name for name, _ in PIECES} == limited
    assert not set(MANIFEST["pieces"]) & set(first["pieces"])
    readme = (openmsx_rest_set.SET_DIR / "README.md").read_text()
    for name, meta in PIECES:
        assert meta["composer"] and meta["licence"].startswith("GPL-2.0")
        assert f"| {name} | {meta['title']} | {meta['composer']} |" in readme


@pytest.mark.parametrize(("name", "meta"), PIECES, ids=[name for name, _ in PIECES])
def test_a_piece_splits_into_four_region_bars_and_the_composers_next_eight(
    name: str, meta: dict[str, Any], tmp_path: Path
) -> None:
    region, region_content, reference, _ = bench_midi_quality.load_piece(
        openmsx_rest_set.SET_DIR / name, meta, tmp_path
    )
    assert region.length_bars == 4 and (meta["region_bars"], meta["reference_bars"]) == (4, 8)
    assert region_content.notes and reference.notes
    assert {n.channel for n in reference.notes} <= {n.channel for n in region_content.notes}
