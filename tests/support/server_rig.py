"""Helpers for the server tests: a real uvicorn on a free loopback port (in a thread, or a process), and a fake
engine that is quick or slow on demand. Not a test module: ``from server_rig import ...``.

Run as a module from the repository's root it is the server process of the kill-and-restart test::

    python -m tests.support.server_rig --data DIR --port PORT --token TOKEN     (prints "ready http://127.0.0.1:PORT")
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np
import soundfile

from engine.api import (
    CancelToken,
    GenerationRequest,
    GenerationResult,
    Meter,
    ModelInfo,
    ProgressCallback,
    RegionInfo,
    VariantResult,
)
from engine.server.config import ServerConfig

ROOT = Path(__file__).resolve().parents[2]

TOKEN = "test-token-0123456789abcdef"
SLOW_MODEL = "fake-slow"
STEADY_MODEL = "fake-steady"  # reports progress 20 times over about a second, then writes its files
PARTS = ("bass", "alto", "tenor")  # the part names fake-midi says it can write (accompany)
WAIT_S = 20.0  # every wait in these tests is bounded


def write_midi(path: Path, bars: int = 2, pitch: int = 60) -> Path:
    mid = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    for _ in range(bars):
        track.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=4 * 96))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(path)
    return path


def write_wav(path: Path, seconds: float = 0.5, sample_rate: int = 8000) -> Path:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype("float32"), sample_rate, subtype="PCM_24")
    return path


@dataclass
class FakeEngine:
    """Writes ``vNN/continuation.mid`` and ``.wav`` per variant. With the model ``fake-slow`` it first reports
    progress until cancelled (at most :data:`WAIT_S`), setting ``holding`` once it does."""

    device: str = "cpu"
    holding: threading.Event = field(default_factory=threading.Event)
    started: list[str] = field(default_factory=list)
    requests: list[GenerationRequest] = field(default_factory=list)  # as the server handed them over

    @property
    def name(self) -> str:
        return f"fake ({self.device})"

    def models(self) -> list[ModelInfo]:
        accompany = ModelInfo("fake-midi", "midi", "/srv/fake-midi", modes=("continue", "accompany"), parts=PARTS)
        return [accompany, *[ModelInfo(name, "midi", f"/srv/{name}") for name in (SLOW_MODEL, STEADY_MODEL)]]

    def generate(
        self,
        request: GenerationRequest,
        job_dir: Path,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        cancel = cancel or CancelToken()
        report = progress or (lambda f, m: None)
        self.started.append(job_dir.name)
        self.requests.append(request)
        if request.model == SLOW_MODEL:
            deadline = time.monotonic() + WAIT_S
            step = 0
            while not cancel.cancelled and time.monotonic() < deadline:
                report(min(0.5, step / 200), "thinking slowly")
                self.holding.set()
                step += 1
                time.sleep(0.05)
        if request.model == STEADY_MODEL:
            for step in range(20):
                cancel.raise_if_cancelled()
                report(step / 40, f"step {step}")
                time.sleep(0.05)
        params = request.params
        seed0 = params.seed if params.seed is not None else 99
        variants = []
        for index in range(1, params.variants + 1):
            cancel.raise_if_cancelled()
            vid = f"v{index:02d}"
            write_midi(job_dir / vid / "continuation.mid", params.bars, pitch=60 + (seed0 + index) % 12)
            write_wav(job_dir / vid / "continuation.wav")
            files = {"midi": f"{vid}/continuation.mid", "audio": f"{vid}/continuation.wav"}
            for part in params.parts:  # accompany: a stem per part asked for
                write_wav(job_dir / vid / "stems" / f"{part}.wav")
                files[f"stem:{part}"] = f"{vid}/stems/{part}.wav"
            variants.append(VariantResult(vid, seed0 + index - 1, files, 2.0 * params.bars, params.parts or ("piano",)))
            report(index / params.variants, f"variant {index}")
        return GenerationResult(
            kind="midi",
            mode=params.mode,
            model=request.model,
            region=RegionInfo(120.0, Meter(4, 4), 8.0, 2, 8000, ("piano",), ""),
            place_at_beats=0.0 if params.mode == "accompany" else 8.0,  # accompany: at the region's start
            place_at_seconds=0.0 if params.mode == "accompany" else 4.0,
            variants=tuple(variants),
            timings={"generate_seconds": 0.01},
        )


class FakeEngines:
    """The factory the server gets: one :class:`FakeEngine` per device, kept for the test to look at."""

    def __init__(self) -> None:
        self.engines: dict[str, FakeEngine] = {}

    def __call__(self, device: str) -> FakeEngine:
        return self.engines.setdefault(device, FakeEngine(device))


@dataclass
class RunningServer:
    url: str
    app: object
    data_dir: Path


@contextlib.contextmanager
def thread_server(data_dir: Path, factory: object = None, **config: object) -> Iterator[RunningServer]:
    """uvicorn serving ``create_app`` on 127.0.0.1 on a free port, in a thread; stopped on exit."""
    import uvicorn

    from engine.server.app import create_app
    from engine.server.guard import http_protocol

    settings = {"token": TOKEN, "data_dir": data_dir, "port": 0, **config}
    server_config = ServerConfig(**settings)  # type: ignore[arg-type]
    app = create_app(server_config, factory or FakeEngines())  # type: ignore[arg-type]
    uv = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1,
                        http=http_protocol(server_config))  # fmt: skip
    sock = uv.bind_socket()
    server = uvicorn.Server(uv)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield RunningServer(f"http://127.0.0.1:{sock.getsockname()[1]}", app, data_dir)
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_process(data_dir: Path, port: int) -> subprocess.Popen[str]:
    """This file as a server process; returns once it answers (bounded)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.server_rig", "--data", str(data_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    import httpx

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server process exited: {proc.stdout.read() if proc.stdout else ''}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).json().get("status") == "ok":
                return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the server process did not answer")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    from engine.server import serve

    config = ServerConfig(host="127.0.0.1", port=args.port, token=TOKEN, data_dir=args.data)
    serve(config, FakeEngines(), say=lambda text: print(text, flush=True))


if __name__ == "__main__":
    main()
