"""``segue bridge`` as a real process with the shipped MIDI model, driven by a plain OSC client that plays the DAW.

This is the bridge's acceptance run: ``/segue/region`` + ``/segue/generate`` from an ordinary UDP socket bring
``/segue/job/started``, real progress from the engine, ``/segue/job/done`` and one ``/segue/place`` per placed
file, with files that exist, at the bar after the region; 3000 malformed datagrams later the same process still
answers ``/segue/ping``; SIGINT stops it cleanly. Loopback only, every wait bounded.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mido
import pytest
from osc_helpers import DawSocket

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
REGION = REPO / "examples" / "regions" / "pop_100bpm_4-4.mid"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _typed_error_seen(daw: DawSocket) -> bool:
    return any(
        a == "/segue/error" and "(i:bars) must be a whole number, got a string" in args[0] for a, args in daw.received
    )


@pytest.fixture
def bridge_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], tuple[str, int], Path]]:
    port = _free_udp_port()
    out = tmp_path / "jobs"
    argv = [sys.executable, "-m", "bridge.cli", "bridge", "--osc-port", str(port), "--out", str(out), "--place", "all"]
    log = open(tmp_path / "bridge.log", "w+", encoding="utf-8")  # a file, not a pipe: a full pipe would block it
    proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while "listening for OSC" not in (tmp_path / "bridge.log").read_text(encoding="utf-8"):
            assert proc.poll() is None, f"segue bridge exited: {(tmp_path / 'bridge.log').read_text()}"
            assert time.monotonic() < deadline, "segue bridge did not start listening within 60 s"
            time.sleep(0.1)
        yield proc, ("127.0.0.1", port), out
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


def test_plain_osc_client_gets_progress_done_and_placements(
    bridge_process: tuple[subprocess.Popen[str], tuple[str, int], Path],
) -> None:
    proc, address, out = bridge_process
    daw = DawSocket(address)
    try:
        assert daw.ping()[0]  # the version string
        # the region: 4 bars of 4/4 at 100 BPM starting on bar 5 of the DAW's timeline (beat 16)
        daw.send("/segue/region", "", str(REGION), 16.0, 16.0, 100.0, 4, 4, "Keys")
        daw.send("/segue/generate", "continue", 2, 2)
        job_id = daw.expect("/segue/job/started", timeout=30)[0]
        done = daw.expect("/segue/job/done", timeout=180)
        assert done[0] == job_id
        fractions = [args[1] for a, args in daw.received if a == "/segue/job/progress" and args[0] == job_id]
        assert fractions, "no progress came"
        assert fractions == sorted(fractions) and 0.0 <= fractions[0] and fractions[-1] <= 1.0
        assert len(set(fractions)) >= 2, f"progress did not move: {fractions}"

        job = json.loads(Path(done[1]).read_text(encoding="utf-8"))
        assert job["status"] == "done" and len(job["variants"]) == 2
        assert job["place_at"]["beats"] == pytest.approx(16.0)  # after the region's 4 bars...
        assert job["place_at"]["timeline_beats"] == pytest.approx(32.0)  # ...which is bar 9 on the DAW's timeline
        # placements: --place all -> every variant's files, each on its own message
        time.sleep(1.0)
        try:
            daw.expect("/segue/none", timeout=1.0)  # collect what is still on its way
        except AssertionError:
            pass
        places = [args for a, args in daw.received if a == "/segue/place"]
        assert places, f"no /segue/place; got {[a for a, _ in daw.received]}"
        kinds = {kind for *_, kind in places}
        assert kinds == {"audio", "midi"}
        for path, beats, seconds, track, _kind in places:
            assert Path(path).is_file(), path
            assert beats == pytest.approx(32.0) and seconds == pytest.approx(32.0 * 60.0 / 100.0)
            assert track.startswith("Keys")
            name = Path(path).name  # <track>_<job>_vNN_<part>, the track's name made file-safe
            assert name.startswith(f"keys_{job_id.rsplit('-', 1)[-1]}_v0"), name
        mid = next(Path(p) for p, *_, kind in places if kind == "midi")
        tempos = [m.tempo for m in mido.MidiFile(str(mid)).tracks[0] if m.type == "set_tempo"]
        assert tempos and mido.tempo2bpm(tempos[0]) == pytest.approx(100.0, abs=0.01)

        # 3000 malformed datagrams, then the bridge still answers
        rng = random.Random(3)
        for _ in range(30):
            for _ in range(100):
                head = rng.choice([b"", b"/segue/region\x00\x00\x00,", b"/segue/generate\x00,sii\x00", b"#bundle\x00"])
                daw.send_raw(head + rng.randbytes(rng.randint(1, 800)))
            assert daw.ping()[0]  # paced by the replies, so that the bridge's socket buffer never overflows
        daw.send("/segue/generate", "continue", "eight", 4)  # a wrong type: answered, not fatal
        for _ in range(100):  # bounded: the typed error comes among the last replies
            if _typed_error_seen(daw):
                break
            daw.expect("/segue/error", timeout=10)
        assert _typed_error_seen(daw)
        decode_errors = [args for a, args in daw.received if a == "/segue/error" and "could not decode" in args[0]]
        assert len(decode_errors) > 300  # the garbage was answered too (UDP may drop some)
        assert daw.ping()[0]
        assert proc.poll() is None
        assert (out / job_id / "job.json").is_file()
    finally:
        daw.close()
