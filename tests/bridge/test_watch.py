"""The watched folder (``segue bridge --watch DIR``): requests in, one JSON per placed file out, refusals explained."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fake_engine import FakeEngine, write_midi_region, write_wav

from bridge.service import BridgeService
from bridge.watch import WatchFolder, request_messages
from engine.errors import BadInputError


def _wait(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


@pytest.fixture
def watch(tmp_path: Path):  # type: ignore[no-untyped-def]
    service = BridgeService(FakeEngine(), tmp_path / "jobs", place="all")
    service.start()
    folder = WatchFolder(service, tmp_path / "watch", poll_s=0.05)
    folder.start()
    yield folder
    folder.close()
    service.close()


def _drop(folder: WatchFolder, name: str, request: object) -> Path:
    tmp = folder.requests / f"{name}.tmp"
    tmp.write_text(json.dumps(request), encoding="utf-8")
    target = folder.requests / name
    tmp.rename(target)
    return target


def test_a_request_becomes_a_job_and_every_placed_file_a_json(watch: WatchFolder, tmp_path: Path) -> None:
    midi = write_midi_region(tmp_path / "region.mid").resolve()
    request = {
        "segue": 1,
        "midi_path": str(midi),
        "start_beats": 16.0,
        "length_beats": 8.0,
        "tempo_bpm": 120.0,
        "meter_num": 4,
        "meter_den": 4,
        "track": "Piano",
        "generate": {"mode": "continue", "bars": 2, "variants": 2},
    }
    _drop(watch, "0001-piano.json", request)
    assert _wait(lambda: len(list(watch.placed.glob("*.json"))) == 4), list(watch.placed.iterdir())
    assert (watch.requests / "done" / "0001-piano.json").is_file()
    assert not (watch.requests / "0001-piano.json").exists()
    placed = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(watch.placed.glob("*.json"))]
    assert [(p["variant_id"], p["kind"]) for p in placed] == [
        ("v01", "audio"),
        ("v01", "midi"),
        ("v02", "audio"),
        ("v02", "midi"),
    ]
    for record in placed:
        assert Path(record["file_path"]).is_file()
        assert record["position_beats"] == pytest.approx(24.0)  # the bar after the region (16 + 8 beats)
        assert record["position_seconds"] == pytest.approx(12.0)
        assert record["track_name"].startswith("Piano (Segue v0")
    assert _wait(lambda: json.loads((watch.folder / "status.json").read_text())["event"] == "done")
    assert not list(watch.placed.glob(".*.tmp"))  # temp files renamed, none left
    assert sorted(p.name for p in watch.placed.glob("*.json")) == [f"00000{n}.json" for n in (1, 2, 3, 4)]


def test_an_accompany_request_with_parts_lands_at_the_region_start(watch: WatchFolder, tmp_path: Path) -> None:
    midi = write_midi_region(tmp_path / "melody.mid").resolve()
    generate = {"mode": "accompany", "bars": 2, "variants": 1, "parts": "bass", "output": "midi"}
    request = {"midi_path": str(midi), "start_beats": 16, "length_beats": 8, "tempo_bpm": 120, "generate": generate}
    _drop(watch, "acc.json", request)
    assert _wait(lambda: len(list(watch.placed.glob("*.json"))) == 2), list(watch.placed.iterdir())
    placed = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(watch.placed.glob("*.json"))]
    assert [(p["kind"], p["position_beats"], p["position_seconds"]) for p in placed] == [
        ("audio", 16.0, 8.0),
        ("midi", 16.0, 8.0),
    ]
    messages = request_messages(request)
    assert messages[1] == (
        "/segue/generate",
        [("s", "accompany"), ("i", 2), ("i", 1), ("s", "bass"), ("s", "midi")],
    )


def test_placed_numbers_go_on_after_the_highest_one_there(watch: WatchFolder, tmp_path: Path) -> None:
    (watch.placed / "done" / "000007.json").write_text("{}")
    (watch.placed / "000009.json").write_text("{}")  # not imported yet: kept as it is
    midi = write_midi_region(tmp_path / "region.mid").resolve()
    request = {
        "midi_path": str(midi),
        "start_beats": 0,
        "length_beats": 8,
        "tempo_bpm": 120,
        "generate": {"mode": "continue", "bars": 1, "variants": 1},
    }
    _drop(watch, "r.json", request)
    assert _wait(lambda: (watch.placed / "000011.json").is_file())
    assert json.loads((watch.placed / "000010.json").read_text())["kind"] == "audio"
    assert json.loads((watch.placed / "000011.json").read_text())["kind"] == "midi"
    assert (watch.placed / "000009.json").read_text() == "{}"


def test_a_region_without_generate_only_sets_the_region(watch: WatchFolder, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "vocal.wav", 2.0).resolve()
    _drop(watch, "a.json", {"audio_path": str(wav), "start_beats": 0, "length_beats": 4, "tempo_bpm": 120})
    assert _wait(lambda: (watch.requests / "done" / "a.json").is_file())
    region = watch.service.region
    assert region is not None and region.audio_path == wav and region.meter.numerator == 4


@pytest.mark.parametrize(
    ("request_text", "says"),
    [
        ("{not json", "Expecting property name"),
        ('{"midi_path": "/nowhere.mid", "start_beats": 0, "length_beats": 4, "tempo_bpm": 120}', "nowhere.mid"),
        (
            '{"start_beats": 0, "length_beats": 4, "tempo_bpm": 5, "midi_path": "MIDI"}',
            "tempo must be between 10 and 400 BPM",
        ),
        ('{"start_beats": 0, "length_beats": 4}', "'tempo_bpm' is missing"),
        ('{"start_beats": "zero", "length_beats": 4, "tempo_bpm": 120, "midi_path": "MIDI"}', "must be a number"),
        ('{"tempo": 120}', "unknown field(s) tempo"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_a_bad_request_is_moved_aside_with_the_reason(
    watch: WatchFolder, tmp_path: Path, request_text: str, says: str
) -> None:
    midi = write_midi_region(tmp_path / "region.mid").resolve()
    (watch.requests / "bad.json").write_text(request_text.replace("MIDI", str(midi)), encoding="utf-8")
    error = watch.requests / "failed" / "bad.json.error.txt"
    assert _wait(error.is_file)
    assert says in error.read_text(encoding="utf-8")
    assert (watch.requests / "failed" / "bad.json").is_file()
    assert json.loads((watch.folder / "status.json").read_text())["event"] == "error"
    assert watch.service.region is None


def test_a_bad_generate_after_a_good_region_is_refused(watch: WatchFolder, tmp_path: Path) -> None:
    midi = write_midi_region(tmp_path / "region.mid").resolve()
    request = {
        "midi_path": str(midi),
        "start_beats": 0,
        "length_beats": 8,
        "tempo_bpm": 120,
        "generate": {"mode": "sideways", "bars": 2, "variants": 1},
    }
    _drop(watch, "g.json", request)
    error = watch.requests / "failed" / "g.json.error.txt"
    assert _wait(error.is_file)
    assert "mode must be 'continue' or 'accompany'" in error.read_text()


def test_names_are_never_reused(watch: WatchFolder, tmp_path: Path) -> None:
    (watch.requests / "done" / "same.json").write_text("{}")
    wav = write_wav(tmp_path / "v.wav", 1.0).resolve()
    _drop(watch, "same.json", {"audio_path": str(wav), "start_beats": 0, "length_beats": 2, "tempo_bpm": 120})
    assert _wait(lambda: (watch.requests / "done" / "same-2.json").is_file())
    assert (watch.requests / "done" / "same.json").read_text() == "{}"


def test_request_messages_are_segue_osc() -> None:
    messages = request_messages({"midi_path": "/a.mid", "start_beats": 1, "length_beats": 4.0, "tempo_bpm": 90})
    assert messages == [
        (
            "/segue/region",
            [("s", ""), ("s", "/a.mid"), ("f", 1.0), ("f", 4.0), ("f", 90.0), ("i", 4), ("i", 4), ("s", "")],
        )
    ]
    with pytest.raises(BadInputError, match="format 2"):
        request_messages({"segue": 2})


def test_segue_bridge_watch_takes_requests_and_places(tmp_path: Path) -> None:
    """The command line: ``segue bridge --watch DIR`` (in this process, with the fake engine)."""
    import threading

    from bridge.cli import main
    from bridge.daemon import BridgeRunning

    running: list[BridgeRunning] = []
    ready = threading.Event()
    argv = ["bridge", "--osc-port", "0", "--out", str(tmp_path / "jobs"), "--watch", str(tmp_path / "w")]
    thread = threading.Thread(
        target=main,
        args=(argv,),
        kwargs={
            "engine_factory": lambda *a, **k: FakeEngine(),
            "bridge_ready": lambda run: (running.append(run), ready.set()),
        },
    )
    thread.start()
    try:
        assert ready.wait(20), "segue bridge did not start"
        midi = write_midi_region(tmp_path / "region.mid").resolve()
        request = {"midi_path": str(midi), "start_beats": 4, "length_beats": 8, "tempo_bpm": 120, "generate": {}}
        (tmp_path / "w" / "requests" / "r.json").write_text(json.dumps(request))
        placed = tmp_path / "w" / "placed" / "000001.json"
        assert _wait(placed.is_file)
        assert json.loads(placed.read_text())["kind"] == "audio"
    finally:
        if running:
            running[0].stop()
        thread.join(15)
    assert not thread.is_alive()
