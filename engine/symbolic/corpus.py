"""Turn the music21 corpus into a cached folder of MIDI files for training.

``python -m engine.symbolic.corpus --out data/corpus --max-minutes 20``

- Works come from ``music21.corpus.getCorePaths()``; opus files (Essen, O'Neill, Ryan ABC) are split into works.
  Palestrina is skipped (its files reserve rights).
- Multi-part repertories and folk collections are parsed in interleaved priority order (multi-part works get
  about 60% of the parsing time) so a time-bounded run still covers many collections and meters.
- Each part gets its own General MIDI program, drawn (seeded per piece) from ensemble presets, because miditok
  merges tracks that share a program. Each piece gets a random plausible tempo and per-part velocities.
- About 30% of pieces also get a copy ``<piece>__drums.mid`` with a SYNTHETIC rule-based drum track (the corpus
  has no drums); the manifest marks these copies as synthetic.
- Incremental and resumable: sources already marked done in ``manifest.json`` are not parsed again; every file
  (MIDI and manifest) is written to a temporary file and then renamed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import re
import time
from collections import deque
from pathlib import Path
from typing import Any

from symusic.core import NoteTick, ScoreTick, TempoTick, TimeSignatureTick, TrackTick

from engine.atomic import write_with
from engine.checkpoints import write_json_atomic
from engine.symbolic.drums import drum_track
from engine.symbolic.tokenizer import TIME_SIGNATURES

log = logging.getLogger(__name__)

TICKS_PER_QUARTER = 480
DRUM_FRACTION = 0.3
MANIFEST_NAME = "manifest.json"
SKIPPED = {"palestrina", "theoryExercises", "nottingham-dataset", "demos"}
FOLK = ["essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "miscFolk"]
MULTIPART = [
    "bach",
    "beethoven",
    "haydn",
    "mozart",
    "monteverdi",
    "trecento",
    "josquin",
    "corelli",
    "schumann_robert",
    "schumann_clara",
    "schubert",
    "ciconia",
    "luca",
    "lusitano",
    "cpebach",
    "handel",
    "weber",
    "beach",
    "chopin",
    "joplin",
    "verdi",
    "webern",
    "schoenberg",
    "johnson_j_r",
    "liliuokalani",
    "leadSheet",
]
MULTIPART_SHARE = 0.6
LICENCES = {
    "essenFolksong": "Essen folksong database: permission for non-commercial distribution and use in music21 "
    "(music21/corpus/essenFolksong/license.txt)",
}
DEFAULT_LICENCE = (
    "music21 corpus: distributed with the encoders' permission; some encodings are for non-commercial use only "
    "(music21/corpus/license.txt and licences embedded in the files)"
)

# Ensemble presets, top voice first; the last entry goes to the lowest part.
ENSEMBLES: dict[str, list[int]] = {
    "strings": [40, 41, 42, 43],
    "brass": [56, 60, 57, 58],
    "woodwinds": [73, 68, 71, 70],
    "choir_organ": [52, 53, 54, 19],
    "saxes": [65, 64, 66, 67],
    "piano_bass": [0, 4, 32],
    "pop_band": [80, 0, 24, 33],
    "pop_keys": [4, 25, 88, 34],
    "band_strings": [73, 48, 27, 32],
    "guitars": [25, 24, 27, 33],
}
SOLO = [0, 4, 24, 25, 40, 56, 65, 68, 71, 73, 21, 22, 80, 81, 11, 46, 105, 110]
EXTRA = [1, 5, 6, 11, 12, 16, 26, 29, 35, 44, 45, 46, 49, 61, 69, 72, 74, 75, 89, 90, 105]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "work"


def _collection(rel: str) -> str:
    return rel.split("/", 1)[0]


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def _supported(numerator: int, denominator: int) -> bool:
    return numerator in TIME_SIGNATURES.get(denominator, [])


def schedule(rel_paths: list[str]) -> list[str]:
    """Order sources: multi-part and folk queues interleaved, round-robin over collections within each."""

    def round_robin(names: list[str]) -> deque[str]:
        queues = [deque(sorted(p for p in rel_paths if _collection(p) == n)) for n in names]
        out: deque[str] = deque()
        while any(queues):
            for q in queues:
                if q:
                    out.append(q.popleft())
        return out

    known = set(MULTIPART) | set(FOLK) | SKIPPED
    others = sorted({_collection(p) for p in rel_paths} - known)
    return list(round_robin(MULTIPART + others)) + list(round_robin(FOLK))


def _part_notes(part: Any) -> list[tuple[int, int, int]]:
    """(start_tick, duration_ticks, pitch) for every sounding note of a music21 part, ties merged."""
    notes: list[list[int]] = []
    open_ties: dict[int, int] = {}
    for el in part.flatten().notes:
        ql = float(el.quarterLength)
        if ql <= 0 or el.duration.isGrace:
            continue
        start = round(float(el.offset) * TICKS_PER_QUARTER)
        end = round((float(el.offset) + ql) * TICKS_PER_QUARTER)
        pitches = [p.midi for p in el.pitches] if el.isChord else [el.pitch.midi]
        tie = el.tie.type if el.tie is not None else None
        for pitch in pitches:
            if tie in ("stop", "continue") and pitch in open_ties:
                idx = open_ties[pitch]
                notes[idx][1] = end - notes[idx][0]
            else:
                notes.append([start, end - start, pitch])
                idx = len(notes) - 1
            if tie in ("start", "continue"):
                open_ties[pitch] = idx
            else:
                open_ties.pop(pitch, None)
    return [(s, d, p) for s, d, p in notes if d > 0 and 0 <= p <= 127]


def _time_signatures(work: Any) -> list[tuple[int, int, int]] | None:
    """(tick, numerator, denominator) changes, or None when the work uses a meter the vocabulary lacks."""
    from music21 import meter

    first = work.parts[0] if work.parts else work
    found: list[tuple[int, int, int]] = []
    for ts in first.flatten().getElementsByClass(meter.TimeSignature):
        tick = round(float(ts.offset) * TICKS_PER_QUARTER)
        if not _supported(ts.numerator, ts.denominator):
            return None
        if found and found[-1][0] == tick:
            found[-1] = (tick, ts.numerator, ts.denominator)
        elif not found or found[-1][1:] != (ts.numerator, ts.denominator):
            found.append((tick, ts.numerator, ts.denominator))
    if not found or found[0][0] != 0:
        found.insert(0, (0, found[0][1], found[0][2]) if found else (0, 4, 4))
    return found


def choose_programs(n_parts: int, rng: random.Random) -> tuple[str, list[int]]:
    """Distinct GM programs for ``n_parts`` parts (top to bottom), from a randomly chosen ensemble."""
    if n_parts == 1:
        return "solo", [rng.choice(SOLO)]
    name = rng.choice(sorted(ENSEMBLES))
    preset = ENSEMBLES[name]
    if n_parts <= len(preset):
        programs = preset[: n_parts - 1] + [preset[-1]]
    else:
        pool = [p for p in EXTRA + SOLO if p not in preset]
        rng.shuffle(pool)
        programs = preset[:-1] + pool[: n_parts - len(preset)] + [preset[-1]]
    return name, programs


def work_to_score(work: Any, key: str) -> tuple[ScoreTick, dict[str, Any]] | None:
    """Build a MIDI score from one music21 work, or None when it is empty or in an unsupported meter."""
    rng = random.Random(_seed(key))
    time_sigs = _time_signatures(work)
    if time_sigs is None:
        return None
    parts = list(work.parts) if work.parts else [work]
    part_notes = [n for n in (_part_notes(p) for p in parts) if n]
    if not part_notes:
        return None
    part_notes.sort(key=lambda ns: -sum(p for _, _, p in ns) / len(ns))  # top voice first
    ensemble, programs = choose_programs(len(part_notes), rng)
    tempo = float(rng.randint(60, 180))
    score = ScoreTick(TICKS_PER_QUARTER)
    score.tempos.append(TempoTick(0, tempo))
    for tick, num, den in time_sigs:
        score.time_signatures.append(TimeSignatureTick(tick, num, den))
    for notes, program in zip(part_notes, programs, strict=True):
        track = TrackTick(f"Part program {program}", program, False)
        base = rng.randint(55, 110)
        for start, duration, pitch in notes:
            velocity = max(1, min(127, base + rng.randint(-10, 10)))
            track.notes.append(NoteTick(start, duration, pitch, velocity))
        score.tracks.append(track)
    info = {
        "parts": len(part_notes),
        "programs": programs,
        "ensemble": ensemble,
        "tempo_bpm": tempo,
        "time_signatures": [f"{n}/{d}" for _, n, d in time_sigs],
        "notes": sum(len(n) for n in part_notes),
        "drums_seed": rng.random() < DRUM_FRACTION,
    }
    return score, info


def _dump_atomic(score: ScoreTick, path: Path) -> None:
    write_with(path, lambda tmp: score.dump_midi(str(tmp)))


def _works(parsed: Any) -> list[Any]:
    from music21 import stream

    if isinstance(parsed, stream.Opus):
        return list(parsed.scores)
    return [parsed]


def convert_source(corpus_root: Path, rel: str, out_dir: Path) -> dict[str, dict[str, Any]]:
    """Parse one corpus file and write its works; returns manifest entries keyed by output path."""
    from music21 import converter

    entries: dict[str, dict[str, Any]] = {}
    parsed = converter.parse(str(corpus_root / rel))
    collection = _collection(rel)
    works = _works(parsed)
    stem = _slug(str(Path(rel).with_suffix("")).replace("/", "_"))
    for index, work in enumerate(works):
        name = stem if len(works) == 1 else f"{stem}_{index:04d}"
        key = f"{collection}/{name}"
        try:
            built = work_to_score(work, key)
        except Exception as e:  # noqa: BLE001 - one bad work must not stop the corpus
            log.warning("skipping work %d of %s: %s", index, rel, e)
            continue
        if built is None:
            continue
        score, info = built
        title = getattr(work.metadata, "title", None) if work.metadata is not None else None
        composer = getattr(work.metadata, "composer", None) if work.metadata is not None else None
        common = {
            "source": f"music21/corpus/{rel}",
            "work_index": index,
            "collection": collection,
            "composer": composer,
            "title": title,
            "licence": LICENCES.get(collection, DEFAULT_LICENCE),
        }
        with_drums = info.pop("drums_seed")
        target = out_dir / f"{key}.mid"
        if not target.exists():
            _dump_atomic(score, target)
        entries[f"{key}.mid"] = {**common, **info, "drums": None}
        if with_drums:
            drum_rng = random.Random(_seed(key + "/drums"))
            end_tick = max(n.end for t in score.tracks for n in t.notes)
            sigs = [(ts.time, ts.numerator, ts.denominator) for ts in score.time_signatures]
            drummed = score.copy()
            drummed.tracks.append(drum_track(sigs, end_tick, drum_rng, TICKS_PER_QUARTER))
            drum_target = out_dir / f"{key}__drums.mid"
            if not drum_target.exists():
                _dump_atomic(drummed, drum_target)
            entries[f"{key}__drums.mid"] = {
                **common,
                **info,
                "drums": "SYNTHETIC: rule-based kick/snare/hat pattern added by engine/symbolic/corpus.py; "
                "not part of the source",
            }
    return entries


def _load_manifest(path: Path) -> dict[str, Any]:
    if path.is_file():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {
        "description": "MIDI files made from the music21 corpus by engine/symbolic/corpus.py",
        "licence": DEFAULT_LICENCE + ". Trained weights inherit the non-commercial restriction.",
        "synthetic_drums": "files named *__drums.mid carry a rule-based drum track that is not in the source",
        "sources_done": {},
        "files": {},
    }


def build_corpus(out_dir: Path, max_minutes: float | None = None) -> dict[str, Any]:
    """Convert corpus sources in priority order until done or ``max_minutes`` have passed."""
    from music21 import corpus

    corpus_root = Path(corpus.__file__).resolve().parent
    rels = [
        str(Path(p).resolve().relative_to(corpus_root))
        for p in corpus.getCorePaths()
        if _collection(str(Path(p).resolve().relative_to(corpus_root))) not in SKIPPED
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST_NAME
    manifest = _load_manifest(manifest_path)
    todo = [r for r in schedule(rels) if r not in manifest["sources_done"]]
    multi = deque(r for r in todo if _collection(r) not in FOLK)
    folk = deque(r for r in todo if _collection(r) in FOLK)
    spent = {"multi": 0.0, "folk": 0.0}
    started = last_save = time.monotonic()
    log.info("%d sources to convert (%d done before)", len(todo), len(manifest["sources_done"]))
    while multi or folk:
        if max_minutes is not None and time.monotonic() - started > max_minutes * 60:
            log.info("time limit of %.1f minutes reached", max_minutes)
            break
        take_multi = bool(multi) and (
            not folk or spent["multi"] * (1 - MULTIPART_SHARE) <= spent["folk"] * MULTIPART_SHARE
        )
        rel = multi.popleft() if take_multi else folk.popleft()
        t0 = time.monotonic()
        try:
            entries = convert_source(corpus_root, rel, out_dir)
        except Exception as e:  # noqa: BLE001 - log and continue with the next source
            log.warning("cannot convert %s: %s", rel, e)
            entries = {}
        spent["multi" if take_multi else "folk"] += time.monotonic() - t0
        manifest["files"].update(entries)
        manifest["sources_done"][rel] = len(entries)
        log.info("%s: %d files (%.1fs)", rel, len(entries), time.monotonic() - t0)
        if time.monotonic() - last_save > 30:
            write_json_atomic(manifest_path, manifest)
            last_save = time.monotonic()
    write_json_atomic(manifest_path, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the MIDI files and manifest.json")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop starting new sources after this")
    parser.add_argument("--workers", type=int, default=1, help="only 1 is supported (music21 parsing is serial)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.workers != 1:
        log.warning("--workers %d: this version parses with one process", args.workers)
    manifest = build_corpus(args.out, args.max_minutes)
    files = manifest["files"]
    drums = sum(1 for f in files.values() if f.get("drums"))
    print(f"{len(files)} MIDI files ({drums} with synthetic drums) from {len(manifest['sources_done'])} sources")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
