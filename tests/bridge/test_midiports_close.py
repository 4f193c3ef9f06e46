"""Closing a MIDI clock input never leaves a Python callback registered while the backend closes its port.

On JACK, rtmidi's ``close_port`` waits for the process cycle while holding the GIL; a callback registered then
would make the JACK thread wait for the GIL in that cycle, and both wait for ever (a CI run hung so, 5 minutes, in
``MidiClockIn.close``). These tests drive a real mido rtmidi ``Input`` whose rtmidi object is a recording stand-in,
so they need no MIDI system.
"""

from __future__ import annotations

import threading
from typing import Any

import mido
import pytest
from mido.backends._parser_queue import ParserQueue
from mido.backends.rtmidi import Input as RtmidiInput

from bridge.midiports import ReconnectingInput, close_input


class RecordingRt:
    """What mido's rtmidi ``Input`` calls on its ``rtmidi.MidiIn``, and whether a Python callback was registered
    when the port was closed."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.python_callback: Any = None
        self.callback_at_close: list[bool] = []

    def cancel_callback(self) -> None:
        self.calls.append("cancel_callback")
        self.python_callback = None

    def set_callback(self, func: Any) -> None:
        self.calls.append("set_callback")
        self.python_callback = func

    def close_port(self) -> None:
        self.calls.append("close_port")
        self.callback_at_close.append(self.python_callback is not None)

    def delete(self) -> None:
        self.calls.append("delete")


class StandInInput(RtmidiInput):  # type: ignore[misc]
    """mido's rtmidi input as mido builds it (callback lock, queue, callback set last), on a :class:`RecordingRt`."""

    def _open(self, callback: Any = None, **_: Any) -> None:
        self.closed = True
        self._callback_lock = threading.RLock()
        self._queue = ParserQueue()
        self._rt = RecordingRt()
        self.closed = False
        self.callback = callback


def test_mido_s_own_close_would_close_the_port_with_a_python_callback_registered() -> None:
    """Why close_input exists: mido 1.3's close swaps the callback for its own queueing wrapper before close_port."""
    port = StandInInput("clock", callback=lambda message: None)
    port.close()
    assert port._rt.callback_at_close == [True]


def test_close_input_cancels_the_callback_for_good_before_it_closes_the_port() -> None:
    port = StandInInput("clock", callback=lambda message: None)
    close_input(port)
    rt = port._rt
    assert rt.callback_at_close == [False]
    assert rt.calls[-3:] == ["cancel_callback", "close_port", "delete"]
    assert port.closed
    calls = list(rt.calls)
    close_input(port)  # twice: nothing more reaches rtmidi
    port.close()
    assert rt.calls == calls


def test_a_reconnecting_clock_input_closes_its_port_that_way(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[StandInInput] = []

    def opener(name: str, callback: Any) -> StandInInput:
        opened.append(StandInInput(name, callback=callback))
        return opened[-1]

    names = ["Ardour Clock"]
    watcher = ReconnectingInput("Ardour Clock", lambda m: None, opener=opener, lister=lambda: list(names))
    watcher.step()
    assert watcher.connected.is_set()
    names.clear()  # the DAW quits: the port is dropped
    watcher.step()
    names.append("Ardour Clock")
    watcher.step()
    watcher.close()
    assert [p._rt.callback_at_close for p in opened] == [[False], [False]]
    assert all(p.closed for p in opened)


def test_close_input_closes_ports_of_other_backends_as_they_close() -> None:
    port = mido.ports.BaseInput("other")
    close_input(port)
    assert port.closed
