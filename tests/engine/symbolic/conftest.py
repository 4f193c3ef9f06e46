"""Fixtures the region cache's and the loop memory's tests share: the shipped model's REMI vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.symbolic.cache import TokenKinds
from engine.symbolic.tokenizer import load_tokenizer

TOKENIZER = Path(__file__).resolve().parents[3] / "engine" / "models" / "segue-midi-small" / "tokenizer.json"


@pytest.fixture(scope="module")
def vocab() -> dict[str, int]:
    """Token name -> id (a module that needs a sampling Vocabulary defines its own ``vocab``)."""
    return dict(load_tokenizer(TOKENIZER).vocab)


@pytest.fixture(scope="module")
def kinds() -> TokenKinds:
    return TokenKinds.from_tokenizer(load_tokenizer(TOKENIZER))
