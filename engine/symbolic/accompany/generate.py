"""Write the missing parts of a MIDI region with an accompany model (:mod:`engine.symbolic.accompany.layout`).

The region's pitched parts become the known tracks (given the voice roles the request leaves free, top to
bottom); the asked parts are sampled, K variants in one batch with a seeded generator per row, one part after the
other (bass first), each exactly as many bars as the region. Regions longer than the model's training windows are
written in chunks of up to :data:`MAX_CHUNK_BARS` bars that fit the context. Inside a part the grammar of
:mod:`engine.symbolic.grammar` keeps every bar well formed and the part's pitches in its role's range; pitch
classes outside the region's key get a logit penalty.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from miditok import REMI, TokSequence
from symusic.core import ScoreTick

from engine.api import CancelToken
from engine.checkpoints import Checkpoint
from engine.errors import BadInputError, EngineError
from engine.midi_io import Note, PartNotes
from engine.nn.model import GPT
from engine.nn.nucleus import top_p_filter
from engine.symbolic.accompany.layout import (
    ROLE_BY_NAME,
    ROLES,
    VOICES,
    Tokens,
    build_sequence,
    encode_track_bars,
    load_accompany,
    model_parts,
    order_fill,
    order_known,
)
from engine.symbolic.constraints import PITCH_MARGIN, Vocabulary, constraints_for
from engine.symbolic.continuation import region_grid
from engine.symbolic.grammar import AFTER_NOTE, BAR, DONE, PITCH, Masks, Row
from engine.symbolic.region import Region

log = logging.getLogger(__name__)

MAX_CHUNK_BARS = 8  # the longest window the shipped model was trained on
DEFAULT_KEY_PENALTY = 2.0  # nats subtracted from pitch classes outside the region's key
MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)  # Krumhansl-Kessler
MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 9, 10, 11)  # natural minor with the raised 6th and 7th (melodic/harmonic)
ProgressFn = Callable[[float], None]


@dataclass(frozen=True)
class AccompanyModel:
    name: str
    model: GPT
    tokenizer: REMI
    tokens: Tokens
    vocab: Vocabulary
    parts: tuple[str, ...]

    @classmethod
    def load(cls, ckpt: Checkpoint, device: str | torch.device = "cpu") -> AccompanyModel:
        model, tokenizer = load_accompany(ckpt, device)
        tokens = Tokens.from_tokenizer(tokenizer)
        vocab = replace(Vocabulary.from_tokenizer(tokenizer), size=tokens.vocab_size)
        return cls(ckpt.name, model, tokenizer, tokens, vocab, model_parts(ckpt))


# ---------------------------------------------------------------------------------------------- key


def estimate_key(pitch_weights: Sequence[float]) -> tuple[int, str]:
    """(tonic pitch class, "major"|"minor") with the best Krumhansl-Kessler correlation."""
    best = (-2.0, 0, "major")
    mean_w = sum(pitch_weights) / 12
    for tonic in range(12):
        for mode, profile in (("major", MAJOR), ("minor", MINOR)):
            rotated = [profile[(pc - tonic) % 12] for pc in range(12)]
            mean_p = sum(rotated) / 12
            num = sum((w - mean_w) * (p - mean_p) for w, p in zip(pitch_weights, rotated, strict=True))
            den = math.sqrt(sum((w - mean_w) ** 2 for w in pitch_weights) * sum((p - mean_p) ** 2 for p in rotated))
            r = num / den if den > 0 else -1.0
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def key_pitch_classes(tonic: int, mode: str) -> frozenset[int]:
    scale = MAJOR_SCALE if mode == "major" else MINOR_SCALE
    return frozenset((tonic + s) % 12 for s in scale)


def region_pitch_weights(region: Region) -> list[float]:
    """Duration-weighted pitch-class histogram of the region's pitched notes."""
    weights = [0.0] * 12
    for track in region.score.tracks:
        if track.is_drum:
            continue
        for n in track.notes:
            weights[int(n.pitch) % 12] += max(1, int(n.duration))
    return weights


# ---------------------------------------------------------------------------------------------- plan


def known_roles(region: Region, fill: Sequence[str]) -> dict[str, list[tuple[int, int, int, int]]]:
    """The region's pitched parts as known roles: the voices the fill leaves free, top part first."""
    taken = set(fill) | ({"alto", "tenor"} if "piano" in fill else set())
    free = [v for v in VOICES if v not in taken]
    if not free:
        raise BadInputError(
            f"asking for {', '.join(fill)} leaves no voice for the region's own part: ask for fewer parts"
        )
    parts: list[list[tuple[int, int, int, int]]] = []
    by_program: dict[int, list[tuple[int, int, int, int]]] = {}
    for track in region.score.tracks:
        if track.is_drum:
            continue
        notes = by_program.setdefault(int(track.program), [])
        notes.extend(
            (int(n.time), int(n.duration), int(n.pitch), int(n.velocity))
            for n in track.notes
            if int(n.time) < region.place_at_tick
        )
    parts = [sorted(v) for v in by_program.values() if v]
    if not parts:
        raise BadInputError(
            f"{region.path} has no pitched notes (only drums): accompany mode needs a melody or other pitched part"
        )
    parts.sort(key=lambda p: -sum(n[2] for n in p) / len(p))
    roles: dict[str, list[tuple[int, int, int, int]]] = {}
    for index, notes in enumerate(parts):
        role = free[min(index, len(free) - 1)] if len(parts) <= len(free) else free[index * len(free) // len(parts)]
        roles.setdefault(role, []).extend(notes)
    return {r: sorted(n) for r, n in roles.items()}


def _chunk_bars(known_tokens_per_bar: float, fill: Sequence[str], block: int, total_bars: int) -> int:
    """Bars per chunk so that the known tracks and the expected missing ones fit the context."""
    per_part = max(28.0, known_tokens_per_bar)
    expected = sum(per_part * (2.2 if f == "piano" else 1.3) for f in fill)
    per_bar = known_tokens_per_bar * 1.0 + expected + 2
    bars = int((block - 24 - 4 * len(fill)) // max(1.0, per_bar))
    return max(1, min(MAX_CHUNK_BARS, bars, total_bars))


# ---------------------------------------------------------------------------------------------- sampling


# Intervals (semitones mod 12, from the part's note up to a sounding region note) the harmony bias discourages:
# for the bass everything but unisons, thirds, fifths and sixths (a fourth above the bass is a dissonance too);
# for other parts seconds, sevenths and the tritone.
BASS_DISSONANT = frozenset({1, 2, 5, 6, 10, 11})
UPPER_DISSONANT = frozenset({1, 2, 6, 10, 11})
DEFAULT_HARMONY_PENALTY = 1.5  # nats


class HarmonyBias:
    """A rule, not learned: at each grid point, pitches that clash with the region's notes sounding there get
    ``penalty`` nats less (the shipped model, trained for 44 CPU minutes, follows the melody's harmony only
    weakly; see its model card)."""

    def __init__(
        self,
        vocab: Vocabulary,
        sounding: dict[tuple[int, int], frozenset[int]],
        bass_parts: Sequence[bool],
        penalty: float,
        device: torch.device,
    ) -> None:
        self.vocab = vocab
        self.sounding = sounding  # (bar in chunk, position) -> pitch classes of the region sounding there
        self.bass_parts = list(bass_parts)
        self.penalty = penalty
        self.device = device
        self._cache: dict[tuple[bool, frozenset[int]], torch.Tensor] = {}
        self._zero = torch.zeros(vocab.size, device=device)
        self._written: dict[int, dict[tuple[int, int], frozenset[int]]] = {}  # variant -> its parts written so far

    def add_part(
        self, variant: int, ids: Sequence[int], tokenizer: REMI, meter_quarters: float, positions: int
    ) -> None:
        """A part the variant has finished: the parts written after it are kept consonant with it too."""
        try:
            score = tokenizer.decode(TokSequence(ids=list(ids)))
        except Exception:  # noqa: BLE001 - a part that does not decode only loses its harmony bias
            return
        tpq = int(score.ticks_per_quarter)
        notes = [(int(n.time), int(n.duration), int(n.pitch), 0) for t in score.tracks for n in t.notes]
        bars = 1 + max((n[0] for n in notes), default=0) // max(1, round(meter_quarters * tpq))
        written = sounding_classes(notes, 0, bars, round(meter_quarters * tpq), positions)
        mine = self._written.setdefault(variant, {})
        for key, classes in written.items():
            mine[key] = mine.get(key, frozenset()) | classes

    def bias(self, part: int, bar: int, position: int, variant: int = -1) -> torch.Tensor:
        classes = self.sounding.get((bar, position), frozenset()) | self._written.get(variant, {}).get(
            (bar, position), frozenset()
        )
        if not classes or self.penalty <= 0:
            return self._zero
        key = (self.bass_parts[part], classes)
        if key not in self._cache:
            dissonant = BASS_DISSONANT if key[0] else UPPER_DISSONANT
            out = torch.zeros(self.vocab.size, device=self.device)
            for pitch, index in self.vocab.pitches.items():
                if any((c - pitch) % 12 in dissonant for c in classes):
                    out[index] = -self.penalty
            self._cache[key] = out
        return self._cache[key]


def sounding_classes(
    notes: Sequence[tuple[int, int, int, int]], start: int, bars: int, bar_ticks: int, positions: int
) -> dict[tuple[int, int], frozenset[int]]:
    """(bar, position) -> pitch classes of ``notes`` sounding at that grid point of the chunk at ``start``."""
    unit = bar_ticks / positions
    out: dict[tuple[int, int], set[int]] = {}
    for onset, duration, pitch, _ in notes:
        first = max(0, math.ceil((onset - start) / unit - 1e-9))
        last = min(bars * positions, math.ceil((onset + duration - start) / unit - 1e-9))
        for g in range(first, last):
            out.setdefault((g // positions, g % positions), set()).add(pitch % 12)
    return {k: frozenset(v) for k, v in out.items()}


@dataclass
class _Variant:
    part: int = 0  # index into the fill list
    row: Row | None = None
    forced: list[int] | None = None
    done: bool = False
    parts: list[list[int]] | None = None


@torch.inference_mode()
def sample_fill(
    model: AccompanyModel,
    prompt: Sequence[int],
    fill_programs: Sequence[int],
    masks: Sequence[Masks],
    bars: int,
    seeds: Sequence[int],
    generators: Sequence[torch.Generator],
    temperature: float,
    top_p: float,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    harmony: HarmonyBias | None = None,
) -> list[list[list[int]]]:
    """Sample the missing tracks after ``prompt`` (which ends with ``TRACK Program`` of the first); returns per
    variant the token ids of each part (``Bar TimeSig ...``, exactly ``bars`` bars). ``harmony`` adds a logit
    bias to each part's pitches at each grid point (see :class:`HarmonyBias`)."""
    net = model.model
    tokens = model.tokens
    device = next(net.parameters()).device
    block = net.config.block_size
    batch = len(seeds)
    if len(prompt) >= block:
        raise EngineError("the region's known parts do not fit the model's context")
    variants = [_Variant(row=Row(), forced=[], parts=[]) for _ in range(batch)]
    program_mask = torch.zeros(model.vocab.size, dtype=torch.bool, device=device)
    program_mask[list(tokens.programs.values())] = True
    monophonic = [all(r.program != p or r.name in VOICES for r in ROLES) for p in fill_programs]
    history = torch.tensor([list(prompt)] * batch, dtype=torch.long, device=device)
    cache = net.new_cache(batch)
    logits_all, _ = net(history, cache=cache)
    logits = logits_all[:, -1, :]
    steps = 0
    total = bars * len(fill_programs)
    while not all(v.done for v in variants):
        if cancel is not None:
            cancel.raise_if_cancelled()
        scaled = logits.float() / temperature
        allowed = torch.zeros_like(scaled, dtype=torch.bool)
        for i, v in enumerate(variants):
            if v.done or v.forced:
                allowed[i, tokens.pad] = True
                continue
            assert v.row is not None
            mask, bias = masks[v.part].for_row(v.row)
            if v.row.state == AFTER_NOTE and monophonic[v.part]:
                mask = mask & ~program_mask  # a voice sings one note at a time: no second note at this position
            if v.row.bar == bars and bool(mask[tokens.bar]):
                mask = mask.clone()
                mask[tokens.bar] = False  # the part ends here: TRACK of the next part, or EOS after the last
                mask[tokens.track if v.part + 1 < len(fill_programs) else tokens.eos] = True
            allowed[i] = mask
            if bias is not None:
                scaled[i] += bias
            if harmony is not None and v.row.state == PITCH:
                scaled[i] += harmony.bias(v.part, v.row.bar - 1, v.row.position, i)
        scaled = scaled.masked_fill(~allowed, float("-inf"))
        probs = top_p_filter(torch.softmax(scaled, dim=-1), top_p).cpu()
        next_tokens = torch.full((batch,), tokens.pad, dtype=torch.long)
        for i, v in enumerate(variants):
            if v.done:
                continue
            assert v.row is not None and v.forced is not None and v.parts is not None
            if v.forced:
                next_tokens[i] = v.forced.pop(0)
                continue
            token = int(torch.multinomial(probs[i], 1, generator=generators[i]).item())
            next_tokens[i] = token
            if token in (tokens.track, tokens.eos):
                masks[v.part].advance(v.row, tokens.bar)
                assert v.row.state == DONE
                v.parts.append(list(v.row.tokens))
                if harmony is not None and token == tokens.track:
                    constraints = masks[v.part].constraints
                    quarters = constraints.meter.quarters_per_bar
                    harmony.add_part(i, v.row.tokens, model.tokenizer, quarters, constraints.positions_per_bar)
                if token == tokens.eos:
                    v.done = True
                else:
                    v.part += 1
                    v.row = Row(state=BAR)
                    v.forced.append(tokens.programs[fill_programs[v.part]])
            else:
                masks[v.part].advance(v.row, token)
        steps += 1
        if progress is not None and steps % 8 == 0:
            done = sum(total if v.done else v.part * bars + max(0, (v.row.bar if v.row else 0) - 1) for v in variants)
            progress(min(1.0, done / (total * batch)))
        if all(v.done for v in variants):
            break
        history = torch.cat([history, next_tokens.to(device)[:, None]], dim=1)
        if cache.length + 1 >= block:  # out of context: keep the most recent three quarters
            context = history[:, -(3 * block // 4) :]
            cache = net.new_cache(batch)
            logits_all, _ = net(context, cache=cache)
            logits = logits_all[:, -1, :]
        else:
            step_logits, _ = net(next_tokens.to(device)[:, None], cache=cache)
            logits = step_logits[:, -1, :]
    if progress is not None:
        progress(1.0)
    return [v.parts or [] for v in variants]


def decode_part(tokens: Sequence[int], tokenizer: REMI, region: Region, offset: int, end: int) -> list[Note]:
    """One sampled part's tokens as notes on the region's ticks from ``offset``, clipped at ``end``."""
    try:
        score: ScoreTick = tokenizer.decode(TokSequence(ids=list(tokens)))
    except Exception as e:  # miditok raises a variety of errors on malformed sequences
        raise EngineError(f"could not decode a generated part: {e}") from e
    scale = region.ticks_per_quarter / int(score.ticks_per_quarter)
    notes: dict[tuple[int, int], Note] = {}  # one note per onset and pitch (the longer one)
    for track in score.tracks:
        for n in track.notes:
            start = offset + round(int(n.time) * scale)
            if start >= end:
                continue
            duration = max(1, min(round(int(n.duration) * scale), end - start))
            note = Note(start, duration, int(n.pitch), int(n.velocity))
            if (start, note.pitch) not in notes or notes[(start, note.pitch)].duration < duration:
                notes[(start, note.pitch)] = note
    return sorted(notes.values(), key=lambda n: (n.start, n.pitch))


def accompany_region(
    model: AccompanyModel,
    region: Region,
    parts: Sequence[str],
    seeds: Sequence[int],
    temperature: float = 1.0,
    top_p: float = 0.95,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    key_penalty: float = DEFAULT_KEY_PENALTY,
    harmony_penalty: float = DEFAULT_HARMONY_PENALTY,
) -> list[tuple[PartNotes, ...]]:
    """K variants (one per seed) of ``parts`` over exactly the region's bars; each a tuple in ``parts`` order."""
    tokens, tokenizer = model.tokens, model.tokenizer
    fill = order_fill(parts)
    known = known_roles(region, fill)
    meter = region.meter
    timesig = tokens.time_signatures.get(f"{meter.numerator}/{meter.denominator}")
    if timesig is None:
        raise BadInputError(f"this accompany model cannot write in {meter}")
    total_bars = region.length_bars
    tpq = region.ticks_per_quarter
    sigs = [(0, meter.numerator, meter.denominator)]
    known_bars = {
        role: encode_track_bars(
            tokenizer, tokens, notes, ROLE_BY_NAME[role].program, tpq, sigs, total_bars, [timesig] * total_bars
        )
        for role, notes in known.items()
    }
    known_names = order_known(list(known))
    per_bar = sum(len(b) for bars in known_bars.values() for b in bars) / total_bars
    known_per_track = per_bar / len(known_bars)
    block = model.model.config.block_size
    chunk = _chunk_bars(per_bar, fill, block, total_bars)
    tonic, mode = estimate_key(region_pitch_weights(region))
    in_key = key_pitch_classes(tonic, mode)
    used = region_pitch_weights(region)
    total_used = sum(used) or 1.0
    counts = [1 if pc in in_key or used[pc] / total_used >= 0.02 else 0 for pc in range(12)]
    grid = region_grid(region)
    generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
    programs = [ROLE_BY_NAME[f].program for f in fill]
    out: list[dict[str, list[Note]]] = [{f: [] for f in fill} for _ in seeds]
    starts = list(range(0, total_bars, chunk))
    for c, first in enumerate(starts):
        bars = min(chunk, total_bars - first)
        masks = []
        for f in fill:
            role = ROLE_BY_NAME[f]
            constraints = constraints_for(
                model.vocab,
                meter,
                bars,
                {role.program: (role.low + PITCH_MARGIN, role.high - PITCH_MARGIN)},
                [],
                counts,
                key_penalty,
                grid,
            )
            # a dense bar is cut short at a few times the region's density (an untrained model can babble)
            cap = int(max(64.0, 3.0 * known_per_track) * (2 if f == "piano" else 1))
            constraints = replace(constraints, max_tokens_per_bar=cap)
            masks.append(Masks(model.vocab, constraints, next(model.model.parameters()).device))
        seq = build_sequence(
            tokens,
            tokens.tempo(region.tempo_bpm),
            [(ROLE_BY_NAME[r].program, known_bars[r][first : first + bars]) for r in known_names],
            [(p, []) for p in programs],
        )
        prompt = seq.ids[: seq.ids.index(tokens.fill) + 1 + len(programs) + 2]  # up to TRACK Program of the 1st

        def chunk_progress(f: float, c: int = c) -> None:
            if progress is not None:
                progress((c + f) / len(starts))

        offset = first * region.bar_ticks
        positions = masks[0].constraints.positions_per_bar
        all_known = [n for notes in known.values() for n in notes]
        harmony = HarmonyBias(
            model.vocab,
            sounding_classes(all_known, offset, bars, region.bar_ticks, positions),
            [f == "bass" for f in fill],
            harmony_penalty,
            next(model.model.parameters()).device,
        )
        rows = sample_fill(
            model, prompt, programs, masks, bars, seeds, generators, temperature, top_p, chunk_progress, cancel,
            harmony,
        )  # fmt: skip
        end = offset + bars * region.bar_ticks
        for v, part_tokens in enumerate(rows):
            for f, ids in zip(fill, part_tokens, strict=True):
                out[v][f].extend(decode_part(ids, tokenizer, region, offset, end))
    return [
        tuple(
            PartNotes(name, ROLE_BY_NAME[name].program, tuple(sorted(v[name], key=lambda n: n.start))) for name in parts
        )
        for v in out
    ]


def describe_key(region: Region) -> str:
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    tonic, mode = estimate_key(region_pitch_weights(region))
    return f"{names[tonic]} {mode}"


def check_model_parts(model: AccompanyModel, asked: Sequence[str]) -> list[str]:
    from engine.symbolic.accompany.layout import check_parts

    return check_parts(asked, model.parts)
