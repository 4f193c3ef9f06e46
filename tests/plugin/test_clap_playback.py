"""Segue Link plays a variant in the host (through the CLAP test host): Segue's /segue/link/play loads a file on
the plugin's worker, and the audio thread plays it from its place on the host's timeline, to the sample.

Every sound here is made by the test: seeded noise for the track and the variant, a 1 kHz sine for resampling."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from link_rig import PARAM, Built, Host, HostRun, SegueStub, first_frame, noise

START = 13.3
PLACE = 15.0  # bar 6 of 3/4


def play(built: Built, segue: SegueStub, work: Path, audio: np.ndarray, variant: Path, place: float, replace: int,
         *args: str, rate: int = 48000) -> HostRun:  # fmt: skip
    """Runs the host; once the plugin says hello, Segue asks it to play ``variant``; processing starts when the
    plugin says the file is loaded."""
    go = work / "go"
    host = Host(built, work, audio, segue.port, "--wait-file", str(go), *args, rate=rate)
    segue.wait_for("/segue/link/hello")
    segue.send(segue.sender_of("/segue/link/hello"), "/segue/link/play", str(variant), place, replace)
    deadline = time.monotonic() + 20
    while not (segue.all("/segue/link/loaded") or segue.all("/segue/link/error")) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    return host.finish()


def test_a_variant_replaces_the_input_from_its_exact_sample_and_the_input_returns_after_it(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    rate = 48000
    audio = noise(rate * 8, seed=11)
    variant = noise(rate // 2, seed=12, level=0.5)
    soundfile.write(tmp_path / "variant.wav", variant, rate, subtype="FLOAT")
    run = play(built, segue, tmp_path, audio, tmp_path / "variant.wav", PLACE, 1, "--blocks", "1:8192", "--seed", "5")
    instance, path, seconds = segue.wait_for("/segue/link/loaded")[0]
    assert path == str(tmp_path / "variant.wav") and abs(seconds - 0.5) < 1e-6
    a = first_frame(PLACE, START, rate, 97.5)
    out = run.output
    assert out is not None
    assert np.array_equal(out[:a], audio[:a])
    assert np.array_equal(out[a : a + len(variant)], variant)
    assert np.array_equal(out[a + len(variant) :], audio[a + len(variant) :])


def test_a_mixed_variant_is_added_to_the_input_at_the_variant_level(built: Built, segue: SegueStub, tmp_path) -> None:
    rate = 44100
    audio = noise(rate * 6, seed=13)
    variant = noise(rate // 4, seed=14, level=0.5)
    soundfile.write(tmp_path / "variant.wav", variant, rate, subtype="FLOAT")
    place = 18.0  # bar 7
    run = play(built, segue, tmp_path, audio, tmp_path / "variant.wav", place, 0, "--param",
               f"0:{PARAM['mix']}:0.5", "--blocks", "64:4096", rate=rate)  # fmt: skip
    a = first_frame(place, START, rate, 97.5)
    out = run.output
    assert out is not None
    expected = audio[a : a + len(variant)] + np.float32(0.5) * variant
    assert np.array_equal(out[a : a + len(variant)], expected)
    assert np.array_equal(out[:a], audio[:a]) and np.array_equal(out[a + len(variant) :], audio[a + len(variant) :])


def test_a_variant_at_another_rate_is_resampled_on_the_worker_and_still_starts_on_its_sample(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    t = np.arange(44100) / 44100
    sine = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    soundfile.write(tmp_path / "sine.wav", sine, 44100, subtype="PCM_24")  # mono, 24-bit, 44.1 kHz
    rate = 48000
    silence = np.zeros((rate * 6, 2), np.float32)
    run = play(built, segue, tmp_path, silence, tmp_path / "sine.wav", PLACE, 1)
    assert segue.wait_for("/segue/link/loaded")[0][2] == 1.0
    a = first_frame(PLACE, START, rate, 97.5)
    out = run.output
    assert out is not None
    assert not out[:a].any() and out[a:].any()
    played = out[a : a + rate]
    assert np.array_equal(played[:, 0], played[:, 1]), "a mono variant sounds in both channels"
    ideal = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(rate) / rate)
    middle = slice(200, rate - 200)  # the windowed sinc's edges aside
    assert np.max(np.abs(played[middle, 0] - ideal[middle])) < 2e-3
    assert not out[a + rate + 1 :].any()


def test_play_off_stop_and_a_bad_file_leave_the_input_untouched(built: Built, segue: SegueStub, tmp_path) -> None:
    rate = 48000
    audio = noise(rate * 5, seed=15)
    variant = noise(rate, seed=16)
    soundfile.write(tmp_path / "variant.wav", variant, rate, subtype="FLOAT")
    run = play(built, segue, tmp_path / "off", audio, tmp_path / "variant.wav", PLACE, 1, "--param",
               f"0:{PARAM['play']}:0")  # fmt: skip
    assert run.output is not None and np.array_equal(run.output, audio)

    segue.clear()
    stopped_host = Host(built, tmp_path / "stop", audio, segue.port, "--wait-file", str(tmp_path / "go-stop"))
    segue.wait_for("/segue/link/hello")
    sender = segue.sender_of("/segue/link/hello")
    segue.send(sender, "/segue/link/play", str(tmp_path / "variant.wav"), PLACE, 1)
    segue.wait_for("/segue/link/loaded")
    segue.send(sender, "/segue/link/stop")
    deadline = time.monotonic() + 10
    while "play: stopped" not in stopped_host.log():
        assert time.monotonic() < deadline, "the plugin did not log the stop"
        time.sleep(0.01)
    (tmp_path / "go-stop").touch()
    run = stopped_host.finish()
    assert run.output is not None and np.array_equal(run.output, audio), "a stopped variant does not sound"

    (tmp_path / "notes.txt").write_text("not audio")
    segue.clear()
    run = play(built, segue, tmp_path / "bad", audio, tmp_path / "notes.txt", PLACE, 1)
    _, message = segue.wait_for("/segue/link/error")[0]
    assert "notes.txt is not a WAV file" in message
    assert run.output is not None and np.array_equal(run.output, audio)


@pytest.mark.parametrize("when", ["before", "after", "both"])
def test_the_variant_is_kept_in_the_saved_state_and_plays_in_a_fresh_process_that_loads_it(
    built: Built, segue: SegueStub, tmp_path, when: str
) -> None:
    """What an offline render does (Ardour's ardour7-export): a fresh process loads the session's state, with no
    Segue to ask, and the variant must still land on its sample. Hosts load the state before activating the
    plugin, after it (Ardour 7.3 restores an LV2 plugin's state once it is active: seen in ardour7-export) or
    both (the second load hands a new copy of the variant to the audio thread, which frees the first)."""
    rate = 48000
    audio = noise(rate * 6, seed=17)
    variant = noise(rate // 3, seed=18, level=0.5)
    soundfile.write(tmp_path / "variant.wav", variant, rate, subtype="FLOAT")
    state = tmp_path / "session.state"
    play(built, segue, tmp_path / "live", audio, tmp_path / "variant.wav", PLACE, 1, "--state-out", str(state))
    assert str(tmp_path / "variant.wav").encode() in state.read_bytes()

    nobody = SegueStub(welcome=False)
    try:
        host = Host(
            built, tmp_path / "render", audio, nobody.port, "--state-in", str(state), "--state-when", when, rate=rate
        )
        run = host.finish()
    finally:
        nobody.close()
    loads = [line for line in host.log().splitlines() if "play: loaded" in line]
    assert loads and f"-> {rate} Hz)" in loads[-1], loads  # before activation DPF's rate is a guess: loaded again
    a = first_frame(PLACE, START, rate, 97.5)
    assert run.output is not None
    assert np.array_equal(run.output[a : a + len(variant)], variant)
    assert np.array_equal(run.output[:a], audio[:a])


def test_the_status_parameter_shows_armed_recording_and_playing(built: Built, segue: SegueStub, tmp_path) -> None:
    rate = 48000
    audio = noise(rate * 8, seed=19)
    variant = noise(rate // 2, seed=20)
    soundfile.write(tmp_path / "variant.wav", variant, rate, subtype="FLOAT")
    place = 24.0  # bar 9, after the capture of bars 6-7
    run = play(built, segue, tmp_path, audio, tmp_path / "variant.wav", place, 0, "--watch-status", "--blocks",
               "256:256", "--param", f"0:{PARAM['bars']}:2", "--param", f"0:{PARAM['arm']}:1")  # fmt: skip
    changes = [(e["frame"], e["value"]) for e in run.events if e["event"] == "status"]
    assert [value for _, value in changes] == [1, 2, 0, 3, 0]  # armed, recording, idle, playing, idle
    bar6, bar8, bar9 = (first_frame(q, START, rate, 97.5) for q in (15.0, 21.0, place))
    starts = [frame for frame, _ in changes]  # the first frame of the block after which the status changed
    assert starts[1] <= bar6 < starts[1] + 256 and starts[2] <= bar8 < starts[2] + 256
    assert starts[3] <= bar9 < starts[3] + 256
    assert starts[4] - 256 < bar9 + len(variant) <= starts[4]  # idle from the first block with none of it
