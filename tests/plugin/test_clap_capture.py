"""Segue Link captures on the host's bar grid (through the small CLAP test host, tests/plugin/clap_host.cpp).

The host plays seeded noise (made by the rig) at 97.5 BPM in 3/4 from inside bar 5, with block sizes drawn at
random between 1 and 8192 frames, and presses Capture; a Python UDP port plays Segue and receives the region."""

from __future__ import annotations

import numpy as np
import pytest
from link_rig import PARAM, Built, Host, SegueStub, first_frame, noise, read_wav

START = 13.3  # quarter notes: inside bar 5 of a 3/4 timeline (bar 5 starts at 12)


@pytest.mark.parametrize("rate", [48000, 44100, 192000])
def test_a_capture_of_two_bars_starts_on_the_next_bar_line_and_equals_the_input_sample_for_sample(
    built: Built, segue: SegueStub, tmp_path, rate: int
) -> None:
    audio = noise(int(rate * 6.5), seed=rate)
    host = Host(built, tmp_path, audio, segue.port, "--param", f"0:{PARAM['bars']}:2", "--param",
                f"100:{PARAM['arm']}:1", "--blocks", "1:8192", "--seed", "7", "--pace", "6", rate=rate)  # fmt: skip
    run = host.finish()
    wav, path_midi, start, length, tempo, num, den, track = segue.wait_for("/segue/region")[0]
    assert (start, length, tempo, num, den) == (15.0, 6.0, 97.5, 3, 4)  # bar 6 (the next bar line), 2 bars of 3/4
    assert path_midi == "" and track == "Segue Link 1"
    captured, wav_rate = read_wav(wav)
    assert wav_rate == rate
    a, b = first_frame(15.0, START, rate, 97.5), first_frame(21.0, START, rate, 97.5)
    assert captured.shape == (b - a, 2)
    assert np.array_equal(captured, audio[a:b])
    assert run.output is not None and np.array_equal(run.output, audio), "the input must pass through untouched"
    assert " bar 6 " in wav and wav.endswith(".wav")
    assert not list(host.link_dir.glob(".*part*")), "no temporary file is left behind"


def test_midi_notes_that_pass_during_a_capture_are_written_beside_the_audio(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    import mido

    rate = 48000
    audio = noise(rate * 6)
    a = first_frame(15.0, START, rate, 97.5)
    beat = rate * 60 / 97.5
    notes = [
        "--note",
        f"{a + int(beat)}:144:60:100",
        "--note",
        f"{a + int(2 * beat)}:128:60:0",
        "--note",
        f"{a + int(3 * beat)}:144:64:90",
    ]  # fmt: skip  (the last is still held at the end)
    Host(built, tmp_path, audio, segue.port, "--param", f"0:{PARAM['bars']}:2", "--param", f"0:{PARAM['arm']}:1",
         *notes, "--pace", "6").finish()  # fmt: skip
    wav, midi, start, length, *_ = segue.wait_for("/segue/region")[0]
    assert midi.endswith(".mid") and midi[:-4] == wav[:-4]
    song = mido.MidiFile(midi)
    assert song.ticks_per_beat == 960
    msgs = [m for m in song.tracks[0] if not m.is_meta]
    ticks, now = [], 0
    for m in song.tracks[0]:
        now += m.time
        if not m.is_meta:
            ticks.append(now)
    assert [(m.type, m.note) for m in msgs] == [("note_on", 60), ("note_off", 60), ("note_on", 64), ("note_off", 64)]
    assert ticks[:3] == [960, 1920, 2880]  # a beat apart, on the capture's own timeline (to the tick)
    assert ticks[3] == 6 * 960  # the held note ends with the capture
    tempos = [m.tempo for m in song.tracks[0] if m.type == "set_tempo"]
    meters = [(m.numerator, m.denominator) for m in song.tracks[0] if m.type == "time_signature"]
    assert tempos == [round(60_000_000 / 97.5)] and meters == [(3, 4)]


def test_a_capture_group_of_two_instances_arrives_as_the_stems_of_one_region(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    rate = 48000
    audio = noise(rate * 6, seed=3)
    Host(built, tmp_path, audio, segue.port, "--instances", "2", "--param", f"0:{PARAM['bars']}:1", "--param",
         f"0:{PARAM['arm']}:1", "--pace", "6").finish()  # fmt: skip
    args = segue.wait_for("/segue/region/stems")[0]
    assert args[:8] == ["", "", 15.0, 3.0, 97.5, 3, 4, "default"]
    pairs = dict(zip(args[8::2], args[9::2], strict=True))
    assert sorted(pairs) == ["segue-link-1", "segue-link-2"]
    a, b = first_frame(15.0, START, rate, 97.5), first_frame(18.0, START, rate, 97.5)
    for name, gain in (("segue-link-1", 1.0), ("segue-link-2", 2.0)):  # the host feeds instance k the input x (k+1)
        captured, _ = read_wav(pairs[name])
        assert np.array_equal(captured, audio[a:b] * np.float32(gain))
    assert segue.all("/segue/region") == [], "a group's capture is announced once, as stems"


def test_twenty_instances_pass_audio_and_capture_together_and_segue_gets_sixteen_stems(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    rate = 44100
    audio = noise(rate * 5, seed=4)
    host = Host(built, tmp_path, audio, segue.port, "--instances", "20", "--param", f"0:{PARAM['bars']}:1",
                "--param", f"0:{PARAM['arm']}:1", "--pace", "3", rate=rate)  # fmt: skip
    run = host.finish(timeout=180)
    args = segue.wait_for("/segue/region/stems", timeout=30)[0]
    assert len(args[8:]) == 2 * 16, "Segue takes at most 16 stems"
    assert len(list(host.link_dir.glob("*.wav"))) == 20, "every instance's capture is written"
    assert "Segue takes 16 stems" in host.log()
    hellos = {params[0] for params in segue.all("/segue/link/hello")}
    assert len(hellos) == 20
    assert run.output is not None and np.array_equal(run.output, audio)


def test_a_tempo_change_during_a_capture_is_recorded_in_beats_and_said(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    rate = 48000
    audio = noise(rate * 7, seed=5)
    a = first_frame(15.0, START, rate, 97.5)
    change = a + rate  # one second into the capture the tempo becomes 120 BPM
    host = Host(built, tmp_path, audio, segue.port, "--param", f"0:{PARAM['bars']}:2", "--param",
                f"0:{PARAM['arm']}:1", "--tempo", f"{change}:120", "--pace", "6")  # fmt: skip
    host.finish()
    wav, _, start, length, tempo, *_ = segue.wait_for("/segue/region")[0]
    assert (start, length) == (15.0, 6.0)
    beats_before = rate * 97.5 / 60 / rate  # one second at 97.5 BPM
    end = change + int(np.ceil((6.0 - beats_before) * rate * 60 / 120 - 1e-7))
    captured, _ = read_wav(wav)
    assert abs(captured.shape[0] - (end - a)) <= 1
    assert np.array_equal(captured, audio[a : a + captured.shape[0]])
    assert tempo == pytest.approx(6.0 * 60 / (captured.shape[0] / rate), rel=1e-5)  # the mean tempo
    assert "tempo changed from 97.500 to 120.000 BPM" in host.log()


def test_a_transport_jump_during_a_capture_starts_it_again_at_the_next_bar_line(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    rate = 48000
    audio = noise(rate * 9, seed=6)
    a = first_frame(15.0, START, rate, 97.5)
    jump = a + rate  # mid-capture, the host locates to bar 20 beat 2 (58 quarter notes)
    host = Host(built, tmp_path, audio, segue.port, "--param", f"0:{PARAM['bars']}:2", "--param",
                f"0:{PARAM['arm']}:1", "--jump", f"{jump}:58", "--pace", "6")  # fmt: skip
    host.finish()
    wav, _, start, length, *_ = segue.wait_for("/segue/region")[0]
    assert (start, length) == (60.0, 6.0)  # bar 21, the first bar line after the jump
    b = jump + first_frame(60.0, 58.0, rate, 97.5)
    e = jump + first_frame(66.0, 58.0, rate, 97.5)
    captured, _ = read_wav(wav)
    assert np.array_equal(captured, audio[b:e])
    assert "the transport jumped" in host.log()


def test_bars_zero_captures_the_loop_range_on_its_next_pass(built: Built, segue: SegueStub, tmp_path) -> None:
    rate = 48000
    audio = noise(rate * 9, seed=8)
    host = Host(built, tmp_path, audio, segue.port, "--param", f"0:{PARAM['bars']}:0", "--param",
                f"0:{PARAM['arm']}:1", "--loop", "12:18", "--pace", "6", start_qn=12.0)  # fmt: skip
    run = host.finish()
    wraps = [e["frame"] for e in run.events if e["event"] == "wrap"]
    assert len(wraps) >= 2
    wav, _, start, length, tempo, num, den, _ = segue.wait_for("/segue/region")[0]
    assert start == pytest.approx(12.0, abs=1e-3) and length == pytest.approx(6.0, abs=1e-3)
    captured, _ = read_wav(wav)
    assert np.array_equal(captured, audio[wraps[0] : wraps[1]])  # the whole second pass, nothing else


def test_a_capture_cut_short_by_stop_is_not_announced_and_leaves_no_file(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    rate = 48000
    audio = noise(rate * 6, seed=9)
    stop = first_frame(16.0, START, rate, 97.5)
    host = Host(built, tmp_path, audio, segue.port, "--param", f"0:{PARAM['bars']}:2", "--param",
                f"0:{PARAM['arm']}:1", "--stop", str(stop), "--pace", "6")  # fmt: skip
    run = host.finish()
    assert "the transport stopped before the end" in host.log()
    assert segue.all("/segue/region") == []
    assert list(host.link_dir.glob("*.wav")) == [] and not list(host.link_dir.glob(".*part*"))
    assert run.output is not None and np.array_equal(run.output, audio)


def test_the_track_state_names_the_region_its_file_and_its_stem(built: Built, segue: SegueStub, tmp_path) -> None:
    """The host's track name is not available to the plugin (DPF 1.6): its saved ``track`` state gives it."""
    rate = 48000
    audio = noise(rate * 5, seed=10)
    state = tmp_path / "state"
    Host(built, tmp_path / "a", audio, segue.port, "--state-out", str(state)).finish()
    named = tmp_path / "named.state"
    named.write_bytes(state.read_bytes().replace(b"Segue Link 1", b"01 Bass (DI)/x"))
    host = Host(built, tmp_path / "b", audio, segue.port, "--state-in", str(named), "--param",
                f"0:{PARAM['bars']}:1", "--param", f"0:{PARAM['arm']}:1", "--pace", "6")  # fmt: skip
    host.finish()
    wav, _, start, *_, track = segue.wait_for("/segue/region")[0]
    assert track == "01 Bass (DI)/x"
    assert wav.startswith(str(host.link_dir / "01 Bass (DI)-x bar 6 "))  # no '/' in a file name

    # two tracks of the same name in one group: two files (never one over the other), two distinct stem names
    twins = Host(built, tmp_path / "c", audio, segue.port, "--instances", "2", "--state-in", str(named), "--param",
                 f"0:{PARAM['bars']}:1", "--param", f"0:{PARAM['arm']}:1", "--pace", "6")  # fmt: skip
    twins.finish()
    args = segue.wait_for("/segue/region/stems")[0]
    assert args[8::2] == ["t-01-bass-di-x", "t-01-bass-di-x-2"]  # Segue's rule: a letter first, [a-z0-9_-]
    files = sorted((p.name for p in twins.link_dir.glob("*.wav")), key=len)
    assert len(files) == 2 and all(name.startswith("01 Bass (DI)-x bar 6 ") for name in files)
    same_second = files[0][:-4] == files[1][: len(files[0]) - 4]
    assert not same_second or files[1] == files[0][:-4] + " 2.wav"  # the second takes the next free name
