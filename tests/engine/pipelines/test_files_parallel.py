"""engine.pipelines.files.write_note_variants: a job's variants rendered by forked helper processes are the files a
single process writes, byte for byte; a helper's error reaches the job as itself; cancel stops the render.

The region is examples/regions/pop_100bpm_4-4.mid (the project's own example); the variants' notes are made here
(a few notes per part, two bars), rendered with the soundfont find_soundfont() picks on the machine.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import cast

import pytest

from engine.api import CancelToken, Prompt, VariantResult
from engine.errors import CancelledError, EngineError
from engine.midi_io import Note, PartNotes
from engine.pipelines.context import JobContext, Models, Stopwatch
from engine.pipelines.files import write_note_variants
from engine.pipelines.midi import MidiJobFiles
from engine.render import workers
from engine.render.soundfont import find_soundfont
from engine.render.workers import WorkerError
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import Region, read_region

REGION = Path(__file__).resolve().parents[3] / "examples" / "regions" / "pop_100bpm_4-4.mid"
BARS = 2
PARENT = os.getpid()

pytestmark = pytest.mark.skipif(not workers.can_fork(), reason="render helpers need os.fork (Linux)")


@pytest.fixture(scope="module")
def region() -> Region:
    return read_region(Prompt(midi_path=REGION))


def variants(region: Region, count: int) -> list[tuple[PartNotes, ...]]:
    """``count`` different variants: every part plays a few notes of its range, shifted by the variant's number."""
    names = part_names_for(region.parts)
    beat = region.ticks_per_quarter
    out = []
    for v in range(count):
        parts = []
        for k, part in enumerate(region.parts):
            notes = tuple(
                Note(i * beat, beat * (1 + (i + k) % 3), part.pitch_min + (i * 5 + v + k) % 12, 60 + 10 * ((i + v) % 4))
                for i in range(0, 4 * BARS, 1 + k % 2)
            )
            parts.append(PartNotes(names[part.program], part.program, notes))
        out.append(tuple(parts))
    return out


def context(cancel: CancelToken | None = None, reports: list[tuple[float, str]] | None = None) -> JobContext:
    def report(fraction: float, message: str) -> None:
        if reports is not None:
            reports.append((fraction, message))

    return JobContext(cast(Models, None), threading.Lock(), None, report, cancel or CancelToken())


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def write(
    region: Region, job_dir: Path, count: int, processes: int, ctx: JobContext | None = None
) -> tuple[VariantResult, ...]:
    job = MidiJobFiles(job_dir, region, BARS, 44_100, find_soundfont(), None)
    seeds = [7 + i for i in range(count)]
    return write_note_variants(job, seeds, variants(region, count), ctx or context(), Stopwatch(), workers=processes)


def test_variants_written_by_helper_processes_are_byte_for_byte_the_serial_files(
    region: Region, tmp_path: Path
) -> None:
    reports: list[tuple[float, str]] = []
    serial = write(region, tmp_path / "serial", 3, 1)
    parallel = write(region, tmp_path / "parallel", 3, 2, context(reports=reports))
    three = write(region, tmp_path / "three", 3, 3)
    expected = digests(tmp_path / "serial")
    assert len(expected) == 3 * 8  # continuation.mid/.wav, full.mid/.wav, 4 stems per variant
    assert digests(tmp_path / "parallel") == expected
    assert digests(tmp_path / "three") == expected
    assert parallel == serial and three == serial  # the same files listed in the same order, seeds, durations
    assert list(serial[0].files) == list(parallel[0].files)
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum("rendered variant" in m for _, m in reports) == 3


def helper_says_pid(job_dir: Path) -> None:
    (job_dir / f"helper-{os.getpid()}.pid").touch()


def helpers_gone(job_dir: Path) -> bool:
    """Whether every helper that said its pid has stopped and been reaped (a process left behind, or a zombie,
    still answers ``kill(pid, 0)``); False when no helper said it."""
    pids = [int(p.name.split("-")[1].split(".")[0]) for p in job_dir.glob("helper-*.pid")]
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return bool(pids)


class HelperFails(MidiJobFiles):
    """A helper's variant fails (as a synthesizer error would); the one written here waits until that happened."""

    def write_variant(self, variant_id: str, seed: int, parts: tuple[PartNotes, ...]) -> VariantResult:
        marker = self.job_dir / "helper-started"
        if os.getpid() != PARENT:
            helper_says_pid(self.job_dir)
            marker.touch()
            raise EngineError(f"the synthesizer produced invalid samples (NaN/inf) for part drums of {variant_id}")
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        return super().write_variant(variant_id, seed, parts)


def test_a_helpers_error_fails_the_job_with_its_own_message(region: Region, tmp_path: Path) -> None:
    job = HelperFails(tmp_path, region, BARS, 44_100, find_soundfont(), None)
    with pytest.raises(EngineError, match=r"invalid samples \(NaN/inf\) for part drums of v0[12]") as caught:
        write_note_variants(job, [1, 2], variants(region, 2), context(), Stopwatch(), workers=2)
    assert isinstance(caught.value.__cause__, WorkerError)
    assert "render helper process" in str(caught.value.__cause__)
    assert helpers_gone(tmp_path)  # no helper left behind


class HelperWaits(MidiJobFiles):
    """A helper's variant starts only once the job is cancelled, so what is written does not depend on which
    process the scheduler favours."""

    def write_variant(self, variant_id: str, seed: int, parts: tuple[PartNotes, ...]) -> VariantResult:
        if os.getpid() != PARENT:
            helper_says_pid(self.job_dir)
            deadline = time.monotonic() + 30
            while not (self.job_dir / "cancelled").exists() and time.monotonic() < deadline:
                time.sleep(0.005)
        return super().write_variant(variant_id, seed, parts)


def test_cancel_during_the_render_stops_it_and_its_helpers(region: Region, tmp_path: Path) -> None:
    cancel = CancelToken()

    def report(fraction: float, message: str) -> None:
        if message.startswith("rendered variant"):  # as soon as the first variant is written (here)
            cancel.cancel()
            (tmp_path / "cancelled").touch()

    ctx = JobContext(cast(Models, None), threading.Lock(), None, report, cancel)
    job = HelperWaits(tmp_path, region, BARS, 44_100, find_soundfont(), None)
    with pytest.raises(CancelledError):
        write_note_variants(job, list(range(8)), variants(region, 8), ctx, Stopwatch(), workers=2)
    written = [d for d in tmp_path.iterdir() if d.is_dir()]
    assert 1 <= len(written) <= 2  # this process's variant, and perhaps the helper's, stopped or finished
    assert helpers_gone(tmp_path)  # no helper left behind
    assert not list(tmp_path.rglob(".*.tmp*"))  # no temp file left by a stopped helper
