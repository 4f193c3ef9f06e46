"""Shared test setup. The helper modules are in tests/support (``import midi_fixtures``), which pytest puts on
``sys.path`` (pyproject.toml's ``pythonpath``)."""

from __future__ import annotations

import signal
import warnings
from collections.abc import Iterator

import pytest

# A test run started in the background of a non-interactive shell (`cmd &`, nohup) inherits SIGINT ignored, and
# Python then installs no KeyboardInterrupt handler: the Ctrl-C tests (which send SIGINT to this process) need the
# handler an interactive start gets.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _signal_handlers_restored(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with the process's SIGINT/SIGTERM handlers as they were, and gets them back: a test that
    leaves its own handler behind (a daemon stopped on a thread, a Qt app) would make Ctrl-C tests that run after it
    fail. A leak is reported as a warning naming the test."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in before.items():
        if signal.getsignal(signum) is not handler:
            warnings.warn(f"{request.node.nodeid} left a {signal.Signals(signum).name} handler behind", stacklevel=1)
            signal.signal(signum, handler)


@pytest.fixture(autouse=True, scope="session")
def _bundled_soundfont() -> Iterator[None]:
    """Every test renders with pretty_midi's TimGM6mb.sf2 (through $SEGUE_SOUNDFONT, which subprocesses inherit),
    so results do not depend on the soundfonts a machine has installed: the search would otherwise take FluidR3 or
    MuseScore_General (Debian's musescore-general-soundfont-small, which MuseScore pulls in), whose pianos sound
    differently (MuseScore's adds low resonances the transcription model hears as notes). Tests of the search
    itself pass ``environ=`` or set the variable themselves."""
    from engine.render.soundfont import ENV_VAR, bundled_soundfont_path

    bundled = bundled_soundfont_path()
    with pytest.MonkeyPatch.context() as patch:
        if bundled is not None:
            patch.setenv(ENV_VAR, str(bundled))
        yield


@pytest.fixture(autouse=True, scope="session")
def _private_config_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Segue's config folder (provenance settings, the local signing key made on first use) is one of the test
    run's own, through $SEGUE_CONFIG_DIR, which subprocesses inherit: a test run never writes into the user's
    ~/.config/segue, and what is there (a studio's key, provenance.json) never changes what the tests see. Tests
    of the config folder itself set the variable themselves."""
    folder = tmp_path_factory.mktemp("segue-config")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGUE_CONFIG_DIR", str(folder))
        yield
