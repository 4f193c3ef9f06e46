"""A job whose region came as several tracks' audio (stems: kick, snare, hats), continued by the real segue-concat:
the app shows a drag chip per stem, each chip and "All stems" drag that stem's files, and the region the job was
made from comes back with its stems (so the next job continues the same tracks).

Material: the numpy drums of tests/support/concat_material.py (synthetic_groove), split into tracks here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from concat_material import synthetic_groove
from gui_rig import Rig, wait_engine
from PyQt6.QtCore import QMimeData
from pytestqt.qtbot import QtBot

from bridge.runner import run_job
from engine.api import GenerationParams, GenerationRequest, Meter, Prompt
from engine.local import LocalEngine
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]
TEMPO, RATE = 110.0, 44_100


def _tracks(folder: Path) -> tuple[tuple[str, Path], ...]:
    full = synthetic_groove(TEMPO, 4, RATE, 2, seed=9)
    eighth = round(30.0 / TEMPO * RATE)
    stems = []
    for name, keep in (("kick", (0, 4)), ("snare", (2, 6)), ("hats", (1, 3, 5, 7))):
        mask = np.zeros(full.shape[1], np.float32)
        for e in range(full.shape[1] // eighth):
            if e % 8 in keep:
                mask[e * eighth : (e + 1) * eighth] = 1.0
        path = folder / f"{name}.wav"
        sf.write(str(path), (0.6 * full * mask).T, RATE, subtype="PCM_24")
        stems.append((name, path))
    return tuple(stems)


def _files(mime: QMimeData | None) -> list[Path]:
    assert mime is not None and mime.hasUrls()
    paths = [Path(url.toLocalFile()) for url in mime.urls()]
    assert all(path.is_absolute() and path.is_file() for path in paths)
    return paths


def test_a_stems_job_shows_and_drags_each_stem(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, tmp_path: Path
) -> None:
    rig = make_rig()
    window = make_window(rig)
    wait_engine(qtbot, rig)
    (tmp_path / "tracks").mkdir()
    stems = _tracks(tmp_path / "tracks")
    request = GenerationRequest(
        Prompt(tempo_bpm=TEMPO, meter=Meter(4, 4), stems=stems), GenerationParams(bars=2, variants=2, seed=5)
    )
    record = run_job(LocalEngine(device="cpu"), request, rig.out_dir)  # what the bridge writes for such a region
    assert record.status == "done", record.error
    rig.session.open_job(rig.out_dir / record.id)
    panel = window.variants
    qtbot.waitUntil(lambda: len(panel.stem_chips) == 3, timeout=3000)
    assert sorted(chip.text() for chip in panel.stem_chips) == ["⇱ hats", "⇱ kick", "⇱ snare"]
    assert set(panel.stem_mutes) == set(panel.stem_solos) == {"kick", "snare", "hats"}
    rig.session.select("v02")
    assert sorted(p.name for p in _files(panel.drag_stems.mime_data())) == ["hats.wav", "kick.wav", "snare.wav"]
    for name, _ in stems:
        chip = next(c for c in panel.stem_chips if c.text() == f"⇱ {name}")
        (only,) = _files(chip.mime_data())
        assert only.name == f"{name}.wav" and only.parent.name == "stems" and only.parent.parent.name == "v02"
        assert sf.info(str(only)).samplerate == RATE
    assert [p.name for p in _files(panel.drag_audio.mime_data())] == ["continuation.wav"]
    region = rig.models.region.value.region  # the region the job came from: its tracks, to continue again
    assert region is not None and region.stems == stems and region.audio_path is None


def test_stems_from_the_daw_reach_the_engine_when_the_app_generates(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, tmp_path: Path
) -> None:
    from osc_helpers import DawSocket
    from PyQt6.QtCore import Qt

    rig = make_rig(osc=True)
    window = make_window(rig)
    wait_engine(qtbot, rig)
    (tmp_path / "tracks").mkdir()
    stems = _tracks(tmp_path / "tracks")
    daw = DawSocket(("127.0.0.1", rig.models.link.value.osc_port))
    try:
        pairs = [item for name, path in stems for item in (name, str(path))]
        daw.send("/segue/region/stems", "", "", 16.0, 16.0, TEMPO, 4, 4, "Drums", *pairs)
        qtbot.waitUntil(lambda: rig.models.region.value.origin == "daw", timeout=5000)
        assert window.region.name.full_text == "Drums"
        qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(rig.engine.requests) == 1, timeout=5000)
    finally:
        daw.close()
    assert rig.engine.requests[0].prompt.stems == stems
