"""`segue bridge --midi-clock-in` and `segue doctor` on the fake mido backend (tests/support/fake_midi.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fake_midi
import mido
import pytest
from fake_engine import FakeEngine
from fake_midi import FakeMidi
from osc_helpers import DawSocket

from bridge import cli
from bridge.clock import PPQN
from bridge.daemon import MidiClockIn, midi_ports_check


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MIDO_BACKEND", "fake_midi")
    fake_midi.INPUTS[:] = ["Fake Clock"]
    fake_midi.OUTPUTS[:] = ["Fake Synth"]
    fake_midi.OPENED.clear()
    yield
    fake_midi.INPUTS.clear()
    fake_midi.OUTPUTS.clear()
    fake_midi.OPENED.clear()


def test_midi_clock_in_reports_a_transport_state() -> None:
    midi = FakeMidi()
    midi.names.append("Clock")
    stamps = iter([999.0, 999.0] + [1000.0 + k * 0.5 / PPQN for k in range(PPQN + 1)] + [1000.6, 1010.0])
    clock = MidiClockIn("Clock", opener=midi.opener, lister=midi.lister, now=lambda: next(stamps))
    assert clock.transport().clock_source == "midi-clock:Clock" and clock.transport().tempo_bpm == 0.0
    clock.watcher.step()
    port = midi.opened[0]
    port.inject(mido.Message("start"))
    for _ in range(PPQN):
        port.inject(mido.Message("clock"))
    state = clock.transport()  # read at 1000.6 s: fresh
    assert state.playing and state.tempo_bpm == pytest.approx(120.0) and state.clock_source == "midi-clock:Clock"
    assert clock.transport().clock_source == "midi-clock:Clock (stale)"  # read at 1010 s: no clock for 9 s
    clock.close()
    clock.close()


def test_doctor_lists_midi_ports_or_says_why(fake_backend: None, monkeypatch: pytest.MonkeyPatch) -> None:
    check = midi_ports_check()
    assert check["ok"] is True and "inputs: Fake Clock; outputs: Fake Synth" in check["detail"]
    monkeypatch.setenv("MIDO_BACKEND", "mido.backends.no_such_backend")
    check = midi_ports_check()
    assert check["ok"] is None and "cannot be loaded" in check["detail"]
    monkeypatch.setattr("engine.entrypoints.doctor", lambda: {})
    assert cli.main(["doctor", "--json"]) == 0  # no MIDI is not a failure


def _bridge(tmp_path: Path, argv: list[str], ready: Any) -> int:
    engine = FakeEngine()
    return cli.main(
        ["bridge", "--osc-port", "0", "--out", str(tmp_path), *argv],
        engine_factory=lambda spec, **options: engine,
        bridge_ready=ready,
    )


def test_bridge_follows_midi_clock_into_segue_status(
    fake_backend: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers: list[list[Any]] = []

    def ready(running: cli.BridgeRunning) -> None:
        deadline = time.monotonic() + 5.0
        while not fake_midi.OPENED and time.monotonic() < deadline:
            time.sleep(0.01)
        port = fake_midi.OPENED[0]
        for message in (mido.Message("start"), mido.Message("stop"), mido.Message("songpos", pos=16)):
            port.inject(message)
        daw = DawSocket(running.osc_address)
        try:
            daw.send("/segue/status")
            answers.append(daw.expect("/segue/status", timeout=5))
        finally:
            daw.close()
            running.stop()

    code = _bridge(tmp_path, ["--midi-clock-in", "Fake Clock"], ready)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "following MIDI clock from 'Fake Clock'" in err
    assert answers == [[0.0, 0, 4.0, "midi-clock:Fake Clock"]]
    assert fake_midi.OPENED[0].closed


def test_bridge_runs_on_without_a_midi_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MIDO_BACKEND", "mido.backends.no_such_backend")
    code = _bridge(tmp_path, ["--midi-clock-in", "Ardour Clock"], lambda running: running.stop())
    err = capsys.readouterr().err
    assert code == 0, err
    assert "MIDI clock from 'Ardour Clock' unavailable" in err and "going on without it" in err
    code = _bridge(tmp_path, ["--midi-clock-in", " "], lambda running: running.stop())
    assert code == 2 and "--midi-clock-in needs a port name" in capsys.readouterr().err


def test_doctor_json_has_the_midi_entry(fake_backend: None, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr("engine.entrypoints.doctor", lambda: {})
    assert cli.main(["doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["midi_ports"]["ok"] is True
