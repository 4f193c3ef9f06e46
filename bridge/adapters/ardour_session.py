"""Put a WAV file into a **closed** Ardour 7 session: a new audio track holding one region at a given sample.

This is how Segue places a variant into Ardour when Ardour is not running (Ardour 7.3's OSC cannot import files;
a running Ardour imports through a Lua action script, see daw_templates/). It edits the session file the way
Ardour's own import would leave it, which Ardour 7.3 was checked to load, play and export
(tests/integration/test_ardour.py renders the result with ``ardour7-export`` and finds the clip at its sample):

* the file is copied (byte for byte, BWF chunks included) into the session's audio folder
  ``interchange/<session>/audiofiles/``, under a name that is not taken yet (``name-2.wav``... no overwrite);
* one ``<Source>`` per channel (``channel="0"``, ``"1"``...) of that file, a whole-file ``<Region>`` in
  ``<Regions>``, a ``<Playlist>`` with the placed region, and a ``<Route>`` (an audio track with one input per
  channel, unconnected, and outputs wired to the master bus's inputs), with fresh ids above the session's
  ``id-counter``, which is raised past them;
* the session range grows to include the region (and starts at 0 when the session had none);
* the old session file is kept as ``<name>.ardour.segue-bak`` (``-2``, ``-3``... when taken) and the new one is
  written to a temporary file first, then renamed over it.

Ardour 7 stores times as "superclock" ticks (``a<ticks>``, 282 240 000 per second, from the session's
``TempoMap``); a region's length is stored with its position (``a<length>@a<position>``). Sessions from
Ardour 6 or older (sample positions) are refused with a clear error, and so is a WAV whose sample rate differs
from the session's (Ardour would play it at the wrong speed; it resamples only when importing).

The session must be closed: Ardour rewrites its session file when it saves, which would drop the new track.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bridge.adapters.ardour_xml import (
    Clock,
    Ids,
    child,
    extend_session_range,
    playlist_element,
    region_element,
    route_element,
    source_elements,
)
from bridge.bwf import read_bext, read_chunks, read_format
from engine.atomic import write_first_free, write_with
from engine.errors import BadInputError, DiskFullError, EngineError

DEFAULT_SUPERCLOCK_RATE = 282_240_000
MIN_SESSION_VERSION = 7000  # Ardour 7's format: superclock times ("a<ticks>")
MAX_COPIES = 99
BACKUP_SUFFIX = ".segue-bak"
_BAD_NAME_CHARS = re.compile(r"[\x00-\x1f:/\\]+")


@dataclass(frozen=True)
class InsertedTrack:
    """What :func:`insert_audio_file` added: the track, its region, and the copied file (in the session)."""

    session_file: Path
    backup: Path
    audio_file: Path
    track_name: str
    route_id: int
    playlist_id: int
    region_id: int
    source_ids: tuple[int, ...]
    position_samples: int
    length_samples: int
    channels: int
    sample_rate: int


@dataclass(frozen=True)
class WavInfo:
    channels: int
    sample_rate: int
    frames: int


def wav_info(path: Path) -> WavInfo:
    """Channels, rate and length in sample frames of a WAV file; :class:`BadInputError` if it is not usable."""
    chunks = read_chunks(path)
    fmt = read_format(path, chunks)
    data = next((c for c in chunks if c.id == b"data"), None)
    if data is None:
        raise BadInputError(f"{path} has no data chunk; it is not a usable WAV file")
    fmt_chunk = next(c for c in chunks if c.id == b"fmt ")
    with path.open("rb") as f:
        f.seek(fmt_chunk.offset + 12)
        (block_align,) = struct.unpack("<H", f.read(2))
    if fmt.channels < 1 or fmt.sample_rate <= 0 or block_align < 1:
        raise BadInputError(
            f"{path} declares {fmt.channels} channel(s) at {fmt.sample_rate} Hz with {block_align}-byte frames; "
            "it is not a usable WAV file"
        )
    frames = data.size // block_align
    if frames < 1:
        raise BadInputError(f"{path} holds no audio (its data chunk is empty)")
    return WavInfo(fmt.channels, fmt.sample_rate, frames)


def session_file_of(path: Path) -> Path:
    """``path`` itself if it is an ``.ardour`` file, else the session folder's ``<folder name>.ardour`` (or its only
    ``.ardour`` file)."""
    if path.is_file():
        if path.suffix != ".ardour":
            raise BadInputError(f"{path} is not an Ardour session file (*.ardour)")
        return path
    if not path.is_dir():
        raise BadInputError(f"{path} does not exist; give an Ardour session folder or its .ardour file")
    named = path / f"{path.name}.ardour"
    if named.is_file():
        return named
    found = sorted(p for p in path.glob("*.ardour") if p.is_file())
    if len(found) != 1:
        raise BadInputError(
            f"{path} holds {len(found)} .ardour files ({', '.join(p.name for p in found) or 'none'}); "
            "give the session file itself"
        )
    return found[0]


def insert_audio_file(
    session: Path,
    audio: Path,
    *,
    position_samples: int | None = None,
    track_name: str = "Segue",
) -> InsertedTrack:
    """Add ``audio`` (a WAV at the session's sample rate) on a new track named ``track_name`` (made unique) at
    ``position_samples`` on the timeline of the closed Ardour 7 session ``session`` (its folder or .ardour file).

    Without ``position_samples`` the file's BWF ``bext`` time reference is used (what :mod:`bridge.placement`
    writes), and a file without one is refused. Raises :class:`BadInputError` for unusable input (not an Ardour 7
    session, another sample rate, a negative position) and :class:`EngineError` when the files cannot be written.
    """
    session_file = session_file_of(Path(session))
    audio = Path(audio)
    info, position_samples = _audio_at(audio, position_samples)

    tree = _parse(session_file)
    root = tree.getroot()
    rate = _session_rate(root, session_file)
    if info.sample_rate != rate:
        raise BadInputError(
            f"{audio} is at {info.sample_rate} Hz but the session {session_file.name} runs at {rate} Hz; "
            f"render or resample the file at {rate} Hz first (Ardour would play it at the wrong speed)"
        )
    clock = Clock(_superclock_rate(root), rate)
    ids = Ids(root)
    name = _unique_name(_clean_name(track_name), _taken_names(root))

    audio_dir = _audio_dir(session_file, root)
    copied = _copy_new(audio, audio_dir)
    try:
        sources = source_elements(root, copied.name, audio, info.channels, ids)
        whole = region_element(copied.stem, sources, 0, info.frames, clock, ids, whole_file=True)
        placed = region_element(copied.stem + ".1", sources, position_samples, info.frames, clock, ids, False)
        route_id, playlist_id = ids.next(), ids.next()
        playlist = playlist_element(name, playlist_id, route_id, placed)
        route = route_element(root, name, route_id, playlist_id, info.channels, ids)
        child(root, "Sources").extend(sources)
        child(root, "Regions").append(whole)
        child(root, "Playlists").append(playlist)
        child(root, "Routes").append(route)
        extend_session_range(root, position_samples, position_samples + info.frames, clock, ids)
        root.set("id-counter", str(ids.counter))
        backup = _write_session(tree, session_file)
    except BaseException:
        copied.unlink(missing_ok=True)
        raise
    return InsertedTrack(
        session_file=session_file,
        backup=backup,
        audio_file=copied,
        track_name=name,
        route_id=route_id,
        playlist_id=playlist_id,
        region_id=int(placed.get("id", "0")),
        source_ids=tuple(int(s.get("id", "0")) for s in sources),
        position_samples=position_samples,
        length_samples=info.frames,
        channels=info.channels,
        sample_rate=rate,
    )


def _audio_at(audio: Path, position_samples: int | None) -> tuple[WavInfo, int]:
    """The WAV's format and where it goes: ``position_samples`` checked, or (None) the file's BWF time reference;
    :class:`BadInputError` otherwise."""
    if isinstance(position_samples, bool) or (position_samples is not None and not isinstance(position_samples, int)):
        raise BadInputError(f"position_samples must be an int number of samples, got {position_samples!r}")
    info = wav_info(audio)
    if position_samples is None:
        bext = read_bext(audio)
        if bext is None:
            raise BadInputError(
                f"{audio} has no BWF time reference (bext chunk); give the position in samples explicitly"
            )
        position_samples = bext.time_reference
    if position_samples < 0:
        raise BadInputError(f"position_samples must be >= 0 (the session's start), got {position_samples}")
    return info, position_samples


# -- reading the session ------------------------------------------------------------------------------------


def _parse(session_file: Path) -> ET.ElementTree[ET.Element]:
    try:
        tree = ET.parse(session_file)
    except ET.ParseError as e:
        raise BadInputError(f"{session_file} is not a readable Ardour session file: {e}") from e
    except OSError as e:
        raise BadInputError(f"cannot read {session_file}: {e.strerror or e}") from e
    root = tree.getroot()
    if root.tag != "Session":
        raise BadInputError(f"{session_file} is not an Ardour session file (its root is <{root.tag}>)")
    version = root.get("version", "")
    if not version.isdigit() or int(version) < MIN_SESSION_VERSION:
        raise BadInputError(
            f"{session_file} is an Ardour session of format {version or 'unknown'}; Segue edits Ardour 7 sessions "
            f"(format {MIN_SESSION_VERSION} or later): open and save it once in Ardour 7 first"
        )
    return tree


def _session_rate(root: ET.Element, session_file: Path) -> int:
    rate = root.get("sample-rate", "")
    if not rate.isdigit() or int(rate) <= 0:
        raise BadInputError(f"{session_file} has no valid sample-rate ({rate!r})")
    return int(rate)


def _superclock_rate(root: ET.Element) -> int:
    tempo_map = root.find("TempoMap")
    value = tempo_map.get("superclocks-per-second", "") if tempo_map is not None else ""
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_SUPERCLOCK_RATE


def _clean_name(name: str) -> str:
    cleaned = _BAD_NAME_CHARS.sub("-", name).strip()
    return cleaned[:64] or "Segue"


# Ardour's own I/O objects: a track with one of these names cannot register its JACK ports, and the session then
# fails to load ("unable to create port 'Click/audio_out 1'", seen with Ardour 7.3 on JACK).
ARDOUR_RESERVED_NAMES = frozenset({"Click", "Master", "Monitor", "Auditioner", "LTC", "Control", "Surround"})


def _taken_names(root: ET.Element) -> set[str]:
    names = {r.get("name", "") for r in root.iter("Route")} | ARDOUR_RESERVED_NAMES
    names |= {p.get("name", "") for p in root.iter("Playlist")}
    return names


def _unique_name(name: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    if name not in taken:
        return name
    for number in range(2, 1000):
        candidate = f"{name} {number}"
        if candidate not in taken:
            return candidate
    raise BadInputError(f"the session already has tracks named {name!r} up to {name} 999; choose another name")


def _audio_dir(session_file: Path, root: ET.Element) -> Path:
    """``interchange/<session name>/audiofiles`` (Ardour's own folder for the session's audio), made if needed."""
    interchange = session_file.parent / "interchange"
    candidates = [interchange / session_file.stem, interchange / root.get("name", session_file.stem)]
    existing = sorted(p for p in interchange.glob("*/audiofiles") if p.is_dir()) if interchange.is_dir() else []
    for candidate in candidates:
        if (candidate / "audiofiles").is_dir():
            return candidate / "audiofiles"
    if len(existing) == 1:
        return existing[0]
    target = candidates[0] / "audiofiles"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EngineError(f"cannot create {target}: {e.strerror or e}; check the session folder is writable") from e
    return target


# -- writing ------------------------------------------------------------------------------------------------


def _copy_new(source: Path, folder: Path) -> Path:
    """Copy ``source`` into ``folder`` under its own name or ``<stem>-N<suffix>``; never overwrites."""
    names = (f"{source.stem}{'' if n == 1 else f'-{n}'}{source.suffix or '.wav'}" for n in range(1, MAX_COPIES + 1))
    try:
        with source.open("rb") as src:
            target = write_first_free(folder, names, lambda out: shutil.copyfileobj(src, out, 1 << 20))
    except OSError as e:
        raise EngineError(f"could not copy {source} into {folder}: {e.strerror or e}") from e
    if target is not None:
        return target
    raise EngineError(f"{folder} already holds {source.name} and {MAX_COPIES - 1} numbered copies; rename the file")


def _claim(tmp: Path, target: Path) -> bool:
    """Give ``tmp``'s content the name ``target`` if it is free (a hard link; else create-exclusive + rename)."""
    try:
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    except OSError:
        try:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            return False
        try:
            shutil.copyfile(tmp, target)
        except OSError:
            target.unlink(missing_ok=True)
            raise
        return True


def _write_session(tree: ET.ElementTree[ET.Element], session_file: Path) -> Path:
    """Keep the old file as a numbered backup, then write the new one atomically; returns the backup's path."""
    backup = None
    for number in range(1, MAX_COPIES + 1):
        candidate = session_file.with_name(f"{session_file.name}{BACKUP_SUFFIX}{'' if number == 1 else f'-{number}'}")
        if _claim(session_file, candidate):
            backup = candidate
            break
    if backup is None:
        raise EngineError(f"{session_file.parent} holds {MAX_COPIES} Segue backups of {session_file.name}; remove some")

    def fill(tmp: Path) -> None:
        with tmp.open("xb") as out:
            tree.write(out, encoding="UTF-8", xml_declaration=True)
            out.write(b"\n")
        with contextlib.suppress(OSError):
            shutil.copymode(session_file, tmp)

    try:
        write_with(session_file, fill)
    except DiskFullError:
        raise
    except (OSError, EngineError) as e:
        raise EngineError(f"could not write {session_file}: {e} (the original is in {backup})") from e
    return backup
