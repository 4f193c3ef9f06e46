"""Audio -> MIDI (engine/transcribe/region.py) gives the same notes when the model's activations move by as much as they
differ between CPUs: noise on every activation, a gain per key, and faint ghost notes at sub-harmonic pitches
(an octave, a twelfth, two octaves or two octaves and a third under a real note). The perturbations
(tests/support/transcribe_perturb.py, which says how their sizes were measured) go in through transcribe_region's
``model`` seam, on the activations the model gave for audio rendered here with the bundled TimGM6mb soundfont
(GPL-2, from the pretty_midi wheel)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from symusic import Score

from engine.api import CancelToken, Meter
from engine.midi_io import Note

pytest.importorskip("onnxruntime")
if importlib.util.find_spec("basic_pitch") is None:
    pytest.skip("basic-pitch is not installed (make venv installs it)", allow_module_level=True)

from test_transcribe import MELODY, TEMPO, TPQ, grid_f1, notes_of, render_region  # noqa: E402
from transcribe_perturb import jittered, stand_in, with_ghosts  # noqa: E402

from engine.transcribe import model as transcribe  # noqa: E402
from engine.transcribe.grid import TranscriptionOptions  # noqa: E402
from engine.transcribe.model import Activations, Progress  # noqa: E402
from engine.transcribe.region import AudioRegion, transcribe_region  # noqa: E402

SEEDS = range(5)


@dataclass(frozen=True)
class Case:
    wav: Path
    expected: list[Note]
    tempo: float
    activations: Activations
    notes: set[tuple[int, int, int]]  # (start tick, pitch, length in ticks) unperturbed
    monophonic: bool
    grid: str
    f1: float


def transcribed(midi: Path) -> set[tuple[int, int, int]]:
    return {(int(n.time), int(n.pitch), int(n.duration)) for t in Score(str(midi)).tracks for n in t.notes}


def make_case(folder: Path, expected: list[Note], program: int, bars: int) -> Case:
    wav = render_region(folder / "region.wav", expected, program, 44_100, 2, bars=bars)
    seen: Activations = {}

    def recording(mono: npt.NDArray[np.float32], progress: Progress | None, cancel: CancelToken | None) -> Activations:
        seen.update(transcribe.model_output(mono, progress, cancel))
        return seen

    result = transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), folder / "plain.mid", model=recording)
    f1 = grid_f1(expected, folder / "plain.mid")
    return Case(wav, expected, TEMPO, dict(seen), transcribed(folder / "plain.mid"), result.monophonic, result.grid, f1)


@pytest.fixture(scope="module")
def melody(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return make_case(tmp_path_factory.mktemp("melody"), notes_of(MELODY), 0, bars=4)  # GM piano


@pytest.fixture(scope="module")
def triplets(tmp_path_factory: pytest.TempPathFactory) -> Case:
    third = TPQ // 3
    expected = [Note(i * third, third - 10, 60 + 2 * (i % 5), 96) for i in range(24)]
    return make_case(tmp_path_factory.mktemp("triplets"), expected, 73, bars=2)  # GM flute


@pytest.fixture(scope="module")
def triads(tmp_path_factory: pytest.TempPathFactory) -> Case:
    chords = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)]
    expected = [Note(i * 2 * TPQ, 2 * TPQ - 60, p, 90) for i, chord in enumerate(chords) for p in chord]
    return make_case(tmp_path_factory.mktemp("triads"), expected, 0, bars=2)


def check_same(case: Case, activations: Activations, out: Path) -> None:
    """The same notes on the same grid positions as unperturbed, each as long or a grid step (a 16th or a triplet
    8th) longer or shorter: where a decaying note falls under the model's frame threshold moves with the noise."""
    result = transcribe_region(AudioRegion(case.wav, case.tempo, Meter(4, 4)), out, model=stand_in(activations))
    got = {(start, pitch): length for start, pitch, length in transcribed(out)}
    want = {(start, pitch): length for start, pitch, length in case.notes}
    assert sorted(got) == sorted(want), "the same notes on the same grid positions as unperturbed"
    assert all(abs(got[key] - want[key]) <= TPQ // 3 for key in want), "lengths within a grid step"
    assert grid_f1(case.expected, out) == case.f1
    assert (result.monophonic, result.grid) == (case.monophonic, case.grid), result.summary


def test_the_unperturbed_cases_are_right(melody: Case, triplets: Case, triads: Case) -> None:
    """What the perturbed runs must reproduce is itself right (the tests in test_transcribe.py ask less)."""
    assert melody.f1 >= 0.95 and melody.monophonic and melody.grid == "16ths"
    assert triplets.f1 >= 0.95 and triplets.monophonic and triplets.grid == "16ths and 8th-note triplets"
    assert triads.f1 >= 0.95 and not triads.monophonic


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["melody", "triplets", "triads"])
def test_noise_of_the_size_cpus_differ_by_changes_no_note(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, seed: int
) -> None:
    case: Case = request.getfixturevalue(name)
    check_same(case, jittered(case.activations, np.random.default_rng(seed)), tmp_path / "t.mid")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["melody", "triplets", "triads"])
def test_faint_sub_harmonic_ghosts_are_dropped(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, seed: int
) -> None:
    case: Case = request.getfixturevalue(name)
    rng = np.random.default_rng(100 + seed)
    activations = jittered(case.activations, rng)
    seconds_per_tick = 60.0 / case.tempo / TPQ
    heard = {(start, pitch) for start, pitch, _ in case.notes}
    under = [(n.start * seconds_per_tick, n.duration * seconds_per_tick, n.pitch) for n in case.expected
             if (n.start, n.pitch) in heard]  # fmt: skip
    ghosts = with_ghosts(activations, under, rng, count=3)
    events = transcribe.note_events(np.zeros(1, np.float32), 0.09, TranscriptionOptions(), model=stand_in(activations))
    assert {e.pitch for e in events} & set(ghosts), "the decoder hears the ghosts (else this test tests nothing)"
    check_same(case, activations, tmp_path / "t.mid")


def test_ghosts_are_judged_by_the_models_own_support() -> None:
    """drop_ghosts on hand-made events: what the notes sounding over a note and the model's figures for it say."""
    from engine.transcribe.grid import NoteEvent, drop_ghosts

    melody = [NoteEvent(0.0, 0.6, 67, 0.75, 0.88, 0.95), NoteEvent(0.6, 1.2, 72, 0.75, 0.9, 0.95)]
    ghosts = [
        NoteEvent(0.05, 0.5, 67 - 28, 0.4, 0.5, 0.6),  # faint, two octaves and a third under: a sub-harmonic
        NoteEvent(0.7, 1.0, 72 + 12, 0.4, 0.5, 0.85),  # faint overtone, even with an onset bled from the attack
        NoteEvent(0.2, 0.5, 69, 0.4, 0.5, 0.55),  # faint, not struck: a release or a bleed
        NoteEvent(0.3, 0.8, 67 - 33, 0.6, 0.8, 0.6),  # not faint but not struck, short, far under the line: a rumble
    ]
    real = [
        NoteEvent(0.0, 0.6, 60, 0.7, 0.85, 0.93),  # a chord tone as strong as the note over it
        NoteEvent(0.05, 0.5, 50, 0.45, 0.55, 0.9),  # a faint bass, struck, not a harmonic away
        NoteEvent(0.0, 1.2, 43, 0.6, 0.8, 0.4),  # an unstruck pad under the line, as long as all of it
        NoteEvent(1.3, 1.6, 55, 0.4, 0.45, 0.3),  # faint, but nothing sounds over it
    ]
    kept, dropped = drop_ghosts(melody + ghosts + real, onset_threshold=0.5)
    assert sorted(kept, key=lambda e: (e.start_seconds, e.pitch)) == sorted(
        melody + real, key=lambda e: (e.start_seconds, e.pitch)
    )
    assert dropped == len(ghosts)
