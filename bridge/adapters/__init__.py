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

_ADAPTER_TYPES: dict[str, type[ArdourAdapter | ReaperAdapter | LiveAdapter | BitwigAdapter]] = {
    "ardour": ArdourAdapter,
    "reaper": ReaperAdapter,
    "live": LiveAdapter,
    "bitwig": BitwigAdapter,
}
DEFAULT_DAW_PORTS = {name: adapter_type.default_port for name, adapter_type in _ADAPTER_TYPES.items()}
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
    adapter_type = _ADAPTER_TYPES.get(name)
    if adapter_type is None:
        raise ValueError(f"no adapter called {name!r}; known: {', '.join(ADAPTERS)}")
    return adapter_type(daw)
