"""The ``segue`` command line's words: the argument parser, and the engine request and settings its arguments
give. :mod:`bridge.cli` runs the commands."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bridge import controls, segue_version
from bridge.inputs import ACCEPTED_FORMATS, RegionFiles, classify_inputs, sniff_format
from engine.api import MAX_STEMS, OUTPUTS, GenerationParams, GenerationRequest, Meter, Prompt
from engine.errors import BadInputError
from engine.provenance.record import ProvenanceSettings

DEFAULT_OUT = Path("segue-jobs")
Handler = Callable[[argparse.Namespace, Any], int]
"""A command: ``handler(args, engine_factory) -> exit code``."""
LATER: dict[str, str] = {}  # commands announced but not built yet: name -> what it will be


def build_parser(handlers: Mapping[str, Handler], argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``segue`` parser; each command's ``handler`` default is ``handlers[command]`` (``"not_yet"`` for the
    commands announced in :data:`LATER`).

    Given the command line ``argv`` it will parse, the options of ``segue bridge`` and ``segue capture`` are only
    added when ``argv`` names that command (or none: ``segue --help``): their defaults and choices come from the
    bridge's OSC server, DAW adapters and audio capture, which `segue continue` does not import (0.1-0.2 s of
    every run's start here). Their names and help are always listed."""
    wanted = _command_in(argv)
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

    def command(
        name: str, arguments: Callable[[argparse.ArgumentParser], None], heavy: bool = False, **kwargs: Any
    ) -> None:
        p = sub.add_parser(name, parents=[common], **kwargs)
        if not heavy or wanted is None or wanted == name:
            arguments(p)
        p.set_defaults(handler=handlers[name])

    command("continue", _continue_arguments, help="continue a region (MIDI and/or audio)")
    command(
        "provenance", _provenance_arguments, help="what a WAV or MIDI file says about where it came from, and "
        "whether its C2PA signature holds (exit 1 when it does not, or the file has no Segue record)"
    )  # fmt: skip
    command("models", _models_arguments, help="list installed models")
    command("doctor", _json_argument, help="check torch, device, soundfont, models and MIDI ports")
    command("jobs", _jobs_arguments, help="list the jobs in an output folder")
    command(
        "eval", _eval_arguments, help="score a job folder: length, tempo, meter, key, grid, loudness, join, variety"
    )
    command("bridge", _bridge_arguments, True, help="the headless DAW bridge: Segue's OSC on UDP (Ctrl-C stops)")
    command(
        "capture",
        _capture_arguments,
        True,
        help="record the DAW's output while it plays, cut to whole bars by its MIDI clock (Ctrl-C cancels)",
        description="Arm, then press play in the DAW: MIDI clock Start begins the take, the DAW's Stop (or --bars "
        "whole bars) ends it. The take is cut from the first bar line at or after the start to the last whole "
        "bar, with the DAW's output latency accounted for, and written as a new 24-bit WAV at the device's rate "
        "(never over an existing file). Then: segue continue FILE --tempo BPM.",
    )
    p = sub.add_parser(  # no common options: everything after KIND goes to the trainer
        "train", help="train a model on your own data: segue train symbolic|audio|accompany --data DIR --out DIR"
    )
    _train_arguments(p)
    p.set_defaults(handler=handlers["train"])
    command("gui", _gui_arguments, help="the desktop app (needs the gui extra: PyQt6)")
    command(
        "serve",
        _serve_arguments,
        help="run the engine as an HTTP server for Segue on other computers (docs/remote.md; Ctrl-C stops)",
        description="Serve this machine's engine over HTTP: submit jobs, follow their progress, cancel, download. "
        "Listens on 127.0.0.1 unless --host says otherwise, and any other address needs --token. Jobs are kept "
        "in --data; a restart keeps finished jobs and fails the ones it interrupted.",
    )
    for name, what in LATER.items():
        p = sub.add_parser(name, help=f"{what} (not available in this version yet)")
        p.set_defaults(handler=handlers["not_yet"])
    return parser


def _command_in(argv: Sequence[str] | None) -> str | None:
    """The command ``argv`` names (its first word that is not an option: the top-level options take no value),
    or None when there is none or ``argv`` is not known."""
    if argv is None:
        return None
    return next((word for word in argv if not word.startswith("-")), None)


def _json_argument(p: argparse.ArgumentParser) -> None:
    """``segue doctor``'s option (and the last of ``models`` and ``jobs``)."""
    p.add_argument("--json", action="store_true")


def _provenance_arguments(p: argparse.ArgumentParser) -> None:
    """``segue provenance``'s arguments."""
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a WAV or MIDI file Segue wrote")
    p.add_argument("--json", action="store_true", help="print what was found as JSON")


def _models_arguments(p: argparse.ArgumentParser) -> None:
    """``segue models``'s options."""
    _add_engine_args(p)
    _json_argument(p)


def _jobs_arguments(p: argparse.ArgumentParser) -> None:
    """``segue jobs``'s options."""
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the folder given to `segue continue --out`")
    _json_argument(p)


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    """``segue eval``'s arguments."""
    p.add_argument("job_dir", type=Path, metavar="JOB_DIR", help="a folder written by `segue continue`")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 when any check fails (--reference's included)")
    p.add_argument(
        "--reference",
        type=Path,
        metavar="FILE.mid",
        help="a MIDI file of what really came next (the composer's next bars, what you played): the job is "
        "measured against it (the variants' pitch-class and onset overlap with the region against its, notes "
        "per bar per part, in-scale share, variety). MIDI continue jobs only. It starts where the continuation "
        "starts, unless --reference-from-bar says where",
    )
    p.add_argument(
        "--reference-from-bar",
        type=int,
        metavar="N",
        help="FILE.mid is the whole piece: the reference is its bars N.. (counted from 1, as the DAW shows them), "
        "as many as the job continued; a shorter reference is measured over the bars it has",
    )


def _train_arguments(p: argparse.ArgumentParser) -> None:
    """``segue train``'s arguments: the kind, and the rest for the trainer's own parser."""
    p.add_argument(
        "kind",
        choices=("symbolic", "audio", "accompany"),
        help="symbolic: a MIDI model from MIDI files; audio: a codec, then a prior, from audio files; "
        "accompany: an accompany model from multi-part MIDI files (`segue train KIND --help` lists its options)",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="--data DIR --out DIR and the trainer's options")


def _gui_arguments(p: argparse.ArgumentParser) -> None:
    """``segue gui``'s options."""
    p.add_argument("--out", type=Path, help="the jobs folder (default: the app's own, kept in its settings)")
    p.add_argument("--engine", metavar="local|URL", help="where the model runs (default: the app's setting)")
    p.add_argument("--osc-port", type=int, help="UDP port of the embedded bridge (default: the app's setting, 9750)")
    p.add_argument("--settings", type=Path, help="the settings file (default: in the user's config folder)")
    p.add_argument("--screenshot", type=Path, metavar="PNG", help="render the window with demo variants, save, exit")
    p.add_argument("--demo-job", type=Path, metavar="DIR", help="with --screenshot: show this job folder's variants")


def _continue_arguments(p: argparse.ArgumentParser) -> None:
    """``segue continue``'s options."""
    defaults = GenerationParams()
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


def _bridge_arguments(p: argparse.ArgumentParser) -> None:
    """``segue bridge``'s options."""
    from bridge.adapters import DAW_CHOICES as DAW_ADAPTERS
    from bridge.osc import DEFAULT_HOST, DEFAULT_PORT
    from bridge.service import PLACE_POLICIES

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
    _recording_arguments(
        p,
        "--capture-",
        input_help="audio input for /segue/capture/arm (a name or number from `segue doctor`; default: the default "
        "input); takes go to OUT/captures/ and become the current region",
        latency_help="the DAW's output latency for captures (see `segue capture --help`; Ardour: -2048)",
        meter_help="the meter of captures (%(default)s)",
    )
    p.add_argument(
        "--watch",
        type=Path,
        metavar="DIR",
        help="also take region requests from DIR/requests/*.json and write a JSON per placed file to DIR/placed/ "
        "(for DAW scripts that cannot send OSC, e.g. REAPER's; see daw_templates/any/README.md)",
    )
    _add_provenance_args(p)


def _capture_arguments(p: argparse.ArgumentParser) -> None:
    """``segue capture``'s options."""
    from bridge.capture.options import DEFAULT_WAIT_START_S, MAX_CAPTURE_BARS

    p.add_argument(
        "--bars", type=int, help=f"stop after N whole bars (default: at the DAW's Stop; at most {MAX_CAPTURE_BARS})"
    )
    p.add_argument(
        "--midi-clock-in",
        metavar="PORT",
        required=True,
        help="the MIDI input the DAW sends clock to (see `segue doctor`); backend from $MIDO_BACKEND",
    )
    _recording_arguments(
        p,
        "--",
        input_help="audio input: a name (or part of one) or a number from `segue doctor` (default: the default "
        "input). On JACK, PortAudio's device 'system' records system:capture_*; connect the DAW's outputs to "
        "PortAudio:in_* or name a JACK client (e.g. 'ardour') to have it connected",
        latency_help="frame at which the audio is heard minus frame at which the clock says so: positive when the "
        "audio comes later than the clock, negative when earlier (Ardour 7 on JACK: -2048; jack_midi_clock: 0)",
        meter_help="the meter, for the bar lines (%(default)s)",
    )
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


def _recording_arguments(
    p: argparse.ArgumentParser, prefix: str, *, input_help: str, latency_help: str, meter_help: str
) -> None:
    """The options of a recording (input, channels, latency, meter), named ``PREFIXinput`` ...: ``segue capture``'s
    own (``--``) and ``segue bridge``'s for /segue/capture/arm (``--capture-``)."""
    p.add_argument(f"{prefix}input", metavar="DEVICE", help=input_help)
    p.add_argument(f"{prefix}channels", type=int, metavar="N", help="input channels to record (default: up to 2)")
    p.add_argument(f"{prefix}latency-frames", type=int, default=0, metavar="F", help=latency_help)
    p.add_argument(f"{prefix}meter", default="4/4", metavar="N/D", help=meter_help)


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    """``segue serve``'s options."""
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
        help="delete finished jobs this long after they finished; clients delete theirs once downloaded (%(default)g)",
    )
    p.add_argument(
        "--server-id",
        default="",
        metavar="NAME",
        help="prefix of this server's job ids (a-z, 0-9), for a load balancer that routes by job id",
    )


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


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        default=os.environ.get("SEGUE_ENGINE", "local"),
        metavar="local|URL",
        help="where the model runs: 'local' (this computer) or the URL of a `segue serve`, e.g. "
        "http://gpu-box:8750 ($SEGUE_ENGINE; default local)",
    )
    p.add_argument("--token", default=os.environ.get("SEGUE_TOKEN"), help="the remote engine's token ($SEGUE_TOKEN)")


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
