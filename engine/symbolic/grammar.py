"""The grammar of a REMI continuation, as a state machine per row and masks over the vocabulary.

``Bar TimeSig(region) Position Program Pitch Velocity Duration (Program ... | Position(later) ... | Bar)``

:class:`Masks` gives, for a row's state, the tokens allowed next and a logit bias (key penalty, the region's
pitch, position and duration priors, the arrangement/density steering); :meth:`Masks.advance` moves the row past
the token sampled. Positions only move forward inside a bar; the row is done when the (N+1)-th bar would begin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from engine.symbolic.constraints import Constraints, Vocabulary

AHEAD_FACTOR = 2.0  # density control: a part ahead of its target costs this many arrangement bonuses


# States of a row's grammar: what the next token must be.
BAR, TIMESIG, POSITION, PROGRAM, PITCH, VELOCITY, DURATION, AFTER_NOTE, DONE = range(9)


@dataclass
class Row:
    """One variant's place in the grammar, and the tokens it has written."""

    state: int = BAR
    bar: int = 0  # bars started so far
    position: int = -1
    program: int = 0
    tokens_in_bar: int = 0
    notes_in_bar: dict[int, int] = field(default_factory=dict)  # program -> notes started in this bar
    at_position: set[int] = field(default_factory=set)  # programs that started a note at this position
    chord_notes: dict[int, int] = field(default_factory=dict)  # program -> notes started at this position
    density_scale: float = 1.0  # this step's share of the density control (less where the loop memory leads)
    tokens: list[int] = field(default_factory=list)


class Masks:
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

    def for_row(self, row: Row) -> tuple[torch.Tensor, torch.Tensor | None]:
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

    def _program_bias(self, row: Row) -> torch.Tensor | None:
        """The arrangement/density bias plus each part's own onset-position prior at the row's position."""
        bias = self._arrangement_bias(row)
        if self.part_position is None or not 0 <= row.position < self.part_position.shape[0]:
            return bias
        here = self.part_position[row.position]
        return here if bias is None else bias + here

    def _arrangement_bias(self, row: Row) -> torch.Tensor | None:
        """Keep the region's parts playing: a part that is behind the share of its region density expected
        by this point of the bar gets a bonus on its Program token; ending a bar in which a steady part
        (at least one note per bar in the region) has not played yet is discouraged by the same amount."""
        bonus = self.constraints.arrangement_bonus
        if self.constraints.density_target and bonus > 0.0:
            return self._density_bias(row, bonus * row.density_scale)
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

    def _density_bias(self, row: Row, bonus: float) -> torch.Tensor:
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

    def advance(self, row: Row, token: int) -> None:
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
