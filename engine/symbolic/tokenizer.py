"""The token vocabulary: miditok's REMI with programs, tempos and time signatures in one stream.

One time-ordered stream holds every instrument (``Program_p`` before each note; ``Program_-1`` is drums), the
tempo and the meter, with a ``Bar_None`` token at every bar line:
``Bar_None TimeSig_4/4 Position_0 Tempo_96.0 Program_0 Pitch_60 Velocity_87 Duration_1.0.8 ...``.
The tokenizer's parameters travel with each checkpoint (``tokenizer.json``) so a model is always read with the
vocabulary it was trained on.
"""

from __future__ import annotations

from pathlib import Path

from miditok import REMI, TokenizerConfig

# Meters the vocabulary knows: denominator -> numerators.
TIME_SIGNATURES: dict[int, list[int]] = {
    8: [3, 5, 6, 7, 9, 12],
    4: [1, 2, 3, 4, 5, 6, 7],
    2: [1, 2, 3, 4],
}
# Position resolution: 8 steps per beat up to 4 beats, then 4 per beat; 32nd notes on the grid.
BEAT_RES: dict[tuple[int, int], int] = {(0, 4): 8, (4, 12): 4}


def make_config() -> TokenizerConfig:
    return TokenizerConfig(
        pitch_range=(21, 109),
        beat_res=BEAT_RES,
        num_velocities=16,
        special_tokens=["PAD", "BOS", "EOS"],
        use_programs=True,
        one_token_stream_for_programs=True,
        use_tempos=True,
        num_tempos=32,
        tempo_range=(40, 250),
        use_time_signatures=True,
        time_signature_range=TIME_SIGNATURES,
        use_chords=False,
        use_rests=False,
        use_sustain_pedals=False,
        use_pitch_bends=False,
    )


def make_tokenizer() -> REMI:
    """The tokenizer new models are trained with."""
    return REMI(make_config())


def load_tokenizer(path: Path) -> REMI:
    """Load the tokenizer saved beside a checkpoint (``tokenizer.json``)."""
    return REMI(params=path)
