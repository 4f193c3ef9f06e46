"""Segue's environment variables, in one place: what each one means, and :class:`Environment`, their values.

An entry point reads them once (:meth:`Environment.read`) and passes the values down (shared/STYLE.md, section 5:
defaults < settings file < ``SEGUE_*`` < command line): :func:`engine.entrypoints.open_engine` and the server's
engine factory (``SEGUE_THREADS``), :func:`engine.entrypoints.run_server` (``SEGUE_SERVER_DATA``), the desktop
app's :func:`gui.app.run` (``SEGUE_GUI_SETTINGS``). A function that takes an :class:`Environment` and is given
none reads the process's own then (a library caller, a test).

``SEGUE_THREADS``
    torch and onnxruntime threads for jobs; 0 or unset: the libraries' defaults (fewer keep a busy machine, a DAW
    playing, responsive).
``SEGUE_MODELS_DIR``
    more folders of installed models (``os.pathsep``-separated), searched after the shipped ones and before the
    user's data folder (:func:`engine.checkpoints.search_dirs`).
``SEGUE_CONFIG_DIR``
    Segue's config folder (``provenance.json``, the local signing key); unset: the platform's
    (``~/.config/segue`` on Linux).
``SEGUE_PROVENANCE_REGION_NAME``, ``_SIGN``, ``_KEY_FILE``, ``_CERTIFICATE_FILE``
    override ``provenance.json`` (:meth:`engine.provenance.record.ProvenanceSettings.load`).
``SEGUE_SERVER_DATA``
    ``segue serve``'s data folder; unset: ``<user data dir>/segue/server``.
``SEGUE_GUI_SETTINGS``
    the desktop app's settings file; unset: ``<user config dir>/segue/gui.json``.
``SEGUE_FAST_DECODE``, ``SEGUE_STEP_THREADS``, ``SEGUE_DECODE_PRECISION``
    how the GPT's decode steps run (:class:`DecodeSettings`: the engine applies them to the models it loads,
    :func:`engine.nn.model_fast.apply_settings`): ``0`` turns the fast path off (the module path, a benchmark's
    baseline); torch threads for the steps (0: the process's setting; unset: chosen while each job runs); the MIDI
    sampler's weight products: ``auto`` (default: bfloat16 where the CPU has it natively, else float32),
    ``float32`` (the same tokens for a seed on every CPU) or ``bfloat16``.

Read elsewhere, as their own modules say: ``SEGUE_ENGINE``, ``SEGUE_TOKEN`` and ``SEGUE_DEBUG`` (the ``segue``
command line's defaults, :mod:`bridge.cli_args`, :mod:`bridge.cli`), ``SEGUE_SOUNDFONT``
(:mod:`engine.render.soundfont`), ``SEGUE_RENDER_WORKERS`` (:mod:`engine.render.workers`),
``SEGUE_ARRANGEMENT_BONUS`` (:mod:`engine.symbolic.continuation`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

FAST_DECODE = "SEGUE_FAST_DECODE"
STEP_THREADS = "SEGUE_STEP_THREADS"
DECODE_PRECISION = "SEGUE_DECODE_PRECISION"


@dataclass(frozen=True)
class DecodeSettings:
    """How the GPT's decode steps run (:mod:`engine.nn.model_fast`); the defaults are those of an unset variable."""

    fast: bool = True  # SEGUE_FAST_DECODE: the fast path (False: the module path)
    step_threads: int | None = None  # SEGUE_STEP_THREADS: None = one on a busy machine, 0 = the process's setting
    precision: str = "auto"  # SEGUE_DECODE_PRECISION as given (engine.nn.model_fast.decode_dtype reads it)

    @classmethod
    def read(cls, env: Mapping[str, str]) -> DecodeSettings:
        """The settings in ``env``; a thread count that is not a whole number >= 0 is ignored for 1 (a warning)."""
        fast = env.get(FAST_DECODE, "1").strip().lower() not in ("0", "false", "no", "off")
        raw = env.get(STEP_THREADS, "").strip()
        threads: int | None = None
        if raw:
            threads = int(raw) if raw.isdigit() else -1
            if threads < 0:
                log.warning(
                    "ignoring %s=%r: give a whole number of threads (0: torch's setting); using 1", STEP_THREADS, raw
                )
                threads = 1
        return cls(fast=fast, step_threads=threads, precision=env.get(DECODE_PRECISION, "").strip() or "auto")


@dataclass(frozen=True)
class Environment:
    """The ``SEGUE_*`` values this process was started with; ``None`` / ``()`` / 0 where a variable is unset."""

    threads_text: str = ""  # SEGUE_THREADS as given (read through .threads, which is where a bad one fails)
    models_dirs: tuple[Path, ...] = ()  # SEGUE_MODELS_DIR
    config_dir: Path | None = None  # SEGUE_CONFIG_DIR
    server_data_dir: Path | None = None  # SEGUE_SERVER_DATA
    gui_settings: Path | None = None  # SEGUE_GUI_SETTINGS
    decode: DecodeSettings = field(default_factory=DecodeSettings)  # SEGUE_FAST_DECODE and the other two

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Environment:
        """The values in ``environ`` (default: this process's environment)."""
        env = os.environ if environ is None else environ
        models = env.get("SEGUE_MODELS_DIR")
        config = env.get("SEGUE_CONFIG_DIR", "").strip()
        server = env.get("SEGUE_SERVER_DATA")
        gui = env.get("SEGUE_GUI_SETTINGS", "").strip()
        return cls(
            threads_text=env.get("SEGUE_THREADS", ""),
            models_dirs=tuple(Path(p) for p in models.split(os.pathsep) if p) if models else (),
            config_dir=Path(config).expanduser() if config else None,
            server_data_dir=Path(server) if server else None,
            gui_settings=Path(gui).expanduser() if gui else None,
            decode=DecodeSettings.read(env),
        )

    @property
    def threads(self) -> int:
        """``SEGUE_THREADS`` as a number, 0 when unset; ValueError when it is not a whole number."""
        return int(self.threads_text or 0)
