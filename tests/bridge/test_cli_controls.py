"""The producer's controls on the command line (``segue continue --similarity ... --density ...``): they reach the
engine's GenerationParams and job.json; bad values exit 2 with the api's words, before any job is made.
The region is a two-bar MIDI file written by the test (fake_engine.write_midi_region)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine, write_midi_region

from bridge import cli
from bridge.controls import parse_density
from bridge.jobs import load_job
from engine.api import Engine
from engine.errors import BadInputError


class Run:
    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.engine = FakeEngine()
        self.out = tmp_path / "out"
        self.region = write_midi_region(tmp_path / "region.mid")

    def factory(self, spec: str, **options: Any) -> Engine:
        return self.engine

    def cont(self, *extra: str) -> tuple[int, str, str]:
        argv = ["continue", str(self.region), "--out", str(self.out), "--variants", "1", *extra]
        code = cli.main(argv, engine_factory=self.factory)
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def job_dirs(self) -> list[Path]:
        return sorted(self.out.iterdir()) if self.out.exists() else []


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(tmp_path, capsys)


def test_every_control_reaches_the_engine_and_job_json(run: Run) -> None:
    code, out, err = run.cont(
        "--similarity", "0.3", "--no-keep-opening", "--density", "1.5", "--density", "bass=0.5,Piano=2",
        "--part-density", "drums=0.25", "--hold-notes", "--end-on-tonic", "--json",
    )  # fmt: skip
    assert code == 0, err
    params = run.engine.requests[0].params
    assert params.similarity == 0.3 and params.keep_opening is False and params.density == 1.5
    assert params.part_density == (("bass", 0.5), ("piano", 2.0), ("drums", 0.25))
    assert params.hold_notes is True and params.end_on_tonic is True
    (job_dir,) = run.job_dirs()
    recorded = json.loads((job_dir / "job.json").read_text())["params"]
    assert json.loads(out)["params"] == recorded  # --json prints the same manifest
    assert {k: recorded[k] for k in ("similarity", "keep_opening", "density", "hold_notes", "end_on_tonic")} == {
        "similarity": 0.3,
        "keep_opening": False,
        "density": 1.5,
        "hold_notes": True,
        "end_on_tonic": True,
    }
    assert recorded["part_density"] == {"bass": 0.5, "piano": 2.0, "drums": 0.25}
    record = load_job(job_dir)  # and back
    assert record.params.part_density == {"bass": 0.5, "piano": 2.0, "drums": 0.25}
    assert record.params.similarity == 0.3 and record.params.keep_opening is False


def test_controls_left_out_are_the_engines_default_and_recorded_as_null(run: Run) -> None:
    code, _, err = run.cont("--keep-opening")
    assert code == 0, err
    params = run.engine.requests[0].params
    assert params.keep_opening is True
    assert (params.similarity, params.density, params.hold_notes, params.end_on_tonic) == (None,) * 4
    assert params.part_density == ()
    (job_dir,) = run.job_dirs()
    recorded = json.loads((job_dir / "job.json").read_text())["params"]
    assert recorded["similarity"] is None and recorded["hold_notes"] is None and recorded["part_density"] == {}
    assert recorded["keep_opening"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--similarity", "1.5"], "similarity must be a number in 0..1"),
        (["--similarity", "-0.1"], "similarity must be a number in 0..1"),
        (["--similarity", "nan"], "similarity must be a number in 0..1"),
        (["--similarity", "close"], "invalid float value"),
        (["--density", "5"], "density must be a factor in 0.25..4.0"),
        (["--density", "0"], "density must be a factor in 0.25..4.0"),
        (["--density", "bass=9"], "density of bass must be a factor in 0.25..4.0"),
        (["--density", "bass=lots"], "'lots' is not a number"),
        (["--density", "1,2"], "the overall density is given twice"),
        (["--density", "bass=0.5,,piano=1"], "part=factor pairs separated by commas"),
        (["--density", "bass=0.5", "--part-density", "bass=2"], "the density of part 'bass' is given twice"),
        (["--density", "double bass=0.5"], "a part density is (part name, factor)"),
        (["--part-density", "1.5"], "--part-density takes part=factor pairs"),
        (["--hold-notes", "yes"], "unrecognized arguments"),
    ],
)
def test_bad_control_values_exit_2_with_the_apis_message(run: Run, args: list[str], message: str) -> None:
    code, out, err = run.cont(*args)
    assert code == 2 and message in err and out == "", err
    assert run.job_dirs() == [] and run.engine.requests == []


def test_help_says_what_each_control_does_and_its_default(run: Run) -> None:
    code = cli.main(["continue", "--help"], engine_factory=run.factory)
    out = run.capsys.readouterr().out
    assert code == 0
    for option in (
        "--similarity 0..1",
        "--keep-opening, --no-keep-opening",
        "--density F|PART=F,...",
        "--part-density PART=F,...",
        "--hold-notes, --no-hold-notes",
        "--end-on-tonic, --no-end-on-tonic",
    ):
        assert option in out
    flat = " ".join(out.split())
    assert "the engine's measured default" in flat and "1 = close" in flat and "0 = free" in flat
    assert "held chords and pads stay held" in flat and "cadence in the last bar" in flat


def test_parse_density_reads_a_factor_and_part_pairs() -> None:
    assert parse_density(None) == (None, ())
    assert parse_density(["1.25"]) == (1.25, ())
    assert parse_density(["0.8, bass = 0.5", "keys=3"]) == (0.8, (("bass", 0.5), ("keys", 3.0)))
    with pytest.raises(BadInputError, match="--density takes a factor"):
        parse_density([" "])
