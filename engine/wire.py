"""What the remote engine's server and client send each other: requests and results as JSON, file checks.

No torch, no HTTP here: :mod:`engine.server` and :mod:`engine.remote` share these functions so both ends agree.
A request travels as JSON without its file paths (the files are uploaded beside it); a result travels as
:func:`engine.api.to_jsonable` makes it and comes back as the same frozen dataclasses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, Literal, cast

from engine.api import (
    MAX_STEMS,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    Kind,
    Meter,
    Mode,
    ModelInfo,
    Prompt,
    RegionInfo,
    VariantResult,
    controls_of,
)
from engine.errors import BadInputError

API_PREFIX = "/v1"
JOB_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,95}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)
# a result file's path relative to the job folder: v01/continuation.mid, v01/stems/piano.wav
_RESULT_PATH = re.compile(r"^v[0-9]{2,3}/(?:stems/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
UploadKind = Literal["midi", "audio"]
MIDI_SUFFIX = ".mid"


def request_to_json(request: GenerationRequest) -> dict[str, Any]:
    """The request without its file paths: the files travel as uploads."""
    prompt, params = request.prompt, request.params
    return {
        "mode": params.mode,
        "bars": params.bars,
        "variants": params.variants,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "seed": params.seed,
        "parts": list(params.parts),
        "output": params.output,
        # the producer's controls; null: the engine's default (a server older than these ignores them)
        **controls_of(params),
        "model": request.model,
        "sample_rate": request.sample_rate,
        "tempo_bpm": prompt.tempo_bpm,
        "meter": str(prompt.meter) if prompt.meter is not None else None,
        "length_beats": prompt.length_beats,
        "start_beats": prompt.start_beats,
        # the stems' names, in the order of the "stem" uploads (one file per stem); absent: no stems
        **({"stems": [name for name, _ in prompt.stems]} if prompt.stems else {}),
    }


def _parts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInputError(f"parts must be a list of part names, got {value!r}")
    return tuple(value)


def _part_density(value: Any) -> tuple[tuple[str, float], ...]:
    """``{"bass": 0.5}`` as ``(("bass", 0.5),)``; GenerationParams checks the names and factors."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise BadInputError(f"part_density must be an object {{part: factor}}, got {value!r}")
    return tuple(value.items())


def stem_names(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The request's ``stems``: the names of the stems, in the order their files are uploaded (``()`` when there
    are none). Only the shape is checked here; the names and their count are :class:`engine.api.Prompt`'s."""
    names = data.get("stems", [])
    if names is None:
        return ()
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadInputError(f'stems must be a list of stem names (e.g. ["drums", "bass"]), got {names!r}'[:300])
    if len(names) > MAX_STEMS:  # before anything is stored: Prompt says the same
        raise BadInputError(f"at most {MAX_STEMS} stems per region, got {len(names)}")
    return tuple(names)


def request_from_json(
    data: Mapping[str, Any], midi_path: Any = None, audio_path: Any = None, stem_paths: Sequence[Any] = ()
) -> GenerationRequest:
    """Rebuild a request around the server's own copies of the uploaded files (``stem_paths``: one per name in
    ``data["stems"]``, in that order); :class:`BadInputError` says what is wrong (the dataclasses check every
    value)."""
    names = stem_names(data)
    if len(names) != len(stem_paths):
        raise BadInputError(
            f"the request names {len(names)} stem(s) ({', '.join(names) or 'none'}) and {len(stem_paths)} stem "
            "file(s) came with it: upload one 'stem' file per name, in the same order"
        )
    meter = data.get("meter")
    sample_rate = data.get("sample_rate")
    if sample_rate is not None and (
        isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 192_000
    ):
        raise BadInputError(f"sample_rate must be a whole number of Hz in 8000..192000, got {sample_rate!r}")
    try:
        params = GenerationParams(
            mode=data.get("mode", "continue"),
            bars=data.get("bars", 4),
            variants=data.get("variants", 4),
            temperature=float(data.get("temperature", 1.0)),
            top_p=float(data.get("top_p", 0.95)),
            seed=data.get("seed"),
            parts=_parts(data.get("parts", [])),
            output=data.get("output", "auto"),
            similarity=data.get("similarity"),
            keep_opening=data.get("keep_opening"),
            density=data.get("density"),
            part_density=_part_density(data.get("part_density")),
            hold_notes=data.get("hold_notes"),
            end_on_tonic=data.get("end_on_tonic"),
        )
        prompt = Prompt(
            midi_path=midi_path,
            audio_path=audio_path,
            tempo_bpm=_float_or_none(data.get("tempo_bpm"), "tempo_bpm"),
            meter=Meter.parse(meter) if isinstance(meter, str) else None,
            length_beats=_float_or_none(data.get("length_beats"), "length_beats"),
            start_beats=_float_or_none(data.get("start_beats"), "start_beats"),
            stems=tuple(zip(names, stem_paths, strict=True)),
        )
    except (TypeError, ValueError, OverflowError) as e:  # OverflowError: float() of a 400-digit integer
        if isinstance(e, BadInputError):
            raise
        raise BadInputError(f"bad request parameter: {e}") from e
    model = data.get("model", "default")
    if not isinstance(model, str):
        raise BadInputError(f"model must be a model name, got {model!r}")
    return GenerationRequest(prompt=prompt, params=params, model=model, sample_rate=sample_rate)


MAX_REQUEST_CHARS = 64 * 1024  # a request is a few hundred characters of JSON
MAX_REQUEST_DEPTH = 8  # {"part_density": {"bass": 0.5}} is 2 deep


def parse_request_json(text: str) -> dict[str, Any]:
    """The ``request`` form field as a JSON object; :class:`BadInputError` says what is wrong. Refused before
    anything uses them: more than :data:`MAX_REQUEST_CHARS` characters, ``NaN``/``Infinity`` (not JSON, though
    Python's parser takes them), nesting deeper than :data:`MAX_REQUEST_DEPTH` (5000 levels would exhaust the
    parser's recursion), integers too long to convert."""
    if len(text) > MAX_REQUEST_CHARS:
        raise BadInputError(f"the 'request' field is {len(text)} characters long; the limit is {MAX_REQUEST_CHARS}")

    def no_constants(name: str) -> Any:
        raise BadInputError(f"the 'request' field holds {name}, which is not a JSON number; send a finite number")

    try:
        data = json.loads(text, parse_constant=no_constants)
    except RecursionError as e:
        raise BadInputError(f"the 'request' field is nested too deeply (at most {MAX_REQUEST_DEPTH} levels)") from e
    except json.JSONDecodeError as e:
        raise BadInputError(f"the 'request' field is not JSON: {e}") from e
    except ValueError as e:  # BadInputError from no_constants, or an integer of more than 4300 digits
        if isinstance(e, BadInputError):
            raise
        raise BadInputError("the 'request' field holds a number too long to read") from e
    if not isinstance(data, dict):
        raise BadInputError("the 'request' field must be a JSON object")
    if _depth(data) > MAX_REQUEST_DEPTH:
        raise BadInputError(f"the 'request' field is nested too deeply (at most {MAX_REQUEST_DEPTH} levels)")
    return data


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (iteratively: no recursion limit to hit)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


MIN_TOKEN_CHARS = 16
_TOKEN = re.compile(r"^[!-~]+$")  # printable ASCII, no spaces


def check_token(token: str, where: str) -> None:
    """A bearer token both ends can use: at least :data:`MIN_TOKEN_CHARS` printable ASCII characters and no
    spaces. HTTP drops spaces at the ends of a header (so the server sees another token than the one given),
    some servers split the header at inner ones, and anything else cannot travel in a header at all: such a
    token could never work, so ``where`` (the server's settings, the client) refuses it with
    :class:`BadInputError`."""
    problem = ""
    if not isinstance(token, str):
        problem = f"it is {type(token).__name__}, not text"
    elif token != token.strip():
        problem = "it starts or ends with a space or another blank, which HTTP drops on the way"
    elif not _TOKEN.match(token):
        problem = "it holds a space, a control character or a non-ASCII character, which cannot travel in a header"
    elif len(token) < MIN_TOKEN_CHARS:
        problem = f"it has {len(token)}"
    if problem:
        raise BadInputError(
            f"{where}: the token must be at least {MIN_TOKEN_CHARS} printable ASCII characters without spaces "
            f"({problem})"
        )


def _float_or_none(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInputError(f"{name} must be a number or null, got {value!r}")
    try:
        return float(value)
    except OverflowError as e:  # an integer of hundreds of digits
        raise BadInputError(f"{name} must be a finite number, got an integer too large for one") from e


def result_from_json(data: Mapping[str, Any]) -> GenerationResult:
    """The inverse of ``to_jsonable(result)``; :class:`BadInputError` if the server sent something else."""
    try:
        region = data["region"]
        return GenerationResult(
            kind=cast(Kind, data["kind"]),
            mode=cast(Mode, data["mode"]),
            model=str(data["model"]),
            region=RegionInfo(
                tempo_bpm=float(region["tempo_bpm"]),
                meter=Meter.parse(str(region["meter"])),
                length_beats=float(region["length_beats"]),
                length_bars=int(region["length_bars"]),
                sample_rate=int(region["sample_rate"]),
                parts=tuple(str(p) for p in region.get("parts", ())),
                notes=str(region.get("notes", "")),
            ),
            place_at_beats=float(data["place_at_beats"]),
            place_at_seconds=float(data["place_at_seconds"]),
            variants=tuple(
                VariantResult(
                    id=str(v["id"]),
                    seed=int(v["seed"]),
                    files={str(k): str(p) for k, p in v["files"].items()},
                    duration_seconds=float(v["duration_seconds"]),
                    parts=tuple(str(p) for p in v.get("parts", ())),
                )
                for v in data["variants"]
            ),
            timings={str(k): float(v) for k, v in data.get("timings", {}).items()},
            file_sources={str(k): str(v) for k, v in data.get("file_sources", {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BadInputError(f"the server's result is not a Segue result: {type(e).__name__}: {e}") from e


def model_from_json(data: Mapping[str, Any]) -> ModelInfo:
    return ModelInfo(
        name=str(data["name"]),
        kind=cast(Kind, data["kind"]),
        path=str(data.get("path", "")),
        description=str(data.get("description", "")),
        parameters=int(data.get("parameters", 0)),
        modes=tuple(cast(Mode, m) for m in data.get("modes", ("continue",))),
        parts=tuple(str(p) for p in data.get("parts", ())),  # servers before ModelInfo.parts send none
    )


def is_job_id(text: str) -> bool:
    return bool(_JOB_ID.match(text))


def check_result_path(path: str) -> PurePosixPath:
    """A result file's path, relative to the job folder: ``vNN/name`` or ``vNN/stems/name``, nothing else
    (no absolute paths, no ``..``, no hidden files). Raises :class:`BadInputError`."""
    if not isinstance(path, str) or not _RESULT_PATH.match(path) or ".." in path.split("/"):
        raise BadInputError(f"not a result file path: {path!r}")
    return PurePosixPath(path)


def sniff_upload(head: bytes) -> tuple[UploadKind, str] | None:
    """The kind and the suffix the server names an upload by, from its first bytes; None if it is neither a
    Standard MIDI File nor WAV (RIFF/RF64), FLAC or AIFF."""
    if head.startswith(b"MThd"):
        return "midi", MIDI_SUFFIX
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "audio", ".wav"
    if head.startswith(b"fLaC"):
        return "audio", ".flac"
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio", ".aiff"
    return None


def check_upload_name(name: str | None) -> None:
    """Uploaded files are stored under names the server picks; a client name that tries to reach elsewhere
    (a path, ``..``, a drive, control characters) is refused all the same, as a sign of a confused client."""
    if not name:
        return
    if (
        "/" in name
        or "\\" in name
        or name in (".", "..")
        or name.startswith("..")
        or ":" in name
        or any(ord(c) < 32 for c in name)
        or len(name) > 255
    ):
        raise BadInputError(f"upload file name {name!r} is not a plain file name; send the file's base name only")
