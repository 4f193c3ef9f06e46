"""Rig for Segue Link's tests (not a test module): builds the plugin and the small CLAP test host once per session,
runs the host over known audio with a scripted transport, and plays Segue's side of the OSC contract
(notes/link_contract.md, docs/osc.md) on a loopback UDP port.

The input audio is seeded white noise made here (no outside material)."""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "plugin"
BUILD_DIR = PLUGIN_DIR / "build"
BIN_DIR = BUILD_DIR / "bin"
HOST_SOURCE = Path(__file__).resolve().parent / "clap_host.cpp"
PARAM = {"arm": 0, "bars": 1, "play": 2, "mix": 3, "status": 4, "connected": 5}


def dpf_path() -> Path | None:
    for candidate in (os.environ.get("DPF_PATH", ""), "/usr/share/dpf"):
        if candidate and (Path(candidate) / "Makefile.plugins.mk").is_file():
            return Path(candidate)
    return None


@dataclass(frozen=True)
class Built:
    clap: Path
    vst3: Path
    lv2: Path
    host: Path


def build() -> Built:
    """`make -C plugin` (a no-op when up to date) and the test host; skips with a hint when a tool is missing."""
    missing = [tool for tool in ("g++", "make", "cc") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"building Segue Link needs {', '.join(missing)} (Debian: apt-get install g++ make)")
    dpf = dpf_path()
    if dpf is None:
        pytest.skip("building Segue Link needs DPF (Debian: apt-get install dpf-source; or DPF_PATH=/path/to/DPF)")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".build-lock", "w") as lock:  # one build at a time, even across pytest workers
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(
            ["nice", "make", "-C", str(PLUGIN_DIR), "-s", f"DPF_PATH={dpf}"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"make -C plugin failed:\n{(done.stdout + done.stderr)[-4000:]}")
        host = BUILD_DIR / "test" / "clap_host"
        if not host.exists() or host.stat().st_mtime < HOST_SOURCE.stat().st_mtime:
            host.parent.mkdir(parents=True, exist_ok=True)
            _compile(["-rdynamic", f"-I{dpf / 'distrho' / 'src'}", str(HOST_SOURCE), "-ldl", "-lpthread", "-o",
                      str(host)], "the CLAP test host")  # fmt: skip
    built = Built(
        clap=BIN_DIR / "segue-link.clap",
        vst3=BIN_DIR / "segue-link.vst3",
        lv2=BIN_DIR / "segue-link.lv2",
        host=host,
    )
    for path in (built.clap, built.vst3, built.lv2 / "manifest.ttl"):
        assert path.exists(), f"make -C plugin did not make {path}"
    return built


def _compile(arguments: list[str], what: str) -> None:
    """``g++ -O1 -std=c++17 ARGUMENTS`` at low priority; fails the test with the compiler's message if it fails."""
    compiled = subprocess.run(["nice", "g++", "-O1", "-std=c++17", *arguments], capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip
    if compiled.returncode != 0:
        pytest.fail(f"{what} did not build:\n{compiled.stderr[-4000:]}")


def build_unit(source: Path) -> Path:
    """A C++ test program that includes plugin/'s headers directly (no host, no DPF wrapper), built into
    plugin/build/test when its source or a plugin header is newer; skips like :func:`build` without g++ or DPF."""
    if shutil.which("g++") is None:
        pytest.skip("the plugin's unit programs need g++ (Debian: apt-get install g++)")
    dpf = dpf_path()
    if dpf is None:
        pytest.skip("the plugin's unit programs need DPF's headers (Debian: apt-get install dpf-source)")
    program = BUILD_DIR / "test" / source.stem
    inputs = [source, *PLUGIN_DIR.glob("*.hpp"), *PLUGIN_DIR.glob("*.h")]
    newest = max(path.stat().st_mtime for path in inputs)
    program.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".build-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not program.exists() or program.stat().st_mtime < newest:
            _compile(["-Wall", "-Wextra", f"-I{PLUGIN_DIR}", f"-I{dpf / 'distrho'}", f"-I{dpf / 'distrho' / 'src'}",
                      str(source), "-lpthread", "-o", str(program)], source.name)  # fmt: skip
    return program


def noise(frames: int, seed: int = 1, level: float = 0.1) -> np.ndarray:
    """Seeded stereo white noise, float32, shape (frames, 2)."""
    return (np.random.default_rng(seed).standard_normal((frames, 2)) * level).astype(np.float32)


def first_frame(target_qn: float, start_qn: float, rate: float, bpm: float) -> int:
    """The first host frame at or after ``target_qn`` when frame 0 is at ``start_qn`` (constant tempo)."""
    return math.ceil((target_qn - start_qn) * rate * 60.0 / bpm - 1e-7)


class SegueStub:
    """Segue's end of the link: a UDP port on loopback that records every message and can answer hellos."""

    def __init__(self, welcome: bool = True) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.welcome = welcome
        self.messages: list[tuple[str, list[Any], tuple[str, int]]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            message = OscMessage(data)
            if self.welcome and message.address == "/segue/link/hello":
                self.send(sender, "/segue/link/welcome", "test")
            with self._cond:
                self.messages.append((message.address, list(message.params), sender))
                self._cond.notify_all()

    def send(self, to: tuple[str, int], address: str, *args: Any) -> None:
        builder = OscMessageBuilder(address)
        for arg in args:
            builder.add_arg(arg)
        self.sock.sendto(builder.build().dgram, to)

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def all(self, address: str) -> list[list[Any]]:
        with self._cond:
            return [params for addr, params, _ in self.messages if addr == address]

    def wait_for(self, address: str, timeout: float = 20.0, count: int = 1) -> list[list[Any]]:
        """The first ``count`` messages to ``address``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [(params, sender) for addr, params, sender in self.messages if addr == address]
                if len(found) >= count:
                    return [params for params, _ in found[:count]]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({addr for addr, _, _ in self.messages})
                    raise AssertionError(f"no {address} within {timeout} s (got {seen})")
                self._cond.wait(left)

    def sender_of(self, address: str) -> tuple[str, int]:
        with self._cond:
            return next(sender for addr, _, sender in self.messages if addr == address)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@dataclass
class HostRun:
    events: list[dict[str, Any]] = field(default_factory=list)
    output: np.ndarray | None = None
    stderr: str = ""

    def event(self, name: str) -> dict[str, Any]:
        return next(e for e in self.events if e["event"] == name)

    def param(self, name: str) -> float:
        return float(next(e["value"] for e in self.events if e["event"] == "param" and e["id"] == PARAM[name]))


class Host:
    """One run of the CLAP test host (tests/plugin/clap_host.cpp) in the background."""

    def __init__(self, built: Built, work: Path, audio: np.ndarray, port: int, *args: str, rate: int = 48000,
                 bpm: float = 97.5, meter: str = "3/4", start_qn: float = 13.3, link_dir: Path | None = None,
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.input = work / "in.f32"
        self.out = work / "out.f32"
        np.ascontiguousarray(audio, dtype=np.float32).tofile(self.input)
        self.link_dir = link_dir or work / "link"
        environ = dict(os.environ, SEGUE_OSC_PORT=str(port), SEGUE_LINK_DIR=str(self.link_dir))
        environ.update(env or {})
        command = [str(built.host), "--plugin", str(built.clap), "--rate", str(rate), "--bpm", str(bpm)]
        command += ["--meter", meter, "--start-qn", str(start_qn), "--in", str(self.input), "--out", str(self.out)]
        command += args
        self.proc = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, timeout: float = 120.0) -> HostRun:
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            stdout, stderr = self.proc.communicate()
            raise AssertionError(f"the CLAP host did not finish in {timeout} s:\n{stderr[-3000:]}") from None
        assert self.proc.returncode == 0, f"the CLAP host failed ({self.proc.returncode}):\n{stderr[-3000:]}"
        run = HostRun(events=[json.loads(line) for line in stdout.splitlines() if line.startswith("{")], stderr=stderr)
        if self.out.exists():
            run.output = np.fromfile(self.out, dtype=np.float32).reshape(-1, 2)
        return run

    def log(self) -> str:
        path = self.link_dir / "segue-link.log"
        return path.read_text() if path.exists() else ""


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return data, int(rate)
