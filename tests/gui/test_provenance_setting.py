"""The app's provenance settings (Connections > Files): leaving out the region's name or the C2PA signature reaches
the next job's files and is remembered; the "generated" mark is always written. The region is the rig's fake MIDI
file (tests/bridge/fake_engine.py) and the files are the fake engine's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gui_rig import Rig, generate_and_wait, wait_engine
from pytestqt.qtbot import QtBot

from engine.provenance.report import inspect_file
from engine.provenance.signing import c2pa_available
from gui.settings import load_settings
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEGUE_CONFIG_DIR", str(tmp_path / "segue-config"))
    for name in ("REGION_NAME", "SIGN", "KEY_FILE", "CERTIFICATE_FILE"):
        monkeypatch.delenv(f"SEGUE_PROVENANCE_{name}", raising=False)
    return tmp_path / "segue-config"


def wavs_of(rig: Rig) -> list[Path]:
    job_dir = rig.models.variants.value.job_dir
    assert job_dir is not None
    return sorted(job_dir.rglob("*.wav"))


def test_the_files_settings_reach_the_next_jobs_files_and_are_remembered(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    rig.session.open_files([region_file])
    panel = window.connections
    assert panel.region_name_check.isChecked() and panel.sign_check.isChecked()
    generate_and_wait(qtbot, rig)
    first = inspect_file(wavs_of(rig)[0])
    assert first.record is not None and first.record.region_name == region_file.name
    assert first.signature_holds is (True if c2pa_available() else None)

    panel.region_name_check.setChecked(False)
    panel.sign_check.setChecked(False)
    generate_and_wait(qtbot, rig)
    for wav in wavs_of(rig):
        found = inspect_file(wav)
        assert found.record is not None and found.record.region_name is None and found.record.generated
        assert found.bext is not None and found.bext.description.startswith("AI-generated")
        assert found.c2pa is not None and not found.c2pa.present
        assert region_file.stem.encode() not in wav.read_bytes()
    rig.session.save()
    stored = load_settings(rig.settings_path).settings
    assert (stored.provenance_region_name, stored.provenance_sign) == (False, False)
