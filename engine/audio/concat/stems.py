"""Stems: several tracks' audio of one region (``Prompt.stems``), continued together by segue-concat.

A DAW knows its tracks: it can send each track's audio of the region (drums, bass, keys) beside, or instead of,
the mix. The plan is made on the mix (``Prompt.audio_path``, or the stems' sum when only stems came) and every stem
is cut and crossfaded the same way, so they keep playing together and still add up to the mix.

Rules (each a :class:`BadInputError` that names the stem): every stem at the mix's sample rate; every stem as
long as the mix, to within 1/64 bar (a DAW exports the same bars from every track); no NaN/inf. A mono stem
beside stereo ones is summed into every channel of the mix (a centred track) and comes back mono; a stem that is
silent in the region is allowed (it comes back silent).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.api import Prompt
from engine.audio.audio_io import Audio, AudioInfo, probe_audio, read_audio
from engine.audio.continuation import BAR_TOLERANCE, BarGrid
from engine.errors import BadInputError, EngineError
from engine.render.wavfile import write_wav

MIX_NAME = Path("region") / "stems_mix.wav"
MIX_PEAK = 0.99


def probe_stems(prompt: Prompt) -> list[tuple[str, AudioInfo]]:
    return [(name, probe_audio(Path(path))) for name, path in prompt.stems]


def check_stems(stems: list[tuple[str, AudioInfo]], mix: AudioInfo, grid: BarGrid) -> None:
    """Same rate and length as the mix (to within 1/64 bar)."""
    rates = {name: info.sample_rate for name, info in stems}
    if any(rate != mix.sample_rate for rate in rates.values()):
        listed = ", ".join(f"{name} {rate} Hz" for name, rate in rates.items())
        raise BadInputError(
            f"the stems must share the mix's sample rate ({mix.sample_rate} Hz): {listed}; export every track at "
            "the session's rate"
        )
    tolerance = BAR_TOLERANCE * grid.bar_seconds
    lengths = {name: info.seconds for name, info in stems}
    if any(abs(seconds - mix.seconds) > tolerance for seconds in lengths.values()):
        listed = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in lengths.items())
        raise BadInputError(
            f"the stems are of different lengths ({listed}; the mix {mix.seconds:.3f} s): export the same bars "
            "from every track"
        )


def mix_stems(prompt: Prompt, job_dir: Path) -> tuple[Prompt, tuple[str, ...]]:
    """A prompt with stems but no mix: the stems' sum, written to ``job_dir/region/stems_mix.wav`` (never over an
    existing file), becomes its audio. Returns the prompt and a note."""
    stems = probe_stems(prompt)
    first = stems[0][1]
    rates = {info.sample_rate for _, info in stems}
    if len(rates) > 1:
        listed = ", ".join(f"{name} {info.sample_rate} Hz" for name, info in stems)
        raise BadInputError(f"the stems must share one sample rate: {listed}; export every track at the session's rate")
    frames = max(info.frames for _, info in stems)
    channels = max(info.channels for _, info in stems)
    mix = np.zeros((channels, frames), np.float64)
    for _, info in stems:
        audio = read_audio(info.path, 0, info.frames, info)
        mix[:, : audio.shape[1]] += audio if audio.shape[0] == channels else audio.mean(axis=0, keepdims=True)
    peak = float(np.abs(mix).max(initial=0.0))
    note = f"the mix is the sum of the {len(stems)} stems ({MIX_NAME})"
    if peak > MIX_PEAK:
        mix *= MIX_PEAK / peak
        note += f", turned down {20 * np.log10(peak / MIX_PEAK):.1f} dB so it does not clip"
    path = job_dir / MIX_NAME
    if path.exists():
        raise EngineError(f"{path} already exists; Segue never overwrites files")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, mix.astype(np.float32), first.sample_rate)
    return replace(prompt, audio_path=path), (note,)


def read_stem_tails(stems: list[tuple[str, AudioInfo]], seam: int, samples: int, channels: int) -> list[
        tuple[str, Audio]]:  # fmt: skip
    """Each stem's last ``samples`` before the seam (zeros past its end), its own channel count; a mono stem beside
    a multichannel mix keeps one channel."""
    out = []
    start = max(0, seam - samples)
    for name, info in stems:
        stop = min(seam, info.frames)
        audio = read_audio(info.path, start, stop, info) if stop > start else np.zeros((info.channels, 0), np.float32)
        if not np.all(np.isfinite(audio)):
            raise BadInputError(f"stem {name!r} ({info.path}) holds NaN or infinite samples")
        if audio.shape[1] < seam - start:
            audio = np.concatenate([audio, np.zeros((info.channels, seam - start - audio.shape[1]), np.float32)], 1)
        if info.channels not in (1, channels):
            raise BadInputError(
                f"stem {name!r} has {info.channels} channels and the mix {channels}: give stems in mono or in the "
                "mix's channel count"
            )
        out.append((name, np.ascontiguousarray(audio, dtype=np.float32)))
    return out
