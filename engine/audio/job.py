"""The audio engine's part of a job: the bar grid of an audio region, one length for its audio and MIDI files,
and each variant's ``continuation.wav`` and ``full.wav`` (see :mod:`engine.local`, which runs the job).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.api import Meter, Prompt
from engine.audio.audio_io import resample
from engine.audio.continuation import BAR_TOLERANCE, BarGrid, RegionAudio
from engine.errors import BadInputError, EngineError
from engine.render.wavfile import write_wav
from engine.symbolic.region import Region, read_region

AUDIO_ROLES = ("audio", "full_audio")  # the audio engine's files; a MIDI + audio job adds the MIDI engine's
UNITS_NAME = "units.json"  # segue-concat: each variant's plan and joins, beside continuation.wav


def audio_grid(prompt: Prompt, midi_region: Region | None) -> tuple[BarGrid, tuple[str, ...]]:
    """Tempo and meter for the audio: the MIDI file's (or the overrides it was read with), else the request's."""
    if midi_region is not None:
        return BarGrid(midi_region.tempo_bpm, midi_region.meter), ()
    if prompt.tempo_bpm is None:
        raise BadInputError(
            f"{prompt.audio_path} is audio only, so Segue needs its tempo: give --tempo BPM (and --meter N/D if it "
            "is not 4/4), or give the region's MIDI file as well"
        )
    if prompt.meter is None:
        return BarGrid(prompt.tempo_bpm, Meter(4, 4)), ("no meter given: assumed 4/4 (give --meter N/D)",)
    return BarGrid(prompt.tempo_bpm, prompt.meter), ()


def align_midi_to_audio(
    prompt: Prompt, region: Region, audio_seconds: float, grid: BarGrid
) -> tuple[Region, tuple[str, ...]]:
    """One region length for both files: when the audio lasts whole bars longer than the MIDI file's notes (a
    quiet ending), the region is the audio's length; a length from the DAW wins over both."""
    if prompt.length_beats is not None:
        return region, ()
    extra = math.ceil((audio_seconds - region.place_at_seconds) / grid.bar_seconds - BAR_TOLERANCE)
    if extra <= 0:
        return region, ()
    length_beats = region.length_beats + extra * grid.meter.quarters_per_bar
    longer = read_region(replace(prompt, length_beats=length_beats))
    return longer, (f"the audio lasts {extra} bar(s) longer than the MIDI file's notes: the region is taken as "
                    f"{longer.length_bars} bars, the audio's length",)  # fmt: skip


@dataclass(frozen=True)
class AudioJobFiles:
    """Writes the audio engine's files of each variant: ``continuation.wav`` (exactly N bars from the bar line after
    the region) and ``full.wav`` (the region, or its last bars when it is long, then the continuation)."""

    job_dir: Path
    region: RegionAudio
    lead_in_samples: int
    bars: int
    sample_rate: int  # of the files; the region's unless the request asked for another

    @property
    def duration_seconds(self) -> float:
        return self.region.grid.samples(self.bars, self.sample_rate) / self.sample_rate

    def write_variant(
        self,
        variant_id: str,
        audio: np.ndarray,
        folder_exists: bool = False,
        units: dict[str, Any] | None = None,
        stems: tuple[tuple[str, np.ndarray], ...] = (),
    ) -> dict[str, str]:
        """Write the variant's audio files; ``units`` (segue-concat: the plan and its joins) goes to
        ``units.json`` beside them, which ``segue eval`` reads to measure a click at every join; ``stems``
        (name, audio) to ``stems/<name>.wav`` (role ``stem:<name>``), on the continuation's timeline."""
        folder = self.job_dir / variant_id
        try:
            folder.mkdir(parents=True, exist_ok=folder_exists)
        except FileExistsError as e:
            raise EngineError(f"{folder} already exists; Segue never overwrites files") from e
        region_rate = self.region.sample_rate
        lead_in = self.region.audio[:, self.region.audio.shape[1] - self.lead_in_samples :]
        full = np.concatenate([lead_in, audio], axis=1)
        if self.sample_rate != region_rate:
            audio = _exactly(resample(audio, region_rate, self.sample_rate), self.region.grid.samples(
                self.bars, self.sample_rate))  # fmt: skip
            full = resample(full, region_rate, self.sample_rate)
        write_wav(folder / "continuation.wav", audio, self.sample_rate)
        write_wav(folder / "full.wav", full, self.sample_rate)
        files = {"audio": f"{variant_id}/continuation.wav", "full_audio": f"{variant_id}/full.wav"}
        for name, stem in stems:
            if self.sample_rate != region_rate:
                stem = _exactly(resample(stem, region_rate, self.sample_rate), audio.shape[1])
            write_wav(folder / "stems" / f"{name}.wav", stem, self.sample_rate)
            files[f"stem:{name}"] = f"{variant_id}/stems/{name}.wav"
        if units is not None:
            record = dict(units, sample_rate=region_rate)
            if self.sample_rate != region_rate:  # the joins, in samples of the files written
                scale = self.sample_rate / region_rate
                record["joins"] = [dict(j, at=round(j["at"] * scale)) for j in units.get("joins", [])]
                record["sample_rate"] = self.sample_rate
            _write_new_json(folder / UNITS_NAME, record)
        return files


def _exactly(audio: np.ndarray, samples: int) -> np.ndarray:
    if audio.shape[1] >= samples:
        return audio[:, :samples]
    return np.pad(audio, ((0, 0), (0, samples - audio.shape[1])))


def _write_new_json(path: Path, data: Any) -> None:
    """Write JSON atomically, never over an existing file."""
    if path.exists():
        raise EngineError(f"{path} already exists; Segue never overwrites files")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
