"""An accompany job placed by a DAW script: the generated parts land at the region's start, not after it.

The bridge sends ``/segue/place`` (and the watched folder's ``placed/*.json``) with the region's start for an
accompany job; the DAW scripts place every file at the position they are given. Checked end to end with REAPER's
"place results" script under the ReaScript stub and the bridge tests' fake engine (which accompanies at 0 beats).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fake_engine import FakeEngine, write_midi_region
from test_reaper_scripts import _calls, _project, run_script

from bridge.service import BridgeService
from bridge.watch import WatchFolder


def test_reaper_places_an_accompaniment_at_the_region_start(tmp_path: Path) -> None:
    service = BridgeService(FakeEngine(), tmp_path / "jobs", place="first")
    service.start()
    watch = WatchFolder(service, tmp_path / "watch", poll_s=0.05)
    watch.start()
    try:
        melody = write_midi_region(tmp_path / "melody.mid").resolve()
        request = {
            "midi_path": str(melody),
            "start_beats": 6.0,  # quarter note 6: bar 3 of the project's 3/4, 4.0 s at 90 BPM
            "length_beats": 6.0,
            "tempo_bpm": 90.0,
            "meter_num": 3,
            "meter_den": 4,
            "track": "Melody",
            "generate": {"mode": "accompany", "bars": 2, "variants": 1, "parts": "bass"},
        }
        (watch.requests / "acc.json.tmp").write_text(json.dumps(request), encoding="utf-8")
        (watch.requests / "acc.json.tmp").rename(watch.requests / "acc.json")
        deadline = time.monotonic() + 10
        while len(list(watch.placed.glob("*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(list(watch.placed.glob("*.json"))) == 2, list(watch.folder.rglob("*"))
        report = run_script("Segue - place results.lua", _project(tmp_path), watch.folder, tmp_path)
    finally:
        watch.close()
        service.close()
    placed = [json.loads(p.read_text()) for p in sorted((watch.placed / "done").glob("*.json"))]
    assert [(p["kind"], p["position_beats"]) for p in placed] == [("audio", 6.0), ("midi", 6.0)]
    inserts = _calls(report, "InsertMedia")
    assert inserts == [[p["file_path"], 1, pytest.approx(4.0)] for p in placed]  # the region's start, 4.0 s
    assert [t["name"] for t in report["tracks"][2:]] == ["Melody (Segue v01)", "Melody (Segue v01)"]
