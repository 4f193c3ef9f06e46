"""Engine factories for the engine-process tests: module-level (so the spawned child can import them by name) and
free of Qt and pytest. ``options`` go to the fake engine (``hold_at``, ``fail``, ...)."""

from __future__ import annotations

import os
from typing import Any

from fake_engine import FakeEngine


class PidEngine(FakeEngine):
    @property
    def name(self) -> str:
        return f"fake in process {os.getpid()}"


def fake_engine_factory(spec: str, **options: Any) -> FakeEngine:
    return PidEngine(**options)


def broken_factory(spec: str, **options: Any) -> FakeEngine:
    raise ConnectionRefusedError("the model folder is on a disk that is not mounted")
