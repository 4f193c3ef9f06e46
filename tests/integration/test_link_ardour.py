"""Segue Link (plugin/) inside a real, headless Ardour 7.3, with a real ``segue bridge --daw link`` process, for the
plugin's LV2 and VST3 builds (one live run per format, shared by the tests below).

The session runs at 97.5 BPM in 3/4 at 44.1 kHz (``ardour7-new_session``, its TempoMap edited). A stereo clip is
placed on a track from bar 5 (bridge.adapters.ardour_session, region fades off), and ``ardour7-lua`` (its own
Dummy backend, in real time: no JACK) loads the session and puts the plugin on that track; the track gets a MIDI
input port, without which Ardour 7.3 gives the LV2 build no transport (its single atom port carries MIDI and
time:Position, and Ardour leaves it without a buffer on an audio-only track). Ardour is located to the middle of
bar 4; the test asks Segue for a 4-bar capture (``/segue/link/capture 4`` to the bridge, forwarded to the
plugin) and rolls; the plugin records bars 5-8 and sends ``/segue/region``; the test asks Segue to continue it
(``/segue/generate``) and the bridge, as ``--daw link``, sends the variant to the plugin (``/segue/link/play``),
whose ``/segue/link/loaded`` comes back to the test. Ardour saves the session and ``ardour7-export`` renders it
in a fresh process (whose instance reloads the variant from its state). Ardour's export inside the live session
(Lua ``Session:simple_export()``) was tried too and left out: luasession 7.3 crashes in it (double free, malloc
assertion, segfault) in 3 of 4 runs of six exports even with no plugin in the session.

Measured here (both formats, 2-core machine, about 60 s for the module): the transport is followed (clock source
``link:Segue Link 1``, 97.5 BPM, playing); the region is beat 12 + 12 beats (12.000017 in job.json: segue-concat's
own length), 97.5 BPM, 3/4; the captured audio is the clip sample for sample from its first sample
(325662 frames for 12 beats = 325661.5: the plugin takes Ardour's sample position, since Ardour rounds beats to
1/1920 quarter note = 14 samples here; it started 6 samples early before plugin/ did). The variant lands on its
sample, 651324 (beat 24.000017 = 651323.54), equal to it sample for sample, in ardour7-export's render (the plugin
keeps it in its saved state, the 'variant' state, reloaded there). ardour7-export 7.3 now and then hangs, aborts or
writes a wrong render, with or without the plugin (the whole mix 16 frames early; garbage on a 2048-frame lattice):
a render that is not digital silence before the clip is rendered again, said so (_export).

The clip is lmms-common's ``house_loop01.ogg`` (Debian lmms-common, GPL-2+), resampled so its beats fall on 97.5
BPM and tiled to four 3/4 bars. Skips, with the reason, when Ardour, lmms-common or the built plugin
(``make plugin``) is missing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile
from ardour_procs import need_ardour, new_session
from daw_peers import OscPeer, start_bridge
from jack_procs import stop_process, wait_until
from link_ardour_rig import (
    BEATS_PER_BAR,
    BPM,
    CAPTURE_BARS,
    CLIP_BAR,
    LOOP,
    PLUGIN_BIN,
    RATE,
    VST3_SCANNER,
    LuaArdour,
    beats_to_sample,
    extend_session_range,
    make_clip,
    regions_without_fades,
    set_meter,
)

from bridge.adapters.ardour_session import insert_audio_file

pytestmark = pytest.mark.integration


@dataclass
class LinkRun:
    """What one live run of the plugin in Ardour gave (a module-scoped fixture per plugin format)."""

    fmt: str
    clip: np.ndarray  # float32 [frames, 2]
    clip_at: int  # the clip's first sample on the timeline
    status_playing: tuple[Any, ...]  # /segue/status while Ardour played (before the capture's end)
    record: dict[str, Any]  # the job.json of the job made from the captured region
    captured: np.ndarray
    captured_path: Path
    loaded: tuple[Any, ...]  # /segue/link/loaded as it reached the test
    variant: np.ndarray
    land_beats: float  # where Segue told the plugin to play it
    state_keeps_variant: bool  # the saved session holds the variant's path in the plugin's state
    render: np.ndarray | None  # ardour7-export's render of the saved session
    log: str  # the plugin's log and Ardour's output


FORMATS = ("lv2", "vst3")


@pytest.fixture(scope="module", params=FORMATS)
def link_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinkRun]:
    need_ardour()
    fmt = request.param
    bundle = PLUGIN_BIN / ("segue-link.lv2" if fmt == "lv2" else "segue-link.vst3")
    if not bundle.exists() or (fmt == "lv2" and not (bundle / "manifest.ttl").is_file()):
        pytest.skip(f"the Segue Link plugin is not built ({bundle} missing): run `make plugin` (needs g++, dpf-source)")
    if not LOOP.is_file():
        pytest.skip(f"{LOOP} missing: install Debian's lmms-common (`make system-deps`)")
    if fmt == "vst3" and not VST3_SCANNER.is_file():
        pytest.skip(f"{VST3_SCANNER} missing: Ardour finds VST3 plugins only through its scanner's cache")
    tmp_path = tmp_path_factory.mktemp(f"link-{fmt}")
    started: list[Any] = []
    try:
        yield _live_run(fmt, tmp_path, started)
    finally:
        for proc in reversed(started):
            if isinstance(proc, LuaArdour):
                proc.stop()
            else:
                stop_process(proc)


def _ardour_env(tmp_path: Path) -> dict[str, str]:
    """A private Ardour config and cache: LV2 bundles through LV2_PATH (lilv), the VST3 through the
    plugin-path-vst3 option and a cache entry made by Ardour's own ardour-vst3-scanner."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env["LV2_PATH"] = str(PLUGIN_BIN)
    env["SEGUE_LINK_DIR"] = str(tmp_path / "captures")
    env.pop("JACK_DEFAULT_SERVER", None)
    config = tmp_path / "config" / "ardour7" / "config"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Ardour><Config>'
        f'<Option name="plugin-path-vst3" value="{PLUGIN_BIN}"/></Config></Ardour>\n'
    )
    if VST3_SCANNER.is_file():
        subprocess.run(
            [str(VST3_SCANNER), "-f", "-q", str(PLUGIN_BIN / "segue-link.vst3")],
            env=dict(env, LD_LIBRARY_PATH="/usr/lib/ardour7"),
            capture_output=True,
            timeout=60,
            check=False,
        )
    return env


def _live_run(fmt: str, tmp_path: Path, started: list[Any]) -> LinkRun:
    # the session: 97.5 BPM, 3/4, the clip on track "Clip" from bar 5, without region fades
    session_file = new_session(tmp_path, "link", rate=RATE, tempo_bpm=BPM, osc=False)
    set_meter(session_file, BEATS_PER_BAR)
    clip = make_clip(tmp_path / "clip.wav")
    clip_beat = (CLIP_BAR - 1) * BEATS_PER_BAR  # 12
    clip_at = int(np.ceil(beats_to_sample(clip_beat)))  # the first sample at or after bar 5's line (325661.54)
    inserted = insert_audio_file(session_file, tmp_path / "clip.wav", position_samples=clip_at, track_name="Clip")
    regions_without_fades(session_file)
    env = _ardour_env(tmp_path)

    # Segue: a real `segue bridge --daw link` process
    jobs = tmp_path / "jobs"
    bridge, bridge_address, bridge_log = start_bridge(
        ["--daw", "link", "--out", str(jobs)],
        SimpleNamespace(env=env),
        tmp_path,  # type: ignore[arg-type]
    )
    started.append(bridge)
    peer = OscPeer(bridge_address)
    try:
        # Ardour with the plugin on the clip's track, saying hello to that bridge
        ardour = LuaArdour(
            session_file, inserted.track_name, fmt, tmp_path, dict(env, SEGUE_OSC_PORT=str(bridge_address[1]))
        )
        started.append(ardour)
        ardour.wait_ready()

        def instances() -> int:
            return int(peer.request("/segue/link/list", "/segue/link/list").args[0])

        assert wait_until(lambda: instances() >= 1, 15), f"the plugin never said hello:\n{ardour.output[-2000:]}"

        # arm a 4-bar capture while stopped in the middle of bar 4, then roll: it records bars 5-8
        start_at = int(beats_to_sample(clip_beat - 1.5))
        ardour.run(
            f"Session:request_locate({start_at}, false, ARDOUR.LocateTransportDisposition.MustStop, "
            "ARDOUR.TransportRequestSource.TRS_UI)"
        )
        assert wait_until(lambda: ardour.run("return Session:transport_sample()") == str(start_at), 10)
        peer.send("/segue/link/capture", CAPTURE_BARS)
        time.sleep(1.0)  # the plugin arms on its next run(); bar 5 is 0.9 s of rolling further
        assert not peer.of("/segue/error"), peer.of("/segue/error")
        ardour.run("Session:request_roll(ARDOUR.TransportRequestSource.TRS_UI)")
        time.sleep(2.0)
        status = peer.request("/segue/status", "/segue/status").args

        # the capture ends at bar 9 (9.2 s of timeline after the start point): ask for a job until the region is in
        deadline = time.monotonic() + 60
        job_started = None
        while job_started is None and time.monotonic() < deadline:
            asked = time.monotonic()
            peer.send("/segue/generate", "continue", 2, 1)
            wait_until(lambda: bool(peer.of("/segue/job/started", asked) or peer.of("/segue/error", asked)), 5)  # noqa: B023
            job_started = next(iter(peer.of("/segue/job/started", asked)), None)
            if job_started is None:
                time.sleep(1.0)
        log = f"{ardour.output[-3000:]}\n{_plugin_log(tmp_path)}\n{bridge_log.read_text()[-2000:]}"
        assert job_started is not None, f"no region reached Segue:\n{log}"
        job_id = job_started.args[0]
        assert peer.wait_for("/segue/job/done", timeout=120).args[0] == job_id
        loaded = peer.wait_for("/segue/link/loaded", timeout=30).args
        ardour.run("Session:request_stop(false, false, ARDOUR.TransportRequestSource.TRS_UI)")
        record = json.loads((jobs / job_id / "job.json").read_text())
        land_beats = float(record["place_at"]["timeline_beats"])
        captured_path = Path(record["region"]["sources"][0]["path"])
        captured, rate = soundfile.read(captured_path, dtype="float32", always_2d=True)
        assert rate == RATE
        variant, variant_rate = soundfile.read(Path(loaded[1]), dtype="float32", always_2d=True)
        assert variant_rate == RATE

        # Ardour saves the session with the plugin's state
        ardour.run('Session:save_state("", false, false, false, false, false)')
        # ardour7-export renders the saved session in a fresh process
        ardour.stop()
        extend_session_range(session_file, int(beats_to_sample(land_beats)) + len(variant) + RATE)
        keeps = _state_holds(session_file.parent, loaded[1])
        render = _export(
            session_file, tmp_path / "render.wav", dict(env, SEGUE_OSC_PORT=str(bridge_address[1])), clip_at
        )
        return LinkRun(
            fmt, clip, clip_at, tuple(status), record, captured, captured_path, tuple(loaded), variant, land_beats,
            keeps, render, f"{ardour.output[-3000:]}\n{_plugin_log(tmp_path)}",
        )  # fmt: skip
    finally:
        peer.close()


def _plugin_log(tmp_path: Path) -> str:
    log = tmp_path / "captures" / "segue-link.log"
    return log.read_text(errors="replace")[-3000:] if log.is_file() else "(no plugin log)"


def _state_holds(folder: Path, text: str) -> bool:
    """Whether a saved session (its files, and any base64 blob in its XML, as VST3 state is kept) holds ``text``."""
    wanted = text.encode()
    for path in folder.rglob("*"):
        if not path.is_file() or path.stat().st_size > 50_000_000:
            continue
        data = path.read_bytes()
        if wanted in data:
            return True
        if path.suffix == ".ardour":
            for blob in re.findall(rb"[A-Za-z0-9+/=]{64,}", data):
                with contextlib.suppress(ValueError, binascii.Error):
                    if wanted in base64.b64decode(blob, validate=True):
                        return True
    return False


EXPORT_TRIES = 5
EXPORT_TIMEOUT = 90  # seconds; a render takes about 5 here


def _export(session_file: Path, out: Path, env: dict[str, str], silent_until: int) -> np.ndarray:
    """``ardour7-export -b float`` (its own Dummy backend, a fresh process), tried again (at most EXPORT_TRIES
    renders, each said so) when it hangs, when a signal kills it or when its render is wrong where the timeline
    holds nothing.

    ardour7-export 7.3 is not reliable on a loaded machine, with or without the plugin. Measured here on the saved
    session of this module's LV2 case with the plugin left out (LV2_PATH empty), its files evicted from the page
    cache before each of 60 exports, two busy loops at nice 19: 50 renders exact, 7 with the whole mix 16 frames
    early, 2 aborts (SIGABRT, "double free or corruption" as in ardour_procs.export), 1 hang. With the plugin, in
    1 of 9 runs of the LV2 case: one value (-1.8e-9) added to the right channel at every 2048th frame the whole
    render long, before the clip as much as over the variant (2048 = the ring of Ardour's export delay line,
    PortExportChannel, for 1024-frame cycles; those frames lie inside the plugin's blocks, where it leaves its
    buffer as it came or writes the variant whatever its input: the value is added after it). The CI failure
    (best match 16 frames early, error 1.6e10) is of these kinds. Both show before the clip: the render must be
    digital silence before ``silent_until`` (the clip's first sample; nothing is on the timeline there and the
    plugin passes its input through), else it is rendered again. The accepted render must still hold the variant
    exactly on its sample."""
    argv = ["ardour7-export", "-b", "float", "-o", str(out), str(session_file.parent), session_file.stem]
    tries: list[str] = []
    result = None
    for _ in range(EXPORT_TRIES):
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=EXPORT_TIMEOUT, check=False, env=env)
        except subprocess.TimeoutExpired:
            tries.append(f"hung, killed after {EXPORT_TIMEOUT} s")
            print(f"  ardour7-export {tries[-1]}; trying again")
            out.unlink(missing_ok=True)
            continue
        if result.returncode < 0:
            tries.append(f"killed by signal {-result.returncode}: {result.stderr[-300:]}")
            print(f"  ardour7-export was {tries[-1]}; trying again")
            out.unlink(missing_ok=True)
            continue
        if result.returncode != 0 or not out.is_file():
            break
        render, rate = soundfile.read(out, dtype="float32", always_2d=True)
        assert rate == RATE
        noise = _not_silent(render[:silent_until])
        if noise is None:
            return render
        tries.append(f"a corrupt render: {noise}")
        print(f"  ardour7-export wrote {tries[-1]}; rendering again")
        out.unlink()
    last = "" if result is None else f"exit {result.returncode}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    pytest.fail(f"ardour7-export gave no usable render (tries: {tries}); the last: {last}")


def _not_silent(audio: np.ndarray) -> str | None:
    """None when ``audio`` is all zeros, else where it is not (frames, channels, frames mod 2048, values)."""
    frames, channels = np.nonzero(audio)
    if len(frames) == 0:
        return None
    values = np.unique(audio[frames, channels])
    return (
        f"{len(frames)} non-zero samples of {audio.size} before the clip, channel(s) {sorted(set(channels.tolist()))}, "
        f"first at frame(s) {frames[:4].tolist()}, frames mod 2048 {sorted(set((frames % 2048).tolist()))[:8]}, "
        f"{len(values)} value(s) {values[:4].tolist()}"
    )


def test_segue_follows_the_plugins_transport_in_ardour(link_run: LinkRun) -> None:
    tempo, playing, position, source = link_run.status_playing
    print(f"\n{link_run.fmt}: /segue/status while Ardour played: {link_run.status_playing}")
    assert source.startswith("link:") and playing == 1 and tempo == pytest.approx(BPM, abs=1e-3)
    assert 10.5 < position < 24.0  # between the start point and the capture's end, in quarter notes


def test_the_capture_reaches_segue_with_its_start_length_tempo_and_meter(link_run: LinkRun) -> None:
    region = link_run.record["region"]
    print(f"\n{link_run.fmt}: region {region['start_beats']} + {region['length_beats']} beats, "
          f"{region['tempo_bpm']} BPM {region['meter']}")  # fmt: skip
    assert region["start_beats"] == pytest.approx((CLIP_BAR - 1) * BEATS_PER_BAR, abs=1e-6)  # bar 5
    assert region["length_beats"] == pytest.approx(CAPTURE_BARS * BEATS_PER_BAR, abs=1e-4)
    assert region["tempo_bpm"] == pytest.approx(BPM, abs=1e-3) and region["meter"] == "3/4"
    assert region["sample_rate"] == RATE


def test_the_captured_audio_is_the_clip_sample_for_sample(link_run: LinkRun) -> None:
    """The capture starts on the first sample at or after bar 5's line (325661.54: sample 325662, where the clip
    starts), so it equals the clip from its first sample; the plugin reports no latency."""
    captured, clip = link_run.captured, link_run.clip
    offsets = [k for k in range(-32, 33) if _same(captured, clip, k)]
    expected_frames = round(beats_to_sample(24)) - round(beats_to_sample(12))
    print(
        f"\n{link_run.fmt}: captured {len(captured)} frames (12 beats: {expected_frames}) into "
        f"{link_run.captured_path.name}; equal to the clip at offset(s) {offsets} (0: from its first sample)"
    )
    assert offsets == [0], f"the captured audio is the clip at offsets {offsets}\n{link_run.log}"
    assert abs(len(captured) - expected_frames) <= 1


def test_the_variant_lands_on_its_sample_in_ardours_render(link_run: LinkRun) -> None:
    """ardour7-export, a fresh process: the plugin reloads the variant from the state Ardour saved."""
    assert link_run.state_keeps_variant, "the saved session does not hold the played variant in the plugin's state"
    assert link_run.render is not None
    found = _landing(link_run.render, link_run.variant, link_run.land_beats, 0)
    print(f"\n{link_run.fmt}: ardour7-export: {found}")
    where = _deviation(link_run.render, link_run.variant, found.expected)
    assert found.exact and found.at == found.expected, f"{found}; at its sample: {where}\n{link_run.log}"


@dataclass(frozen=True)
class Landing:
    expected: int  # the first timeline sample at or after the variant's beat
    at: int  # where the render matches the variant best, within 16 samples of it
    exact: bool  # the render equals the variant there, sample for sample (every frame of it)
    max_error: float


def _landing(render: np.ndarray, variant: np.ndarray, beats: float, render_at: int) -> Landing:
    """Where ``variant`` is in ``render`` (whose first frame is timeline sample ``render_at``)."""
    expected = int(np.ceil(beats_to_sample(beats) - 1e-6))
    errors = {}
    for at in range(expected - 16, expected + 17):
        start = at - render_at
        segment = render[start : start + len(variant)]
        if start >= 0 and len(segment) == len(variant):
            errors[at] = float(np.max(np.abs(segment - variant)))
    assert errors, f"the render ({len(render)} frames from sample {render_at}) does not reach sample {expected}"
    best = min(errors, key=lambda at: errors[at])
    return Landing(expected, best, errors[best] == 0.0, errors[best])


def _deviation(render: np.ndarray, variant: np.ndarray, at: int) -> str:
    """Where ``render`` (from timeline sample 0) differs from ``variant`` placed at ``at``, for a failure message."""
    segment = render[at : at + len(variant)]
    if segment.shape != variant.shape:
        return f"the render ends at {len(render)}"
    diff = segment != variant
    frames, channels = np.nonzero(diff)
    if len(frames) == 0:
        return "equal"
    return (
        f"{len(frames)} samples differ, channel(s) {sorted(set(channels.tolist()))}, first at frame(s) "
        f"{(frames[:4] + at).tolist()}, frames mod 2048 {sorted(set(((frames + at) % 2048).tolist()))[:8]}, "
        f"largest {float(np.max(np.abs(segment[diff] - variant[diff]))):.4g}"
    )


def _same(audio: np.ndarray, reference: np.ndarray, offset: int) -> bool:
    """Whether ``audio`` equals ``reference`` shifted by ``offset`` samples over all the frames they share
    (exactly, as float32)."""
    if offset >= 0:
        a, b = audio[offset:], reference
    else:
        a, b = audio, reference[-offset:]
    n = min(len(a), len(b))
    return n > 0 and bool(np.array_equal(a[:n], b[:n]))
