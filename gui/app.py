"""``segue gui``: build the session and the window, run the event loop; or, with ``--screenshot PATH``, render the
window offscreen with a demo region and variants, save a PNG and exit.

The command line (:mod:`bridge.cli`) imports this module only when ``segue gui`` runs, so the rest of the CLI
starts without Qt.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bridge.udp import port_free
from engine import entrypoints
from engine.environment import Environment
from engine.errors import BadInputError
from gui.core.engines import EngineFactory
from gui.core.settings import GuiSettings, default_settings_path, load_settings

log = logging.getLogger(__name__)

DEMO_REGION = Path(__file__).resolve().parents[1] / "examples" / "regions" / "pop_100bpm_4-4.mid"
DEMO_TIMEOUT_S = 300.0
DEMO_PROGRESS_TIMEOUT_S = 60.0
DEMO_PLAYHEAD_S = 3.3


@dataclass(frozen=True)
class GuiOptions:
    settings_path: Path | None = None  # None: default_settings_path()
    out_dir: Path | None = None  # None: the settings' jobs folder
    engine: str | None = None  # None: the settings' engine
    osc_port: int | None = None
    screenshot: Path | None = None
    demo_job: Path | None = None  # with --screenshot: show this job folder instead of generating one
    demo_region: Path = DEMO_REGION
    screenshot_size: tuple[int, int] = (1440, 900)  # the window's size in the screenshot
    screenshot_mode: str = "continue"  # the Generate panel's mode in the screenshot (continue | accompany)


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")


def run(
    options: GuiOptions, engine_factory: EngineFactory = entrypoints.open_engine, say: Callable[[str], None] = _say
) -> int:
    """Run the app (or take the screenshot); returns the exit code."""
    if options.screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        from PyQt6.QtWidgets import QApplication
    except ImportError as e:
        raise BadInputError(f"the desktop app needs PyQt6 ({e}); install it with: pip install 'segue[gui]'") from e
    from gui.adapters import QtEventPump, install_excepthook
    from gui.core.audition import FakeOutput
    from gui.core.session import Session, SessionDeps
    from gui.theme import apply_theme
    from gui.window import QtMainWindow

    default_path = options.settings_path or default_settings_path(Environment.read())
    loaded = load_settings(default_path)
    settings_path: Path | None = default_path
    settings = loaded.settings
    if options.screenshot is not None:  # a clean, reproducible window: defaults, a fresh jobs folder
        settings, settings_path = GuiSettings(out_dir=str(_screenshot_out(options))), None
        settings = dataclasses.replace(settings, osc_port=9750 if port_free(9750) else 0, bars=4, variants=4, seed=7)
        settings = dataclasses.replace(settings, mode=options.screenshot_mode)
    if options.out_dir is not None:
        settings = dataclasses.replace(settings, out_dir=str(options.out_dir))
    if options.engine is not None:
        settings = dataclasses.replace(settings, engine=options.engine)
    if options.osc_port is not None:
        settings = dataclasses.replace(settings, osc_port=options.osc_port)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Segue")
    apply_theme(app)  # type: ignore[arg-type]
    pump = QtEventPump()
    if engine_factory is entrypoints.open_engine:  # the real engine: the local one in its own process
        from engine.process import process_engine_factory

        engine_factory = process_engine_factory
    deps = SessionDeps(engine_factory=engine_factory)
    demo_output = FakeOutput()  # the screenshot plays a variant without a sound card
    if options.screenshot is not None:
        deps = dataclasses.replace(deps, output_factory=lambda: demo_output)
    session = Session(settings, settings_path, deps, post=pump.post, saved=loaded.settings)
    pump.set_handler(session.apply)
    window = QtMainWindow(session)
    install_excepthook(window)
    for problem in loaded.problems:
        session.say("warning", problem)
    session.start()
    if options.screenshot is not None:
        try:
            return _screenshot(app, window, session, options, say, demo_output)
        finally:
            session.close()
            if options.out_dir is None:  # the demo's own temporary jobs folder
                shutil.rmtree(settings.out_dir, ignore_errors=True)
    window.show()
    _quit_on_signals(app)
    code = app.exec()
    session.close()
    return int(code)


def _quit_on_signals(app: object) -> None:
    """Ctrl-C or SIGTERM closes the window cleanly (settings saved, job cancelled) instead of killing Qt."""
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    assert isinstance(app, QApplication)

    def quit_app(signum: int, frame: object) -> None:
        log.info("signal %d: closing", signum)
        app.closeAllWindows()
        app.quit()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, quit_app)
    timer = QTimer(app)  # Python runs signal handlers only between bytecodes: wake it now and then
    timer.timeout.connect(lambda: None)
    timer.start(250)


def _screenshot_out(options: GuiOptions) -> Path:
    if options.out_dir is not None:
        return options.out_dir
    return Path(tempfile.mkdtemp(prefix="segue-screenshot-"))


def _screenshot(
    app: object, window: object, session: object, options: GuiOptions, say: Callable[[str], None], output: object
) -> int:
    from PyQt6.QtWidgets import QApplication

    from gui.core.audition import FakeOutput
    from gui.core.session import Session
    from gui.window import QtMainWindow

    assert isinstance(window, QtMainWindow) and isinstance(session, Session)
    path = options.screenshot
    assert path is not None
    window.resize(*options.screenshot_size)
    window.show()

    def wait(condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            QApplication.processEvents()
            if condition():
                return True
            time.sleep(0.02)
        return condition()

    wait(lambda: session.models.engine.value.status != "opening", 120.0)
    if options.demo_job is not None:
        session.open_files([options.demo_region])
        session.open_job(options.demo_job.resolve())
    else:
        session.open_files([options.demo_region])
        if not session.generate():
            say(f"segue gui: could not generate the demo variants: {session.models.message.value}")
            return 1
        done = wait(lambda: bool(session.models.variants.value.items) or _job_ended(session), DEMO_TIMEOUT_S)
        if not done or not session.models.variants.value.items:
            message = session.models.message.value
            say(f"segue gui: the demo job did not finish: {message.text if message else 'timed out'}")
            return 1
    wait(lambda: _thumbnails_read(session), 10.0)
    items = session.models.variants.value.items
    if items:
        session.toggle_star(items[0].variant_id)
        session.select(items[min(1, len(items) - 1)].variant_id)
        session.play()
        wait(lambda: bool(session.models.variants.value.playing), 5.0)
        if isinstance(output, FakeOutput):
            output.advance(DEMO_PLAYHEAD_S)  # the playhead a few beats in
    if options.demo_job is None:  # a second job under way shows the progress bar and Cancel
        session.generate(seed=11, variants=2)
        wait(lambda: _second_job_shown(session), DEMO_PROGRESS_TIMEOUT_S)
    session.models.message.set(None)
    session.tick()
    window.resize(*options.screenshot_size)  # as it was asked for, now that the panels are filled
    wait(lambda: False, 0.3)
    image = window.grab()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path), "PNG"):
        say(f"segue gui: could not write {path}")
        return 1
    say(f"segue gui: screenshot saved to {path} ({image.width()}x{image.height()})")
    window.close()
    return 0


def _job_ended(session: object) -> bool:
    from gui.core.session import Session

    assert isinstance(session, Session)
    return any(r.status in ("failed", "cancelled") for r in session.models.jobs.value.rows)


def _thumbnails_read(session: object) -> bool:
    from gui.core.session import Session

    assert isinstance(session, Session)
    items = session.models.variants.value.items
    return all(i.audio is not None or "audio" not in i.files for i in items)


def _second_job_shown(session: object) -> bool:
    """The screenshot's second job is a third done, or already over (a fast engine)."""
    from gui.core.session import Session

    assert isinstance(session, Session)
    jobs = session.models.jobs.value
    return any(r.status == "running" and r.fraction >= 0.3 for r in jobs.rows) or not (jobs.waiting or jobs.running)
