"""The producer's controls as each surface writes them: command-line text, OSC key/value pairs, JSON.

The controls are :class:`engine.api.GenerationParams`'s ``similarity``, ``keep_opening``, ``density``,
``part_density``, ``hold_notes`` and ``end_on_tonic``. Their ranges are checked once, there; this module only
turns what a surface gives (``"bass=0.5"``, an OSC ``T``, a JSON ``true``) into values of the right kind, and
says clearly when a value is of the wrong kind or a key is unknown. ``None`` (or a key left out) always means
"the engine's measured default".
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from typing import Any

from engine.errors import BadInputError

NUMBER_KEYS = ("similarity", "density")
FLAG_KEYS = ("keep_opening", "hold_notes", "end_on_tonic")
PART_DENSITY_PREFIX = "density:"  # OSC and watched-folder key for one part's density: "density:bass"
CONTROL_KEYS = ("similarity", "keep_opening", "density", "hold_notes", "end_on_tonic")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_SHOWN_CHARS = 40
_DECIMALS = 6

# What each control does, for help texts (CLI, docs, tooltips say the same).
HELP = {
    "similarity": "how close the continuation stays to the region: 1 = close (reuses the region's material), "
    "0 = free (recombines and invents); audio and MIDI",
    "keep_opening": "audio: open the continuation with the region's first bar (a phrase restart)",
    "density": "MIDI: notes per bar as a factor of the region's own (0.25..4; 1 = as dense as the region)",
    "hold_notes": "MIDI: keep the region's note lengths per part, so held chords and pads stay held",
    "end_on_tonic": "MIDI: end on the region's tonic (a cadence in the last bar)",
}
DEFAULT_TEXT = "the engine's measured default"


# -- command line ------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--similarity``, ``--keep-opening/--no-keep-opening``, ``--density``, ``--part-density``,
    ``--hold-notes/--no-hold-notes``, ``--end-on-tonic/--no-end-on-tonic``; every default is None (the engine's)."""
    group = parser.add_argument_group(
        "the producer's controls", f"each left out: {DEFAULT_TEXT} (job.json records what was asked for)"
    )
    group.add_argument("--similarity", type=float, metavar="0..1", help=HELP["similarity"])
    flag = argparse.BooleanOptionalAction
    group.add_argument("--keep-opening", action=flag, help=HELP["keep_opening"])
    group.add_argument(
        "--density",
        action="append",
        metavar="F|PART=F,...",
        help=HELP["density"] + "; per part: --density bass=0.5,piano=1.5 (a part's own factor wins)",
    )
    group.add_argument(
        "--part-density", action="append", metavar="PART=F,...", help="the same as --density bass=0.5,piano=1.5"
    )
    group.add_argument("--hold-notes", action=flag, help=HELP["hold_notes"])
    group.add_argument("--end-on-tonic", action=flag, help=HELP["end_on_tonic"])


def from_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """What :func:`add_arguments` parsed, as :class:`GenerationParams` keyword arguments."""
    density, part_density = parse_density(args.density)
    _, more = parse_density(args.part_density, "--part-density", parts_only=True)
    return {
        "similarity": args.similarity,
        "keep_opening": args.keep_opening,
        "density": density,
        "part_density": part_density + more,
        "hold_notes": args.hold_notes,
        "end_on_tonic": args.end_on_tonic,
    }


def parse_density(
    texts: Sequence[str] | None, option: str = "--density", parts_only: bool = False
) -> tuple[float | None, tuple[tuple[str, float], ...]]:
    """``--density 1.5``, ``--density bass=0.5,piano=1.5`` (repeatable, and mixable: ``1.2,bass=0.5``) as
    ``(density, part_density)``. Only the form is checked here; :class:`GenerationParams` checks the ranges."""
    density: float | None = None
    parts: list[tuple[str, float]] = []
    for text in texts or ():
        items = [item.strip() for item in text.split(",")]
        if not text.strip() or any(not item for item in items):
            raise BadInputError(
                f"{option} takes a factor (1.5) or part=factor pairs separated by commas (bass=0.5,piano=1.5); "
                f"got {text!r}"
            )
        for item in items:
            name, sep, value = item.partition("=")
            if not sep and parts_only:
                raise BadInputError(f"{option} takes part=factor pairs (bass=0.5,piano=1.5), got {item!r}")
            number = _number_text(value if sep else name, f"{option} {item!r}")
            if not sep:
                if density is not None:
                    raise BadInputError(f"{option}: the overall density is given twice ({density:g} and {number:g})")
                density = number
            else:
                parts.append((name.strip().lower(), number))
    return density, tuple(parts)


def _number_text(text: str, where: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise BadInputError(f"{where}: {text.strip()!r} is not a number; give a factor such as 0.5 or 1.5") from None


# -- OSC key/value pairs -----------------------------------------------------------------------------------


def controls_from_pairs(pairs: Sequence[tuple[str, Any]], where: str) -> dict[str, Any]:
    """``[("similarity", 0.7), ("density:bass", 0.5), ("hold_notes", True)]`` as :class:`GenerationParams`
    keyword arguments. Numbers are OSC ints or floats; flags are ``T``/``F``, ``0``/``1`` or the strings
    true/false, yes/no, on/off. :class:`BadInputError` names the key for an unknown key, a key given twice or a
    value of the wrong kind (``where``: the OSC address, to start the message)."""
    controls: dict[str, Any] = {}
    part_density: list[tuple[str, float]] = []
    seen: set[str] = set()
    for key, value in pairs:
        if value is None:  # OSC nil / JSON null: the engine's default, as if the key were left out
            continue
        if key in seen:
            raise BadInputError(f"{where}: the key {_short(key)!r} is given twice")
        seen.add(key)
        if key in NUMBER_KEYS:
            controls[key] = _number(value, f"{where}: {key}")
        elif key in FLAG_KEYS:
            controls[key] = _flag(value, f"{where}: {key}")
        elif key.startswith(PART_DENSITY_PREFIX) and key != PART_DENSITY_PREFIX:
            part_density.append((key[len(PART_DENSITY_PREFIX) :], _number(value, f"{where}: {_short(key)}")))
        else:
            raise BadInputError(
                f"{where}: unknown key {_short(key)!r}; the keys are {', '.join(CONTROL_KEYS)} and "
                f"{PART_DENSITY_PREFIX}<part> (e.g. {PART_DENSITY_PREFIX}bass)"
            )
    if part_density:
        controls["part_density"] = tuple(part_density)
    return controls


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInputError(f"{where} must be a number (OSC i or f), got {_kind(value)} {_short(repr(value))}")
    if not math.isfinite(value):
        raise BadInputError(f"{where} must be a finite number, got {value}")
    return round(float(value), _DECIMALS)  # an OSC float is 32-bit: 0.7 arrives as 0.699999988


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in (*_TRUE, *_FALSE):
        return value.strip().lower() in _TRUE
    raise BadInputError(
        f"{where} must be true or false (OSC T/F, 1/0, or the string true/false), got {_kind(value)} "
        f"{_short(repr(value))}"
    )


def _kind(value: Any) -> str:
    names = {bool: "a bool", int: "an int", float: "a float", str: "a string", bytes: "a blob", list: "an array"}
    return names.get(type(value), "nil" if value is None else type(value).__name__)


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}..."


# -- watched-folder JSON -----------------------------------------------------------------------------------


def pairs_from_json(generate: Mapping[str, Any], known: Sequence[str]) -> list[tuple[str, Any]]:
    """The keys of a watched-folder request's ``generate`` object other than ``known`` (mode, bars, ...), as
    the OSC key/value pairs they stand for: ``"part_density": {"bass": 0.5}`` becomes ``density:bass``; every
    other key is passed on as it is (so an unknown key is refused by name, as over OSC)."""
    pairs: list[tuple[str, Any]] = []
    for key, value in generate.items():
        if key in known or value is None:  # null: the engine's default
            continue
        if key == "part_density":
            if not isinstance(value, Mapping):
                raise BadInputError(f"generate: 'part_density' must be an object {{part: factor}}, got {value!r}")
            pairs.extend((f"{PART_DENSITY_PREFIX}{part}", factor) for part, factor in value.items())
        else:
            pairs.append((str(key), value))
    return pairs
