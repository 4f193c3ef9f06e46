"""DAW adapters: each speaks one DAW's own OSC (see :mod:`bridge.adapters.base` for the protocol).

:func:`open_adapter` picks one by name, as ``segue bridge --daw NAME`` does.
"""

from __future__ import annotations

from bridge.adapters.ardour import ArdourAdapter
from bridge.adapters.base import Address, Capabilities, DawAdapter
from bridge.adapters.reaper import ReaperAdapter

DEFAULT_DAW_PORTS = {"ardour": 3819, "reaper": 8000}
ADAPTERS = tuple(DEFAULT_DAW_PORTS)

__all__ = [
    "ADAPTERS",
    "DEFAULT_DAW_PORTS",
    "ArdourAdapter",
    "Capabilities",
    "DawAdapter",
    "ReaperAdapter",
    "open_adapter",
]


def open_adapter(name: str, daw: Address) -> DawAdapter:
    """The adapter called ``name`` talking to the DAW's OSC at ``daw`` (not started); ValueError if unknown."""
    if name == "ardour":
        return ArdourAdapter(daw)
    if name == "reaper":
        return ReaperAdapter(daw)
    raise ValueError(f"no adapter called {name!r}; known: {', '.join(ADAPTERS)}")
