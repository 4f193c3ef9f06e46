"""Segue's bridge: the DAW side (OSC, MIDI clock, capture), jobs on disk, placement and the command line."""

from __future__ import annotations

from importlib import metadata


def segue_version() -> str:
    """The installed distribution's version, or ``0+unknown`` when running from a source tree."""
    try:
        return metadata.version("segue")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = segue_version()
