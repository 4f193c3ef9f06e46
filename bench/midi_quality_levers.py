"""bench_midi_quality.py with one speed lever changed: what the lever does to the sampling figures.

    python bench/midi_quality_levers.py LEVER [bench_midi_quality.py's arguments, e.g. --configs final --pieces 4]

LEVER is one of:

- ``float32``: the sampler as before this session (what a model loaded directly samples with), the baseline;
- ``bf16``: the weight products in bfloat16 (what ``SEGUE_DECODE_PRECISION=auto`` picks on a CPU with native
  bfloat16), set on the loaded model (``model.sampler_dtype``);
- ``w<N>`` (e.g. ``w384``): the sampler's context refilled at N tokens (``engine.symbolic.sampling.DEFAULT_WINDOW``);
- ``c<N>`` (e.g. ``c1``): N candidates a variant in the ``final`` configuration.

Give each run its own ``--out``; the figures are bench_midi_quality's (docs/benchmarks.md).

Whatever the lever, the loop memory's rhythm settings are there as configurations too (``float32`` changes
nothing else): ``final-loop-bar`` (:attr:`LoopSettings.bar_start`: the bar's first onset predicted, a position with
no note left out of a bar's tokens), ``final-loop-steady`` (:attr:`LoopSettings.steady_rhythm`: the rhythm slots
keep their starting weight and do not fade), ``final-loop-bar-steady`` (both) and ``final-loop-plain`` (neither),
each also with ``-whole`` (:attr:`CacheSettings.whole_region`: the cache reads the whole region, not only the
model's prompt; without it, the prompt only), and ``final-whole`` (neither setting, the whole region);
``final-loop-plain`` is the defaults before them; docs/symbolic-engine.md, "The loop memory: figures".

Session 5's pitch-class configurations (docs/symbolic-engine.md, "Pitch classes: the profile control"):
``final-pcNN`` (the guidance's pitch-class prior kept at 0.NN with the cache on), ``final-iv0`` (the cache without its
interval view), ``final-notr`` (the loop memory without transposition), ``final-profN`` (the pitch-class profile
control, :attr:`CacheSettings.profile`, at N nats a log-unit; ``final-prof05`` 0.5) and ``final-steady-*``
(the same with :attr:`LoopSettings.steady_rhythm`).

Session 6's gates (docs/symbolic-engine.md, "Gating the controls by what the region says"): ``final-gloop`` (the
pitch-class control at 2 gated by the loop memory's fit, session 5's default), ``final-grep`` (gated by how far the
region repeats its bars note for note, :func:`engine.symbolic.profile.repeat_share`) and ``final-grep-on2`` (that,
and the onset control at 2 under the same gate).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_midi_quality  # noqa: E402

import engine.symbolic.continuation as cont  # noqa: E402
from engine.symbolic import sampling  # noqa: E402
from engine.symbolic.cache import DEFAULT_CACHE, CacheSettings  # noqa: E402
from engine.symbolic.guidance import GuidanceSettings  # noqa: E402
from engine.symbolic.loop import LoopSettings  # noqa: E402

RHYTHM_CONFIGS = {  # final-loop-NAME: the loop memory's rhythm settings (issue 16: why the loop did not carry it)
    "plain": LoopSettings(bar_start=False, steady_rhythm=False),  # as before them
    "bar": LoopSettings(bar_start=True, steady_rhythm=False),
    "steady": LoopSettings(bar_start=False, steady_rhythm=True),
    "bar-steady": LoopSettings(bar_start=True, steady_rhythm=True),
}
for _name, _loop in RHYTHM_CONFIGS.items():
    for _whole in (False, True):
        bench_midi_quality.CONFIGS[f"final-loop-{_name}" + ("-whole" if _whole else "")] = (
            GuidanceSettings(),
            cont.DEFAULT_CANDIDATES,
            None,
            replace(DEFAULT_CACHE, loop=_loop, whole_region=_whole),
        )
bench_midi_quality.CONFIGS["final-whole"] = (  # the defaults before these settings, the cache reading the whole region
    GuidanceSettings(),
    cont.DEFAULT_CANDIDATES,
    None,
    replace(DEFAULT_CACHE, loop=RHYTHM_CONFIGS["plain"], whole_region=True),
)

STEADY = LoopSettings(steady_rhythm=True)
# issue 16, session 5 (QUALITY): what keeps the region's pitch classes (docs/symbolic-engine.md, "Pitch classes")
PITCH_CONFIGS: dict[str, tuple[GuidanceSettings, CacheSettings]] = {
    "final-pc03": (GuidanceSettings(cache_pitch_weight=0.3), DEFAULT_CACHE),  # the pitch-class prior with the cache
    "final-pc06": (GuidanceSettings(cache_pitch_weight=0.6), DEFAULT_CACHE),
    "final-iv0": (GuidanceSettings(), replace(DEFAULT_CACHE, interval_weight=0.0)),  # no interval view
    "final-notr": (GuidanceSettings(), replace(DEFAULT_CACHE, loop=LoopSettings(transpose=False))),
    # the loop's rhythm kept (steady_rhythm) while the prior keeps the varied pitches in the region's pitch classes
    "final-steady-pc03": (GuidanceSettings(cache_pitch_weight=0.3), replace(DEFAULT_CACHE, loop=STEADY)),
    "final-steady-pc06": (GuidanceSettings(cache_pitch_weight=0.6), replace(DEFAULT_CACHE, loop=STEADY)),
    # the pitch-class profile control (engine/symbolic/profile.py) at 0.5, 1 and 2 nats per log-unit
    "final-prof0": (GuidanceSettings(), replace(DEFAULT_CACHE, profile=0.0)),
    "final-prof05": (GuidanceSettings(), replace(DEFAULT_CACHE, profile=0.5)),
    "final-prof1": (GuidanceSettings(), replace(DEFAULT_CACHE, profile=1.0)),
    "final-prof2": (GuidanceSettings(), replace(DEFAULT_CACHE, profile=2.0)),
    "final-prof3": (GuidanceSettings(), replace(DEFAULT_CACHE, profile=3.0)),
    "final-steady-prof1": (GuidanceSettings(), replace(DEFAULT_CACHE, loop=STEADY, profile=1.0)),
    # the onset-position profile control (engine/symbolic/profile.OnsetProfile) on top of the defaults
    "final-on1": (GuidanceSettings(), replace(DEFAULT_CACHE, onset_profile=1.0)),
    "final-on2": (GuidanceSettings(), replace(DEFAULT_CACHE, onset_profile=2.0)),
    # session 6 (issue 16): the controls' gate (CacheSettings.profile_gate / onset_gate, engine.symbolic.profile.gate)
    "final-gloop": (GuidanceSettings(), replace(DEFAULT_CACHE, profile=2.0, profile_gate="loop")),  # session 5's
    "final-grep": (GuidanceSettings(), replace(DEFAULT_CACHE, profile=2.0, profile_gate="repeat")),
    "final-grep-on2": (
        GuidanceSettings(),
        replace(DEFAULT_CACHE, profile=2.0, profile_gate="repeat", onset_profile=2.0, onset_gate="repeat"),
    ),
}
for _name, (_guidance, _cache) in PITCH_CONFIGS.items():
    bench_midi_quality.CONFIGS[_name] = (_guidance, cont.DEFAULT_CANDIDATES, None, _cache)


def apply(lever: str) -> None:
    """Change the one setting ``lever`` names (see the module's docstring); ValueError for an unknown one."""
    if lever == "float32":
        return
    if lever == "bf16":
        load = cont.SymbolicModel.load

        def load_bf16(*args: Any, **kwargs: Any) -> cont.SymbolicModel:
            loaded = load(*args, **kwargs)
            loaded.model.sampler_dtype = torch.bfloat16
            return loaded

        cont.SymbolicModel.load = load_bf16  # type: ignore[method-assign,assignment]
        return
    if lever[:1] in ("w", "c") and lever[1:].isdigit():
        if lever[0] == "w":
            sampling.DEFAULT_WINDOW = int(lever[1:])
        else:
            guidance, _, adapt, cache = bench_midi_quality.CONFIGS["final"]
            bench_midi_quality.CONFIGS["final"] = (guidance, int(lever[1:]), adapt, cache)
        return
    raise ValueError(f"unknown lever {lever!r}: give float32, bf16, w<tokens> or c<candidates>")


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)  # noqa: T201
        return 2
    apply(sys.argv[1])
    sys.argv = [str(ROOT / "bench/bench_midi_quality.py"), *sys.argv[2:]]
    return bench_midi_quality.main()


if __name__ == "__main__":
    raise SystemExit(main())
