"""Audio continuation speed: the default audio model against MusicGen's small architecture, in one run.

    python bench/bench_audio.py [--model segue-audio-small] [--bars 8] [--variants 4] [--tempo 100]
                                [--musicgen-steps 48] [--musicgen-full] [--no-musicgen] [--threads 2]

Both models continue the same region (a synthetic 48 kHz stereo loop, 4 bars of 4/4 at ``--tempo``: 9.6 s at
100 BPM, so both are primed on the same 480 frames at 50 frames/s) by ``--variants`` x ``--bars`` bars, through the
same code path (:func:`engine.audio.continuation.continue_audio`: encode, windowed primed sampling, decode, loudness,
join), on the same CPU.

1. **Segue** (``--model``, default: the shipped ``segue-audio-small``): the whole job as a producer runs it,
   ``segue continue region.wav --tempo 100 --meter 4/4 --bars 8 --variants 4`` through the local engine (reading
   the file, the model already loaded, writing every variant's ``continuation.wav`` and ``full.wav``); best of
   ``--repeats``. The sampling rate (steps/s, tokens/s) comes from a separate timed ``sample_frames`` call.
2. **MusicGen small architecture** (transformers ``MusicgenForConditionalGeneration`` with musicgen-small's
   configuration: T5-base text encoder, 32 kHz EnCodec, 24-layer 1024-wide decoder over 4 x 2048 codes; RANDOM
   weights: speed only, its audio is noise), built in memory and wrapped by the adapter that
   ``--model musicgen:DIR`` wraps a user's checkpoint in (:mod:`engine.audio.musicgen`). On two CPU cores a full
   8-bar run takes many minutes, so by default it samples ``--musicgen-steps`` new frames, and the time of the
   full run is **extrapolated** from what was measured: encode + prefill of the prompt + (steps needed) /
   (measured steps/s) + decode of the full length (measured on its own). ``--musicgen-full`` runs the whole
   continuation instead.

Prints a table and writes ``bench/results/audio.json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import ROOT, audio_job_arguments, bench_parser

from engine.api import GenerationParams, GenerationRequest, Meter, Prompt
from engine.audio.audio_io import AudioInfo
from engine.audio.continuation import (
    EXTRA_FRAMES,
    BarGrid,
    RegionAudio,
    continue_audio,
    encode_prompt,
    plan_prompt,
)
from engine.audio.prior import AudioModel
from engine.audio.sampling import Draws, SamplingOptions, sample_frames, windows_needed
from engine.local import LocalEngine
from engine.render.wavfile import write_wav

RATE = 48_000
REGION_BARS = 4


def synthetic_region(grid: BarGrid, bars: int, rate: int = RATE) -> RegionAudio:
    """A plucked tone on every beat over a drone, stereo (the right channel 1 dB down)."""
    t = np.arange(grid.samples(bars, rate)) / rate
    beat = (t % grid.beat_seconds) / grid.beat_seconds
    tone = np.sin(2 * np.pi * 220 * t) * np.exp(-5 * beat) + 0.3 * np.sin(2 * np.pi * 55 * t)
    audio = (0.3 * np.stack([tone, 0.9 * tone]) / np.abs(tone).max()).astype(np.float32)
    info = AudioInfo(Path("synthetic.wav"), rate, 2, audio.shape[1], "WAV", "PCM_24")
    return RegionAudio(info, grid, bars, audio.shape[1], audio)


def timed_sampling(model: AudioModel, prompt: torch.Tensor, frames: int, seeds: list[int]) -> dict[str, float]:
    """Sample ``frames`` new frames; split the time into the prompt's prefill and the steps after it (from the
    sampler's progress reports, which start on the first step after the prefill)."""
    options = SamplingOptions(step_threads=model.step_threads)
    stamps: list[float] = []
    t0 = time.perf_counter()
    sample_frames(model.prior, prompt, frames, Draws(seeds), options=options, progress=lambda f: stamps.append(
        time.perf_counter()))  # fmt: skip
    total = time.perf_counter() - t0
    steps = frames + model.codec.n_codebooks - 1
    prefill = stamps[0] - t0 if stamps else 0.0
    return {
        "prefill_seconds": round(prefill, 3),
        "sample_seconds": round(total, 3),
        "steps": steps,
        "steps_per_second": round(steps / max(1e-9, total - prefill), 2),
    }


def bench_segue(args: argparse.Namespace, grid: BarGrid, region: RegionAudio, work: Path) -> dict[str, Any]:
    engine = LocalEngine(device="cpu")
    model = engine.loaded.audio(args.model)  # loaded once, as the bridge keeps it loaded between jobs
    region_path = work / "region.wav"
    write_wav(region_path, region.audio, RATE)
    seconds = []
    result = None
    for repeat in range(args.repeats):
        request = GenerationRequest(
            prompt=Prompt(audio_path=region_path, tempo_bpm=args.tempo, meter=Meter(4, 4)),
            params=GenerationParams(bars=args.bars, variants=args.variants, seed=1000),
            model=args.model,
        )
        job_dir = work / f"job{repeat}"
        job_dir.mkdir()
        t0 = time.perf_counter()
        result = engine.generate(request, job_dir)
        seconds.append(time.perf_counter() - t0)
    assert result is not None
    plan = plan_prompt(model, grid, region.bars, SamplingOptions())
    prompt = encode_prompt(model, region, plan)
    frames = new_frames(model, grid, args.bars)
    sampling = timed_sampling(model, prompt, frames, [1000 + i for i in range(args.variants)])
    best = min(seconds)
    audio_seconds = args.bars * grid.bar_seconds * args.variants
    codec_params = sum(p.numel() for p in model.codec.parameters())  # type: ignore[attr-defined]
    return {
        "model": model.name,
        "weights": "trained",
        "prior_parameters": model.prior.num_parameters(),
        "codec_parameters": codec_params,
        "codec": f"{model.codec.sample_rate} Hz, {model.codec.n_codebooks} x {model.codec.codebook_size}",
        **frame_counts(model, plan.frames, frames),
        **sampling,
        "tokens_per_second": round(sampling["steps_per_second"] * args.variants * model.codec.n_codebooks, 1),
        "job_seconds": round(best, 3),
        "job_seconds_all": [round(s, 3) for s in seconds],
        "job_timings": {k: round(v, 3) for k, v in result.timings.items()} if result.timings else {},
        "measured": "whole job (segue continue through the local engine), best of repeats",
        "real_time_factor": round(audio_seconds / best, 2),
    }


def frame_counts(model: AudioModel, prompt_frames: int, frames: int) -> dict[str, int]:
    """The prior's context, the prompt and the new frames, and how many context windows sampling them takes."""
    block = model.prior.config.block_size
    windows = windows_needed(prompt_frames, frames, model.codec.n_codebooks, block, SamplingOptions().keep_steps(block))
    return {"context_frames": block, "prompt_frames": prompt_frames, "new_frames": frames, "windows": windows}


def new_frames(model: AudioModel, grid: BarGrid, bars: int) -> int:
    codec = model.codec
    return math.ceil(grid.samples(bars, RATE) * codec.sample_rate / RATE / codec.hop_length) + EXTRA_FRAMES


def musicgen_small_config() -> Any:
    """musicgen-small's architecture (facebook/musicgen-small's config.json, from memory of the release): T5-base,
    EnCodec 32 kHz (hop 640, 4 x 2048 codes at 2.2 kbit/s), decoder 24 layers x 1024, 16 heads, FFN 4096."""
    import transformers

    t5 = transformers.T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)
    encodec = transformers.EncodecConfig(
        sampling_rate=32000, audio_channels=1, num_filters=64, upsampling_ratios=[8, 5, 4, 4], codebook_size=2048,
        codebook_dim=128, hidden_size=128, num_lstm_layers=2, target_bandwidths=[2.2], use_causal_conv=False,
        normalize=False, norm_type="weight_norm", pad_mode="reflect", compress=2, residual_kernel_size=3,
        last_kernel_size=7, kernel_size=7, num_residual_layers=1, dilation_growth_rate=2,
    )  # fmt: skip
    decoder = transformers.MusicgenDecoderConfig(
        vocab_size=2048, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, ffn_dim=4096,
        num_codebooks=4, max_position_embeddings=2048, pad_token_id=2048, bos_token_id=2048,
        decoder_start_token_id=2048, activation_function="gelu", scale_embedding=False,
    )  # fmt: skip
    return transformers.MusicgenConfig(
        text_encoder=t5.to_dict(), audio_encoder=encodec.to_dict(), decoder=decoder.to_dict()
    )


def bench_musicgen(args: argparse.Namespace, grid: BarGrid, region: RegionAudio, work: Path) -> dict[str, Any]:
    import transformers

    from engine.audio.musicgen import MusicgenCodec, MusicgenPrior

    transformers.logging.set_verbosity_error()
    t0 = time.perf_counter()
    torch.manual_seed(0)
    built = transformers.MusicgenForConditionalGeneration(musicgen_small_config()).eval()
    with torch.no_grad():  # EnCodec's codebooks start as zeros: give them random entries so codes differ
        for layer in built.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
    total_params = sum(p.numel() for p in built.parameters())
    build_seconds = time.perf_counter() - t0
    # the adapter load_musicgen() wraps a checkpoint in (saving 2.4 GB to load it back would time the disk)
    model = AudioModel("musicgen-small (random)", MusicgenPrior(built), MusicgenCodec(built), step_threads=None)
    seeds = [1000 + i for i in range(args.variants)]
    codec = model.codec
    plan = plan_prompt(model, grid, region.bars, SamplingOptions())
    frames = new_frames(model, grid, args.bars)
    steps_full = frames + codec.n_codebooks - 1
    row: dict[str, Any] = {
        "model": "MusicGen small architecture (transformers, random weights)",
        "weights": "random",
        "prior_parameters": model.prior.num_parameters(),
        "all_parameters": total_params,
        "codec_parameters": sum(p.numel() for p in model.codec.encodec.parameters()),  # type: ignore[attr-defined]
        "codec": f"{codec.sample_rate} Hz, {codec.n_codebooks} x {codec.codebook_size}",
        **frame_counts(model, plan.frames, frames),
        "build_seconds": round(build_seconds, 1),
    }
    audio_seconds = args.bars * grid.bar_seconds * args.variants
    if args.musicgen_full:
        t0 = time.perf_counter()
        result = continue_audio(model, region, args.bars, Draws(seeds), options=SamplingOptions(step_threads=None))
        total = time.perf_counter() - t0
        row.update({
            "job_seconds": round(total, 3),
            "job_timings": {k: round(v, 3) for k, v in result.timings.items()},
            "steps_per_second": round(result.timings["steps_per_second"], 2),
            "measured": "whole continue_audio call (no file writes)",
            "real_time_factor": round(audio_seconds / total, 3),
        })  # fmt: skip
    else:
        t0 = time.perf_counter()
        prompt = encode_prompt(model, region, plan)
        encode_seconds = time.perf_counter() - t0
        sampling = timed_sampling(model, prompt, args.musicgen_steps, seeds)
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.codec.decode(torch.randint(0, codec.codebook_size, (args.variants, codec.n_codebooks, frames + 5)))
        decode_seconds = time.perf_counter() - t0
        estimate = encode_seconds + sampling["prefill_seconds"] + steps_full / sampling["steps_per_second"]
        estimate += decode_seconds
        row.update({
            "encode_seconds": round(encode_seconds, 3),
            **sampling,
            "sampled_frames": args.musicgen_steps,
            "decode_seconds": round(decode_seconds, 3),
            "job_seconds": round(estimate, 1),
            "measured": f"encode, prefill, {args.musicgen_steps} frames of sampling, decode of the full length; "
            f"the {steps_full} steps of the full run are extrapolated from the measured steps/s",
            "real_time_factor": round(audio_seconds / estimate, 3),
        })  # fmt: skip
    row.setdefault("prefill_seconds", float("nan"))
    row["tokens_per_second"] = round(row["steps_per_second"] * args.variants * codec.n_codebooks, 1)
    return row


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--model", default="default", help="Segue audio model (name or folder; default: shipped)")
    audio_job_arguments(parser)
    parser.add_argument("--musicgen-steps", type=int, default=48, help="frames MusicGen samples (then extrapolated)")
    parser.add_argument("--musicgen-full", action="store_true", help="run MusicGen's whole continuation")
    parser.add_argument("--no-musicgen", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench/results/audio.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    grid = BarGrid(args.tempo, Meter(4, 4))
    region = synthetic_region(grid, REGION_BARS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="segue-bench-audio-") as tmp:
        work = Path(tmp)
        rows.append(bench_segue(args, grid, region, work))
        if not args.no_musicgen:
            rows.append(bench_musicgen(args, grid, region, work))
    machine = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": args.threads,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    per_variant = args.bars * grid.bar_seconds
    print(
        f"{args.variants} variants x {args.bars} bars at {args.tempo:g} BPM 4/4 (= {args.variants} x "
        f"{per_variant:.1f} s), continuing a {REGION_BARS}-bar 48 kHz stereo region; torch {torch.__version__}, "
        f"{args.threads} threads, load average {machine['load_average']}"
    )
    print()
    print(
        "| model | decoder params | prompt / new frames | prefill s | steps/s | tokens/s | total s | real-time factor |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        extrapolated = " (extrapolated)" if "extrapolated" in row["measured"] else ""
        print(
            f"| {row['model']} | {row['prior_parameters'] / 1e6:.1f}M | {row['prompt_frames']} / "
            f"{row['new_frames']} | {row['prefill_seconds']:.2f} | {row['steps_per_second']:.1f} | "
            f"{row['tokens_per_second']:.0f} | {row['job_seconds']:.1f}{extrapolated} | "
            f"{row['real_time_factor']:.2f} |"
        )
    for row in rows:
        print(f"- {row['model']}: {row['measured']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp_out.write_text(json.dumps({"machine": machine, "settings": vars(args), "results": rows}, indent=2) + "\n",
                       encoding="utf-8")  # fmt: skip
    os.replace(tmp_out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
