"""Audio prior speed: K variants x N bars continuing a region, sampling alone and the whole continuation.

    python bench/bench_audio_prior.py [--model DIR] [--preset small] [--codec-preset small] [--tempo 100]
                                      [--bars 8] [--variants 4] [--repeats 2] [--threads 2] [--device cpu]

Without ``--model``, a prior of ``--preset`` over a codec of ``--codec-preset`` is built with RANDOM weights: speed
only (the same shapes and step count as a trained model of that size; the audio is noise). With ``--model DIR`` an
installed/trained audio model is timed. The region is 8 bars of a synthetic 48 kHz stereo loop at ``--tempo``.
Prints a table and writes bench/results/audio_prior.json.

Figures: steps/s (one step = one frame of every variant), tokens/s (steps x variants x codebooks), and the
real-time factor of the whole ``continue_audio`` call (seconds of audio produced, all variants, per second).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _common import ROOT, audio_job_arguments, bench_parser
from bench_audio import synthetic_region

from engine.api import Meter
from engine.audio.continuation import BarGrid, continue_audio, encode_prompt, plan_prompt
from engine.audio.prior import AudioModel, prior_config
from engine.audio.sampling import Draws, SamplingOptions, sample_frames
from engine.checkpoints import find_checkpoint
from engine.nn.model import GPT


def build_model(args: argparse.Namespace, device: torch.device) -> AudioModel:
    if args.model:
        return AudioModel.load(find_checkpoint(args.model, kind="audio"), device)
    from engine.audio.codec import PRESETS, Codec

    torch.manual_seed(0)
    codec = Codec(PRESETS[args.codec_preset]).to(device).eval()
    prior = GPT(prior_config(args.preset, codec)).to(device).eval()
    return AudioModel(f"random {args.preset} prior / {args.codec_preset} codec", prior, codec)


def parse_args() -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--model", default=None, help="an audio model (name or folder); default: random weights")
    parser.add_argument("--preset", default="small", help="prior preset for random weights (%(default)s)")
    parser.add_argument("--codec-preset", default="small", help="codec preset for random weights (%(default)s)")
    audio_job_arguments(parser)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "bench/results/audio_prior.json"))
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build_model(args, device)
    codec, config = model.codec, model.prior.config
    grid = BarGrid(args.tempo, Meter(4, 4))
    region = synthetic_region(grid, 8)
    options = SamplingOptions()
    plan = plan_prompt(model, grid, region.bars, options)
    prompt = encode_prompt(model, region, plan)
    seeds = [1000 + i for i in range(args.variants)]
    out_seconds = args.bars * grid.bar_seconds
    frames = int(np.ceil(out_seconds * codec.frame_rate)) + 2
    steps = frames + codec.n_codebooks - 1

    sample_s, total_s = [], []
    timings: dict[str, float] = {}
    for _ in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        sample_frames(model.prior, prompt, frames, Draws(seeds), options=options)
        if device.type == "cuda":
            torch.cuda.synchronize()
        sample_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = continue_audio(model, region, args.bars, Draws(seeds), options=options)
        total_s.append(time.perf_counter() - t0)
        timings = result.timings
    best_sample, best_total = min(sample_s), min(total_s)
    row = {
        "model": model.name,
        "prior_parameters": model.prior.num_parameters(),
        "codec_parameters": sum(p.numel() for p in codec.parameters()),  # type: ignore[attr-defined]
        "context_frames": config.block_size,
        "codebooks": codec.n_codebooks,
        "frame_rate": codec.frame_rate,
        "prompt_frames": plan.frames,
        "new_frames": frames,
        "variants": args.variants,
        "bars": args.bars,
        "audio_seconds_per_variant": out_seconds,
        "sample_seconds": round(best_sample, 3),
        "steps_per_second": round(steps / best_sample, 1),
        "tokens_per_second": round(steps * args.variants * codec.n_codebooks / best_sample, 1),
        "continue_seconds": round(best_total, 3),
        "encode_seconds": round(timings.get("encode_seconds", 0.0), 3),
        "decode_seconds": round(timings.get("decode_seconds", 0.0), 3),
        "real_time_factor": round(out_seconds * args.variants / best_total, 2),
    }
    machine = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
    }
    print(
        f"{row['model']}: prior {row['prior_parameters'] / 1e6:.2f}M params, context {config.block_size} frames, "
        f"{codec.n_codebooks} codebooks at {codec.frame_rate:g} frames/s; {machine['device']}, "
        f"{args.threads} threads"
    )
    print(
        f"{args.variants} variants x {args.bars} bars at {args.tempo:g} BPM = {args.variants} x {out_seconds:.1f} s; "
        f"prompt {plan.frames} frames, {frames} new frames each"
    )
    print()
    print("| stage | seconds | rate |")
    print("| --- | ---: | ---: |")
    print(
        f"| sampling (prior only) | {best_sample:.2f} | {row['steps_per_second']:.0f} steps/s, "
        f"{row['tokens_per_second']:.0f} tokens/s |"
    )
    print(
        f"| continue_audio (encode + sample + decode + join) | {best_total:.2f} | "
        f"real-time factor {row['real_time_factor']:.2f} |"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "result": row}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
