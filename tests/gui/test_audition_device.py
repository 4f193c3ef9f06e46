"""The audition's sound output under a PortAudio call that blocks forever (a fake sounddevice): Play fails with
"the audio device stopped answering" instead of freezing the player."""

from __future__ import annotations

import sys
import threading
from types import SimpleNamespace

import pytest

from bridge import sound_devices
from gui.core.audition import AuditionError, SoundDeviceOutput


def test_an_output_that_never_opens_fails_play_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()

    def blocking_stream(**kwargs: object) -> None:
        gate.wait()  # PortAudio inside Pa_OpenStream, never returning

    monkeypatch.setitem(sys.modules, "sounddevice", SimpleNamespace(OutputStream=blocking_stream))
    monkeypatch.setattr(sound_devices, "_STUCK", [])
    monkeypatch.setattr(sound_devices, "PORTAUDIO_TIMEOUT_S", 0.2)
    raised: list[BaseException] = []

    def play() -> None:
        try:
            SoundDeviceOutput().open(48_000, lambda frames: None)  # type: ignore[arg-type,return-value]
        except BaseException as e:
            raised.append(e)

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    thread.join(30)
    gate.set()
    assert not thread.is_alive(), "opening the output never came back"
    (error,) = raised
    assert isinstance(error, AuditionError)
    assert "the audio device stopped answering: opening the sound output" in str(error)
