"""Profile controls: each part of a variant steered towards the region's own pitch-class profile, and (off by
default) the variant's onset positions in the bar towards the region's.

A static pitch-class prior (a log-prior added to every ``Pitch_`` logit, engine.symbolic.guidance) sharpens: it
pushes every note towards the region's most used classes, so a variant's profile overshoots the region's where the
prior is strong and keeps the model's where it is weak. This control instead follows what the variant has played:
per part, the duration-weighted pitch-class histogram of its notes so far (started from the region's profile, worth
one bar of the part's notes, so the first notes are free), and at each ``Pitch_`` token of that part a bias of
``strength x log(region share / variant share)`` per class (clipped to :data:`MAX_BIAS` nats): a class the variant
has played less than the region gets a bonus, one it has played more a penalty, and one the region's part never
plays gets no bonus, only a penalty once it holds more than :data:`TOLERANCE` of the part's length (the key
penalty acts on it as before). A variant that copies the region is not pushed at all, and every variant ends near the
region's profile in its own order of notes. The region's and the variant's profiles are duration-weighted (a held
note counts for its length), as the measure of pitch-class overlap (engine.evaluate.midi) weighs them.

The mixer (engine.symbolic.mixer) scales the setting's strength by a gate read from the region (:func:`gate`):
by default the loop memory's fit to the region (:func:`loop_share`: where a region never repeats, composers tend to
move on, and the control stays out of their way), which also opens for pieces whose rhythm and harmony repeat
while their notes do not; the ``repeat`` gate, how far the region repeats its bars note for note, part by part
(:func:`repeat_share`), was measured against it and not kept. :class:`OnsetProfile` is the same feedback on where notes
start (``Position_`` tokens); docs/symbolic-engine.md, "Pitch classes: the profile control" and "Gating the
controls by what the region says", has the figures.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from engine.symbolic.constraints import POSITIONS_PER_BEAT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.symbolic.cache import TokenKinds
    from engine.symbolic.loop import LoopSettings

MAX_BIAS = 3.0  # nats either way
GATES = ("repeat", "loop", "none")  # what scales a control's strength (:func:`gate`)
REPEAT_FULL = 0.5  # the repeat share (:func:`repeat_share`) at which the repeat gate is fully open
GATE_WORDS = {  # for job.json: what the gate's value (0..1) is
    "repeat": "the region's bars repeated note for note (its repeat share over 0.5, at most 1)",
    "loop": "the region's loop share",
    "none": "no gate",
}
LOOP_SLOTS = ("pitch", "duration", "next", "program")  # the loop memory's slots that say the region loops
TOLERANCE = 0.02  # the share of a class the region's part does not play that goes unpenalised


@dataclass
class _Parse:
    """Which part a note belongs to and its pitch class, until its ``Duration_`` token says how long it is."""

    program: int = 0
    pitch_class: int = -1
    bar_length: float = 0.0
    bars: int = 0
    lengths: dict[int, np.ndarray] = field(default_factory=dict)  # program -> [12] summed note lengths (positions)


class PitchProfile:
    """One stream's per-part pitch-class lengths (the region's, then one variant's); :meth:`fork` copies it."""

    def __init__(self, kinds: TokenKinds, strength: float) -> None:
        self.kinds = kinds
        self.strength = strength
        self.parse = _Parse()
        self.target: dict[int, np.ndarray] = {}  # program -> the region's profile (shares, smoothed)
        self.prior: dict[int, float] = {}  # program -> pseudo-length of the region's profile in the variant's
        self.absent: dict[int, np.ndarray] = {}  # program -> the classes it never plays in the region
        pitch_class = np.full(kinds.size, -1, dtype=np.int64)
        for token, kind in enumerate(kinds.kind):
            if kind == "Pitch":
                pitch_class[token] = kinds.number[token] % 12
        self.pitch_class = pitch_class
        self.pitch_tokens = np.flatnonzero(pitch_class >= 0)

    def fork(self) -> PitchProfile:
        out = PitchProfile.__new__(PitchProfile)
        out.kinds, out.strength = self.kinds, self.strength
        out.parse = _Parse(self.parse.program, self.parse.pitch_class, self.parse.bar_length, self.parse.bars,
                           {p: h.copy() for p, h in self.parse.lengths.items()})  # fmt: skip
        out.target, out.prior, out.absent = self.target, self.prior, self.absent
        out.pitch_class, out.pitch_tokens = self.pitch_class, self.pitch_tokens
        return out

    def end_region(self) -> None:
        """The tokens read so far are the region's: they make each part's target, and the variant starts afresh."""
        bars = max(1, self.parse.bars)
        for program, lengths in self.parse.lengths.items():
            total = float(lengths.sum())
            if total <= 0:
                continue
            self.target[program] = lengths / total
            self.prior[program] = total / bars
            self.absent[program] = lengths <= 0
        self.parse.lengths = {}

    def observe(self, token: int) -> None:
        kind = self.kinds.kind[token]
        parse = self.parse
        if kind == "Bar":
            parse.bars += 1
        elif kind == "Program":
            parse.program = self.kinds.number[token]
        elif kind == "Pitch":
            parse.pitch_class = self.kinds.number[token] % 12
        elif kind == "PitchDrum":
            parse.pitch_class = -1
        elif kind == "Duration" and parse.pitch_class >= 0:
            lengths = parse.lengths.setdefault(parse.program, np.zeros(12))
            lengths[parse.pitch_class] += max(self.kinds.length[token], 1e-3)
            parse.pitch_class = -1

    def bias(self, program: int) -> np.ndarray | None:
        """Nats per pitch class for ``program``'s next pitch (None: a part the region does not play)."""
        target = self.target.get(program)
        if target is None or self.strength <= 0:
            return None
        prior = self.prior[program]
        played = self.parse.lengths.get(program)
        own = target * prior + (played if played is not None else 0.0)
        return steer(target, own, self.absent[program], self.strength)

    def apply(self, probs: np.ndarray, program: int) -> bool:
        """Scale ``probs`` (one row's next-token probabilities, a ``Pitch_`` next) by the bias; False: unchanged."""
        bias = self.bias(program)
        if bias is None:
            return False
        tokens = self.pitch_tokens
        probs[tokens] *= np.exp(bias[self.pitch_class[tokens]])
        return True


def steer(target: np.ndarray, own: np.ndarray, absent: np.ndarray, strength: float) -> np.ndarray:
    """Nats per bin: ``strength x log(target share / own share)``, clipped to :data:`MAX_BIAS`; a bin the target
    lacks (``absent``) gets no bonus, only a penalty once it holds over :data:`TOLERANCE` of ``own``."""
    shares = own / own.sum()
    wanted = np.where(absent, TOLERANCE, target)
    out: np.ndarray = np.clip(strength * np.log(wanted / np.maximum(shares, 1e-12)), -MAX_BIAS, MAX_BIAS)
    out[absent] = np.minimum(out[absent], 0.0)
    return out


class OnsetProfile:
    """The same control for where notes start: the region's onset positions in the bar (each part's onset counted
    once, as the onset-position measure counts them, drums included) against the variant's so far, as a bias on the
    ``Position_`` tokens wherever a position may come next (after a note or at a bar's start)."""

    def __init__(self, kinds: TokenKinds, strength: float) -> None:
        self.kinds, self.strength = kinds, strength
        self.previous, self.position, self.bars = "", 0, 0
        self.here: set[int] = set()
        self.counts: np.ndarray | None = None  # [positions in the region's bar] onsets, once its meter is read
        self.target = np.zeros(0)  # the region's shares per position (set by end_region)
        self.prior = 0.0  # the region's onsets a bar: the pseudo-count of its shares in the variant's
        self.absent = np.zeros(0, dtype=bool)
        self.position_tokens = np.array([t for t, k in enumerate(kinds.kind) if k == "Position"], dtype=np.int64)
        self.position_of = np.array([kinds.number[t] for t in self.position_tokens], dtype=np.int64)

    def fork(self) -> OnsetProfile:
        out = copy.copy(self)
        out.here = set(self.here)
        out.counts = self.counts.copy() if self.counts is not None else None
        return out

    def observe(self, token: int) -> None:
        kind = self.kinds.kind[token]
        if kind == "Bar":
            self.bars += 1
            self.here = set()
        elif kind == "TimeSig" and self.counts is None:
            self.counts = np.zeros(self.kinds.number[token] * POSITIONS_PER_BEAT)
        elif kind == "Position":
            self.position = self.kinds.number[token]
            self.here = set()
        elif kind == "Program" and self.kinds.number[token] not in self.here:
            self.here.add(self.kinds.number[token])
            if self.counts is not None and self.position < len(self.counts):
                self.counts[self.position] += 1
        if kind != "Tempo":
            self.previous = kind

    def end_region(self) -> None:
        counts = self.counts
        if counts is not None and counts.sum() > 0:
            self.target = counts / counts.sum()
            self.prior = float(counts.sum()) / max(1, self.bars)
            self.absent = counts <= 0
            self.counts = np.zeros_like(counts)
        else:
            self.strength = 0.0

    def apply(self, probs: np.ndarray) -> bool:
        """Scale ``probs`` (one row's next-token probabilities) where a position may come next; False: unchanged."""
        if self.strength <= 0 or self.previous not in ("Duration", "TimeSig") or self.counts is None:
            return False
        bias = steer(self.target, self.target * self.prior + self.counts, self.absent, self.strength)
        inside = self.position_of < len(bias)
        tokens = self.position_tokens[inside]
        probs[tokens] *= np.exp(bias[self.position_of[inside]])
        return True


_Profile = TypeVar("_Profile", PitchProfile, OnsetProfile)


def _fitted(profile: _Profile, region: Sequence[int]) -> _Profile:
    """``profile`` after reading the region's tokens (its targets), ready for the variant's first token."""
    for token in region:
        profile.observe(int(token))
    profile.end_region()
    return profile


def fitted_onsets(region: Sequence[int], kinds: TokenKinds, strength: float) -> OnsetProfile:
    return _fitted(OnsetProfile(kinds, strength), region)


def loop_share(start_weights: dict[str, float], settings: LoopSettings) -> float:
    """How far the region loops, 0..1: the loop memory's largest starting weight over the pitch and rhythm slots
    (what it learnt from the region's own tokens, engine.symbolic.loop), without the similarity control's scale,
    over its cap (:attr:`LoopSettings.max_weight`). The velocity slot is left out: a region of one velocity (a score
    written out) predicts it trivially. A through-composed region gives about 0, a loop up to 1."""
    if settings.weight <= 0 or settings.max_weight <= 0:
        return 0.0
    fit = max((start_weights.get(slot, 0.0) / settings.weight for slot in LOOP_SLOTS), default=0.0)
    return min(1.0, max(0.0, fit / settings.max_weight))


def fitted_profile(region: Sequence[int], kinds: TokenKinds, strength: float) -> PitchProfile:
    return _fitted(PitchProfile(kinds, strength), region)


def repeat_share(region: Sequence[int], kinds: TokenKinds) -> float:
    """How far the region repeats its bars note for note, 0..1: of its parts' bars (a part's notes in one bar, as
    (position in the bar, pitch) pairs, drums included; bars where the part is silent left out), the share that
    another bar of the same part plays exactly. A loop of one or two bars gives 1, a through-composed region 0 (a
    four-bar loop inside a four-bar region also 0: nothing in it repeats yet)."""
    bars: list[dict[int, set[tuple[int, int]]]] = []
    position = program = 0
    for token in region:
        kind = kinds.kind[int(token)]
        if kind == "Bar":
            bars.append({})
            position = 0
        elif kind == "Position":
            position = kinds.number[int(token)]
        elif kind == "Program":
            program = kinds.number[int(token)]
        elif kind in ("Pitch", "PitchDrum") and bars:
            bars[-1].setdefault(program, set()).add((position, kinds.number[int(token)]))
    cells = repeated = 0
    for program in {p for bar in bars for p in bar}:
        patterns = [frozenset(bar.get(program, ())) for bar in bars]
        for index, pattern in enumerate(patterns):
            if not pattern:
                continue
            cells += 1
            repeated += any(other == pattern for i, other in enumerate(patterns) if i != index)
    return repeated / cells if cells else 0.0


def gate(
    kind: str,
    region: Sequence[int],
    kinds: TokenKinds,
    start_weights: dict[str, float],
    settings: LoopSettings | None,
) -> float:
    """How far a profile control acts on this region, 0..1 (its strength is the setting times this).

    ``"repeat"``: the region's :func:`repeat_share` over :data:`REPEAT_FULL` (at most 1); ``"loop"``: the loop
    memory's fit (:func:`loop_share`; 1 without a loop memory); ``"none"``: 1."""
    if kind == "repeat":
        return min(1.0, repeat_share(region, kinds) / REPEAT_FULL)
    if kind == "loop":
        return loop_share(start_weights, settings) if settings is not None else 1.0
    if kind == "none":
        return 1.0
    raise ValueError(f"unknown gate {kind!r}: one of {', '.join(GATES)}")
