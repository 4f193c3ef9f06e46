"""Mixing the region cache and its loop memory into the model's next-token distribution, while sampling and for the
loss.

For each token: ``p1 = (1 - w) p_model + w p_cache`` (:mod:`engine.symbolic.cache`), then
``p = (1 - v) p1 + v p_loop`` (the bar-level copy expert, :mod:`engine.symbolic.loop`). Each weight is kept per
slot (what the next token is) and follows how well its expert predicted that slot's recent tokens: the Bayesian
posterior of the two sides, pulled back by :attr:`CacheSettings.share` after every token towards its starting
weight (fixed-share mixing). The cache starts at its prior weights; the loop memory at the weights the region
itself gave it (:meth:`engine.symbolic.loop.LoopMemory.start_weights`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.symbolic.cache import MAX_WEIGHT, PITCH, SLOTS, CacheSettings, RegionCache, Sparse, TokenKinds
from engine.symbolic.loop import RHYTHM_SLOTS, LoopMemory
from engine.symbolic.profile import GATE_WORDS, fitted_onsets, fitted_profile, gate


@dataclass
class LoopReport:
    """What the loop memory learned from the region and did while sampling."""

    period: int = 0  # the period (bars) weighted most at the region's end
    period_weights: dict[int, float] = field(default_factory=dict)
    start_weights: dict[str, float] = field(default_factory=dict)
    responsibility: float = 0.0  # summed over written tokens: the loop's share of the written token's probability
    tokens: int = 0  # written tokens
    resampled: int = 0  # variants sampled again without it: they repeated another variant

    @property
    def carried(self) -> float:
        """The share of the written tokens the copy expert carried (its part of their probability, on average)."""
        return self.responsibility / self.tokens if self.tokens else 0.0

    def describe(self) -> str:
        weights = ", ".join(f"{s} {w:.2f}" for s, w in self.start_weights.items())
        return (
            f"loop memory: period {self.period} bar(s) (weights by period "
            f"{', '.join(f'{p}: {w:.2f}' for p, w in self.period_weights.items())}), starting weights {weights}, "
            f"carried {100 * self.carried:.0f} % of the written tokens"
            + (f"; {self.resampled} variant(s) repeating another sampled again without it" if self.resampled else "")
        )


@dataclass
class CacheReport:
    """What the cache did in a job, for job.json."""

    settings: CacheSettings
    region_tokens: int
    rows: int = 0
    tokens_written: int = 0
    seconds: float = 0.0
    held_parts: int = 0  # parts whose voicing (no new onset while a note sounds) was kept
    loop: LoopReport | None = None
    profile: tuple[float, float] | None = None  # the pitch-class profile control's strength, its gate (0..1)

    def describe(self) -> str:
        voicing = f"; voicing kept for {self.held_parts} held part(s)" if self.held_parts else ""
        loop = f"; {self.loop.describe()}" if self.loop is not None else ""
        if self.profile is not None:
            what = GATE_WORDS.get(self.settings.profile_gate, self.settings.profile_gate)
            loop += (f"; pitch-class profile control {self.profile[0]:.2f} nats a log-unit (the setting x "
                     f"{what} {self.profile[1]:.2f})")  # fmt: skip
        return (
            f"region cache mixed into the model's next-token distribution (fitted on the region's "
            f"{self.region_tokens} tokens and each variant's own {self.tokens_written // max(1, self.rows)} tokens "
            f"as it grew, {self.rows} rows (its seconds: timings.cache_seconds); {self.settings.describe()}"
            f"{voicing}{loop})"
        )


class _Weights:
    """One row's mixing weight per slot: the Bayesian posterior after each token, pulled back to where it started."""

    def __init__(self, start: dict[str, float], share: float, cap: float = 1.0) -> None:
        self.start = {slot: min(cap, MAX_WEIGHT, max(0.0, start.get(slot, 0.0))) for slot in SLOTS}
        self.weights = dict(self.start)
        self.share = share
        self.cap = cap

    def mix(self, slot: str, model: float, cache: float) -> float:
        return (1 - self.weights[slot]) * model + self.weights[slot] * cache

    def update(self, slot: str, model: float, cache: float) -> None:
        w = self.weights[slot]
        mixed = (1 - w) * model + w * cache
        posterior = w * cache / mixed if mixed > 0 else w
        self.weights[slot] = min(self.cap, (1 - self.share) * posterior + self.share * self.start[slot])


def _cache_weights(settings: CacheSettings) -> _Weights:
    return _Weights({slot: settings.weight(slot) for slot in SLOTS}, settings.share)


def _loop_weights(loop: LoopMemory, settings: CacheSettings, start: dict[str, float]) -> _Weights:
    """The loop memory's weights: from ``start`` (what the region gave it), with its own share (else the cache's)
    and its cap."""
    share = loop.settings.share
    return _Weights(start, settings.share if share is None else share, loop.settings.max_weight)


def _loop_weight(loop: LoopMemory, weights: _Weights, slot: str) -> float:
    """The loop memory's weight in ``slot`` now: its tracked weight (in a rhythm slot with
    :attr:`LoopSettings.steady_rhythm`, at least its starting weight), under its limit."""
    w = weights.weights[slot]
    if loop.settings.steady_rhythm and slot in RHYTHM_SLOTS:
        w = max(w, weights.start[slot])
    return min(w, loop.limit(slot))


def fitted(
    prompt: Sequence[int], kinds: TokenKinds, settings: CacheSettings, model_probs: Sequence[float] | None = None
) -> tuple[RegionCache, LoopMemory | None]:
    """The cache and the loop memory fitted on ``prompt``. The loop memory learns its starting weights against the
    model mixed with the cache as fitted so far, as they predicted each prompt token (``model_probs``: the model's
    probability of each prompt token given the ones before; without it, the cache alone)."""
    cache = RegionCache(kinds, settings)
    loop = LoopMemory(kinds, settings.loop) if settings.loop is not None and settings.loop.weight > 0 else None
    weights = _cache_weights(settings)
    for i, token in enumerate(prompt):
        token = int(token)
        if loop is not None:
            found = cache.distribution()
            cache_p = found[1][0] + found[1][1].get(token, 0.0) if found is not None else None
            model_p = model_probs[i] if model_probs is not None and i > 0 else None
            other = model_p if model_p is not None else cache_p
            if found is not None and model_p is not None and cache_p is not None:
                other = weights.mix(found[0], model_p, cache_p)
                weights.update(found[0], model_p, cache_p)
            loop.observe(token, other if other is not None else 1.0 / kinds.size)
        cache.observe(token)
    if loop is not None:
        loop.end_region()
    return cache, loop


def mixed_nll(
    log_probs: np.ndarray,
    context: Sequence[int],
    target: Sequence[int],
    kinds: TokenKinds,
    settings: CacheSettings,
    context_probs: Sequence[float] | None = None,
) -> np.ndarray:
    """Per-token negative log-likelihood of ``target`` under the model (``log_probs`` [len(target), vocab], the
    model's log-softmax at each target position) mixed with a cache (and its loop memory) fitted on ``context`` and
    on the target so far. ``context_probs``: the model's probability of each context token given the ones before
    (the loop memory's starting weights are learnt against it; see :func:`fitted`).
    """
    cache, loop = fitted(context, kinds, settings, context_probs)
    weights = _cache_weights(settings)
    loop_weights = _loop_weights(loop, settings, loop.start_weights()) if loop is not None else None
    out = np.empty(len(target))
    for i, token in enumerate(target):
        p = math.exp(float(log_probs[i, token]))
        found = cache.distribution()
        if found is not None:
            slot, (uniform, extra) = found
            cache_p = uniform + extra.get(int(token), 0.0)
            mixed = weights.mix(slot, p, cache_p)
            weights.update(slot, p, cache_p)
            p = mixed
        looped = loop.distribution() if loop is not None else None
        if looped is not None and loop is not None and loop_weights is not None:
            slot, (uniform, extra) = looped
            loop_p = uniform + extra.get(int(token), 0.0)
            v = _loop_weight(loop, loop_weights, slot)
            mixed = (1 - v) * p + v * loop_p
            loop_weights.update(slot, p, loop_p)
            p = mixed
        out[i] = -math.log(p)
        cache.observe(int(token))
        if loop is not None:
            loop.observe(int(token))
    return out


def with_history(history: Sequence[int], prompt: Sequence[int], bar: int) -> list[int]:
    """The region's tokens for the cache to read: ``history`` (the region encoded whole, ending where ``prompt``
    ends) up to the bar where ``prompt``'s bars begin, then ``prompt`` itself, so the tokens the cache reads last
    are the ones the model sees; ``history`` itself where ``prompt`` begins inside a bar (the end of one very dense
    bar), and ``prompt`` where ``history`` holds no more bars."""
    prompt, history = list(prompt), list(history)
    bars = [i for i, token in enumerate(history) if token == bar]
    kept = prompt.count(bar)
    if len(bars) <= kept:
        return prompt
    if not prompt or prompt[0] != bar:
        return history
    return history[: bars[len(bars) - kept]] + prompt


def _dense(size: int, found: tuple[str, Sparse]) -> np.ndarray:
    uniform, extra = found[1]
    p = np.full(size, uniform, dtype=np.float32)
    if extra:
        p[list(extra)] += np.fromiter(extra.values(), dtype=np.float32, count=len(extra))
    return p


class CacheMixer:
    """A sampler hook: mixes each row's cache (and loop memory) into its logits and grows them with the tokens the
    row writes.

    Called once per sampling step with the model's logits [rows, vocab] and every row's tokens so far; returns
    logits whose softmax is the mixture (the sampler's temperature, masks and biases then apply as before).
    """

    def __init__(
        self,
        prompt: Sequence[int],
        kinds: TokenKinds,
        rows: int,
        settings: CacheSettings,
        model_probs: Sequence[float] | None = None,
        loop_strength: Sequence[float] | None = None,
    ) -> None:
        started = time.perf_counter()
        self.kinds = kinds
        self.region_tokens = list(prompt)  # what the cache was fitted on (a second pass fits on the same)
        base, loop = fitted(prompt, kinds, settings, model_probs)
        self.caches = [base.fork() for _ in range(rows)]
        self.loops = [loop.fork() for _ in range(rows)] if loop is not None else []
        self.held = base.held_parts() if settings.voicing else set()
        self.voiced = 0  # tokens the voicing rules took away, summed over steps and rows
        self.weights = [_cache_weights(settings) for _ in range(rows)]
        start = loop.start_weights() if loop is not None else {}
        # the profile controls act as far as their gates open, read from the region (engine.symbolic.profile.gate)
        loop_settings = loop.settings if loop is not None else None
        looping = gate(settings.profile_gate, prompt, kinds, start, loop_settings) if settings.profile > 0 else 0.0
        strength = settings.profile * looping
        profile = fitted_profile(prompt, kinds, strength) if strength > 0 else None
        self.profiles = [profile.fork() for _ in range(rows)] if profile is not None else []
        onset_strength = (
            settings.onset_profile * gate(settings.onset_gate, prompt, kinds, start, loop_settings)
            if settings.onset_profile > 0
            else 0.0
        )
        onsets = fitted_onsets(prompt, kinds, onset_strength) if onset_strength > 0 else None
        self.onsets = [onsets.fork() for _ in range(rows)] if onsets is not None else []
        self.loop_weights = [_loop_weights(loop, settings, start) for _ in range(rows)] if loop is not None else []
        self.strength = list(loop_strength) if loop_strength is not None else [1.0] * rows  # per row, x the loop
        self.seen = [0] * rows
        self.last_weight = [0.0] * rows  # per row, the loop memory's weight in the last step's mixture
        self.density_yield = loop.settings.density_yield if loop is not None else 0.0
        # per row, what the last step offered: (cache slot, p_model, p_cache | None, loop slot, p1, p_loop | None)
        self.pending: list[tuple[str, np.ndarray, np.ndarray, str, np.ndarray, np.ndarray] | None] = [None] * rows
        self.settings_voicing = settings.voicing
        self.report = CacheReport(settings, len(prompt), rows, held_parts=len(self.held))
        self.report.profile = (strength, looping) if settings.profile > 0 else None
        if loop is not None:
            weights = {p: round(w, 3) for p, w in loop.period_weights.items()}
            start_weights = {s: round(w, 3) for s, w in self.loop_weights[0].start.items()} if rows else {}
            self.report.loop = LoopReport(loop.period(), weights, start_weights)
        self.report.seconds = time.perf_counter() - started

    def __call__(self, logits: torch.Tensor, tokens: Sequence[Sequence[int]]) -> torch.Tensor:
        started = time.perf_counter()
        # numpy, not torch: tiny [rows, vocab] arrays, no thread pool to wake (18 ms a call on a loaded machine)
        raw = logits.detach().float().cpu().numpy()
        shifted = np.exp(raw - raw.max(axis=-1, keepdims=True))
        probs = shifted / shifted.sum(axis=-1, keepdims=True)
        changed = False
        forbidden: list[tuple[int, list[int]]] = []
        for i, row_tokens in enumerate(tokens):
            self.last_weight[i] = 0.0
            if len(row_tokens) == self.seen[i] and self.pending[i] is not None:  # a finished row: as last time
                pending = self.pending[i]
                assert pending is not None
                probs[i] = self._mix(i, pending[0], pending[1], pending[2], pending[3], pending[5])
                changed = True
                continue
            self._advance(i, row_tokens)
            if self.settings_voicing:
                ruled_out = self.caches[i].forbidden(self.held)
                if ruled_out:
                    forbidden.append((i, ruled_out))
            found = self.caches[i].distribution()
            looped = self.loops[i].distribution() if self.loops else None
            if found is None and looped is None:
                self.pending[i] = None
                changed = (bool(self.onsets) and self.onsets[i].apply(probs[i])) or changed
                continue
            size = self.kinds.size
            cache_p = _dense(size, found) if found is not None else probs[i]
            loop_p = _dense(size, looped) if looped is not None else probs[i]
            slot = found[0] if found is not None else ""
            loop_slot = looped[0] if looped is not None else ""
            model_p = probs[i].copy()
            probs[i] = self._mix(i, slot, model_p, cache_p, loop_slot, loop_p)
            if self.profiles and slot == PITCH:
                self.profiles[i].apply(probs[i], self.caches[i].state.program)
            if self.onsets:
                self.onsets[i].apply(probs[i])
            changed = True
        out = logits
        if changed or forbidden:
            for i, ruled_out in forbidden:
                probs[i, ruled_out] = 0.0
                self.voiced += len(ruled_out)
            out = torch.from_numpy(np.log(np.maximum(probs, 1e-30))).to(device=logits.device, dtype=logits.dtype)
        self.report.seconds += time.perf_counter() - started
        return out

    def _mix(
        self, i: int, slot: str, model_p: np.ndarray, cache_p: np.ndarray, loop_slot: str, loop_p: np.ndarray
    ) -> np.ndarray:
        w = self.weights[i].weights[slot] if slot else 0.0
        first = (1 - w) * model_p + w * cache_p
        v = self._loop_weight(i, loop_slot) if loop_slot else 0.0
        self.pending[i] = (slot, model_p, cache_p, loop_slot, first, loop_p)
        self.last_weight[i] = v
        return (1 - v) * first + v * loop_p

    def density_scale(self, i: int) -> float:
        """How much of the guidance's density control row ``i``'s next token gets: 1 less
        :attr:`LoopSettings.density_yield` times the loop memory's weight in this step's mixture (at least 0)."""
        return max(0.0, 1.0 - self.density_yield * self.last_weight[i])

    def _loop_weight(self, i: int, slot: str) -> float:
        return _loop_weight(self.loops[i], self.loop_weights[i], slot) * self.strength[i]

    def _advance(self, i: int, row_tokens: Sequence[int]) -> None:
        """Count row ``i``'s new tokens (updating its weights by how well each side predicted them)."""
        cache = self.caches[i]
        report = self.report.loop
        for token in row_tokens[self.seen[i] :]:
            pending = self.pending[i]
            if pending is not None:
                slot, model_p, cache_p, loop_slot, first, loop_p = pending
                if slot:
                    self.weights[i].update(slot, float(model_p[token]), float(cache_p[token]))
                if loop_slot and report is not None:
                    v = self._loop_weight(i, loop_slot)
                    looped = v * float(loop_p[token])
                    report.responsibility += looped / max(1e-30, (1 - v) * float(first[token]) + looped)
                    self.loop_weights[i].update(loop_slot, float(first[token]), float(loop_p[token]))
                self.pending[i] = None
            if report is not None:
                report.tokens += 1
            cache.observe(int(token))
            if self.loops:
                self.loops[i].observe(int(token))
            if self.profiles:
                self.profiles[i].observe(int(token))
            if self.onsets:
                self.onsets[i].observe(int(token))
            self.report.tokens_written += 1
        self.seen[i] = len(row_tokens)
