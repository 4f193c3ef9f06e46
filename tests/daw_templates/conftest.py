"""Tests of the scripts in daw_templates/: helpers from tests/bridge (the fake engine) and tests/integration (a real
headless Ardour) are importable here, and :func:`lua` runs Lua under a stock interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for sub in ("bridge", "integration"):
    if str(_TESTS / sub) not in sys.path:
        sys.path.insert(0, str(_TESTS / sub))
