"""Reconstruction losses for training the codec, and the held-out metrics reported in model cards.

Training loss (EnCodec-style, without the adversarial terms): a multi-scale STFT loss (spectral convergence +
log-magnitude L1 at FFT sizes 2048..128, Parallel WaveGAN / EnCodec), a multi-scale log-mel L1 loss, a small
waveform L1 term, and the quantizer's commitment loss.

Metrics (lower is better except SI-SDR), computed on held-out clips by :func:`reconstruction_metrics`:

- ``stft_distance``: mean over FFT sizes 2048, 1024, 512, 256, 128 (hop = size / 4, Hann) of the mean absolute
  difference of natural-log magnitudes, ``|ln max(|X|, 1e-5) - ln max(|Y|, 1e-5)|``.
- ``mel_distance``: mean absolute difference of ``log10`` mel spectrograms (80 mel bands 0..sr/2, FFT 1024,
  hop 256, magnitudes clamped at 1e-5), as in the mel distance of DAC / AudioDec evaluations.
- ``si_sdr``: scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019), mean over clips.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch.nn import functional as F

STFT_SIZES = (2048, 1024, 512, 256, 128)
MEL_SIZES = (2048, 512)  # training loss scales
MEL_BANDS = 80
EPS = 1e-5


@functools.lru_cache(maxsize=16)
def _window(n_fft: int) -> torch.Tensor:
    return torch.hann_window(n_fft)


@functools.lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = MEL_BANDS) -> torch.Tensor:
    """HTK-scale triangular mel filters with Slaney area normalisation, ``[n_mels, n_fft // 2 + 1]``."""

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(sample_rate / 2)), n_mels + 2))
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lower) / np.maximum(center - lower, 1e-9)
    down = (upper - freqs[None]) / np.maximum(upper - center, 1e-9)
    weights = np.maximum(0.0, np.minimum(up, down)) * (2.0 / (upper - lower))
    return torch.from_numpy(weights.astype(np.float32))


def magnitude(wav: torch.Tensor, n_fft: int) -> torch.Tensor:
    """``wav [B, 1, T] -> |STFT| [B, n_fft // 2 + 1, frames]`` (Hann window, hop n_fft / 4, centred)."""
    window = _window(n_fft).to(wav.device, wav.dtype)
    spec = torch.stft(wav.reshape(-1, wav.shape[-1]), n_fft, n_fft // 4, window=window, return_complex=True)
    return spec.abs()


def _mel(mag: torch.Tensor, sample_rate: int, n_fft: int) -> torch.Tensor:
    return torch.matmul(mel_filterbank(sample_rate, n_fft).to(mag.device, mag.dtype), mag)


def reconstruction_loss(
    target: torch.Tensor, output: torch.Tensor, sample_rate: int, time_weight: float = 0.1
) -> dict[str, torch.Tensor]:
    """Training losses between ``target [B, 1, T]`` and ``output [B, 1, >= T]``: a dict with ``total`` and parts."""
    output = output[..., : target.shape[-1]]
    stft = target.new_zeros(())
    for n_fft in STFT_SIZES:
        x, y = magnitude(target, n_fft), magnitude(output, n_fft)
        convergence = torch.linalg.norm(x - y) / torch.linalg.norm(x).clamp_min(EPS)
        log_mag = F.l1_loss(torch.log(y.clamp_min(EPS)), torch.log(x.clamp_min(EPS)))
        stft = stft + convergence + log_mag
    stft = stft / len(STFT_SIZES)
    mel = target.new_zeros(())
    for n_fft in MEL_SIZES:
        x = _mel(magnitude(target, n_fft), sample_rate, n_fft)
        y = _mel(magnitude(output, n_fft), sample_rate, n_fft)
        mel = mel + F.l1_loss(torch.log(y.clamp_min(EPS)), torch.log(x.clamp_min(EPS)))
    mel = mel / len(MEL_SIZES)
    wave = F.l1_loss(output, target)
    return {"total": stft + mel + time_weight * wave, "stft": stft, "mel": mel, "wave": wave}


@torch.no_grad()
def stft_distance(target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """Per clip: mean over :data:`STFT_SIZES` of the mean |ln magnitude difference|; ``[B]``."""
    total = target.new_zeros(target.shape[0])
    for n_fft in STFT_SIZES:
        x, y = magnitude(target, n_fft), magnitude(output, n_fft)
        total += (torch.log(x.clamp_min(EPS)) - torch.log(y.clamp_min(EPS))).abs().mean(dim=(1, 2))
    return total / len(STFT_SIZES)


@torch.no_grad()
def mel_distance(target: torch.Tensor, output: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Per clip: mean |log10 mel difference| (80 bands, FFT 1024, hop 256); ``[B]``."""
    x = _mel(magnitude(target, 1024), sample_rate, 1024)
    y = _mel(magnitude(output, 1024), sample_rate, 1024)
    return (torch.log10(x.clamp_min(EPS)) - torch.log10(y.clamp_min(EPS))).abs().mean(dim=(1, 2))


@torch.no_grad()
def si_sdr(target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SDR in dB per clip, ``[B]`` (zero-mean signals; 1e-8 guards silence)."""
    x = target.reshape(target.shape[0], -1).double()
    y = output.reshape(output.shape[0], -1).double()
    x = x - x.mean(dim=1, keepdim=True)
    y = y - y.mean(dim=1, keepdim=True)
    scale = (y * x).sum(1, keepdim=True) / (x.pow(2).sum(1, keepdim=True) + 1e-8)
    projection = scale * x
    noise = y - projection
    ratio = (projection.pow(2).sum(1) + 1e-8) / (noise.pow(2).sum(1) + 1e-8)
    return (10 * torch.log10(ratio)).float()


@torch.no_grad()
def reconstruction_metrics(target: torch.Tensor, output: torch.Tensor, sample_rate: int) -> dict[str, float]:
    """Mean ``stft_distance``, ``mel_distance`` and ``si_sdr`` over a batch of clips ``[B, 1, T]``."""
    output = output[..., : target.shape[-1]]
    values = {
        "stft_distance": float(stft_distance(target, output).mean()),
        "mel_distance": float(mel_distance(target, output, sample_rate).mean()),
        "si_sdr": float(si_sdr(target, output).mean()),
    }
    return {k: (v if math.isfinite(v) else float("nan")) for k, v in values.items()}
