"""What a continuation must respect, in the token ids of the model's REMI vocabulary.

:class:`Vocabulary` groups a miditok REMI vocabulary's ids by token type; :class:`Constraints` says what the
sampler may write for one region (its meter, bars, parts and their pitch ranges, the key penalty and the
region's guidance); :func:`constraints_for` builds them and refuses a meter or parts the model cannot write.
The per-step masks that enforce them are in :mod:`engine.symbolic.grammar`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from miditok import REMI

from engine.api import Meter
from engine.errors import BadInputError

POSITIONS_PER_BEAT = 8  # the tokenizer's finest resolution: Position_p counts 1/8 of the meter's beat
PITCH_MARGIN = 7  # semitones a part may move beyond the range it used in the region


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
