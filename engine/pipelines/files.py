"""The one writer of a variant's folder (``v01/``, ``v02/`` ...) and the one render helper of the pipelines.

A :class:`VariantFolder` is created once, never over an existing folder (unless a pipeline that shares it with
another says so), and writes each file atomically, never over an existing file; it keeps the ``files`` map of the
variant (role -> path relative to the job folder, as :class:`engine.api.VariantResult` has it). Audio rendered
from MIDI is rendered from the MIDI file just written, so the audio is exactly what the MIDI says.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
from symusic import Score
from symusic.core import ScoreTick

from engine.api import VariantResult
from engine.atomic import write_json
from engine.errors import EngineError
from engine.midi_io import MidiFile, PartNotes, save_midi
from engine.render.soundfont import SoundFont
from engine.render.synth import Rendering, load_soundfont, render
from engine.render.wavfile import write_wav
from engine.render.workers import CpuWindow, run_tasks, worker_count

if TYPE_CHECKING:
    from engine.pipelines.context import JobContext, Stopwatch

log = logging.getLogger(__name__)

CPU_WINDOW_SECONDS = 0.05  # the shortest look at how busy the other cores are before choosing the render processes


def render_midi_file(path: Path, sample_rate: int, length_seconds: float, soundfont: SoundFont) -> Rendering:
    """Render a MIDI file we wrote (mix and one stem per part), ``length_seconds`` long."""
    return render(cast(ScoreTick, Score(str(path))), sample_rate, length_seconds, soundfont)


class VariantFolder:
    """One variant's folder in a job folder, and the files written into it so far (``files``: role -> path)."""

    def __init__(self, job_dir: Path, variant_id: str, exist_ok: bool = False) -> None:
        self.variant_id = variant_id
        self.path = job_dir / variant_id
        self.files: dict[str, str] = {}
        try:
            self.path.mkdir(parents=True, exist_ok=exist_ok)
        except FileExistsError as e:
            raise EngineError(f"{self.path} already exists; Segue never overwrites files") from e

    def _add(self, role: str | None, name: str) -> Path:
        if role is not None:
            self.files[role] = f"{self.variant_id}/{name}"
        return self.path / name

    def midi(self, name: str, midi: MidiFile, role: str | None) -> Path:
        path = self._add(role, name)
        save_midi(midi, path)
        return path

    def wav(self, name: str, audio: np.ndarray, sample_rate: int, role: str | None) -> Path:
        path = self._add(role, name)
        write_wav(path, audio, sample_rate)
        return path

    def json(self, name: str, data: Any) -> Path:
        """A JSON file beside the audio (no role), e.g. segue-concat's ``units.json``."""
        return write_json(self._add(None, name), data, overwrite=False, indent=1)

    def rendered(
        self, midi: Path, sample_rate: int, seconds: float, soundfont: SoundFont, mix: tuple[str, str], stems: bool
    ) -> Rendering:
        """Render ``midi`` (a file of this folder) and write its mix as ``mix`` (name, role) and, with ``stems``,
        each part as ``stems/<part>.wav`` (role ``stem:<part>``)."""
        rendering = render_midi_file(midi, sample_rate, seconds, soundfont)
        self.wav(mix[0], rendering.mix, sample_rate, mix[1])
        if stems:
            for name, stem in rendering.stems.items():
                self.wav(f"stems/{name}.wav", stem, sample_rate, f"stem:{name}")
        return rendering


class NotesWriter(Protocol):
    """A job's writer of variants made of notes (the MIDI and accompany pipelines')."""

    @property
    def soundfont(self) -> SoundFont: ...

    def write_variant(self, variant_id: str, seed: int, parts: tuple[PartNotes, ...]) -> VariantResult: ...


def write_note_variants(
    writer: NotesWriter,
    seeds: Sequence[int],
    variants: Sequence[tuple[PartNotes, ...]],
    context: JobContext,
    timings: Stopwatch,
    *,
    workers: int | None = None,
) -> tuple[VariantResult, ...]:
    """Write each variant (``v01``, ``v02`` ...) with ``writer``, the last 35% of the progress bar; adds
    ``render_seconds`` and ``total_seconds`` to ``timings`` and reports "done".

    The variants are written by ``workers`` processes at once (:func:`engine.render.workers.run_tasks`: this one
    and forked helpers that share the soundfont, loaded here first; None: one per usable core that other programs
    left free while it loaded, or ``SEGUE_RENDER_WORKERS``); the files are the same whichever process writes
    them."""
    t0 = time.perf_counter()
    count = len(variants)
    window = CpuWindow()
    load_soundfont(writer.soundfont)
    log.debug("soundfont ready in %.3f s", time.perf_counter() - t0)
    if workers is None and count > 1:
        window.wait_at_least(CPU_WINDOW_SECONDS)
        others = window.others_busy()
        workers = worker_count(count, others_busy=others)
        log.debug("other programs keep %s cores busy: %d render processes", _cores(others), workers)
    finished: list[int] = []

    def write(index: int) -> VariantResult:
        return writer.write_variant(f"v{index + 1:02d}", seeds[index], variants[index])

    def done(index: int, result: VariantResult) -> None:
        finished.append(index)
        context.report(
            0.65 + 0.35 * len(finished) / count, f"rendered variant {index + 1} ({len(finished)} of {count})"
        )

    if len(seeds) != count:
        raise ValueError(f"{len(seeds)} seeds for {count} variants")
    context.report(0.65, f"rendering {count} variant{'s' if count != 1 else ''}")
    results = run_tasks(write, count, workers=workers, cancel=context.cancel, on_done=done, label=_variant_label)
    timings.seconds["render_seconds"] = time.perf_counter() - t0
    timings.since_start("total_seconds")
    context.report(1.0, "done")
    return tuple(results)


def _cores(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def _variant_label(index: int) -> str:
    return f"variant v{index + 1:02d}"
