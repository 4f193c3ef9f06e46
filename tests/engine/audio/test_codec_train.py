"""Codec training: the loss falls on a synthetic signal; the trainer writes a loadable checkpoint, logs held-out
metrics and resumes; the export script writes weights, config and a model card."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.audio.codec import PRESETS, Codec, load_codec
from engine.audio.codec_losses import reconstruction_loss
from engine.audio.export_codec import export_codec
from engine.audio.train_codec import main
from engine.errors import BadInputError


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: small convolutions only slow down with more, and the machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tones(samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 8000
    freqs = rng.uniform(150, 900, size=3)
    signal = sum(
        np.sin(2 * math.pi * f * t) * (0.5 + 0.5 * np.sin(2 * math.pi * (i + 1) * t)) for i, f in enumerate(freqs)
    )
    return (0.2 * signal).astype(np.float32)


def test_a_few_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    codec = Codec(PRESETS["tiny"]).train()
    opt = torch.optim.AdamW(codec.parameters(), lr=3e-3)
    wav = torch.from_numpy(np.stack([_tones(2000, s) for s in range(4)]))[:, None]
    losses = []
    for _ in range(40):
        output, _, commitment = codec(wav)
        loss = reconstruction_loss(wav, output, 8000)["total"] + commitment
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def _audio_folder(root: Path) -> Path:
    """A plain folder of audio files: stereo 16 kHz WAVs and a mono 8 kHz FLAC (the trainer converts them)."""
    root.mkdir()
    for i in range(12):
        mono = _tones(16000 * 2, i)
        sf.write(root / f"take{i:02d}.wav", np.stack([mono, 0.5 * mono], axis=1), 16000)
    sf.write(root / "extra.flac", _tones(8000, 99), 8000)
    return root


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--data", str(data), "--out", str(out), "--preset", "tiny", "--batch-size", "4",
        "--segment-seconds", "0.25", "--eval-every", "5", "--eval-seconds", "0.5", "--warmup-steps", "2",
        "--val-fraction", "0.3", "--device", "cpu", "--threads", "1", *extra,
    ]  # fmt: skip


def test_train_resume_and_export(tmp_path: Path) -> None:
    data = _audio_folder(tmp_path / "audio")
    out = tmp_path / "run"
    assert main(_args(data, out, "--max-steps", "10")) == 0
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    periodic = [r for r in records if not r.get("final")]
    assert [r["step"] for r in periodic] == [5, 10]
    for key in ("val_stft_distance", "val_mel_distance", "val_si_sdr", "train_loss", "val_codes_used"):
        assert key in periodic[-1]
    assert records[-1]["final"] is True
    config = json.loads((out / "config.json").read_text())
    assert config["type"] == "segue-audio-codec" and config["training"]["train_files"] >= 1
    assert set(config["val_metrics"]) >= {"stft_distance", "mel_distance", "si_sdr"}
    codec = load_codec(out)
    assert codec.sample_rate == 8000

    assert main(_args(data, out, "--max-steps", "15", "--resume")) == 0
    steps = [json.loads(line).get("step") for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert 15 in steps and steps.count(5) == 1  # continued, not restarted

    shipped = tmp_path / "shipped"
    card = export_codec(out, shipped, data=data, threads=1, val_fraction=0.3)
    assert (shipped / "model.safetensors").is_file() and (shipped / "MODEL_CARD.md").is_file()
    text = (shipped / "MODEL_CARD.md").read_text()
    assert "non-commercial" in text.lower() and "SI-SDR" in text
    assert card["weights_dtype"] in ("float16", "float32")
    assert load_codec(shipped).config == codec.config
    with pytest.raises(BadInputError, match="differ"):
        export_codec(out, out, data=data)


def test_resume_without_state_and_empty_data(tmp_path: Path) -> None:
    data = _audio_folder(tmp_path / "audio")
    with pytest.raises(BadInputError, match="no resume state"):
        main(_args(data, tmp_path / "fresh", "--max-steps", "2", "--resume"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no training audio"):
        main(_args(tmp_path / "empty", tmp_path / "x", "--max-steps", "2"))
