"""Fixtures for Segue Link's tests: the plugin built once per session, a Segue stub on a loopback UDP port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from link_rig import Built, SegueStub, build  # noqa: E402


@pytest.fixture(scope="session")
def built() -> Built:
    return build()


@pytest.fixture
def segue() -> Iterator[SegueStub]:
    stub = SegueStub()
    yield stub
    stub.close()
