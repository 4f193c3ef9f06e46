"""The audio prior: the engine's one transformer (:mod:`engine.nn.model`) over codec frames.

MusicGen's delay interleaving (see :mod:`engine.audio.sampling`): codebook ``q`` is delayed by ``q`` steps, so one
step of the transformer emits all Q codebooks of a frame. The GPT runs with ``n_streams = Q`` (the sum of Q
embeddings in, Q output heads) and ``vocab_size = codebook_size + 1``: the extra id is the *special* token that
fills the delay pattern's empty corners (before a codebook's first frame, after its last).

An audio model is a folder, found like any checkpoint (by name among the installed models, or by path)::

    config.json         {"type": "segue-audio-prior", "gpt": {...}, "codec": "codec", "codec_config": {...}, ...}
    model.safetensors   the prior's weights (safetensors, no pickle)
    codec/              the codec the prior was trained on (engine.audio.codec: config.json + model.safetensors)
    MODEL_CARD.md       for shipped models

``"codec"`` is the codec folder, relative to the model folder (or absolute).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from safetensors.torch import load_file

from engine.checkpoints import AUDIO_PRIOR_TYPE, Checkpoint, write_checkpoint
from engine.errors import ModelNotFoundError
from engine.nn.model import GPT, GPTConfig

if TYPE_CHECKING:
    from engine.audio.sampling import Prior

log = logging.getLogger(__name__)

CODEC_DIR = "codec"

PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig(block_size=96, n_layer=2, n_head=2, n_embd=32),  # tests
    "small": GPTConfig(block_size=1024, n_layer=6, n_head=8, n_embd=256),  # the CPU model: ~4.7M + embeddings
    "medium": GPTConfig(block_size=1536, n_layer=12, n_head=12, n_embd=512),  # ~38M, a GPU run
}


class Codec(Protocol):
    """What the prior needs of a codec (:class:`engine.audio.codec.Codec` is one). Mono; codes ``[B, Q, F]``."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def hop_length(self) -> int: ...

    @property
    def frame_rate(self) -> float: ...

    @property
    def n_codebooks(self) -> int: ...

    @property
    def codebook_size(self) -> int: ...

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav [B, 1, T]`` -> codes ``[B, Q, ceil(T / hop)]``."""
        ...

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[B, Q, F]`` -> ``wav [B, 1, F * hop]``."""
        ...


def prior_config(preset: str | GPTConfig, codec: Codec, block_size: int | None = None) -> GPTConfig:
    """The GPT config of a prior over ``codec``'s codes: Q streams of ``codebook_size + 1`` ids."""
    base = PRESETS[preset] if isinstance(preset, str) else preset
    config = replace(base, n_streams=int(codec.n_codebooks), vocab_size=int(codec.codebook_size) + 1)
    return replace(config, block_size=block_size) if block_size else config


def special_token(config: GPTConfig) -> int:
    """The id that fills the delay pattern where a codebook has no frame (``codebook_size``)."""
    return config.vocab_size - 1


def codec_summary(codec: Codec) -> dict[str, Any]:
    return {
        "sample_rate": int(codec.sample_rate),
        "hop_length": int(codec.hop_length),
        "n_codebooks": int(codec.n_codebooks),
        "codebook_size": int(codec.codebook_size),
    }


def save_prior(
    model: GPT, codec: Codec, out_dir: Path, codec_dir: str = CODEC_DIR, extra: dict[str, Any] | None = None
) -> None:
    """Write the prior's ``model.safetensors`` and ``config.json`` into ``out_dir`` (each atomically).

    ``codec_dir`` is where the model's codec lives, relative to ``out_dir`` (or absolute); it is not copied.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    fields = {
        "gpt": model.config.to_dict(),
        "codec": codec_dir,
        "codec_config": codec_summary(codec),
        "parameters": model.num_parameters(),
        "modes": ["continue"],
    }
    description = "Segue audio model (a prior over codec codes)"
    write_checkpoint(out_dir, AUDIO_PRIOR_TYPE, description, state, fields, extra)


def load_prior(ckpt: Checkpoint, device: str | torch.device = "cpu") -> GPT:
    """Build the GPT from an audio checkpoint's config and load its weights (safetensors)."""
    if ckpt.type != AUDIO_PRIOR_TYPE:
        raise ModelNotFoundError(f"{ckpt.path} is a {ckpt.type!r} model, not an audio model ({AUDIO_PRIOR_TYPE})")
    try:
        config = GPTConfig.from_dict(dict(ckpt.config["gpt"]))
        state = load_file(str(ckpt.weights_path), device=str(device))
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise ModelNotFoundError(f"cannot load the audio model in {ckpt.path}: {e}") from e
    if config.n_streams < 1 or config.vocab_size < 2:
        raise ModelNotFoundError(f"{ckpt.path}: not a prior over codec codes ({config})")
    model = GPT(config)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a tensor of the wrong shape
        detail = str(e).splitlines()[-1].strip()
        raise ModelNotFoundError(f"{ckpt.path}: weights do not match the config ({detail})") from e
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to wte.weight
    if missing or unexpected:
        raise ModelNotFoundError(
            f"{ckpt.path}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.to(device).eval()


def codec_path(ckpt: Checkpoint) -> Path:
    relative = Path(str(ckpt.config.get("codec", CODEC_DIR))).expanduser()
    return relative if relative.is_absolute() else ckpt.path / relative


def _load_codec(path: Path, device: torch.device) -> Codec:
    from engine.audio.codec import load_codec  # lazily: the codec module is heavy

    codec: Codec = load_codec(path, device)
    return codec


@dataclass(frozen=True)
class AudioModel:
    """A prior and the codec whose codes it models."""

    name: str
    prior: Prior
    codec: Codec
    step_threads: int | None = 1  # torch threads for the one-frame sampling steps (SamplingOptions.step_threads)

    def __post_init__(self) -> None:
        config = self.prior.config
        if config.n_streams != self.codec.n_codebooks or config.vocab_size != self.codec.codebook_size + 1:
            raise ModelNotFoundError(
                f"audio model {self.name!r}: the prior expects {config.n_streams} codebooks of "
                f"{config.vocab_size - 1} codes but its codec has {self.codec.n_codebooks} of "
                f"{self.codec.codebook_size}; was the prior trained on another codec?"
            )

    @property
    def special(self) -> int:
        return special_token(self.prior.config)

    @classmethod
    def load(cls, ckpt: Checkpoint, device: str | torch.device = "cpu") -> AudioModel:
        device = torch.device(device)
        prior = load_prior(ckpt, device)
        path = codec_path(ckpt)
        if not path.is_dir():
            raise ModelNotFoundError(
                f"audio model {ckpt.name!r} ({ckpt.path}) has no codec folder {path}; an audio model needs the "
                "codec it was trained on"
            )
        codec = _load_codec(path, device)
        log.info("audio model %s: prior %.1fM parameters, codec %s", ckpt.name, prior.num_parameters() / 1e6, path)
        return cls(ckpt.name, prior, codec)
