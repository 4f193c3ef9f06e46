"""PortAudio calls under a watchdog: a call that blocks forever (a fake backend) never blocks a take, its cancel or
`segue doctor`; the caller hears "the audio device stopped answering: ..."."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bridge import sound_devices
from bridge.capture.controller import CaptureController, CaptureFailed
from bridge.capture.options import TakeOptions, TakeRuntime
from bridge.capture.take import record_take
from bridge.sound_devices import DeviceNotAnsweringError, audio_inputs_check, input_devices, watched
from engine.api import CancelToken
from engine.errors import CancelledError

BOUND_S = 30.0  # generous: these tests show that an answer comes at all, not how fast


@pytest.fixture
def forever(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """A call that blocks until the test ends (then it is let go, so that no thread outlives the test)."""
    monkeypatch.setattr(sound_devices, "_STUCK", [])
    gate = threading.Event()
    yield lambda: gate.wait() and None
    gate.set()


class Clock:
    """A MIDI clock input that is connected and never ticks."""

    port_name = "fake clock"
    source = "midi"
    connected = True

    def add_tap(self, tap: Any) -> None:
        pass

    def remove_tap(self, tap: Any) -> None:
        pass


class BlockingRecorder:
    """A recorder whose ``start`` blocks forever, as PortAudio did when JACK had dropped its client."""

    device_name = "fake"
    sample_rate_hz = 48_000

    def __init__(self, block: Callable[[], None]) -> None:
        self.block = block
        self.closed = False

    def start(self) -> None:
        self.block()

    def pump(self, sink: Any) -> int:
        return 0

    def close(self, sink: Any = None) -> None:
        self.closed = True


def _in_thread(call: Callable[[], Any]) -> list[BaseException]:
    """Run ``call`` on a thread; wait for it (bounded); return what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as e:
            raised.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert not thread.is_alive(), "the call never came back"
    return raised


def test_a_watched_call_passes_its_result_and_its_error_on() -> None:
    assert watched("adding", lambda: 1 + 1) == 2
    with pytest.raises(ZeroDivisionError):
        watched("dividing", lambda: 1 / 0)


def test_a_call_that_blocks_forever_is_abandoned_with_a_clear_message(forever: Callable[[], None]) -> None:
    (error,) = _in_thread(lambda: watched("starting the audio input 'x'", forever, timeout_s=0.2))
    assert isinstance(error, DeviceNotAnsweringError)
    assert str(error).startswith("the audio device stopped answering: starting the audio input 'x' did not return")
    assert sound_devices._STUCK  # PortAudio is not shut down under a call that never returned


def test_listing_devices_that_never_answer_does_not_hang_doctor(
    forever: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = SimpleNamespace(query_hostapis=forever, query_devices=forever)
    monkeypatch.setattr(sound_devices, "_sounddevice", lambda: fake)
    monkeypatch.setattr(sound_devices, "PORTAUDIO_TIMEOUT_S", 0.2)
    (error,) = _in_thread(input_devices)
    assert "the audio device stopped answering: listing the audio devices" in str(error)
    checks: list[dict[str, Any]] = []
    assert _in_thread(lambda: checks.append(audio_inputs_check())) == []
    assert checks[0]["ok"] is None and "stopped answering" in checks[0]["detail"]


def test_cancel_is_answered_while_opening_the_input_blocks_forever(forever: Callable[[], None], tmp_path: Path) -> None:
    cancel = CancelToken()
    opening = threading.Event()

    def open_recorder(options: TakeOptions) -> Any:
        opening.set()
        forever()

    def take() -> None:
        record_take(
            Clock(),  # type: ignore[arg-type]
            tmp_path / "take.wav",
            TakeOptions(realtime=False),
            cancel=cancel,
            runtime=TakeRuntime(open_recorder=open_recorder),
        )

    def cancel_when_opening() -> None:
        opening.wait(BOUND_S)
        cancel.cancel()

    threading.Thread(target=cancel_when_opening, daemon=True).start()
    (error,) = _in_thread(take)
    assert isinstance(error, CancelledError)
    assert not (tmp_path / "take.wav").exists()


def test_a_start_that_blocks_forever_fails_the_take_and_the_stream_is_not_touched_again(
    forever: Callable[[], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bridge.sound_devices.PORTAUDIO_TIMEOUT_S", 0.2)
    recorder = BlockingRecorder(forever)

    def take() -> None:
        record_take(
            Clock(),  # type: ignore[arg-type]
            tmp_path / "take.wav",
            TakeOptions(realtime=False),
            runtime=TakeRuntime(open_recorder=lambda o: recorder),  # type: ignore[arg-type,return-value]
        )

    (error,) = _in_thread(take)
    assert isinstance(error, DeviceNotAnsweringError)
    assert "the audio device stopped answering: starting the audio input 'fake'" in str(error)
    assert not recorder.closed  # PortAudio is still inside start(): closing would block too


def test_the_bridge_answers_a_cancel_while_the_device_blocks_forever(
    forever: Callable[[], None], tmp_path: Path
) -> None:
    events: list[Any] = []
    failed = threading.Event()
    controller = CaptureController(
        Clock(),  # type: ignore[arg-type]
        tmp_path / "captures",
        TakeOptions(realtime=False),
        open_recorder=lambda options: BlockingRecorder(forever),
    )

    def listen(event: Any) -> None:
        events.append(event)
        if isinstance(event, CaptureFailed):
            failed.set()

    controller.add_listener(listen)
    controller.arm(1)
    assert controller.cancel()
    assert failed.wait(BOUND_S), f"no answer to the cancel; events: {events}"
    assert isinstance(events[-1], CaptureFailed) and events[-1].cancelled
    controller.close()
    assert not controller.armed
