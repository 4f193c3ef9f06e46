"""The prior: which slice of the region plays at each slot of the continuation, under the meter.

A walk over the region's slices, in the spirit of the factor oracle / Audio Oracle (Dubnov, Assayag): from the
slice just played, either **continue** (the slice that followed it in the region: continuity) or **jump** to
another slice (recombination). A jump may only land on a slice of the same metrical class as the slot (a beat-1
sound comes from a beat 1, or the half bar in 4/4; off-beats from off-beats), and is weighted by a
variable-order Markov match of code histories (the longer the codes before the target equal the codes just
played, the smoother: the oracle's suffix links) and by how much the target sounds like the slice that would have
come next (The Infinite Jukebox's beat similarity).

**Harmony**: in a tonal region (its slices' chroma clear: chords, a bass line; not drums or noise) a jump is also
weighted by how well the target's chroma correlates with the harmony it lands in: the chroma the region has at the
same place of its loop (slot ``t`` of bar ``b`` of the continuation: slot ``t`` of region bar ``b mod bars``), or,
inside a bar, that of the slice that followed the previous one in the region where it belongs at this slot. So a
slice of one chord does not land in a bar of another, and the continuation keeps the region's harmonic rhythm and
progression (and its key). The walk goes on across a bar line only into that harmony, and a phrase's repeated bar
is repeated only where it holds it.

Above the walk, **phrases** of 2, 4 or 8 bars (the region's own length, as a power of two): in a phrase of 4 the
third bar repeats the first (varied), the last bar is a **fill** (fewer continuations, louder attacks preferred);
a phrase may restart on the region's opening bar. A bar that would be a verbatim copy of a region bar is varied
(slot by slot, with the least correlated slice of the same class) once the copy budget is spent: at most
``0.35 x similarity`` of the bars (keep_opening's first bar counts). The copy measure comes from the slices' inner
products (:attr:`RegionUnits.gram`), the zero-lag normalised correlation ``segue eval`` uses on the audio.

``similarity`` (0..1) sets the knobs: the chance to continue (0.35..0.95), the weight of context matches, how
rarely a jump ignores context or lands on another position of the same class, the variation of repeated bars
and the copy budget. Deterministic given the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.audio.concat.units import RegionUnits

MAX_CONTEXT = 4
COPY_PLAN = 0.95  # the planner's copy threshold (the measure's is 0.98: a margin)
FILL_CONTINUE = 0.55  # the chance to continue is multiplied by this in a fill's second half
FILL_ATTACK = 0.7  # weight exp(0.7 x onset strength z-score) on jump targets in a fill
RESTART_CHANCE = 0.5  # a phrase (after the first) starts on the region's phrase opening this often
HARMONY = 8.0  # a jump target's weight x exp(-HARMONY x gate x (1 - its chroma correlation with the reference))
BAR_FIT = 0.7  # a bar (or a slice on a bar line) holds the region's harmony there from this chroma correlation
FIT_MIN, FAR = 0.7, 0.0  # in a fully tonal region, a target under FIT_MIN weighs FAR x as much (when others fit)
TONAL_FROM, TONAL_FULL = 0.45, 0.75  # the gate: 0 at this chroma clarity (drums, noise), 1 from this (chords)


@dataclass(frozen=True)
class Knobs:
    similarity: float
    keep_opening: bool
    phrase_bars: int

    @property
    def continue_chance(self) -> float:
        return 0.35 + 0.6 * self.similarity

    @property
    def context_weight(self) -> float:
        return 0.5 + 1.5 * self.similarity

    @property
    def other_position(self) -> float:
        return 0.1 + 0.6 * (1 - self.similarity)

    @property
    def no_context(self) -> float:
        return 0.05 + 0.95 * (1 - self.similarity) ** 2

    @property
    def repeat_variation(self) -> float:
        return 0.1 + 0.3 * (1 - self.similarity)

    @property
    def copy_share(self) -> float:
        return 0.35 * self.similarity


@dataclass(frozen=True)
class Plan:
    slices: tuple[int, ...]  # the region slice played at each slot
    roles: tuple[str, ...]  # per bar: opening, walk, restart, repeat, fill
    copy_correlation: tuple[float, ...]  # per bar: estimated largest correlation with a region bar
    notes: tuple[str, ...] = ()


def phrase_bars(region_bars: int) -> int:
    """The phrase length: the region's length rounded down to 2, 4 or 8 bars."""
    return 8 if region_bars >= 8 else 4 if region_bars >= 4 else 2


class _Walker:
    def __init__(self, units: RegionUnits, codes: npt.NDArray[np.int64], knobs: Knobs, seed: int) -> None:
        self.u, self.codes, self.k = units, codes, knobs
        self.rng = np.random.default_rng(seed)
        self.n = units.slices.slices_per_bar
        self.count = units.count
        self.pos, self.cls = units.positions, units.classes
        self.context = _context_matches(codes)
        diff = units.features[:, None, :] - units.features[None, :, :]
        self.distance = np.sqrt((diff**2).sum(axis=2))
        positive = self.distance[self.distance > 0]
        self.tau = float(np.median(positive)) if positive.size else 1.0
        gram = units.gram
        self.energy = np.diag(gram).copy()
        bar_index = np.arange(units.bars)[:, None] * self.n + np.arange(self.n)[None, :]
        self.bar_slices = bar_index  # [B, n]
        self.bar_energy = self.energy[bar_index].sum(axis=1)
        self.bar = 0  # the continuation's bar being planned (the harmony's place in the region's loop)
        gate = (units.clarity - TONAL_FROM) / (TONAL_FULL - TONAL_FROM)
        self.harmony = HARMONY * float(np.clip(gate, 0.0, 1.0)) if units.chroma is not None else 0.0
        self.chroma_corr = _chroma_correlations(units.chroma) if self.harmony > 0 else np.zeros((0, 0))
        self.span_corr = _span_correlations(units) if self.harmony > 0 else np.zeros((0, 0))
        self.far = 1.0 - float(np.clip(gate, 0.0, 1.0)) * (1.0 - FAR)
        self.next_of = np.append(np.arange(1, self.count), _loop_follower(units))  # what followed each slice

    def weights(
        self, prev: int | None, slot: int, fill: bool, exclude: int | None, any_class: bool = False
    ) -> npt.NDArray[np.float64]:
        """Jump weights over all slices for slot position ``slot`` after slice ``prev`` (``any_class``: other
        metrical classes too, at a tenth of the weight: the last resort of :meth:`vary`)."""
        k = self.k
        same = self.cls == self.u.slices.classes[slot]
        w = np.where(same, 1.0, 0.1 if any_class else 0.0)
        w *= np.where(self.pos == slot, 1.0, k.other_position)
        if prev is not None:
            m = self.context[prev]
            w *= np.exp(k.context_weight * m) * np.where(m == 0, k.no_context, 1.0)
            follower = prev + 1 if prev + 1 < self.count else None
            if follower is not None:
                w *= np.exp(-0.5 * (self.distance[follower] / self.tau) ** 2)
            if self.harmony > 0:
                fit = self.harmonic_fit(prev, slot)
                w *= np.exp(-self.harmony * (1.0 - fit))
                if float(w[fit >= FIT_MIN].sum()) > 0:  # harmony first: others only where nothing fits
                    w[fit < FIT_MIN] *= self.far
        if fill:
            w *= np.exp(FILL_ATTACK * np.clip(self.u.onset_strength, -3, 3))
        if exclude is not None and w.sum() - w[exclude] > 0:
            w[exclude] = 0.0
        return w

    def harmonic_fit(self, prev: int, slot: int) -> npt.NDArray[np.float64]:
        """Each slice's chroma correlation with the harmony at ``slot`` after ``prev``: the region's own half bar
        at this place of its loop, or, as well, what followed ``prev`` in the region when that belongs here."""
        fit = self.span_corr[self.aligned(slot)]
        follower = int(self.next_of[prev])
        if slot > 0 and self.pos[follower] == slot:
            fit = np.maximum(fit, self.chroma_corr[follower])
        return np.asarray(fit)

    def aligned(self, slot: int = 0) -> int:
        """The region slice at ``slot`` of the bar being planned, in the region's loop (bar ``b mod bars``)."""
        return (self.bar % self.u.bars) * self.n + slot

    def bar_fits(self, bar: list[int]) -> bool:
        """Whether ``bar`` holds the harmony the region has at this place of its loop (always, in a region that is
        not tonal)."""
        if self.harmony <= 0:
            return True
        region = self.u.chroma[self.aligned() : self.aligned() + self.n].mean(axis=0)  # type: ignore[index]
        ours = self.u.chroma[np.asarray(bar)].mean(axis=0)  # type: ignore[index]
        return float(_chroma_correlations(np.stack([region, ours]))[0, 1]) >= BAR_FIT

    def draw(self, w: npt.NDArray[np.float64]) -> int:
        total = float(w.sum())
        if total <= 0:
            return int(self.rng.integers(self.count))
        return int(self.rng.choice(self.count, p=w / total))

    def step(self, prev: int | None, slot: int, fill: bool) -> int:
        follower = prev + 1 if prev is not None and prev + 1 < self.count else None
        chance = self.k.continue_chance * (FILL_CONTINUE if fill else 1.0)
        if slot == 0 and follower is not None and self.harmony > 0:  # a bar line: go on only in the region's harmony
            chance *= float(self.chroma_corr[follower, self.aligned()] >= BAR_FIT)
        if follower is not None and self.pos[follower] == slot and self.rng.random() < chance:
            return follower
        return self.draw(self.weights(prev, slot, fill, follower))

    def walk_bar(self, prev: int | None, fill_from: int) -> list[int]:
        bar: list[int] = []
        for slot in range(self.n):
            prev = self.step(prev, slot, slot >= fill_from)
            bar.append(prev)
        return bar

    def correlation(self, bar: list[int]) -> float:
        """Largest zero-lag normalised correlation of this bar with a region bar (from the slices' Gram matrix)."""
        gram = self.u.gram
        dots = gram[np.asarray(bar)[None, :], self.bar_slices].sum(axis=1)  # [B]
        norm = math.sqrt(max(1e-20, float(self.energy[bar].sum()))) * np.sqrt(np.maximum(self.bar_energy, 1e-20))
        return float((dots / norm).max())

    def vary(self, bar: list[int], prev: int | None) -> list[int]:
        """Change slots (later ones first) to the least correlated slice of the same class until the bar is no
        longer a copy of a region bar; when every slice of a class sounds alike (a drum machine's identical hats),
        slices of other classes are allowed too, as a last resort."""
        bar = list(bar)
        for any_class in (False, True):
            order = list(range(self.n // 2, self.n)) + list(range(self.n // 2))
            self.rng.shuffle(order[: self.n - self.n // 2])
            for slot in order:
                if self.correlation(bar) < COPY_PLAN:
                    return bar
                before = bar[slot - 1] if slot > 0 else prev
                w = self.weights(before, slot, False, bar[slot], any_class)
                candidates = np.flatnonzero(w > 0)
                if len(candidates) == 0:
                    continue
                scores = np.array([self.correlation(bar[:slot] + [c] + bar[slot + 1 :]) for c in candidates.tolist()])
                good = candidates[scores < COPY_PLAN]
                if len(good):
                    bar[slot] = self.draw(np.where(np.isin(np.arange(self.count), good), w, 0.0))
                else:
                    bar[slot] = int(candidates[int(np.argmin(scores))])
        return bar


def plan_similarity(units: RegionUnits, a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Zero-lag normalised correlation of two plans' audio, estimated from the slices' inner products."""
    x, y = np.asarray(a), np.asarray(b)
    energy = np.diag(units.gram)
    den = math.sqrt(max(1e-20, float(energy[x].sum()) * float(energy[y].sum())))
    return float(units.gram[x, y].sum()) / den


def _chroma_correlations(chroma: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64]:
    """Pearson correlation of every pair of slices' chroma (0 where a slice is silent)."""
    if chroma is None:
        return np.zeros((0, 0))
    c = chroma - chroma.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(c, axis=1)
    return np.asarray((c @ c.T) / np.maximum(np.outer(norm, norm), 1e-20))


def _span_correlations(units: RegionUnits) -> npt.NDArray[np.float64]:
    """``[S, S]``: the chroma correlation of every slice with the half bar each slice lies in (its mean chroma): the
    harmony at that place of the region, whatever the melody does inside it."""
    chroma = units.chroma if units.chroma is not None else np.zeros((units.count, 12))
    n = units.slices.slices_per_bar
    half = max(1, n // 2)
    span = np.arange(units.count) // half
    means = np.stack([chroma[span == k].mean(axis=0) for k in range(int(span.max()) + 1)])[span]
    return _chroma_correlations(np.concatenate([means, chroma]))[: units.count, units.count :]


def _loop_follower(units: RegionUnits) -> int:
    """What would follow the region's last slice: the slice after the one most like it at the same place of an
    earlier bar (a looped region: one loop earlier), else the region's first slice."""
    last = units.count - 1
    same = [j for j in range(last) if units.positions[j] == units.positions[last]]
    if not same:
        return 0
    norms = np.sqrt(np.maximum(np.diag(units.gram), 1e-20))
    return max(same, key=lambda j: float(units.gram[j, last] / (norms[j] * norms[last]))) + 1


def _context_matches(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``m[j, k]``: how many codes before slice ``k`` equal the codes ending at slice ``j`` (up to MAX_CONTEXT)."""
    count = len(codes)
    m = np.zeros((count, count))
    for j in range(count):
        eq = np.zeros(count)
        eq[1:] = codes[j] == codes[:-1]
        previous = m[j - 1] if j > 0 else np.zeros(count)
        shifted = np.zeros(count)
        shifted[1:] = previous[:-1]
        m[j] = np.minimum(MAX_CONTEXT, eq * (1 + shifted))
    return m


def plan_continuation(units: RegionUnits, codes: npt.NDArray[np.int64], bars: int, seed: int, knobs: Knobs) -> Plan:
    """The slice played at each of ``bars`` x slices-per-bar slots, and each bar's role."""
    w = _Walker(units, codes, knobs, seed)
    n, phrase = w.n, knobs.phrase_bars
    budget = math.floor(knobs.copy_share * bars + 1e-9)
    out: list[list[int]] = []
    roles: list[str] = []
    copies: list[float] = []
    used = 0
    prev: int | None = units.count - 1  # the region's last slice
    for b in range(bars):
        w.bar = b
        at = b % phrase
        fill_from = n // 2 if at == phrase - 1 and bars > 1 else n
        reference = _repeat_of(at, phrase)
        if b == 0 and knobs.keep_opening:
            bar, role = list(range(n)), "opening"
        elif reference is not None and b - (at - reference) >= 0 and w.bar_fits(out[b - (at - reference)]):
            bar = _varied(w, out[b - (at - reference)], prev, knobs.repeat_variation)
            role = "repeat"
        elif at == 0 and b > 0 and w.rng.random() < RESTART_CHANCE:
            start = w.rng.choice(np.arange(0, units.bars, phrase)) * n
            bar = [int(start)] + _walk_from(w, int(start), 1, fill_from)
            role = "restart"
        else:
            bar = w.walk_bar(prev, fill_from)
            role = "fill" if fill_from < n else "walk"
        corr = w.correlation(bar)
        if corr >= COPY_PLAN and role != "opening":
            if used < budget:
                used += 1
            else:
                bar = w.vary(bar, prev)
                corr = w.correlation(bar)
                used += corr >= COPY_PLAN
        elif corr >= COPY_PLAN:
            used += 1
        out.append(bar)
        roles.append(role)
        copies.append(corr)
        prev = bar[-1]
    notes: tuple[str, ...] = ()
    stuck = sum(c >= COPY_PLAN for c in copies) - budget
    if stuck > 0 and not (knobs.keep_opening and stuck == 1 and budget == 0):
        notes = (f"{stuck} bar(s) could not be varied away from the region's bars (the region repeats one sound)",)
    return Plan(tuple(s for bar in out for s in bar), tuple(roles), tuple(copies), notes)


def _walk_from(w: _Walker, prev: int, first_slot: int, fill_from: int) -> list[int]:
    bar = []
    for slot in range(first_slot, w.n):
        prev = w.step(prev, slot, slot >= fill_from)
        bar.append(prev)
    return bar


def _repeat_of(at: int, phrase: int) -> int | None:
    """The bar of the phrase that bar ``at`` repeats: A A' A B (4), A B A C A B A' D (8)."""
    if phrase >= 4 and at == 2:
        return 0
    if phrase == 8 and at in (4, 5, 6):
        return at - 4
    return None


def _varied(w: _Walker, bar: list[int], prev: int | None, chance: float) -> list[int]:
    out = []
    for slot, s in enumerate(bar):
        if w.rng.random() < chance:
            s = w.draw(w.weights(prev, slot, False, s))
        out.append(s)
        prev = s
    return out
