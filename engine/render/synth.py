"""Render a ``symusic`` score to audio with a General MIDI soundfont (TinySoundFont): one stem per part, and a mix.

Audio is float32 ``[channels=2, samples]``, exactly ``round(length_seconds * sample_rate)`` samples long, stored frame
by frame (L R L R ..., as the synthesizer writes it and a WAV file holds it: ``audio.T`` is C-contiguous, so nothing is
reordered on the way to a file). Ticks become seconds through the score's tempo map, so tempo changes are honoured
to the sample. Every part (track) is rendered on its own synthesizer, so stems never bleed into each other; drums
use the GM drum bank (channel 10).
Notes that still sound at the end are cut with a short fade, so the last sample is zero and there is no click.

What the synthesizer cannot do (lyrics, key signatures, most controllers) is ignored. Notes, programs, velocities,
durations, the sustain pedal, pitch bends and the volume/expression/pan controllers are kept.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from symusic.core import ScoreQuarter, ScoreSecond, ScoreTick, TrackSecond, TrackTick
from tinysoundfont import _tinysoundfont as tsf

from engine.errors import BadInputError, EngineError
from engine.render.parts import part_names
from engine.render.soundfont import SoundFont, find_soundfont

log = logging.getLogger(__name__)

Audio = npt.NDArray[np.float32]  # [channels, samples]
AnyScore = ScoreTick | ScoreQuarter | ScoreSecond
SoundFontArg = SoundFont | str | os.PathLike[str] | None

CHANNELS = 2
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 384_000
MAX_LENGTH_SECONDS = 600.0  # 10 minutes: ~230 MB per stem at 48 kHz
HEADROOM_DBFS = -1.0  # the mix (and every stem) peaks at most here
FADE_SECONDS = 0.005  # fade-out at the very end, so notes cut by the end do not click
DRUM_MIN_HOLD_SECONDS = 1.0  # GM drum notes ring on: short note-offs would choke the hits
MAX_VOICES = 256
DEFAULT_TEMPO_MSPQ = 500_000  # 120 BPM, the MIDI default before the first tempo event
DRUM_CHANNEL = 9  # MIDI channel 10
MELODIC_CHANNEL = 0
# Controllers TinySoundFont implements: volume, pan, expression (MSB/LSB) and (N)RPN data entry (pitch-bend range).
_SUPPORTED_CONTROLLERS = frozenset({6, 7, 10, 11, 38, 39, 42, 43, 98, 99, 100, 101})

# Event kinds; at the same sample they apply in this order (a repeated note is released before it restarts).
_NOTE_OFF, _CONTROL, _PITCH_BEND, _NOTE_ON = 0, 1, 2, 3


@dataclass(frozen=True)
class Rendering:
    """The result of :func:`render`: stems and their mix, after headroom scaling."""

    stems: dict[str, Audio]  # part name -> [2, samples] float32, in track order
    mix: Audio  # [2, samples] float32, the sum of the stems
    sample_rate: int
    gain: float  # linear factor applied to stems and mix to keep headroom (1.0: none)
    peak_dbfs: float  # peak of the mix after scaling (-inf for silence)
    soundfont: SoundFont

    @property
    def num_samples(self) -> int:
        return int(self.mix.shape[1])


def num_samples_for(length_seconds: float, sample_rate: int) -> int:
    """``round(length_seconds * sample_rate)``: the exact length of every rendered file."""
    return int(round(length_seconds * sample_rate))


def _check_args(sample_rate: int, length_seconds: float) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise BadInputError(f"sample_rate must be an integer number of Hz, got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise BadInputError(
            f"sample_rate must be in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz, got {sample_rate}; "
            "use the region's sample rate (e.g. 44100 or 48000)"
        )
    if not math.isfinite(length_seconds) or length_seconds <= 0:
        raise BadInputError(f"length_seconds must be a positive number of seconds, got {length_seconds!r}")
    if length_seconds > MAX_LENGTH_SECONDS:
        raise BadInputError(
            f"length_seconds={length_seconds:.1f} is longer than the {MAX_LENGTH_SECONDS:.0f} s the renderer "
            "accepts; render a shorter continuation"
        )
    return num_samples_for(length_seconds, int(sample_rate))


@functools.lru_cache(maxsize=2)
def _load_template(path: str, mtime_ns: int, size: int) -> tsf.SoundFont:
    """Parse a soundfont once per process; renders use cheap clones that share its samples."""
    del mtime_ns, size  # part of the cache key only: a changed file is loaded again
    try:
        return tsf.SoundFont(path)
    except Exception as e:  # the binding raises plain Exceptions on bad files
        raise EngineError(
            f"could not load the soundfont {path}: {e}; point SEGUE_SOUNDFONT at another .sf2 file"
        ) from e


def _template_for(soundfont: SoundFont) -> tsf.SoundFont:
    try:
        st = soundfont.path.stat()
    except OSError as e:
        raise EngineError(f"the soundfont {soundfont.path} cannot be read ({e}); reinstall it or choose another") from e
    return _load_template(str(soundfont.path), st.st_mtime_ns, st.st_size)


def load_soundfont(soundfont: SoundFontArg = None) -> SoundFont:
    """Load (parse) the soundfont now, once per process, and return it: before forking render helpers, which then
    share its samples instead of each loading it (:mod:`engine.render.workers`)."""
    resolved = _resolve_soundfont(soundfont)
    _template_for(resolved)
    return resolved


def _resolve_soundfont(soundfont: SoundFontArg) -> SoundFont:
    if isinstance(soundfont, SoundFont):
        return soundfont
    return find_soundfont(soundfont)


def _tick_to_seconds(score: ScoreTick) -> Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float64]]:
    """A vectorised tick -> seconds map through the score's tempo map (float64, exact to the sample)."""
    tpq = int(score.ticks_per_quarter)
    if tpq <= 0:
        raise BadInputError(f"the score has {tpq} ticks per quarter note; it must be positive")
    tempos = sorted(((int(t.time), int(t.mspq)) for t in score.tempos), key=lambda tm: tm[0])
    if not tempos or tempos[0][0] > 0:
        tempos.insert(0, (0, DEFAULT_TEMPO_MSPQ))
    fixed: list[tuple[int, int]] = []
    for time, mspq in tempos:
        if mspq <= 0:
            log.warning("ignoring an impossible tempo (%d microseconds per quarter) at tick %d", mspq, time)
            mspq = fixed[-1][1] if fixed else DEFAULT_TEMPO_MSPQ
        fixed.append((max(time, 0), mspq))
    change_ticks = np.array([t for t, _ in fixed], dtype=np.int64)
    seconds_per_tick = np.array([m for _, m in fixed], dtype=np.float64) / 1e6 / tpq
    change_seconds = np.concatenate(([0.0], np.cumsum(np.diff(change_ticks) * seconds_per_tick[:-1])))

    def convert(ticks: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        # Stable sort keeps tempo events at the same tick in order; searchsorted "right" picks the last of them.
        idx = np.clip(np.searchsorted(change_ticks, ticks, side="right") - 1, 0, None)
        result: npt.NDArray[np.float64] = change_seconds[idx] + (ticks - change_ticks[idx]) * seconds_per_tick[idx]
        return result

    return convert


@dataclass(frozen=True)
class _Events:
    """One part's events in render order: sample index, kind, and two integer arguments."""

    sample: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int64]
    arg1: npt.NDArray[np.int64]
    arg2: npt.NDArray[np.int64]


def _to_samples(seconds: npt.NDArray[np.float64], sample_rate: int) -> npt.NDArray[np.int64]:
    return np.rint(seconds * sample_rate).astype(np.int64)


def _track_events(
    track: TrackTick | TrackSecond,
    to_seconds: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float64]] | None,
    sample_rate: int,
    num_samples: int,
) -> _Events:
    """Note on/off, controller and pitch-bend events of one track, sorted, inside ``[0, num_samples)``."""

    time_dtype = np.float64 if to_seconds is None else np.int64  # seconds, or ticks (int64: no overflow)

    def times(values: object) -> npt.NDArray[Any]:
        return np.asarray(values, dtype=time_dtype)

    def seconds(values: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        if to_seconds is None:  # the score is already in seconds
            return np.asarray(values, dtype=np.float64)
        return to_seconds(np.asarray(values, dtype=np.int64))

    notes = track.notes.numpy()
    start = times(notes["time"])
    end = start + times(notes["duration"])
    pitch = np.asarray(notes["pitch"], dtype=np.int64)
    velocity = np.asarray(notes["velocity"], dtype=np.int64)
    on = _to_samples(seconds(start), sample_rate)
    off = _to_samples(seconds(end), sample_rate)

    if not track.is_drum and len(track.pedals) > 0:  # sustain pedal: a release under the pedal waits for it
        pedals = track.pedals.numpy()
        pedal_on = _to_samples(seconds(times(pedals["time"])), sample_rate)
        pedal_off = _to_samples(seconds(times(pedals["time"]) + times(pedals["duration"])), sample_rate)
        order = np.argsort(pedal_on, kind="stable")
        pedal_on, pedal_off = pedal_on[order], pedal_off[order]
        idx = np.searchsorted(pedal_on, off, side="right") - 1
        held = (idx >= 0) & (off < pedal_off[np.clip(idx, 0, None)])
        off = np.where(held, np.maximum(off, pedal_off[np.clip(idx, 0, None)]), off)
    if track.is_drum:
        off = np.maximum(off, on + int(round(DRUM_MIN_HOLD_SECONDS * sample_rate)))

    keep = (velocity > 0) & (pitch >= 0) & (pitch <= 127) & (off > 0) & (on < num_samples)
    dropped = int(np.count_nonzero(~keep & (velocity <= 0)))
    if dropped:
        log.debug("track %r: skipped %d notes with velocity 0", track.name, dropped)
    on, off, pitch, velocity = np.clip(on[keep], 0, None), off[keep], pitch[keep], np.minimum(velocity[keep], 127)
    off = np.maximum(off, on + 1)  # a zero-length note must not be released before it starts

    parts_sample: list[npt.NDArray[np.int64]] = [on, off]
    parts_kind: list[npt.NDArray[np.int64]] = [np.full(on.shape, _NOTE_ON), np.full(off.shape, _NOTE_OFF)]
    parts_arg1: list[npt.NDArray[np.int64]] = [pitch, pitch]
    parts_arg2: list[npt.NDArray[np.int64]] = [velocity, np.zeros_like(pitch)]

    if len(track.controls) > 0:
        controls = track.controls.numpy()
        number = np.asarray(controls["number"], dtype=np.int64)
        value = np.clip(np.asarray(controls["value"], dtype=np.int64), 0, 127)
        supported = np.isin(number, list(_SUPPORTED_CONTROLLERS))
        parts_sample.append(np.clip(_to_samples(seconds(times(controls["time"])), sample_rate), 0, None)[supported])
        parts_kind.append(np.full(int(supported.sum()), _CONTROL))
        parts_arg1.append(number[supported])
        parts_arg2.append(value[supported])
    if len(track.pitch_bends) > 0:
        bends = track.pitch_bends.numpy()
        parts_sample.append(np.clip(_to_samples(seconds(times(bends["time"])), sample_rate), 0, None))
        parts_kind.append(np.full(len(bends["time"]), _PITCH_BEND))
        parts_arg1.append(np.clip(np.asarray(bends["value"], dtype=np.int64) + 8192, 0, 16383))
        parts_arg2.append(np.zeros(len(bends["time"]), dtype=np.int64))

    sample = np.concatenate(parts_sample).astype(np.int64)
    kind = np.concatenate(parts_kind).astype(np.int64)
    arg1 = np.concatenate(parts_arg1).astype(np.int64)
    arg2 = np.concatenate(parts_arg2).astype(np.int64)
    inside = sample < num_samples
    order = np.lexsort((kind[inside], sample[inside]))  # by sample, then kind; stable within a kind
    return _Events(sample[inside][order], kind[inside][order], arg1[inside][order], arg2[inside][order])


def _select_program(synth: tsf.SoundFont, channel: int, program: int, is_drum: bool, part: str) -> None:
    program = int(program) if 0 <= int(program) <= 127 else 0
    try:
        synth.channel_set_preset_number(channel, program, is_drum)
    except RuntimeError:
        log.warning("the soundfont has no preset for program %d (part %s); using program 0", program, part)
        synth.channel_set_preset_number(channel, 0, is_drum)


def _render_events(synth: tsf.SoundFont, events: _Events, channel: int, num_samples: int) -> Audio:
    """Run the synthesizer through ``events``, sample-accurately; returns ``[2, num_samples]``."""
    interleaved = np.zeros(num_samples * CHANNELS, dtype=np.float32)
    raw = interleaved.view(np.uint8)
    frame_bytes = CHANNELS * interleaved.itemsize
    cursor = 0
    for sample, kind, arg1, arg2 in zip(
        events.sample.tolist(), events.kind.tolist(), events.arg1.tolist(), events.arg2.tolist(), strict=True
    ):
        if sample > cursor:
            synth.render(raw[cursor * frame_bytes : sample * frame_bytes], False)
            cursor = sample
        if kind == _NOTE_ON:
            synth.channel_note_on(channel, arg1, arg2 / 127.0)
        elif kind == _NOTE_OFF:
            synth.channel_note_off(channel, arg1)
        elif kind == _CONTROL:
            synth.channel_midi_control(channel, arg1, arg2)
        else:
            synth.channel_set_pitch_wheel(channel, arg1)
    if cursor < num_samples:
        synth.render(raw[cursor * frame_bytes :], False)
    return interleaved.reshape(num_samples, CHANNELS).T  # a [2, N] view: no copy here, none in the WAV writer


def _frames(num_samples: int) -> Audio:
    """Zeros shaped ``[2, num_samples]`` laid out frame by frame (L R L R ...), like the synthesizer's output:
    sums over stems run in memory order and a WAV writer takes ``audio.T`` without reordering."""
    frames: Audio = np.zeros((num_samples, CHANNELS), dtype=np.float32).T
    return frames


def _fade_out(audio: Audio, sample_rate: int) -> None:
    """In place: a raised-cosine fade over the last ``FADE_SECONDS``, ending on exactly zero."""
    fade = min(audio.shape[1], max(2, int(round(FADE_SECONDS * sample_rate))))
    ramp = 0.5 * (1.0 + np.cos(np.linspace(0.0, np.pi, fade)))
    audio[:, audio.shape[1] - fade :] *= ramp.astype(np.float32)


def render_parts(
    score: AnyScore,
    sample_rate: int,
    length_seconds: float,
    soundfont: SoundFontArg = None,
    *,
    gain_db: float = 0.0,
) -> dict[str, Audio]:
    """One stem per part (track with notes), ``{part name: [2, round(length_seconds * sample_rate)] float32}``.

    Part names come from :func:`engine.render.parts.part_names` (file-safe, unique, in track order). Stems are
    not scaled for headroom; :func:`render` and :func:`mix_stems` do that. ``soundfont`` is a
    :class:`SoundFont`, a path, or None for :func:`find_soundfont`'s choice.
    """
    num_samples = _check_args(sample_rate, length_seconds)
    sample_rate = int(sample_rate)
    template = _template_for(_resolve_soundfont(soundfont))

    timed: ScoreTick | ScoreSecond = cast(ScoreTick, score.to("tick")) if isinstance(score, ScoreQuarter) else score
    to_seconds = _tick_to_seconds(timed) if isinstance(timed, ScoreTick) else None

    tracks: list[TrackTick | TrackSecond] = [track for track in timed.tracks if len(track.notes) > 0]
    if len(tracks) < len(timed.tracks):
        log.debug("skipping %d tracks without notes", len(timed.tracks) - len(tracks))
    stems: dict[str, Audio] = {}
    for name, track in zip(part_names(tracks), tracks, strict=True):
        events = _track_events(track, to_seconds, sample_rate, num_samples)
        synth = tsf.SoundFont(template)  # a clone: own voices and channels, shared samples
        synth.set_output(tsf.OutputMode.StereoInterleaved, sample_rate, float(gain_db))
        synth.set_max_voices(MAX_VOICES)
        channel = DRUM_CHANNEL if track.is_drum else MELODIC_CHANNEL
        _select_program(synth, channel, int(track.program), bool(track.is_drum), name)
        audio = _render_events(synth, events, channel, num_samples)
        if not np.all(np.isfinite(audio)):
            raise EngineError(f"the synthesizer produced invalid samples (NaN/inf) for part {name}")
        _fade_out(audio, sample_rate)
        stems[name] = audio
    return stems


def peak_dbfs(audio: npt.NDArray[np.floating]) -> float:
    """Peak level in dBFS (``-inf`` for silence or empty audio)."""
    peak = _peak(audio)
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def _peak(audio: npt.NDArray[np.floating]) -> float:
    """``max(|audio|)`` (0 for empty audio) without an ``abs`` copy of the whole signal."""
    if not audio.size:
        return 0.0
    return max(float(audio.max()), -float(audio.min()), 0.0)


def mix_stems(
    stems: Mapping[str, Audio], num_samples: int, headroom_dbfs: float = HEADROOM_DBFS, *, in_place: bool = False
) -> tuple[Audio, dict[str, Audio], float]:
    """Sum the stems into a mix and keep headroom: ``(mix, stems, gain)``.

    When the mix, or any stem, peaks above ``headroom_dbfs``, the mix and every stem are scaled by the same
    ``gain`` (< 1), so the stems still add up to the mix and nothing clips. Stems are ``[2, num_samples]``.
    ``in_place``: scale the given stems themselves (the caller's own arrays) instead of scaled copies.
    """
    mix = _frames(num_samples)
    for name, stem in stems.items():
        if stem.shape != mix.shape:
            raise EngineError(f"stem {name} has shape {stem.shape}; every stem must be {mix.shape}")
        mix += stem
    ceiling = 10.0 ** (headroom_dbfs / 20.0)
    peak = max([_peak(mix)] + [_peak(s) for s in stems.values()])
    gain = 1.0
    if peak > ceiling:
        gain = ceiling / peak
        log.info(
            "the mix peaked at %.1f dBFS; scaled the mix and all stems by %.1f dB to keep %.1f dBFS of headroom",
            20.0 * math.log10(peak),
            20.0 * math.log10(gain),
            headroom_dbfs,
        )
        mix *= np.float32(gain)
        if in_place:
            for stem in stems.values():
                stem *= np.float32(gain)
        else:
            stems = {name: stem * np.float32(gain) for name, stem in stems.items()}  # float32, same layout
    return mix, dict(stems), gain


def render(
    score: AnyScore, sample_rate: int, length_seconds: float, soundfont: SoundFontArg = None, *, gain_db: float = 0.0
) -> Rendering:
    """Render every part and their mix, with headroom: see :func:`render_parts` and :func:`mix_stems`."""
    resolved = _resolve_soundfont(soundfont)
    raw = render_parts(score, sample_rate, length_seconds, resolved, gain_db=gain_db)
    num_samples = num_samples_for(length_seconds, int(sample_rate))
    mix, stems, gain = mix_stems(raw, num_samples, in_place=True)  # the stems are this call's own arrays
    return Rendering(stems, mix, int(sample_rate), gain, peak_dbfs(mix), resolved)


def clear_soundfont_cache() -> None:
    """Forget loaded soundfonts (tests; or after the user installs a new one at the same path)."""
    _load_template.cache_clear()
