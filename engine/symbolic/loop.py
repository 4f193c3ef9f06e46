"""Loop memory: the region cache's bar-level copy expert. Producers' music loops; this expert continues a loop.

A region of pop or electronic music repeats itself bar by bar with a period (every bar, every second bar, every
fourth...). The expert predicts the next token from the bar one period back, at the same point:

- while the bar being written has copied its source bar token for token so far, the source's next token (an exact
  continuation pointer, :attr:`LoopSettings.sync_confidence`), the bar's first onset included
  (:attr:`LoopSettings.bar_start`);
- once it has strayed, an aligned lookup by position in the bar and part: which part the source starts first at
  this position, its k-th pitch there, that note's velocity and duration, and after a note what the source does
  next from this point (the same part again, another part not yet played here, its next position, the bar line)
  (:attr:`LoopSettings.aligned_confidence`). With :attr:`LoopSettings.transpose`, a pitch is moved by the interval
  between the bar's last aligned note of that part and the source's (a sequence: the loop moved up a step).

Every period of :attr:`LoopSettings.periods` whose source bar exists predicts; the expert is their mixture, each
period weighted by how well it has predicted the stream so far (Bayes with a fixed share, periods without a
prediction sleeping), so the region itself chooses its period. The region also sets how far the expert is trusted:
:meth:`LoopMemory.start_weights` is, per slot, the expert's mean probability of the region's own tokens times
:attr:`LoopSettings.weight`, so a region that loops starts near the weight and a through-composed one (a fugue)
near nothing; while sampling, :mod:`engine.symbolic.mixer` moves it with how well the expert predicted the recent
tokens. The settings were chosen on the tuning pieces (docs/symbolic-engine.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.symbolic.cache import Sparse, TokenKinds

# slot names, as the region cache's (the first position of a bar counts as a "next" decision)
PITCH, VELOCITY, DURATION, NEXT, PROGRAM = "pitch", "velocity", "duration", "next", "program"
SLOTS = (PITCH, VELOCITY, DURATION, NEXT, PROGRAM)
RHYTHM_SLOTS = (DURATION, NEXT, PROGRAM)  # where the notes start, which part, how long (LoopSettings.steady_rhythm)
_SLOT_AFTER = {"Position": PROGRAM, "Program": PITCH, "Pitch": VELOCITY, "PitchDrum": VELOCITY}
_SLOT_AFTER.update({"Velocity": DURATION, "Duration": NEXT})


@dataclass(frozen=True)
class LoopSettings:
    """The copy expert: its largest weight, the periods it tries (bars), how sure each kind of prediction is."""

    weight: float = 1.0  # times the weight that fitted the region best (slot by slot)
    # the most the expert's weight reaches: below the sampler's top-p (0.95) with room to spare, so the copy alone
    # never makes a token certain and variants of a loop still differ
    max_weight: float = 0.8
    # and for every bar in a row the variant has copied exactly, it may weigh this much less: a loop is varied the
    # more, the longer it has repeated unchanged (otherwise a plain loop gives every variant the same bars)
    fade: float = 0.8
    periods: tuple[int, ...] = (1, 2, 4, 8)
    sync_confidence: float = 0.99  # while the bar has copied its source exactly so far
    aligned_confidence: float = 0.9  # by position and part, once it has strayed
    evidence: float = 5.0  # pseudo-tokens at weight 0: a few lucky tokens of the region do not make a loop
    share: float | None = None  # fixed share of its weights (None: the cache's)
    period_share: float = 0.05  # fixed share of the periods' weights (a loop may change its period)
    transpose: bool = True  # a pitch follows the interval of the part's last aligned note (a sequence)
    # the guidance's density control (its bonuses and penalties on parts and positions) is scaled by
    # 1 - density_yield x the expert's weight for the token, so it does not overrule the loop's next onset
    density_yield: float = 1.0
    # the bar's first onset is predicted too (after ``Bar TimeSig``: where the source bar starts, a rest on the
    # downbeat included), and a position that holds no note (a Tempo alone) is not part of a bar's tokens; without
    # it, where each bar starts was the model's choice, and it starts bars on the downbeat
    bar_start: bool = True
    # the loop's rhythm (positions and parts: the next/program slots, and durations) keeps the weight the region
    # gave it: at least its starting weight, and no fade (the fade and the Bayes drops act on pitch and velocity),
    # so variants vary notes over the loop's groove. Off: it closed the LMMS songs' onset gap further but cost
    # variety (a one-pitch loop's variants grow alike) and, on the OpenMSX songs, pitch, scale and loss figures
    steady_rhythm: bool = False

    def describe(self) -> str:
        periods = "/".join(str(p) for p in self.periods)
        rhythm = (", bar starts" if self.bar_start else "") + (", steady rhythm" if self.steady_rhythm else "")
        return f"loop memory weight {self.weight:g} (periods {periods} bars{rhythm})"


# (position, program, pitch, pitch token, velocity token, duration token); -1 while not yet written
Event = list[int]


@dataclass
class _Bar:
    """One bar of the stream: its tokens (no Tempo) and its notes, indexed for the aligned lookup."""

    tokens: list[int] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    by_note: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (position, program) -> event indices

    def add(self, event: Event) -> None:
        self.by_note.setdefault((event[0], event[1]), []).append(len(self.events))
        self.events.append(event)

    def copy(self) -> _Bar:
        return _Bar(list(self.tokens), [list(e) for e in self.events], {k: list(v) for k, v in self.by_note.items()})


class LoopMemory:
    """The stream's bars so far, the bar being written, and the periods' weights; :meth:`fork` copies it per row."""

    def __init__(self, kinds: TokenKinds, settings: LoopSettings) -> None:
        self.kinds = kinds
        self.settings = settings
        self.bar_token = kinds.kind.index("Bar")
        self.bars: list[_Bar] = []  # finished bars (shared between forks: never changed once finished)
        self.current: _Bar | None = None  # None before the stream's first bar line
        self.previous = ""
        self.position = -1
        self.program = 0
        self.here: dict[int, int] = {}  # program -> notes started at this position
        self.region_bars: int | None = None  # bars of the region (None while it is being read)
        self.unvaried = 0  # bars in a row, after the region, that copied their source exactly
        self.period_weights = {p: 1.0 / len(settings.periods) for p in settings.periods}
        self.pending: tuple[str, dict[int, tuple[int, float]]] | None = None  # slot, period -> (token, confidence)
        # slot -> (the expert's, the other side's probability of each token read by observe(token, other))
        self.fit: dict[str, list[tuple[float, float]]] = {slot: [] for slot in SLOTS}

    def fork(self) -> LoopMemory:
        out = LoopMemory(self.kinds, self.settings)
        out.bars = list(self.bars)
        out.current = self.current.copy() if self.current is not None else None
        out.previous, out.position, out.program = self.previous, self.position, self.program
        out.here = dict(self.here)
        out.region_bars = self.region_bars
        out.unvaried = self.unvaried
        out.period_weights = dict(self.period_weights)
        return out

    def start_weights(self, iterations: int = 30) -> dict[str, float]:
        """Per slot: the weight of this expert against the other side that fitted the tokens read so far (the
        region's) best (``(1 - v) other + v expert``, by EM, with :attr:`LoopSettings.evidence` tokens of prior
        at weight 0, so a few lucky tokens do not make a loop), times the setting's weight."""
        out = {}
        for slot, pairs in self.fit.items():
            v = 0.5 if pairs else 0.0
            for _ in range(iterations if pairs else 0):
                v = sum(v * e / ((1 - v) * o + v * e) for e, o in pairs) / (len(pairs) + self.settings.evidence)
            out[slot] = self.settings.weight * v
        return out

    def limit(self, slot: str = PITCH) -> float:
        """The most the expert may weigh now in ``slot``: :attr:`LoopSettings.max_weight`, less for each bar in a
        row the variant has copied exactly (:attr:`LoopSettings.fade`; not in a rhythm slot with
        :attr:`LoopSettings.steady_rhythm`)."""
        if self.settings.steady_rhythm and slot in RHYTHM_SLOTS:
            return self.settings.max_weight
        return self.settings.max_weight * self.settings.fade**self.unvaried

    def slot(self) -> str | None:
        """The slot of the next token (None where the expert has nothing to predict)."""
        if self.previous == "TimeSig" and self.settings.bar_start:
            return NEXT
        return _SLOT_AFTER.get(self.previous)

    def period(self) -> int:
        """The period weighted most now."""
        return max(self.period_weights, key=lambda p: self.period_weights[p])

    # ---- prediction

    def end_region(self) -> None:
        """Mark the end of the region: from here on each period copies the region's bar at the same phase of the
        loop (not a bar the variant wrote, so a slip of the model is varied, not looped)."""
        self.region_bars = len(self.bars) + (1 if self.current is not None else 0)

    def _source(self, period: int) -> _Bar | None:
        n = len(self.bars)  # the bar being written
        if self.current is None:
            return None
        if self.region_bars is None or n - period < self.region_bars:
            index = n - period
        else:  # the latest region bar a whole number of periods back
            index = n - period * math.ceil((n - self.region_bars + 1) / period)
        source = self.bars[index] if index >= 0 else None
        return source if source is not None and source.events else None  # an empty bar (a rest) loops nothing

    def _predict_one(self, source: _Bar) -> tuple[int, float] | None:
        """(token, confidence) of one period's source bar at this point, or None where it has nothing to say."""
        current = self.current
        assert current is not None
        s = self.settings
        n = len(current.tokens)
        if current.tokens == source.tokens[:n]:
            return (source.tokens[n] if n < len(source.tokens) else self.bar_token), s.sync_confidence
        token = self._aligned(source)
        return (token, s.aligned_confidence) if token is not None else None

    def _aligned(self, source: _Bar) -> int | None:
        ids = self.kinds.ids
        q, p = self.position, self.program
        if self.previous == "TimeSig":  # the bar's first onset
            return ids.get(("Position", source.events[0][0]))
        if self.previous == "Position":
            for event in source.events:
                if event[0] == q and event[1] not in self.here:
                    return ids.get(("Program", event[1]))
            return None
        notes = source.by_note.get((q, p), [])
        k = self.here.get(p, 0) - 1  # this note's index among the part's notes here
        if self.previous == "Program":
            if k >= len(notes):
                return None
            event = source.events[notes[k]]
            offset = self._offset(source) if self.settings.transpose and p >= 0 else 0
            kind = "PitchDrum" if p == -1 else "Pitch"
            return ids.get((kind, event[2] + offset)) if offset else event[3]
        if self.previous in ("Pitch", "PitchDrum", "Velocity"):
            pitch = self.current.events[-1][2] if self.current and self.current.events else -1
            match = [i for i in notes if source.events[i][2] == pitch] or (notes[k : k + 1] if k < len(notes) else [])
            if not match:
                return None
            return source.events[match[0]][4 if self.previous != "Velocity" else 5]
        if self.previous == "Duration":
            if len(notes) > k + 1:
                return ids.get(("Program", p))
            for event in source.events:
                if event[0] == q and event[1] not in self.here:
                    return ids.get(("Program", event[1]))
            later = [e for e in source.events if e[0] > q]
            return ids.get(("Position", later[0][0])) if later else self.bar_token
        return None

    def _offset(self, source: _Bar) -> int:
        """Semitones between this part's last note in the bar and the source's note at the same point (0: none)."""
        current = self.current
        assert current is not None
        p = self.program
        offset = 0
        seen: dict[int, int] = {}
        for event in current.events[:-1]:  # the last one is the note being written
            if event[1] != p:
                continue
            k = seen.get(event[0], 0)
            seen[event[0]] = k + 1
            notes = source.by_note.get((event[0], p), [])
            if k < len(notes):
                offset = event[2] - source.events[notes[k]][2]
        return offset if abs(offset) <= 12 else 0

    def distribution(self) -> tuple[str, Sparse] | None:
        """(slot, the expert's next-token distribution), or None where no period has anything to say."""
        self.pending = None
        slot = self.slot()
        if slot is None or self.current is None:
            return None
        predictions = {}
        for period in self.settings.periods:
            source = self._source(period)
            found = self._predict_one(source) if source is not None else None
            if found is not None:
                predictions[period] = found
        if not predictions:
            return None
        self.pending = (slot, predictions)
        awake = sum(self.period_weights[p] for p in predictions)
        extra: dict[int, float] = {}
        spread = 0.0
        for period, (token, confidence) in predictions.items():
            share = self.period_weights[period] / awake
            extra[token] = extra.get(token, 0.0) + share * confidence
            spread += share * (1 - confidence)
        return slot, (spread / self.kinds.size, extra)

    # ---- reading the stream

    def observe(self, token: int, other: float | None = None) -> None:
        """Score the last prediction against ``token`` (the periods' weights), then move past it. With ``other``,
        the probability another predictor gave ``token`` (the region cache, while reading the region), the pair is
        kept for :meth:`start_weights`."""
        if other is not None and self.current is not None and self.slot():
            found = self.distribution()  # predict, to learn from it
            if found is not None:
                slot, (uniform, extra) = found
                self.fit[slot].append((uniform + extra.get(token, 0.0), other))
        if self.pending is not None:
            self._learn(token)
        self._parse(token)

    def _learn(self, token: int) -> None:
        assert self.pending is not None
        _, predictions = self.pending
        self.pending = None
        uniform = 1.0 / self.kinds.size
        likelihood = {
            p: (confidence if predicted == token else 0.0) + (1 - confidence) * uniform
            for p, (predicted, confidence) in predictions.items()
        }
        awake = sum(self.period_weights[p] for p in predictions)
        mixed = sum(self.period_weights[p] * likelihood[p] for p in predictions) / awake
        for p in predictions:  # Bayes among the awake periods; the sleeping keep their weight
            self.period_weights[p] *= likelihood[p] / mixed
        share = self.settings.period_share
        prior = 1.0 / len(self.period_weights)
        total = sum(self.period_weights.values())
        for p in self.period_weights:
            self.period_weights[p] = (1 - share) * self.period_weights[p] / total + share * prior

    def _parse(self, token: int) -> None:
        kind = self.kinds.kind[token]
        number = self.kinds.number[token]
        if kind == "Tempo":
            return
        if kind == "Bar":
            if self.current is not None:
                if self.region_bars is not None and len(self.bars) >= self.region_bars:  # a continuation bar ends
                    source = self._source(self.period())
                    self.unvaried = self.unvaried + 1 if source and source.tokens == self.current.tokens else 0
                self.bars.append(self.current)
            self.current = _Bar()
            self.position = -1
            self.here = {}
        if self.current is None:  # a prompt cut inside a bar: wait for the first bar line
            return
        if kind == "Position" and self.settings.bar_start and self.previous == "Position":
            self.current.tokens.pop()  # the last position held no note (a Tempo alone): not part of the bar
        self.current.tokens.append(token)
        if kind == "Position":
            self.position = number
            self.here = {}
        elif kind == "Program":
            self.program = number
            self.here[number] = self.here.get(number, 0) + 1
            self.current.add([self.position, number, -1, -1, -1, -1])
        elif kind in ("Pitch", "PitchDrum") and self.current.events:
            self.current.events[-1][2:4] = [number, token]
        elif kind == "Velocity" and self.current.events:
            self.current.events[-1][4] = token
        elif kind == "Duration" and self.current.events:
            self.current.events[-1][5] = token
        self.previous = kind
