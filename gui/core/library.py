"""What the producer keeps and throws away, on disk, no Qt: variants and jobs deleted to a trash they can be
restored from (``<jobs folder>/.trash/``; never a silent delete), and the names and notes given to variants
(``<jobs folder>/.segue-variants.json``, written atomically).

A trashed variant's folder (``<job>/vNN``) or a whole job folder is moved (a rename on the same disk) into its own
folder under ``.trash``, and ``.trash/index.json`` remembers where it came from; restoring moves it back, unless
something now stands there. The job's ``job.json`` is left as it was: a variant whose files are gone is not listed
(:func:`gui.core.catalog.variant_items`), and the others keep their numbers, as ``/segue/choose`` counts them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.atomic import write_json
from engine.errors import BadInputError

log = logging.getLogger(__name__)

TRASH = ".trash"
INDEX = "index.json"
ANNOTATIONS = ".segue-variants.json"


@dataclass(frozen=True)
class Trashed:
    """One thing in the trash: what it was (``"<job id>/<variant id>"`` or ``"<job id>"``), where it came from and
    where it is now."""

    key: str
    original: str
    trashed: str
    when: str

    @property
    def label(self) -> str:
        job, _, variant = self.key.partition("/")
        return f"{variant} of {job}" if variant else f"job {job}"


def trash_entries(out_dir: Path) -> list[Trashed]:
    """What the trash holds, oldest first (entries whose folder is gone are left out)."""
    index = out_dir / TRASH / INDEX
    try:
        raw = json.loads(index.read_text(encoding="utf-8"))
        entries = [Trashed(**entry) for entry in raw]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as e:
        log.warning("the trash index %s cannot be read (%s): starting a new one", index, e)
        return []
    return [e for e in entries if Path(e.trashed).exists()]


def _write_index(out_dir: Path, entries: list[Trashed]) -> None:
    write_json(out_dir / TRASH / INDEX, [asdict(e) for e in entries])


def move_to_trash(out_dir: Path, path: Path, key: str) -> Trashed:
    """Move ``path`` (a variant's or a job's folder under ``out_dir``) into the trash."""
    if not path.exists():
        raise BadInputError(f"{path} is not there any more; nothing was deleted")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = out_dir / TRASH / f"{stamp}-{key.replace('/', '-')}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = out_dir / TRASH / f"{stamp}-{key.replace('/', '-')}-{suffix}"
    folder.mkdir(parents=True)
    target = folder / path.name
    try:
        os.replace(path, target)
    except OSError as e:
        folder.rmdir()
        raise BadInputError(f"{path} could not be moved to the trash ({e.strerror or e}); nothing was deleted") from e
    entry = Trashed(key, str(path), str(target), time.strftime("%Y-%m-%d %H:%M:%S"))
    _write_index(out_dir, [*trash_entries(out_dir), entry])
    return entry


def restore(out_dir: Path, entry: Trashed) -> Path:
    """Move a trashed folder back where it was; refused when something now stands there."""
    original, trashed = Path(entry.original), Path(entry.trashed)
    if original.exists():
        raise BadInputError(f"{original} exists again; move it away to restore {entry.label}")
    if not trashed.exists():
        raise BadInputError(f"{entry.label} is no longer in the trash ({trashed})")
    original.parent.mkdir(parents=True, exist_ok=True)
    os.replace(trashed, original)
    try:
        trashed.parent.rmdir()
    except OSError:
        pass
    _write_index(out_dir, [e for e in trash_entries(out_dir) if e != entry])
    return original


def load_annotations(out_dir: Path) -> dict[str, dict[str, str]]:
    """``{"<job id>/<variant id>": {"name": ..., "notes": ...}}``; an unreadable file reads as empty (logged)."""
    path = out_dir / ANNOTATIONS
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("the variants' names and notes in %s cannot be read (%s)", path, e)
        return {}
    if not isinstance(raw, dict):
        return {}
    return {
        str(key): {k: str(v) for k, v in value.items() if k in ("name", "notes") and isinstance(v, str)}
        for key, value in raw.items()
        if isinstance(value, dict)
    }


def save_annotation(out_dir: Path, key: str, **fields: str) -> dict[str, dict[str, str]]:
    """Set a variant's name and/or notes ("" removes one); returns every annotation."""
    data = load_annotations(out_dir)
    entry = {**data.get(key, {}), **fields}
    entry = {k: v for k, v in entry.items() if v}
    if entry:
        data[key] = entry
    else:
        data.pop(key, None)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / ANNOTATIONS, data)
    return data
