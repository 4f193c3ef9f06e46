"""The region cache and its loop memory read the whole region, not only the model's prompt
(CacheSettings.whole_region; engine.symbolic.mixer.with_history, engine.symbolic.continuation.prompt_probs).

Why (issue 16, docs/symbolic-engine.md "The loop memory: figures"): the model's prompt is at most half its context
(384 tokens), so a dense region with drums reaches the cache as one or two bars (4 of 15 LMMS songs, 10 of 17
OpenMSX songs): the loop memory then has no bar to copy and learns no period.

All material is written here: made-up token ids, a tiny randomly initialised model (seeded), and for the job test
a region written with mido and continued by the shipped model (engine/models/segue-midi-small, trained by this
project).
"""

from __future__ import annotations

from pathlib import Path

import mido
import pytest
import torch

from engine.api import GenerationParams, Prompt
from engine.checkpoints import find_checkpoint
from engine.nn.model import GPT, GPTConfig
from engine.symbolic.cache import CacheSettings
from engine.symbolic.continuation import (
    WHOLE_REGION_BLOCKS,
    ContinuationInfo,
    SymbolicModel,
    continue_region,
    encode_prompt,
    prompt_probs,
)
from engine.symbolic.mixer import with_history
from engine.symbolic.naming import part_names_for
from engine.symbolic.region import read_region

BAR = 1


def test_the_history_gives_the_bars_before_the_prompt_and_the_prompt_comes_last() -> None:
    history = [BAR, 10, 11, BAR, 12, 13, BAR, 14, 99, 15, BAR, 16]  # 4 bars; 99: a token the prompt encodes apart
    prompt = [BAR, 14, 15, BAR, 16]  # the last 2 bars, as the model sees them
    assert with_history(history, prompt, BAR) == [BAR, 10, 11, BAR, 12, 13, *prompt]
    assert with_history(history[6:], prompt, BAR) == prompt  # no earlier bar: the prompt alone
    assert with_history(history, [15, BAR, 16], BAR) == history  # a prompt cut inside a bar: the whole region


def test_prompt_probabilities_of_a_prompt_longer_than_the_context_are_scored_in_windows() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=23, block_size=16, n_layer=1, n_head=2, n_embd=8)).eval()
    tokens = [int(t) for t in torch.randint(0, 23, (40,), generator=torch.Generator().manual_seed(1))]
    probs = prompt_probs(model, tokens)
    assert len(probs) == len(tokens) and probs[0] == 0.0 and all(0 < p < 1 for p in probs[1:])
    assert probs[:16] == pytest.approx(prompt_probs(model, tokens[:16]), abs=1e-6)  # the first window as one pass
    # a later token is scored given the half context before it and no more: as one pass over that window would
    at = 30
    window_start = at - 8 - (at - 8) % 8  # windows start at 0, 8, 16, 24...: token 30 is in the one from 16
    alone = prompt_probs(model, tokens[window_start : at + 1])
    assert probs[at] == pytest.approx(alone[-1], abs=1e-6)


def dense_region(path: Path, bars: int = 4) -> Path:
    """``bars`` bars of a 16th-note hi-hat and kick over a bass and a chord on every 8th (channel 10 drums), 4/4:
    more tokens than the model's prompt takes."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("time_signature", numerator=4, denominator=4)]))
    parts = [(0, 4, (60, 64, 67, 71), 240), (1, 33, (36,), 240), (9, 0, (36, 42, 46, 38), 120)]
    for channel, program, pitches, step in parts:
        track = mido.MidiTrack([mido.Message("program_change", channel=channel, program=program)])
        for _ in range(bars * 1920 // step):
            for pitch in pitches:
                track.append(mido.Message("note_on", channel=channel, note=pitch, velocity=90, time=0))
            for i, pitch in enumerate(pitches):
                track.append(mido.Message("note_off", channel=channel, note=pitch, time=step if i == 0 else 0))
        mid.tracks.append(track)
    out = path / "dense.mid"
    mid.save(out)
    return out


def test_a_dense_regions_cache_reads_all_its_bars_with_whole_region(tmp_path: Path) -> None:
    model = SymbolicModel.load(find_checkpoint("segue-midi-small"))
    region = read_region(Prompt(midi_path=dense_region(tmp_path)))
    block = model.model.config.block_size
    prompt = encode_prompt(region, model.tokenizer, model.vocab, max_tokens=block // 2)
    whole = encode_prompt(region, model.tokenizer, model.vocab, max_tokens=WHOLE_REGION_BLOCKS * block)
    assert prompt.count(model.vocab.bar) < 4 == whole.count(model.vocab.bar)  # the prompt lost bars
    read = {}
    for setting in (False, True):
        info = ContinuationInfo()
        params = GenerationParams(bars=1, variants=1, seed=1)
        continue_region(model, region, params, [1], part_names_for(region.parts), candidates=1,
                        cache=CacheSettings(whole_region=setting), info=info)  # fmt: skip
        assert info.cache is not None
        read[setting] = info.cache.region_tokens
    assert read[False] == len(prompt)
    assert read[True] > len(prompt) and abs(read[True] - len(whole)) <= 2  # the whole region (a Tempo aside)


def test_the_job_note_says_what_the_cache_read() -> None:
    assert CacheSettings().describe().endswith("read the whole region")  # the default
    assert CacheSettings(whole_region=False).describe().endswith("read the model's prompt")
