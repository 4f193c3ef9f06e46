"""MIDI continuation quality on held-out real pieces: does a continuation speak its region's language?

    python bench/bench_midi_quality.py [--configs baseline,final] [--pieces 12] [--variants 4] [--bars 8]
                                       [--seed 1] [--threads 2] [--model default] [--set tuning] [--loss-only]

The pieces (bench/data/midi_quality/, built once by bench/midi_quality_set.py) are music21 corpus works on the
validation side of the shipped model's training split: string quartet, orchestral chorale, piano, madrigals,
Bach chorales, a lead sheet; 6/8, 3/4, 4/4, 2/4. Region = the first 4-8 bars, reference = the composer's next 8.
For every configuration (an idea alone, or together) it continues each region with the same seeds and prints
one row per configuration. ``--set tuning`` runs on the tuning pieces (bench/data/midi_quality/tuning/) instead:
settings are chosen there, never on the bench's pieces. ``--set lmms`` runs on producers' songs (LMMS demos,
bench/data/midi_quality/lmms/, built by bench/lmms_set.py), an evaluation set far from the training corpus;
``--set openmsx`` on game music (OpenTTD's OpenMSX songs: boogie, blues, pop, rock; bench/openmsx_set.py), another;
``--set openmsx-rest`` on the OpenMSX songs that set left out (bench/openmsx_rest_set.py), kept for a last check;
``--set classical-rest`` on untouched classical pieces and passages (bench/classical_rest_set.py), another.
Columns (means over the pieces; "ok" counts pieces/parts/variants meeting the target):

- pc: variants' pitch-class overlap with the region minus the composer's (target |.| <= 0.05; then, one-sided,
  pieces whose variants are not further from the region than the composer's continuation - 0.05: gap >= -0.05)
- onset: the same for the onset-position-in-bar overlap (target |.| <= 0.05; one-sided gap >= -0.05)
- dens: notes per bar per part, variants / composer (median; ok = parts within x0.67-1.5)
- len: mean note length per part, variants / composer (median)
- scale: variants whose share of pitched notes in the region's scale >= the region's own share - 0.1
- var: mean pairwise note-set distance between variants (target >= 0.5), identical pairs
- loss: the composer's continuation given the region, nats/token, without -> with the configuration's adaptation
  and/or region cache (target -10 %)
- s: seconds per job (sampling, candidates and adaptation; not rendering)

Writes bench/results/midi_quality.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from symusic import Score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine, write_json  # noqa: E402

from engine.api import GenerationParams, Prompt  # noqa: E402
from engine.checkpoints import find_checkpoint  # noqa: E402
from engine.evaluate.reference import compare  # noqa: E402
from engine.symbolic import continuation as cont  # noqa: E402
from engine.symbolic.adapt import AdaptSettings, adapted, continuation_loss  # noqa: E402
from engine.symbolic.cache import DEFAULT_CACHE, CacheSettings, TokenKinds  # noqa: E402
from engine.symbolic.candidates import content_from_parts, content_from_score  # noqa: E402
from engine.symbolic.guidance import GuidanceSettings  # noqa: E402
from engine.symbolic.loop import LoopSettings  # noqa: E402
from engine.symbolic.naming import part_names_for  # noqa: E402
from engine.symbolic.region import Region, read_region  # noqa: E402

SET_DIR = ROOT / "bench" / "data" / "midi_quality"
OFF = GuidanceSettings(enabled=False)
ONLY = GuidanceSettings(
    pitch_weight=0.0, position_weight=0.0, duration_weight=0.0, hold_notes=False, density_control=False
)
NO_LOOP = replace(DEFAULT_CACHE, loop=None)  # the region cache's defaults before the loop memory
ADAPT_3E5 = AdaptSettings(steps=8, lr=3e-5, max_seconds=600.0)  # the loss figure: 8 steps, whatever the load
# name -> (guidance, candidates per variant, adaptation, region cache)
CONFIGS: dict[str, tuple[GuidanceSettings, int, AdaptSettings | None, CacheSettings | None]] = {
    "baseline": (OFF, 1, None, None),
    "pitch": (replace(ONLY, pitch_weight=1.0), 1, None, None),
    "rhythm": (replace(ONLY, position_weight=1.0), 1, None, None),
    "lengths": (replace(ONLY, duration_weight=1.0, hold_notes=True), 1, None, None),
    "density": (replace(ONLY, density_control=True), 1, None, None),
    "guided": (GuidanceSettings(), 1, None, None),
    "guided-p1": (GuidanceSettings(pitch_weight=1.0), 1, None, None),
    "guided-c2": (GuidanceSettings(), 2, None, None),
    "guided-c3": (GuidanceSettings(), 3, None, None),
    "candidates": (OFF, 3, None, None),
    "adapt": (OFF, 1, AdaptSettings(steps=8, max_seconds=600.0), None),
    "adapt-1e-4": (OFF, 1, AdaptSettings(steps=8, lr=1e-4, max_seconds=600.0), None),
    "adapt-3e-5": (OFF, 1, ADAPT_3E5, None),
    "adapt-head": (OFF, 1, AdaptSettings(steps=8, lr=1e-4, max_seconds=600.0, what="head"), None),
    "cache": (OFF, 1, None, DEFAULT_CACHE),  # the region cache alone
    "cache+adapt": (OFF, 1, ADAPT_3E5, DEFAULT_CACHE),
    "final-nocache": (GuidanceSettings(), cont.DEFAULT_CANDIDATES, None, None),  # the defaults before the cache
    "final": (GuidanceSettings(), cont.DEFAULT_CANDIDATES, None, DEFAULT_CACHE),  # the defaults
    # variations of the defaults before the loop memory, tried on the tuning pieces (a cache with a pitch slot
    # always replaces the guidance's pitch prior)
    "final-cache-p0": (GuidanceSettings(), cont.DEFAULT_CANDIDATES, None, replace(NO_LOOP, pitch=0.0)),
    "final-n50": (GuidanceSettings(), cont.DEFAULT_CANDIDATES, None, replace(NO_LOOP, next=0.5)),
    "final-pos0": (GuidanceSettings(position_weight=0.0), cont.DEFAULT_CANDIDATES, None, NO_LOOP),
    "final-novoicing": (GuidanceSettings(), cont.DEFAULT_CANDIDATES, None, replace(NO_LOOP, voicing=False)),
    # the defaults before the loop memory (engine/symbolic/loop.py), the cache's bar-level copy expert
    "cache-noloop": (OFF, 1, None, NO_LOOP),
    "final-noloop": (GuidanceSettings(), cont.DEFAULT_CANDIDATES, None, NO_LOOP),
    # the defaults with 1, 2 or 3 candidates a variant, whatever DEFAULT_CANDIDATES is (issue 16: which to keep)
    "final-c1": (GuidanceSettings(), 1, None, DEFAULT_CACHE),
    "final-c2": (GuidanceSettings(), 2, None, DEFAULT_CACHE),
    "final-c3": (GuidanceSettings(), 3, None, DEFAULT_CACHE),
}
LOOP_VARIATIONS = {  # final-loop-NAME: the loop memory's settings tried on the tuning pieces
    "a99": LoopSettings(aligned_confidence=0.99),
    "m95": LoopSettings(max_weight=0.95, fade=1.0),  # the first default
    "nofade": LoopSettings(fade=1.0),  # the cap alone
    "c90": LoopSettings(sync_confidence=0.9, aligned_confidence=0.6),  # the first try
    "w50": LoopSettings(weight=0.5),
    "e0": LoopSettings(evidence=0.0),
    "e20": LoopSettings(evidence=20.0),
    "notr": LoopSettings(transpose=False),
    "p12": LoopSettings(periods=(1, 2)),
    "s10": LoopSettings(share=0.1),
    # the density control yields to the loop: its nats x (1 - y x the expert's weight); y 1 (the default), y 1.25:
    # none at the cap 0.8; y0: the density control at full strength, as before
    "y0": LoopSettings(density_yield=0.0),
    "y100": LoopSettings(density_yield=1.0),
    "y125": LoopSettings(density_yield=1.25),
}
for _name, _loop in LOOP_VARIATIONS.items():
    CONFIGS[f"final-loop-{_name}"] = (
        GuidanceSettings(),
        cont.DEFAULT_CANDIDATES,
        None,
        replace(DEFAULT_CACHE, loop=_loop),
    )


def load_piece(path: Path, meta: dict[str, Any], tmp: Path) -> tuple[Region, Any, Any, Score]:
    score = Score(str(path))
    ts = score.time_signatures[0]
    bar_ticks = round(ts.numerator * 4 / ts.denominator * score.ticks_per_quarter)
    end = meta["region_bars"] * bar_ticks
    region_file = tmp / path.name
    score.clip(0, end, clip_end=True).dump_midi(str(region_file))
    region = read_region(Prompt(midi_path=region_file, length_beats=end / score.ticks_per_quarter))
    region_content = content_from_score(score, 0, end)
    reference = content_from_score(score, end, end + meta["reference_bars"] * bar_ticks)
    return region, region_content, reference, score


def target_tokens(model: cont.SymbolicModel, score: Score, region: Region, bars: int) -> list[int]:
    """The composer's next ``bars`` bars as tokens, read from one encoding of region + reference."""
    full = score.clip(0, region.place_at_tick + bars * region.bar_ticks, clip_end=True)
    ids = (
        [int(i) for i in model.tokenizer.encode(full)[0].ids]
        if isinstance(model.tokenizer.encode(full), list)
        else [int(i) for i in model.tokenizer.encode(full).ids]
    )
    bar_indices = [i for i, t in enumerate(ids) if t == model.vocab.bar]
    if len(bar_indices) <= region.length_bars:
        return []
    return ids[bar_indices[region.length_bars] :]


def composer_loss(
    model: cont.SymbolicModel,
    score: Score,
    region: Region,
    adapt: AdaptSettings | None,
    cache: CacheSettings | None,
    bars: int,
) -> tuple[float | None, float | None, float]:
    """The composer's continuation's loss given the region, without and with adaptation and/or the region cache
    (and the adaptation's seconds)."""
    prompt = cont.encode_prompt(region, model.tokenizer, model.vocab, model.model.config.block_size // 2)
    target = target_tokens(model, score, region, bars)
    if not target:
        return None, None, 0.0
    loss = continuation_loss(model.model, prompt, target)
    mix = (TokenKinds.from_tokenizer(model.tokenizer), cache) if cache is not None else None
    if adapt is None:
        return loss, (continuation_loss(model.model, prompt, target, mix) if mix else None), 0.0
    with adapted(model.model, prompt, model.tokenizer, adapt) as report:
        return loss, continuation_loss(model.model, prompt, target, mix), report.seconds


def measure_piece(
    model: cont.SymbolicModel, name: str, meta: dict[str, Any], tmp: Path, config: str, args: argparse.Namespace
) -> dict[str, Any]:
    guidance, factor, adapt, cache = CONFIGS[config]
    region, region_content, reference, score = load_piece(args.set_dir / name, meta, tmp)
    bar_beats = region.meter.quarters_per_bar
    names = part_names_for(region.parts)
    params = GenerationParams(bars=args.bars, variants=args.variants, seed=args.seed)
    seeds = [args.seed + i for i in range(args.variants)]
    info = cont.ContinuationInfo()
    t0 = time.perf_counter()
    variants = (
        []
        if args.loss_only
        else cont.continue_region(
            model,
            region,
            params,
            seeds,
            names,
            guidance=guidance,
            candidates=factor,
            adapt=adapt,
            info=info,
            cache=cache,
        )
    )
    seconds = time.perf_counter() - t0
    if args.loss_only:
        loss, loss_adapted, adapt_seconds = composer_loss(model, score, region, adapt, cache, args.bars)
        empty: dict[str, Any] = {"density": {}, "lengths": {}, "in_scale": [], "identical": 0, "seeds": []}
        return {"piece": name, "seconds": 0.0, "pc_gap": None, "onset_gap": None, "variety": None, **empty,
                "loss": loss, "loss_adapted": loss_adapted, "adapt_steps": adapt.steps if adapt else 0,
                "adapt_seconds": adapt_seconds}  # fmt: skip
    contents = [content_from_parts(v, region.ticks_per_quarter, args.bars * region.bar_ticks) for v in variants]
    fit = compare(contents, region_content, reference, bar_beats, args.bars)  # the measures segue eval reports
    lengths = {}
    for ch in fit.reference_rates:
        ref = [n.end - n.start for n in reference.notes if n.channel == ch]
        own = [n.end - n.start for c in contents for n in c.notes if n.channel == ch]
        if ref and own:
            lengths[ch] = statistics.mean(own) / statistics.mean(ref)
    loss, loss_adapted, _ = composer_loss(model, score, region, adapt, cache, args.bars)
    report = info.adapt
    return {
        "piece": name,
        "seconds": seconds,
        "pc_gap": fit.pc_gap,
        "onset_gap": fit.onset_gap,
        "density": fit.density,
        "lengths": lengths,
        "in_scale": fit.in_scale,
        "variety": fit.variety,
        "identical": fit.identical,
        "loss": loss,
        "loss_adapted": loss_adapted,
        "adapt_steps": report.steps if report else 0,
        "adapt_seconds": report.seconds if report else 0.0,
        "cache_seconds": info.cache.seconds if info.cache else 0.0,
        "seeds": info.seeds,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return statistics.mean(values) if values else None

    ratios = [x for r in rows for x in r["density"].values()]
    lengths = [x for r in rows for x in r["lengths"].values()]
    scale = [x for r in rows for x in r["in_scale"]]
    losses = [(r["loss"], r["loss_adapted"]) for r in rows if r["loss"] is not None and r["loss_adapted"] is not None]
    return {
        "pc_gap": mean("pc_gap"),
        "pc_ok": sum(abs(r["pc_gap"]) <= 0.05 for r in rows if r["pc_gap"] is not None),
        "pc_ok_one_sided": sum(r["pc_gap"] >= -0.05 for r in rows if r["pc_gap"] is not None),
        "onset_gap": mean("onset_gap"),
        "onset_ok": sum(abs(r["onset_gap"]) <= 0.05 for r in rows if r["onset_gap"] is not None),
        "onset_ok_one_sided": sum(r["onset_gap"] >= -0.05 for r in rows if r["onset_gap"] is not None),
        "density_median": statistics.median(ratios) if ratios else None,
        "density_ok": sum(0.67 <= x <= 1.5 for x in ratios),
        "density_parts": len(ratios),
        "length_median": statistics.median(lengths) if lengths else None,
        "scale_ok": sum(scale),
        "scale_variants": len(scale),
        "variety": mean("variety"),
        "variety_ok": sum(r["variety"] is not None and r["variety"] >= 0.5 for r in rows),
        "identical": sum(r["identical"] for r in rows),
        "loss": mean("loss"),
        "loss_adapted": statistics.mean(b for _, b in losses) if losses else None,
        "loss_change": (statistics.mean(b / a - 1 for a, b in losses) if losses else None),
        "seconds": mean("seconds"),
        "adapt_seconds": mean("adapt_seconds"),
        "cache_seconds": statistics.mean(r.get("cache_seconds", 0.0) for r in rows),
        "pieces": len(rows),
    }


def format_row(name: str, s: dict[str, Any]) -> str:
    def f(x: float | None, spec: str = "+.3f") -> str:
        return "-" if x is None else format(x, spec)

    loss = f(s["loss"], ".3f")
    if s["loss_adapted"] is not None:
        loss += f" -> {s['loss_adapted']:.3f} ({100 * s['loss_change']:+.0f} %)"
    n = s["pieces"]
    cache = f" (cache {s['cache_seconds']:.2f})" if s.get("cache_seconds") else ""
    return (
        f"| {name} | {f(s['pc_gap'])} ({s['pc_ok']}/{n}; {s['pc_ok_one_sided']}) | "
        f"{f(s['onset_gap'])} ({s['onset_ok']}/{n}; {s['onset_ok_one_sided']}) | "
        f"x{f(s['density_median'], '.2f')} ({s['density_ok']}/{s['density_parts']}) | "
        f"x{f(s['length_median'], '.2f')} | {s['scale_ok']}/{s['scale_variants']} | "
        f"{f(s['variety'], '.2f')} ({s['variety_ok']}/{n}, {s['identical']} id.) | "
        f"{loss} | {f(s['seconds'], '.1f')}{cache} |"
    )


def demo_pad(model: cont.SymbolicModel) -> None:
    """``make demo``'s region (examples/regions/pop_100bpm_4-4.mid, 8 bars x 4 variants, seed 7): its string pad,
    held whole-bar triads on the downbeats in the region, with the cache off, without its voicing rules, and as now."""
    region = read_region(Prompt(midi_path=ROOT / "examples" / "regions" / "pop_100bpm_4-4.mid"))
    names = part_names_for(region.parts)
    bar = region.bar_ticks
    for label, cache in (("no region cache", False), ("cache, no voicing", replace(DEFAULT_CACHE, voicing=False)),
                         ("the defaults", True)):  # fmt: skip
        variants = cont.continue_region(model, region, GenerationParams(bars=8, variants=4, seed=7), [7, 8, 9, 10],
                                        names, cache=cache)  # fmt: skip
        rows = []
        for parts in variants:
            pad = next(p for p in parts if p.program == 48)
            onsets = sorted({n.start for n in pad.notes})
            on_beat = sum(o % bar == 0 for o in onsets)
            length = statistics.mean(n.duration / region.ticks_per_quarter for n in pad.notes) if pad.notes else 0.0
            rows.append(f"{len(pad.notes)} notes, {on_beat}/{len(onsets)} onsets on a downbeat, {length:.2f} beats")
        print(f"| {label} | " + " | ".join(rows) + " |")  # noqa: T201


def rhythm_kept(rows: list[list[tuple[int, int, int, int]]], bar: int, region_bars: int, names: dict[int, str]) -> str:
    """Per part: of the variants' bars (``rows[1:]``, 8 each), how many play an onset pattern (the set of onset
    positions in the bar) that one of the region's bars (``rows[0]``) plays."""
    out = []
    for program, name in names.items():

        def patterns(items: list[tuple[int, int, int, int]], bars: int, program: int = program) -> list[frozenset[int]]:
            return [
                frozenset(at % bar for p, at, _, _ in items if p == program and at // bar == i) for i in range(bars)
            ]

        own = set(patterns(rows[0], region_bars)) - {frozenset()}
        written = [x for items in rows[1:] for x in patterns(items, 8)]
        out.append(f"{name} {sum(x in own for x in written)}/{len(written)}")
    return "bars with one of the region's onset patterns: " + ", ".join(out)


def demo_roll(model: cont.SymbolicModel, configs: list[str], out: Path) -> None:
    """Piano rolls (PNG) of ``make demo``'s region and its 4 variants (8 bars, seed 7), one file per configuration
    (``out`` with the configuration's name added): the region's bars then each variant's 8, one colour per part."""
    import matplotlib  # noqa: PLC0415  (only this option draws)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    region = read_region(Prompt(midi_path=ROOT / "examples" / "regions" / "pop_100bpm_4-4.mid"))
    names = part_names_for(region.parts)
    bar, tpq = region.bar_ticks, region.ticks_per_quarter
    start = max(0, region.place_at_tick - region.length_bars * bar)
    colours = {p.program: f"C{i}" for i, p in enumerate(region.parts)}
    notes = [(tr.program if not tr.is_drum else -1, int(n.time) - start, int(n.duration), int(n.pitch))
             for tr in region.score.tracks for n in tr.notes if int(n.time) >= start]  # fmt: skip
    for config in configs:
        guidance, factor, adapt, cache = CONFIGS[config]
        params = GenerationParams(bars=8, variants=4, seed=7)
        variants = cont.continue_region(
            model, region, params, [7, 8, 9, 10], names, guidance=guidance, candidates=factor, adapt=adapt, cache=cache
        )
        rows = [notes] + [
            [(p.program, n.start, n.duration, n.pitch) for p in parts for n in p.notes] for parts in variants
        ]
        print(f"{config}: " + rhythm_kept(rows, bar, region.length_bars, names))  # noqa: T201
        fig, axes = plt.subplots(len(rows), 1, figsize=(16, 2.2 * len(rows)))
        for index, (ax, items) in enumerate(zip(axes, rows, strict=True)):
            for program, at, length, pitch in items:
                ax.broken_barh([(at / tpq, max(length, 1) / tpq)], (pitch - 0.4, 0.8), color=colours.get(program, "k"))
            ax.set_xlim(0, 8 * bar / tpq)
            for x in range(0, 8 * int(bar / tpq) + 1, int(bar / tpq)):
                ax.axvline(x, color="0.7", lw=0.6, zorder=0)
            ax.set_title(f"{config}: " + ("the region" if index == 0 else f"variant {index}"), fontsize=9, loc="left")
        legend = [plt.Rectangle((0, 0), 1, 1, color=colours[p.program]) for p in region.parts]
        fig.legend(legend, [p.name for p in region.parts], loc="upper right", ncol=len(legend), fontsize=8)
        fig.tight_layout()
        path = out.with_name(f"{out.stem}_{config}{out.suffix or '.png'}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=60)
        plt.close(fig)
        print(f"wrote {path}")  # noqa: T201


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--pieces", type=int, default=None, help="only the first N pieces")
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N pieces")
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="1 is fastest on a loaded machine")
    parser.add_argument("--loss-only", action="store_true", help="only the adaptation loss figure (no sampling)")
    parser.add_argument("--model", default="default")
    parser.add_argument(
        "--set",
        choices=("bench", "tuning", "lmms", "openmsx", "openmsx-rest", "classical-rest"),
        default="bench",
        help="tuning: the tuning pieces; lmms: producers' songs (bench/lmms_set.py); openmsx: game music "
        "(bench/openmsx_set.py); openmsx-rest: the OpenMSX songs that set left out (bench/openmsx_rest_set.py); "
        "classical-rest: untouched classical pieces (bench/classical_rest_set.py)",
    )
    parser.add_argument("--demo-pad", action="store_true", help="only make demo's pad, cache on and off")
    parser.add_argument("--demo-roll", default=None, help="only a piano roll (PNG path) of make demo per --configs")
    parser.add_argument("--out", default=None, help="default bench/results/midi_quality[_tuning|_lmms|_openmsx].json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    args.set_dir = SET_DIR if args.set == "bench" else SET_DIR / args.set.replace("-", "_")
    suffix = "" if args.set == "bench" else f"_{args.set}"
    args.out = args.out or str(ROOT / f"bench/results/midi_quality{suffix}.json")
    manifest = json.loads((args.set_dir / "manifest.json").read_text())
    pieces = list(manifest["pieces"].items())[args.skip :][: args.pieces]
    model = cont.SymbolicModel.load(find_checkpoint(args.model))
    if args.demo_pad:
        demo_pad(model)
        return 0
    if args.demo_roll:
        demo_roll(model, configs, Path(args.demo_roll))
        return 0
    recorded = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results: dict[str, Any] = {"machine": machine(args.threads), "args": recorded, "configs": {}}
    header = "| config | pc vs composer | onset vs composer | notes/bar | note length | in scale | variety | loss | s |"
    print(header)  # noqa: T201
    print("|" + "---|" * 9)  # noqa: T201
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            rows = []
            for name, meta in pieces:
                rows.append(measure_piece(model, name, meta, Path(tmp), config, args))
                row = rows[-1]
                progress = (
                    f"  {config} {name}: {row['seconds']:.1f} s, pc {row['pc_gap']}, onset {row['onset_gap']}, "
                    f"density {row['density']}, loss {row['loss']} -> {row['loss_adapted']}"
                )
                print(progress, file=sys.stderr, flush=True)  # noqa: T201
            summary = summarise(rows)
            results["configs"][config] = {"summary": summary, "pieces": rows}
            print(format_row(config, summary), flush=True)  # noqa: T201
    write_json(Path(args.out), results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
