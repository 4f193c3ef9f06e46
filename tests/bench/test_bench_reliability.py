"""bench/bench_reliability.py smoke test: a small run (400 packets, 5 jobs, 2 + 1 kills) prints the table and
writes the JSON the docs' figures come from. Only what the fixes guarantee is checked (the bridge still answers,
every job ends, nothing killed is left running or leaves temp files), never a time or a memory figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_reliability_bench_runs_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "reliability.json"
    proc = subprocess.run(
        [sys.executable, "bench/bench_reliability.py", "--packets", "400", "--jobs", "5", "--kills", "2",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "| measure | figure | notes |" in proc.stdout and "OSC flood: bridge CPU" in proc.stdout
    data = json.loads(out.read_text())
    flood, jobs = data["flood"], data["jobs"]
    assert flood["packets"] == 400 and flood["cpu_seconds"] >= 0 and flood["answers_ping_after"] is True
    assert (jobs["done"], jobs["failed"]) == (5, 0) and jobs["rss_mb_after"] > 0
    for part in ("kill_continue", "kill_bridge"):
        kills = data[part]
        assert kills["left_running"] == 0 and kills["temp_files"] == 0 and kills["owner_locks"] == 0, kills
    assert data["kill_bridge"]["interrupted"] == data["kill_bridge"]["killed_mid_job"] == 1
    assert data["machine"]["cpu"]
