"""BridgeService without OSC: the queue, cancellation, placement, listeners."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fake_engine import FakeEngine, write_midi_region

from bridge.events import (
    BridgeEvent,
    DawRegion,
    JobDone,
    JobFailed,
    JobStarted,
    Placement,
    RequestFailed,
    TransportState,
)
from bridge.jobs import load_job
from bridge.service import BridgeService
from engine.api import Meter
from engine.errors import BadInputError


class Events:
    def __init__(self) -> None:
        self.items: list[BridgeEvent] = []
        self.cond = threading.Condition()

    def __call__(self, event: BridgeEvent) -> None:
        with self.cond:
            self.items.append(event)
            self.cond.notify_all()

    def wait(self, kind: type, count: int = 1, timeout: float = 5.0) -> list[BridgeEvent]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.of(kind)) >= count, timeout)
        assert ok, f"no {kind.__name__} in {self.items}"
        return self.of(kind)

    def of(self, kind: type) -> list[BridgeEvent]:
        return [e for e in self.items if isinstance(e, kind)]


def make(tmp_path: Path, engine: FakeEngine | None = None) -> tuple[BridgeService, Events, DawRegion]:
    midi = write_midi_region(tmp_path / "region.mid").resolve()
    service = BridgeService(engine or FakeEngine(), tmp_path / "out")
    events = Events()
    service.add_listener(lambda event: (_ for _ in ()).throw(RuntimeError("a broken listener")))
    service.add_listener(events)
    service.start()
    region = DawRegion(None, midi, 32.0, 8.0, 120.0, Meter(4, 4), "Piano")
    service.set_region(region)
    return service, events, region


def test_jobs_run_one_at_a_time_in_order(tmp_path: Path) -> None:
    service, events, _ = make(tmp_path)
    try:
        service.generate("continue", 1, 1, origin=("127.0.0.1", 1))
        service.generate("continue", 2, 1, origin=("127.0.0.1", 2))
        done = events.wait(JobDone, 2)
    finally:
        service.close()
    kinds = [type(e).__name__ for e in events.items if not isinstance(e, Placement)]
    assert kinds == ["JobStarted", "JobProgress", "JobDone"] * 2  # the broken listener did not stop anything
    assert [e.origin for e in done] == [("127.0.0.1", 1), ("127.0.0.1", 2)]
    placement = events.of(Placement)[0]
    assert isinstance(placement, Placement)
    assert (placement.position_beats, placement.position_seconds, placement.kind) == (40.0, 20.0, "audio")


def test_close_cancels_the_running_job(tmp_path: Path) -> None:
    engine = FakeEngine(hold_at=1)
    service, events, _ = make(tmp_path, engine)
    service.generate("continue", 1, 2)
    (started,) = events.wait(JobStarted)
    assert isinstance(started, JobStarted) and engine.holding.wait(5)
    assert service.running_jobs == (started.job_id,)
    service.close()
    service.close()
    (failed,) = events.of(JobFailed)
    assert isinstance(failed, JobFailed) and failed.status == "cancelled"
    assert load_job(started.job_dir).status == "cancelled"
    with pytest.raises(BadInputError, match="not running"):
        service.generate("continue", 1, 1)


def test_a_vanished_region_file_is_reported(tmp_path: Path) -> None:
    service, events, region = make(tmp_path)
    try:
        assert region.midi_path is not None
        region.midi_path.unlink()
        service.generate("continue", 1, 1)
        (failed,) = events.wait(RequestFailed)
    finally:
        service.close()
    assert isinstance(failed, RequestFailed) and "region.mid" in failed.message


def test_transport_provider_and_errors(tmp_path: Path) -> None:
    service, _, _ = make(tmp_path)
    service.close()
    assert service.transport() == TransportState(120.0, False, 0.0, "none")
    playing = TransportState(97.5, True, 12.0, "midi-clock")
    assert BridgeService(FakeEngine(), tmp_path, transport=lambda: playing).transport() == playing
    with pytest.raises(BadInputError, match="no running job 'nope'"):
        service.cancel("nope")
    with pytest.raises(BadInputError, match="place must be one of first, all, none"):
        BridgeService(FakeEngine(), tmp_path, place="some")  # type: ignore[arg-type]
