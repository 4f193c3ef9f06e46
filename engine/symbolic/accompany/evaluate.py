"""Export and measure an accompany model: held-out loss against baselines, and musical figures on chorales.

``python -m engine.symbolic.accompany.evaluate --src runs/segue-accompany-small
--out engine/models/segue-accompany-small --data data/corpus --data data/accompany/corpus``

1. Export: the weights as float16 (``model.safetensors``), ``config.json``, ``tokenizer.json``, ``train_log.jsonl``.
2. Held-out loss (nats per scored token: the missing tracks' tokens, see
   :func:`engine.symbolic.accompany.layout.build_sequence`) on the trainer's fixed validation examples, for the exported
   model, for the model it was warm-started from (its vocabulary extended, not fine-tuned) and for 4- and
   7-gram Kneser-Ney models (:mod:`engine.symbolic.ngram`) fit on training examples; and on the first 120
   examples with the known tracks' notes removed (how much the model uses the region).
3. Musical figures on held-out Bach chorales, with the engine's sampling defaults and again without the harmony
   rule (:class:`engine.symbolic.accompany.generate.HarmonyBias`). The soprano of a 4-bar window is the region; the
   model writes bass and piano (2 variants). Measured on the generated notes and, for reference, on Bach's own
   lower voices in the same window: share of notes in the chorale's key (Krumhansl-Kessler estimate over the
   whole chorale); bars and length exact; notes inside each part's range; bass onsets consonant with the sounding
   melody note; Bach's bass onsets where the generated bass has Bach's pitch class (against a tonic-pedal bass);
   piano notes that clash (second, seventh, tritone) with the melody or bass sounding at their onset (Bach's alto
   and tenor against his soprano and bass, for reference).

The figures are written into ``config.json`` (``evaluation``) and printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.api import Meter, Prompt
from engine.checkpoints import find_checkpoint, read_checkpoint, write_json_atomic
from engine.midi_io import Conductor, PartNotes, build_midi, save_midi
from engine.midi_io import Note as MidiNote
from engine.symbolic.accompany.generate import (
    DEFAULT_HARMONY_PENALTY,
    AccompanyModel,
    accompany_region,
    estimate_key,
    key_pitch_classes,
)
from engine.symbolic.accompany.layout import (
    ROLE_BY_NAME,
    Sequence_,
    Tokens,
    assign_roles,
    extend_vocabulary,
    load_accompany,
    save_accompany,
)
from engine.symbolic.accompany.train import (
    ShiftTable,
    draw_examples,
    evaluate_examples,
    load_pieces,
    split_pieces,
    val_examples,
)
from engine.symbolic.ngram import NGramModel
from engine.symbolic.region import read_region
from engine.training import LOG_NAME

log = logging.getLogger(__name__)

CONSONANT = frozenset({0, 3, 4, 7, 8, 9})  # intervals mod 12: unison/octave, thirds, fifth, sixths
CLASH = frozenset({1, 2, 6, 10, 11})  # seconds, sevenths, tritone (against the melody or the bass)
WINDOW_BARS = 4


def export(src: Path, out: Path) -> AccompanyModel:
    source = read_checkpoint(src)
    model, tokenizer = load_accompany(source)
    extra = {k: v for k, v in source.config.items() if k not in ("type", "name", "gpt", "parameters", "task")}
    extra["weights_dtype"] = "float16"
    save_accompany(model.half(), tokenizer, out, extra)
    if (src / LOG_NAME).is_file():
        shutil.copyfile(src / LOG_NAME, out / LOG_NAME)
    return AccompanyModel.load(read_checkpoint(out))  # exactly what users will load


def ngram_loss(train_examples: list[Any], val_set: list[Any], vocab_size: int, order: int = 4) -> float:
    stream = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in train_examples])
    ngram = NGramModel(order, vocab_size).fit(stream)
    total, count = 0.0, 0
    for e in val_set:
        ids = np.asarray(e.ids, dtype=np.int64)
        mask = np.asarray(e.loss_mask, dtype=bool)
        probs = ngram.prob(ngram.contexts(ids)[mask], ids[mask])
        total -= float(np.log(probs).sum())
        count += int(mask.sum())
    return total / max(1, count)


def without_known_notes(seq: Sequence_, tokens: Tokens) -> Sequence_:
    """``seq`` with the known tracks' notes removed (their headers and bar lines kept): what the missing tracks
    cost when the model cannot see the region."""
    fill = seq.ids.index(tokens.fill)
    known = seq.ids[:fill]
    kept = [
        t
        for j, t in enumerate(known)
        if t in (tokens.bos, tokens.track, tokens.bar)
        or t in tokens.drop
        or t in tokens.time_signatures.values()
        or (j > 0 and known[j - 1] == tokens.track)
    ]
    return Sequence_(kept + seq.ids[fill:], [False] * len(kept) + seq.loss_mask[fill:])


def _sounding(notes: list[tuple[int, int, int, int]], tick: int) -> int | None:
    for start, duration, pitch, _ in notes:
        if start <= tick < start + duration:
            return pitch
    return None


def chorale_windows(
    folders: list[Path], keys: list[str]
) -> list[tuple[str, dict[str, list[tuple[int, int, int, int]]], int, float, int, int]]:  # noqa: E501
    """(key, roles, tpq, tempo, window start tick, bar ticks) of held-out four-voice 4/4 Bach chorales."""
    from symusic import Score

    out = []
    for key in keys:
        if not key.startswith("bach/"):
            continue
        path = next((f / key for f in folders if (f / key).is_file()), None)
        if path is None:
            continue
        score: Any = Score(str(path))  # symusic's stubs leave the tick score's fields out
        sigs = {(int(t.numerator), int(t.denominator)) for t in score.time_signatures}
        if sigs != {(4, 4)}:
            continue
        tracks = [
            [(int(n.time), int(n.duration), int(n.pitch), int(n.velocity)) for n in t.notes] for t in score.tracks
        ]
        roles = assign_roles(tracks)
        if set(roles) != {"soprano", "alto", "tenor", "bass"}:
            continue
        tpq = int(score.ticks_per_quarter)
        bar = 4 * tpq
        bars = max(s + d for s, d, _, _ in roles["soprano"]) // bar
        first = 4 if bars >= 8 else 0
        if bars < first + WINDOW_BARS:
            continue
        tempo = float(score.tempos[0].qpm) if len(score.tempos) else 90.0
        out.append((key, roles, tpq, tempo, first * bar, bar))
    return out


def _window(notes: list[tuple[int, int, int, int]], start: int, end: int) -> list[tuple[int, int, int, int]]:
    return [(s - start, min(d, end - s), p, v) for s, d, p, v in notes if start <= s < end]


def musical_figures(
    model: AccompanyModel, windows: list[Any], seeds: tuple[int, ...] = (1, 2), harmony_penalty: float | None = None
) -> dict[str, Any]:
    """The figures of the module docstring; ``harmony_penalty`` None: the engine's default."""
    penalty = DEFAULT_HARMONY_PENALTY if harmony_penalty is None else harmony_penalty
    counts: dict[str, float] = {
        "notes": 0, "in_key": 0, "in_range": 0, "bass_onsets": 0, "bass_consonant": 0,
        "ref_notes": 0, "ref_in_key": 0, "ref_bass_onsets": 0, "ref_bass_consonant": 0,
        "agree_points": 0, "agree": 0, "pedal_agree": 0, "variants": 0, "bars_exact": 0, "length_exact": 0,
        "piano_onsets": 0, "piano_clash": 0, "ref_inner_onsets": 0, "ref_inner_clash": 0,
    }  # fmt: skip
    seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for n, (key, roles, tpq, tempo, start, bar) in enumerate(windows):
            end = start + WINDOW_BARS * bar
            weights = [0.0] * 12
            for notes in roles.values():
                for _, d, p, _ in notes:
                    weights[p % 12] += d
            tonic, mode = estimate_key(weights)
            scale = key_pitch_classes(tonic, mode)
            melody = _window(roles["soprano"], start, end)
            path = Path(tmp) / f"region{n}.mid"
            part = PartNotes("melody", 73, tuple(MidiNote(s, d, p, v) for s, d, p, v in melody))
            conductor = Conductor(((0, tempo),), ((0, Meter(4, 4)),))
            save_midi(build_midi(tpq, conductor, [part], WINDOW_BARS * bar), path)
            region = read_region(Prompt(midi_path=path))
            t0 = time.perf_counter()
            variants = accompany_region(
                model, region, ["bass", "piano"], [s + 1000 * n for s in seeds], harmony_penalty=penalty
            )
            seconds += time.perf_counter() - t0
            ref_bass = _window(roles["bass"], start, end)
            for _s, _, p, _ in _window(roles["alto"], start, end) + _window(roles["tenor"], start, end) + ref_bass:
                counts["ref_notes"] += 1
                counts["ref_in_key"] += p % 12 in scale
            for s, _, p, _ in ref_bass:
                m = _sounding(melody, s)
                if m is not None:
                    counts["ref_bass_onsets"] += 1
                    counts["ref_bass_consonant"] += (m - p) % 12 in CONSONANT
            for _s, _, p, _ in _window(roles["alto"], start, end) + _window(roles["tenor"], start, end):
                outer = [x for x in (_sounding(melody, _s), _sounding(ref_bass, _s)) if x is not None]
                counts["ref_inner_onsets"] += 1
                counts["ref_inner_clash"] += any((x - p) % 12 in CLASH for x in outer)
            for parts in variants:
                counts["variants"] += 1
                gen_bass = [(x.start, x.duration, x.pitch, x.velocity) for x in parts[0].notes]
                for x in parts[1].notes:
                    outer = [y for y in (_sounding(melody, x.start), _sounding(gen_bass, x.start)) if y is not None]
                    counts["piano_onsets"] += 1
                    counts["piano_clash"] += any((y - x.pitch) % 12 in CLASH for y in outer)
                exact = region.length_bars == WINDOW_BARS and region.place_at_tick == WINDOW_BARS * bar
                counts["length_exact"] += exact and all(
                    note.start + note.duration <= region.place_at_tick for p in parts for note in p.notes
                )
                counts["bars_exact"] += all(
                    {note.start // bar for note in p.notes} == set(range(WINDOW_BARS)) for p in parts
                )
                for p in parts:
                    role = ROLE_BY_NAME[p.name]
                    for note in p.notes:
                        counts["notes"] += 1
                        counts["in_key"] += note.pitch % 12 in scale
                        counts["in_range"] += role.low <= note.pitch <= role.high
                bass = [(x.start, x.duration, x.pitch, x.velocity) for x in parts[0].notes]
                for s, _, p, _ in bass:
                    m = _sounding(melody, s)
                    if m is not None:
                        counts["bass_onsets"] += 1
                        counts["bass_consonant"] += (m - p) % 12 in CONSONANT
                for s, _, p, _ in ref_bass:
                    g = _sounding(bass, s)
                    counts["agree_points"] += 1
                    counts["agree"] += g is not None and g % 12 == p % 12
                    counts["pedal_agree"] += p % 12 == tonic
            log.info("%s: %d/%d done", key, n + 1, len(windows))
    c = counts

    def share(a: str, b: str) -> float:
        return round(c[a] / c[b], 4) if c[b] else float("nan")

    return {
        "chorales": len(windows),
        "variants": int(c["variants"]),
        "generated_notes": int(c["notes"]),
        "in_key_share": share("in_key", "notes"),
        "bach_in_key_share": share("ref_in_key", "ref_notes"),
        "in_range_share": share("in_range", "notes"),
        "bars_exact_share": share("bars_exact", "variants"),
        "length_exact_share": share("length_exact", "variants"),
        "bass_consonant_share": share("bass_consonant", "bass_onsets"),
        "bach_bass_consonant_share": share("ref_bass_consonant", "ref_bass_onsets"),
        "bass_matches_bach_share": share("agree", "agree_points"),
        "tonic_pedal_matches_bach_share": share("pedal_agree", "agree_points"),
        "piano_clash_share": share("piano_clash", "piano_onsets"),
        "bach_inner_voices_clash_share": share("ref_inner_clash", "ref_inner_onsets"),
        "generate_seconds_per_window": round(seconds / max(1, len(windows)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, required=True, help="trained checkpoint folder")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (its name is the model name)")
    parser.add_argument("--data", type=Path, action="append", required=True, help="the training data folders")
    parser.add_argument("--chorales", type=int, default=16, help="held-out chorales for the musical figures")
    parser.add_argument("--ngram-examples", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-baselines", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.out.resolve() == args.src.resolve():
        parser.error("--out must differ from --src")
    model = export(args.src, args.out)
    config: dict[str, Any] = json.loads((args.out / "config.json").read_text())
    training = config.get("training", {})
    tokens = model.tokens
    pieces = load_pieces(args.data, model.tokenizer, tokens, args.src / "pieces.json")
    train, val = split_pieces(pieces, float(training.get("val_fraction", 0.1)))
    block = model.model.config.block_size
    max_bars = int(training.get("max_bars", 8))
    val_set = val_examples(val, tokens, 6, block, max_bars)
    device = torch.device("cpu")
    figures: dict[str, Any] = {
        "val_examples": len(val_set),
        "val_scored_tokens": sum(sum(e.loss_mask) for e in val_set),
    }
    t0 = time.perf_counter()
    figures["val_loss"] = evaluate_examples(model.model, val_set, tokens.pad, device)
    log.info("val loss %.4f (%.0fs)", figures["val_loss"], time.perf_counter() - t0)
    first = val_set[:120]
    figures["conditioning"] = {
        "examples": len(first),
        "val_loss": evaluate_examples(model.model, first, tokens.pad, device),
        "val_loss_known_notes_removed": evaluate_examples(
            model.model, [without_known_notes(e, tokens) for e in first], tokens.pad, device
        ),
    }
    if not args.skip_baselines:
        from engine.symbolic.weights import load_symbolic

        init = training.get("init", "segue-midi-small")
        if init and init != "none":
            base, _ = load_symbolic(find_checkpoint(init, kind="midi"))
            extended = extend_vocabulary(base, tokens.vocab_size, int(training.get("seed", 0))).eval()
            figures["val_loss_init_model"] = evaluate_examples(extended, val_set, tokens.pad, device)
            figures["init_model"] = init
        rng = np.random.default_rng(0)
        shifts = ShiftTable(model.tokenizer, tokens.vocab_size)
        drawn = [
            shifts.transpose(e, rng) for e in draw_examples(train, tokens, rng, args.ngram_examples, block, max_bars)
        ]
        figures["val_loss_4gram"] = ngram_loss(drawn, val_set, tokens.vocab_size)
        figures["val_loss_7gram"] = ngram_loss(drawn, val_set, tokens.vocab_size, order=7)
        figures["ngram_train_examples"] = len(drawn)
    windows = chorale_windows(args.data, sorted(p.key for p in val))[: args.chorales]
    figures["chorale_keys"] = [w[0] for w in windows]
    figures["chorales"] = musical_figures(model, windows)
    figures["chorales_without_harmony_rule"] = musical_figures(model, windows, harmony_penalty=0.0)
    config["val_loss"] = figures["val_loss"]
    config["evaluation"] = figures
    write_json_atomic(args.out / "config.json", config)
    print(json.dumps(figures, indent=1))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
