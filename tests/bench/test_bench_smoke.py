"""`make bench` smoke test: bench/run_all.py --quick runs the OSC, clock, GUI (fake engine) and loss parts, each in
its own process, and writes their JSON and the combined table. No figure is checked against a time: only that
each part ran and wrote what the table is made from. (The engine speed parts take minutes: `make bench` runs them.)
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_run_all_quick_writes_every_parts_json_and_one_table(tmp_path: Path) -> None:
    parts = ["osc", "clock", "loss", "gpu"]
    if importlib.util.find_spec("PyQt6") is not None:
        parts.append("gui")
    missing = tmp_path / "none"
    proc = subprocess.run(
        [sys.executable, "bench/run_all.py", "--quick", "--only", *parts, "--gui-engine", "fake",
         "--token-cache", str(missing / "tokens"), "--corpus", str(missing / "corpus"), "--results", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "| part | measure | Segue | baseline | ratio | notes |" in proc.stdout
    summary = json.loads((tmp_path / "all.json").read_text())
    assert summary["mode"] == "quick" and summary["failed"] == []
    assert summary["machine"]["cores"] and summary["machine"]["cpu"]
    by_part: dict[str, list[list[str]]] = {}
    for row in summary["rows"]:
        by_part.setdefault(row[0], []).append(row)

    osc = json.loads((tmp_path / "parts" / "osc.json").read_text())
    assert osc["segue"]["count"] > 0 and osc["baseline"]["count"] > 0
    assert osc["segue"]["median_us"] > 0 and osc["ratio"]["median"] > 0
    assert len(by_part["OSC bridge"]) == 2

    clock = json.loads((tmp_path / "parts" / "clock.json").read_text())
    assert {r["tempo_bpm"] for r in clock["rows"]} == {97.5, 120.0, 140.0}
    assert all(r["segue"]["converged"] == r["seeds"] for r in clock["rows"])  # the follower settles on every stream
    assert len(by_part["MIDI clock"]) == 3

    loss = json.loads((tmp_path / "parts" / "loss.json").read_text())  # no token cache, no corpus: how to make one
    assert "engine.symbolic.corpus" in loss["not_measured"]
    assert by_part["MIDI model"][0][2] == "not measured"

    assert by_part["GPU"][0][5].startswith("not measured")
    if "gui" in parts:
        gui = json.loads((tmp_path / "parts" / "gui.json").read_text())
        assert gui["job"]["worst_gap_ms"] > 0 and gui["idle"]["worst_gap_ms"] > 0
        assert len(by_part["GUI"]) == 1
    assert (tmp_path / "all.md").read_text().startswith("Segue benchmarks (quick run")
