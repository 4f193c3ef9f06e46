"""Generate -> progress -> variants; Cancel; a failed job's message; regenerate with the same seed; continue from a
variant; the event loop keeps running while the engine works."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from gui_rig import Rig, StemEngine, generate_and_wait, wait_engine
from PyQt6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from engine.errors import EngineError
from gui import theme
from gui.core.models import JobsState
from gui.window import QtMainWindow

MakeRig = Callable[..., Rig]
MakeWindow = Callable[[Rig], QtMainWindow]


def _ready(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region: Path, **kw: object
) -> tuple[Rig, QtMainWindow]:
    rig = make_rig(**kw)
    window = make_window(rig)
    window.show()
    wait_engine(qtbot, rig)
    rig.session.open_files([region])
    return rig, window


def test_generate_shows_progress_then_the_variants(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    seen: list[JobsState] = []
    rig.models.jobs.subscribe(seen.append, now=False)
    panel = window.generate
    panel.variants.setValue(4)
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(rig.models.variants.value.items) == 4, timeout=5000)
    fractions = [row.fraction for state in seen for row in state.rows if row.status == "running"]
    assert {0.25, 0.5, 0.75} <= set(fractions)  # each variant's progress reached the model
    row = panel.job_rows[0]
    assert row.status.text() == "done" and row.bar.value() == 1000 and row.isVisibleTo(panel)
    assert not panel.cancel_button.isEnabled()
    assert "4 variant(s) ready" in window.message_bar.text.text()
    assert window.variants.list_model.rowCount() == 4
    job_dir = rig.models.variants.value.job_dir
    assert job_dir is not None and json.loads((job_dir / "job.json").read_text())["status"] == "done"


def test_generate_without_a_region_says_what_to_do(qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow) -> None:
    rig = make_rig()
    window = make_window(rig)
    window.show()
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
    assert "Open a MIDI or audio file" in window.message_bar.text.text()
    assert rig.engine.requests == []


def test_cancel_stops_the_running_job_and_the_window_stays_live(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    engine = StemEngine(hold_at=2)  # waits (up to 10 s) inside the engine until cancelled
    rig, window = _ready(qtbot, make_rig, make_window, region_file, engine=engine)
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    panel = window.generate
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: engine.holding.is_set() and panel.cancel_button.isEnabled(), timeout=5000)
    before = len(ticks)
    qtbot.wait(200)
    assert len(ticks) - before >= 5  # the event loop runs while the engine works
    assert "running" in [r.status for r in rig.models.jobs.value.rows]
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: [r.status for r in rig.models.jobs.value.rows] == ["cancelled"], timeout=5000)
    timer.stop()
    assert panel.job_rows[0].status.text() == "cancelled"
    assert not panel.cancel_button.isEnabled()
    assert window.message_bar.text.text() == "Generation cancelled."
    assert rig.models.variants.value.items == ()
    history = window.history.tree.topLevelItem(0)
    assert history is not None and history.text(3) == "cancelled"


def test_a_failed_job_shows_its_message(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    engine = StemEngine(fail=EngineError("the model ran out of memory; try fewer variants"), fail_at=2)
    rig, window = _ready(qtbot, make_rig, make_window, region_file, engine=engine)
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(r.status == "failed" for r in rig.models.jobs.value.rows), timeout=5000)
    message = rig.models.message.value
    assert message is not None and message.level == "error"
    assert window.message_bar.isVisible()
    assert "Generation failed" in window.message_bar.text.text()
    assert "ran out of memory; try fewer variants" in window.message_bar.text.text()
    row = window.generate.job_rows[0]
    assert "ran out of memory" in row.message.text() and theme.BAD in row.message.styleSheet()
    assert row.status.text() == "failed"
    history = window.history.tree.topLevelItem(0)
    assert history is not None and history.text(3) == "failed" and "ran out of memory" in history.toolTip(3)


def test_an_engine_that_cannot_start_is_explained(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig = make_rig(factory_error=ConnectionRefusedError("connection refused"))
    window = make_window(rig)
    window.show()
    qtbot.waitUntil(lambda: rig.models.engine.value.status == "failed", timeout=5000)
    assert window.engine_light.status == "failed" and window.engine_text.full_text == "Engine: unavailable"
    assert "connection refused" in window.message_bar.text.text()
    rig.session.open_files([region_file])
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(r.status == "failed" for r in rig.models.jobs.value.rows), timeout=5000)
    assert "connection refused" in window.message_bar.text.text()


def test_regenerate_makes_the_variant_again_with_its_seed(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    generate_and_wait(qtbot, rig, variants=3, seed=5, bars=2, temperature=0.7)
    first = rig.models.variants.value.job
    rig.session.select("v02")  # seed 6
    qtbot.mouseClick(window.variants.regenerate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: rig.models.variants.value.job is not first, timeout=5000)
    params = rig.engine.requests[-1].params
    assert (params.seed, params.variants, params.bars, params.temperature) == (6, 1, 2, 0.7)
    items = rig.models.variants.value.items
    assert len(items) == 1 and items[0].seed == 6


def test_continue_from_a_variant_continues_the_region_and_the_variant(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    generate_and_wait(qtbot, rig, variants=2, bars=4)
    first = rig.models.variants.value.job
    full = rig.models.variants.value.items[0].files["full_midi"]
    qtbot.mouseClick(window.variants.continue_button, Qt.MouseButton.LeftButton)
    assert window.region.origin.text() == "FROM VARIANT" and window.region.name.full_text == "verse + v01"
    qtbot.waitUntil(lambda: rig.models.variants.value.job is not first, timeout=5000)
    prompt = rig.engine.requests[-1].prompt
    assert prompt.midi_path == full and prompt.length_beats == 8 + 16  # the region's 2 bars, then the 4 made


def test_place_in_daw_needs_a_daw_then_sends_the_variant(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    from bridge.events import Placement

    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    generate_and_wait(qtbot, rig, variants=2)
    placed: list[object] = []
    rig.session.service.add_listener(lambda e: placed.append(e) if isinstance(e, Placement) else None)
    qtbot.mouseClick(window.variants.place_button, Qt.MouseButton.LeftButton)
    assert "No DAW has talked to Segue yet" in window.message_bar.text.text() and placed == []
    rig.models.link.update(peer="127.0.0.1:53211")  # a DAW script has sent something
    rig.session.select("v02")
    qtbot.mouseClick(window.variants.place_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "(midi" in window.message_bar.text.text() and "(audio" in window.message_bar.text.text())
    qtbot.waitUntil(lambda: {p.kind for p in placed if isinstance(p, Placement)} == {"audio", "midi"}, timeout=5000)
    assert all(p.file_path.is_file() and p.variant_id == "v02" for p in placed if isinstance(p, Placement))


def test_a_long_failure_fits_the_job_row_and_is_whole_in_the_message_bar(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    long = "no audio model is installed; train one with `segue train audio --data DIR --out MODEL` " * 3
    engine = StemEngine(fail=EngineError(long.strip()))
    rig, window = _ready(qtbot, make_rig, make_window, region_file, engine=engine)
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(r.status == "failed" for r in rig.models.jobs.value.rows), timeout=5000)
    row = window.generate.job_rows[0]
    assert row.message.text().endswith("…") and row.message.toolTip() == long.strip()
    bar = window.message_bar.text
    qtbot.waitUntil(lambda: bar.height() >= bar.heightForWidth(bar.width()), timeout=2000)  # every line shows
    assert long.strip() in bar.text()


def test_showing_a_job_does_not_wait_for_its_thumbnails(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from gui.core import catalog

    rig, window = _ready(qtbot, make_rig, make_window, region_file)
    generate_and_wait(qtbot, rig, variants=2)
    job_dir = rig.models.variants.value.job_dir
    assert job_dir is not None
    release = threading.Event()
    slow_reader = catalog.thumbnails_of

    def slow(files: object) -> object:
        release.wait(5.0)  # a long take on a slow disk
        return slow_reader(files)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog, "thumbnails_of", slow)
    rig.session.open_job(job_dir)  # returns at once: rows first, thumbnails later
    items = rig.models.variants.value.items
    assert len(items) == 2 and all(i.audio is None for i in items)
    assert window.variants.list_model.rowCount() == 2
    release.set()
    qtbot.waitUntil(lambda: all(i.audio is not None for i in rig.models.variants.value.items), timeout=3000)


def test_an_unexpected_error_opens_a_report_and_the_window_goes_on(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from PyQt6.QtWidgets import QMessageBox

    from gui.adapters import install_excepthook

    rig = make_rig()
    window = make_window(rig)
    window.show()
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook(window)
    try:
        raise KeyError("v09")
    except KeyError as e:
        sys.excepthook(type(e), e, e.__traceback__)
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1 and "kept running" in boxes[0].text() and "v09" in boxes[0].text()
    assert "Traceback" in boxes[0].detailedText()
    boxes[0].close()
    qtbot.mouseClick(window.generate.generate_button, Qt.MouseButton.LeftButton)  # still answers
    assert "Open a MIDI or audio file" in window.message_bar.text.text()


def test_cancel_also_stops_the_jobs_waiting_behind_the_running_one(
    qtbot: QtBot, make_rig: MakeRig, make_window: MakeWindow, region_file: Path
) -> None:
    engine = StemEngine(hold_at=1)  # every job holds until cancelled
    rig, window = _ready(qtbot, make_rig, make_window, region_file, engine=engine)
    panel = window.generate
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: engine.holding.is_set(), timeout=5000)
    qtbot.waitUntil(lambda: bool(rig.models.jobs.value.running), timeout=5000)  # its start reached the window
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert rig.models.jobs.value.waiting == 2 and panel.waiting.text() == "2 job(s) waiting to start"
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert "Cancelling the running job and 2 waiting job(s)" in window.message_bar.text.text()
    qtbot.waitUntil(lambda: [r.status for r in rig.models.jobs.value.rows] == ["cancelled"] * 3, timeout=8000)
    assert rig.models.variants.value.items == () and not panel.cancel_button.isEnabled()
