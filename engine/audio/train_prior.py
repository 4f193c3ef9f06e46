"""Train the audio prior on codec codes, and ``segue train audio`` (the codec, then the prior).

``segue train audio --data AUDIO_DIR --out MODEL_DIR [--codec-minutes M] [--prior-minutes M] [...]``
    trains the codec into ``MODEL_DIR/codec`` (:mod:`engine.audio.train_codec`; an existing one is reused) and then
    the prior into ``MODEL_DIR``: a complete audio model folder for ``segue continue --model MODEL_DIR``.
``python -m engine.audio.train_prior --data AUDIO_DIR --codec CODEC_DIR --out MODEL_DIR [...]``
    trains the prior alone on a trained codec.

``AUDIO_DIR`` is a folder made by :mod:`engine.audio.data` or any folder of audio files (split by file). Every file
is encoded once with the codec and the codes cached (``--code-cache``, default ``OUT/code_cache``; rebuilt when
the codec or the data change). Batches are random windows of the delay-interleaved code streams
(:mod:`engine.audio.sampling`); windows that reach past a file's start or end see the special id there, and
positions whose target is the special id are not scored. The loop is the MIDI trainer's
(:func:`engine.training.train_lm`): AdamW, warmup + cosine over whichever budget ends first
(``--max-steps``/``--max-minutes``), gradient clipping, validation loss in nats per code to
``OUT/train_log.jsonl``, the best checkpoint by validation, ``resume/`` for ``--resume``, one process or several
under ``torchrun`` (DistributedDataParallel; rank 0 writes).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from engine import training
from engine.atomic import write_bytes
from engine.audio.prior import PRESETS, Codec, prior_config, save_prior, special_token
from engine.checkpoints import write_json_atomic
from engine.errors import BadInputError
from engine.nn.model import GPT

log = logging.getLogger(__name__)

CACHE_VERSION = 1
ENCODE_CHUNK_SECONDS = 30.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = training.trainer_parser("python -m engine.audio.train_prior", __doc__)
    p.add_argument("--data", type=Path, required=True, help="audio folder (engine.audio.data output or any)")
    p.add_argument("--codec", type=Path, required=True, help="trained codec folder")
    p.add_argument("--out", type=Path, required=True, help="model folder (its name is the model name)")
    training.add_lm_arguments(p, sorted(PRESETS), "context in frames", eval_windows=32)
    p.add_argument("--code-cache", type=Path, default=None, help="default: OUT/code_cache")
    p.add_argument("--val-fraction", type=float, default=0.05, help="for plain audio folders")
    training.add_run_arguments(p)
    p.add_argument("--description", default="", help="description stored in config.json")
    return training.parse_with_budget(p, argv)


# ------------------------------------------------------------------------------------------------ code cache


def codec_fingerprint(codec_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        digest.update((codec_dir / name).read_bytes())
    return digest.hexdigest()[:16]


@torch.inference_mode()
def encode_clip(codec: Codec, audio: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """int16 mono at the codec's rate -> codes ``[Q, ceil(n / hop)]``, encoded in chunks of whole frames."""
    hop = codec.hop_length
    chunk = max(hop, int(ENCODE_CHUNK_SECONDS * codec.sample_rate) // hop * hop)
    parts = []
    for start in range(0, audio.size, chunk):
        wav = torch.from_numpy(audio[start : start + chunk].astype(np.float32) / 32767.0)[None, None]
        parts.append(codec.encode(wav)[0].cpu().numpy().astype(np.int16))
    return np.concatenate(parts, axis=1)


@dataclass
class CodeSet:
    """Each split's codes ``[Q, total frames]`` (files end to end) and where each file starts."""

    codes: dict[str, npt.NDArray[np.int16]]
    starts: dict[str, npt.NDArray[np.int64]]  # file start frames, then the total
    special: int
    meta: dict[str, Any]

    @classmethod
    def build(cls, data: Path, codec: Codec, codec_dir: Path, cache: Path, val_fraction: float) -> CodeSet:
        """Encode the audio folder with the codec into ``cache`` (reused while codec and data are the same)."""
        from engine.audio.data import load_split

        key = {
            "version": CACHE_VERSION,
            "codec": codec_fingerprint(codec_dir),
            "data": str(Path(data).expanduser().resolve()),
            "val_fraction": val_fraction,
        }
        meta_path = cache / "meta.json"
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("key") == key:
                log.info("code cache %s is up to date", cache)
                return cls.load(cache, codec.codebook_size)
            log.info("code cache %s is stale (another codec or data); rebuilding", cache)
        cache.mkdir(parents=True, exist_ok=True)
        meta = {"key": key, "frame_rate": codec.frame_rate, "n_codebooks": codec.n_codebooks, "splits": {}}
        from tqdm import tqdm

        for split in ("train", "val"):
            clips = load_split(data, split, codec.sample_rate, val_fraction)
            coded = [encode_clip(codec, clip) for clip in tqdm(clips, desc=f"encoding {split}", unit="file")]
            coded = [c for c in coded if c.shape[1] >= 2]
            if not coded:
                raise BadInputError(
                    f"--data {data} has no {split} audio: give a folder with several audio files (the {split} split "
                    "is drawn by file)"
                )
            starts = np.cumsum([0] + [c.shape[1] for c in coded]).astype(np.int64)
            for name, array in ((split, np.concatenate(coded, axis=1)), (f"{split}_starts", starts)):
                buffer = io.BytesIO()
                np.save(buffer, array)
                write_bytes(cache / f"{name}.npy", buffer.getbuffer())
            meta["splits"][split] = {"files": len(coded), "frames": int(starts[-1])}
        write_json_atomic(meta_path, meta)
        return cls.load(cache, codec.codebook_size)

    @classmethod
    def load(cls, cache: Path, codebook_size: int) -> CodeSet:
        meta = json.loads((cache / "meta.json").read_text(encoding="utf-8"))
        codes = {s: np.load(cache / f"{s}.npy") for s in ("train", "val")}
        starts = {s: np.load(cache / f"{s}_starts.npy") for s in ("train", "val")}
        return cls(codes, starts, codebook_size, meta)

    def window(self, split: str, start: int, length: int) -> npt.NDArray[np.int64]:
        """``length`` delay-interleaved steps from frame ``start`` of the split, special outside its file."""
        codes, starts = self.codes[split], self.starts[split]
        Q = codes.shape[0]
        file = int(np.searchsorted(starts, start, side="right")) - 1
        lo, hi = int(starts[file]), int(starts[file + 1])
        frames = start + np.arange(length)[None, :] - np.arange(Q)[:, None]  # [Q, length]
        inside = (frames >= lo) & (frames < hi)
        out = np.full((Q, length), self.special, dtype=np.int64)
        out[inside] = codes[np.nonzero(inside)[0], frames[inside]]
        return out

    def _pair(self, windows: list[npt.NDArray[np.int64]]) -> tuple[torch.Tensor, torch.Tensor]:
        steps = torch.from_numpy(np.stack(windows))  # [B, Q, block + 1]
        x, y = steps[:, :, :-1], steps[:, :, 1:].clone()
        y[y == self.special] = -100  # the pattern's corners are not predicted
        return x, y

    def batch(
        self, split: str, batch_size: int, block: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows: a file drawn by length, a start anywhere in it (so file starts and ends are seen)."""
        starts = self.starts[split]
        picks = rng.integers(0, int(starts[-1]), size=batch_size)
        return self._pair([self.window(split, int(p), block + 1) for p in picks])

    def eval_windows(self, block: int, limit: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Consecutive windows over the whole val split (the first ``limit`` evenly spaced ones)."""
        total = int(self.starts["val"][-1])
        offsets = list(range(0, max(1, total - 1), block))
        if limit is not None and len(offsets) > limit:
            offsets = [offsets[round(i * (len(offsets) - 1) / (limit - 1))] for i in range(limit)] if limit > 1 else [0]
        return [self._pair([self.window("val", o, block + 1)]) for o in offsets]


# ---------------------------------------------------------------------------------------------------- training


def main(argv: list[str]) -> int:
    """Train the prior alone (``python -m engine.audio.train_prior``)."""
    args = parse_args(argv)
    training.log_to_console()
    from engine.audio.codec import load_codec

    rank, world, device, rng = process = training.start_process(args)
    codec_dir = args.codec.expanduser()
    codec: Codec = load_codec(codec_dir, device)
    cache = args.code_cache or args.out / "code_cache"
    if rank == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        CodeSet.build(args.data, codec, codec_dir, cache, args.val_fraction)
    if world > 1:
        torch.distributed.barrier()
    codes = CodeSet.load(cache, codec.codebook_size)
    config = prior_config(args.preset, codec, args.block_size)
    model = GPT(config).to(device)
    assert special_token(config) == codes.special
    state: dict[str, Any] = {"step": 0, "tokens_seen": 0, "elapsed_s": 0.0, "best_val": float("inf"), "best_step": -1}
    opt = training.optimizer(model, args)
    run = training.Run.start(args, model, opt, state, process, skip=("lm_head.weight",))
    autocast = device.type == "cuda"
    eval_windows = codes.eval_windows(config.block_size, args.eval_windows)
    summary = {"data": str(args.data), "codec": str(codec_dir), "frame_rate": codec.frame_rate,
               **{f"{s}_{k}": v for s, d in codes.meta["splits"].items() for k, v in d.items()}}  # fmt: skip
    log.info("prior %s: %.2fM parameters, %d train frames, %d val frames, device %s x%d", args.preset,
             model.num_parameters() / 1e6, summary["train_frames"], summary["val_frames"], device, world)  # fmt: skip
    codec_ref = _codec_ref(args.out, codec_dir)

    def batch() -> tuple[torch.Tensor, torch.Tensor, int]:
        x, y = codes.batch("train", args.batch_size, config.block_size, rng)
        return x, y, x.numel() * world

    def save(val: float) -> None:
        save_prior(model, codec, args.out, codec_ref, _extra(args, summary, state, val))

    def validate() -> float:
        return training.evaluate(model, eval_windows, device, autocast)

    best = training.train_lm(run, batch, validate, save, training.BarConsole(run))
    if rank == 0 and best is not None:
        model.load_state_dict(best)
        full = training.evaluate(model, codes.eval_windows(config.block_size), device, autocast)
        extra = _extra(args, summary, {**state, "step": state["best_step"]}, full)
        extra["val_loss_subset"] = state["best_val"]
        save_prior(model, codec, args.out, codec_ref, extra)
        training.append_log(args.out, {"final": True, "best_step": state["best_step"], "val_loss_full": full})
        log.info("best step %d: val loss %.4f nats/code on the whole val split", state["best_step"], full)
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


def _codec_ref(out: Path, codec_dir: Path) -> str:
    """The codec folder as the model's config names it: relative when it is inside the model folder."""
    try:
        return codec_dir.resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return str(codec_dir.resolve())


def _extra(args: argparse.Namespace, summary: dict[str, Any], state: dict[str, Any], val: float) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "description": args.description or "Segue audio model (a prior over codec codes)",
        "training": training.lm_training(args, summary, state),
        "val_loss": val,
        "val_loss_unit": "nats per code (mean over codebooks)",
    }
    return training.named(extra, args)


# ------------------------------------------------------------------------------------------ segue train audio


def parse_audio_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(
        prog="segue train audio",
        description="Train an audio model on a folder of audio: the codec (into OUT/codec), then the prior (OUT). "
        "Options not listed here go to the prior's trainer (python -m engine.audio.train_prior --help).",
    )
    p.add_argument("--data", type=Path, required=True, help="folder of audio files, or engine.audio.data's output")
    p.add_argument("--out", type=Path, required=True, help="model folder (its name is the model name)")
    p.add_argument("--codec", type=Path, default=None, help="use this trained codec instead of training one")
    p.add_argument("--codec-minutes", type=float, default=30.0, help="codec training time (%(default)s)")
    p.add_argument("--prior-minutes", type=float, default=30.0, help="prior training time (%(default)s)")
    p.add_argument("--codec-preset", default="small", help="engine.audio.codec preset (%(default)s)")
    p.add_argument("--codec-args", default="", help="more options for engine.audio.train_codec, quoted")
    p.add_argument("--resume", action="store_true", help="continue both trainings in OUT")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    return p.parse_known_args(argv)


def train_audio(argv: list[str]) -> int:
    """``segue train audio``: the codec into ``OUT/codec`` (unless given or already there), then the prior."""
    args, rest = parse_audio_args(argv)
    if not args.data.expanduser().is_dir():
        raise BadInputError(f"--data {args.data} is not a folder; give a folder of audio files (WAV, FLAC, AIFF)")
    common = ["--device", args.device] + (["--threads", str(args.threads)] if args.threads else [])
    codec_dir = args.codec
    if codec_dir is None:
        codec_dir = args.out / "codec"
        if (codec_dir / "model.safetensors").is_file() and not args.resume:
            log.info("reusing the codec in %s (pass --resume to train it further, or delete it)", codec_dir)
        else:
            from engine.audio import train_codec

            codec_argv = ["--data", str(args.data), "--out", str(codec_dir), "--preset", args.codec_preset,
                          "--max-minutes", str(args.codec_minutes), *common, *args.codec_args.split()]  # fmt: skip
            if args.resume and (codec_dir / "resume").is_dir():
                codec_argv.append("--resume")
            code = train_codec.main(codec_argv)
            if code:
                return code
    prior_argv = ["--data", str(args.data), "--codec", str(codec_dir), "--out", str(args.out),
                  "--max-minutes", str(args.prior_minutes), *common, *rest]  # fmt: skip
    if args.resume and (args.out / "resume").is_dir():
        prior_argv.append("--resume")
    return main(prior_argv)


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
