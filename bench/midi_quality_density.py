"""bench_midi_quality.py with the density target's configurations (issue 16: notes per bar per part).

    python bench/midi_quality_density.py LEVER [bench_midi_quality.py's arguments, e.g. --set lmms --configs final]

LEVER is midi_quality_levers.py's (``float32`` changes nothing); this file only adds configurations to
``bench_midi_quality.CONFIGS`` and then runs midi_quality_levers.py's ``main``. Each is today's defaults (``final``)
with the guidance's density target read otherwise (:class:`engine.symbolic.guidance.GuidanceSettings`):

- ``final-dprompt``: the target from the model's prompt (the region's last bars that fit half a context), the
  candidates' fit against the region's mean: the defaults before ``density_from``;
- ``final-dreg``: the whole region's mean (``density_from="region"``);
- ``final-dent``: the whole region from each part's first note on (``density_from="entry"``);
- ``final-dent-hN``: the same, a bar N bars before the last weighing half (``density_half_life=N``);
- ``final-dpent``: the model's prompt from each part's first note on (``density_from="prompt-entry"``);
- ``-fit`` after any of them: the candidates' fit measures notes per bar against the same targets
  (``density_fit_target``); without it, against the region's mean.

    python bench/midi_quality_density.py analyse [--set lmms] [--results FILE --config final]

prints, without sampling, how many parts each reading of the region (the targets exactly as the guidance computes
them, from the region's tokens) would put within x0.67-1.5 of the composer's notes per bar; with ``--results``
(a bench_midi_quality JSON of that set) it also sorts the configuration's misses: too sparse or too dense, parts
silent in the region, misses whose target (as the sampler had it: ``--source``) was already out of range, misses
where the variants were off their own target by more than x0.8-1.25, parts that came in after the region's first
bar, drums, held parts (notes of 2 beats or more on average).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_midi_quality  # noqa: E402
import midi_quality_levers  # noqa: E402

import engine.symbolic.continuation as cont  # noqa: E402
from engine.checkpoints import find_checkpoint  # noqa: E402
from engine.evaluate import midi as measures  # noqa: E402
from engine.symbolic.cache import DEFAULT_CACHE  # noqa: E402
from engine.symbolic.candidates import channel_of  # noqa: E402
from engine.symbolic.guidance import GuidanceSettings, notes_per_bar, region_stats  # noqa: E402

BEFORE = GuidanceSettings(density_from="prompt", density_fit_target=False)
DENSITY_CONFIGS: dict[str, GuidanceSettings] = {
    "final-dprompt": BEFORE,
    "final-dreg": replace(BEFORE, density_from="region"),
    "final-dent": replace(BEFORE, density_from="entry"),
    "final-dent-h2": replace(BEFORE, density_from="entry", density_half_life=2.0),
    "final-dent-h4": replace(BEFORE, density_from="entry", density_half_life=4.0),
    "final-dpent": replace(BEFORE, density_from="prompt-entry"),
}
for _name, _guidance in list(DENSITY_CONFIGS.items()):
    DENSITY_CONFIGS[f"{_name}-fit"] = replace(_guidance, density_fit_target=True)
for _name, _guidance in DENSITY_CONFIGS.items():
    bench_midi_quality.CONFIGS[_name] = (_guidance, cont.DEFAULT_CANDIDATES, None, DEFAULT_CACHE)


READINGS = {  # name -> (tokens: the prompt or the whole region, density_from, half-life)
    "prompt": ("prompt", "prompt", 0.0),
    "region": ("whole", "region", 0.0),
    "entry": ("whole", "entry", 0.0),
    "entry-h2": ("whole", "entry", 2.0),
    "entry-h4": ("whole", "entry", 4.0),
    "prompt-entry": ("prompt", "prompt-entry", 0.0),
}


def in_range(ratio: float) -> bool:
    return 0.67 <= ratio <= 1.5


def analyse(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="the density targets against the composers' notes per bar")
    parser.add_argument("--set", default="lmms")
    parser.add_argument("--results", default=None, help="a bench_midi_quality JSON of this set: sort its misses")
    parser.add_argument("--config", default="final")
    parser.add_argument("--source", default="prompt", choices=sorted(READINGS), help="the target it sampled with")
    args = parser.parse_args(argv)
    set_dir = (
        bench_midi_quality.SET_DIR if args.set == "bench" else bench_midi_quality.SET_DIR / args.set.replace("-", "_")
    )
    manifest = json.loads((set_dir / "manifest.json").read_text())
    model = cont.SymbolicModel.load(find_checkpoint("default"))
    block = model.model.config.block_size
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, meta in manifest["pieces"].items():
            region, region_content, reference, _ = bench_midi_quality.load_piece(set_dir / name, meta, Path(tmp))
            bar_beats = region.meter.quarters_per_bar
            composer = measures.notes_per_bar(reference, bar_beats, meta["reference_bars"])
            ppb = region.meter.numerator * 8
            tokens = {
                "prompt": cont.encode_prompt(region, model.tokenizer, model.vocab, block // 2),
                "whole": cont.encode_prompt(region, model.tokenizer, model.vocab, cont.WHOLE_REGION_BLOCKS * block),
            }
            stats = {k: region_stats(v, model.vocab, ppb) for k, v in tokens.items()}
            for part in region.parts:
                channel = channel_of(part.program)
                rate = composer.get(channel, 0.0)
                if rate <= 0:
                    continue
                whole = stats["whole"]
                lengths = [
                    (n.end - n.start) / region.ticks_per_quarter for n in region_content.notes if n.channel == channel
                ]
                first = whole.first_onset.get(part.program)
                held = statistics.mean(lengths) >= 2.0 if lengths else False
                row = {"piece": name, "channel": channel, "composer": rate, "first": first, "held": held}
                for reading, (which, source, half_life) in READINGS.items():
                    row[reading] = notes_per_bar(stats[which], part.program, source, half_life)
                rows.append(row)
            # composer parts the region never plays: no reading can know them
            for channel, rate in composer.items():
                if rate > 0 and channel not in {channel_of(p.program) for p in region.parts}:
                    rows.append({"piece": name, "channel": channel, "composer": rate, "first": None, "held": False,
                                 **{reading: 0.0 for reading in READINGS}})  # fmt: skip
    print(f"{args.set}: {len(rows)} parts the composer plays; within x0.67-1.5 of the composer's notes per bar by")  # noqa: T201
    for reading in READINGS:
        ratios = [r[reading] / r["composer"] for r in rows]
        gap = statistics.mean(abs(math.log(max(x, 0.05))) for x in ratios)
        print(f"  {reading:9s} {sum(in_range(x) for x in ratios):3d}   mean |log ratio| {gap:.3f}")  # noqa: T201
    if args.results:
        results = json.loads(Path(args.results).read_text())
        pieces = {r["piece"]: r for r in results["configs"][args.config]["pieces"]}
        counts: dict[str, int] = {}
        for r in rows:
            ratio = pieces[r["piece"]]["density"].get(str(r["channel"]))
            if ratio is None:
                continue
            counts["parts"] = counts.get("parts", 0) + 1
            if in_range(ratio):
                counts["in range"] = counts.get("in range", 0) + 1
                continue
            target = r[args.source]
            off = target > 0 and not 0.8 <= ratio * r["composer"] / target <= 1.25
            kinds = ["silent in the region"] if target == 0 and r["region"] == 0 else [
                "too sparse" if ratio < 0.67 else "too dense",
                "target already out" if not in_range(target / r["composer"]) else "target in range",
                *(["variants off their target"] if off else []),
                *(["came in after bar 1"] if r["first"] is not None and r["first"] >= 1.0 else []),
                *(["drums"] if r["channel"] == 9 else []),
                *(["held"] if r["held"] else []),
            ]  # fmt: skip
            for kind in kinds:
                counts[kind] = counts.get(kind, 0) + 1
        print(f"{args.config} ({args.results}): " + ", ".join(f"{k} {v}" for k, v in counts.items()))  # noqa: T201
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "analyse":
        return analyse(sys.argv[2:])
    return midi_quality_levers.main()


if __name__ == "__main__":
    raise SystemExit(main())
