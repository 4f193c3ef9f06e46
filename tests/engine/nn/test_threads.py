"""engine.nn.threads.StepThreads: the decode steps' thread count, re-chosen from the steps' own times.

The step times here are made up (what a loaded or an idle machine gives), so nothing depends on this machine's
speed or load; the decode path's use of the chooser is checked in test_model_fast.py.
"""

from __future__ import annotations

import pytest

from engine.nn import threads
from engine.nn.threads import StepThreads


def _run(chooser: StepThreads, seconds: dict[int, float], steps: int) -> list[int]:
    """``steps`` steps, each taking ``seconds[threads]``; the thread counts used, in order."""
    used = []
    for _ in range(steps):
        n = chooser.next_threads()
        used.append(n)
        chooser.record(n, seconds[n])
    return used


def test_a_job_that_started_on_two_threads_moves_to_one_when_two_become_slower() -> None:
    chooser = StepThreads(wide=2, start_wide=True)
    used = _run(chooser, {1: 0.010, 2: 0.080}, threads.PROBE_EVERY + threads.PROBE_STEPS + 10)
    assert used[: threads.PROBE_EVERY] == [2] * threads.PROBE_EVERY  # until the first probe
    assert used[threads.PROBE_EVERY : threads.PROBE_EVERY + threads.PROBE_STEPS] == [1] * threads.PROBE_STEPS
    assert chooser.current == 1 and used[-1] == 1 and chooser.switches == 1


def test_a_job_on_one_thread_takes_the_process_threads_when_they_are_faster_at_its_first_later_probe() -> None:
    chooser = StepThreads(wide=4, start_wide=False)
    used = _run(chooser, {1: 0.010, 4: 0.006}, threads.FIRST_PROBE_ON_ONE + threads.PROBE_STEPS)
    assert used[: threads.FIRST_PROBE_ON_ONE] == [1] * threads.FIRST_PROBE_ON_ONE
    assert chooser.current == 4


def test_a_probe_step_far_slower_than_the_current_steps_ends_the_probe_at_once_and_probes_come_later() -> None:
    chooser = StepThreads(wide=2, start_wide=False)
    first = threads.FIRST_PROBE_ON_ONE
    used = _run(chooser, {1: 0.010, 2: 0.100}, first + 1)
    assert used[-1] == 2 and chooser.probes == 1  # one slow step on two threads, then back
    assert chooser.current == 1 and chooser.interval == 2 * first
    used = _run(chooser, {1: 0.010, 2: 0.100}, 2 * first)
    assert used == [1] * (2 * first)  # the next probe waits twice as long


def test_probes_that_keep_losing_come_no_further_apart_than_the_limit() -> None:
    chooser = StepThreads(wide=2, start_wide=False)
    _run(chooser, {1: 0.010, 2: 0.011}, 20 * threads.MAX_PROBE_EVERY)
    assert chooser.current == 1 and chooser.interval == threads.MAX_PROBE_EVERY and chooser.switches == 0


def test_a_choice_only_slightly_faster_does_not_take_over() -> None:
    chooser = StepThreads(wide=2, start_wide=False)
    _run(chooser, {1: 0.010, 2: 0.0095}, threads.FIRST_PROBE_ON_ONE + threads.PROBE_STEPS)
    assert chooser.current == 1 and chooser.probes == 1


def test_a_process_with_one_thread_has_nothing_to_choose() -> None:
    with pytest.raises(ValueError, match="one thread and more"):
        StepThreads(wide=1, start_wide=True)


def test_a_sampling_job_moves_its_steps_to_one_thread_when_two_become_slow_and_restores_the_process_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A job that starts on an idle machine (two threads) while steps on two threads take 8x as long as on one
    (a busy machine, as measured here): after the first probe its steps run on one thread; at the end the
    process has its two threads again. The clock is a fake one that the thread count drives."""
    import types

    import torch

    from engine.api import Meter
    from engine.nn import model_fast
    from engine.nn.model import GPT, GPTConfig
    from engine.symbolic.constraints import Vocabulary, constraints_for
    from engine.symbolic.sampling import sample_continuations
    from engine.symbolic.tokenizer import make_tokenizer

    tokenizer = make_tokenizer()
    vocab = Vocabulary.from_tokenizer(tokenizer)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer), block_size=512, n_layer=1, n_head=2, n_embd=16)).eval()
    v = tokenizer.vocab
    prompt = [v[t] for t in ("Bar_None", "TimeSig_4/4", "Position_0", "Program_0", "Pitch_60", "Velocity_79")]
    constraints = constraints_for(vocab, Meter(4, 4), 8, {0: (55, 70)}, [], [1] * 12, 1.5)
    current = [2]
    per_step: list[int] = []
    clock = {"now": 0.0, "calls": 0}

    def perf_counter() -> float:
        clock["calls"] += 1
        if clock["calls"] % 2 == 0:  # the end of a step: 10 ms on one thread, 80 ms on two
            per_step.append(current[0])
            clock["now"] += 0.010 if current[0] == 1 else 0.080
        return clock["now"]

    def set_threads(n: int) -> None:
        current[0] = n

    monkeypatch.setattr(model_fast, "time", types.SimpleNamespace(perf_counter=perf_counter))
    monkeypatch.setattr(model_fast.os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # idle at the start
    monkeypatch.setattr(torch, "get_num_threads", lambda: current[0])
    monkeypatch.setattr(torch, "set_num_threads", set_threads)
    sample_continuations(model, prompt + [v["Duration_1.0.8"]], vocab, constraints, seeds=[1, 2])
    assert len(per_step) > 2 * threads.PROBE_EVERY
    assert per_step[: threads.PROBE_EVERY] == [2] * threads.PROBE_EVERY  # the idle machine's choice at first
    later = per_step[threads.PROBE_EVERY + threads.PROBE_STEPS :]
    assert later.count(2) <= len(later) // threads.PROBE_EVERY  # then one probe step on two now and then
    assert current[0] == 2  # the process's threads again


def test_steps_that_suddenly_become_much_slower_bring_the_next_probe_forward() -> None:
    chooser = StepThreads(wide=2, start_wide=True)
    used = _run(chooser, {1: 0.010, 2: 0.008}, 10)  # an idle machine: two threads
    used += _run(chooser, {1: 0.012, 2: 0.300}, threads.PROBE_STEPS + threads.PROBE_STEPS)  # another program starts
    assert used[:10] == [2] * 10
    assert chooser.current == 1 and chooser.switches == 1  # long before PROBE_EVERY steps


def test_a_context_growing_longer_does_not_set_off_probes() -> None:
    chooser = StepThreads(wide=2, start_wide=False)
    for step in range(threads.PROBE_EVERY - 1):
        assert chooser.next_threads() == 1
        chooser.record(1, 0.006 * (1 + 0.6 * step / threads.PROBE_EVERY))  # 1.6x slower over the steps
    assert chooser.probes == 0


def test_steps_on_one_thread_becoming_slower_do_not_set_off_a_probe_of_more_threads() -> None:
    chooser = StepThreads(wide=2, start_wide=False)
    used = _run(chooser, {1: 0.010, 2: 0.008}, 10)
    used += _run(chooser, {1: 0.050, 2: 0.400}, 20)  # the machine got busy: more threads would only lose
    assert used == [1] * 30 and chooser.probes == 0
