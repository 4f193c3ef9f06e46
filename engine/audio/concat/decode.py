"""The decoder: concatenative resynthesis of a plan from the region's own audio, at its own rate and channels.

- **Sample-exact on the grid**: slot ``t`` of the continuation starts at ``round(t / n x bar x rate)`` samples
  after the seam, and a slice is played with the same offset from its own grid line in the region, so the
  region's micro-timing (a laid-back snare, a pushed kick) is kept. Slots whose slices follow each other in the
  region form one *run*, copied in one piece: there is no join inside a run.
- **Joins** between runs: an equal-power crossfade of :data:`FADE_SECONDS`, centred on the point of least energy
  of both signals within :data:`SEARCH_BEFORE_SECONDS` before the grid line (up to :data:`SEARCH_AFTER_SECONDS`
  after it): the quiet moment before the next attack. Two strongly correlated signals cross with equal gain
  instead (no +3 dB bump).
- **Tails**: when, in the region, no new attack followed the outgoing slice within :data:`TAIL_SECONDS`, and the
  incoming slice is quieter (where a cut decay would be heard), the outgoing sound (a decaying note, a cymbal)
  keeps ringing under the next slice and fades over that time instead of being cut; otherwise it stops at the
  crossfade (its next attack would be heard, or the incoming attack masks the cut).
- **Seam**: the step from the region's last sample to the continuation's first is made one of the
  continuation's own steps (:func:`engine.audio.continuation.join_at_seam`); the last 5 ms fade out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.audio.concat.units import RegionUnits
from engine.audio.continuation import PEAK_CEILING, fade_out, join_at_seam, limit_peaks, loudness_db
from engine.evaluate.loudness import SILENT_LUFS, gated_loudness

FADE_SECONDS = 0.004
SEARCH_BEFORE_SECONDS = 0.015
SEARCH_AFTER_SECONDS = 0.004
TAIL_SECONDS = 0.060
TAIL_GUARD_SECONDS = 0.005  # a carried tail ends this long before the region's next attack
CORRELATED = 0.6
TAIL_RISE = 2.0  # a tail stops before its sound grows this much (an attack): it may only decay
TAIL_QUIETER = 0.5  # a tail is carried only under an incoming sound at least 3 dB quieter over its length


@dataclass(frozen=True)
class Join:
    at: int  # the crossfade's centre, in samples of the continuation
    source: int  # the incoming slice's sample there, in samples of the analysed region audio
    source_out: int  # the outgoing slice's sample there
    tail: int  # samples the outgoing sound rang on under the incoming one (0: cut at the crossfade)


@dataclass(frozen=True)
class Rendering:
    audio: npt.NDArray[np.float32]  # [C, exactly `bars` bars]
    joins: tuple[Join, ...]
    gain_db: float = 0.0
    limited_db: float = 0.0


def slot_starts(units: RegionUnits, bars: int) -> npt.NDArray[np.int64]:
    per_bar = units.slices.slices_per_bar
    return np.array(
        [units.grid.samples(t / per_bar, units.sample_rate) for t in range(bars * per_bar + 1)], dtype=np.int64
    )


def _segment(audio: npt.NDArray[np.float32], start: int, stop: int) -> npt.NDArray[np.float64]:
    """``audio[:, start:stop]`` with zeros outside the region."""
    out = np.zeros((audio.shape[0], max(0, stop - start)))
    a, b = max(0, start), min(audio.shape[1], stop)
    if b > a:
        out[:, a - start : b - start] = audio[:, a:b]
    return out


def _runs(plan: Sequence[int], count: int) -> list[tuple[int, int]]:
    """(first slot, end slot) of each run of slots whose slices follow each other in the region."""
    runs, first = [], 0
    for t in range(1, len(plan)):
        if plan[t] != plan[t - 1] + 1 or plan[t] >= count:
            runs.append((first, t))
            first = t
    runs.append((first, len(plan)))
    return runs


def _place_join(units: RegionUnits, boundary: int, shifts: tuple[int, int], fade: int, before: int, after: int) -> int:
    """The crossfade centre in ``[boundary - before, boundary + after]``: the least summed energy of the outgoing
    and incoming signals (source sample = continuation sample + shift), with a mild pull to the grid line."""
    lo, hi = boundary - before - fade, boundary + after + fade
    energy = np.zeros(hi - lo)
    for shift in shifts:
        energy += np.square(_segment(units.audio, lo + shift, hi + shift)).sum(axis=0)
    smooth = np.convolve(energy, np.ones(fade) / fade, mode="same")
    centres = np.arange(boundary - before, boundary + after + 1)
    score = smooth[centres - lo] * (1 + 0.5 * np.abs(centres - boundary) / max(1, before, after))
    return int(centres[int(np.argmin(score))])


def _tail(units: RegionUnits, centre: int, shift_out: int, shift_in: int, fade: int) -> int:
    """How long the outgoing sound rings on under the incoming one: up to :data:`TAIL_SECONDS`, only when no
    attack followed it in the region (else that attack would be heard) and when the incoming sound is quieter
    (a loud attack masks the cut; two loud sounds on top of each other would only pile up)."""
    rate = units.sample_rate
    here = centre + shift_out
    later = units.onsets[units.onsets > here + fade // 2 - round(0.002 * rate)]
    gap = int(later.min() - here) if len(later) else round(TAIL_SECONDS * rate) * 4
    tail = min(round(TAIL_SECONDS * rate), gap - round(TAIL_GUARD_SECONDS * rate))
    if tail <= 2 * fade:
        return 0
    # an attack the onset detector missed (a soft hi-hat): the outgoing sound must only decay over its tail
    power = np.square(_segment(units.audio, here - fade, here + tail)).sum(axis=0)
    hop = max(1, round(0.002 * rate))
    blocks = power[: len(power) // hop * hop].reshape(-1, hop).mean(axis=1)
    rises = np.flatnonzero(blocks[1:] > TAIL_RISE * max(float(blocks[0]), 1e-12))
    if len(rises):
        tail = min(tail, int(rises[0]) * hop - fade - round(TAIL_GUARD_SECONDS * rate))
        if tail <= 2 * fade:
            return 0
    outgoing = float(np.square(_segment(units.audio, here, here + tail)).sum())
    incoming = float(np.square(_segment(units.audio, centre + shift_in, centre + shift_in + tail)).sum())
    return tail if incoming < TAIL_QUIETER * outgoing else 0


@dataclass(frozen=True)
class _Layout:
    length: int
    shifts: tuple[int, ...]  # per run: source sample = continuation sample + shift
    spans: tuple[tuple[int, int, int, int, bool, bool], ...]  # per run: start, stop, fade in, fade out, equal power
    joins: tuple[Join, ...]


def seam_lead(units: RegionUnits) -> int | None:
    """Where the region's sound would go on after its last slice: the sample after the slice at the same place in
    the bar that is most like the last one (a looped region: the same slice one loop earlier), or None when the
    region holds a single bar."""
    last = units.count - 1
    candidates = [j for j in range(last) if units.positions[j] == units.positions[last]]
    if not candidates:
        return None
    gram = units.gram
    norms = np.sqrt(np.maximum(np.diag(gram), 1e-20))
    twin = max(candidates, key=lambda j: float(gram[j, last] / (norms[j] * norms[last])))
    return int(units.starts[twin + 1])


def _layout(units: RegionUnits, plan: Sequence[int], bars: int) -> _Layout:
    """Runs (and, at the seam, the region's own sound going on: :func:`seam_lead`) and the crossfades between
    them. Nothing is placed before the seam: the seam's crossfade lies in the continuation's first milliseconds."""
    rate, audio = units.sample_rate, units.audio
    dest = slot_starts(units, bars)
    length = int(dest[-1])
    fade = max(16, round(FADE_SECONDS * rate))
    runs = _runs(plan, units.count)
    entries = [(int(units.starts[plan[a]]) - int(dest[a]), int(dest[a]), int(dest[b])) for a, b in runs]
    lead = seam_lead(units)
    if lead is not None and lead != entries[0][0]:
        entries.insert(0, (lead, -length, 0))  # the region going on, crossfaded into the first run
    joins: list[Join] = []
    spans = [[0, length, 0, 0, True, True] for _ in entries]
    for r in range(len(entries) - 1):
        (shift_out, first, boundary), (shift_in, _, end) = entries[r], entries[r + 1]
        room = min(boundary - first, end - boundary) // 3
        before = 0 if boundary == 0 else min(round(SEARCH_BEFORE_SECONDS * rate), room)
        after = min(round(SEARCH_AFTER_SECONDS * rate), room)
        centre = _place_join(units, boundary, (shift_out, shift_in), fade, before, after)
        centre = max(centre, fade // 2)
        tail = _tail(units, centre, shift_out, shift_in, fade)
        start = centre - fade // 2
        out_len = max(fade, tail)
        spans[r][1], spans[r][3] = start + out_len, out_len
        spans[r + 1][0], spans[r + 1][2] = start, fade
        if tail == 0:
            a = _segment(audio, start + shift_out, start + fade + shift_out).ravel()
            b = _segment(audio, start + shift_in, start + fade + shift_in).ravel()
            denom = math.sqrt(float(a @ a) * float(b @ b))
            if denom > 0 and float(a @ b) / denom > CORRELATED:
                spans[r][5] = spans[r + 1][4] = False
        if boundary > 0:  # the seam itself is measured in full.wav
            joins.append(Join(centre, centre + shift_in, centre + shift_out, tail))
    shifts = tuple(e[0] for e in entries)
    return _Layout(length, shifts, tuple(tuple(x) for x in spans), tuple(joins))  # type: ignore[misc]


def _mix(source: npt.NDArray[np.floating], layout: _Layout) -> npt.NDArray[np.float64]:
    length = layout.length
    out = np.zeros((source.shape[0], length))
    for (start, stop, fade_in, fade_out_len, power_in, power_out), shift in zip(
        layout.spans, layout.shifts, strict=True
    ):
        a, b = max(0, start), min(length, stop)
        if b <= a:
            continue
        piece = _segment(source, a + shift, b + shift)
        if fade_in:
            n = min(b - a, max(0, start + fade_in - a))
            ramp = np.clip((np.arange(a, a + n) - start + 0.5) / fade_in, 0.0, 1.0)
            piece[:, :n] *= np.sin(0.5 * np.pi * ramp) if power_in else ramp
        if fade_out_len:
            first = max(a, stop - fade_out_len)
            ramp = np.clip((np.arange(first, b) - (stop - fade_out_len) + 0.5) / fade_out_len, 0.0, 1.0)
            piece[:, first - a :] *= np.cos(0.5 * np.pi * ramp) if power_out else 1.0 - ramp
        out[:, a:b] += piece
    return out


def render_plan(
    units: RegionUnits,
    plan: Sequence[int],
    bars: int,
    region_last: npt.NDArray[np.float32],
    weighted: npt.NDArray[np.floating] | None = None,
    stems: Sequence[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = (),
) -> tuple[Rendering, npt.NDArray[np.float64] | None, list[npt.NDArray[np.float64]]]:
    """The continuation ``[C, bars x bar]`` for ``plan`` (a region slice per slot), before loudness matching; with
    ``weighted`` (the region K-weighted, :func:`engine.evaluate.loudness.k_weighted`), the same plan rendered from
    it too, which measures the continuation's loudness without filtering it again (the filter is linear; only
    the few milliseconds of each crossfade differ). ``stems``: (each track's analysed region audio, its last
    sample before the seam), rendered with the same cuts and crossfades as the mix (one structure)."""
    layout = _layout(units, plan, bars)
    out = _from(units.audio, layout, region_last, units.sample_rate)
    loud = _mix(weighted, layout) if weighted is not None else None
    tracks = [_from(audio, layout, last, units.sample_rate) for audio, last in stems]
    return Rendering(np.asarray(out, dtype=np.float32), layout.joins), loud, tracks


def _from(source: npt.NDArray[np.float32], layout: _Layout, region_last: npt.NDArray[np.float32], rate: int
          ) -> npt.NDArray[np.float64]:  # fmt: skip
    """``source`` (audio on the analysed region's samples) through the layout, joined to the region at the seam."""
    out = _mix(source, layout)
    shift = layout.shifts[0]
    return join_at_seam(out, _segment(source, shift - 1, shift)[:, 0], region_last, rate)


def match_region_loudness(
    rendering: Rendering,
    target_lufs: float,
    weighted: npt.NDArray[np.float64] | None,
    rate: int,
    region_peak: float = PEAK_CEILING,
) -> Rendering:
    """The continuation at ``target_lufs`` (the analysed region's BS.1770 loudness), its peaks limited if the
    gain would clip (:func:`engine.audio.continuation.limit_peaks`); the last 5 ms faded out. ``weighted``: the
    continuation K-weighted (from :func:`render_plan`), else it is measured here. Peaks may reach the region's own
    peak (``region_peak``, at most full scale): the region's samples are not turned down for being as loud as it."""
    ceiling = max(PEAK_CEILING, min(1.0, region_peak))
    audio = rendering.audio.astype(np.float64)
    ours = gated_loudness(weighted, rate) if weighted is not None else loudness_db(rendering.audio, rate)
    gain_db, limited = 0.0, 0.0
    if target_lufs > SILENT_LUFS and ours > SILENT_LUFS:
        gain_db = max(-12.0, min(12.0, target_lufs - ours))
        audio = audio * 10 ** (gain_db / 20)
        before = audio
        audio, limited = limit_peaks(audio, rate, ceiling)
        if limited > 0.05:  # make-up once: the limiter took some loudness off
            after = _limited_loudness(before, audio, weighted, gain_db, rate)
            if after > SILENT_LUFS and target_lufs - after > 0.1:
                audio, limited = limit_peaks(audio * 10 ** ((target_lufs - after) / 20), rate, ceiling)
    audio = fade_out(audio, rate)
    return Rendering(np.asarray(audio, dtype=np.float32), rendering.joins, gain_db, limited)


def _limited_loudness(before: npt.NDArray[np.float64], after: npt.NDArray[np.float64],
                      weighted: npt.NDArray[np.float64] | None, gain_db: float, rate: int) -> float:  # fmt: skip
    """The loudness of ``after`` (``before`` through the peak limiter). With ``weighted`` (``before`` K-weighted,
    less ``gain_db``), measured without filtering again: the limiter's gain is one slow curve for all channels
    (recovered here as ``sum |after| / sum |before|`` at each sample), and a slow gain passes through the
    K-weighting filter as it is."""
    if weighted is None:
        return loudness_db(after.astype(np.float32), rate)
    level = np.abs(before).sum(axis=0)
    curve = np.divide(np.abs(after).sum(axis=0), level, out=np.ones_like(level), where=level > 1e-12)
    return gated_loudness(weighted * (10 ** (gain_db / 20) * curve)[None, :], rate)
