"""The engine's entry points for the layers above: open an engine, serve, train, evaluate, check the install.

Each function imports the heavy part it needs (torch, fastapi, the trainers) only when it is called, with an
ordinary import inside the function, so importing this module costs nothing and the import graph shows every
edge. :mod:`engine.api` holds the types these functions take and return; nothing below imports this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.api import Engine
from engine.environment import Environment
from engine.errors import BadInputError, EngineError


def open_engine(spec: str = "local", **options: Any) -> Engine:
    """Return the engine named by ``spec``: ``"local"`` (in-process; needs the ``engine`` extra) or the URL of
    a ``segue serve`` (``http://host:8750``; ``token=...``), which gives an :class:`engine.remote.RemoteEngine`.
    The local engine's ``threads`` default to ``SEGUE_THREADS``, its ``decode`` settings to ``SEGUE_FAST_DECODE``,
    ``SEGUE_STEP_THREADS`` and ``SEGUE_DECODE_PRECISION``."""
    if spec == "local":
        from engine.local import LocalEngine

        environment = Environment.read()
        threads = options.pop("threads", None) or environment.threads
        decode = options.pop("decode", None) or environment.decode
        return LocalEngine(threads=threads, decode=decode, **options)
    if spec.startswith(("http://", "https://")):  # `segue serve` elsewhere (engine.remote; needs httpx)
        try:
            from engine.remote import RemoteEngine
        except ImportError as e:
            raise EngineError(
                f"a remote engine needs httpx ({e.name} is missing): pip install httpx, or 'segue[server]'"
            ) from e
        return RemoteEngine(spec, **options)
    raise BadInputError(f"unknown engine {spec!r}: use 'local' or a server URL")


def run_server(options: Mapping[str, Any], say: Callable[[str], None]) -> int:
    """Entry point of ``segue serve``: checks the settings (:class:`BadInputError` says what is wrong), then
    serves until Ctrl-C or SIGTERM. ``options`` are :class:`engine.server.config.ServerConfig`'s fields, with
    ``devices`` as text: ``"cpu"`` or ``"cuda:0,cuda:1"`` (None: every CUDA device, else the CPU), and
    ``data_dir`` None for the default folder."""
    try:
        from engine.server import serve
        from engine.server.config import ServerConfig, default_data_dir, parse_devices
    except ImportError as e:
        missing = e.name or "a module"
        raise EngineError(
            f"segue serve needs the server extra ({missing} is missing): pip install 'segue[server]'"
        ) from e
    settings = dict(options)
    if settings.get("data_dir") is None:  # $SEGUE_SERVER_DATA, else the platform's
        settings["data_dir"] = default_data_dir(Environment.read())
    settings["devices"] = parse_devices(options.get("devices"))
    return serve(ServerConfig(**settings), say=say)


TRAINING_KINDS = ("symbolic", "audio", "accompany")


def run_training(kind: str, argv: list[str]) -> int:
    """Entry point of ``segue train KIND ...``: the trainer's own command line (``argv``); imports torch."""
    if kind == "symbolic":
        from engine.symbolic.train import main as train_symbolic

        return train_symbolic(argv)
    if kind == "audio":
        from engine.audio.train_prior import train_audio

        return train_audio(argv)
    if kind == "accompany":
        from engine.symbolic.accompany.train import main as train_accompany

        return train_accompany(argv)
    raise BadInputError(f"unknown training kind {kind!r}: use one of {', '.join(TRAINING_KINDS)}")


def evaluate(
    job_dir: Path, reference: Path | None = None, reference_from_bar: int | None = None
) -> tuple[dict[str, Any], str, bool]:
    """Entry point of ``segue eval``: the scores of a finished job folder as (JSON, table, all passed), and with
    ``reference`` (a MIDI file of the bars that followed the region) the job against it.
    Imports :mod:`engine.evaluate` (numpy, soundfile; no torch)."""
    from engine.evaluate import evaluate_job, format_table

    score = evaluate_job(job_dir, reference, reference_from_bar)
    return score.to_json(), format_table(score), bool(score.passed)


def doctor() -> dict[str, dict[str, Any]]:
    """Checks for ``segue doctor``: name -> ``{"ok": bool, "detail": str}``. A doctor reports, it never
    crashes: a part that does not import is a failed check with the install hint."""
    import platform
    import sys

    python = f"{platform.python_version()} ({sys.executable})"
    checks: dict[str, dict[str, Any]] = {"python": {"ok": sys.version_info[:2] == (3, 11), "detail": python}}
    try:
        # by name on purpose: torch is the one import the doctor probes, and it may be absent
        torch = importlib.import_module("torch")
        cuda = bool(torch.cuda.is_available())
        device = f"cuda ({torch.cuda.get_device_name(0)})" if cuda else "cpu"
        checks["torch"] = {"ok": True, "detail": f"{torch.__version__}, device {device}"}
    except Exception as e:
        hint = "the local engine needs: pip install 'segue[engine]'"
        checks["torch"] = {"ok": False, "detail": f"not usable ({e}); {hint}"}
    try:
        from engine.render.soundfont import find_soundfont

        found = find_soundfont(None)
        checks["soundfont"] = {"ok": True, "detail": str(getattr(found, "path", found))}
    except Exception as e:
        checks["soundfont"] = {"ok": False, "detail": f"{e}; set SEGUE_SOUNDFONT to a General MIDI .sf2 file"}
    try:
        from engine.checkpoints import installed_checkpoints

        names = [c.name for c in installed_checkpoints()]
        checks["models"] = {"ok": bool(names), "detail": ", ".join(names) or "none installed"}
    except Exception as e:
        checks["models"] = {"ok": False, "detail": str(e)}
    return checks


def write_audio(path: Path, audio: Any, sample_rate: int) -> Path:
    """Write float audio ``[channels, samples]`` as a 24-bit WAV, atomically, never over an existing file
    (the engine's writer, for the layers above; imports no torch)."""
    from engine.render.wavfile import write_wav

    return write_wav(path, audio, sample_rate)
