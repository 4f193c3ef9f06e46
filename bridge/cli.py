"""The ``segue`` command line (see shared/DESIGN.md). The console script points at :func:`main`.

Only this module prints; its parser and the request its arguments give are in :mod:`bridge.cli_args`. It uses
the engine through :mod:`engine.api` and :mod:`engine.entrypoints` and imports no torch, so ``segue --help``
starts fast. Exit codes: 0 done, 2 bad input, 1 engine failure, 130 cancelled (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge import segue_version
from bridge.cli_args import (
    LATER,
    build_parser,
    build_request,
    provenance_settings,
)
from bridge.jobs import JOB_FILE, JobRecord, job_to_json, list_jobs, recover_jobs
from bridge.progress import ProgressPrinter
from bridge.runner import create_job, execute_job, mark_stopped
from engine import api, entrypoints
from engine.api import CancelToken, Engine, GenerationRequest, Meter
from engine.errors import BadInputError, SegueError
from engine.provenance.record import ProvenanceSettings
from engine.provenance.report import format_report, inspect_file

if TYPE_CHECKING:
    from bridge.capture.options import TakeResult
    from bridge.daemon import BridgeRunning

# `segue continue` (what most runs are) needs neither the bridge's daemon (OSC, MIDI clock, every DAW adapter) nor
# audio capture: those modules are imported by the commands that use them (about 50 ms of every run's start here).

log = logging.getLogger(__name__)

EngineFactory = Callable[..., Engine]
"""``factory(spec, **options) -> Engine``, like :func:`engine.entrypoints.open_engine` (tests pass a fake)."""

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130
_EXIT_BY_STATUS = {"done": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
_TRACEBACK_HINT = "run again with --verbose (or SEGUE_DEBUG=1) to see the traceback"


def main(
    argv: list[str] | None = None,
    *,
    engine_factory: EngineFactory | None = None,
    bridge_ready: Callable[[BridgeRunning], None] | None = None,
) -> int:
    """Run ``segue`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    ``bridge_ready`` (for tests and embedding) is called on the main thread once ``segue bridge`` listens.
    """
    parser = build_parser(HANDLERS, sys.argv[1:] if argv is None else argv)
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and args.command not in LATER:
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
    from bridge.daemon import midi_ports_check
    from bridge.sound_devices import audio_inputs_check

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
    """``segue eval JOB_DIR [--reference FILE.mid]``: numpy and soundfile only, no torch (engine.evaluate)."""
    reference = args.reference.expanduser() if args.reference is not None else None
    scores, table, passed = entrypoints.evaluate(
        args.job_dir.expanduser().resolve(), reference, args.reference_from_bar
    )
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
    from bridge.capture.options import TakeOptions
    from bridge.daemon import BridgeOptions, serve

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
    from bridge.capture.options import TakeOptions, check_out_path, default_capture_path
    from bridge.capture.take import record_take

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
    _err(f"segue {args.command}: {LATER[args.command]} is not available in this version yet")
    return EXIT_FAILED


HANDLERS: dict[str, Callable[[argparse.Namespace, EngineFactory], int]] = {
    "continue": cmd_continue,
    "provenance": cmd_provenance,
    "models": cmd_models,
    "doctor": cmd_doctor,
    "jobs": cmd_jobs,
    "eval": cmd_eval,
    "bridge": cmd_bridge,
    "capture": cmd_capture,
    "train": cmd_train,
    "gui": cmd_gui,
    "serve": cmd_serve,
    "not_yet": cmd_not_yet,
}

if __name__ == "__main__":
    sys.exit(main())
