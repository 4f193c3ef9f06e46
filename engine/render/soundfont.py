"""Find the best General MIDI soundfont on this machine.

Order: an explicit path (``--soundfont``), the ``SEGUE_SOUNDFONT`` environment variable, Debian's FluidR3 GM
(``fluid-soundfont-gm``), Debian's MuseScore General (``musescore-general-soundfont-small``), and last the small
TimGM6mb.sf2 that ships inside the ``pretty_midi`` wheel. An explicit path or env var that does not point at a
soundfont is an error (we never fall back silently from what the user asked for).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import BadInputError, EngineError

log = logging.getLogger(__name__)

ENV_VAR = "SEGUE_SOUNDFONT"


@dataclass(frozen=True)
class SystemSoundFont:
    """A soundfont a distribution package installs: where to look, and what to tell the user."""

    pattern: str  # a path, or a glob in its last component
    name: str
    licence: str
    package: str  # the Debian package that installs it


SYSTEM_SOUNDFONTS: tuple[SystemSoundFont, ...] = (
    SystemSoundFont("/usr/share/sounds/sf2/FluidR3_GM.sf2", "FluidR3 GM", "MIT", "fluid-soundfont-gm"),
    SystemSoundFont(
        "/usr/share/sounds/sf2/MuseScore_General*.sf[23]",
        "MuseScore General",
        "MIT",
        "musescore-general-soundfont-small",
    ),
    SystemSoundFont(
        "/usr/share/sounds/sf3/MuseScore_General*.sf[23]",
        "MuseScore General",
        "MIT",
        "musescore-general-soundfont-small",
    ),
)

BUNDLED_NAME = "TimGM6mb"
BUNDLED_FILE = "TimGM6mb.sf2"
BUNDLED_LICENCE = "GPL-2.0 (TimGM6mb by Tim Brechbill, shipped in the pretty_midi wheel)"


@dataclass(frozen=True)
class SoundFont:
    """A General MIDI soundfont file, how it was found, and its licence (for ``segue doctor`` and model cards)."""

    path: Path
    name: str
    licence: str
    source: str  # "argument" | "SEGUE_SOUNDFONT" | the Debian package | "pretty_midi"


def _is_soundfont_file(path: Path) -> bool:
    """True when ``path`` is a RIFF ``sfbk`` file (SF2, and SF3 which is SF2 with Ogg samples)."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"sfbk"


def _check_user_path(path: Path, where: str) -> Path:
    """Check a path the user gave; a clear :class:`BadInputError` when it is unusable."""
    path = path.expanduser()
    if not path.exists():
        raise BadInputError(
            f"{where} names {path}, which does not exist; give the path of a General MIDI .sf2/.sf3 file "
            f"(or unset it to use the best installed soundfont)"
        )
    if not path.is_file():
        raise BadInputError(f"{where} names {path}, which is not a file; give the path of a .sf2/.sf3 file")
    if not _is_soundfont_file(path):
        raise BadInputError(
            f"{where} names {path}, which is not a SoundFont (no RIFF 'sfbk' header); give a .sf2/.sf3 file"
        )
    return path.resolve()


def bundled_soundfont_path() -> Path | None:
    """The TimGM6mb.sf2 inside the installed ``pretty_midi`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("pretty_midi")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    folders = list(spec.submodule_search_locations or [])
    if spec.origin:
        folders.append(str(Path(spec.origin).parent))
    for folder in folders:
        candidate = Path(folder) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


def _first_match(pattern: str) -> Path | None:
    path = Path(pattern)
    if any(ch in path.name for ch in "*?["):
        matches = sorted(p for p in path.parent.glob(path.name) if p.is_file()) if path.parent.is_dir() else []
        # Prefer the uncompressed .sf2 (faster to load) when both exist.
        matches.sort(key=lambda p: (p.suffix != ".sf2", p.name))
        candidates = matches
    else:
        candidates = [path] if path.is_file() else []
    for candidate in candidates:
        if _is_soundfont_file(candidate):
            return candidate
        log.warning("%s is not a readable SoundFont; skipping it", candidate)
    return None


def find_soundfont(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    system: Sequence[SystemSoundFont] = SYSTEM_SOUNDFONTS,
    use_bundled: bool = True,
) -> SoundFont:
    """The best General MIDI soundfont: ``path``, then ``$SEGUE_SOUNDFONT``, then system ones, then TimGM6mb.

    ``environ`` defaults to ``os.environ``; ``system`` and ``use_bundled`` exist for tests and ``segue doctor``.
    Raises :class:`BadInputError` when ``path`` or the env var names something unusable, and
    :class:`EngineError` when no soundfont is installed at all.
    """
    if path is not None and str(path) != "":
        found = _check_user_path(Path(path), "the soundfont argument")
        return SoundFont(found, found.stem, "unknown (user-supplied file)", "argument")

    env = os.environ if environ is None else environ
    env_value = env.get(ENV_VAR, "").strip()
    if env_value:
        found = _check_user_path(Path(env_value), f"${ENV_VAR}")
        return SoundFont(found, found.stem, "unknown (user-supplied file)", ENV_VAR)

    for candidate in system:
        match = _first_match(candidate.pattern)
        if match is not None:
            log.debug("using soundfont %s (%s)", match, candidate.package)
            return SoundFont(match, candidate.name, candidate.licence, candidate.package)

    if use_bundled:
        bundled = bundled_soundfont_path()
        if bundled is not None and _is_soundfont_file(bundled):
            log.debug("using the soundfont bundled with pretty_midi: %s", bundled)
            return SoundFont(bundled, BUNDLED_NAME, BUNDLED_LICENCE, "pretty_midi")

    packages = ", ".join(dict.fromkeys(c.package for c in system)) or "fluid-soundfont-gm"
    raise EngineError(
        "no General MIDI soundfont found to render MIDI to audio. Install one "
        f"(`sudo apt install {packages.split(', ')[0]}`; also supported: {packages}), "
        f"or set {ENV_VAR}=/path/to/soundfont.sf2, or `pip install pretty_midi` (ships TimGM6mb.sf2)"
    )
