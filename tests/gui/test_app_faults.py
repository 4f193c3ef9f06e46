"""The app under faults: a full disk says so in the message bar; a job that a killed Segue left running is marked
interrupted when the app starts (the session's bridge service recovers its job folder)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from gui_rig import Rig, StemEngine, wait_engine
from PyQt6.QtCore import Qt
from pytestqt.qtbot import QtBot

from bridge.jobs import INTERRUPTED
from engine.errors import DiskFullError
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def test_a_full_disk_is_said_plainly_in_the_app(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    engine = StemEngine(fail=DiskFullError("/music/jobs/v02/continuation.wav", 3), fail_at=2)
    rig = make_rig(engine=engine)
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(r.status == "failed" for r in rig.models.jobs.value.rows), timeout=5000)
    text = window.message_bar.text.text()
    assert "Generation failed: the disk is full at /music/jobs/v02/continuation.wav: free 3 MB and run again" in text


def test_the_app_marks_a_job_a_killed_segue_left_running_interrupted(tmp_path: Path, make_rig: MakeRig) -> None:
    job_dir = tmp_path / "jobs" / "20260101-120000-verse-continue-abcd"
    job_dir.mkdir(parents=True)
    manifest = {
        "id": job_dir.name, "status": "running", "mode": "continue", "kind": "midi", "model": "m", "engine": "local",
        "params": {"bars": 2, "variants": 1, "temperature": 1.0, "top_p": 0.95, "seed": None},
        "region": {"sources": []}, "created": "2026-01-01T12:00:00.000+00:00",
        "updated": "2026-01-01T12:00:00.000+00:00", "segue_version": "0",
    }  # fmt: skip
    (job_dir / "job.json").write_text(json.dumps(manifest))
    (job_dir / ".job.json.k2j4h5g6.tmp").write_text("{")  # a temp file the killed Segue left
    make_rig()
    recovered = json.loads((job_dir / "job.json").read_text())
    assert recovered["status"] == "failed" and recovered["error"]["message"] == INTERRUPTED
    assert sorted(p.name for p in job_dir.iterdir()) == ["job.json"]
