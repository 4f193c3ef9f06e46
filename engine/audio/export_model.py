"""Assemble a shippable audio model folder: the codec (``codec/``), the prior, config and a model card.

``python -m engine.audio.export_model --codec runs/audio-codec --prior runs/audio-prior --data data/audio
--out engine/models/segue-audio-small``

1. The codec is exported with :func:`engine.audio.export_codec.export_codec` into ``OUT/codec`` (float16 when its
   quality holds, held-out STFT / mel / SI-SDR, its own model card).
2. The prior's best checkpoint is written in float16 (a 6M-parameter prior is 24 MB in float32, over the 15 MB
   budget) and scored on the held-out split **encoded by the shipped codec**, exactly as users will run it:
   cross-entropy in nats per code over every code of the held-out pieces (delay-interleaved windows of the
   context length, the pattern's corners not scored), in float32 and as shipped, per codebook, against a
   **unigram baseline** (each codebook's code frequencies in the training codes, add-one smoothed) scored on the
   same codes. A prior that does not beat the unigram baseline has learnt nothing, and the export refuses it.
3. ``config.json`` (type ``segue-audio-prior``, ``"codec": "codec"``), ``model.safetensors``, ``MODEL_CARD.md``
   (provenance, licences, sizes, metrics, speed from ``bench/results/audio.json`` when present, limitations)
   and both training logs; written into a temporary folder beside ``OUT`` and renamed, never over an existing one.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from engine.atomic import write_text
from engine.audio.codec import load_codec
from engine.audio.export_codec import export_codec
from engine.audio.prior import CODEC_DIR, load_prior, save_prior
from engine.audio.train_prior import encode_clip
from engine.checkpoints import CONFIG_NAME, WEIGHTS_NAME, read_checkpoint, write_json_atomic
from engine.errors import BadInputError
from engine.nn.model import GPT

log = logging.getLogger(__name__)

MAX_BYTES = 15_000_000
BENCH_RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "audio.json"


def _delayed(codes: npt.NDArray[np.int64], special: int) -> npt.NDArray[np.int64]:
    """One file's codes ``[Q, F]`` -> delay-interleaved steps ``[Q, F + Q - 1]`` (special in the corners)."""
    Q, F = codes.shape
    out = np.full((Q, F + Q - 1), special, dtype=np.int64)
    for q in range(Q):
        out[q, q : q + F] = codes[q]
    return out


def held_out_windows(
    files: list[npt.NDArray[np.int64]], special: int, block: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive windows over each held-out file (the special id before its start): inputs and targets
    ``[1, Q, <= block]``; targets that are the special id are ``-100`` (not scored). Every code is scored once."""
    windows = []
    for codes in files:
        Q = codes.shape[0]
        steps = np.concatenate([np.full((Q, 1), special, dtype=np.int64), _delayed(codes, special)], axis=1)
        for start in range(0, steps.shape[1] - 1, block):
            chunk = torch.from_numpy(steps[:, start : start + block + 1])
            x, y = chunk[:, :-1], chunk[:, 1:].clone()
            y[y == special] = -100
            windows.append((x[None], y[None]))
    return windows


@torch.inference_mode()
def prior_nats(model: GPT, windows: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    """Cross-entropy (nats per code) over every scored target, overall and per codebook."""
    Q = model.config.n_streams
    total, count = np.zeros(Q), np.zeros(Q)
    for x, y in windows:
        logits, _ = model(x)
        losses = torch.nn.functional.cross_entropy(
            logits.permute(0, 3, 1, 2).float(), y, ignore_index=-100, reduction="none"
        )  # [1, Q, T]
        scored = y != -100
        total += (losses * scored).sum(dim=(0, 2)).double().numpy()
        count += scored.sum(dim=(0, 2)).numpy()
    return {"nats_per_code": float(total.sum() / count.sum()), "per_codebook": (total / count).round(4).tolist(),
            "codes_scored": int(count.sum())}  # fmt: skip


def unigram_nats(
    train_codes: npt.NDArray[np.integer[Any]], windows: list[tuple[torch.Tensor, torch.Tensor]], size: int
) -> dict[str, Any]:
    """The baseline: each codebook's code frequencies in the training codes (add-one smoothed)."""
    Q = train_codes.shape[0]
    log_p = np.stack(
        [
            np.log(
                (np.bincount(train_codes[q].astype(np.int64), minlength=size)[:size] + 1.0)
                / (train_codes.shape[1] + size)
            )
            for q in range(Q)
        ]  # fmt: skip
    )
    total, count = np.zeros(Q), np.zeros(Q)
    for _, y in windows:
        targets = y[0].numpy()
        for q in range(Q):
            scored = targets[q][targets[q] != -100]
            total[q] -= log_p[q, scored].sum()
            count[q] += scored.size
    return {"nats_per_code": float(total.sum() / count.sum()), "per_codebook": (total / count).round(4).tolist()}


@dataclass(frozen=True)
class ExportSources:
    """What an export reads: the trained codec and prior folders, the training data (its held-out split), the
    prior's code cache (None: ``prior/code_cache``) and the speed bench's results (put in the card if there)."""

    codec: Path
    prior: Path
    data: Path
    code_cache: Path | None = None
    bench: Path = BENCH_RESULTS


def export_model(sources: ExportSources, out: Path, threads: int | None = None) -> dict[str, Any]:
    """Export the trained codec and prior as one shipped model folder ``out`` (created whole, never over an
    existing one); :class:`BadInputError` when the prior does not beat the unigram baseline or is too large."""
    if out.exists():
        raise BadInputError(f"{out} already exists; the export never overwrites (remove it first)")
    if threads:
        torch.set_num_threads(threads)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        config = _export_into(tmp, out.name, sources, threads)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.replace(tmp, out)
    return config


def _export_into(tmp: Path, name: str, sources: ExportSources, threads: int | None) -> dict[str, Any]:
    from engine.audio.data import load_split

    codec_src, prior_src, data, bench = sources.codec, sources.prior, sources.data, sources.bench

    codec_config = export_codec(codec_src, tmp / CODEC_DIR, data=data, threads=threads)
    codec = load_codec(tmp / CODEC_DIR)

    ckpt = read_checkpoint(prior_src)
    model = load_prior(ckpt)
    special = model.config.vocab_size - 1
    val_audio = load_split(data, "val", codec.sample_rate, 0.05)
    val_codes = [encode_clip(codec, clip).astype(np.int64) for clip in val_audio]
    windows = held_out_windows([c for c in val_codes if c.shape[1] >= 2], special, model.config.block_size)
    float32 = prior_nats(model, windows)
    log.info("prior float32 on the shipped codec's held-out codes: %s", float32)
    cache = sources.code_cache or prior_src / "code_cache"
    if not (cache / "train.npy").is_file():
        raise BadInputError(f"{cache} has no train.npy: the prior's code cache is needed for the unigram baseline")
    unigram = unigram_nats(np.load(cache / "train.npy"), windows, codec.codebook_size)
    log.info("unigram baseline: %s", unigram)
    if float32["nats_per_code"] >= unigram["nats_per_code"]:
        raise BadInputError(
            f"the prior ({float32['nats_per_code']:.3f} nats/code) does not beat the unigram baseline "
            f"({unigram['nats_per_code']:.3f}); it would be shipping noise"
        )

    extra = {k: v for k, v in ckpt.config.items() if k not in ("type", "gpt", "codec", "codec_config", "parameters")}
    extra["name"] = name
    save_prior(model.half(), codec, tmp, CODEC_DIR, extra)
    shipped_ckpt = read_checkpoint(tmp)
    shipped = prior_nats(load_prior(shipped_ckpt), windows)
    size = (tmp / WEIGHTS_NAME).stat().st_size
    if size > MAX_BYTES:
        raise BadInputError(f"the prior's weights are {size / 1e6:.1f} MB; a shipped model must be at most 15 MB")
    config = dict(shipped_ckpt.config)
    config.update({
        "description": f"Continues audio regions: a {model.num_parameters() / 1e6:.1f}M-parameter prior over a "
                       f"{codec.num_parameters() / 1e6:.2f}M-parameter 24 kHz codec, trained briefly on CPU on "
                       "soundfont renderings of the music21 corpus. Non-commercial use only.",
        "weights_dtype": "float16",
        "weights_bytes": size,
        "val_loss": shipped["nats_per_code"],
        "val_loss_unit": "nats per code, held-out pieces encoded by the shipped codec",
        "val_prior": {"as_shipped": shipped, "float32": float32, "unigram_baseline": unigram,
                      "held_out_files": len(val_codes), "held_out_frames": int(sum(c.shape[1]
                      for c in val_codes))},
        "val_loss_training_codec_subset": ckpt.config.get("val_loss_subset"),
        "val_loss_training_codec": ckpt.config.get("val_loss"),
        "codec_val_metrics": codec_config["val_metrics"],
    })  # fmt: skip
    if bench.is_file():
        config["speed"] = json.loads(bench.read_text(encoding="utf-8"))
    write_json_atomic(tmp / CONFIG_NAME, config)
    if (prior_src / "train_log.jsonl").is_file():
        shutil.copyfile(prior_src / "train_log.jsonl", tmp / "train_log.jsonl")
    write_text(tmp / "MODEL_CARD.md", model_card(name, config, codec_config))
    return config


def refresh_speed(model_dir: Path, bench: Path = BENCH_RESULTS) -> None:
    """Put ``bench/results/audio.json`` (measured with this model) into an exported model's config and card."""
    if not bench.is_file():
        raise BadInputError(f"{bench} is missing: run `python bench/bench_audio.py` first")
    config = json.loads((model_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    codec_config = json.loads((model_dir / CODEC_DIR / CONFIG_NAME).read_text(encoding="utf-8"))
    config["speed"] = json.loads(bench.read_text(encoding="utf-8"))
    write_json_atomic(model_dir / CONFIG_NAME, config)
    card = model_dir / "MODEL_CARD.md"
    write_text(card, model_card(model_dir.name, config, codec_config))


def _speed_text(config: dict[str, Any]) -> str:
    speed = config.get("speed")
    if not speed:
        return "Not measured yet: run `python bench/bench_audio.py`."
    rows = speed.get("results", [])
    ours = next((r for r in rows if r.get("weights") == "trained"), None)
    if ours is None:
        return "See docs/benchmarks.md."
    settings = speed.get("settings", {})
    return (
        f"`python bench/bench_audio.py` on this machine ({speed['machine'].get('cpus')} CPU cores, torch "
        f"{speed['machine'].get('torch')}, load average {speed['machine'].get('load_average')}): "
        f"{settings.get('variants', 4)} variants x {settings.get('bars', 8)} bars at {settings.get('tempo', 100):g} "
        f"BPM took **{ours['job_seconds']:.1f} s** as a whole `segue continue` job, a real-time factor of "
        f"**{ours['real_time_factor']:.2f}**; sampling ran at {ours['steps_per_second']:.0f} steps/s "
        f"({ours['tokens_per_second']:.0f} codes/s). See docs/benchmarks.md."
    )


def model_card(name: str, config: dict[str, Any], codec_config: dict[str, Any]) -> str:
    gpt = config["gpt"]
    prior = config["val_prior"]
    shipped, f32, uni = prior["as_shipped"], prior["float32"], prior["unigram_baseline"]
    t = config.get("training", {})
    cm = codec_config["val_metrics"]
    d = codec_config.get("data_summary", {})
    ct = codec_config.get("training", {})
    fonts = "; ".join(f"{f['name']}: {f['licence']}" for f in d.get("soundfonts", []))
    totals = d.get("totals", {})
    collections = d.get("collections", {}).items()
    collections_rows = "\n".join(f"| {k} | {v['files']} | {v['minutes']} |" for k, v in collections)
    per_q = " / ".join(f"{a:.2f} vs {b:.2f}" for a, b in zip(shipped["per_codebook"], uni["per_codebook"], strict=True))
    codec_bytes = codec_config["weights_bytes"]
    gain = uni["nats_per_code"] - shipped["nats_per_code"]
    return f"""# {name}

Segue's default audio model: it continues an audio region (a bounce of a few bars) by N bars at the DAW's tempo,
in Jukebox's lineage made fast the MusicGen way. A **codec** (`codec/`, 24 kHz mono, 50 frames/s, 4 codebooks x
1024 codes) turns audio into codes and back; a **prior** (a 6-layer GPT, Segue's one transformer with four input
and output streams) continues the region's codes with MusicGen's delay interleaving, one frame per step.

**What to expect.** This is a tiny model (a {config["parameters"] / 1e6:.1f}M-parameter prior, a
{codec_config["parameters"] / 1e6:.2f}M-parameter codec) trained for about {
        float(t.get("minutes") or 0)
        + float(
            ct.get("total_minutes_run") or ct.get("minutes") or 0
        ):.0f} minutes on one CPU thread each. What was measured
is below: the codec reconstructs held-out audio roughly (mel distance {cm["mel_distance"]:.2f}, SI-SDR
{cm["si_sdr"]:.0f} dB: magnitudes approximately, phase not at all), and the prior predicts held-out codes far
better than a unigram guess but is still uncertain ({shipped["nats_per_code"]:.2f} nats per code). No listening
test was run for this card. Expect coded, smeared soundfont timbres and no convincing melody, harmony or groove;
what the engine around the model guarantees (and `tests/engine/audio/test_shipped_audio_model.py` checks on
unseen regions) is that the continuations are exactly N bars at the region's rate and channel count, non-silent,
different from each other, within 3 dB of the region's loudness and joined without a click. The model exists so
that `segue continue region.wav` works out of the box with a real trained model; for music worth keeping, train
on your own audio (`segue train audio`) on a GPU, or use `--model musicgen:DIR` with MusicGen weights you have.

**Licence of these weights: non-commercial use only** (derived from the music21 corpus, see below).

## Files

| file | what |
| --- | --- |
| `model.safetensors` | the prior, float16 ({config["weights_bytes"] / 1e6:.2f} MB; loads into float32) |
| `config.json` | prior config, training summary, held-out figures, speed |
| `train_log.jsonl` | the prior's training and validation losses |
| `codec/model.safetensors` | the codec, {codec_config["weights_dtype"]} ({codec_bytes / 1e6:.2f} MB) |
| `codec/config.json`, `codec/MODEL_CARD.md`, `codec/train_log.jsonl` | the codec's config, card and log |

## Architecture and size

- Prior: GPT with {gpt["n_layer"]} layers, {gpt["n_head"]} heads, width {gpt["n_embd"]}, context
  {gpt["block_size"]} steps ({gpt["block_size"] / 50:.1f} s at 50 frames/s), {gpt["n_streams"]} streams of
  {gpt["vocab_size"]} ids (1024 codes + the delay pattern's special id), summed input embeddings, tied output
  heads: **{config["parameters"]:,} parameters**. Primed on the region's last whole bars that fit half the
  context; windows overlapping by half the context for longer outputs.
- Codec: **{codec_config["parameters"]:,} parameters**, SEANet-like convolutional encoder/decoder, residual VQ,
  24 kHz, hop 480, 2 kbit/s (`codec/MODEL_CARD.md`).

## Training data (provenance)

{d.get("description", "")}: {totals.get("train", {}).get("files", "?")} pieces /
{totals.get("train", {}).get("seconds", 0) / 60:.1f} minutes for training, {totals.get("val", {}).get("files", "?")}
pieces / {totals.get("val", {}).get("seconds", 0) / 60:.1f} minutes held out (split by piece with the symbolic
model's rule, so the held-out pieces are the same). Half of the pieces were re-instrumented with random General
MIDI programs, tempos scaled x0.8-1.25, loudness -28..-14 dB RMS, at most {d.get("max_piece_seconds", 20):g} s per
piece; {d.get("synthetic_drum_files", 0)} files carry a **synthetic, rule-based drum part** (not in the sources)
played on a random GM kit. Each piece was rendered through one of two soundfonts, drawn at random: {fonts}.
All audio is synthesized: no recorded audio, voices or real drums.

| collection | files | minutes |
| --- | ---: | ---: |
{collections_rows}

## Licences

- Data: {d.get("licence", "")} (`music21/corpus/license.txt`, `music21/corpus/essenFolksong/license.txt`: non-
  commercial use).
- Soundfonts (their samples are what the codec learnt to reproduce): {fonts}.
- **The weights are derived from these works and renderings: use them for non-commercial purposes only.** The
  code is Segue's own (MIT).

## Held-out figures

Codec, on {codec_config["val_clips_scored"]} held-out 4 s clips (as shipped, {codec_config["weights_dtype"]}):
multi-scale STFT distance **{cm["stft_distance"]:.3f}**, mel distance **{cm["mel_distance"]:.3f}**, SI-SDR
**{cm["si_sdr"]:.1f} dB** (definitions and the float32 figures in `codec/MODEL_CARD.md`). SI-SDR is strongly
negative because only spectral losses were used: the codec reproduces magnitudes, not the waveform's phase.

Prior, cross-entropy on every code of the held-out pieces ({shipped["codes_scored"]:,} codes,
{prior["held_out_frames"]:,} frames), encoded by the shipped codec:

| model | nats per code | per codebook (prior vs unigram) |
| --- | ---: | --- |
| **prior, as shipped (float16)** | **{shipped["nats_per_code"]:.3f}** | {per_q} |
| prior, float32 | {f32["nats_per_code"]:.3f} | |
| unigram baseline (each codebook's code frequencies in the training codes) | {uni["nats_per_code"]:.3f} | |

The prior is {gain:.2f} nats per code better than the unigram baseline (a uniform guess over 1024 codes is
{math.log(1024):.2f}). During training (same held-out pieces, codes from the float32 codec) its best validation
loss was {config.get("val_loss_training_codec") or float("nan"):.3f}.

## Training

Codec: {ct.get("minutes", "?")} minutes, {ct.get("total_steps_run", ct.get("steps", "?"))} steps of batch
{ct.get("batch_size", "?")} x {ct.get("segment_seconds", "?")} s on one CPU thread (best step
{ct.get("steps", "?")} by held-out mel distance). Prior: {t.get("minutes", "?")} minutes, best step
{t.get("steps", "?")}, batch {t.get("batch_size", "?")} windows of {gpt["block_size"]} steps, AdamW, peak learning
rate {t.get("lr", "?")}, warmup + cosine decay, one CPU thread, seed {t.get("seed", "?")}.

## Speed

{_speed_text(config)}

## Reproduce

```bash
make train-audio-default   # the commands below (and apt-get install fluid-soundfont-gm timgm6mb-soundfont)
.venv/bin/python -m engine.symbolic.corpus --out data/corpus --max-minutes 12
.venv/bin/python -m engine.audio.data --out data/audio --minutes 150 --max-piece-seconds 20 \\
  --soundfont /usr/share/sounds/sf2/TimGM6mb.sf2 --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2
.venv/bin/python -m engine.audio.train_codec --data data/audio --out runs/audio-codec --preset small \\
  --max-minutes 35 --threads 1 --eval-every 250 --seed 0
.venv/bin/python -m engine.audio.train_prior --data data/audio --codec runs/audio-codec --out runs/audio-prior \\
  --preset small --block-size {gpt["block_size"]} --batch-size {t.get("batch_size", 8)} --warmup-steps 50 \\
  --max-minutes 38 --eval-every 100 --eval-windows 16 --threads 1 --seed {t.get("seed", 0)}
.venv/bin/python -m engine.audio.export_model --codec runs/audio-codec --prior runs/audio-prior --data data/audio \\
  --out engine/models/{name}
```

## Limitations

- Quality, above all: see "What to expect". Short CPU training; no adversarial codec loss; a 6M prior.
- Trained only on General MIDI soundfont renderings of mostly folk melodies and chorales: recorded instruments,
  voices, real drums, effects and dense mixes are out of distribution.
- Mono: the continuation is mono, spread over the region's channels with the region's channel balance.
- No knowledge of the bar grid inside the model: bar-exact length and the join come from the engine around it.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec", type=Path, help="trained codec folder (runs/audio-codec)")
    parser.add_argument("--prior", type=Path, help="trained prior folder (runs/audio-prior)")
    parser.add_argument("--data", type=Path, help="the training data folder (held-out split)")
    parser.add_argument("--out", type=Path, required=True, help="model folder to create (its name is the model name)")
    parser.add_argument("--refresh-speed", action="store_true",
                        help="only put bench/results/audio.json into OUT's config and model card")  # fmt: skip
    parser.add_argument("--code-cache", type=Path, default=None, help="the prior's code cache (PRIOR/code_cache)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.refresh_speed:
        refresh_speed(args.out)
        return 0
    if args.codec is None or args.prior is None or args.data is None:
        parser.error("give --codec, --prior and --data (or --refresh-speed)")
    sources = ExportSources(args.codec, args.prior, args.data, code_cache=args.code_cache)
    config = export_model(sources, args.out, threads=args.threads)
    print(json.dumps({"val_prior": config["val_prior"], "codec": config["codec_val_metrics"]}))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
