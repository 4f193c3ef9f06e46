"""The fast decode path (engine.nn.model_fast) computes what the module path computes.

Checked on the shipped checkpoints (engine/models/segue-midi-small and segue-accompany-small, our own models; see
their model cards) with a real prompt (examples/regions/pop_100bpm_4-4.mid, our own example region), and on small
random models for the cases the shipped ones do not cover (several streams, biases). Tolerances are float32
rounding differences between two orders of summation, not timings; nothing here depends on machine load.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from torch import nn

from engine.api import Prompt
from engine.checkpoints import SHIPPED_DIR, read_checkpoint
from engine.environment import Environment
from engine.nn import model_fast
from engine.nn.kv_cache import KVCache
from engine.nn.model import GPT, GPTConfig
from engine.nn.threads import PROBE_EVERY

ROOT = Path(__file__).resolve().parents[3]
REGION = ROOT / "examples/regions/pop_100bpm_4-4.mid"
ATOL = 2e-4  # logits are O(10); float32 reorderings differ by ~1e-5


@functools.lru_cache(maxsize=2)
def _shipped(name: str) -> GPT:
    path = SHIPPED_DIR / name
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"{name} is not installed")
    ckpt = read_checkpoint(path)
    if name == "segue-accompany-small":
        from engine.symbolic.accompany.layout import load_accompany

        model, _ = load_accompany(ckpt)
    else:
        from engine.symbolic.weights import load_symbolic

        model, _ = load_symbolic(ckpt)
    return model


@functools.lru_cache(maxsize=1)
def _region_ids() -> tuple[int, ...]:
    from engine.symbolic.continuation import SymbolicModel, encode_prompt
    from engine.symbolic.region import read_region

    ckpt = read_checkpoint(SHIPPED_DIR / "segue-midi-small")
    sm = SymbolicModel.load(ckpt)
    return tuple(encode_prompt(read_region(Prompt(midi_path=REGION)), sm.tokenizer, sm.vocab, 384))


def _region_prompt(model: GPT, length: int = 200) -> torch.Tensor:
    """The example region's tokens (the MIDI tokenizer's ids), the last ``length``, as one row."""
    ids = [i % model.config.vocab_size for i in _region_ids()][-length:]
    return torch.tensor([ids], dtype=torch.long)


def _run(model: GPT, prompt: torch.Tensor, steps: torch.Tensor, fast: bool) -> list[torch.Tensor]:
    """Prefill ``prompt`` [B, T] then feed ``steps`` [n, B, 1]: the logits after the prefill and every step."""
    model.fast_decode = fast
    try:
        with torch.inference_mode():
            cache = model.new_cache(prompt.shape[0])
            logits, _ = model(prompt, cache=cache)
            out = [logits[..., -1, :].clone()]
            for token in steps:
                step, _ = model(token, cache=cache)
                out.append(step[..., -1, :].clone())
            assert cache.length == prompt.shape[-1] + len(steps)
    finally:
        model.fast_decode = True
    return out


def _assert_close(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert x.shape == y.shape
        assert torch.allclose(x, y, atol=ATOL, rtol=1e-4), f"step {i}: max diff {(x - y).abs().max().item():.2e}"


@pytest.mark.parametrize("name", ["segue-midi-small", "segue-accompany-small"])
def test_decode_steps_give_the_module_paths_logits_on_the_shipped_models(name: str) -> None:
    model = _shipped(name)
    prompt = _region_prompt(model).expand(4, -1)  # K variants of one region: the shared-prompt prefill
    steps = torch.randint(0, model.config.vocab_size, (24, 4, 1), generator=torch.Generator().manual_seed(1))
    _assert_close(_run(model, prompt, steps, fast=True), _run(model, prompt, steps, fast=False))


def test_decode_steps_after_a_prompt_that_differs_between_rows_match_too() -> None:
    model = _shipped("segue-midi-small")
    prompt = _region_prompt(model, 120).repeat(3, 1)
    prompt[1, -5:] = prompt[1, -5:].flip(0)  # rows differ: no shared prompt
    steps = torch.randint(0, model.config.vocab_size, (10, 3, 1), generator=torch.Generator().manual_seed(2))
    _assert_close(_run(model, prompt, steps, fast=True), _run(model, prompt, steps, fast=False))


def test_decode_steps_match_a_full_forward_without_cache() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=97, block_size=64, n_layer=2, n_head=4, n_embd=32, bias=True)).eval()
    tokens = torch.randint(0, 97, (1, 30)).repeat(3, 1)
    tokens[:, 12:] = torch.randint(0, 97, (3, 18))
    fast = _run(model, tokens[:, :12], tokens[:, 12:].T.unsqueeze(-1), fast=True)
    with torch.inference_mode():
        full, _ = model(tokens)
    _assert_close(fast, [full[:, t] for t in range(11, 30)])


def test_several_streams_decode_like_the_module_path() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=33, block_size=48, n_layer=2, n_head=2, n_embd=32, n_streams=4)).eval()
    prompt = torch.randint(0, 33, (1, 4, 10)).expand(2, -1, -1)
    steps = torch.randint(0, 33, (8, 2, 4, 1))
    fast, slow = _run(model, prompt, steps, fast=True), _run(model, prompt, steps, fast=False)
    assert fast[-1].shape == (2, 4, 33)
    _assert_close(fast, slow)


def test_the_shared_prompt_is_stored_once_and_materialized_for_the_module_path() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=64, n_layer=2, n_head=2, n_embd=32)).eval()
    prompt = torch.randint(0, 50, (1, 9)).expand(3, -1)
    with torch.inference_mode():
        cache = model.new_cache(3)
        model(prompt, cache=cache)
        assert cache.shared == 9 and not cache.keys[:, 1:, :, :9].any()  # rows 1.. hold nothing yet
        chunk = torch.randint(0, 50, (3, 4))
        logits, _ = model(chunk, cache=cache)  # a chunk of several tokens: the module path, after materialize()
        assert cache.shared == 0 and torch.equal(cache.keys[:, 1, :, :9], cache.keys[:, 0, :, :9])
        full, _ = model(torch.cat([prompt, chunk], dim=1))
    assert torch.allclose(logits[:, -1], full[:, -1], atol=ATOL, rtol=1e-4)


def _adapt_in_place(model: GPT, seed: int) -> None:
    """What test-time adaptation does to the weights: change every one of them in place."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)


def test_weights_adapted_in_place_between_jobs_are_used() -> None:
    model = _shipped("segue-midi-small")
    prompt = _region_prompt(model, 80).expand(2, -1)
    steps = torch.randint(0, model.config.vocab_size, (6, 2, 1), generator=torch.Generator().manual_seed(3))
    before = _run(model, prompt, steps, fast=True)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        _adapt_in_place(model, 4)
        after = _run(model, prompt, steps, fast=True)
        _assert_close(after, _run(model, prompt, steps, fast=False))
        assert (after[-1] - before[-1]).abs().max() > 100 * ATOL  # the adaptation shows in the fast path
    finally:
        model.load_state_dict(saved)
    _assert_close(_run(model, prompt, steps, fast=True), before)  # restored weights: the original logits


def test_weights_changed_during_a_job_are_used_from_the_next_step() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, block_size=32, n_layer=2, n_head=2, n_embd=16)).eval()
    with torch.inference_mode():
        cache = model.new_cache(2)
        model(torch.randint(0, 40, (2, 5)), cache=cache)
    _adapt_in_place(model, 5)
    token = torch.randint(0, 40, (2, 1))
    with torch.inference_mode():
        slow_cache = KVCache.view_of(cache, slice(0, 2))
        slow_cache.keys, slow_cache.values = cache.keys.clone(), cache.values.clone()
        fast, _ = model(token, cache=cache)
        model.fast_decode = False
        slow, _ = model(token, cache=slow_cache)
        model.fast_decode = True
    assert torch.allclose(fast, slow, atol=ATOL, rtol=1e-4)


def test_a_replaced_parameter_object_is_picked_up_at_the_next_job() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, block_size=32, n_layer=2, n_head=2, n_embd=16)).eval()
    prompt = torch.randint(0, 40, (1, 6)).expand(2, -1)
    steps = torch.randint(0, 40, (4, 2, 1))
    before = _run(model, prompt, steps, fast=True)
    fc = model.blocks[1].mlp.fc
    fc.weight = nn.Parameter(fc.weight.detach() * 3.0)  # a new tensor object, not an in-place change
    after = _run(model, prompt, steps, fast=True)
    _assert_close(after, _run(model, prompt, steps, fast=False))
    assert (after[-1] - before[-1]).abs().max() > 100 * ATOL


class _LowRank(nn.Linear):
    """A low-rank adapter that wraps a linear layer instead of merging into its weight."""

    def __init__(self, base: nn.Linear) -> None:
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None)
        self.weight = base.weight
        self.down = nn.Parameter(torch.randn(base.in_features, 2) * 0.5)
        self.up = nn.Parameter(torch.randn(2, base.out_features) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + x @ self.down @ self.up


def test_a_model_with_wrapped_layers_or_hooks_keeps_the_module_path() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, block_size=32, n_layer=2, n_head=2, n_embd=16)).eval()
    assert model_fast.eligible(model)
    prompt = torch.randint(0, 40, (1, 6)).expand(2, -1)
    steps = torch.randint(0, 40, (4, 2, 1))
    plain = _run(model, prompt, steps, fast=True)
    model.blocks[0].attn.qkv = _LowRank(model.blocks[0].attn.qkv)
    assert not model_fast.eligible(model)
    adapted = _run(model, prompt, steps, fast=True)
    _assert_close(adapted, _run(model, prompt, steps, fast=False))
    assert (adapted[-1] - plain[-1]).abs().max() > 100 * ATOL  # the adapter is applied, not skipped

    hooked = GPT(GPTConfig(vocab_size=40, block_size=32, n_layer=2, n_head=2, n_embd=16)).eval()
    hooked.blocks[1].mlp.register_forward_hook(lambda module, args, out: out * 0.5)
    assert not model_fast.eligible(hooked)


def test_gradients_and_dropout_in_training_keep_the_module_path() -> None:
    model = GPT(GPTConfig(vocab_size=40, block_size=32, n_layer=2, n_head=2, n_embd=16, dropout=0.1))
    model.eval()
    assert not model_fast.usable(model)  # gradients wanted (grad mode): the module path
    with torch.no_grad():
        assert model_fast.usable(model)
        model.train()
        assert not model_fast.usable(model)  # dropout is on
    model.eval()
    with torch.inference_mode():
        cache = model.new_cache(1)
        model(torch.randint(0, 40, (1, 3)), cache=cache)
        assert cache.plan is not None


def test_the_environment_switch_turns_the_fast_path_off() -> None:
    # the entry point reads SEGUE_FAST_DECODE once; the engine applies it to each GPT it loads
    model = GPT(GPTConfig(vocab_size=8, block_size=8, n_layer=1, n_head=1, n_embd=8))
    model_fast.apply_settings(model, Environment.read({"SEGUE_FAST_DECODE": "0"}).decode)
    assert model.fast_decode is False
    model_fast.apply_settings(model, Environment.read({"SEGUE_FAST_DECODE": "1"}).decode)
    assert model.fast_decode is True


def test_the_sampler_draws_the_same_tokens_with_either_path() -> None:
    from engine.api import Meter
    from engine.symbolic.constraints import Vocabulary, constraints_for
    from engine.symbolic.sampling import sample_continuations
    from engine.symbolic.tokenizer import make_tokenizer

    tokenizer = make_tokenizer()
    vocab = Vocabulary.from_tokenizer(tokenizer)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer), block_size=128, n_layer=2, n_head=2, n_embd=64)).eval()
    v = tokenizer.vocab
    prompt = [v[t] for t in ("Bar_None", "TimeSig_4/4", "Position_0", "Program_0", "Pitch_60", "Velocity_79")]
    prompt.append(v["Duration_1.0.8"])
    constraints = constraints_for(vocab, Meter(4, 4), 2, {0: (55, 70)}, [], [1] * 12, 1.5)
    rows = {}
    for fast in (True, False):
        model.fast_decode = fast
        rows[fast] = sample_continuations(model, prompt, vocab, constraints, seeds=[1, 2, 3])
    model.fast_decode = True
    assert rows[True] == rows[False]
    assert all(len(r) > 10 for r in rows[True])


def test_a_decode_step_runs_on_the_step_threads_and_restores_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, block_size=32, n_layer=2, n_head=2, n_embd=16)).eval()
    calls: list[int] = []
    monkeypatch.setattr(model_fast.os, "getloadavg", lambda: (9.0, 9.0, 9.0))  # a busy machine
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    with torch.inference_mode():
        cache = model.new_cache(2)
        model(torch.randint(0, 40, (2, 4)), cache=cache)
        model(torch.randint(0, 40, (2, 1)), cache=cache)
    assert calls == [1, 2]  # one thread for the step, then the process's two again
    monkeypatch.setattr(model_fast.os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # idle by the next job
    with torch.inference_mode():
        cache = model.new_cache(2)
        model(torch.randint(0, 40, (2, 4)), cache=cache)
        model(torch.randint(0, 40, (2, 1)), cache=cache)
    assert calls == [1, 2]  # the process's threads: nothing set


@pytest.mark.parametrize(("raw", "threads"), [("0", 0), ("2", 2), ("two", 1), ("-3", 1)])
def test_the_step_threads_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str, threads: int) -> None:
    setting = Environment.read({"SEGUE_STEP_THREADS": raw}).decode.step_threads
    monkeypatch.setattr(model_fast.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert model_fast.step_threads(setting) == threads


@pytest.mark.parametrize(("load", "threads"), [(0.1, 0), (50.0, 1)])
def test_without_a_setting_an_idle_machine_keeps_its_threads_and_a_busy_one_uses_one(
    monkeypatch: pytest.MonkeyPatch, load: float, threads: int
) -> None:
    setting = Environment.read({}).decode.step_threads
    monkeypatch.setattr(model_fast.os, "getloadavg", lambda: (load, load, load))
    assert model_fast.step_threads(setting) == threads


@pytest.mark.parametrize("shared", [True, False])
def test_a_cache_keeping_some_rows_decodes_them_as_the_full_batch_does(shared: bool) -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=64, n_layer=2, n_head=2, n_embd=32)).eval()
    generator = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, 50, (1, 12), generator=generator).repeat(4, 1)
    if not shared:  # rows differ: no shared prompt, every row's keys are its own
        prompt[:, -1] = torch.arange(4)
    steps = torch.randint(0, 50, (6, 4, 1), generator=generator)
    with torch.inference_mode():
        full = model.new_cache(4)
        model(prompt, cache=full)
        part = model.new_cache(4)
        model(prompt, cache=part)
        assert (part.shared > 0) == shared
        for token in steps[:3]:
            model(token, cache=full)
            model(token, cache=part)
        part.keep_rows([1, 3])  # row 0, which holds a shared prompt, leaves
        for token in steps[3:]:
            want = model(token, cache=full)[0]
            got = model(token[[1, 3]], cache=part)[0]
            torch.testing.assert_close(got, want[[1, 3]], atol=ATOL, rtol=0)
        with pytest.raises(ValueError, match="at least one row"):
            part.keep_rows([])


needs_bf16 = pytest.mark.skipif(not model_fast.bf16_kernels(), reason="this CPU has no bfloat16 kernels")


def _run_low(model: GPT, prompt: torch.Tensor, steps: torch.Tensor) -> list[torch.Tensor]:
    model.decode_dtype = torch.bfloat16
    try:
        return _run(model, prompt, steps, fast=True)
    finally:
        model.decode_dtype = torch.float32


@needs_bf16
@pytest.mark.parametrize("rows_differ", [False, True])
def test_bfloat16_products_stay_within_bfloat16_rounding_of_the_module_paths_logits(rows_differ: bool) -> None:
    # the shipped MIDI model on the example region: a shared prompt, or rows that differ (the bfloat16 prefill)
    model = _shipped("segue-midi-small")
    prompt = _region_prompt(model, 160).repeat(3, 1)
    if rows_differ:
        prompt[1, -5:] = prompt[1, -5:].flip(0)
    steps = torch.randint(0, model.config.vocab_size, (12, 3, 1), generator=torch.Generator().manual_seed(3))
    low, exact = _run_low(model, prompt, steps), _run(model, prompt, steps, fast=False)
    assert model.decode_dtype == torch.float32
    for x, y in zip(low, exact, strict=True):
        scale = y.abs().max().item()
        diff = (x - y).abs().max().item()
        # bfloat16 keeps 8 bits of mantissa (0.4 %): through 6 layers the logits moved by 0.3-0.7 % of their scale
        # here, and the next-token distributions by a small total variation
        assert 0 < diff < 0.05 * scale, f"max diff {diff:.3g} against a logit scale of {scale:.3g}"
        variation = 0.5 * (x.softmax(-1) - y.softmax(-1)).abs().sum(-1).max().item()
        assert variation < 0.05, f"total variation {variation:.3g}"


@needs_bf16
def test_bfloat16_copies_are_taken_again_at_each_job_so_adapted_weights_are_used() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=64, n_layer=2, n_head=2, n_embd=32)).eval()
    prompt = torch.randint(0, 50, (1, 9)).expand(2, -1)
    steps = torch.randint(0, 50, (3, 2, 1))
    before = _run_low(model, prompt, steps)
    with torch.no_grad():
        model.blocks[0].mlp.fc.weight.mul_(3.0)  # adapted in place between two jobs
    after, exact = _run_low(model, prompt, steps), _run(model, prompt, steps, fast=False)
    assert (after[-1] - before[-1]).abs().max() > 0.05 * before[-1].abs().max()
    scale = exact[-1].abs().max()
    assert (after[-1] - exact[-1]).abs().max() < 0.05 * scale


@pytest.mark.parametrize(("raw", "low"), [("float32", False), ("bfloat16", True), ("bf16", True), ("half-ish", False)])
def test_the_decode_precision_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str, low: bool) -> None:
    precision = Environment.read({"SEGUE_DECODE_PRECISION": raw}).decode.precision
    for native in (True, False):  # the same whether the CPU has bfloat16 natively or emulates it
        monkeypatch.setattr(model_fast, "native_bf16", lambda native=native: native)
        monkeypatch.setattr(model_fast, "bf16_kernels", lambda: True)
        assert model_fast.decode_dtype(precision) == (torch.bfloat16 if low else torch.float32)
        monkeypatch.setattr(model_fast, "bf16_kernels", lambda: False)  # a CPU without the kernels: float32 always
        assert model_fast.decode_dtype(precision) == torch.float32


@pytest.mark.parametrize("raw", ["", "auto", " AUTO "])
def test_by_default_the_decode_precision_is_bfloat16_only_where_the_cpu_has_it_natively(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    precision = Environment.read({"SEGUE_DECODE_PRECISION": raw} if raw else {}).decode.precision
    monkeypatch.setattr(model_fast, "native_bf16", lambda: True)
    assert model_fast.decode_dtype(precision) == torch.bfloat16
    monkeypatch.setattr(model_fast, "native_bf16", lambda: False)  # emulated bfloat16 is slower: float32
    assert model_fast.decode_dtype(precision) == torch.float32


def test_native_bfloat16_needs_the_kernels_and_the_cpu_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_fast, "bf16_kernels", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert model_fast.native_bf16() is False  # AVX-512 without BF16 (oneDNN would emulate it)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert model_fast.native_bf16() is True
    monkeypatch.setattr(model_fast, "bf16_kernels", lambda: False)
    assert model_fast.native_bf16() is False


def test_a_sampling_job_sets_the_step_threads_once_not_at_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.api import Meter
    from engine.symbolic.constraints import Vocabulary, constraints_for
    from engine.symbolic.sampling import sample_continuations
    from engine.symbolic.tokenizer import make_tokenizer

    tokenizer = make_tokenizer()
    vocab = Vocabulary.from_tokenizer(tokenizer)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer), block_size=64, n_layer=2, n_head=2, n_embd=32)).eval()
    v = tokenizer.vocab
    prompt = [v[t] for t in ("Bar_None", "TimeSig_4/4", "Position_0", "Program_0", "Pitch_60", "Velocity_79")]
    constraints = constraints_for(vocab, Meter(4, 4), 4, {0: (55, 70)}, [], [1] * 12, 1.5)
    current = [2]
    calls: list[int] = []

    def set_threads(n: int) -> None:
        calls.append(n)
        current[0] = n

    monkeypatch.setattr(model_fast.os, "getloadavg", lambda: (9.0, 9.0, 9.0))  # busy: one step thread
    monkeypatch.setattr(torch, "get_num_threads", lambda: current[0])
    monkeypatch.setattr(torch, "set_num_threads", set_threads)
    rows = sample_continuations(model, prompt + [v["Duration_1.0.8"]], vocab, constraints, seeds=[1, 2])
    steps = max(len(r) for r in rows)
    assert steps > model.config.block_size  # steps, and a refill of the context
    assert calls[0] == 1 and current[0] == 2  # one thread from the start, the process's two again at the end
    # changed only around the probes of engine.nn.threads.StepThreads (two switches each at most), never every step
    assert len(calls) <= 2 + 2 * (steps // PROBE_EVERY + 1) < steps
    assert model_fast._JOB_THREADS == [] and model_fast._JOB_CHOOSERS == []


def test_a_sampling_job_decodes_in_the_models_sampler_precision_and_restores_it() -> None:
    from engine.api import Meter
    from engine.symbolic.constraints import Vocabulary, constraints_for
    from engine.symbolic.sampling import sample_continuations
    from engine.symbolic.tokenizer import make_tokenizer

    tokenizer = make_tokenizer()
    vocab = Vocabulary.from_tokenizer(tokenizer)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer), block_size=64, n_layer=1, n_head=2, n_embd=16)).eval()
    v = tokenizer.vocab
    prompt = [v[t] for t in ("Bar_None", "TimeSig_4/4", "Position_0", "Program_0", "Pitch_60", "Velocity_79")]
    constraints = constraints_for(vocab, Meter(4, 4), 1, {0: (55, 70)}, [], [1] * 12, 1.5)
    seen: list[torch.dtype] = []

    def watch(logits: torch.Tensor, rows: object) -> torch.Tensor:
        seen.append(model.decode_dtype)
        return logits

    model.sampler_dtype = torch.bfloat16  # what apply_settings gives for SEGUE_DECODE_PRECISION=bfloat16
    sample_continuations(model, prompt + [v["Duration_1.0.8"]], vocab, constraints, seeds=[1], logits_hook=watch)
    assert seen and set(seen) == {torch.bfloat16}
    assert model.decode_dtype == torch.float32
    sample_continuations(model, prompt, vocab, constraints, seeds=[1], logits_hook=watch, precision=torch.float32)
    assert seen[-1] == torch.float32  # an explicit precision wins
