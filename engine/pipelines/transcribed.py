"""An audio region as MIDI: transcribe it (:mod:`engine.transcribe.region`), then let the MIDI engine continue it.

:class:`engine.local.LocalEngine` sends an audio-only region here when ``GenerationParams.output`` asks for MIDI:

- ``"midi"``: the transcription is continued by the MIDI engine: ``continuation.mid``, ``stems/<part>.wav``,
  ``continuation.wav`` (the rendered mix) and ``full.mid``/``full.wav`` per variant; the job's kind is ``midi``.
- ``"both"``: the audio engine continues the audio (``continuation.wav``, ``full.wav``) and the MIDI engine the
  transcription, in the same variant folders (``continuation.mid``, ``stems/``, ``continuation_midi.wav``,
  ``full.mid``, ``full_midi.wav``), as for a region given as audio and MIDI; ``file_sources`` says which engine
  wrote each file.
- ``"auto"``: ``"audio"`` when an audio model is installed or named, else ``"midi"`` (when a MIDI model is),
  with a note saying so.
  (``--as midi`` with ``--model`` naming a MIDI model continues the transcription with that model.)

The transcription is kept as ``<job>/region/transcribed.mid`` (beside the uploaded region on a server), and the
region's notes start with what it holds ("transcribed from audio: 24 notes, monophonic ..."). Other modes (accompany)
turn an audio region into a MIDI prompt with :func:`transcribe_prompt`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from engine.api import CancelToken, GenerationRequest, GenerationResult, Prompt
from engine.checkpoints import SYMBOLIC_TYPE, find_checkpoint
from engine.errors import BadInputError, EngineError, ModelNotFoundError
from engine.pipelines import audio, midi
from engine.pipelines.context import NO_AUDIO_MODEL, JobContext, Models, refuse_taken_variants

if TYPE_CHECKING:
    from engine.transcribe.model import Progress
    from engine.transcribe.region import Transcription

TRANSCRIBED_MIDI = Path("region") / "transcribed.mid"
TRANSCRIBE_SHARE = 0.15  # of the progress bar
Route = Literal["midi", "both"]


def _names_a_midi_model(name: str) -> bool:
    if name in ("", "default") or name.startswith("musicgen:"):
        return False
    try:
        return find_checkpoint(name, kind="audio").type == SYMBOLIC_TYPE
    except ModelNotFoundError:
        return False


def _midi_default_installed() -> bool:
    try:
        return find_checkpoint("default", kind="midi").type == SYMBOLIC_TYPE
    except ModelNotFoundError:
        return False


def transcription_route(models: Models, request: GenerationRequest) -> tuple[Route | None, tuple[str, ...]]:
    """(what to do with an audio-only region, notes): "midi", "both", or None for the audio engine alone."""
    prompt, output = request.prompt, request.params.output
    if prompt.audio_path is None or prompt.midi_path is not None or output == "audio":
        return None, ()
    if output in ("midi", "both"):
        return output, ()
    # auto: the audio engine as before, unless no audio model is installed (and none is named) but a MIDI one is
    if request.model in ("", "default") and models.installed_audio_default() is None and _midi_default_installed():
        return "midi", ("the audio was transcribed and continued as MIDI: " + NO_AUDIO_MODEL,)
    return None, ()


def transcribe_prompt(
    prompt: Prompt,
    job_dir: Path,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    threads: int = 0,
) -> tuple[Prompt, Transcription, tuple[str, ...]]:
    """Transcribe an audio-only region into ``job_dir/region/transcribed.mid`` (never over an existing file):
    (the region as a MIDI prompt, the transcription, notes for the manifest). The MIDI prompt keeps the audio path
    and carries the region's tempo, meter and whole-bar length, so ``read_region`` reads it on the same grid; drop
    ``audio_path`` for the MIDI engine alone. :class:`BadInputError` without a tempo, for unreadable audio and for
    audio with no pitched content (:func:`engine.transcribe.region.transcribe_region`, which ``progress`` and ``cancel``
    are handed to; ``threads``: onnxruntime's, 0 for its default)."""
    from engine.transcribe.grid import TranscriptionOptions
    from engine.transcribe.region import AudioRegion, transcribe_region

    if prompt.audio_path is None:
        raise BadInputError("only an audio region is transcribed; this region has no audio file")
    grid, grid_notes = audio.audio_grid(prompt, None)  # BadInputError without --tempo
    midi_out = job_dir / TRANSCRIBED_MIDI
    if midi_out.exists():
        raise EngineError(f"{midi_out} already exists; Segue never overwrites files")
    options = TranscriptionOptions(threads=threads)
    region = AudioRegion(prompt.audio_path, grid.tempo_bpm, grid.meter, prompt.length_beats)
    transcription = transcribe_region(region, midi_out, options, progress, cancel)
    midi_prompt = replace(
        prompt, midi_path=midi_out, tempo_bpm=grid.tempo_bpm, meter=grid.meter,
        length_beats=transcription.length_beats,
    )  # fmt: skip
    return midi_prompt, transcription, (transcription.summary, *transcription.notes, *grid_notes)


def run(request: GenerationRequest, job_dir: Path, context: JobContext, route: Route = "midi") -> GenerationResult:
    """Transcribe the audio region into ``job_dir/region/transcribed.mid``, then run the MIDI pipeline (route
    "midi") or the audio pipeline with both engines (route "both") on it."""
    from engine.audio.audio_io import probe_audio

    prompt, params, report, cancel = request.prompt, request.params, context.report, context.cancel
    assert prompt.audio_path is not None
    refuse_taken_variants(job_dir, params.variants)  # before any work: Segue never overwrites
    info = probe_audio(prompt.audio_path)
    report(0.0, "transcribing the audio")
    midi_prompt, transcription, notes = transcribe_prompt(
        prompt, job_dir, lambda f: report(TRANSCRIBE_SHARE * f, "transcribing the audio"), cancel, context.threads
    )
    cancel.raise_if_cancelled()
    notes += context.notes
    if route == "midi":
        notes += transcription.region_notes  # the audio engine says these itself in a "both" job

    def rest(fraction: float, message: str) -> None:
        report(TRANSCRIBE_SHARE + (1.0 - TRANSCRIBE_SHARE) * fraction, message)

    with_midi = replace(request, prompt=midi_prompt, sample_rate=request.sample_rate or info.sample_rate)
    audio_name: str | None = None
    midi_name = "default"
    if route == "both":
        audio_name, midi_name = context.models.names_for_audio(with_midi)
        if audio_name is None:
            notes += ("the audio was not continued as audio (only as MIDI): " + NO_AUDIO_MODEL,)
    elif _names_a_midi_model(request.model):
        midi_name = request.model
    if audio_name is None:
        midi_request = replace(with_midi, prompt=replace(midi_prompt, audio_path=None), model=midi_name)
        result = midi.run(midi_request, job_dir, replace(context, report=rest, notes=()))
        sources = {role: f"midi:{result.model}" for role in result.variants[0].files} if result.variants else {}
    else:
        result = audio.run(with_midi, job_dir, replace(context, report=rest, notes=()))
        sources = dict(result.file_sources)
    region_notes = "; ".join(n for n in (*notes, result.region.notes) if n)
    timings = {**result.timings, **{f"transcription_{k}": v for k, v in transcription.timings.items()}}
    return replace(
        result,
        region=replace(result.region, notes=region_notes),
        timings=timings,
        file_sources=sources,
    )
