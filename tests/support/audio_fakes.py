"""Test helpers for the audio prior: a smooth stand-in codec, tiny random priors, region files.

The stand-in codec is for tests only (never shipped): it codes each frame's mean level with two codebooks
(coarse + residual) and decodes by linear interpolation between frame centres, so its output is smooth and the
seam tests measure the join, not codec noise. Tiny random priors test plumbing, never musical quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from engine.audio.prior import AudioModel, prior_config, save_prior
from engine.nn.model import GPT


class SmoothCodec(nn.Module):
    """Mono, ``Q=2`` codebooks of ``size`` codes, one frame per ``hop`` samples; deterministic."""

    def __init__(self, sample_rate: int = 8000, hop: int = 80, size: int = 32) -> None:
        super().__init__()
        self._rate, self._hop, self._size = sample_rate, hop, size
        self.dummy = nn.Parameter(torch.zeros(1), requires_grad=False)

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def hop_length(self) -> int:
        return self._hop

    @property
    def frame_rate(self) -> float:
        return self._rate / self._hop

    @property
    def n_codebooks(self) -> int:
        return 2

    @property
    def codebook_size(self) -> int:
        return self._size

    def _levels(self) -> tuple[torch.Tensor, torch.Tensor]:
        coarse = torch.linspace(-1.0, 1.0, self._size)
        step = 2.0 / (self._size - 1)
        fine = torch.linspace(-step / 2, step / 2, self._size)
        return coarse, fine

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        B, _, T = wav.shape
        frames = -(-T // self._hop)
        padded = torch.nn.functional.pad(wav[:, 0], (0, frames * self._hop - T))
        level = padded.view(B, frames, self._hop).mean(dim=2).clamp(-1, 1) * 4  # louder than a mean
        coarse, fine = self._levels()
        q0 = (level[..., None] - coarse).abs().argmin(dim=-1)
        q1 = ((level - coarse[q0])[..., None] - fine).abs().argmin(dim=-1)
        return torch.stack([q0, q1], dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        coarse, fine = self._levels()
        level = (coarse[codes[:, 0]] + fine[codes[:, 1]]) / 4  # [B, F]
        B, F = level.shape
        centres = (torch.arange(F) + 0.5) * self._hop
        t = torch.arange(F * self._hop) + 0.5
        out = torch.stack([torch.from_numpy(np.interp(t.numpy(), centres.numpy(), row.numpy())) for row in level])
        return out.float()[:, None, :]


def tiny_model(codec: nn.Module | None = None, block_size: int = 96, seed: int = 0) -> AudioModel:
    codec = codec or SmoothCodec()
    torch.manual_seed(seed)
    prior = GPT(prior_config("tiny", codec, block_size=block_size)).eval()  # type: ignore[arg-type]
    return AudioModel("tiny-random", prior, codec)  # type: ignore[arg-type]


def save_tiny_model_dir(out: Path, block_size: int = 96) -> Path:
    """A whole audio model folder with the real codec class (tiny preset, random weights) in ``codec/``."""
    from engine.audio.codec import PRESETS, Codec, save_codec

    torch.manual_seed(0)
    codec = Codec(PRESETS["tiny"]).eval()
    save_codec(codec, out / "codec")
    prior = GPT(prior_config("tiny", codec, block_size=block_size))
    save_prior(prior, codec, out, extra={"description": "random weights, for tests only"})
    return out


def musical_region(
    seconds: float, sample_rate: int, channels: int = 2, level: float = 0.3, seed: int = 0
) -> np.ndarray:
    """A decaying pluck on every beat of 120 BPM plus a low drone: float32 ``[channels, samples]``."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    beat = (t % 0.5) / 0.5
    tone = np.sin(2 * np.pi * 220 * t) * np.exp(-6 * beat) + 0.4 * np.sin(2 * np.pi * 55 * t)
    out = np.stack([tone * (0.8 + 0.2 * c / max(1, channels)) for c in range(channels)])
    out += 0.001 * rng.standard_normal(out.shape)
    return (level * out / np.abs(out).max()).astype(np.float32)


def write_region(path: Path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_24") -> Path:
    sf.write(str(path), audio.T, sample_rate, subtype=subtype)
    return path
