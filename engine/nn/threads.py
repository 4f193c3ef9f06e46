"""How many torch threads a sampling job's decode steps run on, re-chosen while the job runs.

A decode step is a hundred small ops. On an idle machine the process's threads (two here) make it faster; on a
busy one every op waits for the other core, and the same step takes several times as long (measured on this
2-core machine: 8-16 ms a step on one thread against 30-140 ms on two while other processes ran;
docs/benchmarks.md). The load can change in the middle of a job (a DAW starts playing, another job or a test run
starts), so a choice made once at the start of a job can be wrong for most of it.

:class:`StepThreads` times the steps themselves: every so often it runs a few steps on the other choice, and keeps
whichever gave the shorter median step. A probe that loses, or whose first step takes far longer than the current
median (abandoned at once, so a busy machine pays for one slow step, not a few), doubles the time to the next
probe; steps on several threads that become much slower than they were since the last probe (another program
started) bring the next probe forward to now (on one thread a slower machine is no reason to try more). Pure
bookkeeping: the caller sets the threads and measures the steps (:func:`engine.nn.model_fast.decode_step`).
"""

from __future__ import annotations

from statistics import median

PROBE_EVERY = 64  # steps on the current choice between two probes (a MIDI job: ~1,000 steps)
FIRST_PROBE_ON_ONE = 256  # a job that starts on one thread (the machine was busy) probes the others this late
MAX_PROBE_EVERY = 1024  # probes that keep losing come at most this far apart
PROBE_STEPS = 3  # steps timed on each side: the median of 3 ignores one step another process slowed
SWITCH_MARGIN = 0.9  # the other choice takes over when its median step is at most this share of the current one
ABANDON_FACTOR = 3.0  # a probe step this many times the current median ends the probe at once
SLOWDOWN_FACTOR = 2.5  # steps this many times slower than the fastest median since the last probe: probe now
# (a longer context alone makes a step up to ~1.6x slower: 6 -> 10 ms from 100 to 760 positions, 8 rows)


class StepThreads:
    """The thread count of a job's next decode step: ``wide`` (the process's threads) or one."""

    def __init__(self, wide: int, start_wide: bool) -> None:
        if wide < 2:
            raise ValueError(f"StepThreads chooses between one thread and more; the process has {wide}")
        self.wide = wide
        self.current = wide if start_wide else 1
        # a busy machine at the start: a probe on its threads is likely to lose, and a losing step there can take
        # 30-440 ms (against 8-16 ms on one thread), so the first comes later
        self.interval = PROBE_EVERY if start_wide else FIRST_PROBE_ON_ONE
        self.countdown = self.interval
        self.recent: list[float] = []  # the last PROBE_STEPS steps on the current choice, seconds
        self.probe: list[float] = []  # this probe's steps on the other choice
        self.fastest: float | None = None  # the lowest median of the current choice since the last probe
        self.probes = 0
        self.switches = 0

    @property
    def other(self) -> int:
        return 1 if self.current == self.wide else self.wide

    def next_threads(self) -> int:
        """The thread count for the next step (the other choice while a probe runs)."""
        if self.probe or (self.countdown <= 0 and len(self.recent) >= PROBE_STEPS):
            return self.other
        return self.current

    def record(self, threads: int, seconds: float) -> None:
        """A step ran on ``threads`` threads in ``seconds`` (wall clock)."""
        if threads == self.current:
            self.recent = [*self.recent, seconds][-PROBE_STEPS:]
            self.countdown -= 1
            if len(self.recent) >= PROBE_STEPS:
                now = median(self.recent)
                self.fastest = now if self.fastest is None else min(self.fastest, now)
                if self.current == self.wide and now > SLOWDOWN_FACTOR * self.fastest:
                    self.countdown = 0  # another program wants the cores: one thread may do better, probe at once
            return
        self.probe.append(seconds)
        reference = median(self.recent) if self.recent else seconds
        if seconds > ABANDON_FACTOR * reference:
            self._end_probe(switch=False)
        elif len(self.probe) >= PROBE_STEPS:
            self._end_probe(switch=median(self.probe) <= SWITCH_MARGIN * reference)

    def _end_probe(self, switch: bool) -> None:
        self.probes += 1
        if switch:
            self.current = self.other
            self.recent = self.probe[-PROBE_STEPS:]
            self.switches += 1
            self.interval = PROBE_EVERY
        else:
            self.interval = min(MAX_PROBE_EVERY, self.interval * 2)
        self.fastest = median(self.recent) if self.recent else None  # the new normal
        self.probe = []
        self.countdown = self.interval
