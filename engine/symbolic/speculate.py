"""Exact speculative sampling with drafts copied from the region ("prompt lookup"): fewer sequential model passes.

Music made of loops repeats itself, so what a row writes next is often what followed the same few tokens earlier, in
the region or in the row itself. :class:`Drafter` proposes those tokens; the sampler
(:func:`engine.symbolic.sampling.sample_continuations` with ``speculate``) feeds each row its last token and its
draft in one pass (:func:`engine.nn.ragged.ragged_step`) and then walks the positions in order, exactly as the
one-token sampler would: the hook, masks, biases, temperature and top-p give the final distribution ``p`` at each
position from the row's tokens up to there, and the draft's token ``t`` is kept with probability ``p(t)``
(:func:`accept`). At the first token not kept, the row draws from ``p`` without ``t`` (renormalised) and stops for
this pass; a row that keeps its whole draft draws one more token from the pass's last position. A deterministic
draft accepted this way leaves each token's distribution exactly ``p``, so the continuations have the one-token
sampler's distribution; the tokens for a seed differ (the row's random numbers are used another way).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from engine.symbolic.constraints import Vocabulary


@dataclass(frozen=True)
class SpeculationSettings:
    """How many tokens a row may draft a pass, which matches make a draft, and what a drafted position costs."""

    draft: int = 4  # the most tokens drafted for a row in one pass
    longest: int = 8  # the longest suffix of the row looked up (tokens); longer matches are tried first
    shortest: int = 2  # the shortest one that still makes a draft
    # a pass's cost grows by this share of a one-token step for each position past the first (measured on this
    # model, 8 rows: ~0.3 with rows' own contexts); the pass's width is chosen for the most expected tokens per cost
    position_cost: float = 0.3

    def __post_init__(self) -> None:
        if self.draft < 1 or self.shortest < 1 or self.longest < self.shortest or self.position_cost < 0:
            raise ValueError(
                f"speculation needs draft >= 1, 1 <= shortest <= longest and position_cost >= 0, got draft "
                f"{self.draft}, shortest {self.shortest}, longest {self.longest}, position_cost {self.position_cost}"
            )

    def describe(self) -> str:
        return (
            f"speculative sampling: up to {self.draft} tokens a row a pass, copied after the latest "
            f"{self.shortest}-{self.longest} token match in the region or the row"
        )


@dataclass
class SpeculationReport:
    """What speculation did in a sampling job (the bench reads it)."""

    passes: int = 0  # model passes after the prompt (each a sequential step of the batch)
    tokens: int = 0  # tokens sampled, all rows
    drafted: int = 0  # draft tokens fed to the model
    accepted: int = 0  # draft tokens kept
    refills: int = 0  # rows' contexts refilled

    @property
    def acceptance(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0


class Drafter:
    """Per row, the latest earlier occurrence of the row's last ``n`` tokens (``n`` from ``longest`` down to
    ``shortest``) in the reference (the region's tokens, which end where the row begins) followed by the row's own
    tokens; the draft is what followed it there.

    How much of it a pass verifies (:meth:`drafts`): each drafted token's chance of being kept is estimated from the
    probabilities the job's earlier drafts of the same kind had where they were verified (kind: the token's class,
    ``classes`` giving one per token id, e.g. pitch, velocity; first in its draft or after a kept one; a match of 4
    tokens or more or a shorter one; whether the row kept its whole last draft), and the pass's width is the one
    with the most expected tokens per cost (:attr:`SpeculationSettings.position_cost`). Drafts depend only on what
    was written before, so the sampler stays exact whatever they are."""

    PRIOR = (0.5, 2.0)  # a class's estimate before any draft of it: mean 0.5, worth 2 drafts

    def __init__(
        self, reference: Sequence[int], rows: int, settings: SpeculationSettings, classes: Sequence[int] = ()
    ) -> None:
        self.settings = settings
        self.lengths = range(settings.longest, settings.shortest - 1, -1)
        stream = [int(t) for t in reference]
        self.reference = len(stream)
        self.streams = [list(stream) for _ in range(rows)]
        # the reference's n-grams, shared by every row; each row's own later ones on top (checked first: later)
        self.base: list[dict[tuple[int, ...], int]] = [{} for _ in self.lengths]
        for end in range(1, len(stream)):
            self._index(self.base, stream, end)
        self.own: list[list[dict[tuple[int, ...], int]]] = [[{} for _ in self.lengths] for _ in range(rows)]
        self.classes = list(classes)
        self.kept_all = [False] * rows  # did the row keep its whole draft last pass?
        self.matched = [0] * rows  # the length of the match the row's draft came from
        self.sums: dict[tuple[int, bool, bool, bool], list[float]] = {}  # kind (_key) -> [sum of p, count]

    def _index(self, tables: list[dict[tuple[int, ...], int]], stream: list[int], end: int) -> None:
        """Register the n-grams that end just before ``end`` (what followed them starts at ``end``)."""
        for table, n in zip(tables, self.lengths, strict=True):
            if end >= n:
                table[tuple(stream[end - n : end])] = end

    def follow(self, row: int, tokens: Sequence[int]) -> int:
        """Row ``row`` has written ``tokens`` so far: take in the ones not seen yet; returns how many."""
        stream, tables = self.streams[row], self.own[row]
        new = tokens[len(stream) - self.reference :]
        for token in new:
            stream.append(int(token))
            self._index(tables, stream, len(stream) - 1)
        return len(new)

    def draft(self, row: int, most: int) -> list[int]:
        """Up to ``most`` tokens that may follow row ``row``'s stream (none where no suffix recurs)."""
        if most < 1:
            return []
        stream, own = self.streams[row], self.own[row]
        size = len(stream)
        for mine, base, n in zip(own, self.base, self.lengths, strict=True):
            if size < n:
                continue
            key = tuple(stream[size - n :])
            start = mine.get(key)
            if start is None:
                start = base.get(key)
            if start is not None:
                self.matched[row] = n
                return stream[start : start + most]
        return []

    def _key(self, row: int, token: int, place: int) -> tuple[int, bool, bool, bool]:
        """The kind of row ``row``'s drafted ``token``, ``place``-th in its draft, for the estimates."""
        kind = self.classes[token] if token < len(self.classes) else 0
        return kind, place > 0, self.matched[row] >= 4, self.kept_all[row]

    def _chance(self, key: tuple[int, bool, bool, bool]) -> float:
        total, count = self.sums.get(key, (0.0, 0.0))
        mean, weight = self.PRIOR
        return (total + mean * weight) / (count + weight)

    def drafts(self, rows: Sequence[int], room: Sequence[int]) -> list[list[int]]:
        """The drafts of a pass for ``rows`` (at most ``room[j]`` tokens for the j-th), cut to the width with the
        most expected tokens per cost."""
        found = [self.draft(i, min(self.settings.draft, r)) for i, r in zip(rows, room, strict=True)]
        reach: list[list[float]] = []  # per row, the chance of keeping its first 1, 2, ... drafted tokens
        for i, draft in zip(rows, found, strict=True):
            chances, p = [], 1.0
            for place, token in enumerate(draft):
                p *= self._chance(self._key(i, token, place))
                chances.append(p)
            reach.append(chances)
        widest = max((len(d) for d in found), default=0)
        best, best_rate = 0, float(len(rows))
        for extra in range(1, widest + 1):
            tokens = len(rows) + sum(sum(c[:extra]) for c in reach)
            rate = tokens / (1.0 + self.settings.position_cost * extra)
            if rate > best_rate:
                best, best_rate = extra, rate
        return [d[:best] for d in found]

    def observe(self, row: int, token: int, place: int, chance: float) -> None:
        """Row ``row``'s drafted ``token``, ``place``-th in its draft, had probability ``chance`` where it was
        verified."""
        entry = self.sums.setdefault(self._key(row, token, place), [0.0, 0.0])
        entry[0] += chance
        entry[1] += 1.0

    def passed(self, row: int, drafted: int, kept: int) -> None:
        """Row ``row`` kept ``kept`` of the ``drafted`` tokens of its last pass."""
        self.kept_all[row] = drafted > 0 and kept == drafted


CLASSES = ("other", "bar", "time signature", "position", "program", "pitch", "drum pitch", "velocity", "duration")


def token_classes(vocab: Vocabulary) -> list[int]:
    """A class per token id for the drafter's estimates: its index in :data:`CLASSES`."""
    classes = [0] * vocab.size
    groups: list[Iterable[int]] = [
        [vocab.bar], vocab.time_signatures.values(), vocab.positions, vocab.programs.values(),
        vocab.pitches.values(), vocab.drum_pitches.values(), vocab.velocities, vocab.durations,
    ]  # fmt: skip
    for number, ids in enumerate(groups, start=1):
        for token in ids:
            classes[token] = number
    return classes


def accept(probs: torch.Tensor, token: int, generator: torch.Generator) -> int:
    """The token to write where ``token`` was drafted and ``probs`` [vocab] is the final distribution there: ``token``
    with probability ``probs[token]``, else a draw from ``probs`` without it (renormalised). Either way the result
    is distributed as ``probs``. Returns the token written; the caller compares it with ``token``."""
    p = float(probs[token])
    if float(torch.rand((), generator=generator)) < p:
        return token
    rest = probs.clone()
    rest[token] = 0.0
    if float(rest.sum()) <= 0.0:  # rounding: p was 1 less a hair and the draw fell in the hair
        return token
    return int(torch.multinomial(rest, 1, generator=generator).item())
