"""Helpers for integration tests with a real, headless Ardour 7 (Debian ``ardour``: ``ardour7-lua``,
``ardour7-new_session``, ``ardour7-export``) on a JACK dummy server (see jack_procs.py). Not a test module.

* :func:`new_session` makes a session with ``ardour7-new_session -s RATE`` and edits its XML: the tempo
  (``<TempoMap><Tempos><Tempo npm enpm>``) and, when asked, OSC switched on with ``address-only="0"`` (Ardour replies
  to the port a message came from; with the default ``1`` it replies to port 8000).
* :class:`ArdourProcess` runs ``stdbuf -oL ardour7-lua -X SCRIPT``. The generated Lua script selects the JACK
  backend (luasession defaults to its Dummy backend) and starts it, sets the OSC port
  (``ARDOUR.config():set_osc_port``, a free UDP port picked by the test) and ``set_send_midi_clock(true)`` (clock
  on ``ardour:MIDI Clock out``), loads the session, prints ``segue: ready`` and then reads commands from its stdin:
  ``save`` (``Session:save_state``, answered ``segue: saved``) and ``quit`` (close the session, exit). ``-X``
  makes it exit if JACK goes away.
  Ardour's config folder is a private temporary ``XDG_CONFIG_HOME`` (so the user's own Ardour config is never
  touched); Ardour writes its OSC URL into the file ``osc_url`` there, if the file exists, which is how the test
  learns the port Ardour really took (it moves on to the next one when the asked one is busy).
* :func:`run_offline` / :func:`export` run Ardour's tools without JACK (``ardour7-export`` renders a session).
* The test's own side (an OSC peer, a MIDI clock observer, ``segue bridge`` as a subprocess) is in daw_peers.py.

Facts about Ardour 7.3 these helpers rely on (checked here): luasession does not save on SIGTERM, and its output
is block-buffered unless run under ``stdbuf -oL``. The OSC server listens on every interface (liblo's default;
Ardour 7.3 has no setting for it), but everything here talks to it on 127.0.0.1.

A flaw of Ardour 7.3 with jackd 1.9.21: while a session loads, two of Ardour's threads sometimes write requests
to the JACK server at once (jackd logs "CheckSize error" and "Unknown request", the bytes of a
``http://jackaudio.org/metadata/pretty-name`` property among them), jackd drops the client and Ardour prints
"JACK HALTED". Loading the session straight after ``set_backend`` did that in 4 starts of 8 here; starting the
engine first and loading one second later, in about 1 of 10. :meth:`start` then starts Ardour again (up to 3
times, each attempt said on stdout).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from jack_procs import JackServer, stop_process, wait_until

ARDOUR_BINARIES = ("ardour7-lua", "ardour7-new_session", "ardour7-export")
ARDOUR_INSTALL_HINT = (
    "install with `apt-get install -y --no-install-recommends ardour jackd2` (Debian bookworm ships Ardour 7.3)"
)
MIDI_CLOCK_OUT = "ardour:MIDI Clock out"
OSC_PROTOCOL = "Open Sound Control (OSC)"
READY = "segue: ready"
SAVED = "segue: saved"
SUPERCLOCK_RATE = 282_240_000  # Ardour 7's superclock ticks per second (the session's TempoMap says so too)


def need_ardour() -> None:
    missing = [b for b in (*ARDOUR_BINARIES, "stdbuf") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not found; {ARDOUR_INSTALL_HINT}")


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago (Ardour takes the next one if it is gone by then)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- sessions -----------------------------------------------------------------------------------------------


def new_session(
    parent: Path,
    name: str,
    *,
    rate: int = 48_000,
    tempo_bpm: float | None = None,
    osc: bool = True,
    timeout: float = 60.0,
) -> Path:
    """A new session folder ``parent/name`` holding ``name.ardour``; returns the session file."""
    folder = parent / name
    result = subprocess.run(
        ["ardour7-new_session", "-s", str(rate), str(folder), name],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    session_file = folder / f"{name}.ardour"
    if result.returncode != 0 or not session_file.is_file():
        pytest.fail(
            f"ardour7-new_session failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    if tempo_bpm is not None or osc:
        edit_session(session_file, tempo_bpm=tempo_bpm, osc=osc)
    return session_file


def edit_session(session_file: Path, *, tempo_bpm: float | None = None, osc: bool = False) -> None:
    """Set the (single, constant) tempo and/or switch OSC on, replying to the sender's port."""
    tree = ET.parse(session_file)
    root = tree.getroot()
    if tempo_bpm is not None:
        tempos = root.findall("./TempoMap/Tempos/Tempo")
        assert len(tempos) == 1, f"expected one tempo in {session_file}, found {len(tempos)}"
        tempos[0].set("npm", f"{tempo_bpm:g}")
        tempos[0].set("enpm", f"{tempo_bpm:g}")
    if osc:
        protocol = next((p for p in root.iter("Protocol") if p.get("name") == OSC_PROTOCOL), None)
        if protocol is None:
            protocols = root.find("ControlProtocols")
            assert protocols is not None, f"{session_file} has no <ControlProtocols>"
            protocol = ET.SubElement(protocols, "Protocol", {"name": OSC_PROTOCOL})
        protocol.attrib.update(
            {
                "active": "1",
                "debugmode": "0",
                "address-only": "0",
                "remote-port": "8000",
                "banksize": "0",
                "striptypes": "159",
                "feedback": "0",
                "gainmode": "0",
            }
        )
    tree.write(session_file, encoding="UTF-8", xml_declaration=True)


def superclock_to_samples(value: str, rate: int = 48_000) -> int:
    """Ardour 7's audio time ``a<superclock>`` (or ``a<len>@a<pos>``: the first part) in samples."""
    match = re.fullmatch(r"a(-?\d+)(?:@.*)?", value)
    assert match, f"not an audio time: {value!r}"
    return round(int(match.group(1)) * rate / SUPERCLOCK_RATE)


def markers(session_file: Path, rate: int = 48_000) -> dict[str, int]:
    """The session's location markers (``IsMark``) by name, at their position in samples."""
    root = ET.parse(session_file).getroot()
    return {
        loc.get("name", ""): superclock_to_samples(loc.get("start", ""), rate)
        for loc in root.iter("Location")
        if "IsMark" in loc.get("flags", "").split(",")
    }


def run_offline(argv: Sequence[str], workdir: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run an Ardour tool without JACK (its own Dummy backend), with a private config folder in ``workdir``."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(workdir / "ardour-config"))
    env.pop("JACK_DEFAULT_SERVER", None)
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=workdir
    )


EXPORT_ATTEMPTS = 3


def export(session_file: Path, out: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Render the session range offline: ``ardour7-export -b float -o OUT DIR NAME`` (needs no JACK).

    ardour7-export (7.3) sometimes aborts in its own export threads on a loaded machine ("double free or
    corruption", SIGABRT, at "Exporting Audio 0.0%", once in a CI run) with the same session that renders on the
    next try, and now and then hangs (once in 60 exports here, its files just evicted from the page cache, on a
    busy machine): a run killed by a signal or still running after ``timeout`` s is tried again, at most
    ``EXPORT_ATTEMPTS`` times, and said so; an ordinary error exit fails at once. (It also, now and then, renders
    the whole mix 16 frames early, which only the caller can see: tests/integration/test_link_ardour.py._export.)"""
    argv = ["ardour7-export", "-b", "float", "-o", str(out), str(session_file.parent), session_file.stem]
    result = None
    for attempt in range(1, EXPORT_ATTEMPTS + 1):
        try:
            result = run_offline(argv, out.parent, timeout)
        except subprocess.TimeoutExpired:
            print(f"  ardour7-export still ran after {timeout:g} s (try {attempt}): killed")
            out.unlink(missing_ok=True)
            continue
        if result.returncode == 0 and out.is_file():
            return result
        if result.returncode >= 0 or attempt == EXPORT_ATTEMPTS:
            break
        print(f"  ardour7-export was killed by signal {-result.returncode} (try {attempt}): {result.stderr[-300:]}")
        out.unlink(missing_ok=True)
    if result is None:
        pytest.fail(f"ardour7-export hung {EXPORT_ATTEMPTS} times (killed after {timeout:g} s each)")
    pytest.fail(f"ardour7-export failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


# -- a running Ardour ---------------------------------------------------------------------------------------


def lua_string(text: str) -> str:
    """``text`` as a Lua string literal (anything but plain characters as decimal escapes)."""
    return '"' + "".join(c if c.isalnum() or c in " /._-+:,@" else f"\\{ord(c):03d}" for c in text) + '"'


LUA_SCRIPT = """\
AudioEngine:set_backend("JACK", "ardour", "")
AudioEngine:start(false)
ARDOUR.LuaAPI.usleep(1000000)
ARDOUR.config():set_osc_port({osc_port})
ARDOUR.config():set_send_midi_clock({send_clock})
local session = load_session({folder}, {name})
if not session then
  print("segue: load failed")
  quit()
end
print("{ready}")
io.stdout:flush()
while true do
  local line = io.read("*l")
  if line == nil or line == "quit" then break end
  if line == "save" then
    Session:save_state("", false, false, false, false, false)
    print("{saved}")
  end
  io.stdout:flush()
end
close_session()
print("segue: closed")
quit()
"""


@dataclass
class _Run:
    proc: subprocess.Popen[str]
    lines: list[str]
    reader: threading.Thread


class ArdourProcess:
    """``ardour7-lua`` running ``session_file`` on ``server``, with OSC on (port :attr:`osc_port`) and MIDI clock
    out. :meth:`stop` quits it the clean way (close the session), then terminates and kills as needed."""

    def __init__(self, session_file: Path, server: JackServer, workdir: Path, *, send_midi_clock: bool = True) -> None:
        self.session_file = session_file
        self.server = server
        self.workdir = workdir
        self.send_midi_clock = send_midi_clock
        self.config_dir = workdir / "ardour-config"
        self.osc_port: int | None = None
        self.attempts = 0
        self._run: _Run | None = None
        self._lock = threading.Lock()
        self.startup_s: float | None = None

    @property
    def osc_address(self) -> tuple[str, int]:
        assert self.osc_port is not None, "Ardour is not running"
        return ("127.0.0.1", self.osc_port)

    @property
    def output(self) -> str:
        if self._run is None:
            return ""
        with self._lock:
            return "\n".join(self._run.lines)

    def start(self, timeout: float = 30.0, attempts: int = 3) -> None:
        t0 = time.monotonic()
        for attempt in range(1, attempts + 1):
            self.attempts = attempt
            problem = self._start_once(timeout)
            if problem is None:
                self.startup_s = time.monotonic() - t0
                return
            tail = self.output[-3000:]
            self.stop()
            if attempt < attempts:
                last = " | ".join(line for line in tail.splitlines()[-6:] if line.strip())
                print(f"ardour: start attempt {attempt} failed ({problem}; last output: {last}); trying again")
            else:
                pytest.fail(f"Ardour did not start ({problem}) after {attempts} attempt(s); its output:\n{tail}")

    def _start_once(self, timeout: float) -> str | None:
        url_file = self.config_dir / "ardour7" / "osc_url"
        url_file.parent.mkdir(parents=True, exist_ok=True)
        url_file.write_text("")  # Ardour only writes its URL into a file that exists
        script = self.workdir / "segue-ardour.lua"
        script.write_text(
            LUA_SCRIPT.format(
                osc_port=free_udp_port(),
                send_clock="true" if self.send_midi_clock else "false",
                folder=lua_string(str(self.session_file.parent)),
                name=lua_string(self.session_file.stem),
                ready=READY,
                saved=SAVED,
            )
        )
        env = dict(self.server.env, XDG_CONFIG_HOME=str(self.config_dir))
        proc = subprocess.Popen(
            ["stdbuf", "-oL", "ardour7-lua", "-X", str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
            cwd=self.workdir,
        )
        lines: list[str] = []
        reader = threading.Thread(target=self._read, args=(proc, lines), name="ardour-output", daemon=True)
        self._run = _Run(proc, lines, reader)
        reader.start()

        def ready() -> bool:
            return proc.poll() is not None or READY in self.output or "JACK HALTED" in self.output

        if not wait_until(ready, timeout):
            return f"no {READY!r} within {timeout:g} s"
        if proc.poll() is not None:
            return f"ardour7-lua exited with {proc.returncode}"
        if not wait_until(lambda: "JACK HALTED" in self.output or url_file.read_text().strip() != "", 5):
            return "no OSC URL written"
        if not wait_until(lambda: "JACK HALTED" in self.output or MIDI_CLOCK_OUT in self.server.midi_ports(), 5):
            return f"{MIDI_CLOCK_OUT} not listed by JACK"
        time.sleep(0.3)  # a late "JACK HALTED" comes right after loading
        if "JACK HALTED" in self.output or proc.poll() is not None:
            return "JACK HALTED: Ardour lost its JACK connection"
        match = re.search(r":(\d+)/?\s*$", url_file.read_text())
        if match is None:
            return f"unreadable OSC URL {url_file.read_text()!r}"
        self.osc_port = int(match.group(1))
        return None

    def _read(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._lock:
                lines.append(line.rstrip("\n"))

    def command(self, line: str) -> None:
        assert self._run is not None and self._run.proc.stdin is not None
        self._run.proc.stdin.write(line + "\n")
        self._run.proc.stdin.flush()

    def save(self, timeout: float = 10.0) -> None:
        """Save the session (through the Lua script) and wait until Ardour says it did."""
        before = self.output.count(SAVED)
        self.command("save")
        assert wait_until(lambda: self.output.count(SAVED) > before, timeout), f"Ardour did not save within {timeout} s"

    def stop(self, timeout: float = 10.0) -> int | None:
        """Quit (close the session, exit), else terminate, else kill; returns the exit status."""
        run, self._run = self._run, None
        self.osc_port = None
        if run is None:
            return None
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            if run.proc.poll() is None and run.proc.stdin is not None:
                run.proc.stdin.write("quit\n")
                run.proc.stdin.flush()
                run.proc.stdin.close()
        try:
            run.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(run.proc)  # type: ignore[arg-type]
        run.reader.join(5)
        self._run = run  # keep the output readable
        return run.proc.returncode

    def is_running(self) -> bool:
        return self._run is not None and self._run.proc.poll() is None


__all__ = [
    "ARDOUR_INSTALL_HINT",
    "MIDI_CLOCK_OUT",
    "ArdourProcess",
    "edit_session",
    "export",
    "markers",
    "lua_string",
    "need_ardour",
    "new_session",
    "run_offline",
    "superclock_to_samples",
]
