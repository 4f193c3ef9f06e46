"""A fourth held-out set for bench/bench_midi_quality.py (``--set openmsx-rest``): the OpenMSX songs the
``openmsx`` set left out for its per-composer limit.

    python bench/openmsx_rest_set.py    # build bench/data/midi_quality/openmsx_rest/ (apt-get install openttd-openmsx)

bench/openmsx_set.py takes at most 4 songs per composer (file-name order); the other songs by Jim Redfarn, Tistou
Blomberg and imuh3 were never cut. This cuts them by the same rule (:func:`openmsx_set.build`: the first 4-bar
phrase with two pitched parts followed by 8 bars of them, in one meter). It was built in session 5 to be the
untouched check of that session's changes to the candidates' choice: no setting was chosen on it, and its figures
were read once, after the settings were fixed (docs/symbolic-engine.md, "Choosing candidates by the region's
self-similarity").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import openmsx_set  # noqa: E402
from lmms_set import save_score, save_set, set_file_name  # noqa: E402

SET_DIR = ROOT / "bench" / "data" / "midi_quality" / "openmsx_rest"


def main() -> int:
    if not openmsx_set.SOURCE.is_dir():
        raise SystemExit(f"{openmsx_set.SOURCE} is missing: install Debian's {openmsx_set.PACKAGE}")
    taken = json.loads((openmsx_set.SET_DIR / "manifest.json").read_text())
    credits = openmsx_set.catalogue()
    SET_DIR.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "description": "game music (the OpenMSX songs bench/openmsx_set.py left out for its per-composer limit) for "
        "bench/bench_midi_quality.py --set openmsx-rest, built by bench/openmsx_rest_set.py; an evaluation set, "
        "nothing is tuned on it",
        "licence": openmsx_set.LICENCE,
        "pieces": {},
        "left_out": {},
    }
    for name, credit in credits.items():
        if set_file_name(name) in taken["pieces"]:
            continue  # in the openmsx set
        built = openmsx_set.build(openmsx_set.SOURCE / name)
        if isinstance(built, str):
            manifest["left_out"][name] = {**credit, "why": built}
            print(f"skip {name}: {built}")  # noqa: T201
            continue
        score, meta = built
        out_name = set_file_name(name)
        save_score(score, SET_DIR / out_name)
        manifest["pieces"][out_name] = {**credit, "licence": openmsx_set.LICENCE, **meta}
        print(f"{out_name}: bar {meta['start_bar']}, {meta['meter']}, {len(meta['parts'])} parts")  # noqa: T201
    text = openmsx_set.readme(manifest).replace("--set openmsx`", "--set openmsx-rest`")
    text = text.replace("Built by `bench/openmsx_set.py`", "Built by `bench/openmsx_rest_set.py`")
    text = text.replace("(`python bench/openmsx_set.py` rebuilds", "(`python bench/openmsx_rest_set.py` rebuilds")
    text = text.replace(
        f"At most {openmsx_set.PER_COMPOSER} pieces per composer, in file-name order.",
        f"The songs `bench/openmsx_set.py` left out for its limit of {openmsx_set.PER_COMPOSER} per composer: all "
        "of them.",
    )
    save_set(SET_DIR, manifest, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
