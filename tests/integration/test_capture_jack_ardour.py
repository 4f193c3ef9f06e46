"""Capture from a real DAW through a real JACK server: headless Ardour's master output, started by its MIDI clock
(tests/support/capture_jack_rig.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from capture_jack_rig import (
    ALIGN_TOLERANCE_FRAMES,
    RATE,
    Tries,
    onsets,
    wire_inputs,
)
from jack_procs import JackServer, wait_until

from bridge.capture.options import TakeOptions
from bridge.capture.take import record_take
from bridge.daemon import MidiClockIn
from bridge.sound_devices import release_audio
from engine.errors import BadInputError

pytestmark = [pytest.mark.integration, pytest.mark.realtime]  # not in `make test`: see the Makefile


def test_capture_from_ardours_master_output(rt_jack_server_factory: Callable[..., JackServer], tmp_path: Path) -> None:
    """A real DAW: headless Ardour plays a click track and sends MIDI clock; Segue records Ardour's master output
    through sounddevice, started by the clock, with Ardour's playback latency (``--latency-frames -2048``, see
    docs/capture.md), and every click of the take sits on its beat; bar clicks (louder) only on bar lines."""
    from ardour_procs import MIDI_CLOCK_OUT, ArdourProcess, need_ardour, new_session
    from daw_peers import OscPeer

    from bridge.adapters.ardour_session import insert_audio_file

    need_ardour()
    bpm, bars = 120, 2
    beat = RATE * 60 // bpm
    session = new_session(tmp_path, "capture", tempo_bpm=bpm)
    clicks = np.zeros(4 * 4 * beat, dtype=np.float32)  # 4 bars of clicks from the session's start
    for k in range(1, 4 * 4):  # not at sample 0: Ardour fades a region in over its first 64 samples
        clicks[k * beat] = 0.8 if k % 4 == 0 else 0.3
    click_file = tmp_path / "clicks.wav"
    sf.write(click_file, clicks, RATE, subtype="FLOAT")
    insert_audio_file(session, click_file, position_samples=0, track_name="Click")

    server = rt_jack_server_factory(1024)
    workdir = tmp_path / "ardour"
    workdir.mkdir()
    ardour = ArdourProcess(session, server, workdir, send_midi_clock=True)
    ardour.start()
    daw: OscPeer | None = None
    clock: MidiClockIn | None = None
    try:
        daw = OscPeer(ardour.osc_address)
        masters = sorted(p for p in server.run("jack_lsp", timeout=5).stdout.splitlines() if "Master/audio_out" in p)
        assert len(masters) == 2, f"Ardour's master outputs not found: {server.run('jack_lsp').stdout}"
        clock = MidiClockIn(MIDI_CLOCK_OUT, retry_s=1.0)
        clock.start()
        assert clock.watcher.connected.wait(10), "Ardour's clock port was not opened"
        observer = clock

        def play() -> None:
            for attempt in range(3):
                daw.send("/transport_play")  # type: ignore[union-attr]
                if wait_until(lambda: observer.input.state().playing, 3, 0.02):
                    return
                print(f"  Ardour did not start rolling (try {attempt + 1}); again")
            raise AssertionError("Ardour's transport did not start")

        result = None
        tries = Tries(server)
        for attempt in tries:
            daw.send("/transport_stop")
            daw.send("/goto_start")
            time.sleep(0.5)
            outcome: dict[str, Any] = {}
            path = tmp_path / f"take-{attempt}.wav"

            def run(path: Path = path, outcome: dict[str, Any] = outcome) -> None:
                try:
                    options = TakeOptions(bars=bars, latency_frames=-2048, wait_start_s=20)
                    outcome["result"] = record_take(clock, path, options)  # type: ignore[arg-type]
                except BaseException as e:
                    outcome["error"] = e

            thread = threading.Thread(target=run, name="capture-take", daemon=True)
            thread.start()
            wire_inputs(server, masters)
            time.sleep(0.3)
            play()
            thread.join(bars * 240 / bpm + 20)
            daw.send("/transport_stop")
            assert not thread.is_alive(), "the take did not finish"
            error = outcome.get("error")
            if error is None:
                result = outcome["result"]
                break
            if isinstance(error, BadInputError) and tries.refused(attempt, str(error)):
                continue
            raise error
        assert result is not None
    finally:
        if clock is not None:
            clock.close()
        if daw is not None:
            daw.close()
        release_audio()
        ardour.stop()

    assert (result.length_bars, result.start_beats, result.tempo_bpm) == (bars, 0.0, bpm)
    assert result.frames == bars * 4 * beat and result.channels == 2
    audio, rate = sf.read(str(result.path), always_2d=True)
    assert rate == RATE and audio.shape == (bars * 4 * beat, 2)
    level = np.abs(audio).max(axis=1)
    found = onsets(level.astype(np.float64), threshold=0.05, gap=beat // 2)
    found = [f + 1 for f in found]  # _onsets steps back a frame for jack_metro's sine; these clicks are impulses
    expected = [k * beat for k in range(1, bars * 4)]
    offsets = []
    for k, want in enumerate(expected, start=1):
        near = [f for f in found if abs(f - want) < beat // 4]
        assert len(near) == 1, f"the click of beat {k} (frame {want}) not found once: {found}"
        offsets.append(near[0] - want)
        peak = level[near[0] : near[0] + 4].max()
        loud = k % 4 == 0
        assert (peak > 0.4) == loud, f"beat {k}: peak {peak:.2f}; bar clicks should fall on bar lines only"
    print(f"  Ardour's master captured: clicks off their beats by {min(offsets)}..{max(offsets)} frames")
    grid = [*expected, bars * 4 * beat]  # a click a few frames before the end is the next bar's, already begun
    assert not [f for f in found if min(abs(f - w) for w in grid) >= beat // 4], f"stray clicks: {found}"
    assert max(abs(o) for o in offsets) <= ALIGN_TOLERANCE_FRAMES, offsets
