"""Helpers for integration tests: real processes (a JACK dummy server, jack_midi_clock) on this machine only.

Every process is started with a bounded wait and always stopped (terminate, then kill) at teardown. When a binary
is missing the test is skipped with the install hint: ``apt-get install -y --no-install-recommends jackd2
jack-midi-clock`` (Debian/Ubuntu), or ``make test-integ``, which installs them and runs these tests.

The JACK server is the dummy driver (no sound card needed), named ``segue-test-<pid>-<n>`` and reached through
``JACK_DEFAULT_SERVER``; MIDI goes through ``MIDO_BACKEND=mido.backends.rtmidi/UNIX_JACK`` (both set with
monkeypatch, so they do not leak into other tests).
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from engine.atomic import pid_alive

INSTALL_HINT = (
    "install with `apt-get install -y --no-install-recommends jackd2 jack-midi-clock` "
    "(or run `make test-integ`, which does it)"
)
JACK_BACKEND = "mido.backends.rtmidi/UNIX_JACK"
_counter = itertools.count()
MIDI_CLOCK_PORT = "jack_midi_clock:mclk_out"


def next_server_name() -> str:
    return f"segue-test-{os.getpid()}-{next(_counter)}"


JACK_REGISTRY = Path("/dev/shm/jack-shm-registry")
_REGISTRY_MAGIC = 0x4A41434B  # "KCAJ"
_MAX_SERVERS = 8  # JACK2's shm.h: MAX_SERVERS
_SERVER_TABLE = 24  # the registry header before its server table
_SERVER_ENTRY = 264  # int32 pid + 257-byte name, padded


def clean_stale_jack_servers(registry: Path = JACK_REGISTRY) -> list[str]:
    """Free the slots of JACK servers whose process is gone in JACK's shared-memory registry; their names.

    The registry has room for 8 servers, and jackd (1.9.21) leaves its slot behind when it is stopped; it only
    reclaims a dead slot that has its own name. Unique names (``segue-test-<pid>-<n>``) therefore fill the table
    after a few runs, and jackd then refuses to start: "Too many servers already active". Only slots whose pid
    does not exist are cleared (re-checked just before), so servers that still run (other test sessions) keep
    theirs. Nothing is touched if the file does not look like JACK2's registry.
    """
    cleared: list[str] = []
    try:
        f = registry.open("r+b")
    except OSError:
        return cleared
    with f:
        header = f.read(_SERVER_TABLE)
        if len(header) < _SERVER_TABLE:
            return cleared
        magic, _, _, _, _, hdr_len, _ = struct.unpack("<IHHiiii", header)
        if magic != _REGISTRY_MAGIC or hdr_len != _SERVER_TABLE + _MAX_SERVERS * _SERVER_ENTRY:
            return cleared
        for slot in range(_MAX_SERVERS):
            offset = _SERVER_TABLE + slot * _SERVER_ENTRY
            f.seek(offset)
            entry = f.read(_SERVER_ENTRY)
            (pid,) = struct.unpack_from("<i", entry)
            if pid <= 0 or pid_alive(pid):
                continue
            f.seek(offset)
            if struct.unpack("<i", f.read(4))[0] != pid:  # someone else just took the slot
                continue
            f.seek(offset)
            f.write(bytes(_SERVER_ENTRY))
            cleared.append(entry[4:].split(b"\0", 1)[0].decode(errors="replace"))
    return cleared


def need(*binaries: str) -> None:
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not found; {INSTALL_HINT}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Terminate, then kill; never hangs for more than about 2 * ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@dataclass
class JackServer:
    name: str
    rate: int
    period: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: IO[bytes] | None = None  # jackd's stdout and stderr (a file)

    def log_offset(self) -> int:
        """Where jackd's log ends now: pass it to :meth:`xruns_since`."""
        return 0 if self.log is None else os.fstat(self.log.fileno()).st_size

    def log_since(self, offset: int) -> str:
        if self.log is None:
            return ""
        fd = self.log.fileno()  # pread: the shared file offset jackd writes at is left alone
        return os.pread(fd, max(0, os.fstat(fd).st_size - offset), offset).decode(errors="replace")

    def xruns_since(self, offset: int) -> list[str]:
        """The xruns jackd itself logged since ``offset``: a cycle that ran late ("JackTimedDriver::Process XRun")
        or a client that did not finish in time ("JackEngine::XRun: client = ... was not finished"). On a loaded
        machine under a CPU quota they happen even with realtime scheduling; they are the machine's, not ours."""
        return [line for line in self.log_since(offset).splitlines() if "XRun" in line]

    @property
    def period_s(self) -> float:
        return self.period / self.rate

    def run(self, *argv: str, input: str | None = None, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run a JACK command-line tool (jack_lsp, jack_transport, jack_connect) against this server."""
        return subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout, env=self.env, check=False
        )

    def transport(self, *commands: str) -> None:
        """``jack_transport`` commands, e.g. ``transport("locate 0", "play")``."""
        self.run("jack_transport", input="\n".join(commands) + "\nquit\n")

    def showtime(self) -> tuple[int, int]:
        """(transport frame, JACK's microsecond clock) now, from ``jack_showtime``'s first line."""
        proc = subprocess.Popen(["jack_showtime"], stdout=subprocess.PIPE, text=True, env=self.env)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # "frame = 4096  frame_time = 78768 usecs = 11862959986  state: Rolling"
        finally:
            proc.kill()
            proc.wait(5)
        fields = line.replace("=", " ").split()
        return int(fields[fields.index("frame") + 1]), int(fields[fields.index("usecs") + 1])

    def timeline_speed(self, start: tuple[int, int], end: tuple[int, int]) -> float:
        """How fast the rolling transport advanced between two :meth:`showtime` readings, in real time (1.0: on
        time). The dummy driver falls behind when the machine is short of CPU, and every JACK client's sense of
        time (jack_midi_clock's tempo) with it."""
        return (end[0] - start[0]) / ((end[1] - start[1]) / 1e6 * self.rate)

    def midi_ports(self) -> list[str]:
        """All JACK MIDI port names, listed by ``jack_lsp -t`` in a child process.

        A child process, not an in-process JACK client: opening and closing a client in the test process (what
        mido's ``get_input_names`` does with the UNIX_JACK backend) stalls JACK's process cycle while our own
        rtmidi client waits for the GIL (see test_clock_jack.py). A jack_lsp that hangs (seen once in a CI run,
        while a restarted server took a new client) lists nothing this time: callers poll until their own timeout."""
        try:
            lines = self.run("jack_lsp", "-t", timeout=5).stdout.splitlines()
        except subprocess.TimeoutExpired:
            return []
        return [
            lines[i].strip()
            for i in range(len(lines) - 1)
            if not lines[i].startswith(("\t", " ")) and "midi" in lines[i + 1]
        ]
