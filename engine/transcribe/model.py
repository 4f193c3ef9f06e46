"""basic-pitch's note model for :mod:`engine.transcribe.region`: its ICASSP 2022 ONNX model (the ``nmp.onnx`` file
inside the basic-pitch wheel, through onnxruntime; no TensorFlow, nothing downloaded) run over windows of a
region's audio (:func:`model_output`), and the note events basic-pitch's own decoder reads off its activations once
their onsets are cleaned of bleed and doubled peaks (:func:`note_events`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.api import CancelToken
from engine.errors import EngineError
from engine.transcribe.grid import MODEL_SAMPLE_RATE, NoteEvent, TranscriptionOptions

Progress = Callable[[float], None]
Activations = dict[str, npt.NDArray[np.float32]]
# runs the model on [samples] at 22.05 kHz: model_output, or a stand-in a test hands to transcribe_region
ModelRunner = Callable[[npt.NDArray[np.float32], "Progress | None", "CancelToken | None"], Activations]

FFT_HOP = 256  # its frame hop: 86.13 frames per second
WINDOW_SAMPLES = MODEL_SAMPLE_RATE * 2 - FFT_HOP  # one model call sees 2 s (43844 samples)
OVERLAP_FRAMES = 30  # windows overlap by 30 frames; half of it is cut from each side
BATCH_WINDOWS = 8
MIDI_OFFSET = 21  # the model's lowest key, A0
ATTACK_FRAMES = 8  # a note's start moves back at most this many frames (93 ms) onto its attack
INFER_FRAMES = 2  # basic-pitch infers an onset from a rise over 1 and 2 frames
BLEED_KEYS = 2  # an attack's onset bleeds into the keys up to a whole tone away...
BLEED_FRAMES = 2  # ...within two frames either side
BLEED_SHARE = 0.85  # bleed is under this share of the attack it comes from (0.55-0.61; 0.76 at most perturbed)
BLEED_RISE = 0.15  # and sits on a key whose activation rises less than this over +-2 frames (a new note: ~0.5)
MISSING = (
    "audio-to-MIDI transcription needs basic-pitch and its runtime: pip install 'segue[transcribe]' and then "
    "pip install --no-deps basic-pitch (or run `make venv`)"
)


_session_lock = threading.Lock()
_sessions: dict[tuple[str, int], Any] = {}


@contextlib.contextmanager
def _quiet_import() -> Iterator[None]:
    """basic-pitch logs a warning on the root logger per runtime it lacks (and so configures logging) when it is
    imported, and resampy warns that pkg_resources is deprecated: neither concerns us."""
    root = logging.getLogger()
    sink = logging.NullHandler()
    root.addHandler(sink)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        root.removeHandler(sink)


def model_path() -> Path:
    """The ONNX note model inside the installed basic-pitch package (its package is not imported)."""
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(MISSING)
    path = Path(list(spec.submodule_search_locations)[0]) / "saved_models" / "icassp_2022" / "nmp.onnx"
    if not path.is_file():
        raise EngineError(f"basic-pitch is installed but its model {path} is missing; reinstall it. {MISSING}")
    return path


def _session(threads: int = 0) -> Any:
    """One onnxruntime session per process and thread count (loading costs ~0.1 s; the first run compiles for
    ~1 s more). ``threads``: intra-op threads, 0 for onnxruntime's default."""
    path = str(model_path())
    key = (path, max(threads, 0))
    with _session_lock:
        if key not in _sessions:
            try:
                import onnxruntime as ort
            except ImportError as e:
                raise EngineError(MISSING) from e
            options = ort.SessionOptions()
            if threads > 0:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            options.log_severity_level = 3
            _sessions[key] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return _sessions[key]


def _note_creation() -> Any:
    try:
        with _quiet_import():
            from basic_pitch import note_creation
    except ImportError as e:
        raise EngineError(f"{MISSING} ({e.name or e} is missing)") from e
    return note_creation


def model_output(
    mono: npt.NDArray[np.float32],
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    threads: int = 0,
) -> dict[str, npt.NDArray[np.float32]]:
    """basic-pitch's activations for ``[samples]`` at 22.05 kHz: ``note``, ``onset`` ``[frames, 88]`` and
    ``contour`` ``[frames, 264]``, windowed and unwrapped as basic-pitch's ``run_inference`` does; ``progress``
    gets the share done and ``cancel`` is polled after each batch of windows; ``threads``: onnxruntime's (0: its
    default)."""
    session = _session(threads)
    overlap = OVERLAP_FRAMES * FFT_HOP
    hop = WINDOW_SAMPLES - overlap
    padded = np.concatenate([np.zeros(overlap // 2, np.float32), mono.astype(np.float32)])
    starts = list(range(0, padded.shape[0], hop))
    windows = np.zeros((len(starts), WINDOW_SAMPLES, 1), np.float32)
    for i, start in enumerate(starts):
        chunk = padded[start : start + WINDOW_SAMPLES]
        windows[i, : chunk.shape[0], 0] = chunk
    outputs: dict[str, list[npt.NDArray[np.float32]]] = {"note": [], "onset": [], "contour": []}
    names = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0"]
    for b in range(0, len(starts), BATCH_WINDOWS):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(b / len(starts))
        batch = windows[b : b + BATCH_WINDOWS]
        for key, value in zip(("note", "onset", "contour"), session.run(names, {"serving_default_input_2:0": batch}),
                              strict=True):  # fmt: skip
            outputs[key].append(np.asarray(value, np.float32))
    half = OVERLAP_FRAMES // 2
    n_frames = int(math.floor(mono.shape[0] * (MODEL_SAMPLE_RATE // FFT_HOP) / MODEL_SAMPLE_RATE))
    unwrapped = {}
    for key, parts in outputs.items():
        stacked = np.concatenate(parts)[:, half:-half, :]
        unwrapped[key] = stacked.reshape(-1, stacked.shape[2])[:n_frames]
    return unwrapped


def onset_support(
    onset: npt.NDArray[np.float32], note: npt.NDArray[np.float32], frame_threshold: float, creation: Any
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(the model's onsets without bleed, the onsets for the decoder: those and basic-pitch's onsets inferred from
    jumps in the note activation where a note appears).

    Bleed: one attack's onset spills into the keys beside it. An onset within ``BLEED_KEYS`` and ``BLEED_FRAMES``
    of one it is under ``BLEED_SHARE`` of, on a key whose own note activation does not rise there (it is sounding
    already and fading: the attack is its neighbour's), is zeroed. basic-pitch's decoder walks the onsets backwards
    in time and a note takes the keys beside it, so such a bleed (0.53 to 0.57 where the attack beside it scored
    0.94 to 0.97, on a rendered piano melody) one frame after the real attack took the real note's key away or
    re-struck the fading note, and a change in the third decimal (as between CPUs' kernels) decided whether it
    crossed the 0.5 onset threshold. A new note's activation rises by ~0.5 over its onset, a fading one's falls:
    ``BLEED_RISE`` is far from both. A chord tone re-struck with a neighbour's attack rises less, but its onset is
    as strong as the neighbour's (0.93-0.98): ``BLEED_SHARE`` keeps it.

    Inferred onsets count only where the note's activation two frames before is under ``frame_threshold``:
    basic-pitch scales the jumps to the strongest onset, and a held chord tone's activation wobbling up by 0.15 in
    one frame scored 0.88."""
    from scipy.ndimage import maximum_filter

    around = np.ones((2 * BLEED_FRAMES + 1, 2 * BLEED_KEYS + 1), bool)
    around[:, BLEED_KEYS] = False  # the neighbouring keys only
    neighbours = maximum_filter(onset, footprint=around, mode="constant", cval=0.0)
    later = np.concatenate([note[BLEED_FRAMES:], np.repeat(note[-1:], BLEED_FRAMES, axis=0)])
    earlier = np.concatenate([np.repeat(note[:1], BLEED_FRAMES, axis=0), note[:-BLEED_FRAMES]])
    bleed = (onset < BLEED_SHARE * neighbours) & (later - earlier < BLEED_RISE)
    quiet = np.where(bleed, np.float32(0.0), onset).astype(np.float32)
    before = np.concatenate([np.zeros((INFER_FRAMES, note.shape[1]), np.float32), note[:-INFER_FRAMES]])
    inferred = np.asarray(creation.get_infered_onsets(quiet, note, n_diff=INFER_FRAMES), np.float32)
    return quiet, np.where(before < frame_threshold, inferred, quiet).astype(np.float32)


def onset_peaks(support: npt.NDArray[np.float32], min_frames: int) -> npt.NDArray[np.float32]:
    """``support`` with only its peaks left: the frames that are the highest on their key within ``min_frames``
    either side, the first frame of a flat top. Two onsets on one key closer than the shortest note kept are one
    attack (the decoder, walking back in time, let a noise-born second peak a few frames after a re-struck chord
    tone end that note before it reached its shortest length, and the re-strike was lost), and basic-pitch's peak
    picking needs a strict maximum (two saturated frames in a row were no onset at all)."""
    from scipy.ndimage import maximum_filter1d

    highest = maximum_filter1d(support, size=2 * min_frames + 1, axis=0, mode="constant", cval=0.0)
    peak = (support >= highest) & (support > 0)
    peak[1:] &= ~peak[:-1]  # a flat top (a saturated onset: 1.0 twice) is one peak, at its first frame
    return np.where(peak, support, np.float32(0.0)).astype(np.float32)


def note_events(
    mono: npt.NDArray[np.float32],
    min_note_seconds: float,
    options: TranscriptionOptions,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    model: ModelRunner | None = None,
) -> list[NoteEvent]:
    """Note events of ``[samples]`` at 22.05 kHz, by basic-pitch's decoder (onsets, then the melodia trick) on the
    activations of ``model`` (default :func:`model_output`), its onsets cleaned (:func:`onset_support`,
    :func:`onset_peaks`); each event carries the model's support for it: its mean and peak note activation and its
    own onset activation (without bleed; basic-pitch's inferred onsets start notes but are no witness)."""
    output = model(mono, progress, cancel) if model else model_output(mono, progress, cancel, options.threads)
    creation = _note_creation()
    frames_per_second = MODEL_SAMPLE_RATE / FFT_HOP
    min_frames = max(3, round(min_note_seconds * frames_per_second))
    note = np.asarray(output["note"], np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        onset, decoded = onset_support(np.asarray(output["onset"], np.float32), note, options.frame_threshold, creation)
        events = creation.output_to_notes_polyphonic(
            note.copy(),
            onset_peaks(decoded, min_frames),
            onset_thresh=options.onset_threshold,
            frame_thresh=options.frame_threshold,
            min_note_len=min_frames,
            infer_onsets=False,  # inferred in onset_support
            max_freq=None,
            min_freq=None,
            melodia_trick=True,
        )
    if not events:
        return []
    times = creation.model_frames_to_time(note.shape[0] + 1)
    found = []
    previous_end: dict[int, int] = {}  # per pitch: a note never starts before the one before it ended
    for start, end, pitch, amplitude in sorted(events, key=lambda e: (e[2], e[0])):
        key = int(pitch) - MIDI_OFFSET
        floor = previous_end.get(int(pitch), 0)
        previous_end[int(pitch)] = int(end)
        struck = float(onset[max(0, int(start) - BLEED_FRAMES) : int(start) + BLEED_FRAMES + 1, key].max())
        peak = float(note[int(start) : max(int(end), int(start) + 1), key].max())
        start = _attack_start(note[:, key], int(start), options.frame_threshold, floor)
        end_seconds = float(times[min(end, len(times) - 1)])
        found.append(NoteEvent(float(times[start]), end_seconds, int(pitch), float(amplitude), peak, struck))
    return sorted(found, key=lambda n: (n.start_seconds, n.pitch))


def _attack_start(activation: npt.NDArray[np.float32], onset_frame: int, frame_threshold: float, floor: int) -> int:
    """The frame where a note really starts: a slow attack (a voice, a bowed string) already sounds at its pitch
    before the model's onset peak. Walk back over the rise into the onset (the activation over 3 frames falling as
    we go back; at most ~90 ms, never into the previous note of that pitch, which ends at ``floor``) to its
    trough, and start where the activation has risen ``frame_threshold`` above it: for a note out of silence where
    it crosses about the frame threshold; for one struck while that pitch still rings (its trough is the release
    of the note before), where it rises clear of that release (walking back over the release to a fixed threshold
    put such notes 70-90 ms early, on the midpoint between two 16ths)."""
    offset = max(0, onset_frame - ATTACK_FRAMES - 2)
    smooth = np.convolve(activation[offset : onset_frame + 2], np.ones(3) / 3, "same")
    frame = onset_frame
    while (
        frame > max(0, floor)
        and onset_frame - frame < ATTACK_FRAMES
        and smooth[frame - 1 - offset] <= smooth[frame - offset]
    ):
        frame -= 1
    level = float(activation[frame]) + frame_threshold
    while frame < onset_frame and activation[frame] < level:
        frame += 1
    return frame
