"""Segue Link's audio thread never allocates, locks, or does file or socket I/O.

The CLAP test host defines malloc/calloc/realloc/free/memalign (and pthread mutex/cond, write, send/sendto/recvfrom,
fopen/fwrite) itself and counts the calls made on its processing thread while plugin->process() runs. The run
below captures (with MIDI notes), plays a variant, changes tempo, jumps and stops, over hundreds of blocks of
1..4096 frames; the test checks that all of that really happened, so the zero counts mean something."""

from __future__ import annotations

import time

import numpy as np
import soundfile
from link_rig import PARAM, Built, Host, SegueStub, first_frame, noise


def test_process_makes_no_allocation_lock_or_io_while_capturing_and_playing_across_many_blocks(
    built: Built, segue: SegueStub, tmp_path
) -> None:
    rate = 48000
    audio = noise(rate * 20, seed=21)
    variant = noise(rate, seed=22, level=0.5)
    soundfile.write(tmp_path / "variant.wav", variant, rate, subtype="FLOAT")
    beat = rate * 60 / 97.5
    a = first_frame(15.0, 13.3, rate, 97.5)
    notes = [f"{a + int(k * beat / 2)}:{144 if k % 2 == 0 else 128}:{60 + k % 12}:{100 if k % 2 == 0 else 0}"
             for k in range(24)]  # fmt: skip
    args = ["--count", "--selftest", "--blocks", "1:4096", "--seed", "11", "--pace", "8", "--instances", "2"]
    args += ["--param", f"0:{PARAM['bars']}:2", "--param", f"0:{PARAM['arm']}:1", "--param", f"{rate * 9}:0:0"]
    args += [
        "--param",
        f"{rate * 10}:{PARAM['arm']}:1",
        "--param",
        f"0:{PARAM['mix']}:0.7",
        "--param",
        f"{rate * 16}:{PARAM['play']}:0",
    ]
    args += ["--tempo", f"{rate * 7}:123.25", "--jump", f"{rate * 12}:40", "--stop", str(rate * 18)]
    for note in notes:
        args += ["--note", note]
    go = tmp_path / "go"
    host = Host(built, tmp_path, audio, segue.port, "--wait-file", str(go), *args, rate=rate)
    segue.wait_for("/segue/link/hello", count=2)
    senders = {sender for address, _, sender in segue.messages if address == "/segue/link/hello"}
    for sender in senders:
        segue.send(sender, "/segue/link/play", str(tmp_path / "variant.wav"), 16.5, 0)
    deadline = time.monotonic() + 20
    while len(segue.all("/segue/link/loaded")) < 2:
        assert time.monotonic() < deadline, "the variant was not loaded"
        time.sleep(0.01)
    go.touch()
    run = host.finish(timeout=180)
    processed = run.event("processed")
    assert processed["blocks"] > 400  # ~470 host cycles of 1..4096 frames, two instances: ~940 process() calls
    assert run.event("processed")["setup_allocs"] > 0, "the counter sees the plugin's own allocations"
    assert processed["allocs"] == 1 and processed["frees"] == 1, "only the host's self-test malloc/free"
    assert processed["locks"] == 0 and processed["io"] == 0
    # what ran: two captures of the group (the second after the tempo change), MIDI written, the variant mixed in
    regions = segue.wait_for("/segue/region/stems", count=2)
    assert [(r[2], r[4]) for r in regions] == [(15.0, 97.5), (42.0, 123.25)]  # the 2nd restarted after the jump
    assert any(path.endswith(".mid") for path in map(str, tmp_path.glob("link/*.mid")))
    out = run.output
    assert out is not None
    v = first_frame(16.5, 13.3, rate, 97.5)
    assert np.array_equal(out[v : v + rate], audio[v : v + rate] + np.float32(0.7) * variant)
