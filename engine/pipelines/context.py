"""What every pipeline is handed: the engine's loaded models, its job lock, the soundfont, progress, cancel and
the transcriber's threads."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from engine.api import CancelToken, GenerationParams, GenerationRequest, ProgressCallback
from engine.checkpoints import AUDIO_PRIOR_TYPE, CONCAT_TYPE, SYMBOLIC_TYPE, find_checkpoint
from engine.environment import DecodeSettings
from engine.errors import BadInputError, EngineError, ModelNotFoundError
from engine.nn.model import GPT
from engine.nn.model_fast import apply_settings
from engine.symbolic.continuation import SymbolicModel

if TYPE_CHECKING:
    from engine.audio.concat.job import ConcatModel
    from engine.audio.prior import AudioModel

NO_AUDIO_MODEL = (
    "no audio model is installed (the default audio engine, segue-concat, and the neural segue-audio-small ship in "
    "engine/models/: reinstall Segue to get them back): train one on a folder of your own audio with "
    "`segue train audio --data AUDIO_DIR --out MODEL_DIR`, then give it with --model MODEL_DIR (or add its "
    "parent folder to $SEGUE_MODELS_DIR)"
)


class Models:
    """The MIDI and audio models an engine keeps loaded between jobs, by checkpoint path, on one device, each
    GPT running its decode steps as ``decode`` says (the entry point's ``SEGUE_*`` settings). Used under the
    engine's job lock."""

    def __init__(self, device: torch.device, decode: DecodeSettings | None = None) -> None:
        self.device = device
        self.decode = decode or DecodeSettings()
        self._symbolic: dict[str, SymbolicModel] = {}
        self._audio: dict[str, AudioModel | ConcatModel] = {}

    def symbolic(self, name: str) -> SymbolicModel:
        ckpt = find_checkpoint(name, kind="midi")
        if ckpt.type != SYMBOLIC_TYPE:
            raise BadInputError(f"model {ckpt.name!r} is a {ckpt.type} model; this region needs a MIDI model")
        if "continue" not in ckpt.config.get("modes", ["continue"]):  # an accompany model
            raise BadInputError(f"model {ckpt.name!r} only accompanies: use --mode accompany, or another model")
        key = str(ckpt.path)
        if key not in self._symbolic:
            self._symbolic[key] = SymbolicModel.load(ckpt, self.device)
            apply_settings(self._symbolic[key].model, self.decode)
        return self._symbolic[key]

    def audio(self, name: str) -> AudioModel | ConcatModel:
        from engine.audio.concat.job import ConcatModel
        from engine.audio.musicgen import is_musicgen_spec, load_musicgen
        from engine.audio.prior import AudioModel

        if is_musicgen_spec(name):  # --model musicgen:DIR (transformers, local files only)
            if name not in self._audio:
                self._audio[name] = load_musicgen(name, self.device)
            return self._audio[name]
        try:
            ckpt = find_checkpoint(name, kind="audio")
        except ModelNotFoundError as e:
            if name in ("", "default"):
                raise ModelNotFoundError(NO_AUDIO_MODEL) from e
            raise
        if ckpt.type == CONCAT_TYPE:  # segue-concat: fitted on each region, nothing to load
            return ConcatModel(ckpt.config)
        if ckpt.type != AUDIO_PRIOR_TYPE:
            raise BadInputError(
                f"model {ckpt.name!r} is a {ckpt.type or 'unknown'} model; an audio region needs an audio model "
                f"({CONCAT_TYPE} or {AUDIO_PRIOR_TYPE}): see `segue models`, or train one with `segue train audio`"
            )
        key = str(ckpt.path)
        if key not in self._audio:
            loaded = AudioModel.load(ckpt, self.device)
            if isinstance(loaded.prior, GPT):
                apply_settings(loaded.prior, self.decode)
            self._audio[key] = loaded
        return self._audio[key]

    def names_for_audio(self, request: GenerationRequest) -> tuple[str | None, str]:
        """(audio model, MIDI model) for an audio region; ``--model`` names one, the other is the default.

        The audio model is None when the region has MIDI too and no audio model is installed."""
        name, has_midi = request.model, request.prompt.midi_path is not None
        if not has_midi or name.startswith("musicgen:"):
            return name, "default"
        if name not in ("", "default"):
            ckpt = find_checkpoint(name, kind="audio")
            if ckpt.type == SYMBOLIC_TYPE:
                return (self.installed_audio_default(), name)
            return name, "default"
        return self.installed_audio_default(), "default"

    def installed_audio_default(self) -> str | None:
        """The default audio model's folder, or None when no audio model is installed."""
        try:
            ckpt = find_checkpoint("default", kind="audio")
        except ModelNotFoundError:
            return None
        return str(ckpt.path) if ckpt.type in (AUDIO_PRIOR_TYPE, CONCAT_TYPE) else None


class Stopwatch:
    """A job's timings for job.json, in seconds: each step's (:meth:`step`) and some since the pipeline started
    (:meth:`since_start`), in the order they were taken."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def since_start(self, name: str) -> None:
        self.seconds[name] = time.perf_counter() - self.started

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Times the ``with`` block as ``name`` (when it finishes)."""
        t0 = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - t0


@dataclass(frozen=True)
class JobContext:
    """One job's surroundings. ``notes`` are what the dispatcher has to say about the job (they lead the region's
    notes in job.json); ``lock`` is held while a pipeline uses the models."""

    models: Models
    lock: threading.Lock
    soundfont_path: str | None
    report: ProgressCallback
    cancel: CancelToken
    threads: int = 0  # the transcriber's threads (0: onnxruntime's default)
    notes: tuple[str, ...] = ()

    def with_notes(self, *notes: str) -> JobContext:
        return replace(self, notes=self.notes + notes)


def refuse_taken_variants(job_dir: Path, variants: int) -> None:
    """Before any work: :class:`EngineError` when a variant folder of this job exists (Segue never overwrites)."""
    taken = [job_dir / f"v{i:02d}" for i in range(1, variants + 1) if (job_dir / f"v{i:02d}").exists()]
    if taken:
        raise EngineError(f"{taken[0]} already exists; Segue never overwrites files")


def variant_seeds(params: GenerationParams) -> list[int]:
    """One seed per variant, from ``params.seed`` (a random one when None) on."""
    base_seed = params.seed if params.seed is not None else random.randrange(2**31)
    return [base_seed + i for i in range(params.variants)]
