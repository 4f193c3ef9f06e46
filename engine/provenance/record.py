"""What one generated file says about where it came from, and the settings that decide how much it says.

A :class:`ProvenanceRecord` is made per file from a job's manifest (``job.json``'s shape, a plain mapping, so the
engine's server and the bridge both use it) and written into the file as JSON (iXML, a C2PA assertion, a MIDI
sequencer-specific event) and as short text (bext, MIDI text and copyright events). Stdlib only.

Settings precedence (shared/STYLE.md): defaults < ``<config dir>/segue/provenance.json`` < ``SEGUE_PROVENANCE_*``
environment variables < the command line. Whatever the settings, a record always says that the file was generated
(``generated: true`` and the IPTC digital source type ``trainedAlgorithmicMedia``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from engine.environment import Environment
from engine.errors import BadInputError

log = logging.getLogger(__name__)

RECORD_VERSION = 1
DIGITAL_SOURCE_TYPE = "trainedAlgorithmicMedia"
# full.wav/full.mid: the region (the producer's own material) followed by the generated part
COMPOSITE_SOURCE_TYPE = "compositeWithTrainedAlgorithmicMedia"
IPTC_SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
DIGITAL_SOURCE_TYPE_URI = IPTC_SOURCE_TYPES + DIGITAL_SOURCE_TYPE
SETTINGS_FILE = "provenance.json"
UNKNOWN_LICENCE = "unknown: see the model's card"
_LICENCE_SENTENCE = re.compile(r"[^.]*\b(non-commercial|licen[cs]e[ds]?)\b[^.]*\.?", re.IGNORECASE)
_WEIGHTS = ("model.safetensors", "model.pt")
_JOB_ID = re.compile(r"(?P<when>\d{8}-\d{6})(-.+)?-(?P<mode>continue|accompany)-(?P<suffix>[a-z0-9]{2,12})")


def segue_version() -> str:
    """The installed Segue's version (``0+unknown`` from a source tree), as the bridge reports it."""
    try:
        return metadata.version("segue")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def config_dir(environment: Environment | None = None) -> Path:
    """Segue's config folder: ``$SEGUE_CONFIG_DIR`` (of ``environment``; None: this process's, read now) if set,
    else the platform's (``~/.config/segue`` on Linux)."""
    env = (environment or Environment.read()).config_dir
    if env is not None:
        return env
    import platformdirs

    return Path(platformdirs.user_config_dir("segue"))


@dataclass(frozen=True)
class ProvenanceSettings:
    """How much a generated file says. The "generated" mark cannot be switched off."""

    region_name: bool = True  # False: the region's file name is left out, of the job id too (its SHA-256 stays)
    sign: bool = True  # False: no C2PA manifest (bext, iXML and MIDI events are still written)
    key_file: str = ""  # a PEM private key (a studio's); "" = Segue's local key, made on first use
    certificate_file: str = ""  # the PEM certificate chain that goes with key_file (signer first)

    @classmethod
    def load(cls, path: Path | None = None, environ: Mapping[str, str] | None = None) -> ProvenanceSettings:
        """Defaults < ``path`` (default ``<config dir>/provenance.json``) < ``SEGUE_PROVENANCE_*`` variables.

        :class:`BadInputError` for a damaged file or a value of the wrong kind, naming it."""
        env = os.environ if environ is None else environ
        file = path if path is not None else config_dir() / SETTINGS_FILE
        values: dict[str, Any] = {}
        if file.is_file():
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise BadInputError(f"the provenance settings {file} cannot be read ({e}); fix or delete it") from e
            if not isinstance(data, dict):
                raise BadInputError(f"the provenance settings {file} must be a JSON object")
            values.update(data)
        for name in ("region_name", "sign"):
            raw = env.get(f"SEGUE_PROVENANCE_{name.upper()}", "").strip().lower()
            if raw:
                if raw not in ("0", "1", "true", "false", "yes", "no"):
                    raise BadInputError(f"SEGUE_PROVENANCE_{name.upper()} must be 0 or 1, got {raw!r}")
                values[name] = raw in ("1", "true", "yes")
        for name in ("key_file", "certificate_file"):
            raw = env.get(f"SEGUE_PROVENANCE_{name.upper()}", "").strip()
            if raw:
                values[name] = raw
        return cls.from_mapping(values, str(file))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "provenance settings") -> ProvenanceSettings:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise BadInputError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        for name, value in values.items():
            kind = bool if name in ("region_name", "sign") else str
            if not isinstance(value, kind):
                raise BadInputError(f"{where}: {name} must be a {kind.__name__}, got {value!r}")
        settings = cls(**values)
        if bool(settings.key_file) != bool(settings.certificate_file):
            raise BadInputError(f"{where}: give both key_file and certificate_file (a PEM key and its certificate)")
        return settings


@dataclass(frozen=True)
class ProvenanceRecord:
    """Where one generated file came from. ``to_json`` is what the file carries."""

    job: str
    variant: str
    role: str  # "audio", "midi", "stem:bass", "full_audio", ...
    mode: str  # "continue" | "accompany"
    kind: str  # "midi" | "audio": what the region was
    model: str
    model_version: str = ""  # "sha256:<16 hex>" of the weights, when they were on this computer
    licence: str = UNKNOWN_LICENCE
    engine: str = "local"  # "local" or the remote server's host
    seed: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    region_name: str | None = None  # None when the settings leave it out
    region_sha256: tuple[str, ...] = ()  # of each region file (MIDI and/or audio)
    parts: tuple[str, ...] = ()
    tempo_bpm: float | None = None
    meter: str | None = None
    segue_version: str = ""
    created: str = ""  # ISO 8601, when the job finished
    generated: bool = True  # always True: the "generated" mark is never left out
    digital_source_type: str = DIGITAL_SOURCE_TYPE

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["params"] = dict(self.params)
        data["region_sha256"] = list(self.region_sha256)
        data["parts"] = list(self.parts)
        data["v"] = RECORD_VERSION
        return {k: v for k, v in data.items() if v is not None and v != "" and v != [] and v != {}}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, data: Any) -> ProvenanceRecord:
        """A record from what a file carried; :class:`BadInputError` if it is not one."""
        if not isinstance(data, dict) or not data.get("generated") or "job" not in data:
            raise BadInputError("the embedded provenance is not a Segue record (no job or no 'generated' mark)")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("region_sha256", "parts"):
            values[name] = tuple(values.get(name, ()))
        try:
            return cls(**values)
        except TypeError as e:
            raise BadInputError(f"the embedded provenance record is incomplete ({e})") from e

    @property
    def short(self) -> str:
        """One line for people: what made this file ("Partly AI-generated" for the region and its continuation)."""
        seed = f"seed {self.seed}" if self.seed is not None else "seed unknown"
        partly = "Partly " if self.digital_source_type == COMPOSITE_SOURCE_TYPE else ""
        return f"{partly}AI-generated by Segue {self.segue_version}: {self.model} ({self.licence}), {seed}"


def records_for_job(
    job: Mapping[str, Any], settings: ProvenanceSettings, when: datetime | None = None
) -> dict[str, ProvenanceRecord]:
    """One record per file of a finished job (``job.json``'s shape): relative path -> record.

    The model of each file is the one ``file_sources`` names for its role (jobs that mix an audio and a MIDI
    model), else the job's model. Licence and version come from the model's folder when it is on this computer.
    """
    when = when or datetime.now().astimezone()
    region = job.get("region") or {}
    sources = region.get("sources") or ()
    names = ", ".join(PurePosixPath(str(s.get("path", ""))).name for s in sources if s.get("path"))
    params = {
        k: v
        for k, v in (job.get("params") or {}).items()
        if k not in ("seed", "variants") and v is not None and v != {} and v != []
    }
    file_sources = job.get("file_sources") or {}
    records = {}
    facts: dict[str, tuple[str, str]] = {}  # looked up once per model, not once per file
    for variant in job.get("variants") or ():
        for role, rel in (variant.get("files") or {}).items():
            model = _model_of(str(job.get("model", "")), file_sources.get(role))
            if model not in facts:
                facts[model] = model_facts(model)
            licence, version = facts[model]
            job_id = str(job.get("id", ""))
            records[str(rel)] = ProvenanceRecord(
                job=job_id if settings.region_name else job_without_region_name(job_id),
                variant=str(variant.get("id", "")),
                role=str(role),
                mode=str(job.get("mode", "")),
                kind=str(job.get("kind", "")),
                model=model,
                model_version=version,
                licence=licence,
                engine=engine_label(str(job.get("engine", "local"))),
                seed=variant.get("seed"),
                params=params,
                region_name=(names or None) if settings.region_name else None,
                region_sha256=tuple(str(s.get("sha256", "")) for s in sources if s.get("sha256")),
                parts=tuple(variant.get("parts") or region.get("parts") or ()),
                tempo_bpm=region.get("tempo_bpm"),
                meter=region.get("meter"),
                segue_version=str(job.get("segue_version") or segue_version()),
                created=when.isoformat(timespec="seconds"),
                digital_source_type=COMPOSITE_SOURCE_TYPE if str(role).startswith("full") else DIGITAL_SOURCE_TYPE,
            )
    return records


def job_without_region_name(job_id: str) -> str:
    """A job id without the region's file name in it (``20261207-120000-my-song-continue-3f2a`` ->
    ``20261207-120000-continue-3f2a``); another id's first 12 hex digits of SHA-256."""
    match = _JOB_ID.fullmatch(job_id)
    if match:
        return f"{match.group('when')}-{match.group('mode')}-{match.group('suffix')}"
    return "job-" + hashlib.sha256(job_id.encode("utf-8")).hexdigest()[:12]


def _model_of(job_model: str, source: str | None) -> str:
    if source and ":" in source:  # "audio:segue-audio-small", "midi:segue-midi-small"
        return source.split(":", 1)[1]
    return job_model or "unknown"


def engine_label(engine: str) -> str:
    """``local`` for the in-process engine (``local (cpu)``); a remote engine's host (never its token or path)."""
    if engine.startswith("local") or not engine:
        return "local"
    match = re.search(r"https?://([^/@\s]+@)?([^/\s?#]+)", engine)
    return f"remote {match.group(2)}" if match else engine[:64]


def model_facts(model: str) -> tuple[str, str]:
    """(licence, version) of a model named in a job: read from its folder on this computer when it is there."""
    folder = _model_folder(model)
    if folder is None:
        return UNKNOWN_LICENCE, ""
    return _facts_of(str(folder), _stamp(folder))


def _model_folder(model: str) -> Path | None:
    name = model.split(":", 1)[1] if model.startswith("musicgen:") else model
    if not name or name == "unknown":
        return None
    try:
        from engine.checkpoints import find_checkpoint

        for kind in ("midi", "audio"):
            try:
                return find_checkpoint(name, kind=kind).path
            except Exception:  # noqa: BLE001 - not found under this kind, or unreadable: try the other
                continue
    except ImportError:  # pragma: no cover - engine.checkpoints is part of the engine
        return None
    candidate = Path(name).expanduser()
    return candidate if candidate.is_dir() else None


def _stamp(folder: Path) -> tuple[float, int]:
    weights = next((folder / w for w in _WEIGHTS if (folder / w).is_file()), None)
    if weights is None:
        return (0.0, 0)
    stat = weights.stat()
    return (stat.st_mtime, stat.st_size)


@functools.lru_cache(maxsize=32)
def _facts_of(folder_name: str, stamp: tuple[float, int]) -> tuple[str, str]:
    folder = Path(folder_name)
    licence = UNKNOWN_LICENCE
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    if isinstance(config, dict):
        stated = config.get("licence") or config.get("license")
        if isinstance(stated, str) and stated.strip():
            licence = stated.strip()
        else:
            match = _LICENCE_SENTENCE.search(str(config.get("description", "")))
            if match:
                licence = match.group(0).strip().rstrip(".").lower()
    version = ""
    weights = next((folder / w for w in _WEIGHTS if (folder / w).is_file()), None)
    if weights is not None and stamp != (0.0, 0):
        digest = hashlib.sha256()
        with weights.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        version = "sha256:" + digest.hexdigest()[:16]
    return licence, version
