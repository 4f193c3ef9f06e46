"""DAW adapters: each speaks one DAW's own OSC (see :mod:`bridge.adapters.base` for the protocol).

:func:`open_adapter` picks one by name, as ``segue bridge --daw NAME`` does. ``live`` speaks AbletonOSC (a Live
remote script), ``bitwig`` DrivenByMoss's OSC controller; each module's docstring says what it relies on.
"""

from __future__ import annotations

from bridge.adapters.ardour import ArdourAdapter
from bridge.adapters.base import Address, Capabilities, DawAdapter
from bridge.adapters.bitwig import BitwigAdapter
from bridge.adapters.live import LiveAdapter
from bridge.adapters.reaper import ReaperAdapter

DEFAULT_DAW_PORTS = {"ardour": 3819, "reaper": 8000, "live": 11000, "bitwig": 8000}
ADAPTERS = tuple(DEFAULT_DAW_PORTS)
# What `segue bridge --daw` and the app's "Talks to" offer: Segue's own OSC ("generic"), a DAW's own OSC through its
# adapter, or the Segue Link plugin on a track ("link", bridge/link.py)
DAW_CHOICES = ("generic", *ADAPTERS, "link")

__all__ = [
    "ADAPTERS",
    "DAW_CHOICES",
    "DEFAULT_DAW_PORTS",
    "ArdourAdapter",
    "BitwigAdapter",
    "Capabilities",
    "DawAdapter",
    "LiveAdapter",
    "ReaperAdapter",
    "open_adapter",
]


def open_adapter(name: str, daw: Address) -> DawAdapter:
    """The adapter called ``name`` talking to the DAW's OSC at ``daw`` (not started); ValueError if unknown."""
    if name == "ardour":
        return ArdourAdapter(daw)
    if name == "reaper":
        return ReaperAdapter(daw)
    if name == "live":
        return LiveAdapter(daw)
    if name == "bitwig":
        return BitwigAdapter(daw)
    raise ValueError(f"no adapter called {name!r}; known: {', '.join(ADAPTERS)}")
