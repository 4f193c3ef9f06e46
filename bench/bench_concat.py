"""segue-concat on real loops: issue 15's measures for each variant of each job, and its speed against the neural
engine on the same region.

    python bench/bench_concat.py [--loops 909beat01,break03,...] [--grooves colombo:97,millo:133] [--bars 16]
                                 [--chords strings:100,space:120] [--no-demo] [--harmony-weight W]
                                 [--variants 4] [--seed 1] [--similarity 0.6] [--keep-opening auto|yes|no]
                                 [--speed-repeats 3] [--no-neural] [--no-speed] [--out bench/results/concat.json]

Material (tests/support/concat_material.py): Debian lmms-common loops (GPL-2+) tiled to 4-bar regions, and
hydrogen-drumkits hits (GPL-2/GPL-2+) sequenced into humanised 4-bar grooves. Each region is continued through
the local engine exactly as ``segue continue region.wav --tempo T --meter 4/4 --bars 16 --variants 4`` does, and
the job folder is scored by ``segue eval`` (:func:`engine.evaluate.evaluate_job`): log-mel Frechet distance (limit:
the region's halves + 15), share of bars copied (<= 0.5), energy above 11 kHz (within 3 dB), onsets on the 1/16 grid
(no less than the region's - 0.1), loudness (within 1 LU), exact length, clicks at the joins, variants distinct;
and harmony (per-beat chroma correlation of each bar with the region bar it follows best, mean >= 0.8 where the
region is tonal) with the chroma key check of ``segue eval`` (``audio_key``).

Chord-heavy regions (``--chords``; the harmony measure's material): lmms-common's pads and electric-piano chords
pitch-shifted to C F G Bb, one chord a bar (``concat_material.chord_region``), and ``make demo-audio``'s region
(examples/regions/pop_100bpm_4-4.mid through the General MIDI soundfont at 48 kHz, 8 bars x 4 variants, seed 7, as
the make target; ``--no-demo`` leaves it out). ``--harmony-weight 0`` plans without harmony (the prior before it),
for a side-by-side comparison.

Speed: 4 variants x 16 bars at 120 BPM (128 s of audio) from 4-bar regions (electro_beat01, 22.05 kHz stereo; a
hydrogen groove at 48 kHz stereo, or numpy drums without hydrogen-drumkits), the whole job (reading, analysing,
planning, rendering, writing 8 WAV files), best of ``--speed-repeats``; then the neural engine
(``segue-audio-small``) on the 48 kHz region with the same request, once.
Prints the tables and writes ``--out`` atomically.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import RESULTS, ROOT, add_tests_support, machine, markdown_table, write_json

import engine.audio.concat.prior as concat_prior
from engine.api import GenerationParams, GenerationRequest, Meter, Prompt
from engine.evaluate import evaluate_job
from engine.local import LocalEngine
from engine.render.wavfile import write_wav

add_tests_support()  # concat_material: the tests' audio material
from concat_material import (  # noqa: E402
    LOOPS,
    MaterialMissing,
    chord_region,
    hydrogen_groove,
    lmms_loop,
    synthetic_groove,
)

MEASURES = ("mel_fd", "copied_bars", "hf_db", "grid_share_diff", "loudness_lu", "unit_clicks", "audio_length",
            "join_click", "harmony", "audio_key")  # fmt: skip
DEFAULT_LOOPS = ",".join(LOOPS)


def regions(loops: str, grooves: str, folder: Path, chords: str = "", demo: bool = False
            ) -> list[tuple[str, Path, float, dict[str, Any]]]:  # fmt: skip
    """(name, region file, tempo, overrides of the job's bars/seed) of each region."""
    makers: list[tuple[str, str, Callable[[], tuple[Any, int, float]]]] = []  # name, file stem, (audio, rate, tempo)
    for name in [n for n in loops.split(",") if n]:
        makers.append((name, name, functools.partial(lmms_loop, name)))
    for kit, tempo in _specs(grooves):
        makers.append((f"hydrogen-{kit}", kit, functools.partial(_at_44k1, hydrogen_groove, kit, tempo)))
    for sounds, tempo in _specs(chords):
        name = f"chords-{sounds}"
        makers.append((name, name, functools.partial(_at_44k1, chord_region, sounds, tempo)))
    out: list[tuple[str, Path, float, dict[str, Any]]] = []
    for name, stem, make in makers:
        try:
            audio, rate, tempo = make()
        except MaterialMissing as e:
            print(f"skipped {stem}: {e}")  # noqa: T201
            continue
        out.append((name, write_wav(folder / f"{stem}.wav", audio, rate), tempo, {}))
    if demo:
        from engine.audio.example_region import render_region

        try:
            path = render_region(ROOT / "examples/regions/pop_100bpm_4-4.mid", folder / "demo-audio.wav", 48_000)
            out.append(("demo-audio (pop, soundfont)", path, 100.0, {"bars": 8, "seed": 7}))
        except Exception as e:  # noqa: BLE001 - no soundfont here: said, and the rest goes on
            print(f"skipped the demo-audio region: {e}")  # noqa: T201
    return out


def _specs(text: str) -> list[tuple[str, float]]:
    """``"a:120,b:96"`` -> ``[("a", 120.0), ("b", 96.0)]``."""
    return [(name, float(tempo)) for name, tempo in (spec.split(":") for spec in text.split(",") if spec)]


def _at_44k1(make: Callable[[str, float], Any], what: str, tempo: float) -> tuple[Any, int, float]:
    return make(what, tempo), 44_100, tempo


def run_job(engine: LocalEngine, region: Path, tempo: float, params: GenerationParams, model: str,
            job_dir: Path) -> tuple[Any, float]:  # fmt: skip
    request = GenerationRequest(prompt=Prompt(audio_path=region, tempo_bpm=tempo, meter=Meter(4, 4)), params=params,
                                model=model)  # fmt: skip
    job_dir.mkdir(parents=True)
    started = time.perf_counter()
    result = engine.generate(request, job_dir)
    return result, time.perf_counter() - started


def write_manifest(job_dir: Path, region: Path, result: Any, params: GenerationParams) -> None:
    """The job.json ``segue eval`` reads (the bridge writes it for real jobs)."""
    import json

    from engine.api import to_jsonable

    job = {"id": job_dir.name, "status": "done", "mode": "continue", "kind": result.kind, "model": result.model,
           "params": to_jsonable(params), "region": {**to_jsonable(result.region),
           "sources": [{"role": "audio", "path": str(region)}]},
           "variants": [to_jsonable(v) for v in result.variants]}  # fmt: skip
    (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")


def cell(check: Any) -> str:
    if check is None:
        return "-"
    mark = "" if check.ok is None else (" ok" if check.ok else " NO")
    return f"{check.value}{mark}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loops", default=DEFAULT_LOOPS)
    parser.add_argument("--grooves", default="colombo:97,millo:133")
    parser.add_argument("--chords", default="strings:100,space:120", help="chord-heavy lmms regions, SOUNDS:BPM")
    parser.add_argument("--no-demo", action="store_true", help="leave out make demo-audio's region")
    parser.add_argument(
        "--harmony-weight",
        type=float,
        default=None,
        help="the prior's harmony weight (0: plan without harmony; default: the engine's)",
    )
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--similarity", type=float, default=None)
    parser.add_argument("--keep-opening", choices=("auto", "yes", "no"), default="auto")
    parser.add_argument("--speed-repeats", type=int, default=3)
    parser.add_argument("--no-neural", action="store_true")
    parser.add_argument("--no-speed", action="store_true", help="only the measures (e.g. to compare settings)")
    parser.add_argument("--out", type=Path, default=RESULTS / "concat.json")
    args = parser.parse_args(argv)
    keep = {"auto": None, "yes": True, "no": False}[args.keep_opening]
    if args.harmony_weight is not None:
        concat_prior.HARMONY = args.harmony_weight
    params = GenerationParams(bars=args.bars, variants=args.variants, seed=args.seed, similarity=args.similarity,
                              keep_opening=keep)  # fmt: skip
    engine = LocalEngine(device="cpu")
    rows: list[list[str]] = []
    jobs: list[dict[str, Any]] = []
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, region, tempo, overrides in regions(args.loops, args.grooves, folder, args.chords, not args.no_demo):
            job_dir = folder / "jobs" / name
            job_params = replace(params, **overrides)
            result, seconds = run_job(engine, region, tempo, job_params, "segue-concat", job_dir)
            write_manifest(job_dir, region, result, job_params)
            score = evaluate_job(job_dir)
            summary = {c.name: c for c in score.summary}
            distinct = summary.get("variants_distinct")
            record: dict[str, Any] = {
                "job": name,
                "tempo_bpm": round(tempo, 2),
                "seconds": round(seconds, 3),
                "variants": [],
                "variants_distinct": distinct.value if distinct else None,
            }
            for v in score.variants:
                checks = {m: v.check(m) for m in MEASURES}
                failed += any(c is not None and c.ok is False for c in checks.values())
                rows.append([name, f"{tempo:.1f}", v.id] + [cell(checks[m]) for m in MEASURES]
                            + [cell(distinct) if v.id == "v01" else ""])  # fmt: skip
                record["variants"].append({m: (c.value if c else None) for m, c in checks.items()})
            failed += bool(distinct is not None and distinct.ok is False)
            jobs.append(record)
        header = ["job", "BPM", "variant", *MEASURES, "variants_distinct"]
        print(markdown_table(header, rows))  # noqa: T201
        speed = {} if args.no_speed else measure_speed(engine, folder, args)
    if speed:
        print()  # noqa: T201
        print(markdown_table(["engine", "job", "seconds", "audio seconds", "real-time factor"], speed["rows"]))  # noqa: T201
    if speed.get("ratio"):
        print(f"\nneural / concat time: {speed['ratio']:.0f}x")  # noqa: T201
    write_json(args.out, {"machine": machine(), "params": vars(args) | {"out": str(args.out)}, "jobs": jobs,
                          "harmony_weight": concat_prior.HARMONY,
                          "speed": speed, "failed_variants": failed})  # fmt: skip
    print(f"\n{failed} variant(s) or job(s) failed a measure; wrote {args.out}")  # noqa: T201
    return 0


def speed_regions(folder: Path) -> list[tuple[str, Path]]:
    """4-bar regions at 120 BPM: an lmms loop (22.05 kHz stereo) and a 48 kHz stereo hydrogen groove (or, without
    those packages, numpy drums at 48 kHz)."""
    out = []
    try:
        audio, rate, _ = lmms_loop("electro_beat01")  # 4.0 s for 2 bars: 120 BPM exactly
        out.append(("electro_beat01 (lmms, 22.05 kHz stereo)", write_wav(folder / "speed1.wav", audio, rate)))
    except MaterialMissing:
        pass
    try:
        audio, name = hydrogen_groove("colombo", 120.0, rate=48_000), "colombo groove (hydrogen, 48 kHz stereo)"
    except MaterialMissing:
        audio, name = synthetic_groove(120.0, 4, 48_000), "numpy drums (48 kHz stereo)"
    out.append((name, write_wav(folder / "speed2.wav", audio, 48_000)))
    return out


def measure_speed(engine: LocalEngine, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The whole job, 4 x 16 bars at 120 BPM, best of ``--speed-repeats``; the neural engine once on the last."""
    params = GenerationParams(bars=16, variants=4, seed=args.seed)
    produced = 4 * 16 * 2.0
    rows: list[list[str]] = []
    out: dict[str, Any] = {"audio_seconds": produced, "regions": []}
    best = 0.0
    region = folder
    for index, (name, region) in enumerate(speed_regions(folder)):
        times = []
        for i in range(args.speed_repeats):
            _, seconds = run_job(engine, region, 120.0, params, "segue-concat", folder / "speed" / f"c{index}-{i}")
            times.append(seconds)
        best = min(times)
        listed = ", ".join(f"{t:.2f}" for t in times)
        rows.append(["segue-concat", f"4 x 16 bars at 120 BPM, {name}", f"{best:.2f} (best of {len(times)}: {listed})",
                     f"{produced:.0f}", f"{produced / best:.0f}"])  # fmt: skip
        out["regions"].append({"region": name, "concat_seconds": times})
    if not args.no_neural:
        _, seconds = run_job(engine, region, 120.0, params, "segue-audio-small", folder / "speed" / "neural")
        rows.append(["segue-audio-small", "the last region", f"{seconds:.2f}", f"{produced:.0f}",
                     f"{produced / seconds:.1f}"])  # fmt: skip
        out["neural_seconds"] = seconds
        out["ratio"] = seconds / best
    out["rows"] = rows
    return out


if __name__ == "__main__":
    sys.exit(main())
