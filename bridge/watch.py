"""The "any DAW" hand-off: a watched folder (``segue bridge --watch DIR``) for DAW scripts that cannot use sockets.

Layout, created when missing::

    DIR/requests/*.json      a DAW script drops a region request here (write NAME.json.tmp, then rename it)
    DIR/requests/done/       requests the bridge took (moved, never deleted)
    DIR/requests/failed/     requests it refused, each with NAME.json.error.txt saying why
    DIR/placed/*.json        one file per placed file, for the DAW script to import (any origin: OSC, GUI, folder)
    DIR/status.json          the last job event: {"event", "job_id", "message", "request"}

A request holds ``/segue/region``'s fields by name (or ``/segue/region/stems``' with ``"stems"``) and, in
``"generate"``, what ``/segue/generate`` would say; it becomes those OSC messages, checked by the same table as UDP
input (:class:`bridge.osc.OscBridge`), so the rules and the error messages are the OSC ones. A placed file holds
what ``/segue/place`` says, numbered ``placed/000001.json``, ... after the highest number in ``placed/`` and
``placed/done/``; each is written to a hidden temp file and given its name by a hard link (never over another), so
a reader never sees half a file. The folder is polled (:attr:`poll_s`), which works on every file system. The
formats, with examples: daw_templates/any/README.md (and docs/daw.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.controls import pairs_from_json
from bridge.events import BridgeEvent, Placement
from bridge.osc import OscBridge
from bridge.service import BridgeService
from engine.atomic import write_first_free, write_text
from engine.errors import BadInputError, SegueError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_REQUEST_BYTES = 64 * 1024
_REGION_FIELDS = (  # (name, OSC type, default) in /segue/region's order
    ("audio_path", "s", ""),
    ("midi_path", "s", ""),
    ("start_beats", "f", None),
    ("length_beats", "f", None),
    ("tempo_bpm", "f", None),
    ("meter_num", "i", 4),
    ("meter_den", "i", 4),
    ("track", "s", ""),
)
_PLACED_NAME = re.compile(r"\d{6,}\.json")
_MAX_PLACED_TRIES = 100_000
_GENERATE_FIELDS = (  # /segue/generate's order; parts "" = the model's default set (accompany)
    ("mode", "s", "continue"),
    ("bars", "i", 4),
    ("variants", "i", 2),
    ("parts", "s", ""),
    ("output", "s", "auto"),
)


def request_messages(request: Any) -> list[tuple[str, list[tuple[str, Any]]]]:
    """A request (parsed JSON) as the OSC messages it stands for: ``/segue/region`` and maybe ``/segue/generate``.

    :class:`BadInputError` for what is not an object or lacks a field; types and ranges are checked later by the
    OSC table (a number given as a string is passed on as a string, and refused there by name).
    """
    if not isinstance(request, dict):
        raise BadInputError(f"a request must be a JSON object, got {type(request).__name__}")
    version = request.get("segue", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise BadInputError(f"request format {version!r} is not understood; this bridge reads 'segue': 1")
    known = {name for name, _, _ in _REGION_FIELDS} | {"segue", "generate", "stems"}
    unknown = sorted(set(request) - known)
    if unknown:
        raise BadInputError(f"unknown field(s) {', '.join(unknown)}; a request has {', '.join(sorted(known))}")
    region = _fields(request, _REGION_FIELDS, "request")
    stems = request.get("stems")
    if stems is None:
        messages = [("/segue/region", region)]
    else:
        messages = [("/segue/region/stems", region + _stem_args(stems))]
    generate = request.get("generate")
    if generate is not None:
        if not isinstance(generate, dict):
            raise BadInputError("'generate' must be an object with mode, bars and variants")
        args = _fields(generate, _GENERATE_FIELDS, "generate")
        for key, value in pairs_from_json(generate, [name for name, _, _ in _GENERATE_FIELDS]):
            args += [("s", key), _control_value(key, value)]
        messages.append(("/segue/generate", args))
    return messages


def _stem_args(stems: Any) -> list[tuple[str, Any]]:
    """``"stems": [{"name": "drums", "path": "/abs/drums.wav"}, ...]`` as /segue/region/stems's name/path pairs
    (names, paths and their count are checked by the OSC table, as for OSC)."""
    shape = 'a list of {"name": "drums", "path": "/abs/drums.wav"} objects, one per track'
    if not isinstance(stems, list) or not stems:
        raise BadInputError(f"request: 'stems' must be {shape}, got {_shown(stems)}")
    args: list[tuple[str, Any]] = []
    for index, stem in enumerate(stems, start=1):
        if not isinstance(stem, dict) or set(stem) != {"name", "path"}:
            raise BadInputError(f"request: stem {index} must be an object with a name and a path ({shape}), got "
                                f"{_shown(stem)}")  # fmt: skip
        for key in ("name", "path"):
            if not isinstance(stem[key], str):
                raise BadInputError(f"request: the {key} of stem {index} must be a string, got {_shown(stem[key])}")
        args += [("s", stem["name"]), ("s", stem["path"])]
    return args


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def _fields(values: dict[str, Any], fields: tuple[tuple[str, str, Any], ...], what: str) -> list[tuple[str, Any]]:
    args = []
    for name, kind, default in fields:
        value = values.get(name, default)
        if value is None:
            raise BadInputError(f"{what}: the field {name!r} is missing")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadInputError(f"{what}: {name!r} must be a {'string' if kind == 's' else 'number'}, got {value!r}")
        if isinstance(value, str):
            kind = "s"  # refused by the OSC table, naming the argument, where a number belongs
        elif kind == "s":
            raise BadInputError(f"{what}: {name!r} must be a string, got {value!r}")
        elif kind == "i" and isinstance(value, float):
            kind = "f"  # 4.0 is accepted as 4 by the table, 4.5 refused
        elif kind == "f":
            value = float(value)
        args.append((kind, value))
    return args


def _control_value(key: str, value: Any) -> tuple[str, Any]:
    """A control's JSON value as an OSC argument (checked by the OSC table, which names the key)."""
    if isinstance(value, bool):
        return ("T" if value else "F", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, (float, str)):
        return ("f" if isinstance(value, float) else "s", value)
    raise BadInputError(f"generate: {key!r} must be a number or true/false, got {value!r}")


def placement_record(event: Placement) -> dict[str, Any]:
    """What a placed-file JSON holds for ``event``."""
    return {
        "segue": FORMAT_VERSION,
        "job_id": event.job_id,
        "variant_id": event.variant_id,
        "file_path": str(event.file_path),
        "position_beats": event.position_beats,
        "position_seconds": event.position_seconds,
        "track_name": event.track_name,
        "kind": event.kind,
    }


class WatchFolder:
    """Poll ``folder/requests`` for region requests and write ``folder/placed`` for every placement.

    :meth:`start` makes the folders and the polling thread; :meth:`close` stops it (twice is fine). Events come
    from the service (any thread); files are written right away, each atomically.
    """

    def __init__(self, service: BridgeService, folder: Path, poll_s: float = 0.25) -> None:
        self.service = service
        self.folder = folder
        self.poll_s = poll_s
        self.requests = folder / "requests"
        self.placed = folder / "placed"
        self._osc = OscBridge(service)  # the OSC table's checks; its replies come to _on_reply
        self._osc.attach(self._on_reply)
        self._lock = threading.Lock()
        self._counter = 0
        self._errors: dict[str, list[str]] = {}  # request name -> /segue/error messages while it is handled
        self._current: str | None = None
        self._stuck: set[str] = set()  # requests that could not be moved away: not read again
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        service.add_listener(self.on_event)

    def start(self) -> None:
        try:
            for sub in (self.requests / "done", self.requests / "failed", self.placed / "done"):
                sub.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BadInputError(f"--watch {self.folder}: cannot create its folders: {e.strerror or e}") from e
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="segue-watch", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self.service.remove_listener(self.on_event)
        self.service.remove_listener(self._osc.on_event)
        if self._thread is not None:
            self._thread.join(5.0)

    # -- requests in --------------------------------------------------------------------------------------

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception:  # the poller must survive anything one file does
                log.exception("watch folder: scanning %s failed", self.requests)
            self._stop.wait(self.poll_s)

    def scan(self) -> int:
        """Handle every ``requests/*.json`` there is now, oldest name first; returns how many."""
        try:
            names = sorted(
                p.name
                for p in self.requests.iterdir()
                if p.suffix == ".json" and p.is_file() and p.name not in self._stuck
            )
        except OSError as e:
            log.warning("watch folder: cannot list %s: %s", self.requests, e.strerror or e)
            return 0
        for name in names:
            self.handle_request(self.requests / name)
        return len(names)

    def handle_request(self, path: Path) -> bool:
        """Read, check and submit one request; move it to ``done/`` or ``failed/``. True if it was taken."""
        sender = (f"watch:{path.name}", 0)
        problem = ""
        try:
            if path.stat().st_size > MAX_REQUEST_BYTES:
                raise BadInputError(f"the file is larger than {MAX_REQUEST_BYTES} bytes; not a Segue request")
            messages = request_messages(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, BadInputError) as e:
            problem = str(e)
        else:
            with self._lock:
                self._current = path.name
                self._errors[path.name] = []
            try:
                for address, args in messages:
                    builder = OscMessageBuilder(address=address)
                    for kind, value in args:
                        builder.add_arg(value, kind)
                    self._osc.dispatch(sender, OscMessage(builder.build().dgram))
                    with self._lock:
                        if self._errors[path.name]:
                            break
            finally:
                with self._lock:
                    self._current = None
                    problem = "; ".join(self._errors.pop(path.name, []))
        if problem:
            log.warning("watch folder: refused %s: %s", path.name, problem)
            self._move(path, self.requests / "failed")
            # the status first: a DAW script that sees the .error.txt finds the status already saying so
            self._write_status({"event": "error", "job_id": "", "message": problem, "request": path.name})
            self._write_text(self.requests / "failed" / f"{path.name}.error.txt", problem + "\n")
            return False
        log.info("watch folder: took %s", path.name)
        self._move(path, self.requests / "done")
        return True

    def _on_reply(self, to: tuple[str, int], address: str, args: Any) -> None:
        """Replies of the OSC table: errors for the request being handled; job events of folder requests."""
        name = to[0][len("watch:") :] if to[0].startswith("watch:") else None
        if name is None:
            return
        message = str(args[-1]) if args else ""
        with self._lock:
            if address == "/segue/error" and name == self._current and name in self._errors:
                self._errors[name].append(message)
                return
        events = {"/segue/job/started": "started", "/segue/job/done": "done", "/segue/job/failed": "failed"}
        if address in events:
            self._write_status({"event": events[address], "job_id": str(args[0]), "message": message, "request": name})
        elif address == "/segue/error":
            self._write_status({"event": "error", "job_id": "", "message": message, "request": name})

    # -- placements out -----------------------------------------------------------------------------------

    def on_event(self, event: BridgeEvent) -> None:
        if isinstance(event, Placement):
            self.write_placement(event)

    def write_placement(self, event: Placement) -> Path | None:
        """Write ``placed/NNNNNN.json`` for ``event`` under the next free number; None (logged) if it cannot."""
        data = (json.dumps(placement_record(event), ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:  # one number at a time, so that the numbers have no gaps
            if self._counter == 0:
                self._counter = self._highest_placed()

            def free_names() -> Iterator[str]:
                for number in range(self._counter + 1, self._counter + _MAX_PLACED_TRIES):
                    name = f"{number:06d}.json"
                    if not (self.placed / "done" / name).exists():
                        yield name

            try:
                target = write_first_free(self.placed, free_names(), lambda out: out.write(data))
            except SegueError as e:  # a full disk included: the placement is logged, the bridge goes on
                log.warning("watch folder: cannot write in %s: %s", self.placed, e)
                return None
            if target is None:
                log.warning("watch folder: no free placement number in %s", self.placed)
                return None
            self._counter = int(target.stem)
            return target

    def _highest_placed(self) -> int:
        numbers = [0]
        for folder in (self.placed, self.placed / "done"):
            with contextlib.suppress(OSError):
                numbers += [int(p.stem) for p in folder.iterdir() if _PLACED_NAME.fullmatch(p.name)]
        return max(numbers)

    # -- files --------------------------------------------------------------------------------------------

    def _write_status(self, status: dict[str, Any]) -> None:
        self._write_text(self.folder / "status.json", json.dumps({"segue": FORMAT_VERSION, **status}) + "\n")

    def _write_text(self, target: Path, text: str) -> Path | None:
        try:
            return write_text(target, text)
        except SegueError as e:  # a full disk included: logged, the bridge goes on
            log.warning("watch folder: cannot write %s: %s", target, e)
            return None

    def _move(self, path: Path, folder: Path) -> None:
        """Move ``path`` into ``folder`` under a free name (``NAME``, ``NAME-2``...); never overwrites."""
        for number in range(1, 1000):
            target = folder / (path.name if number == 1 else f"{path.stem}-{number}{path.suffix}")
            try:
                os.link(path, target)
            except FileExistsError:
                continue
            except OSError:  # no hard links here (some network or FAT mounts)
                if target.exists():
                    continue
                try:
                    os.rename(path, target)
                except OSError as e:
                    log.warning("watch folder: cannot move %s to %s: %s", path.name, folder, e.strerror or e)
                    self._stuck.add(path.name)
                return
            path.unlink(missing_ok=True)
            return
        log.warning("watch folder: %s holds 999 copies of %s; leaving it", folder, path.name)
