"""Checkpoints on disk: a folder with ``config.json``, ``model.safetensors`` and, for symbolic models,
``tokenizer.json``, plus a ``MODEL_CARD.md`` for shipped models.

Weights load with safetensors only (no pickle). Models are found by name among the installed ones
(the models shipped in ``engine/models/``, then ``$SEGUE_MODELS_DIR``, then the user's data folder), or by path.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine.api import ModelInfo
from engine.atomic import write_text, write_with
from engine.environment import Environment
from engine.errors import ModelNotFoundError

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODELS = {"midi": "segue-midi-small", "audio": "segue-concat", "accompany": "segue-accompany-small"}
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.json"
SYMBOLIC_TYPE = "symbolic-gpt"
AUDIO_PRIOR_TYPE = "segue-audio-prior"  # an audio model: the prior over codec codes, with its codec in codec/
CONCAT_TYPE = "segue-concat"  # the concatenative audio engine (engine/audio/concat): fitted per region, no weights
WEIGHTLESS_TYPES = (CONCAT_TYPE,)  # checkpoint types whose folder holds only config.json


@dataclass(frozen=True)
class Checkpoint:
    name: str
    path: Path
    config: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.config.get("type", ""))

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS_NAME

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_NAME


def search_dirs(environment: Environment | None = None) -> list[Path]:
    """Where installed models are looked for, in order: the shipped ones, ``$SEGUE_MODELS_DIR`` (of
    ``environment``; None: this process's, read now), the user's data folder."""
    dirs = [SHIPPED_DIR, *(environment or Environment.read()).models_dirs]
    try:
        import platformdirs

        dirs.append(Path(platformdirs.user_data_dir("segue")) / "models")
    except ImportError:  # pragma: no cover - platformdirs is a base dependency
        pass
    return dirs


def read_checkpoint(path: Path, name: str | None = None) -> Checkpoint:
    """Read a checkpoint folder's config, checking that its files are there."""
    path = Path(path).expanduser()
    config_path = path / CONFIG_NAME
    if not path.is_dir() or not config_path.is_file():
        raise ModelNotFoundError(f"{path} is not a Segue checkpoint folder (it needs {CONFIG_NAME})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelNotFoundError(f"cannot read {config_path}: {e}") from e
    if not isinstance(config, dict) or "type" not in config:
        raise ModelNotFoundError(f"{config_path} has no 'type' field; is it a Segue checkpoint?")
    if not (path / WEIGHTS_NAME).is_file() and config.get("type") not in WEIGHTLESS_TYPES:
        raise ModelNotFoundError(f"{path} has no {WEIGHTS_NAME}")
    return Checkpoint(name=name or str(config.get("name", path.name)), path=path, config=config)


def installed_checkpoints() -> list[Checkpoint]:
    found: dict[str, Checkpoint] = {}
    for root in search_dirs():
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if (child / CONFIG_NAME).is_file() and child.name not in found:
                try:
                    found[child.name] = read_checkpoint(child, child.name)
                except ModelNotFoundError as e:
                    log.warning("skipping broken checkpoint: %s", e)
    return list(found.values())


def find_checkpoint(name_or_path: str, kind: str = "midi") -> Checkpoint:
    """Resolve ``"default"``, an installed model's name, or a path to a checkpoint folder."""
    name = DEFAULT_MODELS.get(kind, name_or_path) if name_or_path in ("", "default") else name_or_path
    candidate = Path(name).expanduser()
    if os.sep in name or candidate.is_dir():
        return read_checkpoint(candidate)
    for ckpt in installed_checkpoints():
        if ckpt.name == name:
            return ckpt
    names = ", ".join(c.name for c in installed_checkpoints()) or "none"
    raise ModelNotFoundError(f"no model named {name!r}; installed models: {names} (or give a checkpoint folder)")


def model_info(ckpt: Checkpoint) -> ModelInfo:
    cfg = ckpt.config
    return ModelInfo(
        name=ckpt.name,
        kind="midi" if ckpt.type == SYMBOLIC_TYPE else "audio",
        path=str(ckpt.path),
        description=str(cfg.get("description", "")),
        parameters=int(cfg.get("parameters", 0)),
        modes=tuple(cfg.get("modes", ["continue"])),
        parts=tuple(str(p) for p in cfg.get("parts", ())),  # accompany models: the parts they write
    )


def config_fields(cls: type[Any], data: dict[str, Any], what: str) -> dict[str, Any]:
    """A copy of ``data`` (a config.json section) as keyword arguments for the dataclass ``cls``; ValueError naming
    the keys ``cls`` does not have (``what``: the config's name in the message)."""
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} config keys: {sorted(unknown)}")
    return dict(data)


def write_json_atomic(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_checkpoint(
    folder: Path,
    kind: str,
    description: str,
    state: dict[str, Any],
    fields: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint folder (which exists): ``model.safetensors`` (the tensors of ``state``, its metadata
    naming ``kind``), then ``config.json`` (``type``, ``name``, ``description``, ``fields``, then ``extra`` over
    them), each atomically."""
    from safetensors.torch import save_file

    metadata = {"format": "pt", "type": kind}
    write_with(folder / WEIGHTS_NAME, lambda tmp: save_file(state, str(tmp), metadata=metadata))
    config = {"type": kind, "name": folder.name, "description": description, **fields}
    config.update(extra or {})
    write_json_atomic(folder / CONFIG_NAME, config)
