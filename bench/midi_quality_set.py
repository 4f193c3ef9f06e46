"""The held-out evaluation set of bench/bench_midi_quality.py: real multi-part pieces the shipped MIDI model never saw.

    python bench/midi_quality_set.py            # rebuild bench/data/midi_quality/ (needs music21: pip install music21)
    python bench/midi_quality_set.py --tuning   # rebuild the tuning set, bench/data/midi_quality/tuning/

Each piece is a music21 corpus file whose converted path falls on the validation side of the training split
(:func:`engine.symbolic.dataset.is_val` on the path :mod:`engine.symbolic.corpus` would give it), so no bar of it
was trained on. It is converted exactly as the training corpus is (:func:`engine.symbolic.corpus.work_to_score`:
one GM program per part, a seeded tempo), shifted so that a pickup bar is a whole bar, and cut to its first
``region_bars + 8`` bars. ``manifest.json`` says where each piece came from and its licence. The set is built once
and committed (about 60 KB), so the bench and the tests need neither music21 nor its parse time.

The **tuning set** (``--tuning``) holds other held-out pieces, never the bench's: settings (the region cache's
order and weights, engine/symbolic/cache.py) are chosen on it, so the bench pieces stay unseen by every choice.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.symbolic.corpus import DEFAULT_LICENCE, TICKS_PER_QUARTER, _collection, _slug, work_to_score  # noqa: E402
from engine.symbolic.dataset import is_val  # noqa: E402

SET_DIR = ROOT / "bench" / "data" / "midi_quality"
REFERENCE_BARS = 8
VAL_FRACTION = 0.05  # the shipped model's split (engine/models/segue-midi-small/config.json)
# (corpus path, what it is): string quartet, orchestral chorale, piano, madrigals, a trecento mass movement,
# Bach chorales and a lead-sheet melody; 6/8, 3/4, 4/4, 2/4 and a pickup bar among them
PIECES = (
    ("haydn/opus1no1/movement1.mxl", "string quartet, 6/8, pickup"),
    ("bach/bwv248.42-4.mxl", "Christmas Oratorio chorale with orchestra, 12 parts, 3/4"),
    ("chopin/mazurka06-2.krn", "piano mazurka, 3/4"),
    ("beach/prayer_of_a_tired_child.musicxml", "song: four voices and piano, 4/4"),
    ("monteverdi/madrigal.3.17.mxl", "five-voice madrigal, 4/4"),
    ("monteverdi/madrigal.4.10.mxl", "five-voice madrigal"),
    ("trecento/PMFC_13_14-Gloria.xml", "four-voice Gloria, 2/4"),
    ("bach/bwv120.6.mxl", "chorale"),
    ("bach/bwv161.6.mxl", "chorale"),
    ("bach/bwv311.mxl", "chorale"),
    ("bach/bwv425.mxl", "chorale"),
    ("leadSheet/fosterBrownHair.mxl", "lead-sheet melody, 4/4"),
)
# Held out from training too, but never measured by the bench: settings are chosen on these
TUNING_DIR = SET_DIR / "tuning"
TUNING_PIECES = (
    ("bach/bwv148.6.mxl", "chorale"),
    ("bach/bwv18.5-lz.mxl", "chorale"),
    ("bach/bwv244.54.mxl", "St Matthew Passion chorale"),
    ("bach/bwv262.mxl", "chorale"),
    ("bach/bwv376.mxl", "chorale"),
    ("bach/bwv420.mxl", "chorale"),
    ("bach/bwv90.5.mxl", "chorale"),
    ("josquin/petiteCamusette.abc", "Josquin chanson"),
    ("monteverdi/madrigal.3.4.mxl", "five-voice madrigal"),
    ("monteverdi/madrigal.4.17.mxl", "five-voice madrigal"),
    ("trecento/PMFC_12_3-Gloria Gherardello.xml", "trecento Gloria"),
    ("trecento/PMFC_23_19-Kyrie Perrinet.xml", "trecento Kyrie"),
)


def region_bars_for(quarters_per_bar: float) -> int:
    """4 bars of 4/4 or longer, 6 bars of 3/4 or 6/8, 8 of shorter bars: a region of 12-16 quarter notes."""
    if quarters_per_bar >= 4:
        return 4
    return 6 if quarters_per_bar >= 3 else 8


def _pickup_quarters(work: Any) -> float:
    parts = list(work.parts) if work.parts else [work]
    measures = parts[0].getElementsByClass("Measure")
    if not measures:
        return 0.0
    return float(measures[0].paddingLeft or 0.0)


def build_piece(rel: str) -> tuple[Any, dict[str, Any]]:
    from music21 import corpus, stream

    key = f"{_collection(rel)}/{_slug(str(Path(rel).with_suffix('')).replace('/', '_'))}"
    if not is_val(f"{key}.mid", VAL_FRACTION):
        raise SystemExit(f"{rel} is on the training side of the split; choose a held-out piece")
    parsed = corpus.parse(rel)
    work = parsed.scores[0] if isinstance(parsed, stream.Opus) else parsed
    built = work_to_score(work, key)
    if built is None:
        raise SystemExit(f"{rel}: no notes or a meter the model cannot write")
    score, info = built
    pickup = round(_pickup_quarters(work) * TICKS_PER_QUARTER)
    if pickup:
        score = score.shift_time(pickup)
        score.time_signatures[0].time = 0
        score.tempos[0].time = 0
    ts = score.time_signatures[0]
    quarters = ts.numerator * 4 / ts.denominator
    region_bars = region_bars_for(quarters)
    end = round((region_bars + REFERENCE_BARS) * quarters * TICKS_PER_QUARTER)
    score = score.clip(0, end, clip_end=True)
    meta = {
        "source": f"music21/corpus/{rel}",
        "corpus_key": f"{key}.mid",
        "meter": f"{ts.numerator}/{ts.denominator}",
        "tempo_bpm": info["tempo_bpm"],
        "programs": info["programs"],
        "pickup_quarters": pickup / TICKS_PER_QUARTER,
        "region_bars": region_bars,
        "reference_bars": REFERENCE_BARS,
        "licence": DEFAULT_LICENCE,
    }
    return score, meta


def main() -> int:
    tuning = "--tuning" in sys.argv[1:]
    out_dir, pieces = (TUNING_DIR, TUNING_PIECES) if tuning else (SET_DIR, PIECES)
    out_dir.mkdir(parents=True, exist_ok=True)
    what_for = "choosing settings (never the bench's pieces)" if tuning else "bench/bench_midi_quality.py"
    manifest: dict[str, Any] = {
        "description": f"held-out pieces for {what_for}, built by bench/midi_quality_set.py",
        "pieces": {},
    }
    for rel, what in pieces:
        score, meta = build_piece(rel)
        name = _slug(Path(rel).with_suffix("").as_posix().replace("/", "_")) + ".mid"
        score.dump_midi(str(out_dir / name))
        manifest["pieces"][name] = {"what": what, **meta}
        print(f"{name}: {meta['meter']}, {len(meta['programs'])} parts, region {meta['region_bars']} bars")  # noqa: T201
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
