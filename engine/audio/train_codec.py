"""Train the audio codec: ``python -m engine.audio.train_codec --data DIR --out DIR [--max-minutes M] [...]``.

``DIR`` is a folder made by :mod:`engine.audio.data` (``manifest.json``, ``train/``, ``val/``) or any folder of
audio files (split by file, converted in memory). One CPU/GPU process, or several under
``torchrun --nproc_per_node=N`` (DistributedDataParallel; the EMA codebooks see every rank's vectors; rank 0
writes). Random crops of ``--segment-seconds`` with random gain and polarity; AdamW with warmup and a cosine
decay over whichever budget ends first (``--max-steps`` or ``--max-minutes``); gradient clipping.

Every ``--eval-every`` steps the codec encodes and decodes fixed held-out clips exactly as at inference time and
logs the multi-scale STFT distance, mel distance and SI-SDR (:mod:`engine.audio.codec_losses`) and how many codes
each codebook uses, to ``OUT/train_log.jsonl``. ``OUT`` receives the best checkpoint by mel distance
(``model.safetensors`` + ``config.json`` with the figures) and ``resume/`` (weights, optimizer and data-order
state) so that ``--resume`` continues a killed run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import training
from engine.audio.codec import PRESETS, Codec, CodecConfig, save_codec
from engine.audio.codec_losses import reconstruction_loss, reconstruction_metrics
from engine.audio.data import Int16Audio, audio_seconds, load_split
from engine.errors import BadInputError

log = logging.getLogger(__name__)

SILENCE_RMS = 10 ** (-55 / 20)  # crops quieter than -55 dBFS RMS are drawn again


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = training.trainer_parser("segue train audio-codec", __doc__)
    p.add_argument("--data", type=Path, required=True, help="prepared audio folder or any folder of audio files")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--segment-seconds", type=float, default=1.0)
    training.add_schedule_arguments(p, lr=1e-3, warmup_steps=200, eval_every=250)
    p.add_argument("--commitment-weight", type=float, default=1.0)
    p.add_argument("--eval-clips", type=int, default=32, help="held-out clips per periodic eval (final: all)")
    p.add_argument("--eval-seconds", type=float, default=4.0, help="length of each held-out clip")
    p.add_argument("--val-fraction", type=float, default=0.05, help="for plain audio folders")
    training.add_run_arguments(p)
    args = training.parse_with_budget(p, argv)
    if args.segment_seconds <= 0 or args.batch_size < 1:
        p.error("--segment-seconds and --batch-size must be positive")
    return args


# ------------------------------------------------------------------------------------------------------- data


def held_out_clips(val: list[Int16Audio], sample_rate: int, eval_seconds: float) -> torch.Tensor:
    """Every non-silent ``eval_seconds`` clip of the held-out files, in order: ``[N, 1, samples]`` float."""
    clip = max(1, round(eval_seconds * sample_rate))
    clips = [c[i : i + clip] for c in val for i in range(0, c.size - clip + 1, clip)]
    clips = [c for c in clips if np.sqrt(np.mean(np.square(c / 32768.0))) > SILENCE_RMS]
    if not clips:  # held-out files shorter than one clip: zero-pad them
        clips = [np.pad(c[:clip], (0, max(0, clip - c.size))) for c in val]
    return torch.from_numpy(np.stack(clips).astype(np.float32) / 32768.0)[:, None]


@dataclass
class AudioSet:
    """Train clips (int16) to crop from and fixed held-out clips ``[N, 1, samples]`` to score."""

    train: list[Int16Audio]
    val_clips: torch.Tensor
    sample_rate: int
    summary: dict[str, Any]

    @classmethod
    def load(cls, data: Path, sample_rate: int, eval_seconds: float, val_fraction: float) -> AudioSet:
        train = load_split(data, "train", sample_rate, val_fraction)
        val = load_split(data, "val", sample_rate, val_fraction)
        if not train:
            raise BadInputError(f"{data} holds no training audio; prepare it with `python -m engine.audio.data`")
        if not val:
            log.warning("%s has no held-out (val) audio; scoring on training audio instead", data)
            val = train[:4]
        val_clips = held_out_clips(val, sample_rate, eval_seconds)
        summary = {
            "data": str(data),
            "train_files": len(train),
            "train_seconds": round(audio_seconds(train, sample_rate), 1),
            "val_files": len(val),
            "val_clips": int(val_clips.shape[0]),
            "val_clip_seconds": eval_seconds,
        }
        manifest = Path(data) / "manifest.json"
        if manifest.is_file():
            meta = json.loads(manifest.read_text(encoding="utf-8"))
            summary.update({k: meta[k] for k in ("description", "licence", "soundfonts", "source") if k in meta})
        return cls(train, val_clips, sample_rate, summary)

    def batch(self, batch_size: int, segment: int, rng: np.random.Generator) -> torch.Tensor:
        """``[batch_size, 1, segment]`` random crops, random gain (-10..+4 dB, no clipping) and polarity."""
        lengths = np.array([c.size for c in self.train], dtype=np.float64)
        weights = lengths / lengths.sum()
        out = np.zeros((batch_size, 1, segment), dtype=np.float32)
        for row in range(batch_size):
            for _ in range(8):  # avoid silent crops
                clip = self.train[int(rng.choice(len(self.train), p=weights))]
                start = int(rng.integers(0, max(1, clip.size - segment + 1)))
                crop = clip[start : start + segment].astype(np.float32) / 32768.0
                if np.sqrt(np.mean(np.square(crop))) > SILENCE_RMS:
                    break
            gain = 10 ** (rng.uniform(-10.0, 4.0) / 20)
            peak = float(np.max(np.abs(crop), initial=0.0))
            if peak * gain > 0.99:
                gain = 0.99 / peak
            out[row, 0, : crop.size] = crop * gain * (1 if rng.random() < 0.5 else -1)
        return torch.from_numpy(out)


# ------------------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(codec: Codec, clips: torch.Tensor, device: torch.device, batch_size: int = 8) -> dict[str, float]:
    """Encode and decode ``clips [N, 1, T]`` as at inference time; mean metrics and codebook usage."""
    was_training = codec.training
    codec.eval()
    sums: dict[str, float] = {}
    used = [torch.zeros(codec.codebook_size, dtype=torch.bool) for _ in range(codec.n_codebooks)]
    for start in range(0, clips.shape[0], batch_size):
        target = clips[start : start + batch_size]
        codes = codec.encode(target.to(device))
        output = codec.decode(codes).float().cpu()
        for q in range(codec.n_codebooks):
            used[q][codes[:, q].reshape(-1).cpu()] = True
        for key, value in reconstruction_metrics(target, output, codec.sample_rate).items():
            sums[key] = sums.get(key, 0.0) + value * target.shape[0]
    codec.train(was_training)
    metrics = {k: v / clips.shape[0] for k, v in sums.items()}
    metrics["codes_used"] = [int(u.sum()) for u in used]  # type: ignore[assignment]
    return metrics


# --------------------------------------------------------------------------------------------------- training


def _extra(args: argparse.Namespace, data: AudioSet, state: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "training": {
            **data.summary,
            "preset": args.preset,
            "steps": state["step"],
            "audio_seconds_seen": round(state["audio_seconds"], 1),
            "minutes": round(state["elapsed_s"] / 60, 2),
            "batch_size": args.batch_size,
            "segment_seconds": args.segment_seconds,
            "lr": args.lr,
            "max_minutes": args.max_minutes,
            "max_steps": args.max_steps,
            "commitment_weight": args.commitment_weight,
            "seed": args.seed,
        },
        "val_metrics": metrics,
    }
    return training.named(extra, args)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run training as described by ``args`` (see :func:`parse_args`); returns the final val metrics."""
    rank, world, device, rng = process = training.start_process(args)
    config: CodecConfig = PRESETS[args.preset]
    data = AudioSet.load(args.data, config.sample_rate, args.eval_seconds, args.val_fraction)
    codec = Codec(config).to(device)
    opt = torch.optim.AdamW(codec.parameters(), lr=args.lr, betas=(0.8, 0.99), weight_decay=0.0)
    state: dict[str, Any] = {"step": 0, "audio_seconds": 0.0, "elapsed_s": 0.0, "best": float("inf"), "best_step": -1}
    if rank == 0:
        args.out.mkdir(parents=True, exist_ok=True)
    run = training.Run.start(args, codec, opt, state, process)
    eval_clips = data.val_clips[: args.eval_clips]
    segment = max(config.hop_length, round(args.segment_seconds * config.sample_rate))
    log.info(
        "%s: %.2fM parameters, %d Hz, %.1f frames/s, %d x %d codes; %.1f min train audio, %d val clips; %s x%d",
        args.preset, codec.num_parameters() / 1e6, config.sample_rate, config.frame_rate, config.n_codebooks,
        config.codebook_size, data.summary["train_seconds"] / 60, data.val_clips.shape[0], device, world,
    )  # fmt: skip
    console = training.BarConsole(run, ".1e", mininterval=0.1 if sys.stderr.isatty() else 30)
    sums: dict[str, float] = {}
    count = 0

    def step() -> tuple[torch.Tensor, float]:
        nonlocal count
        wav = data.batch(args.batch_size, segment, rng).to(device)
        output, _, commitment = run.train_model(wav)
        losses = reconstruction_loss(wav, output, config.sample_rate)
        loss = losses["total"] + args.commitment_weight * commitment
        for key, value in {**losses, "commitment": commitment, "loss": loss}.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        count += 1
        return loss, args.batch_size * segment / config.sample_rate * world

    def evaluate_now(at: int, elapsed: float) -> None:
        nonlocal count
        metrics = evaluate(codec, eval_clips, device)
        record = {
            "step": at,
            "audio_seconds": round(state["audio_seconds"], 1),
            "minutes": round(elapsed / 60, 3),
            "lr": opt.param_groups[0]["lr"],
            **{f"train_{k}": v / count for k, v in sums.items()},
            **{f"val_{k}": v for k, v in metrics.items()},
        }
        sums.clear()
        count = 0
        training.append_log(args.out, record)
        console.record(record)
        if metrics["mel_distance"] < state["best"]:
            state["best"], state["best_step"] = metrics["mel_distance"], at
            save_codec(codec, args.out, extra=_extra(args, data, state, metrics))

    training.run_loop(run, step, evaluate_now, console, "audio_seconds")
    final: dict[str, Any] = {}
    if rank == 0:
        final = _finish(args, codec, data, state, device)
    if world > 1:
        torch.distributed.destroy_process_group()
    return final


def _finish(
    args: argparse.Namespace, codec: Codec, data: AudioSet, state: dict[str, Any], device: torch.device
) -> dict[str, Any]:
    """Score the best checkpoint on every held-out clip and store those figures in its config.json."""
    from engine.audio.codec import load_codec

    if not (args.out / "config.json").is_file():
        return {}
    best = load_codec(args.out, device)
    metrics = evaluate(best, data.val_clips, device)
    config = json.loads((args.out / "config.json").read_text(encoding="utf-8"))
    subset = config.get("val_metrics", {})
    best_state = {**state, "step": state["best_step"]}
    best_state["audio_seconds"] = config["training"]["audio_seconds_seen"]
    best_state["elapsed_s"] = config["training"]["minutes"] * 60
    extra = _extra(args, data, best_state, metrics)
    extra["val_metrics_subset"] = subset
    extra["training"]["total_steps_run"] = state["step"]
    extra["training"]["total_minutes_run"] = round(state["elapsed_s"] / 60, 2)
    save_codec(best, args.out, extra=extra)
    training.append_log(
        args.out, {"final": True, "best_step": state["best_step"], **{f"val_{k}": v for k, v in metrics.items()}}
    )
    log.info("best step %d on all %d held-out clips: %s", state["best_step"], data.val_clips.shape[0], metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    training.log_to_console()
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
