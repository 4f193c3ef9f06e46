"""Accompany mode: the track-infilling layout, a tiny training run, the sampler, the job folder, bad input.

Most tests use a tiny random-weight accompany checkpoint made here (plumbing, never musical quality); the tests
marked ``shipped`` use engine/models/segue-accompany-small on a G major chorale melody.
"""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
import torch
from miditok import TokSequence

from engine.api import CancelToken, GenerationParams, GenerationRequest, Meter, Prompt
from engine.checkpoints import SHIPPED_DIR, read_checkpoint
from engine.errors import BadInputError, CancelledError
from engine.local import LocalEngine
from engine.midi_io import Conductor, Note, PartNotes, build_midi, save_midi
from engine.nn.model import GPT, PRESETS, GPTConfig
from engine.symbolic.accompany import train as train_accompany
from engine.symbolic.accompany.generate import AccompanyModel, accompany_region, estimate_key, known_roles
from engine.symbolic.accompany.layout import (
    ROLE_BY_NAME,
    Tokens,
    assign_roles,
    build_sequence,
    encode_piece,
    extend_vocabulary,
    is_accompany_checkpoint,
    load_accompany,
    sample_example,
    save_accompany,
)
from engine.symbolic.region import read_region
from engine.symbolic.tokenizer import make_tokenizer

TPQ = 480
SHIPPED = SHIPPED_DIR / "segue-accompany-small"
G_MAJOR = {7, 9, 11, 0, 2, 4, 6}
# a G major chorale-like melody, four bars of 4/4
MELODY = [(67, 1), (67, 1), (71, 1), (74, 1), (72, 1), (71, 1), (69, 2), (71, 1), (72, 1), (74, 1), (71, 1)]
MELODY += [(69, 1), (67, 1), (67, 2)]


def write_parts(path: Path, parts: list[PartNotes], bars: int, bpm: float = 90.0, meter: Meter | None = None) -> Path:
    meter = meter or Meter(4, 4)
    mid = build_midi(TPQ, Conductor(((0, bpm),), ((0, meter),)), parts, round(bars * meter.quarters_per_bar * TPQ))
    save_midi(mid, path)
    return path


def melody_part(notes: list[tuple[int, int]] = MELODY, program: int = 73) -> PartNotes:
    out, t = [], 0
    for pitch, quarters in notes:
        out.append(Note(t, quarters * TPQ - 20, pitch, 90))
        t += quarters * TPQ
    return PartNotes("melody", program, tuple(out))


def four_part_piece(bars: int = 8, shift: int = 0) -> list[PartNotes]:
    """A C major four-voice piece in half notes (I-IV-V-I over and over)."""
    chords = [(72, 67, 64, 48), (72, 69, 65, 53), (71, 67, 62, 55), (72, 67, 64, 48)]
    voices: list[list[Note]] = [[], [], [], []]
    for half in range(bars * 2):
        chord = chords[half % 4]
        for v in range(4):
            voices[v].append(Note(half * 2 * TPQ, 2 * TPQ - 10, chord[v] + shift, 80))
    return [PartNotes(f"voice{v}", program, tuple(voices[v])) for v, program in enumerate((40, 41, 42, 43))]


@pytest.fixture(scope="module")
def tokenizer():  # noqa: ANN201 - miditok's REMI
    return make_tokenizer()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:  # noqa: ANN001
    tokens = Tokens.from_tokenizer(tokenizer)
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{**PRESETS["tiny"].to_dict(), "vocab_size": tokens.vocab_size}))
    out = tmp_path_factory.mktemp("ckpt") / "tiny-accompany"
    save_accompany(model, tokenizer, out, {"description": "random weights, for tests only"})
    return out


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(device="cpu")


# ---------------------------------------------------------------------------------------------- layout


def test_tokens_add_two_layout_tokens(tokenizer) -> None:  # noqa: ANN001
    tokens = Tokens.from_tokenizer(tokenizer)
    assert tokens.track == len(tokenizer) and tokens.fill == len(tokenizer) + 1
    assert tokens.vocab_size % 8 == 0 and tokens.vocab_size >= len(tokenizer) + 2


def test_roles_by_register_and_doublings_dropped() -> None:
    s = [(0, 480, 72, 80), (480, 480, 74, 80)]
    a = [(0, 480, 67, 80), (480, 480, 65, 80)]
    t = [(0, 480, 60, 80), (480, 480, 59, 80)]
    b = [(0, 480, 48, 80), (480, 480, 43, 80)]
    doubling = [(0, 480, 60, 80), (480, 480, 62, 80)]  # an octave below the soprano, same onsets
    assert assign_roles([b, t, s, a]) == {"soprano": s, "alto": a, "tenor": t, "bass": b}
    assert assign_roles([s, b]) == {"soprano": s, "bass": b}
    high = [(0, 480, 84, 80), (480, 480, 86, 80)]  # the soprano an octave up: a doubling, left out
    assert assign_roles([s, high, a, b]) == {"soprano": high, "alto": a, "bass": b}
    assert assign_roles([s, doubling, b]) == {"soprano": s, "bass": b}
    assert assign_roles([s]) == {}


def test_piece_round_trip_bar_by_bar(tmp_path: Path, tokenizer) -> None:  # noqa: ANN001
    """Every role's bars decode back to its notes, bar i of every track holds bar i's notes."""
    tokens = Tokens.from_tokenizer(tokenizer)
    parts = four_part_piece(bars=6)
    piece = encode_piece(tokenizer, tokens, write_parts(tmp_path / "p.mid", parts, 6), "x/p.mid")
    assert piece is not None and piece.bar_count == 6
    assert set(piece.bars) == {"soprano", "alto", "tenor", "bass", "piano"}
    for role, part in zip(("soprano", "alto", "tenor", "bass"), parts, strict=True):
        bars = piece.bars[role]
        assert len(bars) == 6 and all(b[0] == tokens.bar for b in bars)
        flat = [i for b in bars for i in b]
        assert all(i not in tokens.drop for i in flat)  # no tempo tokens inside tracks
        score = tokenizer.decode(TokSequence(ids=flat))
        decoded = sorted(
            (int(n.time) * TPQ // int(score.ticks_per_quarter), int(n.pitch)) for t in score.tracks for n in t.notes
        )
        assert decoded == sorted((n.start, n.pitch) for n in part.notes)
        assert {int(t.program) for t in score.tracks} == {ROLE_BY_NAME[role].program}
    assert sum(len(b) for b in piece.bars["piano"]) > sum(len(b) for b in piece.bars["alto"])


def test_sequence_layout_and_loss_mask(tokenizer) -> None:  # noqa: ANN001
    tokens = Tokens.from_tokenizer(tokenizer)
    bar = [tokens.bar, tokens.time_signatures["4/4"], 99]
    seq = build_sequence(tokens, tokens.tempo(90), [(40, [bar, bar])], [(32, [bar, bar]), (0, [bar])])
    p = tokens.programs
    expected = [tokens.bos, tokens.tempo(90), tokens.track, p[40], *bar, *bar, tokens.fill, p[32], p[0]]
    expected += [tokens.track, p[32], *bar, *bar, tokens.track, p[0], *bar, tokens.eos]
    assert seq.ids == expected
    scored = [i for i, m in zip(seq.ids, seq.loss_mask, strict=True) if m]
    assert scored == [*bar, *bar, tokens.track, *bar, tokens.eos]  # the missing bars and their ends, no headers


def test_examples_fit_the_context_and_score_only_missing_tracks(tmp_path: Path, tokenizer) -> None:  # noqa: ANN001
    tokens = Tokens.from_tokenizer(tokenizer)
    piece = encode_piece(tokenizer, tokens, write_parts(tmp_path / "p.mid", four_part_piece(8), 8), "x/p.mid")
    assert piece is not None
    rng = np.random.default_rng(0)
    for _ in range(20):
        seq = sample_example(piece, tokens, rng, block_size=256)
        assert seq is not None and len(seq.ids) <= 257
        assert seq.ids.count(tokens.fill) == 1 and seq.ids[-1] == tokens.eos
        fill_at = seq.ids.index(tokens.fill)
        assert not any(seq.loss_mask[: fill_at + 1])


def test_extend_vocabulary_keeps_the_old_rows() -> None:
    torch.manual_seed(0)
    base = GPT(GPTConfig(**{**PRESETS["tiny"].to_dict(), "vocab_size": 509}))
    new = extend_vocabulary(base, 512)
    assert new.wte.weight.shape[0] == 512
    assert torch.equal(new.wte.weight[:509], base.wte.weight)
    assert torch.equal(new.blocks[0].attn.qkv.weight, base.blocks[0].attn.qkv.weight)
    x = torch.randint(0, 509, (1, 16))
    assert torch.allclose(new(x)[0][..., :509], base(x)[0], atol=1e-5)  # the old tokens' logits are unchanged


# ---------------------------------------------------------------------------------------------- training


def test_training_a_tiny_model_and_resuming(tmp_path: Path) -> None:
    data = tmp_path / "data" / "set"
    data.mkdir(parents=True)
    for k in range(4):
        write_parts(data / f"piece{k}.mid", four_part_piece(8, shift=k), 8)
    write_parts(data / "solo.mid", [melody_part()], 4)  # one part: not a training piece
    out = tmp_path / "tiny-acc"
    argv = ["--data", str(tmp_path / "data"), "--out", str(out), "--init", "none", "--preset", "tiny"]
    argv += ["--max-steps", "4", "--eval-every", "2", "--batch-size", "2", "--max-bars", "4", "--val-per-piece", "2"]
    assert train_accompany.main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "accompany" and config["modes"] == ["accompany"]
    assert "bass" in config["parts"] and "piano" in config["parts"]
    assert config["training"]["train_pieces"] + config["training"]["val_pieces"] == 4
    assert np.isfinite(config["val_loss"])
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "step" in r] == [2, 4]
    assert train_accompany.main([*argv[:-8], "--max-steps", "6", "--eval-every", "2", "--batch-size", "2",
                                 "--max-bars", "4", "--val-per-piece", "2", "--resume"]) == 0  # fmt: skip
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "step" in r] == [2, 4, 6]
    model, _ = load_accompany(read_checkpoint(out))
    assert model.config.vocab_size == Tokens.from_tokenizer(make_tokenizer()).vocab_size


def test_training_refuses_a_folder_without_multi_part_pieces(tmp_path: Path) -> None:
    data = tmp_path / "solo"
    data.mkdir()
    write_parts(data / "solo.mid", [melody_part()], 4)
    argv = ["--data", str(data), "--out", str(tmp_path / "o"), "--init", "none", "--preset", "tiny", "--max-steps", "1"]
    with pytest.raises(BadInputError, match="multi-part"):
        train_accompany.main(argv)


# ---------------------------------------------------------------------------------------------- sampling


def test_sampler_writes_exactly_the_region_bars_per_part(tmp_path: Path, tiny_checkpoint: Path) -> None:
    model = AccompanyModel.load(read_checkpoint(tiny_checkpoint))
    region = read_region(Prompt(midi_path=write_parts(tmp_path / "m.mid", [melody_part()], 4)))
    variants = accompany_region(model, region, ["piano", "bass"], seeds=[1, 2])
    assert len(variants) == 2
    bar = 4 * TPQ
    for parts in variants:
        assert [p.name for p in parts] == ["piano", "bass"]
        for p in parts:
            assert {n.start // bar for n in p.notes} == {0, 1, 2, 3}  # every bar, none after
            assert all(n.start + n.duration <= 4 * bar for n in p.notes)
            role = ROLE_BY_NAME[p.name]
            assert all(role.low <= n.pitch <= role.high for n in p.notes)
            assert p.program == role.program
            assert len({(n.start, n.pitch) for n in p.notes}) == len(p.notes)  # no doubled notes
        bass = parts[1]
        assert len({n.start for n in bass.notes}) == len(bass.notes)  # a voice: one note at a time
    again = accompany_region(model, region, ["piano", "bass"], seeds=[1])
    assert again[0] == variants[0]  # a seed gives the same variant in any batch


def test_long_regions_are_written_in_chunks(tmp_path: Path, tiny_checkpoint: Path) -> None:
    model = AccompanyModel.load(read_checkpoint(tiny_checkpoint))  # tiny: a 256-token context
    region = read_region(Prompt(midi_path=write_parts(tmp_path / "m.mid", [melody_part(MELODY * 3)], 12)))
    (bass,) = accompany_region(model, region, ["bass"], seeds=[3])[0]
    assert {n.start // (4 * TPQ) for n in bass.notes} == set(range(12))


def test_key_estimate() -> None:
    weights = [0.0] * 12
    for pitch, quarters in MELODY:
        weights[pitch % 12] += quarters
    assert estimate_key(weights) == (7, "major")


def test_known_roles_leave_the_asked_voices(tmp_path: Path) -> None:
    region = read_region(Prompt(midi_path=write_parts(tmp_path / "m.mid", [melody_part()], 4)))
    assert list(known_roles(region, ["bass", "piano"])) == ["soprano"]
    with pytest.raises(BadInputError, match="leaves no voice"):
        known_roles(region, ["soprano", "alto", "tenor", "bass"])


# ---------------------------------------------------------------------------------------------- engine


def _request(
    midi: Path | None, model: str, parts: tuple[str, ...] = ("bass", "piano"), **kw: object
) -> GenerationRequest:
    params = GenerationParams(mode="accompany", variants=2, parts=parts, seed=5)
    return GenerationRequest(prompt=Prompt(midi_path=midi, **kw), params=params, model=model)  # type: ignore[arg-type]


def test_engine_writes_the_accompany_job_folder(tmp_path: Path, engine: LocalEngine, tiny_checkpoint: Path) -> None:
    midi = write_parts(tmp_path / "melody.mid", [melody_part()], 4)
    messages: list[tuple[float, str]] = []
    result = engine.generate(
        _request(midi, str(tiny_checkpoint)), tmp_path / "job", lambda f, m: messages.append((f, m))
    )
    assert result.mode == "accompany" and result.kind == "midi"
    assert result.place_at_beats == 0.0 and result.place_at_seconds == 0.0
    assert result.region.length_bars == 4 and result.region.parts == ("melody",)
    assert messages[-1] == (1.0, "done") and all(a[0] <= b[0] for a, b in zip(messages, messages[1:], strict=False))
    for v in result.variants:
        assert v.parts == ("bass", "piano")
        assert set(v.files) == {"midi", "audio", "full_midi", "full_audio", "stem:bass", "stem:piano",
                                "stem_midi:bass", "stem_midi:piano"}  # fmt: skip
        folder = tmp_path / "job" / v.id
        cont = mido.MidiFile(folder / "continuation.mid")
        assert [t.name for t in cont.tracks[1:]] == ["bass", "piano"]
        for track in cont.tracks:
            assert sum(m.time for m in track) == 16 * TPQ  # end of track exactly at the region's end
        assert any(m.type == "set_tempo" and m.time == 0 for m in cont.tracks[0])
        full = mido.MidiFile(folder / "full.mid")
        assert [t.name for t in full.tracks[1:]] == ["melody", "bass", "piano"]
        assert sum(m.time for m in full.tracks[1]) == 16 * TPQ
        for name in ("bass", "piano"):
            stem = mido.MidiFile(folder / "stems" / f"{name}.mid")
            assert [t.name for t in stem.tracks[1:]] == [name]
            audio, rate = sf.read(folder / "stems" / f"{name}.wav")
            assert abs(len(audio) - round(16 * 60 / 90 * rate)) <= 1 and np.abs(audio).max() > 1e-3
        for mix in ("continuation.wav", "full.wav"):
            audio, rate = sf.read(folder / mix)
            assert abs(len(audio) - round(16 * 60 / 90 * rate)) <= 1


def test_models_list_the_accompany_model_and_its_parts(engine: LocalEngine) -> None:
    if not SHIPPED.is_dir():
        pytest.skip("segue-accompany-small is not installed")
    info = {m.name: m for m in engine.models()}["segue-accompany-small"]
    assert info.kind == "midi" and info.modes == ("accompany",)
    assert {"bass", "piano", "alto", "tenor"} <= set(info.parts)
    assert is_accompany_checkpoint(read_checkpoint(SHIPPED))


def test_unknown_part_names_the_known_ones(tmp_path: Path, engine: LocalEngine, tiny_checkpoint: Path) -> None:
    midi = write_parts(tmp_path / "melody.mid", [melody_part()], 4)
    with pytest.raises(BadInputError, match=r"cannot write 'banjo'.*knows: soprano, alto, tenor, bass, piano"):
        engine.generate(_request(midi, str(tiny_checkpoint), ("bass", "banjo")), tmp_path / "job")
    assert not (tmp_path / "job" / "v01").exists()


def test_a_region_without_pitched_notes_is_refused(tmp_path: Path, engine: LocalEngine, tiny_checkpoint: Path) -> None:
    drums = PartNotes("drums", -1, tuple(Note(i * TPQ, 100, 36, 100) for i in range(16)))
    midi = write_parts(tmp_path / "drums.mid", [drums], 4)
    with pytest.raises(BadInputError, match="no pitched notes"):
        engine.generate(_request(midi, str(tiny_checkpoint)), tmp_path / "job")


def test_a_continue_model_cannot_accompany(tmp_path: Path, engine: LocalEngine) -> None:
    midi = write_parts(tmp_path / "melody.mid", [melody_part()], 4)
    with pytest.raises(BadInputError, match="cannot accompany"):
        engine.generate(_request(midi, "segue-midi-small"), tmp_path / "job")


def test_audio_only_accompany_needs_a_tempo(tmp_path: Path, engine: LocalEngine, tiny_checkpoint: Path) -> None:
    wav = tmp_path / "vocal.wav"
    t = np.arange(44100 * 2) / 44100
    sf.write(wav, 0.3 * np.sin(2 * np.pi * 440 * t), 44100)
    request = GenerationRequest(
        prompt=Prompt(audio_path=wav),
        params=GenerationParams(mode="accompany", variants=1, parts=("bass",)),
        model=str(tiny_checkpoint),
    )
    with pytest.raises(BadInputError, match="--tempo"):
        engine.generate(request, tmp_path / "job")


def test_cancel_stops_the_job(tmp_path: Path, engine: LocalEngine, tiny_checkpoint: Path) -> None:
    midi = write_parts(tmp_path / "melody.mid", [melody_part()], 4)
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if message == "generating" and fraction > 0.06:
            token.cancel()

    with pytest.raises(CancelledError):
        engine.generate(_request(midi, str(tiny_checkpoint)), tmp_path / "job", progress, token)
    assert not (tmp_path / "job" / "v01").exists()


def test_existing_variant_folders_are_never_overwritten(
    tmp_path: Path, engine: LocalEngine, tiny_checkpoint: Path
) -> None:
    midi = write_parts(tmp_path / "melody.mid", [melody_part()], 4)
    (tmp_path / "job" / "v02").mkdir(parents=True)
    with pytest.raises(Exception, match="already exists"):
        engine.generate(_request(midi, str(tiny_checkpoint)), tmp_path / "job")
    assert not (tmp_path / "job" / "v01").exists()


# ---------------------------------------------------------------------------------------------- shipped model


@pytest.mark.skipif(not SHIPPED.is_dir(), reason="segue-accompany-small is not installed")
def test_shipped_model_harmonises_a_g_major_melody(tmp_path: Path, engine: LocalEngine) -> None:
    midi = write_parts(tmp_path / "melody.mid", [melody_part()], 4)
    result = engine.generate(_request(midi, "default"), tmp_path / "job")
    assert result.model == "segue-accompany-small" and len(result.variants) == 2
    notes = 0
    in_key = 0
    for v in result.variants:
        folder = tmp_path / "job" / v.id
        cont = mido.MidiFile(folder / "continuation.mid")
        assert [t.name for t in cont.tracks[1:]] == ["bass", "piano"]
        assert all(sum(m.time for m in t) == 16 * TPQ for t in cont.tracks)
        for track in cont.tracks[1:]:
            pitches = [m.note for m in track if m.type == "note_on" and m.velocity > 0]
            assert pitches, f"{track.name} is empty"
            notes += len(pitches)
            in_key += sum(p % 12 in G_MAJOR for p in pitches)
        for name in ("bass", "piano"):
            audio, _ = sf.read(folder / "stems" / f"{name}.wav")
            assert np.sqrt(np.mean(audio**2)) > 1e-3
    assert in_key / notes >= 0.85


def test_an_accompany_model_cannot_continue(tmp_path: Path, engine: LocalEngine, tiny_checkpoint: Path) -> None:
    midi = write_parts(tmp_path / "melody.mid", [melody_part()], 4)
    request = GenerationRequest(
        prompt=Prompt(midi_path=midi), params=GenerationParams(bars=2), model=str(tiny_checkpoint)
    )
    with pytest.raises(BadInputError, match="only accompanies"):
        engine.generate(request, tmp_path / "job")


def test_segue_train_accompany_reaches_the_trainer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bridge.cli import main

    data = tmp_path / "solo"
    data.mkdir()
    write_parts(data / "solo.mid", [melody_part()], 4)
    code = main(["train", "accompany", "--data", str(data), "--out", str(tmp_path / "o"), "--init", "none",
                 "--preset", "tiny", "--max-steps", "1"])  # fmt: skip
    assert code == 2 and "multi-part" in capsys.readouterr().err


def test_an_audio_melody_is_transcribed_then_accompanied(
    tmp_path: Path, engine: LocalEngine, tiny_checkpoint: Path
) -> None:
    import importlib.util

    if importlib.util.find_spec("basic_pitch") is None or importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("basic-pitch is not installed (make venv installs it)")
    from symusic import Score

    from engine.render.synth import render
    from engine.render.wavfile import write_wav

    midi = write_parts(tmp_path / "sung.mid", [melody_part(program=73)], 4)
    wav = write_wav(tmp_path / "sung.wav", render(Score(str(midi)), 44100, 16 * 60 / 90, None).mix, 44100)
    request = GenerationRequest(
        prompt=Prompt(audio_path=wav, tempo_bpm=90.0),
        params=GenerationParams(mode="accompany", variants=1, parts=("bass",), seed=1),
        model=str(tiny_checkpoint),
    )
    result = engine.generate(request, tmp_path / "job")
    assert result.mode == "accompany" and result.region.length_bars == 4
    assert "transcribed from audio" in result.region.notes
    assert (tmp_path / "job" / "region" / "transcribed.mid").is_file()
    cont = mido.MidiFile(tmp_path / "job" / "v01" / "continuation.mid")
    assert [t.name for t in cont.tracks[1:]] == ["bass"] and sum(m.time for m in cont.tracks[1]) == 16 * TPQ


def test_harmony_bias_penalises_clashes_with_the_sounding_notes(tokenizer) -> None:  # noqa: ANN001
    from dataclasses import replace as dc_replace

    from engine.symbolic.accompany.generate import HarmonyBias, sounding_classes
    from engine.symbolic.constraints import Vocabulary

    vocab = dc_replace(Vocabulary.from_tokenizer(tokenizer), size=Tokens.from_tokenizer(tokenizer).vocab_size)
    # a G4 held for the first half of a 4/4 bar (32 positions), then nothing
    sounding = sounding_classes([(0, 2 * TPQ, 67, 90)], 0, 1, 4 * TPQ, 32)
    assert sounding[(0, 0)] == frozenset({7}) and (0, 15) in sounding and (0, 16) not in sounding
    bias = HarmonyBias(vocab, sounding, [True, False], 1.5, torch.device("cpu"))
    bass = bias.bias(0, 0, 0)
    assert bass[vocab.pitches[43]] == 0.0 and bass[vocab.pitches[40]] == 0.0  # G and E under G: consonant
    assert bass[vocab.pitches[45]] == -1.5 and bass[vocab.pitches[38]] == -1.5  # A (a 7th), D (a 4th below G)
    upper = bias.bias(1, 0, 0)
    assert upper[vocab.pitches[62]] == 0.0 and upper[vocab.pitches[66]] == -1.5  # a fourth is fine above the bass
    assert not bias.bias(0, 0, 20).any()  # nothing sounds there


@pytest.mark.skipif(not SHIPPED.is_dir(), reason="segue-accompany-small is not installed")
def test_segue_continue_mode_accompany_with_the_shipped_model(tmp_path: Path) -> None:
    from bridge.cli import main

    midi = write_parts(tmp_path / "melody.mid", [melody_part()], 4)
    argv = ["continue", str(midi), "--mode", "accompany", "--parts", "bass,piano", "--variants", "2", "--seed", "3"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--json"]) == 0
    (job,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    record = json.loads((job / "job.json").read_text())
    assert record["mode"] == "accompany" and record["status"] == "done"
    assert record["place_at"]["beats"] == 0.0 and record["model"] == "segue-accompany-small"
    for v in record["variants"]:
        assert v["parts"] == ["bass", "piano"]
        for path in v["files"].values():
            assert (job / path).is_file()
