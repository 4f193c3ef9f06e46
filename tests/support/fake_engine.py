"""A fake :class:`engine.api.Engine` for the bridge's tests: no torch, small real files, scripted failures.

Not a test module: ``from fake_engine import FakeEngine, write_midi_region, write_wav``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np
import soundfile

from engine.api import (
    CancelToken,
    GenerationRequest,
    GenerationResult,
    Meter,
    ModelInfo,
    ProgressCallback,
    RegionInfo,
    VariantResult,
)

TEMPO_BPM = 120.0
SAMPLE_RATE = 8000
TPQ = 96
REGION_BARS = 2  # the region every fake result describes (8 beats at 120 BPM)
ACCOMPANY_PARTS = ("bass", "piano")  # the fake model's default accompaniment
MODEL_PARTS = ("bass", "piano", "strings", "drums")  # the parts the fake model says it can write


def write_midi(path: Path, bars: int, tempo_bpm: float = TEMPO_BPM, notes: bool = True) -> Path:
    """A one-track 4/4 MIDI file, ``bars`` long, with one note per bar."""
    mid = mido.MidiFile(ticks_per_beat=TPQ)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    bar = 4 * TPQ
    used = 0
    for _ in range(bars if notes else 0):
        track.append(mido.Message("note_on", note=60, velocity=90, time=0))
        track.append(mido.Message("note_off", note=60, velocity=0, time=bar))
        used += bar
    track.append(mido.MetaMessage("end_of_track", time=bars * bar - used))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)
    return path


def write_midi_region(path: Path, bars: int = 2) -> Path:
    return write_midi(path, bars)


def write_wav(path: Path, seconds: float, sample_rate: int = SAMPLE_RATE, fmt: str = "WAV") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    soundfile.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype("float32"), sample_rate, format=fmt)
    return path


@dataclass
class FakeEngine:
    """Writes ``vNN/continuation.mid`` and ``vNN/continuation.wav`` per variant, reporting progress. For
    ``mode="accompany"`` also ``stems/<part>.mid|.wav`` and ``full.wav``, over the region's bars, placed at 0.

    ``fail``: raised before writing variant number ``fail_at`` (1-based). ``cancel_at``: the engine cancels
    its own token before variant ``cancel_at`` (as a user would), then honours it. ``interrupt_at``: sends
    SIGINT to this process before that variant, then waits (up to 10 s) for the token to be cancelled;
    ``interrupt_twice`` then sends a second SIGINT and keeps working for 0.5 s.
    ``lie``: reports a file it never wrote. ``seen_status`` holds job.json's status when generate started.
    ``hold_at``: before that variant, sets ``holding`` and waits (up to 10 s) for the token to be cancelled,
    as a slow engine would (for tests that cancel mid-job).
    """

    fail: BaseException | None = None
    fail_at: int = 1
    cancel_at: int = 0
    interrupt_at: int = 0
    interrupt_twice: bool = False
    lie: bool = False
    requests: list[GenerationRequest] = field(default_factory=list)
    seen_status: list[str] = field(default_factory=list)
    progress_seen: list[float] = field(default_factory=list)
    hold_at: int = 0
    holding: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return "fake"

    def models(self) -> list[ModelInfo]:
        modes = ("continue", "accompany")
        return [ModelInfo("fake-midi", "midi", "/models/fake-midi", "a fake model", 1_200_000, modes, MODEL_PARTS)]

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        cancel = cancel or CancelToken()
        self.requests.append(request)
        self.seen_status.append(json.loads((job_dir / "job.json").read_text())["status"])
        params = request.params
        seed0 = params.seed if params.seed is not None else 1234
        accompany = params.mode == "accompany"
        bars = REGION_BARS if accompany else params.bars  # accompany writes the region's own bars
        parts = (params.parts or ACCOMPANY_PARTS) if accompany else ("piano",)
        seconds = bars * 4 * 60.0 / TEMPO_BPM
        variants = []
        for index in range(1, params.variants + 1):
            if index == self.interrupt_at:
                os.kill(os.getpid(), signal.SIGINT)
                deadline = time.monotonic() + 10
                while not cancel.cancelled and time.monotonic() < deadline:
                    time.sleep(0.01)
                if self.interrupt_twice:  # a stuck engine: the user presses Ctrl-C again
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.5)
            if index == self.hold_at:
                self.holding.set()
                deadline = time.monotonic() + 10
                while not cancel.cancelled and time.monotonic() < deadline:
                    time.sleep(0.01)
            if index == self.cancel_at:
                cancel.cancel()
            cancel.raise_if_cancelled()
            if self.fail is not None and index == self.fail_at:
                raise self.fail
            vid = f"v{index:02d}"
            write_midi(job_dir / vid / "continuation.mid", bars)
            write_wav(job_dir / vid / "continuation.wav", seconds)
            files = {"midi": f"{vid}/continuation.mid", "audio": f"{vid}/continuation.wav"}
            if accompany:  # as the accompany engine writes them: a stem per part, the mix with the region
                for part in parts:
                    write_midi(job_dir / vid / "stems" / f"{part}.mid", bars)
                    write_wav(job_dir / vid / "stems" / f"{part}.wav", seconds)
                    files[f"stem:{part}"] = f"{vid}/stems/{part}.wav"
                write_wav(job_dir / vid / "full.wav", seconds)
                files["full_audio"] = f"{vid}/full.wav"
            if self.lie:
                files["stem:piano"] = f"{vid}/stems/piano.wav"
            variants.append(VariantResult(vid, seed0 + index - 1, files, seconds, parts))
            if progress is not None:
                fraction = index / params.variants
                self.progress_seen.append(fraction)
                progress(fraction, f"variant {index}")
        return GenerationResult(
            kind="midi",
            mode=params.mode,
            model="fake-midi",
            region=RegionInfo(TEMPO_BPM, Meter(4, 4), 8.0, 2, SAMPLE_RATE, ("piano",), "used the last tempo"),
            place_at_beats=0.0 if accompany else 8.0,  # accompany: the region's start; continue: the bar after
            place_at_seconds=0.0 if accompany else 4.0,
            variants=tuple(variants),
            timings={"generate_seconds": 0.01},
        )
