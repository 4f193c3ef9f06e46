"""MIDI clock: the pure follower and sender on synthetic timestamps, and the port layer on in-memory mido ports.

No JACK, no sleeping on the clock's speed: every timing figure here comes from synthetic timestamps.
"""

from __future__ import annotations

import logging
import math
import random

import mido
import pytest
from fake_midi import FakeInput, FakeMidi, FakeOutput

from bridge import midiports
from bridge.clock import PPQN, ClockFollower, ClockSender, FollowerSettings, tick_period_s
from bridge.midiports import ClockInput, ClockOutput, MidiPortError, ReconnectingInput

CLOCK = mido.Message("clock")
START, STOP, CONTINUE = mido.Message("start"), mido.Message("stop"), mido.Message("continue")
T0 = 1000.0  # synthetic timestamps start here (like perf_counter on a machine that has been up a while)


def feed_ticks(
    follower: ClockFollower, tempo_bpm: float, count: int, start_s: float, rng: random.Random | None = None
) -> list[float | None]:
    """Feed ``count`` clocks at ``tempo_bpm`` from ``start_s`` (1 ms gaussian jitter with ``rng``); tempo after each."""
    period = 60.0 / (tempo_bpm * PPQN)
    tempos: list[float | None] = []
    for k in range(count):
        jitter = rng.gauss(0.0, 0.001) if rng is not None else 0.0
        follower.feed(CLOCK, start_s + k * period + jitter)
        tempos.append(follower.tempo_bpm)
    return tempos


# -- tempo -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tempo", [120.0, 97.5, 60.0, 180.0])
def test_steady_tempo_under_jitter_is_within_0_1_bpm_after_one_bar(tempo: float) -> None:
    worst = 0.0
    for seed in range(40):
        follower = ClockFollower()
        follower.feed(START, T0)
        tempos = feed_ticks(follower, tempo, 4 * PPQN, T0, random.Random(seed))  # one 4/4 bar
        assert tempos[0] is None  # unknown until clocks arrive
        last = tempos[-1]
        assert last is not None
        worst = max(worst, abs(last - tempo))
    assert worst < 0.1, f"worst error after one bar over 40 seeds: {worst:.3f} BPM"


def test_without_jitter_the_tempo_is_exact_quickly() -> None:
    follower = ClockFollower()
    tempos = feed_ticks(follower, 120.0, 8, T0)
    assert tempos[-1] == pytest.approx(120.0, abs=1e-6)


def test_tempo_jump_settles_within_two_beats() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        follower = ClockFollower()
        follower.feed(START, T0)
        feed_ticks(follower, 120.0, 2 * 4 * PPQN, T0, rng)
        after = feed_ticks(follower, 90.0, 4 * PPQN, T0 + 2 * 4 * 0.5, rng)
        errors = [abs(t - 90.0) for t in after if t is not None]
        settled = next(i for i in range(len(errors)) if max(errors[i:]) < 0.5)
        assert settled <= 2 * PPQN, f"seed {seed}: settled after {settled} clocks"
        within_0_1 = next(i for i in range(len(errors)) if max(errors[i:]) < 0.1)
        assert within_0_1 <= 2 * PPQN, f"seed {seed}: within 0.1 BPM after {within_0_1} clocks"
        assert all(85.0 <= t <= 125.0 for t in after if t is not None)  # never wild on the way


def test_dropped_clocks_neither_bend_the_tempo_nor_the_position() -> None:
    rng = random.Random(3)
    follower = ClockFollower()
    follower.feed(START, T0)
    period = 60.0 / (120.0 * PPQN)
    for k in range(4 * 4 * PPQN):
        t = T0 + k * period + rng.gauss(0.0, 0.001)
        if k > 30 and k % 17 == 0:
            continue  # dropped by the cable
        follower.feed(CLOCK, t)
    state = follower.state()
    assert state.tempo_bpm == pytest.approx(120.0, abs=0.1)
    assert state.position_beats == pytest.approx((4 * 4 * PPQN - 1) / PPQN)  # the holes are counted


def test_a_burst_of_two_clocks_counts_twice() -> None:
    follower = ClockFollower()
    follower.feed(START, T0)
    feed_ticks(follower, 120.0, 2 * PPQN, T0)
    t = T0 + 2 * PPQN * 0.5 / PPQN
    follower.feed(CLOCK, t)
    follower.feed(CLOCK, t + 0.0002)  # delivered together with the previous one
    assert follower.state().position_beats == pytest.approx((2 * PPQN + 1) / PPQN)


@pytest.mark.parametrize("tempo", [97.5, 100.0, 120.0, 140.0, 60.0])
@pytest.mark.parametrize("period_frames", [256, 1024])
def test_period_quantized_timestamps_are_followed_within_0_1_bpm_after_two_bars(
    tempo: float, period_frames: int
) -> None:
    """JACK delivers a period's MIDI in one callback: stamps land on period boundaries (two clocks may share one)."""
    quantum = period_frames / 48000.0
    clock_period = 60.0 / (tempo * PPQN)
    worst = 0.0
    for seed in range(10):
        rng = random.Random(seed)
        phase = rng.uniform(0.0, quantum)
        follower = ClockFollower()
        follower.feed(START, T0)
        count = 2 * 4 * PPQN
        for k in range(count):
            true_t = k * clock_period + phase
            stamp = T0 + math.ceil(true_t / quantum) * quantum + rng.uniform(0.0, 0.0003)  # callback wake-up jitter
            follower.feed(CLOCK, stamp)
        state = follower.state()
        assert state.tempo_bpm is not None
        worst = max(worst, abs(state.tempo_bpm - tempo))
        assert state.position_beats == pytest.approx((count - 1) / PPQN)  # no clock taken for a duplicate or hole
    assert worst < 0.1, f"{tempo} BPM, {period_frames}-frame periods: worst error after two bars {worst:.3f} BPM"


def test_quantized_timestamps_follow_a_tempo_change() -> None:
    quantum = 1024 / 48000.0
    follower = ClockFollower()
    follower.feed(START, T0)
    t = 0.0
    for tempo, bars in ((120.0, 2), (100.0, 4)):
        for _ in range(bars * 4 * PPQN):
            follower.feed(CLOCK, T0 + math.ceil(t / quantum) * quantum)
            t += 60.0 / (tempo * PPQN)
    assert follower.tempo_bpm == pytest.approx(100.0, abs=0.1)


def test_dropout_goes_stale_then_recovers_without_a_crazy_tempo() -> None:
    rng = random.Random(5)
    follower = ClockFollower(source="midi-clock:test")
    follower.feed(START, T0)
    feed_ticks(follower, 120.0, 2 * 4 * PPQN, T0, rng)
    last = T0 + (2 * 4 * PPQN - 1) * 0.5 / PPQN
    assert not follower.state(now_s=last + 0.1).stale
    during = follower.state(now_s=last + 1.0)
    assert during.stale and during.playing and during.tempo_bpm == pytest.approx(120.0, abs=0.1)
    assert during.source == "midi-clock:test" and during.last_tick_time == pytest.approx(last, abs=0.005)
    resume = last + 2.0 + 0.5 / PPQN
    after = feed_ticks(follower, 120.0, 2 * PPQN, resume, rng)
    assert all(t is not None and abs(t - 120.0) < 1.0 for t in after)
    state = follower.state(now_s=resume + 0.1)
    assert not state.stale and state.tempo_bpm == pytest.approx(120.0, abs=0.3)
    # the master kept playing through the dropout: its 2 s at 120 BPM (4 beats, 96 clocks) are counted
    expected = (2 * 4 * PPQN - 1 + 4 * PPQN + 2 * PPQN) / PPQN
    assert state.position_beats == pytest.approx(expected, abs=1 / PPQN)


def test_playing_without_any_clock_is_stale() -> None:
    follower = ClockFollower()
    follower.feed(START, T0)
    assert not follower.state(now_s=T0 + 0.2).stale
    assert follower.state(now_s=T0 + 0.6).stale
    follower.feed(STOP, T0 + 0.7)
    assert not follower.state(now_s=T0 + 5.0).stale  # stopped: silence is normal


# -- transport and position --------------------------------------------------------------------------------


def test_start_stop_continue_and_song_position() -> None:
    follower = ClockFollower()
    assert follower.state().playing is False and follower.state().position_beats == 0.0
    follower.feed(START, T0)
    feed_ticks(follower, 120.0, PPQN + 1, T0)  # the first clock marks beat 0; 24 more = 1 beat
    state = follower.state()
    assert state.playing and state.position_beats == pytest.approx(1.0)
    follower.feed(STOP, T0 + 1.0)
    feed_ticks(follower, 120.0, 10, T0 + 1.1)  # clocks while stopped keep the tempo, not the position
    state = follower.state()
    assert not state.playing and state.position_beats == pytest.approx(1.0)
    follower.feed(mido.Message("songpos", pos=16), T0 + 2.0)  # 16 sixteenths = 4 beats
    assert follower.state().position_beats == pytest.approx(4.0)
    follower.feed(CONTINUE, T0 + 2.1)
    feed_ticks(follower, 120.0, 13, T0 + 2.1)  # first marks 4.0, 12 more = half a beat
    assert follower.state().position_beats == pytest.approx(4.5)
    follower.feed(mido.Message("songpos", pos=0), T0 + 3.0)  # ignored while playing
    assert follower.state().position_beats == pytest.approx(4.5)
    follower.feed(START, T0 + 3.1)
    assert follower.state().position_beats == 0.0 and follower.state().playing
    follower.feed(mido.Message("note_on", note=60), T0 + 3.2)  # not clock: ignored
    assert follower.state().tempo_bpm == pytest.approx(120.0, abs=1e-6)


def test_follower_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="window_ticks"):
        ClockFollower(settings=FollowerSettings(window_ticks=2))


# -- sending -----------------------------------------------------------------------------------------------


def test_sender_schedule_is_exact_at_96_bpm_and_has_no_drift() -> None:
    sender = ClockSender(96.0)
    opening = sender.start(at_s=10.0)
    assert [m.message.type for m in opening] == ["start"] and opening[0].time_s == 10.0
    ticks = sender.ticks(10 * PPQN)
    period = 60.0 / 96.0 / 24.0
    assert tick_period_s(96.0) == period
    for k, item in enumerate(ticks):
        assert item.message.type == "clock"
        assert item.time_s == pytest.approx(10.0 + k * period, abs=1e-12)  # absolute, never accumulated
    assert sender.stop(20.0)[0].message.type == "stop"
    resumed = sender.start(at_s=30.0, position_beats=4.3)
    assert [(m.message.type, getattr(m.message, "pos", None)) for m in resumed] == [("songpos", 17), ("continue", None)]
    with pytest.raises(ValueError, match="tempo must be in"):
        ClockSender(0.0)


def test_sender_tempo_change_reanchors_at_the_next_clock() -> None:
    sender = ClockSender(120.0)
    sender.start(at_s=0.0)
    first = sender.ticks(PPQN)
    sender.set_tempo(60.0)
    second = sender.ticks(3)
    assert second[0].time_s == pytest.approx(first[-1].time_s + 0.5 / PPQN)
    assert second[1].time_s - second[0].time_s == pytest.approx(1.0 / PPQN)


def test_round_trip_sender_to_follower_recovers_the_tempo() -> None:
    rng = random.Random(11)
    sender = ClockSender(97.5)
    follower = ClockFollower()
    for item in [*sender.start(at_s=T0), *sender.ticks(2 * 4 * PPQN), *sender.stop(T0 + 60.0)]:
        follower.feed(item.message, item.time_s + rng.gauss(0.0, 0.001))
    state = follower.state()
    assert state.tempo_bpm == pytest.approx(97.5, abs=0.1)
    assert not state.playing and state.position_beats == pytest.approx((2 * 4 * PPQN - 1) / PPQN)


# -- the port layer on in-memory mido ports ----------------------------------------------------------------


def test_clock_input_feeds_the_follower_with_its_own_timestamps() -> None:
    times = iter(T0 + k * 0.5 / PPQN for k in range(100))
    clock_in = ClockInput(ClockFollower(source="midi-clock:fake"), now=lambda: next(times))
    port = FakeInput("fake", callback=clock_in.handle)
    port.inject(START)
    port.inject(mido.Message("note_on", note=60))  # not clock: ignored, and not stamped
    for _ in range(PPQN + 1):
        port.inject(CLOCK)
    state = clock_in.state()
    assert state.playing and state.tempo_bpm == pytest.approx(120.0) and state.position_beats == pytest.approx(1.0)
    assert state.source == "midi-clock:fake"


def test_reconnect_when_the_port_vanishes_and_reappears(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bridge.midiports")
    midi = FakeMidi()
    received: list[str] = []
    watcher = ReconnectingInput(
        "Ardour Clock", lambda m: received.append(m.type), opener=midi.opener, lister=midi.lister, retry_s=0.05
    )
    watcher.step()
    watcher.step()  # still missing: logged once
    assert not watcher.connected.is_set()
    midi.names.append("Ardour Clock")
    watcher.step()
    assert watcher.connected.is_set() and len(midi.opened) == 1
    midi.opened[0].inject(CLOCK)
    midi.names.clear()  # the DAW quits
    watcher.step()
    assert not watcher.connected.is_set() and midi.opened[0].closed
    midi.names.append("Ardour Clock")  # and comes back
    watcher.step()
    midi.opened[1].inject(START)
    assert received == ["clock", "start"] and watcher.connected.is_set()
    watcher.close()
    watcher.close()
    assert midi.opened[1].closed
    messages = [r.getMessage() for r in caplog.records]
    assert sum("not available" in m for m in messages) == 1
    assert sum("connected" in m for m in messages) == 2 and sum(" lost " in m for m in messages) == 1


def test_reconnect_loop_thread_connects_and_stops() -> None:
    midi = FakeMidi()
    midi.names.append("clock")
    watcher = ReconnectingInput("clock", lambda m: None, opener=midi.opener, lister=midi.lister, retry_s=0.05)
    watcher.start()
    assert watcher.connected.wait(5.0)
    watcher.close()
    watcher.close()
    assert midi.opened and all(p.closed for p in midi.opened)


def test_clock_output_sends_start_clocks_stop_and_closes_twice() -> None:
    port = FakeOutput("out")
    output = ClockOutput(port, ClockSender(600.0))
    output.start()
    assert port.enough.wait(5.0)
    output.close()
    output.close()
    types = [m.type for m in port.sent]
    assert types[0] == "start" and types[-1] == "stop" and set(types[1:-1]) == {"clock"}
    assert port.closed
    with pytest.raises(RuntimeError, match="closed"):
        output.start()


def test_no_usable_backend_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDO_BACKEND", "mido.backends.no_such_backend")
    with pytest.raises(MidiPortError, match="cannot be loaded"):
        midiports.list_ports()
    assert midiports.backend_spec() == "mido.backends.no_such_backend"
