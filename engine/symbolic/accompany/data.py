"""More multi-part works for the accompany model: the music21 sources that ``data/corpus`` did not convert.

``python -m engine.symbolic.accompany.data --out data/accompany/corpus --skip-done data/corpus/manifest.json``

:mod:`engine.symbolic.corpus` converts the corpus in a time-bounded, interleaved order, so a run of a few minutes
leaves most Bach chorales out. This converts every multi-part source (Bach first) that the given manifest does
not list, with the same conversion (:func:`engine.symbolic.corpus.convert_source`: programs, tempo, velocities),
into its own folder with its own ``manifest.json``. Resumable: sources already done there are skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from engine.checkpoints import write_json_atomic
from engine.symbolic.corpus import MANIFEST_NAME, MULTIPART, _collection, convert_source

log = logging.getLogger(__name__)


def convert_multipart(out: Path, skip_done: Path | None, max_minutes: float | None = None) -> dict[str, Any]:
    from music21 import corpus

    root = Path(corpus.__file__).resolve().parent
    done: dict[str, Any] = {}
    if skip_done is not None and skip_done.is_file():
        done = json.loads(skip_done.read_text())["sources_done"]
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST_NAME
    manifest: dict[str, Any] = (
        json.loads(manifest_path.read_text())
        if manifest_path.is_file()
        else {
            "description": "multi-part works of the music21 corpus, by engine/symbolic/accompany/data.py",
            "licence": "music21 corpus: non-commercial use (music21/corpus/license.txt); weights inherit it",
            "sources_done": {},
            "files": {},
        }
    )
    rels = [str(Path(p).resolve().relative_to(root)) for p in corpus.getCorePaths()]
    todo = [r for r in rels if _collection(r) in MULTIPART and r not in done and r not in manifest["sources_done"]]
    todo.sort(key=lambda r: (not r.startswith("bach/"), r))
    started = time.monotonic()
    for n, rel in enumerate(todo):
        if max_minutes is not None and time.monotonic() - started > 60 * max_minutes:
            log.info("time limit reached")
            break
        try:
            entries = convert_source(root, rel, out)
        except Exception as e:  # noqa: BLE001 - one bad source must not stop the rest
            log.warning("cannot convert %s: %s", rel, e)
            entries = {}
        manifest["files"].update(entries)
        manifest["sources_done"][rel] = len(entries)
        if n % 20 == 0:
            write_json_atomic(manifest_path, manifest)
            log.info("%d/%d %s", n + 1, len(todo), rel)
    write_json_atomic(manifest_path, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--skip-done", type=Path, default=None, help="a corpus manifest whose sources to skip")
    parser.add_argument("--max-minutes", type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    manifest = convert_multipart(args.out, args.skip_done, args.max_minutes)
    print(f"{len(manifest['files'])} MIDI files from {len(manifest['sources_done'])} sources")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
