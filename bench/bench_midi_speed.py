"""MIDI continuation speed, side by side: the module path (baseline) against the fast decode path (Segue's default).

    python bench/bench_midi_speed.py [--regions pop_100bpm_4-4.mid chorale_style_72bpm_4-4.mid] [--bars 8]
                                     [--variants 4] [--rows 4 12] [--repeats 3] [--threads 1] [--no-job]

For each region (examples/regions/, our own files):

- **sampling**: :func:`engine.symbolic.sampling.sample_continuations` with the region's prompt and constraints, the
  same seeds in both modes (so the same tokens: checked and printed), at each batch size in ``--rows`` (4 = the
  variants; 12 = 4 variants x 3 candidates, the candidate pool of engine.symbolic.continuation). Baseline: the
  GPT's module path (``model.fast_decode = False``, what every job ran before); new: the fast path
  (engine/symbolic/model_fast.py). The two alternate round by round; best of ``--repeats``.
- **rendering**: every variant's ``continuation.mid`` and ``full.mid`` rendered to stems and mix the way a job
  does (engine.render.synth.render), from the sampled variants.
- **whole job**: ``LocalEngine.generate`` on the region (``make demo`` settings: 8 bars, 4 variants, seed 7), with
  whatever the job does by default (adaptation, candidates, guidance, rendering, WAV writing), once with the
  module path and once with the fast path, alternating, best of ``--job-repeats``.

Wall seconds and CPU seconds (this process's, all threads) are both printed: on a shared machine the wall clock
counts other people's work, CPU seconds much less. Writes bench/results/midi_speed.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import RESULTS, machine, markdown_table, write_json  # noqa: E402

from engine.api import GenerationParams, GenerationRequest, Prompt  # noqa: E402
from engine.checkpoints import find_checkpoint  # noqa: E402
from engine.symbolic.continuation import (  # noqa: E402
    SymbolicModel,
    decode_variant,
    encode_prompt,
    region_constraints,
)
from engine.symbolic.naming import part_names_for  # noqa: E402
from engine.symbolic.region import Region, read_region  # noqa: E402
from engine.symbolic.sampling import sample_continuations  # noqa: E402

Timing = tuple[float, float]  # wall s, cpu s


def timed(fn: Callable[[], Any]) -> tuple[Any, Timing]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - w0, time.process_time() - c0)


def best(a: Timing | None, b: Timing) -> Timing:
    return b if a is None or b[0] < a[0] else a


def bench_sampling(
    sm: SymbolicModel, region: Region, bars: int, rows: int, repeats: int
) -> tuple[dict[str, Timing], int, int, bool, list[list[int]]]:
    block = sm.model.config.block_size
    prompt = encode_prompt(region, sm.tokenizer, sm.vocab, block // 2)
    constraints = region_constraints(region, sm.vocab, bars)
    seeds = [1000 + i for i in range(rows)]
    results: dict[str, Timing] = {}
    tokens: dict[bool, list[list[int]]] = {}
    for r in range(repeats):
        for fast in (False, True) if r % 2 == 0 else (True, False):
            sm.model.fast_decode = fast
            out, t = timed(lambda: sample_continuations(sm.model, prompt, sm.vocab, constraints, seeds))
            tokens[fast] = out
            key = "fast" if fast else "module"
            results[key] = best(results.get(key), t)  # type: ignore[arg-type]
    sm.model.fast_decode = True
    same = tokens[True] == tokens[False]
    generated = sum(len(t) for t in tokens[True])
    steps = max(len(t) for t in tokens[True])
    return results, generated, steps, same, tokens[True]


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


def ratio(base: float, new: float) -> str:
    return f"{base / new:.2f}x" if new > 0 else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--regions", nargs="+", default=["pop_100bpm_4-4.mid", "chorale_style_72bpm_4-4.mid"])
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--rows", type=int, nargs="+", default=[4, 12])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--job-repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-job", action="store_true", help="skip the whole-job rows")
    parser.add_argument("--out", default=str(RESULTS / "midi_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sm = SymbolicModel.load(find_checkpoint(args.model))
    table: list[list[str]] = []
    data: dict[str, Any] = {"machine": machine(args.threads), "model": sm.name, "bars": args.bars, "regions": {}}
    for name in args.regions:
        path = ROOT / "examples/regions" / name
        region = read_region(Prompt(midi_path=path))
        entry: dict[str, Any] = {"sampling": {}}
        first_rows: list[list[int]] | None = None
        for rows in args.rows:
            res, generated, steps, same, tokens = bench_sampling(sm, region, args.bars, rows, args.repeats)
            first_rows = first_rows or tokens
            entry["sampling"][rows] = {"seconds": res, "tokens": generated, "steps": steps, "same_tokens": same}
            (mw, mc), (fw, fc) = res["module"], res["fast"]
            table.append(
                [name, f"sampling, {rows} rows", f"{fw:.2f} / {fc:.2f}", f"{mw:.2f} / {mc:.2f}", ratio(mw, fw),
                 ratio(mc, fc), f"{steps / fw:.0f} vs {steps / mw:.0f}",
                 f"{generated} tokens, same tokens: {'yes' if same else 'NO'}"]
            )  # fmt: skip
        assert first_rows is not None
        render_times = bench_render(region, first_rows, sm, args.bars, args.repeats)
        entry["render"] = render_times
        (bw, bc), (rw, rc) = render_times["baseline"], render_times["new"]
        table.append(
            [name, "render + write 4 variants", f"{rw:.2f} / {rc:.2f}", f"{bw:.2f} / {bc:.2f}", ratio(bw, rw),
             ratio(bc, rc), "", "continuation + full per variant: stems, mixes, MIDI, 24-bit WAVs"]
        )  # fmt: skip
        if not args.no_job:
            job = bench_job(path, args.bars, args.variants, args.job_repeats)
            entry["job"] = job
            m, f = job["module"], job["fast"]
            parts = ", ".join(
                f"{k.replace('_seconds', '')} {f['timings'].get(k, 0):.2f} vs {m['timings'].get(k, 0):.2f}"
                for k in ("generate_seconds", "render_seconds")
            )
            table.append(
                [name, "whole job (segue continue)", f"{f['wall']:.2f} / {f['cpu']:.2f}",
                 f"{m['wall']:.2f} / {m['cpu']:.2f}", ratio(m["wall"], f["wall"]), ratio(m["cpu"], f["cpu"]), "",
                 parts]
            )  # fmt: skip
        data["regions"][name] = entry
    data["load_average_after"] = machine()["load_average"]
    write_json(Path(args.out), data)
    header = ["region", "what", "new wall / cpu s", "baseline wall / cpu s", "wall ratio", "cpu ratio", "steps/s",
              "notes"]  # fmt: skip
    print(
        f"MIDI speed: model {sm.name}, {args.bars} bars, {args.threads} torch thread(s), best of {args.repeats} "
        f"(jobs: {args.job_repeats}); load average {data['machine']['load_average']} -> {data['load_average_after']}"
    )
    print(markdown_table(header, table))
    print(f"json: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
