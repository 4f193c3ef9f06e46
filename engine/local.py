"""The in-process engine: picks the pipeline for a request and runs it with the models it keeps loaded.

The pipelines (:mod:`engine.pipelines`) write each variant's files (``v01/continuation.mid``, ...) into the job
folder, per shared/DESIGN.md; every file atomically, never over an existing one.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import torch

from engine.api import CancelToken, GenerationRequest, GenerationResult, ModelInfo, ProgressCallback
from engine.checkpoints import installed_checkpoints, model_info
from engine.environment import DecodeSettings
from engine.errors import BadInputError
from engine.pipelines.context import NO_AUDIO_MODEL, JobContext, Models


def _noop(fraction: float, message: str) -> None:
    pass


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class LocalEngine:
    """Runs models in this process. Thread-safe: one job at a time per engine instance. ``threads``: torch's and
    the transcriber's threads (None or 0: the libraries' defaults; :func:`engine.entrypoints.open_engine` passes
    ``SEGUE_THREADS``); ``decode``: how the models it loads run their decode steps (None: the defaults)."""

    def __init__(
        self,
        device: str = "auto",
        soundfont: str | None = None,
        threads: int | None = None,
        decode: DecodeSettings | None = None,
    ) -> None:
        self.device = pick_device(device)
        self.threads = threads or 0
        if self.threads > 0:  # fewer threads keep a busy machine (a DAW playing) responsive
            torch.set_num_threads(self.threads)
        self._soundfont_path = soundfont
        self.loaded = Models(self.device, decode or DecodeSettings())
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"local ({self.device.type})"

    def models(self) -> list[ModelInfo]:
        return [model_info(c) for c in installed_checkpoints()]

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        from engine.pipelines import accompany, audio, midi, transcribed

        context = JobContext(
            self.loaded, self._lock, self._soundfont_path, progress or _noop, cancel or CancelToken(), self.threads
        )
        params, prompt = request.params, request.prompt
        if params.mode == "accompany":  # the accompany model writes the other parts
            return accompany.run(request, job_dir, context)
        if prompt.stems:  # several tracks of one region: segue-concat continues them together
            if params.output not in ("auto", "audio"):
                raise BadInputError("stems are continued as audio (by segue-concat): leave out --as midi/both")
            if prompt.audio_path is None:
                from engine.audio.concat.stems import mix_stems

                prompt, stem_notes = mix_stems(prompt, job_dir)
                request, context = replace(request, prompt=prompt), context.with_notes(*stem_notes)
        if prompt.audio_path is None:
            return midi.run(request, job_dir, context)
        if params.output == "midi" and prompt.midi_path is not None:  # audio and MIDI of one region, as MIDI
            return midi.run(replace(request, prompt=replace(prompt, audio_path=None)), job_dir, context)
        route, route_notes = transcribed.transcription_route(self.loaded, request)
        if route is not None:  # an audio-only region as MIDI (or both): transcribed first
            return transcribed.run(request, job_dir, context.with_notes(*route_notes), route)
        audio_name, midi_name = self.loaded.names_for_audio(request)
        if audio_name is None:  # MIDI and audio of one region, no audio model: continue the MIDI, say why
            midi_request = replace(request, prompt=replace(prompt, audio_path=None), model=midi_name)
            return midi.run(midi_request, job_dir, context.with_notes("the audio was not continued: " + NO_AUDIO_MODEL))
        return audio.run(request, job_dir, context)
