"""Names for a region's parts: the same rules as the stems' (:mod:`engine.render.parts`)."""

from __future__ import annotations

from collections.abc import Iterable

from engine.render.parts import part_names
from engine.symbolic.region import Part


def part_names_for(parts: Iterable[Part]) -> dict[int, str]:
    """program (-1 drums) -> unique file-safe name, in the region's part order."""
    parts = list(parts)
    return {p.program: name for p, name in zip(parts, part_names(parts), strict=True)}
