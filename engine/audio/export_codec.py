"""Export a trained codec for shipping: weights (float16 when quality holds), config and a filled-in model card.

``python -m engine.audio.export_codec --src runs/audio-codec --out engine/models/segue-audio-codec``

The source's best checkpoint is scored on every held-out clip of its training data (``--data``, default: the
folder named in its config) in float32, then written to ``--out`` in float16 and scored again exactly as users will
load it. float16 is kept when the mel distance rises by less than 1% and SI-SDR falls by less than 0.1 dB
(``--dtype auto``); otherwise the weights stay float32. The export refuses weights over 15 MB. ``MODEL_CARD.md``
states the data provenance and licences (from the data manifest), the architecture, size, speed and the
held-out figures; ``train_log.jsonl`` is copied beside it.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from engine.atomic import write_text
from engine.audio.codec import CONFIG_NAME, WEIGHTS_NAME, Codec, load_codec, read_codec_config, save_codec
from engine.audio.data import load_split
from engine.audio.train_codec import evaluate, held_out_clips
from engine.checkpoints import write_json_atomic
from engine.errors import BadInputError
from engine.training import LOG_NAME

log = logging.getLogger(__name__)

MAX_BYTES = 15_000_000
DTYPES = {"float16": torch.float16, "float32": torch.float32}


def _speed(codec: Codec, seconds: float = 10.0) -> dict[str, float]:
    """Real-time factors (audio seconds per wall second) of encode and decode on ``seconds`` of noise."""
    wav = torch.randn(1, 1, round(seconds * codec.sample_rate)) * 0.1
    with torch.inference_mode():
        codec.decode(codec.encode(wav[..., : codec.sample_rate]))  # warm-up
        t0 = time.perf_counter()
        codes = codec.encode(wav)
        t1 = time.perf_counter()
        codec.decode(codes)
        t2 = time.perf_counter()
    return {"encode_rtf": round(seconds / (t1 - t0), 1), "decode_rtf": round(seconds / (t2 - t1), 1)}


def _data_summary(data: Path) -> dict[str, Any]:
    manifest_path = data / "manifest.json"
    if not manifest_path.is_file():
        return {"kind": "audio-folder", "path": str(data)}
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    files = manifest.get("files", {}).values()
    per_collection: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for f in files:
        entry = per_collection[str(f.get("collection") or "audio files")]
        entry[0] += 1
        entry[1] += float(f["seconds"])
    return {
        "kind": manifest.get("source", {}).get("kind", "prepared"),
        "description": manifest.get("description", ""),
        "licence": manifest.get("licence", ""),
        "soundfonts": manifest.get("soundfonts", []),
        "sample_rate": manifest.get("sample_rate"),
        "minutes_requested": manifest.get("minutes_requested"),
        "max_piece_seconds": manifest.get("max_piece_seconds"),
        "seed": manifest.get("seed"),
        "totals": manifest.get("totals", {}),
        "synthetic_drum_files": sum(1 for f in files if f.get("synthetic_drums")),
        "collections": {
            k: {"files": v[0], "minutes": round(v[1] / 60, 1)}
            for k, v in sorted(per_collection.items(), key=lambda kv: -kv[1][1])
        },
    }


def export_codec(
    src: Path,
    out: Path,
    *,
    data: Path | None = None,
    dtype: str = "auto",
    threads: int | None = None,
    val_fraction: float = 0.05,
) -> dict[str, Any]:
    """Write ``src``'s codec into ``out`` (weights, config.json, MODEL_CARD.md, train_log.jsonl); returns the config."""
    if out.resolve() == src.resolve():
        raise BadInputError("--out must differ from --src: the export never overwrites its source")
    if threads:
        torch.set_num_threads(threads)
    _, source_config = read_codec_config(src)
    codec = load_codec(src)
    data = data or Path(source_config.get("training", {}).get("data", ""))
    if not data or not Path(data).is_dir():
        raise BadInputError(f"the held-out data folder {data!s} is missing; pass --data DIR (the training data)")
    val = load_split(Path(data), "val", codec.sample_rate, val_fraction)
    if not val:
        raise BadInputError(f"{data} has no held-out (val) audio to score the codec on")
    clips = held_out_clips(val, codec.sample_rate, 4.0)
    device = torch.device("cpu")
    full = evaluate(codec, clips, device)
    log.info("float32: %s on %d clips", full, clips.shape[0])
    extra = {
        k: v
        for k, v in source_config.items()
        if k not in ("type", "name", "codec", "parameters", "frame_rate", "weights_dtype")
    }
    chosen = "float32" if dtype == "float32" else "float16"
    save_codec(codec, out, dtype=DTYPES[chosen], extra=extra)
    shipped = load_codec(out)
    metrics = evaluate(shipped, clips, device)
    if dtype == "auto" and (
        metrics["mel_distance"] > full["mel_distance"] * 1.01 or metrics["si_sdr"] < full["si_sdr"] - 0.1
    ):
        log.info("float16 costs quality (%s); keeping float32", metrics)
        chosen = "float32"
        save_codec(codec, out, dtype=torch.float32, extra=extra)
        shipped = load_codec(out)
        metrics = evaluate(shipped, clips, device)
    size = (out / WEIGHTS_NAME).stat().st_size
    if size > MAX_BYTES:
        raise BadInputError(f"{out / WEIGHTS_NAME} is {size / 1e6:.1f} MB; the shipped codec must be at most 15 MB")
    if (src / LOG_NAME).is_file():
        shutil.copyfile(src / LOG_NAME, out / LOG_NAME)
    config: dict[str, Any] = json.loads((out / CONFIG_NAME).read_text(encoding="utf-8"))
    config.update(
        {
            "val_metrics": metrics,
            "val_metrics_float32": full,
            "val_clips_scored": int(clips.shape[0]),
            "weights_bytes": size,
            "speed_1_thread" if threads == 1 else "speed": _speed(shipped),
            "data_summary": _data_summary(Path(data)),
        }
    )
    write_json_atomic(out / CONFIG_NAME, config)
    write_text(out / "MODEL_CARD.md", model_card(out.name, config, shipped))
    return config


def model_card(name: str, config: dict[str, Any], codec: Codec) -> str:
    """The MODEL_CARD.md text, filled from ``config`` (as written by :func:`export_codec`)."""
    c = codec.config
    m = config["val_metrics"]
    m32 = config["val_metrics_float32"]
    t = config.get("training", {})
    d = config.get("data_summary", {})
    speed = config.get("speed_1_thread") or config.get("speed") or {}
    bits = c.n_codebooks * c.frame_rate * torch.log2(torch.tensor(float(c.codebook_size))).item()
    collections_rows = "\n".join(
        f"| {k} | {v['files']} | {v['minutes']} |" for k, v in d.get("collections", {}).items()
    )
    fonts = ", ".join(f"{f['name']} ({f['licence']})" for f in d.get("soundfonts", [])) or "none (user audio)"
    totals = d.get("totals", {})
    dtype, size_mb = config["weights_dtype"], config["weights_bytes"] / 1e6
    train_min = totals.get("train", {}).get("seconds", 0) / 60
    val_min = totals.get("val", {}).get("seconds", 0) / 60
    return f"""# {name}

A small residual-VQ neural audio codec (EnCodec/MusicGen lineage) that turns mono audio into
{c.n_codebooks} parallel streams of discrete codes and back. It is the tokenizer of Segue's audio engine: the audio
prior models these codes with MusicGen's delay interleaving (one transformer step = one frame of
{c.n_codebooks} codes). It is not a generator by itself. Trained for {t.get("minutes", "?")} minutes on CPU, so
expect intelligible but clearly coded sound (muffled highs, smeared transients), not transparency.

**Licence of these weights: non-commercial use only** (they are derived from the music21 corpus; see below).

## Files

| file | what |
| --- | --- |
| `model.safetensors` | weights and codebooks, {dtype} ({size_mb:.2f} MB); they load into a float32 model |
| `config.json` | codec config, training summary, held-out metrics |
| `train_log.jsonl` | training losses and held-out metrics every few hundred steps |

## Architecture and size

`engine/audio/codec.py`: SEANet-like convolutional encoder (strides {list(c.strides)}, channels {c.base_channels}
doubling per level up to {c.max_channels}, {c.residual_layers} residual unit(s) per level, ELU) to a
{c.latent_dim}-dimensional latent at **{c.frame_rate:g} frames/s**; a residual vector quantizer with
**{c.n_codebooks} codebooks x {c.codebook_size} entries** (EMA updates, decay {c.ema_decay}, k-means init,
dead-code restarts); a mirrored transposed-conv decoder. **{c.sample_rate} Hz mono**, hop {c.hop_length} samples,
{bits / 1000:.2f} kbit/s. **{config["parameters"]:,} parameters**. Non-causal, deterministic; `encode` pads the
input with zeros to a whole number of frames. No adversarial loss (see docs/audio-engine.md).

Speed on this machine's CPU (torch {torch.__version__}, {torch.get_num_threads()} thread(s)): encode
{speed.get("encode_rtf", "?")}x real time, decode {speed.get("decode_rtf", "?")}x real time (10 s of audio).

## Training data (provenance)

{d.get("description", "")}. {train_min:.1f} minutes for training, {val_min:.1f} minutes held out (split by piece,
with the rule the symbolic model uses, so the held-out pieces are the same). Pieces were drawn at random (multi-part
works 3x as often), each re-instrumented half of the time with random General MIDI programs, its tempo scaled by
0.8-1.25, its loudness set to -28..-14 dB RMS, at most {d.get("max_piece_seconds", "?")} s per piece;
{d.get("synthetic_drum_files", 0)} files carry a
**synthetic, rule-based drum part** (`engine/symbolic/drums.py`, not in the sources) rendered with a random GM drum kit.
Training crops get a further random gain (-10..+4 dB) and polarity. Soundfont(s): {fonts}.

| collection | files | minutes |
| --- | ---: | ---: |
{collections_rows}

All audio is synthesized: there is no recorded audio, voice, or real drum kit in the data.

## Licences

- Data: {d.get("licence", "")}
- `music21/corpus/license.txt` and `music21/corpus/essenFolksong/license.txt` allow non-commercial use; the
  Palestrina files (rights reserved) were never used.
- The weights are derived from these encodings and **inherit the non-commercial restriction**. The sound of the
  rendered data comes from the soundfont(s) named above. The code is Segue's own (MIT).

## Training

AdamW (betas 0.8/0.99), peak learning rate {t.get("lr")}, cosine decay, gradient clipping 1.0, batch
{t.get("batch_size")} crops of {t.get("segment_seconds")} s, commitment weight {t.get("commitment_weight")}, seed
{t.get("seed")}. Loss: multi-scale STFT (spectral convergence + log magnitude, FFT 2048..128) + multi-scale log-mel
L1 + 0.1 x waveform L1 + commitment. Kept checkpoint: step {t.get("steps")} of {t.get("total_steps_run")}
(best held-out mel distance; {t.get("audio_seconds_seen")} s of audio seen, {t.get("minutes")} minutes).

## Held-out reconstruction quality

{config["val_clips_scored"]} held-out clips of 4 s (every non-silent 4 s clip of the held-out pieces), encoded and
decoded as at inference time. Definitions in `engine/audio/codec_losses.py`: multi-scale STFT distance = mean |ln
magnitude difference| over FFT sizes 2048..128; mel distance = mean |log10 mel difference| (80 bands, FFT 1024);
SI-SDR in dB (higher is better).

| weights | multi-scale STFT distance | mel distance | SI-SDR (dB) |
| --- | ---: | ---: | ---: |
| **as shipped ({dtype})** | **{m["stft_distance"]:.3f}** | **{m["mel_distance"]:.3f}** | **{m["si_sdr"]:.2f}** |
| float32 | {m32["stft_distance"]:.3f} | {m32["mel_distance"]:.3f} | {m32["si_sdr"]:.2f} |

Codes used per codebook on these clips: {m.get("codes_used")} of {c.codebook_size}.

## Reproduce

```bash
.venv/bin/python -m engine.audio.data --out data/audio --minutes {d.get("minutes_requested", 150):g} \\
  --max-piece-seconds {d.get("max_piece_seconds", 20):g} --seed {d.get("seed", 0)}
.venv/bin/python -m engine.audio.train_codec --data data/audio --out runs/audio-codec --preset {t.get("preset")} \\
  --max-minutes {t.get("max_minutes")} --threads 1 --seed {t.get("seed")}
.venv/bin/python -m engine.audio.export_codec --src runs/audio-codec --out engine/models/{name} --threads 1
```

## Limitations

- Briefly trained on one CPU thread: audible coding artefacts; waveform fidelity (SI-SDR) is low because nothing
  but spectral losses ties the phase; the prior only needs the codes to carry the music.
- Trained only on General MIDI soundfont renderings: recorded instruments, voices, real drums, reverb and dense
  mixes are out of distribution and will sound worse.
- Mono only; the engine encodes the mix (or mid) of stereo regions.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, required=True, help="trained codec folder (runs/audio-codec)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (its name is the model name)")
    parser.add_argument("--data", type=Path, default=None, help="training data folder (default: from the config)")
    parser.add_argument("--dtype", choices=["auto", *DTYPES], default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = export_codec(args.src, args.out, data=args.data, dtype=args.dtype, threads=args.threads)
    summary = {"val_metrics": config["val_metrics"], "dtype": config["weights_dtype"], "bytes": config["weights_bytes"]}
    print(json.dumps(summary))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
