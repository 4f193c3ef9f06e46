"""A real, headless Ardour 7.3 (``ardour7-lua`` on a JACK dummy server) driven by Segue: MIDI clock into the
``segue bridge`` daemon, the Ardour OSC adapter, and files placed into a session and rendered by Ardour itself.
Helpers in ardour_procs.py; everything on 127.0.0.1, every wait bounded, every process stopped at teardown.

The JACK server runs with realtime scheduling (``jack_server_factory(realtime=True)``): without it, other jobs on
a 2-core machine starve the dummy driver, which then drops the time of every late cycle, and Ardour's whole
timeline, clock included, runs slow against the wall clock (0.1-2 % here, once 10.6 %).

Measured on a 2-core Debian bookworm box at load 3-5 (JACK dummy driver, 48 kHz, 1024-frame periods), whole file
75-90 s (each Ardour start that JACK drops costs 3-4 s more):

* Clock: the bridge's tempo is within 0.002-0.011 BPM of the clock the test hears on the same port. Against the
  session's nominal tempo: 0.02-0.05 BPM at 97.5, and 0.07-0.09 BPM at 120 (0.115 once, without realtime): with
  1000-frame clocks in 1024-frame periods the arrival stamps beat against the period, and a line through two
  bars of them dips by up to 0.1 BPM about 5 s after play (the test's own fit shows the same dip); over four bars
  it settles within 0.01. Position: the ``--daw ardour`` bridge equals Ardour's last report;
  the clock-only bridge is within 0.07 beats of Ardour's position extrapolated to the reply. Stop is seen within
  0.05 s (the next status request).
* Adapter: locate lands on the exact sample; bar|beat|tick and samples agree within 0.5 tick; the marker is
  saved at the playhead's exact sample.
* Placement: every click of the placed variant is at its exact sample in Ardour's render (offset 0), the
  variant starting at sample 472615 = bar 5 at 97.5 BPM (472615.38).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from ardour_procs import (
    MIDI_CLOCK_OUT,
    ArdourProcess,
    export,
    lua_string,
    markers,
    need_ardour,
    new_session,
    run_offline,
)
from daw_peers import ClockObserver, OscPeer, start_bridge
from jack_procs import JackServer, stop_process, wait_until

from bridge.adapters.ardour import ArdourAdapter
from bridge.adapters.ardour_session import insert_audio_file
from bridge.jobs import JobRecord, ParamsRecord, RegionRecord, VariantRecord
from bridge.placement import place_variant

pytestmark = pytest.mark.integration

RATE = 48_000
PERIOD = 1024  # frames per JACK period (NOTES.md); see test_bridge_follows_ardour_clock on 256
SET_SURFACE = (0, 159, 3192, 0, 0, 0, 0)  # what the adapter sends: feedback of bar/beat, samples, time...
TEMPO_BOUND_BPM = 0.1  # the "done" criterion, on every /segue/status reply after two bars


@pytest.fixture
def ardour_factory(
    jack_server_factory: Callable[..., JackServer], tmp_path: Path
) -> Iterator[Callable[..., ArdourProcess]]:
    """``start(server, session_file)``: Ardour running that session, OSC on, sending MIDI clock; stopped after."""
    need_ardour()
    started: list[ArdourProcess] = []

    def start(server: JackServer, session_file: Path, **kwargs: object) -> ArdourProcess:
        workdir = tmp_path / f"ardour-{len(started)}"
        workdir.mkdir()
        ardour = ArdourProcess(session_file, server, workdir, **kwargs)  # type: ignore[arg-type]
        started.append(ardour)
        ardour.start()
        return ardour

    yield start
    for ardour in reversed(started):
        ardour.stop()


@pytest.fixture
def bridge_factory(
    jack_server_factory: Callable[..., JackServer], tmp_path: Path
) -> Iterator[Callable[..., tuple[str, int]]]:
    """``start(server, *args)``: ``segue bridge --osc-port 0 ARGS`` as a subprocess; its OSC address. SIGTERM after."""
    procs: list[tuple[subprocess.Popen[str], Path]] = []

    def start(server: JackServer, *args: str) -> tuple[str, int]:
        proc, address, log = start_bridge(args, server, tmp_path)
        procs.append((proc, log))
        return address

    yield start
    for proc, log in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                stop_process(proc)  # type: ignore[arg-type]
        print(f"--- {log.name} (exit {proc.returncode}):\n{log.read_text(errors='replace')[-1500:]}")


def clock_connected(server: JackServer, count: int = 1) -> bool:
    """At least ``count`` inputs (the bridges' rtmidi ports, the test's ear) are connected to Ardour's clock out."""
    lines = server.run("jack_lsp", "-c", MIDI_CLOCK_OUT, timeout=5).stdout.splitlines()
    return sum(1 for line in lines if line.startswith((" ", "\t")) and line.strip()) >= count


def beats_of(samples: int, bpm: float) -> float:
    return samples / RATE * bpm / 60.0


def positions(daw: OscPeer, since: float = 0.0, until: float | None = None) -> list[tuple[float, int]]:
    """Ardour's ``/position/samples`` feedback to ``daw`` as (arrival time, samples); Ardour sends the samples as
    a decimal string (blank now and then while it starts)."""
    out = []
    for r in daw.of("/position/samples", since):
        text = str(r.args[0]).strip() if r.args else ""
        if (until is None or r.at <= until) and text.isdigit():
            out.append((r.at, int(text)))
    return out


def latest_samples(daw: OscPeer, before: float | None = None) -> tuple[float, int]:
    """Ardour's last ``/position/samples`` feedback to ``daw`` (arrival time, samples)."""
    got = positions(daw, until=before)
    assert got, "no /position/samples feedback from Ardour"
    return got[-1]


def status(client: OscPeer) -> tuple[float, float, int, float, str]:
    """(arrival, tempo, playing, position_beats, source) of a fresh ``/segue/status`` reply."""
    reply = client.request("/segue/status", "/segue/status", timeout=3)
    tempo, playing, position, source = reply.args
    return reply.at, float(tempo), int(playing), float(position), str(source)


# -- 1. the "done" criterion: Ardour's MIDI clock -> segue bridge -> /segue/status -------------------


def timeline_speed(daw: OscPeer, since: float, until: float) -> float:
    """Ardour's timeline speed against the wall clock (1.0: 48000 samples per second), from a least-squares line
    through its ``/position/samples`` feedback (every 100 ms, each quantized to a JACK period) between ``since``
    and ``until``; about +-0.05 % of noise over 5 s."""
    points = [p for p in positions(daw, since, until) if p[1] > 0]
    assert len(points) >= 10, f"only {len(points)} position reports between {since:.1f} and {until:.1f}"
    at = np.array([p[0] for p in points])
    samples = np.array([p[1] for p in points], dtype=float)
    slope = np.polyfit(at - at[0], samples, 1)[0]
    return float(slope / RATE)


@pytest.mark.parametrize("bpm", [97.5, 120.0])
def test_bridge_follows_ardour_clock(
    jack_server_factory: Callable[..., JackServer],
    ardour_factory: Callable[..., ArdourProcess],
    bridge_factory: Callable[..., tuple[str, int]],
    tmp_path: Path,
    bpm: float,
) -> None:
    """Ardour plays a session at ``bpm`` and sends MIDI clock; ``segue bridge`` follows it; a plain OSC client asks
    ``/segue/status`` after two bars: tempo within 0.1 BPM, playing, position in beats where Ardour says it is;
    then Ardour stops and the bridge says so.

    Two bridges run side by side: ``--daw ardour --midi-clock-in`` (position and play state from Ardour's OSC
    feedback, tempo from the clock: what a producer runs) and ``--midi-clock-in`` alone (everything from the clock).

    The tempo is compared with the clock Ardour really delivered, as the test itself hears it on the same port
    (:class:`ClockObserver`): the JACK dummy driver drops the time of every late cycle, so a starved machine slows
    the whole session, clock included, against the wall clock the bridge measures in (realtime scheduling keeps
    that within about 0.1 %). The figures against the nominal tempo are printed too, with Ardour's timeline speed
    measured independently from its position feedback. If that speed shows JACK losing more than 0.5 % of its
    time (without realtime: 2 % and once 10.6 %, while other jobs hogged both cores), Ardour did not send the
    session's tempo at all, and the test is skipped with the figures rather than passed or failed.

    1024-frame periods (NOTES.md): on 256-frame periods without realtime Ardour itself fell behind here (its
    timeline ran 0.85-2.4 % slow, 90-130 ms gaps between clocks); 1024 was the steadier source.
    """
    server = jack_server_factory(period=PERIOD, realtime=True)
    ardour = ardour_factory(server, new_session(tmp_path, "clock", tempo_bpm=bpm))
    jobs = str(tmp_path / "jobs")
    with_daw = bridge_factory(
        server, "--daw", "ardour", "--daw-port", str(ardour.osc_port), "--midi-clock-in", MIDI_CLOCK_OUT, "--out", jobs
    )
    clock_only = bridge_factory(server, "--midi-clock-in", MIDI_CLOCK_OUT, "--out", jobs)
    daw = OscPeer(ardour.osc_address)  # the test's own view of Ardour (a second OSC surface)
    clients = {"ardour+clock": OscPeer(with_daw), "clock": OscPeer(clock_only)}
    ear = ClockObserver()
    try:
        daw.send("/set_surface", *SET_SURFACE)
        daw.wait_for("/position/samples", timeout=5)
        assert wait_until(lambda: clock_connected(server, 3), 10), "the bridges never connected to Ardour's clock"
        for client in clients.values():
            _, _, playing, _, source = status(client)
            assert playing == 0 and "midi-clock:ardour:MIDI Clock out" in source and "(stale)" not in source, source
        assert wait_until(lambda: "(no feedback)" not in status(clients["ardour+clock"])[4], 5)

        t_play = time.monotonic()
        daw.send("/transport_play")
        bar_s = 4 * 60.0 / bpm
        time.sleep(2 * bar_s)
        report = []
        for name, client in clients.items():
            rows = []
            for _ in range(4):
                at, tempo, playing, position, source = status(client)
                fb_at, fb_samples = latest_samples(daw, before=at)
                assert playing == 1, f"{name}: not playing after two bars ({source})"
                heard, _ = ear.tempo(until=at)
                rows.append((tempo, heard, position, beats_of(fb_samples, bpm), (at - fb_at) * bpm / 60.0))
                time.sleep(0.15)
            report.append((name, rows))
        speed = timeline_speed(daw, t_play + 0.5, time.monotonic())
        print(
            f"\n{bpm:g} BPM, JACK period {PERIOD}: Ardour's timeline ran at {speed:.5f} x real time; "
            f"its clock as heard: {', '.join(f'{r[1]:.3f}' for _, rows in report for r in rows)} BPM"
        )
        for name, rows in report:
            # the bridge's position vs Ardour's last report before the reply, and that report + the time since
            print(
                f"  {name:12} tempo {', '.join(f'{r[0]:.3f}' for r in rows)} BPM: off the clock heard by "
                f"{max(abs(r[0] - r[1]) for r in rows):.3f}, off nominal by {max(abs(r[0] - bpm) for r in rows):.3f}"
                f"; position - Ardour's last report {', '.join(f'{r[2] - r[3]:+.3f}' for r in rows)} beats "
                f"(- extrapolated {', '.join(f'{r[2] - r[3] - r[4]:+.3f}' for r in rows)})"
            )
        if speed < 0.995:  # measured on Ardour's own timeline, independently of any clock
            pytest.skip(
                f"this machine is too loaded for a timing test just now: the JACK dummy server lost "
                f"{100 * (1 - speed):.1f} % of its time (Ardour's timeline ran at {speed:.4f} x real time), so Ardour "
                f"did not send {bpm:g} BPM in wall-clock time; figures above"
            )
        for name, rows in report:
            for tempo, heard, position, reported, since_report in rows:
                # the session tempo, give or take what the dummy JACK server loses under load (up to 0.26 % seen)
                assert abs(heard - bpm) < 0.005 * bpm, (
                    f"Ardour's clock ran at {heard:.3f} BPM for a {bpm:g} BPM session"
                )
                assert abs(tempo - heard) < TEMPO_BOUND_BPM, f"{name}: {tempo:.3f} BPM for a clock at {heard:.3f}"
                # Ardour reports every 100 ms (0.16-0.2 beats at these tempos); both views see the same reports
                assert reported - 0.1 <= position <= reported + since_report + 0.1, (name, position, reported)

        daw.send("/transport_stop")
        t_stop = time.monotonic()
        for name, client in clients.items():
            assert wait_until(lambda c=client: status(c)[2] == 0, 3), f"{name}: stop not detected"  # type: ignore[misc]
            print(f"  {name:12} stop detected {time.monotonic() - t_stop:.2f} s after /transport_stop")
    finally:
        ear.close()
        daw.close()
        for client in clients.values():
            client.close()


# -- 2. the Ardour adapter driving the real Ardour ---------------------------------------------------------


def test_adapter_controls_ardour(
    jack_server_factory: Callable[..., JackServer], ardour_factory: Callable[..., ArdourProcess], tmp_path: Path
) -> None:
    bpm = 120.0
    server = jack_server_factory(period=PERIOD, realtime=True)
    session_file = new_session(tmp_path, "adapter", tempo_bpm=bpm)
    ardour = ardour_factory(server, session_file, send_midi_clock=False)
    adapter = ArdourAdapter(ardour.osc_address, register_interval_s=0.5)
    pairs: list[tuple[tuple[int, int, int] | None, int]] = []  # (bar|beat|tick, samples) of one feedback round
    on_samples = adapter.link.handlers["/position/samples"]

    def spy(args: list[object]) -> None:  # Ardour sends /position/bbt just before /position/samples, every 100 ms
        on_samples(args)
        state = adapter.state()
        if state.position_samples is not None:
            pairs.append((state.bbt, state.position_samples))

    adapter.link.handlers["/position/samples"] = spy
    adapter.start()
    try:
        assert wait_until(lambda: adapter.state().feedback_at is not None, 5), "no feedback after /set_surface"
        assert "(no feedback)" not in adapter.transport().clock_source

        # locate while stopped: 5 s = 10 beats = bar 3, beat 3 at 120 BPM
        target = 5 * RATE
        adapter.locate(target)
        assert wait_until(lambda: adapter.state().position_samples == target, 3), adapter.state()
        assert wait_until(lambda: adapter.state().bbt == (3, 3, 0), 2), adapter.state()
        assert adapter.transport().position_beats == pytest.approx(10.0) and not adapter.state().playing

        # play: the position moves at the session's rate, and bar|beat|tick agrees with samples at 120 BPM
        adapter.play()
        t_play = time.monotonic()
        assert wait_until(lambda: adapter.state().playing, 3), "play not reported"
        time.sleep(1.5)
        rolled = adapter.state().position_samples
        assert rolled is not None
        elapsed = time.monotonic() - t_play
        rolling = [(b, s) for b, s in pairs if b is not None and s > target]
        assert len(rolling) >= 8, f"only {len(rolling)} position reports while playing"
        worst = max(abs(adapter._beats(b) - beats_of(s, bpm)) for b, s in rolling)
        print(
            f"\nadapter: {len(rolling)} reports while playing; bar|beat|tick vs samples worst {worst * 1920:.1f} "
            f"ticks; moved {(rolled - target) / RATE:.3f} s of timeline in {elapsed:.3f} s"
        )
        assert worst <= 2 / 1920  # the same feedback round: equal up to tick rounding
        assert 0.5 * elapsed <= (rolled - target) / RATE <= elapsed + 0.2

        # stop: reported, and the playhead stays put
        adapter.stop()
        assert wait_until(lambda: not adapter.state().playing, 3), "stop not reported"
        stopped: list[int] = []

        def settled() -> bool:
            position = adapter.state().position_samples
            stopped.append(-1 if position is None else position)
            return len(stopped) >= 4 and len(set(stopped[-4:])) == 1

        assert wait_until(settled, 3, interval=0.11), f"the playhead kept moving after stop: {stopped[-4:]}"
        playhead = stopped[-1]

        # a marker at the playhead, saved by Ardour (/save_state) and read back from the session file
        adapter.add_marker("segue-marker")
        adapter.link.send("/save_state")
        found: dict[str, int] = {}

        def marker_saved() -> bool:
            try:
                found.update(markers(session_file))
            except Exception:  # noqa: BLE001 - read while Ardour writes it: try again
                return False
            return "segue-marker" in found

        assert wait_until(marker_saved, 5), f"no marker in {session_file.name} after /save_state: {found}"
        print(f"adapter: marker saved at sample {found['segue-marker']}, playhead at {playhead}")
        assert found["segue-marker"] == playhead
    finally:
        adapter.close()


# -- 3. a placed variant, inserted into a closed session and rendered by Ardour --------------------------------


def click_track(length: int, clicks: list[int], amplitude: float = 0.5) -> np.ndarray:
    audio = np.zeros(length, dtype=np.float32)
    audio[clicks] = amplitude
    return audio


def clicks_in(render: np.ndarray, threshold: float = 0.05) -> list[int]:
    """Sample indices where the (mono or stereo) render passes ``threshold``."""
    level = np.abs(render).max(axis=1) if render.ndim == 2 else np.abs(render)
    return [int(i) for i in np.flatnonzero(level > threshold)]


LUA_REGIONS = """\
local session = load_session({folder}, {name})
for route in Session:get_tracks():iter() do
  for region in route:to_track():playlist():region_list():iter() do
    print(string.format("REGION|%s|%d|%d", route:name(), region:position():samples(), region:length():samples()))
  end
end
close_session()
quit()
"""


def test_placed_variant_rendered_by_ardour(tmp_path: Path) -> None:
    need_ardour()
    bpm, beat = 97.5, 60.0 / 97.5
    beat_samples = beat * RATE
    # the producer's region: 2 bars from bar 3 (beat 8), already on a track; Segue continues it by one bar
    region_start_beats, region_beats = 8.0, 8.0
    original = new_session(tmp_path, "song", tempo_bpm=bpm, osc=False)
    region_wav = tmp_path / "region.wav"
    region_at = round(region_start_beats * beat_samples)
    region_len = round((region_start_beats + region_beats) * beat_samples) - region_at
    region_clicks = [200 + round(k * beat_samples) for k in range(8)]  # 200: after Ardour's 64-sample fade-in
    soundfile.write(region_wav, click_track(region_len, region_clicks), RATE, subtype="FLOAT")
    insert_audio_file(original, region_wav, position_samples=region_at, track_name="Vocal")

    # the job folder as the engine leaves it, and the copy placement makes (BWF time reference at the bar after)
    job_id = "20260131-120000-vocal-continue-ab12"
    job_dir = tmp_path / "jobs" / job_id
    (job_dir / "v01").mkdir(parents=True)
    continuation_len = round(4 * beat_samples)
    continuation_clicks = [200] + [round(k * beat_samples) for k in (1, 2, 3)]
    soundfile.write(
        job_dir / "v01" / "continuation.wav", click_track(continuation_len, continuation_clicks), RATE, subtype="FLOAT"
    )
    variant = VariantRecord("v01", 7, {"audio": "v01/continuation.wav"}, 4 * beat)
    record = JobRecord(
        id=job_id,
        status="done",
        mode="continue",
        kind="audio",
        model="fake",
        engine="fake",
        params=ParamsRecord(1, 1, 1.0, 0.95, 7),
        region=RegionRecord(sources=(), tempo_bpm=bpm, meter="4/4", start_beats=region_start_beats),
        created="2026-01-31T12:00:00.000+00:00",
        updated="2026-01-31T12:00:00.000+00:00",
        segue_version="0",
        variants=(variant,),
    )
    position_seconds = (region_start_beats + region_beats) * 60.0 / bpm  # bar 5, as the bridge computes it
    [placed] = place_variant(job_dir, record, variant, "Vocal", position_seconds)
    expected_at = round(position_seconds * RATE)
    assert placed.time_reference == expected_at

    # into a closed copy of the session, at the file's own time reference; then Ardour reads and renders it
    session_dir = tmp_path / "copy"
    shutil.copytree(original.parent, session_dir)
    session_file = session_dir / original.name
    t0 = time.monotonic()
    inserted = insert_audio_file(session_file, placed.path, track_name="Vocal")  # position from the bext chunk
    assert inserted.position_samples == expected_at and inserted.track_name == "Vocal 2"

    script = tmp_path / "regions.lua"
    script.write_text(LUA_REGIONS.format(folder=lua_string(str(session_dir)), name=lua_string(session_file.stem)))
    listed = run_offline(["ardour7-lua", str(script)], tmp_path)
    regions = {
        line.split("|")[1]: tuple(map(int, line.split("|")[2:]))
        for line in listed.stdout.splitlines()
        if line.startswith("REGION|")
    }
    print(f"\nArdour lists: {regions}")
    assert regions == {"Vocal": (region_at, region_len), "Vocal 2": (expected_at, continuation_len)}, listed.stdout

    out = tmp_path / "render.wav"
    export(session_file, out)
    render, rate = soundfile.read(out, dtype="float32", always_2d=True)
    took = time.monotonic() - t0
    assert rate == RATE
    found = clicks_in(render)
    want = sorted([region_at + c for c in region_clicks] + [expected_at + c for c in continuation_clicks])
    assert len(found) == len(want), f"clicks at {found}, expected at {want}"
    offsets = [f - w for f, w in zip(found, want, strict=True)]
    onset = found[len(region_clicks)] - continuation_clicks[0]  # where the continuation's first sample landed
    print(
        f"render: {len(found)} clicks, offsets from the expected samples {sorted(set(offsets))}; the continuation "
        f"starts at sample {onset} (bar 5 at {bpm:g} BPM = {(region_start_beats + region_beats) * beat_samples:.2f}; "
        f"bext {placed.time_reference}); the region ends at {region_at + region_len}; insert+list+render {took:.1f} s"
    )
    assert max(abs(o) for o in offsets) <= 2
    assert abs(onset - (region_start_beats + region_beats) * beat_samples) <= 1.0
