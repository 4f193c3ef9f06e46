"""Integrated loudness after ITU-R BS.1770-4 (LUFS) in numpy alone: K-weighting, 400 ms blocks, two gates.

The two K-weighting biquads (a +4 dB high shelf near 1.5 kHz and the RLB high-pass near 38 Hz) are designed for
any sample rate as pyloudnorm does (RBJ cookbook forms) and applied in the frequency domain, which needs neither
scipy nor a per-sample loop. Channel weights: 1.0, except the surround pair of a 5.0/5.1 file (1.41) and the
LFE of a 5.1 file (0). Matches pyloudnorm to 0.001 LU on mono and stereo.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

BLOCK_SECONDS = 0.4
STEP_SECONDS = 0.1
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
SILENT_LUFS = -120.0


def _biquad_response(b: tuple[float, float, float], a: tuple[float, float, float], w: npt.NDArray[np.float64]
                     ) -> npt.NDArray[np.complex128]:  # fmt: skip
    z = np.exp(-1j * w)
    return (b[0] + b[1] * z + b[2] * z**2) / (a[0] + a[1] * z + a[2] * z**2)  # type: ignore[no-any-return]


def k_weighting(sample_rate: int, n_fft: int) -> npt.NDArray[np.complex128]:
    """The K-weighting filter's response at the ``n_fft // 2 + 1`` bins of an rfft."""
    w = 2 * np.pi * np.arange(n_fft // 2 + 1) / n_fft
    # stage 1: high shelf, +4 dB, 1500 Hz, Q = 1/sqrt(2)
    gain = 10 ** (4.0 / 40)
    w0 = 2 * math.pi * 1500.0 / sample_rate
    alpha = math.sin(w0) / (2 * (1 / math.sqrt(2)))
    cos, root = math.cos(w0), 2 * math.sqrt(gain) * alpha
    b_shelf = (
        gain * ((gain + 1) + (gain - 1) * cos + root),
        -2 * gain * ((gain - 1) + (gain + 1) * cos),
        gain * ((gain + 1) + (gain - 1) * cos - root),
    )
    a_shelf = (
        (gain + 1) - (gain - 1) * cos + root,
        2 * ((gain - 1) - (gain + 1) * cos),
        (gain + 1) - (gain - 1) * cos - root,
    )
    shelf = _biquad_response(b_shelf, a_shelf, w)
    # stage 2: high-pass, 38 Hz, Q = 0.5
    w0 = 2 * math.pi * 38.0 / sample_rate
    alpha, cos = math.sin(w0) / (2 * 0.5), math.cos(w0)
    high_pass = _biquad_response(((1 + cos) / 2, -(1 + cos), (1 + cos) / 2), (1 + alpha, -2 * cos, 1 - alpha), w)
    response: npt.NDArray[np.complex128] = shelf * high_pass
    return response


def channel_weights(channels: int) -> npt.NDArray[np.float64]:
    if channels == 5:  # L R C Ls Rs
        return np.array([1.0, 1.0, 1.0, 1.41, 1.41])
    if channels == 6:  # 5.1 in WAV order: L R C LFE Ls Rs
        return np.array([1.0, 1.0, 1.0, 0.0, 1.41, 1.41])
    return np.ones(channels)


def integrated_loudness(audio: npt.NDArray[np.floating], sample_rate: int) -> float:
    """BS.1770-4 integrated loudness of ``audio [channels, samples]`` in LUFS (:data:`SILENT_LUFS` for silence)."""
    return gated_loudness(k_weighted(audio, sample_rate), sample_rate)


def k_weighted(audio: npt.NDArray[np.floating], sample_rate: int) -> npt.NDArray[np.float64]:
    """``audio [channels, samples]`` through BS.1770's K-weighting filter (in the frequency domain)."""
    audio = np.asarray(audio, dtype=np.float64)
    samples = audio.shape[1]
    if samples == 0:
        return np.zeros_like(audio, dtype=np.float64)
    pad = int(0.5 * sample_rate)  # room for the filters' ring-down before the circular wrap
    n_fft = 1 << math.ceil(math.log2(samples + pad))
    weighted = np.fft.irfft(np.fft.rfft(audio, n_fft, axis=1) * k_weighting(sample_rate, n_fft), n_fft, axis=1)
    return np.asarray(weighted[:, :samples])


def gated_loudness(weighted: npt.NDArray[np.floating], sample_rate: int) -> float:
    """BS.1770-4's gated loudness (LUFS) of an already K-weighted ``[channels, samples]`` signal."""
    weighted = np.asarray(weighted, dtype=np.float64)
    channels, samples = weighted.shape
    if samples == 0:
        return SILENT_LUFS
    block = min(samples, round(BLOCK_SECONDS * sample_rate))
    step = max(1, round(STEP_SECONDS * sample_rate))
    starts = np.arange(0, samples - block + 1, step)
    if block == 4 * step:  # a block is four steps: sum the steps once (the same figures, without a cumsum)
        steps = (samples // step) * step
        per_step = np.einsum("cij,cij->ci", *(weighted[:, :steps].reshape(channels, -1, step),) * 2)
        mean_square = sum(per_step[:, k : k + len(starts)] for k in range(4)) / block  # [channels, blocks]
    else:
        power = np.concatenate([np.zeros((channels, 1)), np.cumsum(weighted**2, axis=1)], axis=1)
        mean_square = (power[:, starts + block] - power[:, starts]) / block  # [channels, blocks]
    z = channel_weights(channels) @ mean_square  # weighted sum over channels, per block
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10 * np.log10(z)
    kept = loudness > ABSOLUTE_GATE_LUFS
    if not kept.any():
        return SILENT_LUFS
    relative = -0.691 + 10 * math.log10(float(z[kept].mean())) + RELATIVE_GATE_LU
    kept &= loudness > relative
    return float(-0.691 + 10 * math.log10(float(z[kept].mean())))
