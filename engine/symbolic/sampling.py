"""Batched, grammar-constrained sampling of REMI continuations with a KV cache.

K variants are sampled in one batch, each row with its own seeded generator. A small state machine per row
masks the logits so that every continuation is well formed and fits the region:

``Bar TimeSig(region) Position Program Pitch Velocity Duration (Program ... | Position(later) ... | Bar)``

- only the region's instruments (and drums when it has drums), within each part's pitch range;
- no tempo or meter tokens (the region's tempo and meter are kept);
- positions inside the bar and moving forward; at least one note in every bar;
- sampling stops when the (N+1)-th bar would begin, so exactly N bars are generated.

Pitch classes the region does not use get a logit penalty (``key_penalty`` nats), which keeps variants in the
region's key without forbidding chromatic notes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from miditok import REMI

from engine.api import CancelToken, Meter
from engine.errors import BadInputError
from engine.symbolic import model_fast
from engine.symbolic.model import GPT, KVCache

log = logging.getLogger(__name__)

POSITIONS_PER_BEAT = 8  # the tokenizer's finest resolution: Position_p counts 1/8 of the meter's beat
PITCH_MARGIN = 7  # semitones a part may move beyond the range it used in the region
AHEAD_FACTOR = 2.0  # density control: a part ahead of its target costs this many arrangement bonuses


@dataclass(frozen=True)
class Vocabulary:
    """Token ids grouped by type, read from a miditok REMI vocabulary."""

    size: int
    bar: int
    pad: int
    time_signatures: dict[tuple[int, int], int]
    positions: list[int]  # id of Position_p at index p
    programs: dict[int, int]  # program (-1 drums) -> id
    pitches: dict[int, int]  # MIDI pitch -> id of Pitch_x
    drum_pitches: dict[int, int]  # MIDI pitch -> id of PitchDrum_x
    velocities: list[int]
    durations: list[int]

    @classmethod
    def from_tokenizer(cls, tokenizer: REMI) -> Vocabulary:
        vocab: dict[str, int] = dict(tokenizer.vocab)
        time_signatures: dict[tuple[int, int], int] = {}
        positions: dict[int, int] = {}
        programs: dict[int, int] = {}
        pitches: dict[int, int] = {}
        drum_pitches: dict[int, int] = {}
        velocities: list[int] = []
        durations: list[int] = []
        for token, index in vocab.items():
            kind, _, value = token.partition("_")
            if kind == "TimeSig":
                num, den = value.split("/")
                time_signatures[(int(num), int(den))] = index
            elif kind == "Position":
                positions[int(value)] = index
            elif kind == "Program":
                programs[int(value)] = index
            elif kind == "Pitch":
                pitches[int(value)] = index
            elif kind == "PitchDrum":
                drum_pitches[int(value)] = index
            elif kind == "Velocity":
                velocities.append(index)
            elif kind == "Duration":
                durations.append(index)
        return cls(
            size=len(vocab),
            bar=vocab["Bar_None"],
            pad=vocab.get("PAD_None", 0),
            time_signatures=time_signatures,
            positions=[positions[p] for p in sorted(positions)],
            programs=programs,
            pitches=pitches,
            drum_pitches=drum_pitches,
            velocities=velocities,
            durations=durations,
        )


@dataclass(frozen=True)
class Constraints:
    """What a continuation must respect, derived from the region."""

    bars: int
    meter: Meter
    parts: dict[int, tuple[int, ...]]  # program (-1 drums) -> allowed MIDI pitches
    pitch_class_penalty: tuple[float, ...] = (0.0,) * 12  # nats subtracted per pitch class
    position_step: int = 1  # onsets only on multiples of this many positions (the region's grid)
    part_density: dict[int, float] = field(default_factory=dict)  # program -> notes per bar in the region
    arrangement_bonus: float = 0.0  # nats added to a part's Program token while it is behind its density
    max_tokens_per_bar: int = 640
    # guidance from the region (engine.symbolic.guidance); empty = none
    pitch_bias: dict[int, tuple[float, ...]] = field(default_factory=dict)  # program -> nats per MIDI pitch
    position_bias: tuple[float, ...] = ()  # nats per position in the bar
    part_position_bias: dict[int, tuple[float, ...]] = field(default_factory=dict)  # program -> nats per position
    duration_bias: dict[int, tuple[float, ...]] = field(default_factory=dict)  # program -> nats per Duration token
    density_target: dict[int, float] = field(default_factory=dict)  # program -> notes per bar to steer to
    chord_size: dict[int, float] = field(default_factory=dict)  # program -> notes per onset in the region
    final_bar_pitch_bias: dict[int, tuple[float, ...]] = field(default_factory=dict)  # last bar (-inf: never)

    @property
    def positions_per_bar(self) -> int:
        return self.meter.numerator * POSITIONS_PER_BEAT


def constraints_for(
    vocab: Vocabulary,
    meter: Meter,
    bars: int,
    part_ranges: dict[int, tuple[int, int]],
    drum_pitches: Sequence[int],
    pitch_class_counts: Sequence[int],
    key_penalty: float,
    position_step: int = 1,
    part_density: dict[int, float] | None = None,
    arrangement_bonus: float = 0.0,
) -> Constraints:
    """Build :class:`Constraints`; raise :class:`BadInputError` for a meter the model cannot write."""
    if (meter.numerator, meter.denominator) not in vocab.time_signatures:
        known = ", ".join(f"{n}/{d}" for n, d in sorted(vocab.time_signatures, key=lambda m: (m[1], m[0])))
        raise BadInputError(f"this model cannot write in {meter}; it knows {known}")
    if meter.numerator * POSITIONS_PER_BEAT > len(vocab.positions):
        raise BadInputError(f"a bar of {meter} is longer than this model's position range")
    parts: dict[int, tuple[int, ...]] = {}
    for program, (low, high) in part_ranges.items():
        if program == -1:
            parts[-1] = tuple(p for p in sorted(set(drum_pitches)) if p in vocab.drum_pitches)
        else:
            parts[program] = tuple(p for p in range(low - PITCH_MARGIN, high + PITCH_MARGIN + 1) if p in vocab.pitches)
        if not parts[program] or program not in vocab.programs:
            del parts[program]
    if not parts:
        raise BadInputError("none of the region's instruments or pitches can be written by this model")
    total = sum(pitch_class_counts) or 1
    penalty = tuple(key_penalty if count / total < 0.02 else 0.0 for count in pitch_class_counts)
    density = {p: d for p, d in (part_density or {}).items() if p in parts}
    return Constraints(
        bars=bars,
        meter=meter,
        parts=parts,
        pitch_class_penalty=penalty,
        position_step=max(1, position_step),
        part_density=density,
        arrangement_bonus=arrangement_bonus,
    )


# States of a row's grammar: what the next token must be.
BAR, TIMESIG, POSITION, PROGRAM, PITCH, VELOCITY, DURATION, AFTER_NOTE, DONE = range(9)


@dataclass
class _Row:
    state: int = BAR
    bar: int = 0  # bars started so far
    position: int = -1
    program: int = 0
    tokens_in_bar: int = 0
    notes_in_bar: dict[int, int] = field(default_factory=dict)  # program -> notes started in this bar
    at_position: set[int] = field(default_factory=set)  # programs that started a note at this position
    chord_notes: dict[int, int] = field(default_factory=dict)  # program -> notes started at this position
    tokens: list[int] = field(default_factory=list)


class _Masks:
    """Precomputed boolean masks over the vocabulary for each grammar state."""

    def __init__(self, vocab: Vocabulary, constraints: Constraints, device: torch.device) -> None:
        def mask(ids: Sequence[int]) -> torch.Tensor:
            m = torch.zeros(vocab.size, dtype=torch.bool, device=device)
            m[list(ids)] = True
            return m

        self.vocab = vocab
        self.constraints = constraints
        meter = (constraints.meter.numerator, constraints.meter.denominator)
        self.time_signature = vocab.time_signatures[meter]
        self.bar = mask([vocab.bar])
        self.timesig = mask([self.time_signature])
        self.velocity = mask(vocab.velocities)
        self.duration = mask(vocab.durations)
        self.programs = mask([vocab.programs[p] for p in constraints.parts])
        self.pitch: dict[int, torch.Tensor] = {}
        self.pitch_bias: dict[int, torch.Tensor] = {}
        for program, allowed in constraints.parts.items():
            table = vocab.drum_pitches if program == -1 else vocab.pitches
            self.pitch[program] = mask([table[p] for p in allowed])
            bias = torch.zeros(vocab.size, device=device)
            if program != -1:
                prior = constraints.pitch_bias.get(program)
                for p in allowed:
                    bias[table[p]] = -constraints.pitch_class_penalty[p % 12] + (prior[p] if prior else 0.0)
            self.pitch_bias[program] = bias
        self.final_pitch: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for program, extra in constraints.final_bar_pitch_bias.items():
            if program not in self.pitch:
                continue
            final = self.pitch_bias[program].clone()
            final_mask = self.pitch[program].clone()
            for p in constraints.parts[program]:
                if math.isinf(extra[p]):
                    final_mask[vocab.pitches[p]] = False
                else:
                    final[vocab.pitches[p]] += extra[p]
            if bool(final_mask.any()):
                self.final_pitch[program] = (final_mask, final)
        self.position_bias: torch.Tensor | None = None
        if any(constraints.position_bias):
            self.position_bias = torch.zeros(vocab.size, device=device)
            for p, nats in enumerate(constraints.position_bias[: len(vocab.positions)]):
                self.position_bias[vocab.positions[p]] = nats
        # [position, vocab]: nats on each part's Program token at each position
        self.part_position: torch.Tensor | None = None
        if constraints.part_position_bias:
            ppb_rows = constraints.positions_per_bar
            self.part_position = torch.zeros(ppb_rows, vocab.size, device=device)
            for program, per_position in constraints.part_position_bias.items():
                if program in constraints.parts:
                    column = torch.tensor(per_position[:ppb_rows], dtype=self.part_position.dtype)
                    self.part_position[: len(column), vocab.programs[program]] = column
        self.duration_bias: dict[int, torch.Tensor] = {}
        for program, per_duration in constraints.duration_bias.items():
            bias = torch.zeros(vocab.size, device=device)
            bias[list(vocab.durations)] = torch.tensor(per_duration[: len(vocab.durations)], dtype=bias.dtype)
            self.duration_bias[program] = bias
        self.position_index = {tid: p for p, tid in enumerate(vocab.positions)}
        self.position_ids = torch.tensor(vocab.positions, dtype=torch.long, device=device)
        self.program_index = {tid: p for p, tid in vocab.programs.items()}
        ppb = constraints.positions_per_bar
        step = constraints.position_step
        self.positions_from = [
            mask([vocab.positions[p] for p in range(start, ppb) if p % step == 0]) for start in range(ppb + 1)
        ]

    def for_row(self, row: _Row) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(allowed mask, optional logit bias) for the row's next token."""
        if row.state == BAR:
            return self.bar, None
        if row.state == TIMESIG:
            return self.timesig, None
        if row.state == POSITION:
            return self.positions_from[0], self.position_bias
        if row.state == PROGRAM:
            return self.programs, self._program_bias(row)
        if row.state == PITCH:
            if row.bar == self.constraints.bars and row.program in self.final_pitch:
                return self.final_pitch[row.program]
            return self.pitch[row.program], self.pitch_bias[row.program]
        if row.state == VELOCITY:
            return self.velocity, None
        if row.state == DURATION:
            return self.duration, self.duration_bias.get(row.program)
        # after a note: another note here, a later position, or the next bar
        if row.tokens_in_bar >= self.constraints.max_tokens_per_bar:
            return self.bar, None
        allowed = self.programs | self.bar | self.positions_from[row.position + 1]
        bias = self._program_bias(row)
        if self.position_bias is not None:
            bias = self.position_bias if bias is None else bias + self.position_bias
        return allowed, bias

    def _program_bias(self, row: _Row) -> torch.Tensor | None:
        """The arrangement/density bias plus each part's own onset-position prior at the row's position."""
        bias = self._arrangement_bias(row)
        if self.part_position is None or not 0 <= row.position < self.part_position.shape[0]:
            return bias
        here = self.part_position[row.position]
        return here if bias is None else bias + here

    def _arrangement_bias(self, row: _Row) -> torch.Tensor | None:
        """Keep the region's parts playing: a part that is behind the share of its region density expected
        by this point of the bar gets a bonus on its Program token; ending a bar in which a steady part
        (at least one note per bar in the region) has not played yet is discouraged by the same amount."""
        bonus = self.constraints.arrangement_bonus
        if self.constraints.density_target and bonus > 0.0:
            return self._density_bias(row, bonus)
        if bonus <= 0.0 or not self.constraints.part_density:
            return None
        fraction = (row.position + 1) / self.constraints.positions_per_bar
        bias = torch.zeros(self.vocab.size, device=self.bar.device)
        for program, density in self.constraints.part_density.items():
            played = row.notes_in_bar.get(program, 0)
            if density >= 0.5 and played < max(1.0, density * fraction) and program not in row.at_position:
                bias[self.vocab.programs[program]] = bonus
            if density >= 1.0 and played == 0 and row.state == AFTER_NOTE:
                bias[self.vocab.bar] = -bonus
        return bias

    def _density_bias(self, row: _Row, bonus: float) -> torch.Tensor:
        """Steer each part to its target notes per bar: a bonus on its Program token while it is behind the
        share expected by this point of the bar, a penalty once it is a chord (its usual notes per onset) ahead;
        ending a bar is discouraged while a part of at least one note per bar is under half its target."""
        c = self.constraints
        fraction = (row.position + 1) / c.positions_per_bar
        bias = torch.zeros(self.vocab.size, device=self.bar.device)
        for program, target in c.density_target.items():
            played = row.notes_in_bar.get(program, 0)
            expected = target * fraction
            need = max(1.0, expected) if target >= 1.0 else expected
            token = self.vocab.programs[program]
            chord = c.chord_size.get(program, 1.0)
            here = row.chord_notes.get(program, 0)
            if target >= 0.5 and played < need and program not in row.at_position:
                bias[token] = bonus
            elif 0 < here < round(chord):  # a chord under way: complete it to the region's usual size
                bias[token] = bonus
            elif played >= expected + chord:
                bias[token] = -AHEAD_FACTOR * bonus
            if target >= 1.0 and played < 0.5 * target and row.state == AFTER_NOTE:
                bias[self.vocab.bar] = -bonus
        if row.state == AFTER_NOTE:
            # no part is due before `earliest` (each has played what its target asks up to there): skip ahead
            ppb = c.positions_per_bar
            earliest = ppb
            for program, target in c.density_target.items():
                if target > 0:
                    played = row.notes_in_bar.get(program, 0)
                    earliest = min(earliest, math.ceil((played - 0.5) * ppb / target - 1))
            if earliest > row.position + 1:
                bias[self.position_ids[row.position + 1 : min(earliest, ppb)]] = -AHEAD_FACTOR * bonus
        return bias

    def advance(self, row: _Row, token: int) -> None:
        """Move the row's state machine past ``token`` (which the mask allowed)."""
        vocab = self.vocab
        row.tokens_in_bar += 1
        if token == vocab.bar:
            if row.bar == self.constraints.bars:
                row.state = DONE  # the (N+1)-th bar would begin: stop, without the Bar token
                return
            row.bar += 1
            row.position = -1
            row.tokens_in_bar = 0
            row.notes_in_bar = {}
            row.state = TIMESIG
        elif row.state == TIMESIG:
            row.state = POSITION
        elif row.state in (POSITION, AFTER_NOTE) and token in self.position_index:
            row.position = self.position_index[token]
            row.at_position = set()
            row.chord_notes = {}
            row.state = PROGRAM
        elif row.state in (PROGRAM, AFTER_NOTE):
            row.program = self.program_index[token]
            row.notes_in_bar[row.program] = row.notes_in_bar.get(row.program, 0) + 1
            row.at_position.add(row.program)
            row.chord_notes[row.program] = row.chord_notes.get(row.program, 0) + 1
            row.state = PITCH
        elif row.state == PITCH:
            row.state = VELOCITY
        elif row.state == VELOCITY:
            row.state = DURATION
        elif row.state == DURATION:
            row.state = AFTER_NOTE
        row.tokens.append(token)


def _top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero the tail of each row's distribution outside the smallest set with mass >= top_p. [K, V]"""
    if top_p >= 1.0:
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    cumulative = sorted_probs.cumsum(dim=-1)
    drop = cumulative - sorted_probs > top_p  # keeps the token that crosses top_p
    sorted_probs = sorted_probs.masked_fill(drop, 0.0)
    filtered: torch.Tensor = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return filtered


ProgressFn = Callable[[float], None]
# Called each step with the model's logits [rows, vocab] and every row's tokens so far; returns the logits to
# sample from (engine.symbolic.cache mixes the region cache in here). Masks, biases and temperature apply after.
LogitsHook = Callable[[torch.Tensor, Sequence[Sequence[int]]], torch.Tensor]


@torch.inference_mode()
def sample_continuations(
    model: GPT,
    prompt_ids: Sequence[int],
    vocab: Vocabulary,
    constraints: Constraints,
    seeds: Sequence[int],
    temperature: float = 1.0,
    top_p: float = 0.95,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    use_cache: bool = True,
    logits_hook: LogitsHook | None = None,
    drop_finished: bool = True,
    precision: torch.dtype | None = None,
) -> list[list[int]]:
    """Sample ``len(seeds)`` continuations of ``prompt_ids`` in one batch; returns each row's token ids,
    starting with ``Bar TimeSig`` and ending before the bar after the last one.

    ``use_cache=False`` recomputes the whole context every step (the baseline the benchmark compares with).
    ``drop_finished`` (default) takes a row out of the batch (and its keys/values out of the cache) once it has
    written its last bar, so the steps that remain run on the rows still writing; ``False`` keeps every row in
    the batch to the end, feeding finished rows padding (what the sampler did before; the benchmark's baseline).
    A row's tokens depend only on its seed, never on the batch it runs in. ``precision``: the dtype of the fast
    decode path's weight products for this job (None: :func:`engine.symbolic.model_fast.decode_dtype`, float32 unless
    ``SEGUE_DECODE_PRECISION=bfloat16``; float32 gives the module path's logits, and so its tokens).
    """
    previous = model.decode_dtype
    model.decode_dtype = model_fast.decode_dtype() if precision is None else precision
    try:
        with model_fast.job_threads():  # the steps' thread count, set once for the job
            return _sample(
                model, prompt_ids, vocab, constraints, seeds, temperature, top_p, progress, cancel, use_cache,
                logits_hook, drop_finished,
            )  # fmt: skip
    finally:
        model.decode_dtype = previous


def _sample(
    model: GPT,
    prompt_ids: Sequence[int],
    vocab: Vocabulary,
    constraints: Constraints,
    seeds: Sequence[int],
    temperature: float,
    top_p: float,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    use_cache: bool,
    logits_hook: LogitsHook | None,
    drop_finished: bool,
) -> list[list[int]]:
    device = next(model.parameters()).device
    block = model.config.block_size
    batch = len(seeds)
    if batch == 0:
        return []
    masks = _Masks(vocab, constraints, device)
    rows = [_Row() for _ in range(batch)]
    generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
    live = list(range(batch))  # the rows in the model's batch (and the cache), in order
    no_bias = torch.zeros(vocab.size, device=device)
    pad_only = torch.zeros(vocab.size, dtype=torch.bool, device=device)
    pad_only[vocab.pad] = True

    prompt = list(prompt_ids)[-(block // 2) :]
    history = torch.tensor([prompt] * batch, dtype=torch.long, device=device)  # [K, T], every row
    cache: KVCache | None = None

    def forward_context() -> torch.Tensor:
        nonlocal cache
        context = history[live, -(block // 2) :] if history.shape[1] >= block else history[live]
        if use_cache:
            cache = model.new_cache(len(live))
            # the prompt is the same for every row at the start, but after a crop rows differ: prefill all
            logits, _ = model(context, cache=cache)
        else:
            logits, _ = model(context)
        last: torch.Tensor = logits[:, -1, :]
        return last

    logits = forward_context()  # [live rows, vocab]
    steps = 0
    expected = constraints.bars * batch
    while True:
        if cancel is not None:
            cancel.raise_if_cancelled()
        if logits_hook is not None:  # the hook sees every row, in seed order (finished rows: zeros)
            if len(live) < batch:
                every = logits.new_zeros(batch, logits.shape[-1])
                every[live] = logits
                logits = logits_hook(every, [r.tokens for r in rows])[live]
            else:
                logits = logits_hook(logits, [r.tokens for r in rows])
        # every live row's mask and bias at once: one masked softmax over the batch
        allowed_rows: list[torch.Tensor] = []
        bias_rows: list[torch.Tensor] = []
        for i in live:
            row = rows[i]
            if row.state == DONE:
                allowed_rows.append(pad_only)
                bias_rows.append(no_bias)
                continue
            row_mask, bias = masks.for_row(row)
            allowed_rows.append(row_mask)
            bias_rows.append(no_bias if bias is None else bias)
        scaled = logits.float() / temperature
        if any(b is not no_bias for b in bias_rows):
            scaled = scaled + torch.stack(bias_rows)
        scaled = scaled.masked_fill(~torch.stack(allowed_rows), float("-inf"))
        probs = _top_p_filter(torch.softmax(scaled, dim=-1), top_p).cpu()
        next_tokens = [vocab.pad] * len(live)
        for j, i in enumerate(live):
            row = rows[i]
            if row.state == DONE:
                continue
            token = int(torch.multinomial(probs[j], 1, generator=generators[i]).item())
            masks.advance(row, token)
            next_tokens[j] = token
        steps += 1
        if progress is not None and steps % 8 == 0:
            done_bars = sum(max(0, r.bar - 1) if r.state != DONE else constraints.bars for r in rows)
            progress(min(1.0, done_bars / expected))
        if all(r.state == DONE for r in rows):
            break
        every_token = torch.full((batch,), vocab.pad, dtype=torch.long)
        every_token[live] = torch.tensor(next_tokens, dtype=torch.long)
        history = torch.cat([history, every_token.to(device)[:, None]], dim=1)
        if drop_finished and any(rows[i].state == DONE for i in live):
            kept = [j for j, i in enumerate(live) if rows[i].state != DONE]
            live = [live[j] for j in kept]
            next_tokens = [next_tokens[j] for j in kept]
            if cache is not None:
                cache.keep_rows(kept)
        if not use_cache or cache is None or cache.length >= block:
            logits = forward_context()
        else:
            step = torch.tensor(next_tokens, dtype=torch.long, device=device)[:, None]
            step_logits, _ = model(step, cache=cache)
            logits = step_logits[:, -1, :]
    if progress is not None:
        progress(1.0)
    return [r.tokens for r in rows]
