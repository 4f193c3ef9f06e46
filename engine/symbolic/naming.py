"""Names for a region's parts that are safe as file names and stable across variants."""

from __future__ import annotations

import re
from collections.abc import Iterable

from miditok.constants import MIDI_INSTRUMENTS

from engine.symbolic.region import Part

_GENERIC = re.compile(r"^(track|untitled|midi|instrument|part)?[\s_-]*\d*$", re.IGNORECASE)


def slug(text: str) -> str:
    """``"Electric Bass (finger)"`` -> ``"electric_bass_finger"``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40]


def program_name(program: int) -> str:
    return "drums" if program == -1 else slug(str(MIDI_INSTRUMENTS[program]["name"]))


def part_names_for(parts: Iterable[Part]) -> dict[int, str]:
    """program -> unique file-safe name: the track's name when it means something, else the GM instrument."""
    names: dict[int, str] = {}
    used: set[str] = set()
    for part in parts:
        base = slug(part.name) if part.name and not _GENERIC.match(part.name.strip()) else ""
        base = base or program_name(part.program)
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        names[part.program] = name
    return names
