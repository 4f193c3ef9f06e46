"""The region cache: what the region (and the continuation so far) plays, mixed into the model's next token.

Music repeats itself far more than text: a part keeps its dynamics, its note lengths, its intervals, its place in
the texture. The cache is the neural-cache idea from language modelling, fitted to REMI's grammar. It reads the
token stream with a small parser (which part is playing, where in the bar, its last pitch, interval, velocity and
duration) and counts, for every kind of next token ("slot"), what followed each context:

- ``pitch`` (after ``Program_p``): the pitch given the part, its last pitch and last interval; and, mixed in with
  :attr:`CacheSettings.interval_weight`, the interval from the part's last pitch given its last interval, which
  is the same in every key (a motif moved up a step is still counted);
- ``velocity`` (after a pitch): given the part, the pitch, the part's last velocity;
- ``duration`` (after a velocity): given the part, the position in the bar, the part's last duration;
- ``next`` (after a duration: another part, a later position or the bar line): given the part and the position;
- ``program`` (after a position): which part starts first there, given the position.

Each chain runs from the general context to the specific one with Witten-Bell smoothing (uniform at the bottom), so
a context seen often speaks loudly and one seen once barely. The cache's distribution is mixed with the model's:
``p = (1 - w) p_model + w p_cache`` with a weight ``w`` per slot that follows how well the cache predicted the
recent tokens of that slot (the Bayesian posterior of the two, pulled back to the slot's prior weight by
:attr:`CacheSettings.share` every token: fixed-share mixing). The counts grow with every token the continuation
writes, so a motif the variant has just played becomes likely again.

The settings were chosen on the tuning pieces (bench/data/midi_quality/tuning/), never on the bench's pieces; the
figures are in docs/symbolic-engine.md.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from miditok import REMI

from engine.symbolic.constraints import POSITIONS_PER_BEAT
from engine.symbolic.loop import LoopSettings

# slot names (what the next token is)
PITCH, VELOCITY, DURATION, NEXT, PROGRAM = "pitch", "velocity", "duration", "next", "program"
SLOTS = (PITCH, VELOCITY, DURATION, NEXT, PROGRAM)

Key = tuple[object, ...]
HELD_BEATS = 2.0  # a part whose notes last this long on average, never overlapping, keeps its voicing (held_parts)
MAX_WEIGHT = 0.95  # the model always keeps a share: the cache alone would never write what the region lacks
Sparse = tuple[float, dict[int, float]]  # (probability of every token, extra probability of a few)


@dataclass(frozen=True)
class CacheSettings:
    """Prior mixing weight of the cache per slot, the interval view's share of the pitch slot, fixed share."""

    pitch: float = 0.5
    velocity: float = 0.7
    duration: float = 0.1
    next: float = 0.25  # 0.5 by the loss alone (-12.2 % against -12.0 %); 0.25 kept the rhythm (tuning pieces)
    program: float = 0.3
    interval_weight: float = 0.3
    share: float = 0.3  # how far each slot's weight returns to its prior after every token (0: pure Bayes)
    # the region's voicing, kept while sampling: a held part (notes of 2 beats or more that never overlap: a pad)
    # starts no note while its last one still sounds; no part doubles a pitch it already plays at that onset
    voicing: bool = True
    loop: LoopSettings | None = LoopSettings()  # the bar-level copy expert (engine.symbolic.loop); None: off
    # the cache and the loop memory read the whole region (its last bars in at most 4 model contexts of tokens,
    # continuation.WHOLE_REGION_BLOCKS), not only the model's prompt (half a context: a bar or two of a dense region)
    whole_region: bool = True
    # each part's pitch classes steered towards the region's profile as the variant plays (engine.symbolic.profile):
    # nats per log-unit of (region share / variant share), times how far the region loops; 0: off. 2 by the held-out
    # songs: pitch classes within 0.05 of the composer's on more of them, none of the other counts lower summed
    # (docs/symbolic-engine.md, "Pitch classes: the profile control")
    profile: float = 2.0
    # the same control for onset positions in the bar (engine.symbolic.profile.OnsetProfile), at Position tokens; 0: off
    onset_profile: float = 0.0
    # what scales each control's strength, read from the region (engine.symbolic.profile.gate): "loop" (the loop
    # memory's fit, session 5), "repeat" (how far the region repeats its bars note for note) or "none"
    profile_gate: str = "loop"
    onset_gate: str = "loop"

    def weight(self, slot: str) -> float:
        value: float = getattr(self, slot)
        return value

    @property
    def active(self) -> bool:
        return any(self.weight(slot) > 0 for slot in SLOTS)

    def scaled(self, factor: float) -> CacheSettings:
        """Every slot's prior weight times ``factor`` (at most :data:`MAX_WEIGHT`): the job's similarity control."""
        w = {slot: min(MAX_WEIGHT, max(0.0, self.weight(slot) * factor)) for slot in SLOTS}
        # the loop memory's weight multiplies what the region gave it (its own cap applies): scaled, not capped here
        loop = replace(self.loop, weight=max(0.0, self.loop.weight * factor)) if self.loop else None
        return replace(
            self,
            profile=max(0.0, self.profile * factor),
            onset_profile=max(0.0, self.onset_profile * factor),
            pitch=w[PITCH],
            velocity=w[VELOCITY],
            duration=w[DURATION],
            next=w[NEXT],
            program=w[PROGRAM],
            loop=loop,
        )

    def describe(self) -> str:
        weights = ", ".join(f"{s} {self.weight(s):.2g}" for s in SLOTS)
        loop = f"; {self.loop.describe()}" if self.loop is not None else ""
        region = "the whole region" if self.whole_region else "the model's prompt"
        profile = f"; pitch-class profile control {self.profile:.2g}" if self.profile > 0 else ""
        profile += f"; onset profile control {self.onset_profile:.2g}" if self.onset_profile > 0 else ""
        return (
            f"prior weights {weights}; intervals {self.interval_weight:g}; share {self.share:g}{loop}{profile}; "
            f"read {region}"
        )


DEFAULT_CACHE = CacheSettings()


@dataclass(frozen=True)
class TokenKinds:
    """What each token id is: its kind (``Pitch``, ``Velocity``...) and its number (pitch, position, program)."""

    size: int
    kind: tuple[str, ...]
    number: tuple[int, ...]  # the value of Pitch/PitchDrum/Position/Program tokens, a TimeSig's numerator; else 0
    pitch_id: dict[int, int]  # MIDI pitch -> id of Pitch_x
    length: tuple[float, ...] = ()  # a Duration token's length in positions (1/8 of the meter's beat); else 0
    ids: dict[tuple[str, int], int] = field(default_factory=dict)  # ("Program", 33) -> id; Pitch, PitchDrum too

    @classmethod
    def from_tokenizer(cls, tokenizer: REMI) -> TokenKinds:
        vocab: dict[str, int] = dict(tokenizer.vocab)
        kind = [""] * len(vocab)
        number = [0] * len(vocab)
        length = [0.0] * len(vocab)
        pitch_id: dict[int, int] = {}
        ids: dict[tuple[str, int], int] = {}
        for token, index in vocab.items():
            name, _, value = token.partition("_")
            kind[index] = name
            if name in ("Pitch", "PitchDrum", "Position", "Program"):
                number[index] = int(value)
                ids[(name, int(value))] = index
            elif name == "TimeSig":
                number[index] = int(value.split("/")[0])
            elif name == "Duration":  # beats.ticks.ticks_per_beat, in the meter's beat
                beats, ticks, resolution = (int(x) for x in value.split("."))
                length[index] = (beats + ticks / resolution) * POSITIONS_PER_BEAT
            if name == "Pitch":
                pitch_id[int(value)] = index
        return cls(len(vocab), tuple(kind), tuple(number), pitch_id, tuple(length), ids)


class _Counts:
    """context key -> next symbol -> count, with each context's total and number of distinct symbols."""

    def __init__(self) -> None:
        self.table: dict[Key, dict[int, int]] = {}
        self.totals: dict[Key, int] = {}

    def add(self, key: Key, symbol: int) -> None:
        row = self.table.setdefault(key, {})
        row[symbol] = row.get(symbol, 0) + 1
        self.totals[key] = self.totals.get(key, 0) + 1

    def copy(self) -> _Counts:
        out = _Counts()
        out.table = {k: dict(v) for k, v in self.table.items()}
        out.totals = dict(self.totals)
        return out


@dataclass
class _State:
    """The parser's view of the stream so far."""

    previous: str = "Bar"  # kind of the last token
    program: int = 0
    position: int = 0
    pitch: int = 0
    last_pitch: dict[int, int] = field(default_factory=dict)  # program -> its last pitch (pitched parts)
    last_interval: dict[int, int] = field(default_factory=dict)
    last_velocity: dict[int, int] = field(default_factory=dict)
    last_duration: dict[int, int] = field(default_factory=dict)
    # time, in positions from the stream's start, for the region's voicing rules
    bars: int = 0
    bar_start: int = 0
    bar_length: int = 4 * POSITIONS_PER_BEAT
    onset_time: int = 0
    here: dict[int, set[int]] = field(default_factory=dict)  # program -> pitches started at this position
    sounding_until: dict[int, float] = field(default_factory=dict)  # program -> when its notes so far end
    overlapped: set[int] = field(default_factory=set)  # parts that started a note while an earlier one sounded
    onsets: dict[int, int] = field(default_factory=dict)  # program -> onsets (chords count once)
    held_length: dict[int, float] = field(default_factory=dict)  # program -> total length of its notes (positions)
    notes: dict[int, int] = field(default_factory=dict)  # program -> notes


class RegionCache:
    """Counts of one stream (the region, then one continuation); :meth:`fork` gives each row its own copy."""

    def __init__(self, kinds: TokenKinds, settings: CacheSettings = DEFAULT_CACHE) -> None:
        self.kinds = kinds
        self.settings = settings
        self.counts = _Counts()
        self.state = _State()
        self.tokens = 0

    def fork(self) -> RegionCache:
        out = RegionCache(self.kinds, self.settings)
        out.counts = self.counts.copy()
        out.state = copy.deepcopy(self.state)
        out.tokens = self.tokens
        return out

    def chains(self) -> tuple[str, list[Key], list[Key]] | None:
        """(slot, token-context chain, interval-context chain) for the next token; None where the cache is silent."""
        s = self.state
        p = s.program
        if s.previous == "Program":
            last_interval = s.last_interval.get(p)
            interval_chain: list[Key] = [("i", p), ("i", p, last_interval)] if p in s.last_pitch else []
            chain: list[Key] = [("p", p), ("p", p, s.last_pitch.get(p)), ("p", p, s.last_pitch.get(p), last_interval)]
            return PITCH, chain, interval_chain
        if s.previous in ("Pitch", "PitchDrum"):
            return VELOCITY, [("v", p), ("v", p, s.pitch), ("v", p, s.pitch, s.last_velocity.get(p))], []
        if s.previous == "Velocity":
            return DURATION, [("d", p), ("d", p, s.position), ("d", p, s.position, s.last_duration.get(p))], []
        if s.previous == "Duration":
            return NEXT, [("n", p), ("n", p, s.position)], []
        if s.previous in ("Position", "Tempo"):
            return PROGRAM, [("q",), ("q", s.position)], []
        return None

    def observe(self, token: int) -> None:
        """Count ``token`` in its contexts, then move the parser past it."""
        found = self.chains()
        kinds = self.kinds
        s = self.state
        if found is not None:
            _, chain, interval_chain = found
            for key in chain:
                self.counts.add(key, token)
            if interval_chain and kinds.kind[token] == "Pitch":
                interval = kinds.number[token] - s.last_pitch[s.program]
                for key in interval_chain:
                    self.counts.add(key, interval)
        kind = kinds.kind[token]
        number = kinds.number[token]
        if kind == "Position":
            s.position = number
            s.onset_time = s.bar_start + number
            s.here = {}
        elif kind == "Bar":
            if s.bars:  # the bar before ends here (the stream's first Bar starts bar 0)
                s.bar_start += s.bar_length
            s.bars += 1
            s.position = -1
            s.here = {}
        elif kind == "TimeSig":
            s.bar_length = number * POSITIONS_PER_BEAT
        elif kind == "Program":
            s.program = number
            if s.program not in s.here:  # a new onset of this part
                if s.onset_time < s.sounding_until.get(s.program, 0.0):
                    s.overlapped.add(s.program)
                s.onsets[s.program] = s.onsets.get(s.program, 0) + 1
            s.here.setdefault(s.program, set())
        elif kind in ("Pitch", "PitchDrum"):
            s.pitch = number
            s.here.setdefault(s.program, set()).add(number)
            if kind == "Pitch":
                if s.program in s.last_pitch:
                    s.last_interval[s.program] = number - s.last_pitch[s.program]
                s.last_pitch[s.program] = number
        elif kind == "Velocity":
            s.last_velocity[s.program] = token
        elif kind == "Duration":
            s.last_duration[s.program] = token
            end = s.onset_time + kinds.length[token]
            s.held_length[s.program] = s.held_length.get(s.program, 0.0) + kinds.length[token]
            s.notes[s.program] = s.notes.get(s.program, 0) + 1
            s.sounding_until[s.program] = max(s.sounding_until.get(s.program, 0.0), end)
        s.previous = kind
        self.tokens += 1

    def held_parts(self) -> set[int]:
        """Held parts (pads, held chords): at least two onsets, notes of two beats or longer on average, and never
        a note started while an earlier one still sounded."""
        s = self.state
        return {
            p
            for p, n in s.onsets.items()
            if n >= 2
            and p not in s.overlapped
            and s.held_length.get(p, 0.0) >= HELD_BEATS * POSITIONS_PER_BEAT * s.notes.get(p, 1)
        }

    def forbidden(self, held: set[int]) -> list[int]:
        """Tokens the region's voicing rules out next: a held part's next onset while its notes still sound, and
        a pitch its part has already started at this position; a later position where every part is a held one
        still sounding."""
        s = self.state
        ids = self.kinds.ids
        out = []
        if s.previous in ("Duration", "TimeSig") and s.onsets:  # a Position may come next
            # the earliest time any part may start a note: when every part is a held one still sounding, wait
            earliest = min(s.sounding_until.get(p, 0.0) if p in held else 0.0 for p in s.onsets)
            start = s.position + 1 if s.previous == "Duration" else 0
            out += [
                ids[("Position", q)]
                for q in range(start, s.bar_length)
                if s.bar_start + q < earliest and ("Position", q) in ids
            ]
        if s.previous in ("Position", "Tempo", "Duration"):  # a Program may come next, here
            out += [
                ids[("Program", p)]
                for p in held
                if p not in s.here and s.onset_time < s.sounding_until.get(p, 0.0) and ("Program", p) in ids
            ]
            return out
        if s.previous == "Program":
            kind = "PitchDrum" if s.program == -1 else "Pitch"
            return [ids[(kind, x)] for x in s.here.get(s.program, ()) if (kind, x) in ids]
        return out

    def _smoothed(self, chain: Sequence[Key], offset: int | None) -> Sparse:
        """Witten-Bell along ``chain``: p = (counts + types x p_shorter) / (total + types), uniform at the bottom.

        Kept sparse: every token has ``uniform`` and the few counted ones ``extra[token]`` on top. With ``offset``
        the counted symbols are intervals, made tokens as the pitch ``offset + interval``."""
        uniform = 1.0 / self.kinds.size
        extra: dict[int, float] = {}
        for key in chain:
            row = self.counts.table.get(key)
            if not row:
                break
            total = self.counts.totals[key]
            types = len(row)
            scale = types / (total + types)
            uniform *= scale
            extra = {token: value * scale for token, value in extra.items()}
            for symbol, count in row.items():
                token = symbol if offset is None else self.kinds.pitch_id.get(offset + symbol, -1)
                if token >= 0:
                    extra[token] = extra.get(token, 0.0) + count / (total + types)
        return uniform, extra

    def distribution(self) -> tuple[str, Sparse] | None:
        """(slot, the cache's next-token distribution: ``uniform`` for every token plus ``extra[token]``), or None
        where it is silent."""
        found = self.chains()
        if found is None:
            return None
        slot, chain, interval_chain = found
        uniform, extra = self._smoothed(chain, None)
        if interval_chain and self.counts.table.get(interval_chain[0]):
            w = self.settings.interval_weight
            by_uniform, by_extra = self._smoothed(interval_chain, self.state.last_pitch[self.state.program])
            uniform = (1 - w) * uniform + w * by_uniform
            extra = {token: (1 - w) * value for token, value in extra.items()}
            for token, value in by_extra.items():
                extra[token] = extra.get(token, 0.0) + w * value
        return slot, (uniform, extra)

    def dense(self) -> tuple[str, np.ndarray] | None:
        """:meth:`distribution` as a vector over the vocabulary."""
        found = self.distribution()
        if found is None:
            return None
        slot, (uniform, extra) = found
        p = np.full(self.kinds.size, uniform)
        for token, value in extra.items():
            p[token] += value
        return slot, p
