"""The region cache (engine.symbolic.cache): counts of what the region plays, mixed into the model's next token.

All material is written here: token streams of a made-up riff in the shipped model's vocabulary
(engine/models/segue-midi-small/tokenizer.json), and a tiny GPT with random weights for the loss's windowing.
The comparisons are between a flat model and the same model mixed with the cache on clearly repetitive music,
where the margins are several nats per token: nothing here sits near a tuned threshold.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.nn.model import GPT, PRESETS
from engine.symbolic.adapt import continuation_loss
from engine.symbolic.cache import DEFAULT_CACHE, CacheSettings, RegionCache, TokenKinds
from engine.symbolic.mixer import CacheMixer, mixed_nll


def riff(vocab: dict[str, int], bars: int, shift: int = 0) -> list[int]:
    """A bass line and a melody, one 4/4 bar repeated: each part with its own velocity and note length."""
    bass = [(0, 36), (8, 43), (16, 36), (24, 41)]
    melody = [(0, 72), (4, 74), (8, 76), (12, 79), (16, 77), (20, 76), (24, 74), (28, 72)]
    events = sorted([(p, 33, n, "Velocity_95", "Duration_1.0.8") for p, n in bass]
                    + [(p, 73, n, "Velocity_63", "Duration_0.4.8") for p, n in melody])  # fmt: skip
    out: list[int] = []
    for _ in range(bars):
        out += [vocab["Bar_None"], vocab["TimeSig_4/4"]]
        position = -1
        for at, program, pitch, velocity, duration in events:
            if at != position:
                out.append(vocab[f"Position_{at}"])
                position = at
            out += [vocab[f"Program_{program}"], vocab[f"Pitch_{pitch + shift}"], vocab[velocity], vocab[duration]]
    return out


def flat(kinds: TokenKinds, length: int) -> np.ndarray:
    return np.full((length, kinds.size), -math.log(kinds.size))


def test_the_cache_predicts_a_repeated_riff_far_better_than_a_flat_model(
    vocab: dict[str, int], kinds: TokenKinds
) -> None:
    region, target = riff(vocab, 2), riff(vocab, 2)
    alone = float(-flat(kinds, len(target))[0, 0])
    mixed = float(mixed_nll(flat(kinds, len(target)), region, target, kinds, DEFAULT_CACHE).mean())
    assert alone == pytest.approx(math.log(kinds.size))
    assert mixed < 0.5 * alone, (alone, mixed)


def test_the_cache_learns_from_the_continuation_as_it_grows(vocab: dict[str, int], kinds: TokenKinds) -> None:
    # a region the target never repeats, then a new riff played twice: its second time is far better predicted
    region = riff(vocab, 1, shift=5)
    target = riff(vocab, 2, shift=-7)
    nll = mixed_nll(flat(kinds, len(target)), region, target, kinds, DEFAULT_CACHE)
    half = len(target) // 2
    assert nll[half:].mean() < 0.75 * nll[:half].mean(), (nll[:half].mean(), nll[half:].mean())


def test_intervals_carry_a_motif_to_a_new_pitch(vocab: dict[str, int], kinds: TokenKinds) -> None:
    region, target = riff(vocab, 2), riff(vocab, 1, shift=2)
    pitched = [i for i, t in enumerate(target) if kinds.kind[t] == "Pitch"]

    def pitch_nll(settings: CacheSettings) -> float:
        nll = mixed_nll(flat(kinds, len(target)), region, target, kinds, settings)
        return float(nll[pitched].mean())

    # the cache's own interval view, without the loop memory (which follows a transposed repeat its own way)
    with_intervals = pitch_nll(CacheSettings(loop=None))
    without = pitch_nll(CacheSettings(interval_weight=0.0, loop=None))
    assert with_intervals < without - 0.5, (without, with_intervals)


def test_the_cache_is_silent_where_the_grammar_leaves_no_choice(vocab: dict[str, int], kinds: TokenKinds) -> None:
    cache = RegionCache(kinds)
    for token in riff(vocab, 1) + [vocab["Bar_None"]]:
        cache.observe(token)
    assert cache.distribution() is None  # the meter after a bar line is the grammar's
    cache.observe(vocab["TimeSig_4/4"])
    cache.observe(vocab["Position_0"])
    found = cache.dense()
    assert found is not None
    slot, p = found
    assert slot == "program" and p.sum() == pytest.approx(1.0)
    assert int(np.argmax(p)) in (vocab["Program_33"], vocab["Program_73"])


def test_the_mixer_mixes_each_rows_own_cache_into_its_logits(vocab: dict[str, int], kinds: TokenKinds) -> None:
    prompt = riff(vocab, 2)
    mixer = CacheMixer(prompt, kinds, rows=2, settings=DEFAULT_CACHE)
    logits = torch.zeros(2, kinds.size)
    # row 0 is about to choose its first part; row 1 has just written a bass pitch: a velocity is next
    start = [vocab["Bar_None"], vocab["TimeSig_4/4"], vocab["Position_0"]]
    out = mixer(logits, [start, start + [vocab["Program_33"], vocab["Pitch_36"]]])
    probs = torch.softmax(out, dim=-1)
    assert torch.allclose(probs.sum(dim=-1), torch.ones(2, dtype=probs.dtype))
    assert probs[0, vocab["Program_33"]] > 10 / kinds.size
    assert int(probs[1].argmax()) == vocab["Velocity_95"]  # the bass's own velocity
    assert mixer.report.tokens_written == 8 and mixer.report.rows == 2
    assert "region cache" in mixer.report.describe()


def test_the_loss_slides_its_window_as_the_sampler_does() -> None:
    torch.manual_seed(0)
    model = GPT(PRESETS["tiny"])  # block 256
    model.eval()
    generator = torch.Generator().manual_seed(1)
    context = torch.randint(0, 500, (100,), generator=generator).tolist()
    short = torch.randint(0, 500, (50,), generator=generator).tolist()
    with torch.no_grad():
        logits, _ = model(torch.tensor([context + short[:-1]]))
    direct = torch.nn.functional.cross_entropy(logits[0, len(context) - 1 :], torch.tensor(short))
    assert continuation_loss(model, context, short) == pytest.approx(float(direct), abs=1e-4)
    long = torch.randint(0, 500, (700,), generator=generator).tolist()  # past several windows
    value = continuation_loss(model, context, long)
    assert math.isfinite(value) and 0.0 < value < 2 * math.log(512)
    with pytest.raises(ValueError):
        continuation_loss(model, context, [])


def test_the_similarity_control_scales_the_cache_and_never_hands_it_everything() -> None:
    free = DEFAULT_CACHE.scaled(0.0)
    assert not free.active and free.velocity == 0.0
    close = DEFAULT_CACHE.scaled(1.0 / 0.7)
    assert close.active and close.pitch > DEFAULT_CACHE.pitch
    assert max(close.weight(slot) for slot in ("pitch", "velocity", "duration", "next", "program")) <= 0.95
