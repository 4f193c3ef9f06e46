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

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from miditok import REMI

# slot names (what the next token is)
PITCH, VELOCITY, DURATION, NEXT, PROGRAM = "pitch", "velocity", "duration", "next", "program"
SLOTS = (PITCH, VELOCITY, DURATION, NEXT, PROGRAM)

Key = tuple[object, ...]


@dataclass(frozen=True)
class CacheSettings:
    """Prior mixing weight of the cache per slot, the interval view's share of the pitch slot, fixed share."""

    pitch: float = 0.5
    velocity: float = 0.7
    duration: float = 0.1
    next: float = 0.5
    program: float = 0.3
    interval_weight: float = 0.3
    share: float = 0.3  # how far each slot's weight returns to its prior after every token (0: pure Bayes)

    def weight(self, slot: str) -> float:
        value: float = getattr(self, slot)
        return value

    def describe(self) -> str:
        weights = ", ".join(f"{s} {self.weight(s):g}" for s in SLOTS)
        return f"prior weights {weights}; intervals {self.interval_weight:g}; share {self.share:g}"


DEFAULT_CACHE = CacheSettings()


@dataclass(frozen=True)
class TokenKinds:
    """What each token id is: its kind (``Pitch``, ``Velocity``...) and its number (pitch, position, program)."""

    size: int
    kind: tuple[str, ...]
    number: tuple[int, ...]  # the value of Pitch/PitchDrum/Position/Program tokens; 0 for others
    pitch_id: dict[int, int]  # MIDI pitch -> id of Pitch_x

    @classmethod
    def from_tokenizer(cls, tokenizer: REMI) -> TokenKinds:
        vocab: dict[str, int] = dict(tokenizer.vocab)
        kind = [""] * len(vocab)
        number = [0] * len(vocab)
        pitch_id: dict[int, int] = {}
        for token, index in vocab.items():
            name, _, value = token.partition("_")
            kind[index] = name
            if name in ("Pitch", "PitchDrum", "Position", "Program"):
                number[index] = int(value)
            if name == "Pitch":
                pitch_id[int(value)] = index
        return cls(len(vocab), tuple(kind), tuple(number), pitch_id)


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
        s = self.state
        out.state = _State(
            s.previous,
            s.program,
            s.position,
            s.pitch,
            dict(s.last_pitch),
            dict(s.last_interval),
            dict(s.last_velocity),
            dict(s.last_duration),
        )
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
        elif kind == "Bar":
            s.position = -1
        elif kind == "Program":
            s.program = number
        elif kind in ("Pitch", "PitchDrum"):
            s.pitch = number
            if kind == "Pitch":
                if s.program in s.last_pitch:
                    s.last_interval[s.program] = number - s.last_pitch[s.program]
                s.last_pitch[s.program] = number
        elif kind == "Velocity":
            s.last_velocity[s.program] = token
        elif kind == "Duration":
            s.last_duration[s.program] = token
        s.previous = kind
        self.tokens += 1

    def _smoothed(self, chain: Sequence[Key], base: np.ndarray, to_index: dict[int, int] | None) -> np.ndarray:
        """Witten-Bell along ``chain``: p = (counts + types x p_shorter) / (total + types)."""
        p = base
        for key in chain:
            row = self.counts.table.get(key)
            if not row:
                break
            total = self.counts.totals[key]
            types = len(row)
            counts = np.zeros_like(base)
            for symbol, count in row.items():
                index = symbol if to_index is None else to_index.get(symbol, -1)
                if 0 <= index < counts.size:
                    counts[index] += count
            p = (counts + types * p) / (total + types)
        return p

    def distribution(self) -> tuple[str, np.ndarray] | None:
        """(slot, the cache's next-token distribution over the vocabulary), or None where it is silent."""
        found = self.chains()
        if found is None:
            return None
        slot, chain, interval_chain = found
        size = self.kinds.size
        uniform = np.full(size, 1.0 / size)
        p = self._smoothed(chain, uniform, None)
        if interval_chain and self.counts.table.get(interval_chain[0]):
            last = self.state.last_pitch[self.state.program]
            to_index = {pitch - last: index for pitch, index in self.kinds.pitch_id.items()}
            by_interval = self._smoothed(interval_chain, uniform, to_index)
            w = self.settings.interval_weight
            p = (1 - w) * p + w * by_interval
        return slot, p


@dataclass
class CacheReport:
    """What the cache did in a job, for job.json."""

    settings: CacheSettings
    region_tokens: int
    rows: int = 0
    tokens_written: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        return (
            f"region cache mixed into the model's next-token distribution (fitted on the region's "
            f"{self.region_tokens} tokens and each variant's own {self.tokens_written // max(1, self.rows)} tokens "
            f"as it grew, {self.rows} rows, {self.seconds:.2f} s; {self.settings.describe()})"
        )


class _Weights:
    """One row's mixing weight per slot: the Bayesian posterior after each token, pulled back to the prior."""

    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings
        self.weights = {slot: settings.weight(slot) for slot in SLOTS}

    def mix(self, slot: str, model: float, cache: float) -> float:
        return (1 - self.weights[slot]) * model + self.weights[slot] * cache

    def update(self, slot: str, model: float, cache: float) -> None:
        w = self.weights[slot]
        mixed = (1 - w) * model + w * cache
        posterior = w * cache / mixed if mixed > 0 else w
        share = self.settings.share
        self.weights[slot] = (1 - share) * posterior + share * self.settings.weight(slot)


def mixed_nll(
    log_probs: np.ndarray, context: Sequence[int], target: Sequence[int], kinds: TokenKinds, settings: CacheSettings
) -> np.ndarray:
    """Per-token negative log-likelihood of ``target`` under the model (``log_probs`` [len(target), vocab], the
    model's log-softmax at each target position) mixed with a cache fitted on ``context`` and on the target so far.
    """
    cache = RegionCache(kinds, settings)
    for token in context:
        cache.observe(int(token))
    weights = _Weights(settings)
    out = np.empty(len(target))
    for i, token in enumerate(target):
        model_p = math.exp(float(log_probs[i, token]))
        found = cache.distribution()
        if found is None:
            out[i] = -math.log(model_p)
        else:
            slot, p = found
            out[i] = -math.log(weights.mix(slot, model_p, float(p[token])))
            weights.update(slot, model_p, float(p[token]))
        cache.observe(int(token))
    return out


class CacheMixer:
    """A sampler hook: mixes each row's cache into its logits and grows the cache with the tokens the row writes.

    Called once per sampling step with the model's logits [rows, vocab] and every row's tokens so far; returns
    logits whose softmax is the mixture (the sampler's temperature, masks and biases then apply as before).
    """

    def __init__(self, prompt: Sequence[int], kinds: TokenKinds, rows: int, settings: CacheSettings) -> None:
        started = time.perf_counter()
        base = RegionCache(kinds, settings)
        for token in prompt:
            base.observe(int(token))
        self.caches = [base.fork() for _ in range(rows)]
        self.weights = [_Weights(settings) for _ in range(rows)]
        self.seen = [0] * rows
        self.pending: list[tuple[str, np.ndarray, np.ndarray] | None] = [None] * rows
        self.report = CacheReport(settings, len(prompt), rows)
        self.report.seconds = time.perf_counter() - started

    def __call__(self, logits: torch.Tensor, tokens: Sequence[Sequence[int]]) -> torch.Tensor:
        started = time.perf_counter()
        model_probs = torch.softmax(logits.float(), dim=-1).cpu().numpy().astype(np.float64)
        mixed = model_probs.copy()
        changed = False
        for i, row_tokens in enumerate(tokens):
            cache = self.caches[i]
            for token in row_tokens[self.seen[i] :]:
                pending = self.pending[i]
                if pending is not None:  # the token just written: how well did each side predict it?
                    slot, model_p, cache_p = pending
                    self.weights[i].update(slot, float(model_p[token]), float(cache_p[token]))
                    self.pending[i] = None
                cache.observe(int(token))
                self.report.tokens_written += 1
            self.seen[i] = len(row_tokens)
            found = cache.distribution()
            if found is None:
                self.pending[i] = None
                continue
            slot, p = found
            w = self.weights[i].weights[slot]
            mixed[i] = (1 - w) * model_probs[i] + w * p
            self.pending[i] = (slot, model_probs[i], p)
            changed = True
        self.report.seconds += time.perf_counter() - started
        if not changed:
            return logits
        return torch.from_numpy(np.log(np.maximum(mixed, 1e-30))).to(device=logits.device, dtype=logits.dtype)
