"""Audio -> MIDI speed and accuracy: Segue's transcribe_region against basic-pitch's own predict(), same ONNX model.

    python bench/bench_transcribe.py [--bars 12] [--repeats 3] [--threads 1] [--perturb 10] [--soundfont SF2]
                                     [--quick] [--out FILE.json]

A melody (quarters, 8ths and 16ths) is rendered through a soundfont (default: the bundled TimGM6mb, so that machines
compare; ``--soundfont system`` takes the soundfont search's first hit) at 44.1 kHz stereo, ``--bars`` bars of 4/4
at 100 BPM (12 bars: 28.8 s). Segue: :func:`engine.transcribe.region.transcribe_region` (soxr to 22.05 kHz, the model in
batches, basic-pitch's decoder, echo and overtone clean-up, grid quantisation, the MIDI file written). Baseline:
``basic_pitch.inference.predict`` on the same file with the same ``nmp.onnx`` (librosa loading, one window per call,
its decoder, no quantisation). Each is warmed up once (the first call builds the session and imports librosa), then
timed best of ``--repeats``, alternating; figures are seconds per 10 s of audio. The first (cold) call of each is
reported too. Accuracy: note F1 (onset within 50 ms and pitch, offsets ignored; mir_eval) of each against the notes
rendered. Stability: the model's activations for the melody perturbed as CPUs differ
(tests/support/transcribe_perturb.py: 0.5x to 3x its noise, alone and with 3 faint sub-harmonic ghosts),
``--perturb`` seeds each; how many runs change any note (onset tick or pitch) against the unperturbed transcription,
and the lowest note F1. Prints tables and writes bench/results/transcribe.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import add_tests_support, bench_parser, machine, markdown_table, parse_bench_args, write_json

add_tests_support()  # transcribe_perturb
TEMPO = 100.0
TPQ = 480
PHRASE = [  # (start beats, length beats, pitch), 4 bars
    (0, 1, 60), (1, 0.5, 62), (1.5, 0.5, 64), (2, 1, 65), (3, 1, 67), (4, 0.5, 69), (4.5, 0.5, 71),
    (5, 0.25, 72), (5.25, 0.25, 71), (5.5, 0.5, 69), (6, 1, 67), (7, 1, 65), (8, 0.5, 64), (8.5, 0.5, 62),
    (9, 1, 60), (10, 2, 67), (12, 0.5, 64), (12.5, 0.5, 65), (13, 1, 67), (14, 2, 72),
]  # fmt: skip


def render_melody(path: Path, bars: int, soundfont: str) -> list[tuple[float, float, int]]:
    """Write the melody (the phrase repeated, transposed each time) and return its notes in seconds."""
    from symusic import Score

    from engine.api import Meter
    from engine.midi_io import Conductor, Note, PartNotes, build_midi, save_midi
    from engine.render.synth import render
    from engine.render.wavfile import write_wav

    notes, spb = [], 60.0 / TEMPO
    for phrase in range(bars // 4):
        shift = (0, 2, -3, 5)[phrase % 4]
        for s, d, p in PHRASE:
            notes.append(Note(round((s + 16 * phrase) * TPQ), round(d * TPQ * 0.95), p + shift, 96))
    end = bars * 4 * TPQ
    midi = path.with_suffix(".mid")
    save_midi(build_midi(TPQ, Conductor(((0, TEMPO),), ((0, Meter(4, 4)),)), [PartNotes("m", 0, tuple(notes))], end),
              midi)  # fmt: skip
    from engine.render.soundfont import bundled_soundfont_path, find_soundfont

    font = find_soundfont(None if soundfont == "system" else soundfont or bundled_soundfont_path())
    write_wav(path, render(Score(str(midi)), 44_100, bars * 4 * spb, font).mix, 44_100)
    return [(n.start / TPQ * spb, (n.start + n.duration) / TPQ * spb, n.pitch) for n in notes]


def note_f1(reference: list[tuple[float, float, int]], estimated: list[tuple[float, float, int]]) -> float:
    import mir_eval
    import numpy as np

    if not estimated:
        return 0.0
    ref_i = np.array([[a, b] for a, b, _ in reference])
    est_i = np.array([[a, max(b, a + 1e-3)] for a, b, _ in estimated])
    ref_p = np.array([mir_eval.util.midi_to_hz(p) for _, _, p in reference])
    est_p = np.array([mir_eval.util.midi_to_hz(p) for _, _, p in estimated])
    _, _, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_i, ref_p, est_i, est_p, onset_tolerance=0.05, offset_ratio=None
    )
    return float(f1)


def perturbation_sweep(
    segue: Any,
    truth: list[tuple[float, float, int]],
    seeds: int,
    threads: int,
    scales: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0),
) -> list[dict[str, Any]]:
    """Transcribe the melody with its activations perturbed (tests/support/transcribe_perturb.py): per size, with
    and without ghosts, how many of ``seeds`` runs change a note against the unperturbed run, and the lowest F1."""
    import numpy as np
    from transcribe_perturb import jittered, stand_in, with_ghosts

    from engine.transcribe import model as transcribe

    seen: dict[str, Any] = {}

    def recording(mono: Any, progress: Any, cancel: Any) -> Any:
        seen.update(transcribe.model_output(mono, progress, cancel, threads))
        return seen

    def onsets(notes: list[tuple[float, float, int]]) -> set[tuple[int, int]]:
        return {(round(a * 1000), p) for a, _, p in notes}

    plain = onsets(segue(1000, recording))
    heard = [(a, b - a, p) for a, b, p in truth if (round(a * 1000), p) in plain]
    rows, run = [], 2000
    for scale in scales:
        for ghosts in (0, 3):
            changed, lowest = 0, 1.0
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                activations = jittered(seen, rng, scale)
                if ghosts:
                    with_ghosts(activations, heard, rng, ghosts)
                run += 1
                notes = segue(run, stand_in(activations))
                changed += onsets(notes) != plain
                lowest = min(lowest, note_f1(truth, notes))
            rows.append({"scale": scale, "ghosts": ghosts, "runs": seeds, "changed": changed, "lowest_f1": lowest})
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--bars", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--perturb", type=int, default=10, help="seeds per perturbation size (0: none)")
    parser.add_argument("--soundfont", default="", help="a .sf2/.sf3 path, or 'system'; default: bundled TimGM6mb")
    args = parse_bench_args(parser, argv, quick="4 bars, 2 repeats, 4 seeds", out="transcribe.json")
    if args.quick:
        args.bars, args.repeats, args.perturb = 4, 2, min(args.perturb, 4)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import contextlib
    import io

    from symusic import Score

    from engine.api import Meter
    from engine.transcribe import model as transcribe
    from engine.transcribe.grid import TranscriptionOptions
    from engine.transcribe.region import AudioRegion, transcribe_region

    options = TranscriptionOptions(threads=args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "melody.wav"
        truth = render_melody(wav, args.bars, args.soundfont)
        seconds = args.bars * 4 * 60.0 / TEMPO
        runs: dict[str, list[float]] = {"segue": [], "basic_pitch": []}
        estimates: dict[str, list[tuple[float, float, int]]] = {}
        cold: dict[str, float] = {}

        def segue(i: int, model: Any = None) -> list[tuple[float, float, int]]:
            out = Path(tmp) / f"t{i}.mid"
            transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), out, options, model=model)
            spq = 60.0 / TEMPO
            score = Score(str(out))
            tpq = score.ticks_per_quarter
            return [(n.time / tpq * spq, (n.time + n.duration) / tpq * spq, int(n.pitch)) for t in score.tracks
                    for n in t.notes]  # fmt: skip

        def baseline(i: int) -> list[tuple[float, float, int]]:
            with transcribe._quiet_import(), contextlib.redirect_stdout(io.StringIO()):
                from basic_pitch.inference import Model, predict

                model = baseline_model.setdefault("m", Model(transcribe.model_path()))
                _, _, events = predict(str(wav), model)
            return [(float(s), float(e), int(p)) for s, e, p, *_ in events]

        baseline_model: dict[str, Any] = {}
        for name, fn in (("segue", segue), ("basic_pitch", baseline)):
            t0 = time.perf_counter()
            estimates[name] = fn(0)
            cold[name] = time.perf_counter() - t0
        for r in range(args.repeats):
            for name, fn in (("segue", segue), ("basic_pitch", baseline)):
                t0 = time.perf_counter()
                fn(r + 1)
                runs[name].append(time.perf_counter() - t0)

        stability = perturbation_sweep(segue, truth, args.perturb, args.threads) if args.perturb else []

    per10 = {k: min(v) / seconds * 10 for k, v in runs.items()}
    data = {
        "machine": machine(args.threads),
        "settings": {
            "bars": args.bars,
            "tempo_bpm": TEMPO,
            "audio_seconds": seconds,
            "repeats": args.repeats,
            "threads": args.threads,
            "sample_rate": 44_100,
            "channels": 2,
        },  # fmt: skip
        "seconds_per_10s": per10,
        "cold_first_call_seconds": cold,
        "runs_seconds": runs,
        "note_f1": {k: note_f1(truth, v) for k, v in estimates.items()},
        "notes": {"reference": len(truth), **{k: len(v) for k, v in estimates.items()}},
        "ratio": per10["segue"] / per10["basic_pitch"],
        "stability": stability,
    }
    write_json(args.out, data)
    rows = [
        [name, f"{per10[name]:.3f}", f"{cold[name]:.2f}", f"{data['note_f1'][name]:.3f}", data["notes"][name]]
        for name in ("segue", "basic_pitch")
    ]
    print(markdown_table(["", "s per 10 s audio (warm)", "first call s", "note F1", "notes"], rows))
    print(f"{seconds:.1f} s of audio, {len(truth)} notes, {args.threads} thread(s); ratio {data['ratio']:.3g}")
    if stability:
        rows = [[r["scale"], r["ghosts"], f"{r['changed']}/{r['runs']}", f"{r['lowest_f1']:.3f}"] for r in stability]
        print()
        print(markdown_table(["noise x", "ghosts", "runs with any note changed", "lowest note F1"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
