"""The shipped default model on regions it has not seen: bar-exact, in every bar, on the grid, in key.

These are the issue's acceptance checks (`segue continue --bars 8 --variants 4` on a 4-part pop region in
4/4 at 100 BPM, a waltz in 3/4 at 138 BPM and 6/8 with drums). Part of `make test` (about 15 s).
"""

from __future__ import annotations

import json
from pathlib import Path

import mido
import pytest
import soundfile as sf

from bridge.cli import main as segue
from engine.api import Meter
from engine.checkpoints import find_checkpoint

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ROOT / "examples" / "regions"
MAJOR = (0, 2, 4, 5, 7, 9, 11)


def notes_by_bar(path: Path, bar_ticks: int) -> dict[int, list[tuple[int, int, int]]]:
    """bar index -> [(tick in bar, pitch, channel)] of every note-on."""
    mid = mido.MidiFile(str(path))
    out: dict[int, list[tuple[int, int, int]]] = {}
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                out.setdefault(tick // bar_ticks, []).append((tick % bar_ticks, msg.note, msg.channel))
    return out


def key_share(pitches: list[int], tonic: int, scale: tuple[int, ...] = MAJOR) -> float:
    return sum((p - tonic) % 12 in scale for p in pitches) / max(1, len(pitches))


@pytest.mark.parametrize(
    ("name", "tempo", "meter", "tonic", "scale", "grid_quarters"),
    [
        ("pop_100bpm_4-4.mid", 100.0, (4, 4), 7, MAJOR, 0.25),  # G major, 16th grid
        ("waltz_138bpm_3-4.mid", 138.0, (3, 4), 5, MAJOR, 0.5),  # F major, 8th grid
        ("compound_6-8_drums_96bpm.mid", 96.0, (6, 8), 2, (0, 2, 3, 5, 7, 8, 10, 11), 0.25),  # D minor (+ harmonic)
    ],
)
def test_shipped_model_continues_unseen_regions(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    tempo: float,
    meter: tuple[int, int],
    tonic: int,
    scale: tuple[int, ...],
    grid_quarters: float,
) -> None:
    find_checkpoint("default")  # the shipped model is installed
    code = segue(["continue", str(REGIONS / name), "--bars", "8", "--variants", "4", "--seed", "1",
                  "--out", str(tmp_path), "--json"])  # fmt: skip
    assert code == 0
    job = json.loads(capsys.readouterr().out)
    assert job["status"] == "done" and len(job["variants"]) == 4
    job_dir = next(tmp_path.iterdir())
    bar_seconds = Meter(*meter).quarters_per_bar * 60.0 / tempo
    contents = []
    for variant in job["variants"]:
        folder = job_dir / variant["id"]
        mid = mido.MidiFile(str(folder / "continuation.mid"))
        bar_ticks = round(Meter(*meter).quarters_per_bar * mid.ticks_per_beat)
        bars = notes_by_bar(folder / "continuation.mid", bar_ticks)
        assert sorted(bars) == list(range(8)), "notes in every one of the 8 bars, none after"
        grid = round(grid_quarters * mid.ticks_per_beat)
        onsets = [t for notes in bars.values() for t, _, _ in notes]
        assert sum(t % grid == 0 for t in onsets) / len(onsets) >= 0.9, "onsets on the region's grid"
        pitched = [p for notes in bars.values() for _, p, ch in notes if ch != 9]
        assert key_share(pitched, tonic, scale) >= 0.75, "mostly in the region's key"
        expected = round(8 * bar_seconds * 44_100)
        for wav in [folder / "continuation.wav", *sorted((folder / "stems").glob("*.wav"))]:
            assert abs(sf.info(str(wav)).frames - expected) <= 1
        contents.append(sorted(t for notes in bars.values() for t in notes))
    assert len({json.dumps(c) for c in contents}) == 4, "four different continuations"
