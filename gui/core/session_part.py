"""What the parts of :class:`gui.core.session.Session` (its mixins in session_links, session_region,
session_variants and session_plugins) use of the session, declared once for the type checker; nothing at run time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.events import Placement
    from bridge.service import BridgeService
    from gui.core.audition import Player
    from gui.core.engines import EngineHandle
    from gui.core.models import Models
    from gui.core.session import Post, SessionDeps, _Links
    from gui.core.session_region import TapTempo
    from gui.core.settings import GuiSettings


class SessionPart:
    """A part of the Session: the attributes and methods :class:`~gui.core.session.Session` gives each part."""

    if TYPE_CHECKING:
        settings: GuiSettings
        models: Models
        deps: SessionDeps
        out_dir: Path
        service: BridgeService
        engine: EngineHandle
        player: Player
        tapper: TapTempo
        _links: _Links
        _post: Post
        _placed: dict[tuple[str, str], list[Placement]]

        def _remember(self, **changes: Any) -> None: ...
        def say(self, level: str, text: str) -> None: ...
        def save(self) -> None: ...
