"""MusicGen as a Segue audio model: ``--model musicgen:/path/to/dir``.

A MusicGen checkpoint on disk (a ``transformers`` ``MusicgenForConditionalGeneration`` folder: ``config.json`` with
``"model_type": "musicgen"`` and its weights) is loaded with ``local_files_only=True`` — never from a hub — and
wrapped so that it runs through exactly the code path of Segue's own audio model
(:func:`engine.audio.continuation.continue_audio`: bar lock, prompt on the region's last bars, windowed primed
sampling in :func:`engine.audio.sampling.sample_frames`, decoding with the seam in context, loudness match and
the click-free join):

- :class:`MusicgenCodec` is MusicGen's EnCodec behind the :class:`engine.audio.prior.Codec` protocol (32 kHz
  mono, 50 frames/s, 4 x 2048 codes for the released mono checkpoints);
- :class:`MusicgenPrior` is MusicGen's decoder behind the step interface :func:`sample_frames` uses (``config``
  with ``n_streams``, ``vocab_size``, ``block_size``; ``new_cache``; ``model(idx, cache=cache)``). MusicGen uses
  the same delay interleaving as Segue's prior (codebook ``q`` delayed by ``q`` steps) with one start column in
  front, which the adapter adds whenever a fresh cache is filled; its pad id (``codebook_size``) is Segue's
  *special* id, so the pattern's corners are the same tokens MusicGen was trained with.

Generation is unconditional (MusicGen's null text condition, as ``get_unconditional_inputs`` builds it): the
region's audio is the only prompt. Stereo MusicGen checkpoints (8 codebooks, interleaved channels) are refused.
``transformers`` is an optional dependency (``pip install 'segue[musicgen]'``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import ModelNotFoundError

log = logging.getLogger(__name__)

PREFIX = "musicgen:"
INSTALL_HINT = "pip install 'segue[musicgen]' (or pip install transformers==5.23.0)"


def is_musicgen_spec(name: str) -> bool:
    return name.startswith(PREFIX)


@dataclass(frozen=True)
class MusicgenPriorConfig:
    """What :func:`engine.audio.sampling.sample_frames` reads of a prior's config."""

    n_streams: int
    vocab_size: int  # codebook_size + 1: the last id is the special (MusicGen's pad) id
    block_size: int  # steps of context (MusicGen's positions, less the start column)


class MusicgenCache:
    """MusicGen's key/value cache and the number of Segue steps in it (the start column not counted)."""

    def __init__(self, batch_size: int) -> None:
        from transformers import DynamicCache, EncoderDecoderCache

        self.batch_size = batch_size
        self.past: Any = EncoderDecoderCache(DynamicCache(), DynamicCache())
        self.length = 0


class MusicgenPrior:
    """MusicGen's decoder as a Segue prior (see the module docstring)."""

    def __init__(self, model: Any) -> None:
        decoder_config = model.decoder.config
        self.model = model
        self.codebook_size = int(model.config.audio_encoder.codebook_size)
        self.start_id = int(model.generation_config.decoder_start_token_id or decoder_config.pad_token_id)
        self.pad_id = int(decoder_config.pad_token_id)
        self.hidden_size = int(decoder_config.hidden_size)
        self.config = MusicgenPriorConfig(
            n_streams=int(model.decoder.num_codebooks),
            vocab_size=self.codebook_size + 1,
            block_size=int(decoder_config.max_position_embeddings) - 1,
        )

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        params: Iterator[torch.nn.Parameter] = self.model.decoder.parameters()
        return params

    def num_parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.decoder.parameters()))

    def new_cache(self, batch_size: int) -> MusicgenCache:
        return MusicgenCache(batch_size)

    @torch.inference_mode()
    def __call__(self, idx: torch.Tensor, cache: MusicgenCache) -> tuple[torch.Tensor, None]:
        """``idx [K, Q, T]`` (Segue's delayed steps; the special id where a codebook has no frame) -> logits
        ``[K, Q, T, codebook_size + 1]`` (the special id's logit is -inf: MusicGen never predicts it)."""
        K, Q, T = idx.shape
        first = cache.length == 0
        tokens = idx.to(torch.long)
        tokens = torch.where(tokens == self.codebook_size, torch.full_like(tokens, self.pad_id), tokens)
        if first:  # MusicGen's sequences start with one column of the start id
            start = torch.full((K, Q, 1), self.start_id, dtype=torch.long, device=idx.device)
            tokens = torch.cat([start, tokens], dim=2)
        device = next(self.parameters()).device
        hidden = torch.zeros((K, 1, self.hidden_size), device=device, dtype=next(self.parameters()).dtype)
        mask = torch.zeros((K, 1), dtype=torch.long, device=device)  # the null (unconditional) text condition
        out = self.model.decoder(
            input_ids=tokens.reshape(K * Q, -1).to(device),
            encoder_hidden_states=hidden,
            encoder_attention_mask=mask,
            past_key_values=cache.past,
            use_cache=True,
        )
        cache.past = out.past_key_values
        cache.length += T
        logits = out.logits.reshape(K, Q, tokens.shape[2], -1)[..., : self.codebook_size].float()
        if first:
            logits = logits[:, :, 1:]
        special = torch.full((*logits.shape[:3], 1), float("-inf"), dtype=logits.dtype, device=logits.device)
        return torch.cat([logits, special], dim=-1), None


class MusicgenCodec:
    """MusicGen's EnCodec as a Segue codec: mono ``wav [B, 1, T]`` <-> codes ``[B, Q, F]``."""

    def __init__(self, model: Any) -> None:
        config = model.config.audio_encoder
        self.encodec = model.audio_encoder
        self.sample_rate = int(config.sampling_rate)
        self.hop_length = int(math.prod(int(r) for r in config.upsampling_ratios))
        self.frame_rate = self.sample_rate / self.hop_length
        self.n_codebooks = int(model.decoder.num_codebooks)
        self.codebook_size = int(config.codebook_size)
        # EnCodec picks its number of codebooks from the bandwidth: n_q x frame rate x log2(codebook size) bit/s
        needed = self.n_codebooks * self.frame_rate * math.log2(self.codebook_size) / 1000
        targets = [float(b) for b in (config.target_bandwidths or [])]
        matching = [b for b in targets if math.isclose(b, needed, rel_tol=1e-3)]
        if not matching:
            raise ModelNotFoundError(
                f"this MusicGen checkpoint's EnCodec offers bandwidths {targets} kbit/s, but its decoder's "
                f"{self.n_codebooks} codebooks need {needed:g} kbit/s; the checkpoint is inconsistent"
            )
        self.bandwidth = matching[0]

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        frames = math.ceil(wav.shape[-1] / self.hop_length)
        padded = torch.nn.functional.pad(wav, (0, frames * self.hop_length - wav.shape[-1]))
        out = self.encodec.encode(padded.to(next(self.encodec.parameters()).device), bandwidth=self.bandwidth)
        codes = out.audio_codes  # [chunks, B, Q, F]
        if codes.shape[0] != 1:
            raise ModelNotFoundError("MusicGen checkpoints whose EnCodec encodes in chunks are not supported")
        result: torch.Tensor = codes[0, :, :, :frames]
        return result

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        audio: torch.Tensor = self.encodec.decode(codes[None].to(torch.long), [None]).audio_values
        return audio[..., : codes.shape[-1] * self.hop_length]


def _check_folder(path: Path) -> dict[str, Any]:
    config_path = path / "config.json"
    if not path.is_dir():
        raise ModelNotFoundError(f"{path} is not a folder; --model musicgen:DIR needs a MusicGen checkpoint folder")
    if not config_path.is_file():
        raise ModelNotFoundError(
            f"{path} has no config.json, so it is not a MusicGen checkpoint (a transformers "
            "MusicgenForConditionalGeneration folder, e.g. a local copy of facebook/musicgen-small)"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelNotFoundError(f"cannot read {config_path}: {e}") from e
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type != "musicgen":
        raise ModelNotFoundError(
            f"{path} is not a MusicGen checkpoint: its config.json has model_type {model_type!r} (expected "
            "'musicgen'; MusicGen Melody and stereo checkpoints are not supported)"
        )
    assert isinstance(config, dict)
    return config


def load_musicgen(spec: str, device: str | torch.device = "cpu") -> Any:
    """Load ``musicgen:DIR`` as an :class:`engine.audio.prior.AudioModel` (local files only)."""
    from engine.audio.prior import AudioModel

    path = Path(spec[len(PREFIX) :] if is_musicgen_spec(spec) else spec).expanduser()
    if not str(path):
        raise ModelNotFoundError("--model musicgen: needs a folder: --model musicgen:/path/to/musicgen-small")
    config = _check_folder(path)
    decoder = config.get("decoder", {}) if isinstance(config.get("decoder"), dict) else {}
    if int(decoder.get("audio_channels", 1)) != 1:
        raise ModelNotFoundError(f"{path} is a stereo MusicGen checkpoint; only mono MusicGen checkpoints work here")
    try:
        import transformers
        from transformers import MusicgenForConditionalGeneration
    except ImportError as e:
        raise ModelNotFoundError(f"the MusicGen backend needs the transformers package: {INSTALL_HINT}") from e
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    try:
        loaded: Any = MusicgenForConditionalGeneration.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ModelNotFoundError(f"cannot load the MusicGen checkpoint in {path}: {e}") from e
    model = loaded.to(torch.device(device)).eval()
    codec = MusicgenCodec(model)
    prior = MusicgenPrior(model)
    log.info("MusicGen %s: decoder %.1fM parameters, %d x %d codes at %g frames/s, %d Hz", path,
             prior.num_parameters() / 1e6, codec.n_codebooks, codec.codebook_size, codec.frame_rate,
             codec.sample_rate)  # fmt: skip
    # the decoder's steps are large matrix products: let torch use every thread it has for them
    return AudioModel(f"{PREFIX}{path.name}", prior, codec, step_threads=None)
