"""Symbolic engine speed: 8 bars x 4 variants on a 4-part region, with the KV cache against without it.

    python bench/bench_symbolic.py [--model default] [--region examples/regions/pop_100bpm_4-4.mid]
                                   [--bars 8] [--variants 4] [--repeats 3] [--threads 2]

Both runs sample the same seeds side by side (alternating, best of N), so machine noise hits both alike.
Prints a table and writes bench/results/symbolic.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.api import GenerationParams, Prompt  # noqa: E402
from engine.checkpoints import find_checkpoint  # noqa: E402
from engine.symbolic.continuation import SymbolicModel, continue_region  # noqa: E402
from engine.symbolic.naming import part_names_for  # noqa: E402
from engine.symbolic.region import read_region  # noqa: E402


def run_once(model: SymbolicModel, region, params: GenerationParams, use_cache: bool) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    names = part_names_for(region.parts)
    seeds = [1000 + i for i in range(params.variants)]
    t0 = time.perf_counter()
    variants = continue_region(model, region, params, seeds, names, use_cache=use_cache)
    seconds = time.perf_counter() - t0
    notes = sum(len(p.notes) for v in variants for p in v)
    return seconds, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--region", default=str(ROOT / "examples/regions/pop_100bpm_4-4.mid"))
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench/results/symbolic.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = SymbolicModel.load(find_checkpoint(args.model))
    region = read_region(Prompt(midi_path=Path(args.region)))
    params = GenerationParams(bars=args.bars, variants=args.variants, temperature=1.0, top_p=0.95)
    # count the generated tokens once (same seeds -> same tokens in both modes)
    from engine.symbolic.continuation import encode_prompt, region_constraints
    from engine.symbolic.sampling import sample_continuations

    prompt = encode_prompt(region, model.tokenizer, model.vocab, model.model.config.block_size // 2)
    rows = sample_continuations(
        model.model,
        prompt,
        model.vocab,
        region_constraints(region, model.vocab, args.bars, 1.5),
        [1000 + i for i in range(args.variants)],
    )
    tokens = sum(len(r) for r in rows)

    run_once(model, region, params, use_cache=True)  # warm-up
    best = {"kv_cache": float("inf"), "no_cache": float("inf")}
    for _ in range(args.repeats):
        for name, use_cache in (("kv_cache", True), ("no_cache", False)):
            seconds, _notes = run_once(model, region, params, use_cache)
            best[name] = min(best[name], seconds)

    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "threads": args.threads,
        "torch": torch.__version__,
        "model": model.name,
        "parameters": model.model.num_parameters(),
        "region": Path(args.region).name,
        "bars": args.bars,
        "variants": args.variants,
        "prompt_tokens": len(prompt),
        "generated_tokens": tokens,
        "seconds": best,
        "tokens_per_second": {k: tokens / v for k, v in best.items()},
        "speedup_kv_cache": best["no_cache"] / best["kv_cache"],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(
        f"symbolic engine: {args.bars} bars x {args.variants} variants, {Path(args.region).name}, "
        f"model {model.name} ({model.model.num_parameters() / 1e6:.1f}M params), {args.threads} threads"
    )
    print(f"{'mode':<10} {'wall s':>8} {'tokens/s':>10} {'ratio':>7}")
    for name in ("kv_cache", "no_cache"):
        ratio = best["no_cache"] / best[name]
        print(f"{name:<10} {best[name]:>8.2f} {tokens / best[name]:>10.0f} {ratio:>6.1f}x")
    print(f"({tokens} generated tokens, prompt {len(prompt)} tokens; best of {args.repeats}; json: {out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
