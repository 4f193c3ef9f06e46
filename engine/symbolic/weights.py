"""Save and load symbolic checkpoints (safetensors + config.json + tokenizer.json); no pickle anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from miditok import REMI
from safetensors.torch import load_file, save_file

from engine.atomic import write_with
from engine.checkpoints import (
    CONFIG_NAME,
    SYMBOLIC_TYPE,
    TOKENIZER_NAME,
    WEIGHTS_NAME,
    Checkpoint,
    write_json_atomic,
)
from engine.errors import ModelNotFoundError
from engine.nn.model import GPT, GPTConfig
from engine.symbolic.tokenizer import load_tokenizer


def save_symbolic(model: GPT, tokenizer: REMI, out_dir: Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``model.safetensors``, ``tokenizer.json`` and ``config.json`` into ``out_dir`` (atomically each)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    write_with(out_dir / WEIGHTS_NAME, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
    write_with(out_dir / TOKENIZER_NAME, tokenizer.save)
    config: dict[str, Any] = {
        "type": SYMBOLIC_TYPE,
        "name": out_dir.name,
        "gpt": model.config.to_dict(),
        "parameters": model.num_parameters(),
        "modes": ["continue"],
    }
    config.update(extra or {})
    write_json_atomic(out_dir / CONFIG_NAME, config)


def read_gpt_files(
    ckpt: Checkpoint, device: str | torch.device = "cpu"
) -> tuple[GPTConfig, REMI, dict[str, torch.Tensor]]:
    """A GPT checkpoint's config, tokenizer and weights (MIDI and accompany models); :class:`ModelNotFoundError`
    when one of them is missing or unreadable."""
    try:
        config = GPTConfig.from_dict(dict(ckpt.config["gpt"]))
        tokenizer = load_tokenizer(ckpt.tokenizer_path)
        state = load_file(str(ckpt.weights_path), device=str(device))
    except (KeyError, ValueError, OSError) as e:
        raise ModelNotFoundError(f"cannot load the checkpoint in {ckpt.path}: {e}") from e
    return config, tokenizer, state


def load_symbolic(ckpt: Checkpoint, device: str | torch.device = "cpu") -> tuple[GPT, REMI]:
    """Build the GPT from the checkpoint's config and load its weights (safetensors)."""
    if ckpt.type != SYMBOLIC_TYPE:
        raise ModelNotFoundError(f"{ckpt.path} is a {ckpt.type!r} model, not a symbolic (MIDI) model")
    if not ckpt.tokenizer_path.is_file():
        raise ModelNotFoundError(f"{ckpt.path} has no {TOKENIZER_NAME}")
    config, tokenizer, state = read_gpt_files(ckpt, device)
    if len(tokenizer) != config.vocab_size:
        raise ModelNotFoundError(
            f"{ckpt.path}: tokenizer has {len(tokenizer)} tokens but the model expects {config.vocab_size}"
        )
    model = GPT(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to wte.weight
    if missing or unexpected:
        raise ModelNotFoundError(
            f"{ckpt.path}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.to(device).eval(), tokenizer
