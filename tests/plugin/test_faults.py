"""Segue Link under faults: Segue not running, its port taken by something else, a full disk during a capture,
and hostile OSC. The track's audio always passes through untouched. Audio: seeded noise made by the rig."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
from link_rig import PARAM, Built, Host, SegueStub, first_frame, noise
from tmpfs import fill, tmpfs

CAPTURE = ("--param", f"0:{PARAM['bars']}:2", "--param", f"0:{PARAM['arm']}:1", "--pace", "6")


def test_without_segue_the_plugin_passes_audio_says_so_and_still_writes_its_capture(built: Built, tmp_path) -> None:
    busy = SegueStub(welcome=False)  # the port is taken by something that is not Segue: it never answers
    free = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    free.bind(("127.0.0.1", 0))
    nobody = free.getsockname()[1]
    free.close()  # and a port nobody listens on (the plugin's datagrams bounce)
    try:
        rate = 48000
        audio = noise(rate * 6, seed=31)
        hosts = [Host(built, tmp_path / name, audio, port, *CAPTURE, "--linger-ms", "7000")
                 for name, port in (("busy", busy.port), ("nobody", nobody))]  # fmt: skip
        for host in hosts:
            run = host.finish()
            assert run.output is not None and np.array_equal(run.output, audio)
            assert run.param("connected") == 0.0
            log = host.log()
            assert "Segue not running (no answer on 127.0.0.1:" in log
            assert "capture 1 written" in log and len(list(host.link_dir.glob("*.wav"))) == 1
        assert busy.all("/segue/link/hello"), "the plugin kept saying hello"
    finally:
        busy.close()


def test_with_segue_answering_the_plugin_says_it_is_connected(built: Built, segue: SegueStub, tmp_path) -> None:
    host = Host(built, tmp_path, noise(48000), segue.port, "--linger-ms", "300")
    run = host.finish()
    assert run.param("connected") == 1.0
    assert "connected to Segue test" in host.log()
    assert segue.all("/segue/link/bye") == [[segue.all("/segue/link/hello")[0][0]]]


def check_full_disk(host: Host, segue: SegueStub, audio: np.ndarray) -> None:
    run = host.finish()
    assert run.output is not None and np.array_equal(run.output, audio)
    deadline = time.monotonic() + 10
    while "failed" not in host.log():
        assert time.monotonic() < deadline, f"the plugin did not log the failure:\n{host.log()}"
        time.sleep(0.05)
    assert "nothing announced, no file left" in host.log()
    assert segue.all("/segue/region") == [] and segue.all("/segue/region/stems") == []
    assert [p.name for p in host.link_dir.iterdir() if p.name not in ("segue-link.log", "ballast")] == []


def test_a_write_failure_during_a_capture_announces_nothing_and_leaves_no_file(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    rate = 48000
    audio = noise(rate * 6, seed=32)
    # the host limits the size of any file it writes to 300 kB (RLIMIT_FSIZE): 2 bars of stereo float are ~1.4 MB
    host = Host(built, tmp_path, audio, segue.port, *CAPTURE, "--fsize", "300000")
    check_full_disk(host, segue, audio)
    assert "File too large" in host.log()


def test_a_full_disk_during_a_capture_announces_nothing_and_leaves_no_file(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    rate = 48000
    audio = noise(rate * 6, seed=33)
    with tmpfs(tmp_path / "disk", "4m") as disk:
        fill(disk, 400_000)
        host = Host(built, tmp_path / "work", audio, segue.port, *CAPTURE, link_dir=disk)
        check_full_disk(host, segue, audio)
        assert "No space left on device" in host.log()


def test_hostile_osc_is_answered_with_an_error_and_segue_can_still_arm_a_capture(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    rate = 48000
    audio = noise(rate * 8, seed=34)
    go = tmp_path / "go"
    host = Host(built, tmp_path, audio, segue.port, "--wait-file", str(go), "--pace", "6")
    segue.wait_for("/segue/link/hello")
    plugin = segue.sender_of("/segue/link/hello")
    for junk in (b"", b"\x00\x01garbage", b"/segue/link/play\x00\x00\x00\x00,sfi", b"#bundle\x00" + b"\xff" * 40):
        segue.sock.sendto(junk, plugin)
    segue.send(plugin, "/segue/link/nonsense", 1)
    segue.send(plugin, "/segue/link/play", 3, 4, 5)  # wrong types
    errors = segue.wait_for("/segue/link/error", count=2)
    assert all("does not understand" in message for _, message in errors)
    segue.send(plugin, "/segue/link/capture", 1)  # Segue presses Capture: 1 bar
    time.sleep(0.2)  # the arm travels UDP -> worker -> the group's slot, read by the next process()
    go.touch()
    host.finish()
    wav, _, start, length, *_ = segue.wait_for("/segue/region")[0]
    assert (start, length) == (15.0, 3.0)
    from link_rig import read_wav

    a, b = first_frame(15.0, 13.3, rate, 97.5), first_frame(18.0, 13.3, rate, 97.5)
    assert np.array_equal(read_wav(wav)[0], audio[a:b])


@pytest.mark.parametrize("port", ["0", "70000", "nonsense"])
def test_a_bad_port_in_the_environment_falls_back_to_segues_default(built: Built, tmp_path, port: str) -> None:
    host = Host(built, tmp_path, noise(4800), 9750, "--linger-ms", "50", env={"SEGUE_OSC_PORT": port})
    run = host.finish()
    assert run.output is not None
