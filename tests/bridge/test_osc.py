"""The OSC layer: handlers without sockets (a fake sender), then real UDP round trips on 127.0.0.1."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine, write_midi_region, write_wav
from osc_helpers import CLIENT, DawSocket, Recorder
from pythonosc.osc_message_builder import build_msg
from pythonosc.udp_client import SimpleUDPClient

from bridge import segue_version
from bridge.bwf import read_bext
from bridge.jobs import JobRecord, VariantRecord
from bridge.osc import MAX_STRING_CHARS, OscBridge, OscServer, check_arguments
from bridge.placement import PlacedFile, place_or_original
from bridge.service import MAX_WAITING_PLACEMENTS, BridgeService, Placer
from engine.errors import EngineError


class Harness:
    """An OscBridge over a started service with a FakeEngine; replies recorded, no sockets."""

    def __init__(self, tmp_path: Path, place: str = "first", placer: Placer = place_or_original) -> None:
        self.engine = FakeEngine()
        self.region = write_midi_region(tmp_path / "region.mid").resolve()
        self.out = tmp_path / "out"
        self.service = BridgeService(self.engine, self.out, place=place, placer=placer)  # type: ignore[arg-type]
        self.bridge = OscBridge(self.service)
        self.sent = Recorder()
        self.bridge.attach(self.sent)
        self.service.start()

    def send(self, address: str, *args: Any) -> None:
        self.bridge.handle_datagram(build_msg(address, list(args)).dgram, CLIENT)

    def send_region(self, start: float = 16.0, tempo: float = 100.0) -> None:
        self.send("/segue/region", "", str(self.region), start, 8.0, tempo, 4, 4, "Keys")

    def errors(self) -> list[str]:
        return [args[0] for args in self.sent.of("/segue/error")]


@pytest.fixture
def osc(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.service.close()


def test_ping_answers_pong_to_the_sender(osc: Harness) -> None:
    osc.send("/segue/ping")
    assert osc.sent.sent == [(CLIENT, "/segue/pong", [segue_version()])]


def test_status_defaults_then_the_region_tempo(osc: Harness) -> None:
    osc.send("/segue/status")
    osc.send_region(tempo=97.5)
    osc.send("/segue/status")
    assert osc.sent.of("/segue/status") == [[0.0, 0, 0.0, "none"], [97.5, 0, 0.0, "none"]]


def test_region_then_generate_runs_a_job_and_places_it(osc: Harness) -> None:
    osc.send_region(start=16.0, tempo=100.0)
    assert osc.service.region is not None and osc.service.region.midi_path == osc.region
    osc.send("/segue/generate", "continue", 2, 2)
    places = osc.sent.wait_for("/segue/place", count=2)
    (job_id,) = [args[0] for args in osc.sent.of("/segue/job/started")]
    assert osc.sent.of("/segue/job/done") == [[job_id, str(osc.out / job_id / "job.json")]]
    # place_at is 8 beats after the region (FakeEngine): 16 + 8 = 24 beats = 14.4 s at the region's 100 BPM
    # named copies in place/: <track>_<job id's suffix>_<variant>_<part>
    short = job_id.rsplit("-", 1)[1]
    place = osc.out / job_id / "place"
    assert places == [
        [str(place / f"keys_{short}_v01_mix.wav"), 24.0, pytest.approx(14.4), "Keys (Segue v01)", "audio"],
        [str(place / f"keys_{short}_v01.mid"), 24.0, pytest.approx(14.4), "Keys (Segue v01)", "midi"],
    ]
    assert osc.errors() == []
    request = osc.engine.requests[0]
    assert (request.params.bars, request.params.variants, request.prompt.start_beats) == (2, 2, 16.0)


def test_accompany_with_parts_is_placed_at_the_region_start(osc: Harness) -> None:
    osc.send_region(start=16.0, tempo=100.0)
    osc.send("/segue/generate", "accompany", 2, 2, "Bass, piano", "midi")
    places = osc.sent.wait_for("/segue/place", count=2)
    assert osc.errors() == []
    params = osc.engine.requests[0].params
    assert (params.mode, params.parts, params.output, params.variants) == ("accompany", ("bass", "piano"), "midi", 2)
    (job_id,) = [args[0] for args in osc.sent.of("/segue/job/started")]
    record = json.loads((osc.out / job_id / "job.json").read_text())
    assert record["mode"] == "accompany" and record["place_at"]["beats"] == 0.0
    assert record["place_at"]["timeline_beats"] == 16.0 and record["params"]["parts"] == ["bass", "piano"]
    # the accompaniment goes where the region is: beat 16 = 9.6 s at 100 BPM (not the bar after it)
    assert [(args[1], args[2], args[4]) for args in places] == [
        (16.0, pytest.approx(9.6), "audio"),
        (16.0, pytest.approx(9.6), "midi"),
    ]
    assert all(Path(args[0]).is_file() for args in places)
    bext = read_bext(Path(places[0][0]))  # the placed mix is stamped with the region's start, for "spot"
    assert bext is not None and bext.time_reference == round(9.6 * 8000)  # the fake's 8 kHz
    osc.sent.clear()
    osc.send("/segue/generate", "accompany", 2, 1, "")  # "": the model's default parts; output left out: auto
    osc.sent.wait_for("/segue/job/done")
    assert osc.engine.requests[1].params.parts == () and osc.engine.requests[1].params.output == "auto"
    osc.send("/segue/generate", "continue", 2, 1)  # the three-argument form still works
    osc.sent.wait_for("/segue/job/done", count=2)
    assert osc.errors() == []


def test_choose_places_the_chosen_variant(osc: Harness) -> None:
    osc.send_region()
    osc.send("/segue/generate", "continue", 1, 2)
    osc.sent.wait_for("/segue/place", count=2)
    job_id = osc.sent.of("/segue/job/done")[0][0]
    osc.sent.clear()
    osc.send("/segue/choose", job_id, 2.0)  # an integral float is accepted where an int is expected
    short = job_id.rsplit("-", 1)[1]
    osc.sent.wait_for("/segue/place", count=2)  # copied on the service's placement thread
    assert [args[0] for args in osc.sent.of("/segue/place")] == [
        str(osc.out / job_id / "place" / f"keys_{short}_v02_mix.wav"),
        str(osc.out / job_id / "place" / f"keys_{short}_v02.mid"),
    ]
    osc.send("/segue/choose", job_id, 3)
    osc.send("/segue/choose", "../../etc", 1)
    assert "has no variant 3; it has 1, 2" in osc.errors()[0]
    assert "is not a job id" in osc.errors()[1]


class SlowPlacer:
    """A placer that holds every placement until :attr:`release` is set (bounded), then places for real."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: list[str] = []
        self.error: Exception | None = None

    def __call__(
        self, job_dir: Path, record: JobRecord, variant: VariantRecord, track: str, position_seconds: float | None
    ) -> list[PlacedFile]:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        assert self.release.wait(10), "the test never released the placement"
        if self.error is not None:
            raise self.error
        return place_or_original(job_dir, record, variant, track, position_seconds)


def _done_job(harness: Harness, variants: int = 2) -> str:
    harness.send_region()
    harness.send("/segue/generate", "continue", 1, variants)
    return str(harness.sent.wait_for("/segue/job/done")[0][0])


def test_ping_is_answered_while_a_slow_placement_runs(tmp_path: Path) -> None:
    """/segue/choose copies files off the OSC thread: pings and status are answered while a copy is stuck."""
    placer = SlowPlacer()
    harness = Harness(tmp_path, place="none", placer=placer)
    job_id = _done_job(harness)  # replies recorded until the UDP server attaches its own send
    server = OscServer(harness.bridge, "127.0.0.1", 0)
    server.start()
    daw = DawSocket(server.address)
    try:
        daw.send("/segue/choose", job_id, 2)
        assert placer.entered.wait(5), "the placement never started"
        assert daw.ping(attempts=2, timeout=2.0) == [segue_version()]  # the dispatcher is free
        daw.send("/segue/status")
        assert daw.expect("/segue/status", timeout=2.0)[3] == "none"
        assert [a for a, _ in daw.received if a in ("/segue/place", "/segue/error")] == []  # still placing
        placer.release.set()
        first = daw.expect("/segue/place")
        second = daw.expect("/segue/place")
        assert [first[4], second[4]] == ["audio", "midi"] and Path(first[0]).is_file()
        assert "_v02_mix.wav" in first[0]
        assert placer.threads == ["segue-place"]  # neither the OSC thread nor the job worker
    finally:
        placer.release.set()
        daw.close()
        server.close()
        harness.service.close()


def test_a_failed_placement_is_reported_to_its_sender(tmp_path: Path) -> None:
    placer = SlowPlacer()
    placer.error = EngineError("the disk is full")
    placer.release.set()
    harness = Harness(tmp_path, place="none", placer=placer)
    try:
        job_id = _done_job(harness)
        harness.send("/segue/choose", job_id, 1)
        ((to, _, (message,)),) = [sent for sent in _wait_sent(harness, "/segue/error")]
        assert to == CLIENT and f"job {job_id} v01: placing failed: the disk is full" in message
        harness.send("/segue/ping")  # the placement thread survived: a later choice still works
        placer.error = None
        harness.send("/segue/choose", job_id, 2)
        assert len(harness.sent.wait_for("/segue/place", count=2)) == 2
    finally:
        harness.service.close()


def _wait_sent(harness: Harness, address: str) -> list[tuple[tuple[str, int], str, list[Any]]]:
    harness.sent.wait_for(address)
    return [sent for sent in harness.sent.sent if sent[1] == address]


def test_too_many_waiting_placements_are_refused(tmp_path: Path) -> None:
    placer = SlowPlacer()
    harness = Harness(tmp_path, place="none", placer=placer)
    try:
        job_id = _done_job(harness, variants=1)
        for _ in range(MAX_WAITING_PLACEMENTS + 1):
            harness.send("/segue/choose", job_id, 1)
        assert placer.entered.wait(5)
        (error,) = harness.errors()
        assert f"{MAX_WAITING_PLACEMENTS} placements are already waiting" in error
        placer.release.set()
        places = harness.sent.wait_for("/segue/place", count=2 * MAX_WAITING_PLACEMENTS, timeout=20)
        assert len({args[0] for args in places}) == 2 * MAX_WAITING_PLACEMENTS  # never the same name twice
    finally:
        placer.release.set()
        harness.service.close()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("continue", 4),
            "expects 3 to 5 argument(s) (s:mode i:bars i:variants [s:parts] [s:output] [s:key value ...]), got 2",
        ),
        (("accompany", 4, 2, "bass", "midi", 1), "expects 3 to 5 argument(s)"),
        (("continue", 4, 2, 1), "argument 4 (s:parts) must be a string, got an int"),
        (("accompany", 4, 2, "bass", 3), "argument 5 (s:output) must be a string, got an int"),
        (("accompany", 4, 2, "bass", "video"), "output must be one of auto, audio, midi, both, got 'video'"),
        (("continue", 4, 2, "bass"), "parts are only for mode 'accompany'"),
        (("accompany", 4, 2, "bass,,piano"), "parts are names separated by commas"),
        (("accompany", 4, 2, "double bass"), "a part name is lowercase letters"),
        (("accompany", 4, 2, "bass,bass"), "a part is named twice"),
        (("continue", "4", 2), "argument 2 (i:bars) must be a whole number, got a string"),
        (("continue", 4.5, 2), "argument 2 (i:bars) must be a whole number, got a float 4.5"),
        (("continue", True, 2), "must be a whole number, got a bool"),
        ((7, 4, 2), "argument 1 (s:mode) must be a string, got an int"),
        (("remix", 4, 2), "mode must be 'continue' or 'accompany'"),
        (("continue", 65, 2), "bars must be in 1..64, got 65"),
        (("continue", 4, 0), "variants must be in 1..16, got 0"),
        (("continue", 4, 2), "no region yet: send /segue/region"),
    ],
)
def test_generate_rejects_bad_arguments(osc: Harness, args: tuple[Any, ...], expected: str) -> None:
    osc.send("/segue/generate", *args)
    (error,) = osc.errors()
    assert expected in error
    assert osc.engine.requests == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({1: "/no/such/file.mid"}, "cannot read a region at /no/such/file.mid: it does not exist"),
        ({1: "relative.mid"}, "must be absolute"),
        ({0: "WAV"}, "is a midi file, given as the audio path"),
        ({0: "", 1: ""}, "both were empty"),
        ({2: -1.0}, "region start (start_beats) must be a number of beats"),
        ({2: float("inf")}, "argument 3 (f:start_beats) must be a finite number"),
        ({4: 5.0}, "tempo must be between 10 and 400 BPM, got 5.0"),
        ({6: 3}, "meter_den must be a power of two"),
        ({5: 0}, "meter numerator must be a whole number in 1..32"),
        ({7: "x" * (MAX_STRING_CHARS + 1)}, f"is {MAX_STRING_CHARS + 1} characters long; the limit is 4096"),
    ],
)
def test_region_rejects_bad_values(osc: Harness, change: dict[int, Any], expected: str) -> None:
    args: list[Any] = ["", str(osc.region), 0.0, 8.0, 120.0, 4, 4, "Keys"]
    for index, value in change.items():
        args[index] = str(osc.region) if value == "WAV" else value
    osc.send("/segue/region", *args)
    (error,) = osc.errors()
    assert expected in error
    assert osc.service.region is None


def test_region_with_audio_only(osc: Harness, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "take.wav", 1.0)
    osc.send("/segue/region", str(wav), "", 0, 2, 120, 4, 4, "Vox")  # ints where floats are expected: fine
    assert osc.errors() == []
    assert osc.service.region is not None and osc.service.region.audio_path == wav.resolve()


def test_unknown_addresses_and_garbage_are_answered(osc: Harness) -> None:
    osc.send("/segue/explode", 1)
    osc.bridge.handle_datagram(b"\x00\xffnot osc", CLIENT)
    osc.bridge.handle_datagram(b"/segue/ping\x00,\xff\xfe\x00", CLIENT)  # undecodable type tags
    osc.bridge.handle_datagram(b"/segue/ping\x00,xyz\x00\x00\x00", CLIENT)  # unknown type tags
    osc.bridge.handle_datagram(b"#bundle\x00" + bytes(8) + b"\x00\x00\x10\x00/x", CLIENT)  # element too long
    errors = osc.errors()
    assert "unknown address /segue/explode; Segue understands /segue/region" in errors[0]
    assert all("could not decode" in e for e in errors[1:]) and len(errors) == 5


def test_check_arguments_coerces_numbers(osc: Harness) -> None:
    route = osc.bridge.routes["/segue/region"]
    values = check_arguments("/segue/region", route, ["", "/a.mid", 1, 8, 120, 4.0, 4, "t"])
    assert values == ["", "/a.mid", 1.0, 8.0, 120.0, 4, 4, "t"]
    assert [type(v) for v in values[2:7]] == [float, float, float, int, int]


# -- over UDP --------------------------------------------------------------------------------------------


@pytest.fixture
def udp(osc: Harness) -> Iterator[tuple[Harness, DawSocket]]:
    server = OscServer(osc.bridge, "127.0.0.1", 0)
    server.start()
    daw = DawSocket(server.address)
    yield osc, daw
    daw.close()
    server.close()
    server.close()  # twice is fine


def test_udp_ping_with_simple_client(osc: Harness) -> None:
    """python-osc's own client; replies go to the configured DAW address (our listener)."""
    with OscServer(osc.bridge, "127.0.0.1", 0) as server:
        daw = DawSocket(server.address)
        osc.bridge.daw_address = daw.address
        client = SimpleUDPClient(*server.address)
        client.send_message("/segue/ping", [])
        assert daw.expect("/segue/pong", timeout=5) == [segue_version()]
        daw.close()


def test_udp_generate_round_trip(udp: tuple[Harness, DawSocket]) -> None:
    osc, daw = udp
    daw.send("/segue/region", "", str(osc.region), 4.0, 8.0, 120.0, 4, 4, "Bass")
    daw.send("/segue/generate", "continue", 1, 1)
    (job_id,) = daw.expect("/segue/job/started")
    assert daw.expect("/segue/job/progress") == [job_id, 1.0]
    done_id, job_json = daw.expect("/segue/job/done")
    assert done_id == job_id and json.loads(Path(job_json).read_text())["status"] == "done"
    wav = daw.expect("/segue/place")
    placed = osc.out / job_id / "place" / f"bass_{job_id.rsplit('-', 1)[1]}_v01_mix.wav"
    assert wav == [str(placed), 12.0, 6.0, "Bass (Segue v01)", "audio"]
    assert daw.expect("/segue/place")[4] == "midi" and Path(wav[0]).is_file()


def test_udp_cancel_mid_job(udp: tuple[Harness, DawSocket]) -> None:
    osc, daw = udp
    osc.engine.hold_at = 2
    daw.send("/segue/region", "", str(osc.region), 0.0, 8.0, 120.0, 4, 4, "Keys")
    daw.send("/segue/generate", "continue", 1, 3)
    (job_id,) = daw.expect("/segue/job/started")
    assert osc.engine.holding.wait(5)
    daw.send("/segue/cancel", job_id)
    failed_id, message = daw.expect("/segue/job/failed")
    assert failed_id == job_id and "cancelled" in message
    data = json.loads((osc.out / job_id / "job.json").read_text())
    assert data["status"] == "cancelled"
    daw.send("/segue/cancel", job_id)  # no longer running
    assert "no running job" in daw.expect("/segue/error")[0]


def test_udp_malformed_packets_never_stop_the_bridge(udp: tuple[Harness, DawSocket], tmp_path: Path) -> None:
    osc, daw = udp
    rng = random.Random(7)
    daw.send("/segue/generate", "continue")  # missing arguments
    assert "expects 3 to 5 argument(s)" in daw.expect("/segue/error")[0]
    daw.send("/segue/generate", 1, 2, 3)  # wrong types
    assert "must be a string, got an int" in daw.expect("/segue/error")[0]
    daw.send("/nope")
    assert "unknown address /nope" in daw.expect("/segue/error")[0]
    daw.send("/segue/cancel", "j" * 20_000)  # a huge string in one datagram
    assert "20000 characters long" in daw.expect("/segue/error")[0]
    missing = tmp_path / "gone" / "take 1.wav"
    daw.send("/segue/region", str(missing), "", 0.0, 4.0, 120.0, 4, 4, "t")
    assert str(missing) in daw.expect("/segue/error")[0]
    for _ in range(30):  # 3000 random datagrams, in batches so that no socket buffer overflows
        for _ in range(100):
            head = rng.choice([b"", b"/", b"/segue/ping\x00,", b"#bundle\x00"])
            daw.send_raw(head + rng.randbytes(rng.randint(1, 600)))
        assert daw.ping() == [segue_version()]
    decode_errors = [a for address, a in daw.received if address == "/segue/error" and "could not decode" in a[0]]
    assert len(decode_errors) > 300  # many came back (UDP may drop some under load)


def test_place_none_and_all(tmp_path: Path) -> None:
    for place, count in (("none", 0), ("all", 6)):
        harness = Harness(tmp_path / place, place=place)
        harness.send_region()
        harness.send("/segue/generate", "accompany", 1, 3)
        harness.sent.wait_for("/segue/job/done")
        harness.service.close()
        assert len(harness.sent.of("/segue/place")) == count
