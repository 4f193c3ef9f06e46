"""Segue's bridge: the DAW side (OSC, MIDI clock, capture), jobs on disk, placement and the command line."""

from __future__ import annotations

import functools
from importlib import metadata


@functools.cache
def segue_version() -> str:
    """The installed distribution's version, or ``0+unknown`` when running from a source tree. Cached: reading
    the package metadata cost ~350 us per /segue/pong (bench/bench_osc.py)."""
    try:
        return metadata.version("segue")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = segue_version()
