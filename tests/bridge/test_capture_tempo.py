"""The tempo map from MIDI clocks, clock stamps to frames, lost audio: the capture's timing without a sound device."""

from __future__ import annotations

import numpy as np
import pytest
from capture_rig import BAR, BPM, FPB, SR

import bridge.capture.tempo as capture_tempo
from bridge.capture.session import CaptureSession, StampMap
from bridge.capture.tempo import find_audio_gaps, fit_tempo_map, snap_tempo
from engine.errors import BadInputError

FPT = FPB / 24  # 1000 frames per MIDI clock at 120 BPM


def test_fit_tempo_map_snaps_a_noisy_120_to_exactly_120() -> None:
    rng = np.random.default_rng(1)
    frames = 5000 + FPT * np.arange(193) + rng.uniform(-128, 128, 193)  # JACK-quantized: +-half a 256 period
    (seg,) = fit_tempo_map(list(frames), 0.0, SR, tolerance_frames=192)
    assert seg.tempo_bpm == 120.0 and seg.beats == 0.0 and abs(seg.frame - 5000) < 20


def test_fit_tempo_map_keeps_a_tempo_that_is_not_round() -> None:
    fpt = SR * 60 / 97.53 / 24
    (seg,) = fit_tempo_map(list(fpt * np.arange(400)), 2.0, SR)
    assert seg.tempo_bpm == pytest.approx(97.53, abs=1e-6) and seg.beats == 2.0


def test_snap_tempo_prefers_the_coarsest_round_value_within_the_error() -> None:
    assert snap_tempo(119.997, 0.004) == 120.0
    assert snap_tempo(97.502, 0.004) == 97.5
    assert snap_tempo(97.534, 0.002) == 97.534
    assert snap_tempo(97.53, 1.0) == 97.5 and snap_tempo(97.44, 1.0) == 97.4  # never moves more than 0.05 BPM
    assert snap_tempo(97.5312, 0.0) == 97.5312


def test_fit_tempo_map_follows_a_tempo_change() -> None:
    fast = FPT * np.arange(96)  # one bar at 120
    slow = fast[-1] + 2 * FPT * np.arange(1, 97)  # then 60 BPM
    segments = fit_tempo_map(list(np.concatenate([fast, slow])), 0.0, SR)
    assert [s.tempo_bpm for s in segments] == [120.0, 60.0]
    assert segments[1].beats == pytest.approx(96 / 24) and segments[1].frame == pytest.approx(fast[-1] + 2 * FPT)


def test_fit_tempo_map_counts_lost_clocks() -> None:
    frames = list(FPT * np.arange(200))
    del frames[100:102]  # two clocks lost (e.g. in a JACK xrun): the count is two short after them
    (seg,) = fit_tempo_map(frames, 0.0, SR)
    assert seg.tempo_bpm == 120.0 and abs(seg.frame) < 1e-6


def test_a_step_at_the_same_tempo_is_a_dropout() -> None:
    frames = FPT * np.arange(200)
    frames[100:] -= 256  # the audio lost a 256-frame period: the clocks land a period early from there on
    with pytest.raises(BadInputError, match="out of step by -256 frames"):
        fit_tempo_map(list(frames), 0.0, SR, tolerance_frames=192)


def test_fit_tempo_map_needs_two_clocks() -> None:
    with pytest.raises(BadInputError, match="fewer than two MIDI clocks"):
        fit_tempo_map([10.0], 0.0, SR)


def _stamp_map(period: int = 256, blocks: int = 400, t0: float = 10.0) -> StampMap:
    stamps = StampMap(SR)
    for c in range(blocks):
        stamps.add(t0 + (c + 1) * period / SR + 0.0002, c * period, period)
    return stamps


def test_stamp_map_puts_jack_stamps_in_the_middle_of_their_cycle() -> None:
    stamps = _stamp_map()
    cycle_stamps = [10.0 + (c + 1) * 256 / SR - 0.0003 for c in (5, 6, 100)]  # MIDI: just before the audio callback
    assert stamps.quantized(cycle_stamps)
    assert stamps.frames_of(cycle_stamps) == [5 * 256 + 127.5, 6 * 256 + 127.5, 100 * 256 + 127.5]


def test_stamp_map_interpolates_stamps_that_are_not_in_cycles() -> None:
    stamps = _stamp_map()
    # a sound card: "now" at a callback is the frame after its block; stamps anywhere in between
    times = [10.0 + 0.0002 + f / SR for f in (30_000.0, 30_100.0, 51_234.0)]
    assert not stamps.quantized(times)
    assert stamps.frames_of(times) == pytest.approx([30_000.0, 30_100.0, 51_234.0], abs=1e-6)


def test_find_audio_gaps_sees_a_lost_period_and_not_a_late_callback() -> None:
    starts = [256 * i for i in range(100)]
    times = [(256 * i + (256 if i >= 60 else 0)) / SR + 7.0 for i in range(100)]  # one period lost before block 60
    times[30] += 200 / SR  # a callback 200 frames late: a blip
    assert find_audio_gaps(starts, [256] * 100, times, SR) == [60 * 256]
    assert find_audio_gaps(starts, [256] * 100, [0.0] * 100, SR) is None  # no usable device times


def test_an_xrun_flag_fails_the_take_only_when_audio_was_lost_inside_it() -> None:
    def session(lost_at: int | None, flag_at: int | None) -> CaptureSession:
        s = CaptureSession(SR)
        s.start(0, 0.0, BPM)
        for i in range(3 * BAR // 256):
            shift = 256 if lost_at is not None and i * 256 >= lost_at else 0
            s.add_block(np.zeros((256, 1), dtype=np.float32), i * 256, SR, (i * 256 + shift) / SR)
            if flag_at == i * 256:
                s.xrun(i * 256)
        s.stop(2 * BAR + 10)
        return s

    assert session(None, BAR).finish().length_bars == 2  # a flag (another client's xrun), nothing lost: fine
    with pytest.raises(BadInputError, match="dropped out during the take"):
        session(BAR, BAR).finish()
    assert session(5 * BAR // 2, None).finish().length_bars == 2  # lost after the cut: fine
    no_times = CaptureSession(SR)
    no_times.start(0, 0.0, BPM)
    no_times.add_block(np.zeros((3 * BAR, 1), dtype=np.float32), 0, SR)
    no_times.xrun(BAR)  # without device times a flag inside the take is all we know
    no_times.stop(2 * BAR + 10)
    with pytest.raises(BadInputError, match="dropped out during the take"):
        no_times.finish()


# -- whole takes in a simulated JACK world -----------------------------------------------------------------------


@pytest.mark.parametrize(("bpm", "period"), [(120.0, 1024), (120.0, 256), (97.5, 1024), (140.0, 1024)])
def test_jack_quantized_clocks_near_the_period_give_the_true_tempo(bpm: float, period: int) -> None:
    """Ardour at 120 BPM / 48 kHz sends a clock every 1000 frames; JACK delivers them per 1024-frame period, so
    each maps to the middle of its period: dozens of clocks in a row one period apart, then two in one period.
    The tempo is the clocks' tempo, not the period's (117.19 BPM), over one and over four bars; and a lost
    period in the middle is still a dropout, not a tempo."""
    rate = 48_000
    spacing = 60.0 * rate / (24 * bpm)
    for clocks in (4 * 24, 16 * 24):
        true = 1234.5 + spacing * np.arange(clocks)
        quantized = np.floor(true / period) * period + (period - 1) / 2.0
        [segment] = capture_tempo.fit_tempo_map(
            list(quantized), 0.0, rate, tolerance_frames=0.75 * period, quantum_frames=period
        )
        assert segment.tempo_bpm == pytest.approx(bpm, abs=0.01), (clocks, segment)
        assert abs(segment.frame - 1234.5) <= period / 2  # the first clock's frame, to within the quantization

    true = 1234.5 + 1000.0 * np.arange(8 * 24)
    true[100:] -= 1024  # JACK lost a period of our audio: the clocks land a period early from there on
    quantized = np.floor(true / 1024) * 1024 + 511.5
    with pytest.raises(BadInputError, match="out of step"):
        capture_tempo.fit_tempo_map(list(quantized), 0.0, 48_000, tolerance_frames=768, quantum_frames=1024)
