"""A test's own provenance settings: a fresh config folder (its own local key), no SEGUE_PROVENANCE_* set."""

from __future__ import annotations

from pathlib import Path

import pytest


def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv("SEGUE_CONFIG_DIR", str(folder))
    for name in ("REGION_NAME", "SIGN", "KEY_FILE", "CERTIFICATE_FILE"):
        monkeypatch.delenv(f"SEGUE_PROVENANCE_{name}", raising=False)
    return folder
