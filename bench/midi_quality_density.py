"""bench_midi_quality.py with the density target's configurations (issue 16: notes per bar per part).

    python bench/midi_quality_density.py LEVER [bench_midi_quality.py's arguments, e.g. --set lmms --configs final]

LEVER is midi_quality_levers.py's (``float32`` changes nothing); this file only adds configurations to
``bench_midi_quality.CONFIGS`` and then runs midi_quality_levers.py's ``main``. Each is today's defaults (``final``)
with the guidance's density target read otherwise (:class:`engine.symbolic.guidance.GuidanceSettings`):

- ``final-dprompt``: the target from the model's prompt (the region's last bars that fit half a context), the
  candidates' fit against the region's mean: the defaults before ``density_from``;
- ``final-dreg``: the whole region's mean (``density_from="region"``);
- ``final-dent``: the whole region from each part's first note on (``density_from="entry"``);
- ``final-dent-hN``: the same, a bar N bars before the last weighing half (``density_half_life=N``);
- ``-fit`` after any of them: the candidates' fit measures notes per bar against the same targets
  (``density_fit_target``); without it, against the region's mean.

``python bench/midi_quality_density.py analyse`` prints, per set, how many parts each way of reading the region
would put within x0.67-1.5 of the composer's notes per bar, without sampling (docs/symbolic-engine.md, "Notes per
bar: the density target").
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_midi_quality  # noqa: E402
import midi_quality_levers  # noqa: E402

import engine.symbolic.continuation as cont  # noqa: E402
from engine.symbolic.cache import DEFAULT_CACHE  # noqa: E402
from engine.symbolic.guidance import GuidanceSettings  # noqa: E402

BEFORE = GuidanceSettings(density_from="prompt", density_fit_target=False)
DENSITY_CONFIGS: dict[str, GuidanceSettings] = {
    "final-dprompt": BEFORE,
    "final-dreg": replace(BEFORE, density_from="region"),
    "final-dent": replace(BEFORE, density_from="entry"),
    "final-dent-h2": replace(BEFORE, density_from="entry", density_half_life=2.0),
    "final-dent-h4": replace(BEFORE, density_from="entry", density_half_life=4.0),
}
for _name, _guidance in list(DENSITY_CONFIGS.items()):
    DENSITY_CONFIGS[f"{_name}-fit"] = replace(_guidance, density_fit_target=True)
for _name, _guidance in DENSITY_CONFIGS.items():
    bench_midi_quality.CONFIGS[_name] = (_guidance, cont.DEFAULT_CANDIDATES, None, DEFAULT_CACHE)


def main() -> int:
    return midi_quality_levers.main()


if __name__ == "__main__":
    raise SystemExit(main())
