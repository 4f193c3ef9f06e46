"""In-memory MIDI ports, and a mido backend made of them: ``MIDO_BACKEND=fake_midi`` (tests/support is on sys.path).

Ports subclass mido's ``BaseInput``/``BaseOutput`` as mido's own tests do; :func:`inject` plays the part of the
backend thread that calls an input's callback.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import mido
import mido.ports

INPUTS: list[str] = []  # the port names the fake backend lists (tests edit it)
OUTPUTS: list[str] = []
OPENED: list[FakeInput] = []


class FakeInput(mido.ports.BaseInput):  # type: ignore[misc]
    """An input port whose messages come from :meth:`inject`, delivered to the callback as rtmidi would."""

    def _open(self, callback: Any = None, **kwargs: Any) -> None:
        self.callback = callback
        self.queue: queue.Queue[mido.Message] = queue.Queue()

    def inject(self, message: mido.Message) -> None:
        if self.closed:
            return
        if self.callback is not None:
            self.callback(message)
        else:
            self.queue.put(message)


class FakeOutput(mido.ports.BaseOutput):  # type: ignore[misc]
    def _open(self, **kwargs: Any) -> None:
        self.sent: list[mido.Message] = []
        self.enough = threading.Event()

    def _send(self, message: mido.Message) -> None:
        self.sent.append(message)
        if sum(m.type == "clock" for m in self.sent) >= 5:
            self.enough.set()


class FakeMidi:
    """A backend as the port layer sees it: listed names, an opener, and the ports opened so far."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.opened: list[FakeInput] = []

    def lister(self) -> list[str]:
        return list(self.names)

    def opener(self, name: str, callback: Callable[[mido.Message], None]) -> FakeInput:
        if name not in self.names:
            raise OSError(f"unknown port {name!r}")
        port = FakeInput(name, callback=callback)
        self.opened.append(port)
        return port


# -- the mido backend interface (get_devices, Input, Output) -----------------------------------------------


def get_devices(**kwargs: Any) -> list[dict[str, Any]]:
    return [{"name": n, "is_input": True, "is_output": False} for n in INPUTS] + [
        {"name": n, "is_input": False, "is_output": True} for n in OUTPUTS
    ]


def Input(name: str | None = None, **kwargs: Any) -> FakeInput:  # noqa: N802 (mido's backend interface)
    if name not in INPUTS:
        raise OSError(f"unknown port {name!r}")
    kwargs.pop("virtual", None)
    port = FakeInput(name, **kwargs)
    OPENED.append(port)
    return port


def Output(name: str | None = None, **kwargs: Any) -> FakeOutput:  # noqa: N802
    kwargs.pop("virtual", None)
    kwargs.pop("autoreset", None)
    return FakeOutput(name)
