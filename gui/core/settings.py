"""The desktop app's settings: one frozen value, stored as JSON in the user's config folder (platformdirs).

Read at the edge (:func:`load_settings`) and passed in; written atomically (:func:`save_settings`: a temp file in
the same folder, then :func:`os.replace`). A damaged or partly unknown file never stops the app: what cannot be
read is replaced by its default and said in :attr:`LoadedSettings.problems`, which the window shows.
No Qt here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from engine.api import (
    MAX_BARS,
    MAX_DENSITY,
    MAX_PARTS,
    MAX_VARIANTS,
    MIN_DENSITY,
    OUTPUTS,
    GenerationParams,
    is_part_name,
)
from engine.atomic import write_text
from engine.environment import Environment
from engine.errors import SegueError

log = logging.getLogger(__name__)

APP_NAME = "segue"
SETTINGS_FILE = "gui.json"


def default_settings_path(environment: Environment | None = None) -> Path:
    """``$SEGUE_GUI_SETTINGS`` (of ``environment``; None: this process's) if set, else
    ``<user config dir>/segue/gui.json``."""
    env = (environment or Environment.read()).gui_settings
    if env is not None:
        return env
    return platformdirs.user_config_path(APP_NAME) / SETTINGS_FILE


def default_out_dir() -> Path:
    """Where the app keeps its jobs unless told otherwise: ``<user data dir>/segue/jobs``."""
    return platformdirs.user_data_path(APP_NAME) / "jobs"


_ENGINE_DEFAULTS = GenerationParams()


@dataclass(frozen=True)
class GuiSettings:
    """Everything the app remembers between runs. Copy with :func:`dataclasses.replace`."""

    out_dir: str = ""  # "" = default_out_dir()
    # connections
    engine: str = "local"  # "local" or a server URL
    token: str = ""
    daw: str = "generic"
    osc_host: str = "127.0.0.1"
    osc_port: int = 9750
    daw_host: str = ""
    daw_port: int = 0  # 0 = none (generic) / the DAW's default port (adapters)
    midi_clock_in: str = ""  # "" = no MIDI clock
    watch_dir: str = ""  # "" = off; the watched folder for DAW scripts without sockets (REAPER)
    place_first: bool = False  # place each job's first variant in the DAW by itself (as `segue bridge` does)
    # generation: the engine's defaults until the user changes them
    mode: str = _ENGINE_DEFAULTS.mode
    bars: int = _ENGINE_DEFAULTS.bars
    variants: int = _ENGINE_DEFAULTS.variants
    temperature: float = _ENGINE_DEFAULTS.temperature
    top_p: float = _ENGINE_DEFAULTS.top_p
    seed: int | None = None
    model: str = "default"
    parts: tuple[str, ...] = field(default_factory=tuple)  # accompany: the parts to write; () = the model's
    output: str = _ENGINE_DEFAULTS.output  # what an audio region becomes: auto | audio | midi | both
    # the producer's controls; None: auto (the engine's measured default)
    similarity: float | None = None
    keep_opening: bool | None = None
    density: float | None = None
    hold_notes: bool | None = None
    end_on_tonic: bool | None = None
    # audition
    loop: bool = False
    region_first: bool = False
    starred: tuple[str, ...] = field(default_factory=tuple)  # "<job_id>/<variant_id>"
    # what generated files say about where they came from (engine.provenance): the "generated" mark always stays
    provenance_region_name: bool = True  # name the region's file (its SHA-256 is always there)
    provenance_sign: bool = True  # a C2PA signature in each WAV
    # window
    last_open_dir: str = ""

    def jobs_dir(self) -> Path:
        return Path(self.out_dir).expanduser() if self.out_dir else default_out_dir()


@dataclass(frozen=True)
class LoadedSettings:
    settings: GuiSettings
    problems: tuple[str, ...] = ()


_RANGES: dict[str, tuple[float, float]] = {
    "osc_port": (0, 65535),
    "daw_port": (0, 65535),
    "bars": (1, MAX_BARS),
    "variants": (1, MAX_VARIANTS),
    "temperature": (0.05, 3.0),
    "top_p": (0.01, 1.0),
    "seed": (0, 2**63 - 1),
    "similarity": (0.0, 1.0),
    "density": (MIN_DENSITY, MAX_DENSITY),
}
_OPTIONAL_NUMBERS = ("similarity", "density")  # None (auto) or a number in _RANGES
_OPTIONAL_FLAGS = ("keep_opening", "hold_notes", "end_on_tonic")  # None (auto), true or false


def load_settings(path: Path) -> LoadedSettings:
    """The settings in ``path`` (defaults when it does not exist); never raises for a bad file."""
    defaults = GuiSettings()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LoadedSettings(defaults)
    except (OSError, UnicodeDecodeError) as e:
        return LoadedSettings(defaults, (f"could not read the settings file {path} ({e}); using the defaults",))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return LoadedSettings(defaults, (f"the settings file {path} is damaged ({e.msg}); using the defaults",))
    if not isinstance(data, dict):
        return LoadedSettings(defaults, (f"the settings file {path} is not a JSON object; using the defaults",))
    values: dict[str, Any] = {}
    problems: list[str] = []
    fields = {f.name: f for f in dataclasses.fields(GuiSettings)}
    for key, value in data.items():
        if key not in fields:
            problems.append(f"settings: ignored the unknown setting {key!r}")
            continue
        checked = _check(key, value, getattr(defaults, key))
        if checked is _BAD:
            problems.append(f"settings: {key} = {value!r} is not valid; using {getattr(defaults, key)!r}")
            continue
        values[key] = checked
    for problem in problems:
        log.warning("%s", problem)
    return LoadedSettings(dataclasses.replace(defaults, **values), tuple(problems))


_BAD = object()


def _check(key: str, value: Any, default: Any) -> Any:
    if key in _OPTIONAL_FLAGS:
        return value if value is None or isinstance(value, bool) else _BAD
    if key == "seed" or key in _OPTIONAL_NUMBERS:
        if value is None:
            return None
        default = 0 if key == "seed" else 0.0
    if key in ("starred", "parts"):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            if key == "parts" and (len(value) > MAX_PARTS or not all(is_part_name(v) for v in value)):
                return _BAD
            return tuple(value)
        return _BAD
    if key == "output":
        return value if value in OUTPUTS else _BAD
    if isinstance(default, bool):
        return value if isinstance(value, bool) else _BAD
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            return _BAD
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return _BAD
        value = float(value)
    elif isinstance(default, str):
        return value if isinstance(value, str) else _BAD
    low, high = _RANGES.get(key, (-math.inf, math.inf))
    return value if low <= value <= high else _BAD


def settings_to_json(settings: GuiSettings) -> str:
    data = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    data["starred"] = list(settings.starred)
    data["parts"] = list(settings.parts)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def save_settings(path: Path, settings: GuiSettings) -> None:
    """Write atomically (:func:`engine.atomic.write_text`): a reader (or a crash) sees the old file or the new one,
    never half of one. :class:`OSError` with the reason (a full disk says so) when it cannot be written."""
    try:
        write_text(path, settings_to_json(settings))
    except SegueError as e:
        raise OSError(str(e)) from e
    log.debug("settings saved to %s", path)
