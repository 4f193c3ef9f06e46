"""Candidates kept whole: sample every candidate of every variant once, then compare ways of choosing among them.

    python bench/midi_quality_pool.py sample --set lmms [--seed 1] [--candidates 4] [--threads 1] [--out POOL.json]
    python bench/midi_quality_pool.py choose POOL.json [POOL.json ...] [--selectors current,...] [--candidates 2]

``sample`` continues each piece of a bench_midi_quality set with today's defaults (``final``) but keeps every
candidate (``--candidates`` a variant, seeded as the engine seeds them: a row's tokens depend only on its seed, so
the first two of four are the two the engine samples), and writes, per piece, each candidate's measures against the
region (what a selector may read while sampling: pitch-class and onset-position overlap, notes per bar per part, the
share in the region's scale, the note set) and against the composer's continuation (what the bench scores).
``choose`` replays :func:`engine.symbolic.candidates.select` with each selector over the first ``--candidates``
candidates a variant and prints the bench's columns (pc, onset, notes/bar, in scale, variety), so a change to the
choice is measured on the same samples, with no sampling noise between the rows. (The engine also samples a variant
again when it repeats another; the pool leaves that out, so its rows are close to, not exactly, the bench's.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_midi_quality as bmq  # noqa: E402
from _common import machine, write_json  # noqa: E402

from engine.api import GenerationParams  # noqa: E402
from engine.checkpoints import find_checkpoint  # noqa: E402
from engine.evaluate import midi as measures  # noqa: E402
from engine.symbolic import candidates as cands  # noqa: E402
from engine.symbolic import continuation as cont  # noqa: E402
from engine.symbolic.naming import part_names_for  # noqa: E402


def sample_set(args: argparse.Namespace) -> dict[str, Any]:
    set_dir = bmq.SET_DIR if args.set == "bench" else bmq.SET_DIR / args.set.replace("-", "_")
    manifest = json.loads((set_dir / "manifest.json").read_text())
    model = cont.SymbolicModel.load(find_checkpoint("default"))
    guidance, _, adapt, cache = bmq.CONFIGS["final"]
    captured: dict[str, Any] = {}
    original = cont.choose

    def capture(region: Any, decoded: Any, bars: int, groups: Any, settings: Any) -> list[int]:
        captured.update(decoded=list(decoded), groups=[list(g) for g in groups])
        return original(region, decoded, bars, groups, settings)

    cont.choose = capture  # type: ignore[assignment]
    pieces = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, meta in list(manifest["pieces"].items())[: args.pieces]:
            region, region_content, reference, _ = bmq.load_piece(set_dir / name, meta, Path(tmp))
            names = part_names_for(region.parts)
            params = GenerationParams(bars=args.bars, variants=args.variants, seed=args.seed)
            seeds = [args.seed + i for i in range(args.variants)]
            started = time.perf_counter()
            cont.continue_region(model, region, params, seeds, names, guidance=guidance, candidates=args.candidates,
                                 adapt=adapt, cache=cache)  # fmt: skip
            seconds = time.perf_counter() - started
            end = args.bars * region.bar_ticks
            contents = [cands.content_from_parts(parts, region.ticks_per_quarter, end) for parts in captured["decoded"]]
            pieces[name] = describe(region, region_content, reference, contents, captured["groups"], args.bars)
            print(f"  {name}: {seconds:.1f} s", file=sys.stderr, flush=True)  # noqa: T201
    return {"machine": machine(args.threads), "args": {k: v for k, v in vars(args).items() if k != "func"},
            "pieces": pieces}  # fmt: skip


def notes_of(content: measures.MidiContent) -> list[list[int]]:
    return [[n.start, n.end, n.pitch, n.channel] for n in content.notes]


def content_of(notes: list[list[int]], ticks_per_beat: int, end_tick: int) -> measures.MidiContent:
    return measures.MidiContent(None, ticks_per_beat, tuple(measures.Note(*n) for n in notes), end_tick, (), ())  # type: ignore[arg-type]


def describe(
    region: Any,
    region_content: measures.MidiContent,
    reference: measures.MidiContent,
    contents: Sequence[measures.MidiContent],
    groups: list[list[int]],
    bars: int,
) -> dict[str, Any]:
    """One piece: the region's, the composer's and every candidate's notes (start, end, pitch, channel)."""
    return {
        "groups": groups,
        "ticks_per_beat": region.ticks_per_quarter,
        "bar_beats": region.meter.quarters_per_bar,
        "bars": bars,
        "region_bars": region.length_bars,
        "region": notes_of(region_content),
        "region_end": region_content.end_tick,
        "reference": notes_of(reference),
        "reference_end": reference.end_tick,
        "candidates": [notes_of(c) for c in contents],
        "end": bars * region.bar_ticks,
    }


class Piece:
    """One pooled piece, its contents rebuilt and each candidate measured as the selectors and the bench need."""

    def __init__(self, data: dict[str, Any]) -> None:
        tpb = data["ticks_per_beat"]
        self.data = data
        self.bar_beats = float(data["bar_beats"])
        self.bars = int(data["bars"])
        self.region = content_of(data["region"], tpb, data["region_end"])
        self.reference = content_of(data["reference"], tpb, data["reference_end"])
        self.contents = [content_of(c, tpb, data["end"]) for c in data["candidates"]]
        self.groups: list[list[int]] = data["groups"]
        self.scale = measures.region_scale_share(self.region)
        self.division = measures.onset_grid(self.region) or 4
        self.note_sets = [measures.note_set(c, self.division) for c in self.contents]
        self.composer_pc = measures.pitch_class_overlap(self.reference, self.region)
        self.composer_onset = measures.onset_position_overlap(self.reference, self.region, self.bar_beats)
        self.pc = [measures.pitch_class_overlap(c, self.region) for c in self.contents]
        self.onset = [measures.onset_position_overlap(c, self.region, self.bar_beats) for c in self.contents]


Selector = Callable[[Piece, int], float]  # (piece, candidate index) -> fit


def current_fit(piece: Piece, i: int) -> float:
    density = {int(ch): 1.0 for ch in measures.notes_per_bar(piece.region, piece.bar_beats, 1)}
    return cands.fit(piece.contents[i], piece.region, piece.bar_beats, piece.bars, int(piece.data["region_bars"]),
                     piece.scale, density)  # fmt: skip


def with_pc(weight: float) -> Selector:
    def fit(piece: Piece, i: int) -> float:
        return current_fit(piece, i) + weight * (piece.pc[i] or 0.0)

    return fit


SELECTORS: dict[str, Selector] = {"current": current_fit, "pc1": with_pc(1.0), "pc2": with_pc(2.0), "pc4": with_pc(4.0)}


def choose_rows(pieces: list[Piece], selector: Selector, per_variant: int) -> list[dict[str, Any]]:
    rows = []
    for piece in pieces:
        groups = [g[:per_variant] for g in piece.groups]
        fits = {i: selector(piece, i) for g in groups for i in g}
        dense = [fits.get(i, -1e9) for i in range(len(piece.contents))]
        chosen = cands.select(dense, piece.note_sets, groups)
        rows.append(measure(piece, chosen))
    return rows


def measure(piece: Piece, chosen: list[int]) -> dict[str, Any]:
    """bench_midi_quality.measure_piece's figures for the chosen candidates (no loss, no seconds)."""
    contents = [piece.contents[i] for i in chosen]
    pcs = [piece.pc[i] for i in chosen]
    onsets = [piece.onset[i] for i in chosen]
    composer_rate = measures.notes_per_bar(piece.reference, piece.bar_beats, piece.bars)
    rates = [measures.notes_per_bar(c, piece.bar_beats, piece.bars) for c in contents]
    density = {
        ch: statistics.mean(r.get(ch, 0.0) for r in rates) / rate for ch, rate in composer_rate.items() if rate > 0
    }
    key, share = piece.scale
    shares = [measures.in_scale_share(c, key) for c in contents] if key is not None else []
    distance, identical = measures.variety(contents, piece.division)
    cp, co = piece.composer_pc, piece.composer_onset
    return {
        "piece": piece.data.get("name", ""),
        "seconds": 0.0,
        "pc_gap": statistics.mean(x for x in pcs if x is not None) - cp if cp else None,
        "onset_gap": statistics.mean(x for x in onsets if x is not None) - co if co else None,
        "density": density,
        "lengths": {},
        "in_scale": [s >= share - 0.1 for s in shares if s is not None and share is not None],
        "variety": distance,
        "identical": identical,
        "loss": None,
        "loss_adapted": None,
        "adapt_seconds": 0.0,
    }


def choose_main(args: argparse.Namespace) -> int:
    runs = []
    for path in args.pools:
        data = json.loads(Path(path).read_text())
        runs.append((Path(path).stem, [Piece({**d, "name": n}) for n, d in data["pieces"].items()]))
    names = [s for s in args.selectors.split(",") if s]
    unknown = [s for s in names if s not in SELECTORS]
    if unknown:
        raise SystemExit(f"unknown selector(s) {', '.join(unknown)}; choose from {', '.join(SELECTORS)}")
    columns = ("pool", "selector", "pc vs composer", "onset vs composer", "notes/bar", "note length", "in scale",
               "variety", "loss", "s")  # fmt: skip
    header = "| " + " | ".join(columns) + " |"
    print(header)  # noqa: T201
    print("|" + "---|" * 10)  # noqa: T201
    totals: dict[str, list[int]] = {}
    for run, pieces in runs:
        for name in names:
            rows = choose_rows(pieces, SELECTORS[name], args.candidates)
            s = bmq.summarise(rows)
            total = totals.setdefault(name, [0] * 8)
            for k, key in enumerate(("pc_ok", "onset_ok", "density_ok", "density_parts", "scale_ok", "scale_variants",
                                     "variety_ok", "pieces")):  # fmt: skip
                total[k] += s[key]
            print(f"| {run} " + bmq.format_row(name, s))  # noqa: T201
            if args.pieces_table:
                for r in rows:
                    print(f"    {r['piece'][:30]:30} pc {r['pc_gap']:+.3f} onset {r['onset_gap']:+.3f}")  # noqa: T201
    print("\nsummed: selector: pc ok, onset ok, notes/bar ok of parts, in scale of variants, variety ok of pieces")  # noqa: T201
    for name, t in totals.items():
        print(f"  {name}: pc {t[0]}, onset {t[1]}, notes/bar {t[2]}/{t[3]}, scale {t[4]}/{t[5]}, variety {t[6]}/{t[7]}")  # noqa: T201
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample", help="sample a set's candidates once")
    sample.add_argument("--set", default="lmms", choices=("bench", "tuning", "lmms", "openmsx", "openmsx-rest"))
    sample.add_argument("--seed", type=int, default=1)
    sample.add_argument("--candidates", type=int, default=4)
    sample.add_argument("--variants", type=int, default=4)
    sample.add_argument("--bars", type=int, default=8)
    sample.add_argument("--pieces", type=int, default=None)
    sample.add_argument("--threads", type=int, default=1)
    sample.add_argument("--out", default=None, help="default bench/results/pool_<set>_seed<seed>.json")
    choose = sub.add_parser("choose", help="replay the choice over pooled candidates")
    choose.add_argument("pools", nargs="+")
    choose.add_argument("--selectors", default="current")
    choose.add_argument("--candidates", type=int, default=2, help="candidates a variant to choose among")
    choose.add_argument("--pieces-table", action="store_true", help="each piece's pc and onset gap too")
    args = parser.parse_args()
    if args.command == "choose":
        return choose_main(args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = Path(args.out or ROOT / f"bench/results/pool_{args.set}_seed{args.seed}.json")
    write_json(out, sample_set(args))
    print(f"wrote {out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
