"""The whole-job rows of bench_midi_speed.py: rendering and writing a job's variants (against the renderer before
frame-ordered audio), ``LocalEngine.generate`` in process (fast against module decode path, and with each number of
candidates a variant) and ``segue continue`` as a user runs it (a new process per setting); the wall/CPU timing
helpers the script shares.

Not a benchmark of its own: ``bench_midi_speed.py`` imports it (it puts ``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.api import GenerationParams, GenerationRequest, Prompt
from engine.symbolic.continuation import SymbolicModel, decode_variant
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import Region

Timing = tuple[float, float]  # wall s, cpu s


def timed(fn: Callable[[], Any]) -> tuple[Any, Timing]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - w0, time.process_time() - c0)


def best(a: Timing | None, b: Timing) -> Timing:
    return b if a is None or b[0] < a[0] else a


# `segue continue` runs: extra environment of each setting
CLI_SETTINGS: dict[str, dict[str, str]] = {
    "default": {},  # SEGUE_DECODE_PRECISION=auto: bfloat16 where the CPU has it natively
    "float32": {"SEGUE_DECODE_PRECISION": "float32"},  # the default until this session
    "bf16": {"SEGUE_DECODE_PRECISION": "bfloat16"},
    "module": {"SEGUE_FAST_DECODE": "0"},
}


def bench_cli(
    region_path: Path, bars: int, variants: int, repeats: int, envs: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """``segue continue`` as a user runs it (a new process each time, ``make demo`` settings), per setting in
    ``envs`` (extra environment), alternating; best wall of ``repeats``, with the job's own phase timings."""
    import json
    import os
    import subprocess

    segue = Path(sys.executable).parent / "segue"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        names = list(envs)
        for r in range(repeats):
            for name in names if r % 2 == 0 else names[::-1]:
                n += 1
                out = Path(tmp) / f"run{n}"
                command = [str(segue), "continue", str(region_path), "--bars", str(bars), "--variants", str(variants)]
                command += ["--seed", "7", "--out", str(out), "--json"]
                w0, c0 = time.perf_counter(), _children_cpu()
                done = subprocess.run(
                    command, env={**os.environ, **envs[name]}, capture_output=True, text=True, check=True
                )
                wall, cpu = time.perf_counter() - w0, _children_cpu() - c0
                job = json.loads(done.stdout)
                timings = {k: float(v) for k, v in job.get("timings", {}).items()}
                if name not in results or wall < results[name]["wall"]:
                    results[name] = {"wall": wall, "cpu": cpu, "timings": timings}
    return results


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished children."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _channel_ordered_render(*args: Any, **kwargs: Any) -> Any:
    """The renderer as it was before frame-ordered audio: every stem and mix copied into [2, N] C order (which the
    WAV writer then copies back into frames)."""
    import numpy as np

    from engine.render.synth import Rendering, render

    r = render(*args, **kwargs)
    stems = {k: np.ascontiguousarray(v) for k, v in r.stems.items()}
    return Rendering(stems, np.ascontiguousarray(r.mix), r.sample_rate, r.gain, r.peak_dbfs, r.soundfont)


def bench_render(
    region: Region, rows: list[list[int]], sm: SymbolicModel, bars: int, repeats: int
) -> dict[str, Timing]:
    """Render each variant's continuation and the region + continuation and write them, as a job does."""
    import engine.pipelines.files as files_module  # the job's render helper, swapped for the baseline's
    from engine.pipelines.midi import MidiJobFiles  # the job's own writer: MIDI files, then the audio from them
    from engine.render.soundfont import find_soundfont

    names = part_names_for(region.parts)
    variants = [decode_variant(r, sm.tokenizer, region, bars, names) for r in rows[:4]]
    soundfont = find_soundfont(None)
    new_render = files_module.render
    out: dict[str, Timing] = {}
    for r in range(repeats):
        for key in ("baseline", "new") if r % 2 == 0 else ("new", "baseline"):
            files_module.render = new_render if key == "new" else _channel_ordered_render  # type: ignore[assignment]
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    files = MidiJobFiles(Path(tmp), region, bars, 44_100, soundfont, None)
                    _, t = timed(lambda: [files.write_variant(f"v{i + 1:02d}", i, v) for i, v in enumerate(variants)])  # noqa: B023
            finally:
                files_module.render = new_render
            out[key] = best(out.get(key), t)
    return out


def bench_job(region_path: Path, bars: int, variants: int, repeats: int) -> dict[str, Any]:
    from engine.local import LocalEngine

    engine = LocalEngine()
    request = GenerationRequest(
        prompt=Prompt(midi_path=region_path), params=GenerationParams(bars=bars, variants=variants, seed=7)
    )
    model = engine.loaded.symbolic("default").model
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine.generate(request, Path(tmp) / "warm")  # loads the model and the soundfont
        n = 0
        for r in range(repeats):
            for fast in (False, True) if r % 2 == 0 else (True, False):
                model.fast_decode = fast
                n += 1
                result, t = timed(lambda: engine.generate(request, Path(tmp) / f"job{n}"))  # noqa: B023
                key = "fast" if fast else "module"
                if key not in results or t[0] < results[key]["wall"]:
                    results[key] = {"wall": t[0], "cpu": t[1], "timings": dict(result.timings)}
    model.fast_decode = True
    return results


def bench_job_candidates(
    region_path: Path, bars: int, variants: int, repeats: int, counts: list[int]
) -> dict[int, Any]:
    """``LocalEngine.generate`` in process (``make demo`` settings, sampling and rendering) with each number of
    candidates a variant in ``counts`` (:data:`engine.symbolic.continuation.DEFAULT_CANDIDATES` set for the job),
    alternating the order round by round; best wall of ``repeats`` each, with the job's own phase timings."""
    import engine.symbolic.continuation as cont
    from engine.local import LocalEngine

    engine = LocalEngine()
    request = GenerationRequest(
        prompt=Prompt(midi_path=region_path), params=GenerationParams(bars=bars, variants=variants, seed=7)
    )
    saved = cont.DEFAULT_CANDIDATES
    results: dict[int, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine.generate(request, Path(tmp) / "warm")  # loads the model and the soundfont
            n = 0
            for r in range(repeats):
                for count in counts if r % 2 == 0 else counts[::-1]:
                    cont.DEFAULT_CANDIDATES = count
                    n += 1
                    result, t = timed(lambda: engine.generate(request, Path(tmp) / f"job{n}"))  # noqa: B023
                    if count not in results or t[0] < results[count]["wall"]:
                        results[count] = {"wall": t[0], "cpu": t[1], "timings": dict(result.timings)}
    finally:
        cont.DEFAULT_CANDIDATES = saved
    return results
