"""The ``segue`` command line (see shared/DESIGN.md). The console script points at :func:`main`.

Only this module prints. It uses the engine through :mod:`engine.api` alone and imports no torch, so
``segue --help`` starts fast. Exit codes: 0 done, 2 bad input, 1 engine failure, 130 cancelled (Ctrl-C).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge import controls, segue_version
from bridge.capture.options import (
    DEFAULT_WAIT_START_S,
    MAX_CAPTURE_BARS,
    TakeOptions,
    TakeResult,
    check_out_path,
    default_capture_path,
)
from bridge.capture.take import record_take
from bridge.daemon import DAW_ADAPTERS, BridgeOptions, BridgeRunning, midi_ports_check, serve
from bridge.inputs import ACCEPTED_FORMATS, RegionFiles, classify_inputs, sniff_format
from bridge.jobs import JOB_FILE, JobRecord, job_to_json, list_jobs, recover_jobs
from bridge.osc import DEFAULT_HOST, DEFAULT_PORT
from bridge.progress import ProgressPrinter
from bridge.runner import create_job, execute_job, mark_stopped
from bridge.service import PLACE_POLICIES
from bridge.sound_devices import audio_inputs_check
from engine import api, entrypoints
from engine.api import MAX_STEMS, OUTPUTS, CancelToken, Engine, GenerationParams, GenerationRequest, Meter, Prompt
from engine.errors import BadInputError, SegueError
from engine.provenance.record import ProvenanceSettings
from engine.provenance.report import format_report, inspect_file

log = logging.getLogger(__name__)

EngineFactory = Callable[..., Engine]
"""``factory(spec, **options) -> Engine``, like :func:`engine.entrypoints.open_engine` (tests pass a fake)."""

DEFAULT_OUT = Path("segue-jobs")
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130
_EXIT_BY_STATUS = {"done": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
_TRACEBACK_HINT = "run again with --verbose (or SEGUE_DEBUG=1) to see the traceback"
_LATER: dict[str, str] = {}  # commands announced but not built yet: name -> what it will be


def main(
    argv: list[str] | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    bridge_ready: Callable[[BridgeRunning], None] | None = None,
) -> int:
    """Run ``segue`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    ``bridge_ready`` (for tests and embedding) is called on the main thread once ``segue bridge`` listens.
    """
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.command not in _LATER:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help, --version, or a usage error (argparse says what, exit 2)
        return e.code if isinstance(e.code, int) else EXIT_BAD_INPUT
    verbose = bool(args.verbose) or os.environ.get("SEGUE_DEBUG", "") not in ("", "0")
    _setup_logging(verbose)
    factory = engine_factory or entrypoints.open_engine
    args.bridge_ready = bridge_ready
    handler: Callable[[argparse.Namespace, EngineFactory], int] = args.handler
    try:
        return handler(args, factory)
    except BadInputError as e:
        log.debug("bad input", exc_info=True)
        _err(f"segue: error: {e}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _err("segue: interrupted")
        return EXIT_CANCELLED
    except Exception as e:
        log.debug("command failed", exc_info=True)
        what = str(e) if isinstance(e, SegueError) else f"unexpected error: {type(e).__name__}: {e}"
        _err(f"segue: error: {what}")
        if not verbose:
            _err(f"segue: {_TRACEBACK_HINT}")
        return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    defaults = GenerationParams()
    parser = argparse.ArgumentParser(
        prog="segue",
        description="Continue a DAW region with a neural engine; audition and place the variants.",
        epilog="Exit codes: 0 done, 2 bad input, 1 engine failure, 130 cancelled.",
    )
    parser.add_argument("--version", action="version", version=f"segue {segue_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details and tracebacks to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    p = sub.add_parser("continue", parents=[common], help="continue a region (MIDI and/or audio)")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help=ACCEPTED_FORMATS + " of one region")
    p.add_argument(
        "--stems",
        action="store_true",
        help="every INPUT is one track's audio of the same region (segue continue drums.wav bass.wav keys.wav "
        f"--stems --tempo 120): continued together, each comes back as a stem beside the mix; named after its file "
        f"(drums.wav: drums; lowercased, other characters as '-'), at most {MAX_STEMS}",
    )
    p.add_argument(
        "--mode",
        choices=("continue", "accompany"),
        default=defaults.mode,
        help="continue: the bars after the region; accompany: new parts under the region's own bars, placed at "
        "its start (%(default)s)",
    )
    p.add_argument(
        "--parts",
        metavar="P1,P2",
        help="with --mode accompany: the parts to write, comma-separated, e.g. bass,piano (default: the model's "
        "own set; `segue models` lists the parts each model knows)",
    )
    p.add_argument(
        "--as",
        dest="output",
        choices=OUTPUTS,
        default=defaults.output,
        help="what an audio region becomes: audio (the audio engine continues the sound), midi (transcribed, then "
        "MIDI, stems and a rendered mix), both, or auto (audio when an audio model is installed, else midi; "
        "%(default)s). MIDI regions are always MIDI jobs",
    )
    p.add_argument(
        "--bars",
        type=int,
        default=defaults.bars,
        help="length of each variant in bars (%(default)s; accompany writes the region's own bars)",
    )
    p.add_argument("--variants", type=int, default=defaults.variants, help="how many variants (%(default)s)")
    p.add_argument("--tempo", type=float, metavar="BPM", help="override the MIDI file's tempo (needed for audio)")
    p.add_argument("--meter", metavar="N/D", help="override the MIDI file's time signature, e.g. 6/8")
    p.add_argument("--model", default="default", help="model name or checkpoint folder (see `segue models`)")
    p.add_argument("--temperature", type=float, default=defaults.temperature, help="(%(default)s)")
    p.add_argument("--top-p", type=float, default=defaults.top_p, help="(%(default)s)")
    p.add_argument("--seed", type=int, help="variants get seeds S, S+1, ... (default: random, stored)")
    controls.add_arguments(p)
    _add_engine_args(p)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for job folders (./%(default)s)")
    p.add_argument("--json", action="store_true", help="print the job manifest (job.json) on stdout")
    _add_provenance_args(p)
    p.set_defaults(handler=cmd_continue)

    p = sub.add_parser(
        "provenance", parents=[common], help="what a WAV or MIDI file says about where it came from, and whether "
        "its C2PA signature holds (exit 1 when it does not, or the file has no Segue record)"
    )  # fmt: skip
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a WAV or MIDI file Segue wrote")
    p.add_argument("--json", action="store_true", help="print what was found as JSON")
    p.set_defaults(handler=cmd_provenance)

    p = sub.add_parser("models", parents=[common], help="list installed models")
    _add_engine_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("doctor", parents=[common], help="check torch, device, soundfont, models and MIDI ports")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_doctor)

    p = sub.add_parser("jobs", parents=[common], help="list the jobs in an output folder")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the folder given to `segue continue --out`")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_jobs)

    p = sub.add_parser(
        "eval", parents=[common], help="score a job folder: length, tempo, meter, key, grid, loudness, join, variety"
    )
    p.add_argument("job_dir", type=Path, metavar="JOB_DIR", help="a folder written by `segue continue`")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 when any check fails")
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("bridge", parents=[common], help="the headless DAW bridge: Segue's OSC on UDP (Ctrl-C stops)")
    p.add_argument("--osc-host", default=DEFAULT_HOST, help="address to listen on (%(default)s)")
    p.add_argument("--osc-port", type=int, default=DEFAULT_PORT, help="UDP port; 0: any free one (%(default)s)")
    p.add_argument(
        "--daw",
        choices=DAW_ADAPTERS,
        default="generic",
        help="the DAW's OSC dialect: 'generic' (Segue's own addresses), or the DAW's own OSC for transport and "
        "position: 'ardour', 'reaper', 'live' (Ableton Live with the AbletonOSC remote script), 'bitwig' "
        "(Bitwig with DrivenByMoss's OSC controller), or 'link' (the Segue Link plugin on a track: placed variants "
        "play through it, in sync with the DAW)",
    )
    p.add_argument(
        "--daw-host",
        default=None,
        help="generic: send replies and job events here instead of to the sender; ardour/reaper/live/bitwig: the "
        "DAW's OSC host (127.0.0.1)",
    )
    p.add_argument(
        "--daw-port",
        type=int,
        default=None,
        help="UDP port for --daw-host (required with it for generic; by default ardour 3819, reaper 8000, "
        "live 11000, bitwig 8000)",
    )
    p.add_argument(
        "--midi-clock-in",
        metavar="PORT",
        help="follow MIDI clock (tempo, play/stop, position) from this MIDI input; backend from $MIDO_BACKEND",
    )
    _add_engine_args(p)
    p.add_argument("--model", default="default", help="model name or checkpoint folder (see `segue models`)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for job folders (./%(default)s)")
    p.add_argument(
        "--place",
        choices=PLACE_POLICIES,
        default="first",
        help="which variants to place by itself when a job is done (%(default)s)",
    )
    p.add_argument(
        "--capture-input",
        metavar="DEVICE",
        help="audio input for /segue/capture/arm (a name or number from `segue doctor`; default: the default "
        "input); takes go to OUT/captures/ and become the current region",
    )
    p.add_argument("--capture-channels", type=int, metavar="N", help="input channels to record (default: up to 2)")
    p.add_argument(
        "--capture-latency-frames",
        type=int,
        default=0,
        metavar="F",
        help="the DAW's output latency for captures (see `segue capture --help`; Ardour: -2048)",
    )
    p.add_argument("--capture-meter", default="4/4", metavar="N/D", help="the meter of captures (%(default)s)")
    p.add_argument(
        "--watch",
        type=Path,
        metavar="DIR",
        help="also take region requests from DIR/requests/*.json and write a JSON per placed file to DIR/placed/ "
        "(for DAW scripts that cannot send OSC, e.g. REAPER's; see daw_templates/any/README.md)",
    )
    _add_provenance_args(p)
    p.set_defaults(handler=cmd_bridge)

    p = sub.add_parser(
        "capture",
        parents=[common],
        help="record the DAW's output while it plays, cut to whole bars by its MIDI clock (Ctrl-C cancels)",
        description="Arm, then press play in the DAW: MIDI clock Start begins the take, the DAW's Stop (or --bars "
        "whole bars) ends it. The take is cut from the first bar line at or after the start to the last whole "
        "bar, with the DAW's output latency accounted for, and written as a new 24-bit WAV at the device's rate "
        "(never over an existing file). Then: segue continue FILE --tempo BPM.",
    )
    p.add_argument(
        "--bars", type=int, help=f"stop after N whole bars (default: at the DAW's Stop; at most {MAX_CAPTURE_BARS})"
    )
    p.add_argument(
        "--midi-clock-in",
        metavar="PORT",
        required=True,
        help="the MIDI input the DAW sends clock to (see `segue doctor`); backend from $MIDO_BACKEND",
    )
    p.add_argument(
        "--input",
        metavar="DEVICE",
        help="audio input: a name (or part of one) or a number from `segue doctor` (default: the default input). "
        "On JACK, PortAudio's device 'system' records system:capture_*; connect the DAW's outputs to "
        "PortAudio:in_* or name a JACK client (e.g. 'ardour') to have it connected",
    )
    p.add_argument("--channels", type=int, metavar="N", help="input channels to record (default: up to 2)")
    p.add_argument(
        "--latency-frames",
        type=int,
        default=0,
        metavar="F",
        help="frame at which the audio is heard minus frame at which the clock says so: positive when the audio "
        "comes later than the clock, negative when earlier (Ardour 7 on JACK: -2048; jack_midi_clock: 0)",
    )
    p.add_argument("--meter", default="4/4", metavar="N/D", help="the meter, for the bar lines (%(default)s)")
    p.add_argument("--rate", type=int, metavar="HZ", help="require this sample rate (default: the device's own)")
    p.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_START_S,
        metavar="S",
        help="give up when the DAW has not started within S seconds (%(default)g)",
    )
    p.add_argument("--out", type=Path, help="the WAV to write (default: ./capture-DATE-TIME.wav); never overwritten")
    p.add_argument("--json", action="store_true", help="print the take's details as JSON on stdout")
    p.set_defaults(handler=cmd_capture)

    p = sub.add_parser(
        "train", help="train a model on your own data: segue train symbolic|audio|accompany --data DIR --out DIR"
    )
    p.add_argument(
        "kind",
        choices=("symbolic", "audio", "accompany"),
        help="symbolic: a MIDI model from MIDI files; audio: a codec, then a prior, from audio files; "
        "accompany: an accompany model from multi-part MIDI files (`segue train KIND --help` lists its options)",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="--data DIR --out DIR and the trainer's options")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("gui", parents=[common], help="the desktop app (needs the gui extra: PyQt6)")
    p.add_argument("--out", type=Path, help="the jobs folder (default: the app's own, kept in its settings)")
    p.add_argument("--engine", metavar="local|URL", help="where the model runs (default: the app's setting)")
    p.add_argument("--osc-port", type=int, help="UDP port of the embedded bridge (default: the app's setting, 9750)")
    p.add_argument("--settings", type=Path, help="the settings file (default: in the user's config folder)")
    p.add_argument("--screenshot", type=Path, metavar="PNG", help="render the window with demo variants, save, exit")
    p.add_argument("--demo-job", type=Path, metavar="DIR", help="with --screenshot: show this job folder's variants")
    p.set_defaults(handler=cmd_gui)

    p = sub.add_parser(
        "serve",
        parents=[common],
        help="run the engine as an HTTP server for Segue on other computers (docs/remote.md; Ctrl-C stops)",
        description="Serve this machine's engine over HTTP: submit jobs, follow their progress, cancel, download. "
        "Listens on 127.0.0.1 unless --host says otherwise, and any other address needs --token. Jobs are kept "
        "in --data; a restart keeps finished jobs and fails the ones it interrupted.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s; 0.0.0.0: every one)")
    p.add_argument("--port", type=int, default=8750, help="TCP port; 0: any free one (%(default)s)")
    p.add_argument(
        "--token",
        default=os.environ.get("SEGUE_TOKEN"),
        help="the bearer token clients must send ($SEGUE_TOKEN, which keeps it out of the process list); "
        "required unless --host is a loopback address",
    )
    p.add_argument(
        "--devices",
        metavar="cpu|cuda:0,cuda:1",
        help="one worker per device, comma-separated (default: every CUDA device, else cpu)",
    )
    p.add_argument("--data", type=Path, metavar="DIR", help="where jobs are kept (default: the user's data folder)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest region upload (%(default)g MiB)")
    p.add_argument(
        "--keep-days",
        type=float,
        default=7.0,
        help="delete finished jobs this long after they finished; clients delete theirs once downloaded "
        "(%(default)g)",
    )
    p.add_argument(
        "--server-id",
        default="",
        metavar="NAME",
        help="prefix of this server's job ids (a-z, 0-9), for a load balancer that routes by job id",
    )
    p.set_defaults(handler=cmd_serve)

    for name, what in _LATER.items():
        p = sub.add_parser(name, help=f"{what} (not available in this version yet)")
        p.set_defaults(handler=cmd_not_yet)
    return parser


def _add_provenance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-region-name",
        action="store_true",
        help="leave the region's file name out of the files' provenance (its SHA-256 stays; the 'generated' mark "
        "always stays)",
    )
    p.add_argument(
        "--no-sign", action="store_true", help="write no C2PA manifest (bext, iXML and MIDI meta events are kept)"
    )


def provenance_settings(args: argparse.Namespace) -> ProvenanceSettings:
    """The provenance settings file and ``SEGUE_PROVENANCE_*``, then ``--no-region-name``/``--no-sign``."""
    settings = ProvenanceSettings.load()
    if getattr(args, "no_region_name", False):
        settings = dataclasses.replace(settings, region_name=False)
    if getattr(args, "no_sign", False):
        settings = dataclasses.replace(settings, sign=False)
    return settings


def cmd_provenance(args: argparse.Namespace, factory: EngineFactory) -> int:
    """Print what each file carries; exit 1 when a signature does not hold or a file has no Segue record."""
    found = [inspect_file(path) for path in args.files]
    if args.json:
        print(json.dumps([f.to_json() for f in found], indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(format_report(f) for f in found))
    bad = [f for f in found if f.record is None or f.signature_holds is False]
    for f in bad:
        why = "its C2PA signature does not hold" if f.signature_holds is False else "it has no Segue record"
        _err(f"segue: {f.path}: {why}")
    return EXIT_FAILED if bad else EXIT_OK


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        default=os.environ.get("SEGUE_ENGINE", "local"),
        metavar="local|URL",
        help="where the model runs: 'local' (this computer) or the URL of a `segue serve`, e.g. "
        "http://gpu-box:8750 ($SEGUE_ENGINE; default local)",
    )
    p.add_argument(
        "--token", default=os.environ.get("SEGUE_TOKEN"), help="the remote engine's token ($SEGUE_TOKEN)"
    )


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name in ("bridge", "engine"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _open(factory: EngineFactory, spec: str, token: str | None = None) -> Engine:
    options: dict[str, Any] = {}
    if token and spec.startswith(("http://", "https://")):
        options["token"] = token
    elif token:
        log.warning("--token is only used with a remote engine (--engine URL); ignoring it")
    return factory(spec, **options)


# -- segue continue ----------------------------------------------------------------------------------------


def build_request(args: argparse.Namespace) -> GenerationRequest:
    """The engine request for ``segue continue``; :class:`BadInputError` says what is wrong."""
    stems: tuple[tuple[str, Path], ...] = ()
    if args.stems:
        files, stems = RegionFiles(), stems_of(list(args.inputs))
    else:
        files = classify_inputs(list(args.inputs))
    if files.midi_path is None and args.tempo is None:
        what = f"{files.audio_path} is audio only" if files.audio_path is not None else "stems are audio only"
        raise BadInputError(
            f"{what}, so Segue needs its tempo: add --tempo BPM "
            "(and --meter N/D if it is not 4/4), or give the region's MIDI file as well"
        )
    prompt = Prompt(
        midi_path=files.midi_path,
        audio_path=files.audio_path,
        tempo_bpm=args.tempo,
        meter=Meter.parse(args.meter) if args.meter is not None else None,
        stems=stems,
    )
    params = GenerationParams(
        mode=args.mode,
        bars=args.bars,
        variants=args.variants,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        parts=parse_parts(args.parts, args.mode),
        output=args.output,
        **controls.from_arguments(args),
    )
    return GenerationRequest(prompt=prompt, params=params, model=args.model)


def stem_name(path: Path) -> str:
    """A stem's name from its file's name: ``01 Drums (L).wav`` -> ``drums-l``; lowercase letters, digits, '-'
    and '_', starting with a letter, at most 32 characters (engine.api.Prompt's rule); "" when nothing is left."""
    text = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower())
    text = re.sub(r"^[^a-z]+", "", text).strip("-_")
    return text[:32].rstrip("-_")


def stems_of(paths: list[Path]) -> tuple[tuple[str, Path], ...]:
    """``segue continue A.wav B.wav --stems``: each path one track's audio of the region, named after its file;
    :class:`BadInputError` for a file that is not audio, a name that cannot be made, or one made twice. Their
    count is :class:`engine.api.Prompt`'s to check, and their rates and lengths the engine's."""
    stems: list[tuple[str, Path]] = []
    for raw in paths:
        path = raw.expanduser().resolve()
        if sniff_format(path) != "audio":
            raise BadInputError(f"{path} is a MIDI file; with --stems every input is one track's audio (WAV, FLAC "
                                "or AIFF) of the region")  # fmt: skip
        name = stem_name(path)
        if not name:
            raise BadInputError(f"{path}: a stem is named after its file, and {path.name!r} gives no name (it needs "
                                "a letter); rename the file, e.g. drums.wav")  # fmt: skip
        twice = [other for other, _ in stems if other == name]
        if twice:
            first = next(p for n, p in stems if n == name)
            raise BadInputError(f"{first} and {path} both make the stem name {name!r}; rename one of the files")
        stems.append((name, path))
    return tuple(stems)


def parse_parts(text: str | None, mode: str) -> tuple[str, ...]:
    """``--parts bass,piano`` as part names; :class:`BadInputError` for an empty name or the wrong mode.
    (Whether the model knows them is the engine's to say.)"""
    if text is None:
        return ()
    if mode != "accompany":
        raise BadInputError("--parts is only for --mode accompany (continue keeps the region's own parts)")
    names = [name.strip().lower() for name in text.split(",")]
    if not text.strip() or any(not name for name in names):
        raise BadInputError(f"--parts takes part names separated by commas, e.g. --parts bass,piano; got {text!r}")
    return tuple(names)


def cmd_continue(args: argparse.Namespace, factory: EngineFactory) -> int:
    request = build_request(args)  # before opening the engine: bad input fails fast
    provenance = provenance_settings(args)
    out_dir: Path = args.out.expanduser().resolve()
    recover_jobs(out_dir)  # jobs a killed Segue left running there: failed, "interrupted"; stray temp files go
    engine = _open(factory, args.engine, args.token)
    record = create_job(request, out_dir, engine.name)
    job_dir = out_dir / record.id
    printer = ProgressPrinter(sys.stderr)
    printer.note(f"segue: job {record.id} ({engine.name}) in {job_dir}")
    try:
        record = _run_interruptibly(engine, request, out_dir, record, printer, provenance)
    except BadInputError:
        printer.close()
        if args.json:
            _print_manifest(job_dir)
        _err(f"segue: the job failed; its folder is {job_dir}")
        raise
    printer.close()
    if args.json:
        _print_manifest(job_dir)
    elif record.status == "done":
        _print_done(record, job_dir)
    if record.status == "cancelled":
        _err(f"segue: cancelled; the job folder is {job_dir} (status: cancelled)")
    elif record.status == "failed":
        message = record.error.message if record.error else "unknown error"
        _err(f"segue: error: the engine failed: {message}")
        _err(f"segue: the job folder is {job_dir} (status: failed)")
        if not logging.getLogger("bridge").isEnabledFor(logging.DEBUG):
            _err(f"segue: {_TRACEBACK_HINT}")
    return _EXIT_BY_STATUS.get(record.status, EXIT_FAILED)


def _run_interruptibly(
    engine: Engine,
    request: GenerationRequest,
    out_dir: Path,
    record: JobRecord,
    printer: ProgressPrinter,
    provenance: ProvenanceSettings | None = None,
) -> JobRecord:
    """Run the job on a worker thread; the first Ctrl-C cancels it cleanly, a second one stops at once."""
    cancel = CancelToken()
    outcome: dict[str, Any] = {}

    finished = threading.Event()  # not Thread.join: an interrupted join() can leave is_alive() wrong (3.11)

    def work() -> None:
        try:
            outcome["record"] = execute_job(engine, request, out_dir, record, printer, cancel, provenance)
        except BaseException as e:  # handed to the main thread
            outcome["error"] = e
        finally:
            finished.set()

    worker = threading.Thread(target=work, name=f"segue-job-{record.id}", daemon=True)
    worker.start()
    interrupts = 0
    while not finished.is_set():
        try:
            finished.wait(0.1)
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts == 1:
                cancel.cancel()
                printer.note("segue: cancelling... (press Ctrl-C again to stop at once)")
            else:
                return mark_stopped(out_dir / record.id)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    result: JobRecord = outcome["record"]
    return result


def _print_manifest(job_dir: Path) -> None:
    """Print ``job.json`` exactly as it is on disk."""
    print((job_dir / JOB_FILE).read_text(encoding="utf-8"), end="", flush=True)


def _print_done(record: JobRecord, job_dir: Path) -> None:
    region = record.region
    seconds = record.timings.get("wall_seconds", 0.0)
    if record.mode == "accompany":
        parts = list(dict.fromkeys(p for v in record.variants for p in v.parts)) or list(record.params.parts)
        what = f"accompaniment(s) ({', '.join(parts) or 'default parts'}) over {region.length_bars or '?'} bar(s)"
    else:
        what = f"variant(s) of {record.params.bars} bar(s)"
    print(f"done: {len(record.variants)} {what} at {region.tempo_bpm:g} BPM, {region.meter}, in {seconds:.1f} s")
    if region.notes:
        print(f"note: {region.notes}")
    if record.place_at is not None:
        if record.place_at.beats == 0:
            print("place at: the region start (same bars as the region)")
        else:
            print(f"place at: {record.place_at.beats:g} beats after the region start ({record.place_at.seconds:.3f} s)")
    print(f"job folder: {job_dir}")
    for variant in record.variants:
        print(f"  {variant.id}  seed {variant.seed}")
        stems = [role for role in variant.files if role.startswith("stem:")]
        for role, label in (("audio", "audio"), ("full_audio", "full"), ("midi", "midi")):
            if role in variant.files:
                print(f"       {label + ':':7}{job_dir / variant.files[role]}")
        if stems:
            print(f"       stems: {len(stems)} in {(job_dir / variant.files[stems[0]]).parent}")


# -- the other commands ------------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace, factory: EngineFactory) -> int:
    models = _open(factory, args.engine, args.token).models()
    if args.json:
        print(json.dumps([api.to_jsonable(m) for m in models], indent=2))
        return EXIT_OK
    if not models:
        print("no models installed; train one with `segue train symbolic|audio --data DIR --out DIR`")
        return EXIT_OK
    for m in models:
        size = f"{m.parameters / 1e6:.1f}M params" if m.parameters else "? params"
        print(f"{m.name:24} {m.kind:5} {size:>14}  {','.join(m.modes):18} {m.path}")
        if m.description:
            print(f"{'':24} {m.description}")
        if m.parts:
            print(f"{'':24} accompany parts: {', '.join(m.parts)}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, factory: EngineFactory) -> int:
    checks = {"segue": {"ok": True, "detail": segue_version()}, **entrypoints.doctor()}
    checks["midi_ports"] = midi_ports_check()
    checks["audio_devices"] = audio_inputs_check()
    if args.json:
        print(json.dumps(checks, indent=2))
    else:
        labels = {"midi_ports": "MIDI ports", "audio_devices": "audio devices"}
        for name, check in checks.items():
            mark = {True: "ok  ", False: "FAIL", None: "--  "}[check["ok"]]
            print(f"[{mark}] {labels.get(name, name)}: {check['detail']}")
    return EXIT_OK if all(c["ok"] is not False for c in checks.values()) else EXIT_FAILED


def cmd_eval(args: argparse.Namespace, factory: EngineFactory) -> int:
    """``segue eval JOB_DIR``: numpy, soundfile and mido only, no torch (engine.evaluate)."""
    scores, table, passed = entrypoints.evaluate(args.job_dir.expanduser().resolve())
    print(json.dumps(scores, indent=2, ensure_ascii=False) if args.json else table)
    return EXIT_FAILED if args.strict and not passed else EXIT_OK


def cmd_jobs(args: argparse.Namespace, factory: EngineFactory) -> int:
    out_dir: Path = args.out.expanduser().resolve()
    recover_jobs(out_dir)  # a job a killed Segue left "running" is listed as what it is: interrupted
    jobs = list_jobs(out_dir)
    if args.json:
        print(json.dumps([job_to_json(record) for _, record in jobs], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not jobs:
        print(f"no jobs in {out_dir}")
        return EXIT_OK
    for _, record in jobs:
        detail = f"{len(record.variants)} variant(s)" if record.status == "done" else ""
        if record.error is not None:
            detail = record.error.message
        print(f"{record.id:56} {record.status:9} {record.mode:9} {record.kind:5} {detail}")
    print(f"({len(jobs)} job(s) in {out_dir})")
    return EXIT_OK


def cmd_bridge(args: argparse.Namespace, factory: EngineFactory) -> int:
    """Serve Segue's OSC (and follow MIDI clock) until Ctrl-C or SIGTERM; see :func:`bridge.daemon.serve`."""
    options = BridgeOptions(
        out_dir=args.out.expanduser().resolve(),
        osc_host=args.osc_host,
        osc_port=args.osc_port,
        daw=args.daw,
        daw_host=args.daw_host,
        daw_port=args.daw_port,
        place=args.place,
        model=args.model,
        midi_clock_in=args.midi_clock_in,
        capture=TakeOptions(
            meter=Meter.parse(args.capture_meter),
            latency_frames=args.capture_latency_frames,
            device=_device(args.capture_input),
            channels=args.capture_channels,
        ),
        watch_dir=args.watch.expanduser().resolve() if args.watch is not None else None,
        provenance=provenance_settings(args),
    )
    serve(options, lambda: _open(factory, args.engine, args.token), _err, args.bridge_ready)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, factory: EngineFactory) -> int:
    """``segue serve``: the engine over HTTP until Ctrl-C or SIGTERM (engine.server, the server extra)."""
    if not 0 < args.max_upload_mb <= 100_000:
        raise BadInputError(f"--max-upload-mb must be a positive number of MiB, got {args.max_upload_mb:g}")
    logging.getLogger("engine").setLevel(logging.INFO)
    options = {
        "host": args.host,
        "port": args.port,
        "token": args.token or None,
        "devices": args.devices,
        "data_dir": args.data.expanduser().resolve() if args.data else None,
        "max_upload_bytes": int(args.max_upload_mb * 2**20),
        "server_id": args.server_id,
        "keep_days": args.keep_days,
    }
    return entrypoints.run_server(options, say=_err)


def _device(text: str | None) -> str | int | None:
    """``--input``: a device number, or a name (PortAudio matches a part of it)."""
    if text is None or not text.strip():
        return None
    return int(text) if text.strip().isdigit() else text.strip()


def cmd_capture(args: argparse.Namespace, factory: EngineFactory) -> int:
    """Record one take (see the parser's description); Ctrl-C cancels and writes nothing."""
    options = TakeOptions(
        bars=args.bars,
        meter=Meter.parse(args.meter),
        latency_frames=args.latency_frames,
        device=_device(args.input),
        channels=args.channels,
        sample_rate_hz=args.rate,
        wait_start_s=args.wait,
    )
    options.check()
    if not args.midi_clock_in.strip():
        raise BadInputError("--midi-clock-in needs a port name (see `segue doctor` for the MIDI inputs)")
    out = check_out_path(args.out if args.out is not None else default_capture_path(Path.cwd()))
    from bridge.daemon import MidiClockIn  # the bridge's clock input, with its reconnecting port

    clock = MidiClockIn(args.midi_clock_in.strip())
    clock.start()
    printer = ProgressPrinter(sys.stderr)
    try:
        result = record_take(clock, out, options, progress=printer)
    except KeyboardInterrupt:
        printer.close()
        _err("segue: capture cancelled; nothing was written")
        return EXIT_CANCELLED
    finally:
        printer.close()
        clock.close()
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print_take(result)
    return EXIT_OK


def _print_take(result: TakeResult) -> None:
    ended = "the DAW stopped" if result.ended_by == "stop" else "bar count reached"
    changes = f", {result.tempo_changes} tempo change(s)" if result.tempo_changes else ""
    print(
        f"captured {result.length_bars} bar(s) of {result.meter} at {result.tempo_bpm:g} BPM{changes} from beat "
        f"{result.start_beats:g} ({result.frames} frames at {result.sample_rate_hz} Hz, {result.channels} ch; "
        f"{ended})"
    )
    print(f"file: {result.path}")
    print(f"continue it: segue continue {result.path} --tempo {result.tempo_bpm:g} --meter {result.meter}")


def cmd_train(args: argparse.Namespace, factory: EngineFactory) -> int:
    return entrypoints.run_training(args.kind, list(args.rest))


def cmd_gui(args: argparse.Namespace, factory: EngineFactory) -> int:
    """``segue gui``: the desktop app, loaded only now (it needs PyQt6; the rest of the CLI does not)."""
    app = _desktop_app()
    options = app.GuiOptions(
        settings_path=args.settings,
        out_dir=args.out.expanduser().resolve() if args.out else None,
        engine=args.engine,
        osc_port=args.osc_port,
        screenshot=args.screenshot,
        demo_job=args.demo_job,
    )
    code: int = app.run(options, factory, say=_err)
    return code


def _desktop_app() -> Any:
    """The gui's ``gui.app`` module, found through the ``segue.app`` entry point it declares (pyproject.toml): the
    layers point down, so the bridge names no gui module."""
    found = list(importlib.metadata.entry_points(group="segue.app", name="gui"))
    if not found:
        raise BadInputError("the desktop app is not installed with this Segue: pip install -e '.[gui]'")
    try:
        return found[0].load()
    except ImportError as e:
        raise BadInputError(f"the desktop app needs PyQt6 ({e}); install it with: pip install 'segue[gui]'") from e


def cmd_not_yet(args: argparse.Namespace, factory: EngineFactory) -> int:
    _err(f"segue {args.command}: {_LATER[args.command]} is not available in this version yet")
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
