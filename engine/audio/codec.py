"""A residual-VQ audio codec (EnCodec/MusicGen lineage): mono audio <-> ``n_codebooks`` streams of discrete codes.

Reads top to bottom: config, building blocks (residual unit, encoder, decoder), the :class:`Codec` (its residual
vector quantizer is :mod:`engine.audio.quantizer`: factorised L2-normalised lookups, EMA codebooks, k-means init,
dead-code restarts, commitment loss), then save/load.

- ``encode(wav [B, 1, T]) -> codes [B, Q, F]`` with ``F = ceil(T / hop_length)`` (the input is zero-padded at the
  end to ``F * hop_length``); ``decode(codes [B, Q, F]) -> wav [B, 1, F * hop_length]``. One frame is one step of
  the prior (MusicGen's delay interleaving), at ``frame_rate = sample_rate / hop_length`` frames per second.
- The codec is mono. Stereo/multichannel regions are the engine's business (encode the mono mix or mid).
- Both directions are deterministic and work for any ``F >= 1`` (non-causal convolutions, zero padding).
- Weights load from safetensors (no pickle); the config travels beside them as ``config.json``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from engine.audio.quantizer import ResidualVectorQuantizer
from engine.checkpoints import config_fields
from engine.errors import BadInputError, ModelNotFoundError

CODEC_TYPE = "segue-audio-codec"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class CodecConfig:
    sample_rate: int = 24_000
    channels: int = 1  # the codec is mono
    hop_length: int = 480  # = prod(strides); 24 kHz / 480 = 50 frames per second
    n_codebooks: int = 4
    codebook_size: int = 1024
    # architecture (SEANet-like conv encoder/decoder)
    strides: tuple[int, ...] = (4, 4, 5, 6)  # encoder downsampling per level (decoder: reversed)
    base_channels: int = 16  # channels at full rate; doubled at each level up to max_channels
    max_channels: int = 256
    latent_dim: int = 64  # dimension of the encoder's output / the decoder's input
    codebook_dim: int = 8  # codes are looked up in this many (L2-normalised) dimensions (DAC's factorised codes)
    residual_layers: int = 1  # residual units per level, dilations 1, 3, 9, ...
    # quantizer training behaviour (EMA codebooks)
    ema_decay: float = 0.99
    dead_code_steps: int = 25  # a code no training batch has used for this many steps is restarted

    def __post_init__(self) -> None:
        if self.channels != 1:
            raise ValueError(f"channels must be 1 (the codec is mono), got {self.channels}")
        if math.prod(self.strides) != self.hop_length:
            raise ValueError(f"hop_length {self.hop_length} must equal the product of strides {self.strides}")
        for name in ("sample_rate", "n_codebooks", "codebook_size", "base_channels", "latent_dim", "codebook_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["strides"] = list(self.strides)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        values = config_fields(cls, data, "codec")
        if "strides" in values:
            values["strides"] = tuple(int(s) for s in values["strides"])
        return cls(**values)


PRESETS: dict[str, CodecConfig] = {
    # tests: 8 kHz, hop 32 (250 Hz), tiny
    "tiny": CodecConfig(
        sample_rate=8000, hop_length=32, strides=(4, 8), n_codebooks=2, codebook_size=64,
        base_channels=4, max_channels=16, latent_dim=8, codebook_dim=4,
    ),
    # the shipped CPU codec: 24 kHz, 50 frames/s, cheap first level (docs/audio-engine.md: how it was chosen)
    "small": CodecConfig(),
    # the design comparison runs (same network family, three framings)
    "design-50hz": CodecConfig(hop_length=480, strides=(2, 4, 6, 10)),
    "design-75hz": CodecConfig(hop_length=320, strides=(2, 4, 5, 8)),
    "design-86hz": CodecConfig(sample_rate=22_050, hop_length=256, strides=(4, 4, 4, 4)),
    # wider, for a GPU run
    "medium": CodecConfig(base_channels=32, max_channels=512, latent_dim=128, residual_layers=2),
}  # fmt: skip


# ----------------------------------------------------------------------------------------------- building blocks


class ResidualUnit(nn.Module):
    """ELU, dilated conv (k=3) to half width, ELU, 1x1 conv back; added to the input."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        hidden = max(1, channels // 2)
        self.conv1 = nn.Conv1d(channels, hidden, 3, dilation=dilation, padding=dilation)
        self.conv2 = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.conv2(F.elu(self.conv1(F.elu(x))))
        return out


class Downsample(nn.Module):
    """Strided conv (kernel 2s, stride s) that maps a length divisible by s to exactly length / s."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(cin, cout, 2 * stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        out: torch.Tensor = self.conv(F.pad(F.elu(x), (s - s // 2, s // 2)))
        return out


class Upsample(nn.Module):
    """Transposed conv (kernel 2s, stride s) trimmed to exactly s times the input length."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.ConvTranspose1d(cin, cout, 2 * stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        y: torch.Tensor = self.conv(F.elu(x))  # length (L + 1) * s
        return y[..., s - s // 2 : y.shape[-1] - s // 2]


def _level_channels(config: CodecConfig) -> list[int]:
    """Channels at each level, full rate first: base, 2*base, ... capped; one more entry than strides."""
    return [min(config.base_channels * 2**i, config.max_channels) for i in range(len(config.strides) + 1)]


class Encoder(nn.Module):
    """``[B, 1, T] -> [B, latent_dim, T / hop]`` (T divisible by hop)."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        chans = _level_channels(config)
        layers: list[nn.Module] = [nn.Conv1d(1, chans[0], 7, padding=3)]
        for i, stride in enumerate(config.strides):
            layers += [ResidualUnit(chans[i], 3**j) for j in range(config.residual_layers)]
            layers.append(Downsample(chans[i], chans[i + 1], stride))
        layers += [nn.ELU(), nn.Conv1d(chans[-1], config.latent_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class Decoder(nn.Module):
    """``[B, latent_dim, F] -> [B, 1, F * hop]``."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        chans = _level_channels(config)
        layers: list[nn.Module] = [nn.Conv1d(config.latent_dim, chans[-1], 7, padding=3)]
        for i in reversed(range(len(config.strides))):
            layers.append(Upsample(chans[i + 1], chans[i], config.strides[i]))
            layers += [ResidualUnit(chans[i], 3**j) for j in range(config.residual_layers)]
        layers += [nn.ELU(), nn.Conv1d(chans[0], 1, 7, padding=3)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(z)
        return out


# -------------------------------------------------------------------------------------------------------- codec


class Codec(nn.Module):
    """Encoder, residual VQ and decoder. ``forward`` is the training pass; ``encode``/``decode`` are for use."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantizer = ResidualVectorQuantizer(config)
        self.decoder = Decoder(config)
        self._init_weights()

    def _init_weights(self) -> None:
        """He-normal convolutions and zero biases: PyTorch's default init shrinks the signal ~1.7x per layer, so the
        latent at init would be mostly biases (the same vector every frame) and the codebooks collapse."""
        for module in self.modules():
            if isinstance(module, nn.Conv1d | nn.ConvTranspose1d):
                if isinstance(module, nn.ConvTranspose1d):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu", mode="fan_out")
                else:
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu", mode="fan_in")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        last = self.decoder.net[-1]
        assert isinstance(last, nn.Conv1d)
        with torch.no_grad():
            last.weight.mul_(0.1)  # start near silence rather than at +10 dB

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def n_codebooks(self) -> int:
        return self.config.n_codebooks

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _pad(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise BadInputError(
                f"the codec takes mono audio shaped [batch, 1, samples], got {tuple(wav.shape)}; "
                "mix multichannel audio to mono first"
            )
        if wav.shape[-1] < 1:
            raise BadInputError("cannot encode empty audio (0 samples)")
        frames = -(-wav.shape[-1] // self.hop_length)
        return F.pad(wav, (0, frames * self.hop_length - wav.shape[-1]))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: ``wav [B, 1, T] -> (reconstruction [B, 1, F * hop], codes [B, Q, F], commitment loss)``."""
        z = self.encoder(self._pad(wav))
        quantized, codes, commitment = self.quantizer(z)
        return self.decoder(quantized), codes, commitment

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav [B, 1, T]`` float in -1..1 at ``sample_rate`` -> codes ``[B, Q, ceil(T / hop)]`` (int64)."""
        param = next(self.parameters())
        z = self.encoder(self._pad(wav).to(param.device, param.dtype))
        return self.quantizer.encode(z)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, Q, F]`` (each in ``0..codebook_size-1``) -> audio ``[B, 1, F * hop]`` float."""
        if codes.dim() != 3 or codes.shape[1] != self.n_codebooks:
            raise BadInputError(f"codes must be shaped [batch, {self.n_codebooks}, frames], got {tuple(codes.shape)}")
        if codes.shape[-1] < 1:
            raise BadInputError("cannot decode 0 frames")
        if codes.dtype.is_floating_point or int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size:
            raise BadInputError(f"codes must be integers in 0..{self.codebook_size - 1}")
        param = next(self.parameters())
        latent = self.quantizer.decode(codes.to(param.device)).to(param.dtype)
        out: torch.Tensor = self.decoder(latent)
        return out


# -------------------------------------------------------------------------------------------------- save / load


def save_codec(
    codec: Codec,
    out_dir: str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.float32,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.safetensors`` (weights and codebooks in ``dtype``) and ``config.json`` into ``out_dir``.

    Each file is written to a temporary name and renamed, so a reader never sees half a checkpoint. ``extra`` is
    merged into ``config.json`` (training summary, metrics, description).
    """
    from engine.checkpoints import write_checkpoint

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for key, value in codec.state_dict().items():
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.to(dtype)
        state[key] = value.contiguous()
    fields = {
        "modes": [],
        "codec": codec.config.to_dict(),
        "parameters": codec.num_parameters(),
        "frame_rate": codec.frame_rate,
        "weights_dtype": str(dtype).removeprefix("torch."),
    }
    description = "Segue audio codec (residual VQ); used by the audio models, not a generator itself"
    write_checkpoint(folder, CODEC_TYPE, description, state, fields, extra)
    return folder


def read_codec_config(path: str | os.PathLike[str]) -> tuple[CodecConfig, dict[str, Any]]:
    """The :class:`CodecConfig` and the whole ``config.json`` of a codec folder; clear errors when unusable."""
    import json

    folder = Path(path).expanduser()
    config_path = folder / CONFIG_NAME
    if not folder.is_dir():
        raise ModelNotFoundError(f"{folder} is not a folder; give the folder that holds the codec's {CONFIG_NAME}")
    if not config_path.is_file():
        raise ModelNotFoundError(f"{folder} is not a codec checkpoint (it has no {CONFIG_NAME})")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelNotFoundError(f"cannot read {config_path} ({e}); the checkpoint is corrupt") from e
    if not isinstance(data, dict) or not isinstance(data.get("codec"), dict):
        raise ModelNotFoundError(
            f"{config_path} has no 'codec' section; is it a Segue audio codec (type {CODEC_TYPE!r})? "
            f"it says type {data.get('type') if isinstance(data, dict) else None!r}"
        )
    try:
        return CodecConfig.from_dict(data["codec"]), data
    except (TypeError, ValueError) as e:
        raise ModelNotFoundError(f"{config_path}: bad codec config ({e})") from e


def load_codec(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Codec:
    """Build the codec from ``path/config.json`` and load ``path/model.safetensors`` (no pickle); eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(path).expanduser()
    config, _ = read_codec_config(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelNotFoundError(f"{folder} has no {WEIGHTS_NAME}; the codec checkpoint is incomplete")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelNotFoundError(f"cannot read {weights} ({e}); the file is corrupt or truncated") from e
    codec = Codec(config)
    expected = codec.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise ModelNotFoundError(
            f"{weights} does not match its config (missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"wrong shape {wrong[:3]}); was it saved by another version?"
        )
    codec.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    for key, value in codec.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ModelNotFoundError(f"{weights}: tensor {key} holds NaN/inf values; the checkpoint is corrupt")
    return codec.to(device).eval()
