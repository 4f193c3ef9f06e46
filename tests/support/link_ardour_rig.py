"""The rig of tests/integration/test_link_ardour.py: the session's numbers (97.5 BPM, 3/4, 44.1 kHz, the clip on
bar 5), the clip (lmms-common's house_loop01.ogg, GPL-2+, resampled and tiled to four 3/4 bars), the session edits
(meter, fades, range) and :class:`LuaArdour`, which drives ``ardour7-lua`` over its stdin. Not a test module.
"""

from __future__ import annotations

import subprocess
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import soundfile
from ardour_procs import lua_string
from jack_procs import stop_process, wait_until

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_BIN = ROOT / "plugin" / "build" / "bin"
LV2_URI = "urn:segue:link"
VST3_NAME = "Segue Link"  # Ardour finds a VST3 by its name
VST3_SCANNER = Path("/usr/lib/ardour7/ardour-vst3-scanner")  # Debian's ardour package
LOOP = Path("/usr/share/lmms/samples/beats/house_loop01.ogg")  # 1 bar of 4/4 at ~142 BPM, 44.1 kHz stereo
RATE = 44_100
BPM = 97.5
BEATS_PER_BAR = 3
SUPERCLOCK = 282_240_000
SAMPLES_PER_BEAT = RATE * 60.0 / BPM  # 27138.46...
CLIP_BAR = 5  # the clip starts on bar 5 = beat 12
CAPTURE_BARS = 4
READY = "segue: ready"


def beats_to_sample(beats: float) -> float:
    return beats * SAMPLES_PER_BEAT


def make_clip(path: Path) -> np.ndarray:
    """Four 3/4 bars at 97.5 BPM from lmms-common's house loop: its 4 beats stretched (by resampling) to 97.5 BPM
    beats, the first 3 of them per bar; float32 stereo ``[frames, 2]``."""
    loop, rate = soundfile.read(LOOP, dtype="float64", always_2d=True)
    assert rate == RATE
    beat_in = len(loop) / 4.0
    bar_out = BEATS_PER_BAR * SAMPLES_PER_BEAT
    length = round(CAPTURE_BARS * bar_out)
    positions = np.arange(length)
    in_bar = np.mod(positions, bar_out)  # where in its bar each output sample is, in output samples
    source = in_bar * (beat_in / SAMPLES_PER_BEAT)  # the same place in the loop's beats
    clip = np.stack([np.interp(source, np.arange(len(loop)), loop[:, c]) for c in range(2)], axis=1)
    clip = (0.5 * clip / np.max(np.abs(clip))).astype(np.float32)
    soundfile.write(path, clip, RATE, subtype="FLOAT")
    return clip


def set_meter(session_file: Path, divisions: int) -> None:
    tree = ET.parse(session_file)
    meters = tree.getroot().findall("./TempoMap/Meters/Meter")
    assert len(meters) == 1, f"expected one meter in {session_file}"
    meters[0].set("divisions-per-bar", str(divisions))
    tree.write(session_file, encoding="UTF-8", xml_declaration=True)


def regions_without_fades(session_file: Path) -> None:
    """Ardour gives every region a 64-sample fade in and out; the clip must reach the plugin untouched."""
    tree = ET.parse(session_file)
    for region in tree.getroot().iter("Region"):
        region.set("fade-in-active", "0")
        region.set("fade-out-active", "0")
    tree.write(session_file, encoding="UTF-8", xml_declaration=True)


def extend_session_range(session_file: Path, end_sample: int) -> None:
    """Render up to ``end_sample``: the session range's end (superclock ticks), for ardour7-export."""
    tree = ET.parse(session_file)
    found = [loc for loc in tree.getroot().iter("Location") if "IsSessionRange" in loc.get("flags", "")]
    assert found, f"{session_file} has no session range"
    found[0].set("end", f"a{end_sample * SUPERCLOCK // RATE}")
    tree.write(session_file, encoding="UTF-8", xml_declaration=True)


LUA_DRIVER = """\
local session = load_session({folder}, {name})
if not session then
  print("segue: load failed")
  quit()
end
local route = Session:route_by_name({track})
local plugin = ARDOUR.LuaAPI.new_plugin(Session, {plugin}, ARDOUR.PluginType.{kind}, "")
if route:isnil() or plugin:isnil() then
  print("segue: no track or no plugin")
  quit()
end
route:add_processor_by_index(plugin, 0, nil, true)
-- Ardour writes time:Position into a plugin's atom port only where that port gets a buffer; DPF has one atom
-- port for MIDI and time, which an audio-only track leaves unmapped: a MIDI input gives it one
route:input():add_port("", nil, ARDOUR.DataType("midi"))
print("segue: inputs " .. route:n_inputs():n_audio() .. " audio, " .. route:n_inputs():n_midi() .. " midi")
print("{ready}")
io.stdout:flush()
while true do
  local line = io.read("*l")
  if line == nil or line == "quit" then break end
  local chunk, problem = load(line)
  if chunk then
    local ok, result = pcall(chunk)
    print("segue: did " .. tostring(ok) .. " " .. tostring(result))
  else
    print("segue: bad command " .. tostring(problem))
  end
  io.stdout:flush()
end
close_session()
print("segue: closed")
quit()
"""


class LuaArdour:
    """``ardour7-lua`` running LUA_DRIVER on a session (Dummy backend); :meth:`run` sends one line of Lua."""

    def __init__(self, session_file: Path, track: str, fmt: str, workdir: Path, env: dict[str, str]) -> None:
        script = workdir / "link-driver.lua"
        script.write_text(
            LUA_DRIVER.format(
                folder=lua_string(str(session_file.parent)),
                name=lua_string(session_file.stem),
                track=lua_string(track),
                plugin=lua_string(LV2_URI if fmt == "lv2" else VST3_NAME),
                kind=fmt.upper(),
                ready=READY,
            )
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "ardour7-lua", str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
            cwd=workdir,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 60.0) -> None:
        ok = wait_until(lambda: READY in self.output or self.proc.poll() is not None, timeout)
        assert ok and READY in self.output, f"ardour7-lua did not get ready:\n{self.output[-3000:]}"

    def run(self, lua: str, timeout: float = 20.0) -> str:
        """Run one line of Lua in the session; its result (``pcall``'s) as printed."""
        before = self.output.count("segue: did ")
        assert self.proc.stdin is not None
        self.proc.stdin.write(lua + "\n")
        self.proc.stdin.flush()
        ok = wait_until(lambda: self.output.count("segue: did ") > before, timeout)
        assert ok, f"no answer to {lua!r}:\n{self.output[-2000:]}"
        answer = [line for line in self.lines if line.startswith("segue: did ")][before]
        assert answer.startswith("segue: did true"), f"{lua!r} failed: {answer}\n{self.output[-2000:]}"
        return answer[len("segue: did true ") :]

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)  # type: ignore[arg-type]
        self._reader.join(5)


__all__ = [
    "ROOT",
    "PLUGIN_BIN",
    "LV2_URI",
    "VST3_NAME",
    "VST3_SCANNER",
    "LOOP",
    "RATE",
    "BPM",
    "BEATS_PER_BAR",
    "SUPERCLOCK",
    "SAMPLES_PER_BEAT",
    "CLIP_BAR",
    "CAPTURE_BARS",
    "READY",
    "beats_to_sample",
    "make_clip",
    "set_meter",
    "regions_without_fades",
    "extend_session_range",
    "LUA_DRIVER",
    "LuaArdour",
]
