"""Accompaniment as track infilling (in the manner of MMM): the token layout, the roles, the model.

A bar-aligned piece of ``L`` bars is written track by track, every track bar by bar, so bar ``i`` of each track
lines up with bar ``i`` of the others. The known tracks come first, then a fill marker, the list of tracks to
write, and the missing tracks::

    BOS Tempo_t
    TRACK Program_s  Bar TimeSig Position Program_s Pitch Velocity Duration ... (L bars)     known tracks
    FILL Program_b Program_p                                                                  what to write
    TRACK Program_b  Bar TimeSig ... (L bars)                                                 missing tracks
    TRACK Program_p  Bar TimeSig ... (L bars)
    EOS

Inside a track the tokens are the MIDI model's REMI tokens (:mod:`engine.symbolic.tokenizer`) without tempo
tokens, so the grammar of :mod:`engine.symbolic.grammar` writes one track at a time and the accompany model can
start from the MIDI model's weights. The meter is in every bar (``TimeSig``), the tempo in the header, and the
key in the known tracks' pitches (sampling adds the key penalty of :mod:`engine.symbolic.grammar`).

``TRACK`` and ``FILL`` are two tokens after the REMI vocabulary (ids 509 and 510 for the shipped vocabulary); the
model's vocabulary is rounded up to a multiple of 8.

Tracks are *roles*: each part of a training piece is given a role by register (soprano, alto, tenor, bass; the
inner voices merged into one ``piano`` part), and each role has its own program in the token stream. A user's
region parts are given the roles the request leaves free, top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from miditok import REMI
from symusic import Score, Tempo, TimeSignature
from symusic.core import NoteTick, ScoreTick, TempoTick, TimeSignatureTick, TrackTick

from engine.checkpoints import CONFIG_NAME, SYMBOLIC_TYPE, TOKENIZER_NAME, Checkpoint, write_json_atomic
from engine.errors import BadInputError, ModelNotFoundError
from engine.symbolic.region import bar_lines_for

TASK = "accompany"


@dataclass(frozen=True)
class Role:
    name: str
    program: int  # its program in the token stream and in the written MIDI file
    low: int  # the pitch range the sampler allows (MIDI pitches, inclusive)
    high: int


# Top to bottom. The ranges are the choral ranges widened by a few semitones (the training data's 1st..99th
# percentiles per role sit inside them); "piano" is the inner voices (alto + tenor) as one chordal part.
ROLES: tuple[Role, ...] = (
    Role("soprano", 40, 57, 84),  # violin
    Role("alto", 41, 50, 77),  # viola
    Role("tenor", 42, 43, 72),  # cello
    Role("bass", 32, 33, 64),  # acoustic bass
    Role("piano", 0, 43, 79),  # acoustic grand piano
)
ROLE_BY_NAME = {r.name: r for r in ROLES}
VOICES = ("soprano", "alto", "tenor", "bass")
# the order missing tracks are written in (bass first: the harmony grows on it) and known tracks are read in
FILL_ORDER = ("bass", "piano", "tenor", "alto", "soprano")
KNOWN_ORDER = ("soprano", "alto", "tenor", "bass", "piano")
DEFAULT_PARTS = ("bass", "piano")


@dataclass(frozen=True)
class Tokens:
    """The ids of the layout: REMI ids plus the two added tokens."""

    bos: int
    eos: int
    pad: int
    bar: int
    track: int
    fill: int
    vocab_size: int  # the model's (REMI + added, rounded up to a multiple of 8)
    programs: dict[int, int]  # program -> id of Program_p
    tempos: list[tuple[float, int]]  # (bpm, id of Tempo_bpm)
    time_signatures: dict[str, int]  # "4/4" -> id
    drop: frozenset[int]  # ids removed from tracks (tempo tokens)
    positions: frozenset[int]

    @classmethod
    def from_tokenizer(cls, tokenizer: REMI) -> Tokens:
        vocab: dict[str, int] = dict(tokenizer.vocab)
        base = len(vocab)
        tempos = sorted((float(t.split("_", 1)[1]), i) for t, i in vocab.items() if t.startswith("Tempo_"))
        return cls(
            bos=vocab["BOS_None"],
            eos=vocab["EOS_None"],
            pad=vocab["PAD_None"],
            bar=vocab["Bar_None"],
            track=base,
            fill=base + 1,
            vocab_size=int(math.ceil((base + 2) / 8) * 8),
            programs={int(t.split("_", 1)[1]): i for t, i in vocab.items() if t.startswith("Program_")},
            tempos=tempos,
            time_signatures={t.split("_", 1)[1]: i for t, i in vocab.items() if t.startswith("TimeSig_")},
            drop=frozenset(i for _, i in tempos),
            positions=frozenset(i for t, i in vocab.items() if t.startswith("Position_")),
        )

    def tempo(self, bpm: float) -> int:
        return min(self.tempos, key=lambda t: abs(math.log(t[0] / bpm)))[1]


# ---------------------------------------------------------------------------------------------- encoding


def clean_track_tokens(ids: Sequence[int], tokens: Tokens) -> list[int]:
    """Drop tempo tokens and the position tokens they leave without a note."""
    kept = [i for i in ids if i not in tokens.drop]
    out: list[int] = []
    for n, i in enumerate(kept):
        if i in tokens.positions:
            following = kept[n + 1] if n + 1 < len(kept) else None
            if following is None or following in tokens.positions or following == tokens.bar:
                continue
        out.append(i)
    return out


def split_bars(ids: Sequence[int], bar: int) -> list[list[int]]:
    """Token lists per bar, each starting with its ``Bar`` token."""
    bars: list[list[int]] = []
    for i in ids:
        if i == bar:
            bars.append([i])
        elif bars:
            bars[-1].append(i)
    return bars


def encode_track_bars(
    tokenizer: REMI,
    tokens: Tokens,
    notes: Sequence[tuple[int, int, int, int]],
    program: int,
    ticks_per_quarter: int,
    time_signatures: Sequence[tuple[int, int, int]],
    bar_count: int,
    bar_timesigs: Sequence[int],
) -> list[list[int]]:
    """One track's notes ``(start, duration, pitch, velocity)`` as ``bar_count`` token lists (empty bars are
    ``Bar TimeSig``). ``bar_timesigs[i]`` is the TimeSig id of bar ``i``."""
    score = ScoreTick(ticks_per_quarter)
    for tick, num, den in time_signatures:
        score.time_signatures.append(TimeSignatureTick(tick, num, den))
    score.tempos.append(TempoTick(0, 120.0))
    track = TrackTick("part", program, False)
    for start, duration, pitch, velocity in notes:
        track.notes.append(NoteTick(start, max(1, duration), pitch, velocity))
    score.tracks.append(track)
    bars: list[list[int]] = []
    if len(track.notes):
        encoded = tokenizer.encode(score)
        sequence = encoded[0] if isinstance(encoded, list) else encoded
        bars = split_bars(clean_track_tokens([int(i) for i in sequence.ids], tokens), tokens.bar)
    bars = bars[:bar_count]
    while len(bars) < bar_count:
        bars.append([tokens.bar, bar_timesigs[len(bars)]])
    return bars


@dataclass
class Piece:
    """A training piece: token lists per role and bar, all tracks with the same bar count."""

    key: str  # relative path: the unit of the train/val split
    tempo_bpm: float
    bars: dict[str, list[list[int]]]  # role -> per-bar token lists
    timesigs: list[int]  # TimeSig id of each bar
    notes: dict[str, int] = field(default_factory=dict)  # role -> note count

    @property
    def bar_count(self) -> int:
        return len(self.timesigs)


def _doubles(a: Sequence[tuple[int, int, int, int]], b: Sequence[tuple[int, int, int, int]]) -> bool:
    """Whether most notes of ``a`` also sound in ``b`` (same onset and pitch class): an instrumental doubling."""
    onsets = {(s, p % 12) for s, _, p, _ in b}
    return sum((s, p % 12) in onsets for s, _, p, _ in a) > 0.6 * max(1, len(a))


def assign_roles(tracks: list[list[tuple[int, int, int, int]]]) -> dict[str, list[tuple[int, int, int, int]]]:
    """Give the parts of a piece (any order) the voice roles by register; doublings are dropped.

    2 parts: soprano, bass; 3: soprano, alto or tenor (by register), bass; 4: soprano, alto, tenor, bass;
    5 or more: the top two and the bottom two (the others are left out)."""
    tracks = [t for t in tracks if t]
    tracks.sort(key=lambda t: -sum(n[2] for n in t) / len(t))
    kept: list[list[tuple[int, int, int, int]]] = []
    for t in tracks:
        if not any(_doubles(t, k) and _doubles(k, t) for k in kept):
            kept.append(t)
    if len(kept) < 2:
        return {}
    if len(kept) == 2:
        return {"soprano": kept[0], "bass": kept[1]}
    if len(kept) == 3:
        middle = sum(n[2] for n in kept[1]) / len(kept[1])
        return {"soprano": kept[0], "alto" if middle >= 60 else "tenor": kept[1], "bass": kept[2]}
    return {"soprano": kept[0], "alto": kept[1], "tenor": kept[-2], "bass": kept[-1]}


def encode_piece(tokenizer: REMI, tokens: Tokens, path: Path, key: str) -> Piece | None:
    """Read a multi-part MIDI file into a :class:`Piece` (None when it has fewer than two usable parts)."""
    score = cast(ScoreTick, Score(str(path)))
    tpq = int(score.ticks_per_quarter)
    tracks = [
        [(int(n.time), int(n.duration), int(n.pitch), int(n.velocity)) for n in t.notes]
        for t in score.tracks
        if not t.is_drum
    ]
    roles = assign_roles(tracks)
    if not roles:
        return None
    sigs = sorted((int(t.time), int(t.numerator), int(t.denominator)) for t in score.time_signatures) or [(0, 4, 4)]
    if sigs[0][0] > 0:
        sigs.insert(0, (0, sigs[0][1], sigs[0][2]))
    end = max(s + d for notes in roles.values() for s, d, _, _ in notes)
    lines = bar_lines_for(sigs, tpq, end)
    bar_count = len(lines) - 1
    timesigs: list[int] = []
    for start in lines[:-1]:
        current = [s for s in sigs if s[0] <= start][-1]
        tsid = tokens.time_signatures.get(f"{current[1]}/{current[2]}")
        if tsid is None:
            return None
        timesigs.append(tsid)
    tempo = float(score.tempos[0].qpm) if len(score.tempos) else 120.0
    if "alto" in roles and "tenor" in roles:
        roles["piano"] = sorted(roles["alto"] + roles["tenor"])
    bars = {
        name: encode_track_bars(tokenizer, tokens, notes, ROLE_BY_NAME[name].program, tpq, sigs, bar_count, timesigs)
        for name, notes in roles.items()
    }
    for per_bar in bars.values():  # the REMI bars must line up with the meter's bar lines
        if any(b[1] != timesigs[i] for i, b in enumerate(per_bar) if len(b) > 1):
            return None
    return Piece(key, tempo, bars, timesigs, {n: len(v) for n, v in roles.items()})


# ---------------------------------------------------------------------------------------------- sequences


@dataclass(frozen=True)
class Sequence_:
    ids: list[int]
    loss_mask: list[bool]  # True where the token is a target the model is scored on (missing tracks' content)


def build_sequence(
    tokens: Tokens,
    tempo_id: int,
    known: Sequence[tuple[int, list[list[int]]]],
    fill: Sequence[tuple[int, list[list[int]]]],
) -> Sequence_:
    """The layout of the module docstring; ``known``/``fill`` are ``(program, per-bar ids)`` in order.

    The loss mask marks every token of the missing tracks' bars and the token that ends each of them (``TRACK``
    of the next or ``EOS``): what the sampler lets the model choose; the forced headers are not scored."""
    ids = [tokens.bos, tempo_id]
    mask = [False, False]
    for program, bars in known:
        ids += [tokens.track, tokens.programs[program]]
        mask += [False, False]
        for bar in bars:
            ids += bar
            mask += [False] * len(bar)
    ids.append(tokens.fill)
    mask.append(False)
    for program, _ in fill:
        ids.append(tokens.programs[program])
        mask.append(False)
    for n, (program, bars) in enumerate(fill):
        if n == 0:
            ids += [tokens.track, tokens.programs[program]]
            mask += [False, False]
        for bar in bars:
            ids += bar
            mask += [True] * len(bar)
        if n + 1 < len(fill):
            ids += [tokens.track, tokens.programs[fill[n + 1][0]]]
            mask += [True, False]
        else:
            ids.append(tokens.eos)
            mask.append(True)
    return Sequence_(ids, mask)


def order_fill(names: Sequence[str]) -> list[str]:
    return sorted(names, key=FILL_ORDER.index)


def order_known(names: Sequence[str]) -> list[str]:
    return sorted(names, key=KNOWN_ORDER.index)


FILL_PLANS_FOR_MELODY: tuple[tuple[str, ...], ...] = (
    ("bass", "piano"),
    ("alto", "tenor", "bass"),
    ("bass",),
    ("piano",),
    ("alto", "bass"),
    ("tenor", "bass"),
)


def sample_example(
    piece: Piece,
    tokens: Tokens,
    rng: np.random.Generator,
    block_size: int,
    max_bars: int = 8,
    shift_table: np.ndarray | None = None,
    shift: int = 0,
) -> Sequence_ | None:
    """One random training example from ``piece``: a bar window, which tracks are known, which to fill."""
    present = [r for r in VOICES if r in piece.bars]
    if len(present) < 2:
        return None
    if "soprano" in present and rng.random() < 0.5:
        plans = [p for p in FILL_PLANS_FOR_MELODY if all(r in piece.bars for r in p)]
        if not plans:
            return None
        fill = list(plans[int(rng.integers(len(plans)))])
        known = ["soprano"]
    else:
        pool = list(present)
        if "piano" in piece.bars and rng.random() < 0.3:
            pool = [r for r in pool if r not in ("alto", "tenor")] + ["piano"]
        rng.shuffle(pool)
        n_fill = int(rng.integers(1, len(pool)))
        fill, known = pool[:n_fill], pool[n_fill:]
    fill, known = order_fill(fill), order_known(known)
    bars = int(rng.integers(2, max_bars + 1))
    bars = min(bars, piece.bar_count)
    start = int(rng.integers(0, piece.bar_count - bars + 1))
    while bars >= 1:
        window = piece.timesigs[start : start + bars]
        if len(set(window)) > 1:
            bars -= 1
            continue
        seq = build_sequence(
            tokens,
            tokens.tempo(piece.tempo_bpm * float(np.exp(rng.normal(0, 0.15)))),
            [(ROLE_BY_NAME[r].program, piece.bars[r][start : start + bars]) for r in known],
            [(ROLE_BY_NAME[r].program, piece.bars[r][start : start + bars]) for r in fill],
        )
        if len(seq.ids) <= block_size + 1:
            if shift_table is not None and shift != 0:
                ids = shift_table[shift][np.asarray(seq.ids)].tolist()
                seq = Sequence_(ids, seq.loss_mask)
            if not any(seq.loss_mask):
                return None
            return seq
        bars -= 1
    return None


# ---------------------------------------------------------------------------------------------- the model


def extend_vocabulary(model: Any, vocab_size: int, seed: int = 0) -> Any:
    """A copy of a GPT with ``vocab_size`` token embeddings: the old rows kept, new rows at the old rows'
    mean plus small noise (tied output head)."""
    from dataclasses import replace

    from engine.nn.model import GPT

    old = model.wte.weight.detach()
    config = replace(model.config, vocab_size=vocab_size)
    new = GPT(config)
    state = {k: v for k, v in model.state_dict().items() if k not in ("wte.weight", "lm_head.weight")}
    new.load_state_dict(state, strict=False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        noise = torch.randn(vocab_size - old.shape[0], old.shape[1], generator=g)
        weight = old.mean(dim=0, keepdim=True) + 0.02 * noise
        new.wte.weight.copy_(torch.cat([old, weight], dim=0))
    return new


def is_accompany_checkpoint(ckpt: Checkpoint) -> bool:
    return ckpt.type == SYMBOLIC_TYPE and ckpt.config.get("task") == TASK


def save_accompany(model: Any, tokenizer: REMI, out_dir: Path, extra: dict[str, Any]) -> None:
    """Write an accompany checkpoint: ``model.safetensors``, ``tokenizer.json`` (REMI) and ``config.json``."""
    from safetensors.torch import save_file

    from engine.atomic import write_with

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    write_with(out_dir / "model.safetensors", lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
    write_with(out_dir / TOKENIZER_NAME, tokenizer.save)
    tokens = Tokens.from_tokenizer(tokenizer)
    config: dict[str, Any] = {
        "type": SYMBOLIC_TYPE,
        "task": TASK,
        "name": out_dir.name,
        "gpt": model.config.to_dict(),
        "parameters": model.num_parameters(),
        "modes": [TASK],
        "parts": [r.name for r in ROLES],
        "default_parts": list(DEFAULT_PARTS),
        "roles": {r.name: {"program": r.program, "range": [r.low, r.high]} for r in ROLES},
        "special_tokens": {"TRACK": tokens.track, "FILL": tokens.fill},
    }
    config.update(extra)
    write_json_atomic(out_dir / CONFIG_NAME, config)


def load_accompany(ckpt: Checkpoint, device: str | torch.device = "cpu") -> tuple[Any, REMI]:
    """Build the accompany GPT from its checkpoint (safetensors) with its REMI tokenizer."""

    from engine.nn.model import GPT
    from engine.symbolic.weights import read_gpt_files

    if not is_accompany_checkpoint(ckpt):
        raise ModelNotFoundError(
            f'{ckpt.name!r} is not an accompany model (its config.json has no "task": "accompany"); '
            "accompany mode needs one: see `segue models`"
        )
    config, tokenizer, state = read_gpt_files(ckpt, device)
    if Tokens.from_tokenizer(tokenizer).vocab_size != config.vocab_size:
        raise ModelNotFoundError(f"{ckpt.path}: tokenizer and model vocabulary sizes do not match")
    model = GPT(config)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise ModelNotFoundError(f"{ckpt.path}: weights do not match the config ({missing[:3]}, {unexpected[:3]})")
    return model.to(device).eval(), tokenizer


def model_parts(ckpt: Checkpoint) -> tuple[str, ...]:
    """The part names an accompany checkpoint can write."""
    return tuple(str(p) for p in ckpt.config.get("parts", ()))


def region_tempo_and_meter(score: ScoreTick, bpm: float, num: int, den: int) -> None:
    """Replace ``score``'s conductor events with one tempo and one meter at tick 0."""
    score.tempos.clear()
    score.time_signatures.clear()
    score.key_signatures.clear()
    score.tempos.append(cast(TempoTick, Tempo(0, qpm=bpm)))
    score.time_signatures.append(cast(TimeSignatureTick, TimeSignature(0, num, den)))


def check_parts(asked: Sequence[str], known: Sequence[str]) -> list[str]:
    """The asked part names (or the default) after checking them against the model's."""
    names = list(asked) or [p for p in DEFAULT_PARTS if p in known]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BadInputError(
            f"this accompany model cannot write {', '.join(repr(u) for u in unknown)}; "
            f"it knows: {', '.join(known)} (give --parts with some of these)"
        )
    if "piano" in names and ("alto" in names or "tenor" in names):
        raise BadInputError("piano is the alto and tenor voices as one part: ask for piano or for alto/tenor")
    return names
