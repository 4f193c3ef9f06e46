"""segue-concat's units, codes and prior on numpy drums (concat_material.synthetic_groove, made here): the metrical
classes of a bar, the codebook, and what the similarity control does to a plan."""

from __future__ import annotations

import numpy as np
import pytest
from concat_material import synthetic_groove

from engine.api import Meter
from engine.audio.concat.codes import codebook_size, quantise
from engine.audio.concat.decode import _runs
from engine.audio.concat.prior import Knobs, plan_continuation, plan_similarity
from engine.audio.concat.units import RegionUnits, analyse_region, slice_grid
from engine.audio.continuation import BarGrid

RATE, TEMPO = 22_050, 120.0


@pytest.fixture(scope="module")
def units() -> RegionUnits:
    audio = synthetic_groove(TEMPO, 4, RATE, seed=5)
    return analyse_region(audio, RATE, BarGrid(TEMPO, Meter(4, 4)), 4, audio.shape[1])


@pytest.mark.parametrize(
    ("meter", "classes"),
    [
        (Meter(4, 4), (0, 4, 2, 4, 1, 4, 2, 4)),  # downbeat, off-beats, beats 2 and 4, the half bar
        (Meter(3, 4), (0, 4, 2, 4, 2, 4)),
        (Meter(6, 8), (0, 4, 4, 2, 4, 4)),  # compound: two beats of three eighths
        (Meter(7, 8), (0, 2, 2, 2, 2, 2, 2)),
        (Meter(2, 2), (0, 4, 3, 4, 2, 4, 3, 4)),
    ],
)
def test_metrical_classes_of_a_bar(meter: Meter, classes: tuple[int, ...]) -> None:
    assert slice_grid(meter).classes == classes


def test_the_region_is_cut_into_eighths_on_its_grid_and_coded(units: RegionUnits) -> None:
    assert units.count == 32 and units.bars == 4
    assert units.starts[0] == 0 and units.starts[-1] == units.audio.shape[1] == 4 * 2 * RATE
    assert [int(x) for x in units.starts] == [round(k * RATE / 4) for k in range(33)], "sample-exact on the grid"
    codes, explained = quantise(units.features)
    assert codes.shape == (32,) and codes.max() + 1 == codebook_size(32) and 0.5 < explained <= 1.0
    again, _ = quantise(units.features)
    assert np.array_equal(codes, again), "deterministic"


def test_a_jump_keeps_the_metrical_class_and_the_plan_depends_on_the_seed(units: RegionUnits) -> None:
    codes, _ = quantise(units.features)
    plan = plan_continuation(units, codes, 8, seed=3, knobs=Knobs(0.6, False, 4))
    n = units.slices.slices_per_bar
    moved = [(t % n, s % n) for t, s in enumerate(plan.slices)]
    same_class = sum(units.slices.classes[a] == units.slices.classes[b] for a, b in moved)
    assert same_class >= 0.9 * len(moved), "only the copy control's last resort may cross classes"
    assert plan == plan_continuation(units, codes, 8, seed=3, knobs=Knobs(0.6, False, 4))
    other = plan_continuation(units, codes, 8, seed=4, knobs=Knobs(0.6, False, 4))
    assert other.slices != plan.slices and plan_similarity(units, plan.slices, other.slices) < 0.98


def test_similarity_zero_recombines_more_than_similarity_one(units: RegionUnits) -> None:
    codes, _ = quantise(units.features)
    runs = {
        s: np.mean([len(_runs(plan_continuation(units, codes, 8, seed, Knobs(s, False, 4)).slices, units.count))
                    for seed in range(6)])
        for s in (0.0, 1.0)
    }  # fmt: skip
    assert runs[0.0] > 1.5 * runs[1.0], runs


def test_copies_of_region_bars_stay_within_the_budget(units: RegionUnits) -> None:
    codes, _ = quantise(units.features)
    for s in (0.0, 0.6, 1.0):
        plan = plan_continuation(units, codes, 16, seed=1, knobs=Knobs(s, True, 4))
        copies = sum(c >= 0.95 for c in plan.copy_correlation)
        assert copies <= max(1, int(0.35 * s * 16)), (s, plan.copy_correlation)
