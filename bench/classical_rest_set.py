"""An untouched classical set for bench/bench_midi_quality.py (``--set classical-rest``), built in session 6.

    python bench/classical_rest_set.py   # rebuild bench/data/midi_quality/classical_rest/ (needs music21)

The same rules as bench/midi_quality_set.py: music21 corpus files whose converted path falls on the validation side
of the model's training split (:func:`engine.symbolic.dataset.is_val`), converted exactly as the training corpus is
(:func:`engine.symbolic.corpus.work_to_score`: one GM program per part, a seeded tempo), a pickup bar made whole,
region = 4-8 bars (:func:`midi_quality_set.region_bars_for`), reference = the composer's next 8 bars.

The validation side of the split holds few multi-part works the other sets do not already use: the seven Bach
chorales below (4/4, four parts) are all of them (the rest are Palestrina, whose files reserve rights and which the
corpus never converts; one-voice fiddle tunes; a Roman-numeral analysis; two-note demos). So the set also takes, from
the held-out pieces of bench/midi_quality_set.py whose kind the acceptance material shares (a string quartet in 6/8,
a piano mazurka in 3/4, a song for voices and piano, a 12-part orchestral chorale, a four-voice Gloria in 2/4, a
five-voice madrigal), the passage right after the one the bench measures: region from the bar after the bench's
reference ends. Those bars were neither trained on nor ever measured; the manifest marks them (``"passage":
"later"``) so that their figures can be read apart from the seven new pieces'. Nothing is chosen on this set.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from midi_quality_set import REFERENCE_BARS, build_piece, region_bars_for  # noqa: E402

from engine.symbolic.corpus import TICKS_PER_QUARTER, _slug  # noqa: E402

SET_DIR = ROOT / "bench" / "data" / "midi_quality" / "classical_rest"
# (corpus path, what it is): the validation side's multi-part works that no other set uses
NEW_PIECES = (
    ("bach/bwv190.7.mxl", "chorale, 4/4, pickup"),
    ("bach/bwv2.6.mxl", "chorale, 4/4, pickup"),
    ("bach/bwv248.33-3.mxl", "Christmas Oratorio chorale, 4/4"),
    ("bach/bwv348.mxl", "chorale, 4/4, pickup"),
    ("bach/bwv382.mxl", "chorale, 4/4, pickup"),
    ("bach/bwv395.mxl", "chorale, 4/4, pickup"),
    ("bach/bwv427.mxl", "chorale, 4/4, pickup"),
)
# (corpus path, what it is): bench pieces, the passage after the bench's region and reference
LATER_PASSAGES = (
    ("haydn/opus1no1/movement1.mxl", "string quartet, 6/8: the passage after the bench's"),
    ("chopin/mazurka06-2.krn", "piano mazurka, 3/4: the passage after the bench's"),
    ("beach/prayer_of_a_tired_child.musicxml", "song, four voices and piano, 4/4: the passage after the bench's"),
    ("bach/bwv248.42-4.mxl", "orchestral chorale, 12 parts, 3/4: the passage after the bench's"),
    ("trecento/PMFC_13_14-Gloria.xml", "four-voice Gloria, 2/4: the passage after the bench's"),
    ("monteverdi/madrigal.4.10.mxl", "five-voice madrigal, 4/4: the passage after the bench's"),
)


def piece_name(rel: str) -> str:
    """The set's file name for corpus path ``rel`` (without ``.mid``), as bench/midi_quality_set.py names it."""
    return _slug(Path(rel).with_suffix("").as_posix().replace("/", "_"))


def later_passage(rel: str) -> tuple[Any, dict[str, Any]] | None:
    """The bars of ``rel`` after the bench's region and reference: region + 8 reference bars, moved to bar 0
    (None when the piece is too short)."""
    from music21 import corpus, stream

    from engine.symbolic.corpus import work_to_score

    _, meta = build_piece(rel)  # the bench's cut: its meter, pickup and region length (and the split's check)
    parsed = corpus.parse(rel)
    work = parsed.scores[0] if isinstance(parsed, stream.Opus) else parsed
    built = work_to_score(work, meta["corpus_key"].removesuffix(".mid"))
    if built is None:
        return None
    score, _ = built
    pickup = round(meta["pickup_quarters"] * TICKS_PER_QUARTER)
    if pickup:
        score = score.shift_time(pickup)
    ts = score.time_signatures[0]
    bar = round(ts.numerator * 4 / ts.denominator * TICKS_PER_QUARTER)
    region_bars = region_bars_for(bar / TICKS_PER_QUARTER)
    start_bar = meta["region_bars"] + meta["reference_bars"]
    start, end = start_bar * bar, (start_bar + region_bars + REFERENCE_BARS) * bar
    if max((n.time for t in score.tracks for n in t.notes), default=0) < end - bar:
        return None
    numerator, denominator = ts.numerator, ts.denominator
    tempo = score.tempos[0].qpm
    score = score.clip(start, end, clip_end=True).shift_time(-start)
    score.time_signatures.clear()
    score.tempos.clear()
    from symusic.core import TempoTick, TimeSignatureTick

    score.time_signatures.append(TimeSignatureTick(0, numerator, denominator))
    score.tempos.append(TempoTick(0, tempo))
    for index in reversed(range(len(score.tracks))):
        if len(score.tracks[index].notes) == 0:
            score.tracks.pop(index)
    out = {
        **meta,
        "passage": "later",
        "start_bar": start_bar,
        "programs": [t.program for t in score.tracks],
        "pickup_quarters": 0.0,
        "region_bars": region_bars,
    }
    return score, out


def main() -> int:
    from engine.symbolic.corpus import DEFAULT_LICENCE

    SET_DIR.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "description": "untouched classical pieces (session 6) for bench/bench_midi_quality.py --set classical-rest, "
        "built by bench/classical_rest_set.py: the validation side's multi-part works no other set uses, and the "
        "passage after the bench's of six bench pieces (marked passage: later); an evaluation set, nothing is "
        "tuned on it",
        "licence": DEFAULT_LICENCE,
        "pieces": {},
    }
    entries: list[tuple[str, Any, dict[str, Any]]] = []  # (file name, score, manifest entry)
    for rel, what in NEW_PIECES:
        score, meta = build_piece(rel)
        entries.append((f"{piece_name(rel)}.mid", score, {"what": what, **meta, "passage": "first"}))
    for rel, what in LATER_PASSAGES:
        built = later_passage(rel)
        if built is None:
            print(f"skip {rel}: too short for a second passage")  # noqa: T201
            continue
        entries.append((f"{piece_name(rel)}_later.mid", built[0], {"what": what, **built[1]}))
    for name, score, entry in entries:
        score.dump_midi(str(SET_DIR / name))
        manifest["pieces"][name] = entry
        start, parts = entry.get("start_bar", 0), len(entry["programs"])
        print(f"{name}: {entry['meter']}, {parts} parts, {entry['region_bars']} region bars from bar {start}")  # noqa: T201
    (SET_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
