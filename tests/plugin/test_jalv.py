"""Segue Link's LV2 build in jalv (Debian's LV2 host on JACK), with JACK transport rolling: a JACK dummy server,
``jack_transport`` as timebase master at 97.5 BPM (4/4, its fixed meter), jalv hosting the plugin. Segue's side is
the rig's UDP stub. The plugin must follow the transport (tempo, meter, position, play state) and capture on its
bar grid; jalv's inputs are left unconnected, so the captured audio is silence (its alignment is checked through
the positions and the frame counts, exact at this constant tempo from frame 0)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from jack_procs import clean_stale_jack_servers, need, next_server_name, stop_process, wait_until
from link_rig import Built, SegueStub, read_wav

RATE = 48000
BPM = 97.5


@pytest.fixture
def jack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A JACK dummy server (not realtime: nothing here is timed) and jack_transport as timebase master."""
    need("jackd", "jack_wait", "jack_transport", "jalv")
    clean_stale_jack_servers()
    name = next_server_name()
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1")
    with tempfile.TemporaryFile() as log:
        jackd = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", str(RATE), "-p", "1024"],
                                 stdout=log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
        try:
            waited = subprocess.run(["jack_wait", "-s", name, "-w", "-t", "10"], env=env, capture_output=True,
                                    timeout=15, check=False)  # fmt: skip
            if waited.returncode != 0 or jackd.poll() is not None:
                log.seek(0)
                pytest.fail(f"the JACK dummy server did not start:\n{log.read().decode(errors='replace')[-2000:]}")
            yield env
        finally:
            stop_process(jackd)


class Transport:
    """``jack_transport`` kept open as timebase master (it gives JACK the bar/beat/tempo that jalv passes on)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(["jack_transport"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, text=True, env=env)  # fmt: skip

    def __call__(self, *commands: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n".join(commands) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self("quit")
        stop_process(self.proc)  # type: ignore[arg-type]


def test_jalv_hosts_the_lv2_which_follows_jack_transport_and_captures_on_its_bar_grid(
    built: Built, segue: SegueStub, jack_env: dict[str, str], tmp_path: Path
) -> None:
    lv2_path = tmp_path / "lv2"
    lv2_path.mkdir()
    (lv2_path / "segue-link.lv2").symlink_to(built.lv2)
    env = dict(jack_env, LV2_PATH=str(lv2_path), SEGUE_OSC_PORT=str(segue.port), SEGUE_LINK_DIR=str(tmp_path / "link"))
    transport = Transport(env)
    transport("master", f"tempo {BPM}", "locate 0")
    jalv = subprocess.Popen(["jalv", "-n", "segue-link", "urn:segue:link"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)  # fmt: skip
    try:
        instance = segue.wait_for("/segue/link/hello")[0]
        assert instance[1:] == ["Segue Link 1", "default", RATE, "0.1.0"]

        segue.wait_for("/segue/link/transport")  # the plugin runs and has seen JACK's transport
        # stopped, located to frame 480000: 10 s at 97.5 BPM = 16.25 quarter notes (bar 5, beat 1.25)
        transport("locate 480000")

        def located_message() -> bool:
            return any(abs(m[4] - 16.25) < 1e-9 and m[5] == 0 for m in segue.all("/segue/link/transport"))

        assert wait_until(located_message, 10), segue.all("/segue/link/transport")
        located = next(m for m in segue.all("/segue/link/transport") if abs(m[4] - 16.25) < 1e-9)
        assert located[1:4] == [BPM, 4, 4]

        transport("locate 0", "play")
        assert wait_until(lambda: len([m for m in segue.all("/segue/link/transport") if m[5] == 1]) >= 5, 15)
        rolling = [m[4] for m in segue.all("/segue/link/transport") if m[5] == 1]
        # the position moves on while rolling (two sends 100 ms apart may see the same block on a loaded machine)
        assert all(b >= a for a, b in zip(rolling, rolling[1:], strict=False)) and rolling[-1] > rolling[0], rolling

        segue.send(segue.sender_of("/segue/link/hello"), "/segue/link/capture", 1)
        wav, midi, start, length, tempo, num, den, track = segue.wait_for("/segue/region", timeout=30)[0]
        assert start % 4 == 0 and start > 0 and length == 4.0  # a whole 4/4 bar, from a bar line
        assert (tempo, num, den, track, midi) == (BPM, 4, 4, "Segue Link 1", "")
        captured, rate = read_wav(wav)
        first = int(np.ceil(start * 60 / BPM * RATE - 1e-7))  # the bar's first sample on JACK's timeline
        last = int(np.ceil((start + length) * 60 / BPM * RATE - 1e-7))
        assert rate == RATE and captured.shape == (last - first, 2)
        assert not captured.any(), "jalv's unconnected inputs are silent"
        log = (tmp_path / "link" / "segue-link.log").read_text()
        assert "jumped" not in log, log
    finally:
        transport.close()
        stop_process(jalv)  # type: ignore[arg-type]
    assert wait_until(lambda: bool(segue.all("/segue/link/bye")), 5)
