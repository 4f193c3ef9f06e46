"""Segue's side of the Segue Link plugin (bridge/link.py, docs/osc.md): the registry and its transport with a fake
clock and no sockets, then real UDP on 127.0.0.1 with fake plugins written here in Python that speak the contract
(/work/notes/link_contract.md), against `segue bridge --daw link` run in this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine, write_midi_region
from osc_helpers import CLIENT, DawSocket, Recorder
from pythonosc.osc_message_builder import OscMessageBuilder, build_msg

from bridge import cli, segue_version
from bridge.daemon import BridgeRunning
from bridge.events import TransportState
from bridge.link import EXPIRY_S, LinkEndpoint, LinkInstance, LinkRegistry, link_transport
from bridge.osc import OscBridge
from bridge.service import BridgeService

PLUGIN = ("127.0.0.1", 50_001)  # a fake plugin's sender address, for tests without sockets


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Harness:
    """An OscBridge with a LinkEndpoint over a started service; replies recorded; a fake monotonic clock."""

    def __init__(self, tmp_path: Path, place_through_link: bool = False) -> None:
        self.clock = Clock()
        self.registry = LinkRegistry(now=self.clock)
        self.engine = FakeEngine()
        self.service = BridgeService(
            self.engine,
            tmp_path / "out",
            transport=link_transport(self.registry, None),
        )
        self.bridge = OscBridge(self.service)
        self.link = LinkEndpoint(self.bridge, self.registry, place_through_link=place_through_link)
        self.sent = Recorder()
        self.bridge.attach(self.sent)
        self.service.start()

    def send(self, address: str, *args: Any, sender: tuple[str, int] = PLUGIN) -> None:
        self.bridge.handle_datagram(build_msg(address, list(args)).dgram, sender)

    def hello(self, instance_id: str = "i1", track: str = "Bass", sender: tuple[str, int] = PLUGIN) -> None:
        self.send("/segue/link/hello", instance_id, track, "", 48000, "0.1.0", sender=sender)

    def errors(self) -> list[str]:
        return [args[0] for args in self.sent.of("/segue/error")]


@pytest.fixture
def osc(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.service.close()


def test_a_hello_is_welcomed_at_its_sender_and_the_instance_is_kept_until_it_expires(osc: Harness) -> None:
    osc.hello()
    assert osc.sent.sent == [(PLUGIN, "/segue/link/welcome", [segue_version()])]
    (instance,) = osc.registry.instances()
    assert (instance.instance_id, instance.track_name, instance.sample_rate, instance.address) == (
        "i1",
        "Bass",
        48000,
        PLUGIN,
    )
    osc.clock.t += EXPIRY_S - 0.5
    osc.hello()  # the heartbeat keeps it
    osc.clock.t += EXPIRY_S - 0.5
    assert len(osc.registry.instances()) == 1
    osc.clock.t += 1.0  # no hello for more than 6 s
    assert osc.registry.instances() == ()
    osc.hello()
    osc.send("/segue/link/bye", "i1")
    assert osc.registry.instances() == () and osc.errors() == []


def test_the_host_transport_feeds_segue_status_as_a_link_clock(osc: Harness) -> None:
    osc.send("/segue/status", sender=CLIENT)
    osc.hello()
    osc.send("/segue/link/transport", "i1", 97.5, 3, 4, 12.0, 0)  # python-osc sends 12.0 as f; plugins send d
    osc.send("/segue/status", sender=CLIENT)
    osc.send("/segue/link/transport", "i1", 97.5, 3, 4, 12.0, 1)
    osc.clock.t += 2.0  # playing: the position runs on at the host's tempo (97.5 BPM: 3.25 beats in 2 s)
    osc.send("/segue/status", sender=CLIENT)
    osc.clock.t += 1.0  # more than 2 s without news while playing
    osc.send("/segue/status", sender=CLIENT)
    assert osc.sent.of("/segue/status") == [
        [0.0, 0, 0.0, "none"],
        [97.5, 0, 12.0, "link:Bass"],
        [97.5, 1, pytest.approx(15.25), "link:Bass"],
        [97.5, 1, pytest.approx(16.875), "link:Bass (stale)"],
    ]
    osc.send("/segue/link/bye", "i1")
    osc.send("/segue/status", sender=CLIENT)
    assert osc.sent.of("/segue/status")[-1] == [0.0, 0, 0.0, "none"]
    assert osc.errors() == []


def test_a_transport_from_an_instance_that_never_said_hello_is_not_followed(osc: Harness) -> None:
    osc.send("/segue/link/transport", "ghost", 120.0, 4, 4, 0.0, 1)
    assert osc.registry.transport() is None and osc.errors() == []


def test_the_latest_reporting_instance_is_the_clock_and_the_fallback_is_used_without_one() -> None:
    clock = Clock()
    registry = LinkRegistry(now=clock)
    fallback = link_transport(registry, lambda: TransportState(120.0, True, 3.0, "midi-clock:x"))
    assert fallback().clock_source == "midi-clock:x"
    for name in ("a", "b"):
        endpoint_free_hello(registry, name)
    registry.update_transport("a", 100.0, 4, 4, 0.0, False)
    clock.t += 0.1
    registry.update_transport("b", 90.0, 6, 8, 4.0, False)
    assert fallback() == TransportState(90.0, False, 4.0, "link:track b")


def endpoint_free_hello(registry: LinkRegistry, name: str) -> None:
    registry.hello(LinkInstance(name, f"track {name}", "", 48000, "0", ("127.0.0.1", 1), 0.0))


@pytest.mark.parametrize(
    ("address", "args", "expected"),
    [
        ("/segue/link/hello", ["i1", "Bass", "", "48000", "0.1"], "argument 4 (i:sample_rate) must be a whole number"),
        ("/segue/link/hello", ["i1", "Bass", ""], "expects 5 argument(s)"),
        ("/segue/link/hello", ["", "Bass", "", 48000, "0.1"], "instance_id must be 1..128 printable"),
        ("/segue/link/hello", ["i1", "Bass", "", 1, "0.1"], "sample_rate must be in 8000..768000"),
        ("/segue/link/transport", ["i1", "fast", 4, 4, 0.0, 1], "argument 2 (f:tempo_bpm) must be a number"),
        ("/segue/link/transport", ["i1", 120.0, 4, 3, 0.0, 1], "the meter must be 1..64 over a power of two"),
        ("/segue/link/transport", ["i1", 0.0, 4, 4, 0.0, 1], "tempo_bpm must be in (0, 1000]"),
        ("/segue/link/transport", ["i1", 120.0, 4, 4, float("nan"), 1], "must be a finite number"),
        ("/segue/link/transport", ["i1", 120.0, 4, 4, 0.0, 2], "playing must be 0 or 1"),
        ("/segue/link/bye", [7], "argument 1 (s:instance_id) must be a string"),
        ("/segue/link/loaded", ["i1", "/x.wav"], "expects 3 argument(s)"),
        ("/segue/link/capture", [-1], "bars must be in 0..64"),
        ("/segue/link/capture", [2], "no Segue Link plugin is connected"),
    ],
)
def test_malformed_link_messages_are_answered_with_segue_error(
    osc: Harness, address: str, args: list[Any], expected: str
) -> None:
    osc.send(address, *args)
    (error,) = osc.errors()
    assert address in error and expected in error
    osc.send("/segue/ping", sender=CLIENT)  # the bridge goes on
    assert osc.sent.of("/segue/pong") == [[segue_version()]]


def test_a_placement_plays_on_the_instance_of_the_region_track_else_the_latest(tmp_path: Path) -> None:
    osc = Harness(tmp_path, place_through_link=True)
    try:
        keys, bass = ("127.0.0.1", 50_011), ("127.0.0.1", 50_012)
        osc.hello("k", "Keys", sender=keys)
        osc.hello("b", "Bass", sender=bass)
        region = write_midi_region(tmp_path / "region.mid").resolve()
        osc.send("/segue/region", "", str(region), 16.0, 8.0, 100.0, 4, 4, "Keys", sender=CLIENT)
        osc.send("/segue/generate", "continue", 2, 1, sender=CLIENT)
        (play,) = osc.sent.wait_for("/segue/link/play")
        to = [to for to, address, _ in osc.sent.sent if address == "/segue/link/play"]
        assert to == [keys]  # the region's track, though Bass said hello later
        path, beats, replace = play
        assert Path(path).is_file() and path.endswith(".wav") and (beats, replace) == (24.0, 1)  # 16 + 8 beats
        osc.send("/segue/link/loaded", "k", path, 4.8, sender=keys)  # the plugin's answer goes to the asker
        assert [(to, args) for to, a, args in osc.sent.sent if a == "/segue/link/loaded"] == [
            (CLIENT, ["k", path, pytest.approx(4.8)])
        ]
        osc.send("/segue/region", "", str(region), 0.0, 8.0, 100.0, 4, 4, "Drums", sender=CLIENT)
        osc.send("/segue/generate", "continue", 2, 1, sender=CLIENT)
        osc.sent.wait_for("/segue/link/play", count=2)
        assert [to for to, address, _ in osc.sent.sent if address == "/segue/link/play"] == [keys, bass]
        osc.send("/segue/link/error", "b", "cannot read the file", sender=bass)
        assert [(to, args) for to, a, args in osc.sent.sent if a == "/segue/link/error"] == [
            (CLIENT, ["b", "cannot read the file"])
        ]
        assert osc.errors() == []
    finally:
        osc.service.close()


def test_choose_plays_the_chosen_variant_through_the_plugin(tmp_path: Path) -> None:
    osc = Harness(tmp_path, place_through_link=True)
    try:
        osc.hello("k", "Keys")
        region = write_midi_region(tmp_path / "region.mid").resolve()
        osc.send("/segue/region", "", str(region), 4.0, 8.0, 100.0, 4, 4, "Keys", sender=CLIENT)
        osc.send("/segue/generate", "continue", 2, 2, sender=CLIENT)
        osc.sent.wait_for("/segue/job/done")
        osc.sent.wait_for("/segue/link/play")  # --place first: variant 1
        (job_id,) = [args[0] for args in osc.sent.of("/segue/job/started")]
        osc.send("/segue/choose", job_id, 2, sender=CLIENT)
        plays = osc.sent.wait_for("/segue/link/play", count=2)
        assert "_v02_" in Path(plays[1][0]).name and plays[1][1:] == [12.0, 1]  # 4 + 8 beats, replacing
        assert osc.errors() == []
    finally:
        osc.service.close()


def test_the_registry_holds_a_bounded_number_of_instances(osc: Harness) -> None:
    from bridge.link import MAX_INSTANCES

    for n in range(MAX_INSTANCES + 1):
        osc.send("/segue/link/hello", f"id{n}", "", "", 48000, "0", sender=("127.0.0.1", 20_000 + n))
    assert len(osc.registry.instances()) == MAX_INSTANCES
    assert osc.errors() == [f"/segue/link/hello: {MAX_INSTANCES} Segue Link instances are already connected"]
    osc.clock.t += EXPIRY_S + 1  # all expire: room again
    osc.hello("late")
    assert [i.instance_id for i in osc.registry.instances()] == ["late"]


def test_a_placement_with_no_instance_connected_says_so_to_the_asker(tmp_path: Path) -> None:
    osc = Harness(tmp_path, place_through_link=True)
    try:
        region = write_midi_region(tmp_path / "region.mid").resolve()
        osc.send("/segue/region", "", str(region), 0.0, 8.0, 100.0, 4, 4, "Keys", sender=CLIENT)
        osc.send("/segue/generate", "continue", 2, 1, sender=CLIENT)
        (error,) = osc.sent.wait_for("/segue/error")
        assert "no Segue Link plugin is connected" in error[0] and osc.sent.of("/segue/link/play") == []
        assert osc.sent.of("/segue/place")  # the placement itself is still reported
    finally:
        osc.service.close()


def test_list_names_the_live_instances(osc: Harness) -> None:
    osc.send("/segue/link/list", sender=CLIENT)
    osc.hello("i1", "Bass")
    osc.hello("i2", "Keys", sender=("127.0.0.1", 50_002))
    osc.send("/segue/link/list", sender=CLIENT)
    assert osc.sent.of("/segue/link/list") == [[0], [2, "i1", "Bass", "i2", "Keys"]]


def test_capture_is_sent_to_one_instance_per_group(osc: Harness) -> None:
    for name, group, port in (("a", "band", 50_021), ("b", "band", 50_022), ("c", "", 50_023)):
        osc.send("/segue/link/hello", name, name, group, 48000, "0", sender=("127.0.0.1", port))
    osc.sent.clear()
    osc.send("/segue/link/capture", 4, sender=CLIENT)
    sent = sorted((to[1], address, args) for to, address, args in osc.sent.sent)
    assert sent == [(50_022, "/segue/link/capture", [4]), (50_023, "/segue/link/capture", [4])]


# -- real UDP: `segue bridge --daw link` and fake plugins ------------------------------------------------------


class FakePlugin(DawSocket):
    """A Segue Link instance as the contract has it: its own UDP socket, hello on start, then what a test sends."""

    def __init__(self, server: tuple[str, int], instance_id: str, track: str, group: str = "") -> None:
        super().__init__(server)
        self.instance_id, self.track, self.group = instance_id, track, group

    def hello(self) -> list[Any]:
        self.send("/segue/link/hello", self.instance_id, self.track, self.group, 48000, "test")
        return self.expect("/segue/link/welcome")


def _serve(tmp_path: Path, *extra: str) -> tuple[threading.Thread, list[Any], dict[str, Any]]:
    """Run `segue bridge --daw link --osc-port 0` on a thread (FakeEngine); wait until it listens."""
    ready = threading.Event()
    running: list[Any] = []
    result: dict[str, Any] = {}

    def factory(spec: str, **kwargs: Any) -> FakeEngine:
        return FakeEngine()

    def on_ready(bridge: BridgeRunning) -> None:
        running.append(bridge)
        ready.set()

    def run() -> None:
        argv = ["bridge", "--osc-port", "0", "--out", str(tmp_path / "out"), *extra]
        result["code"] = cli.main(argv, engine_factory=factory, bridge_ready=on_ready)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "segue bridge did not start listening within 10 s"
    return thread, running, result


def _osc_double_transport(instance_id: str, tempo: float, num: int, den: int, beats: float, playing: int) -> bytes:
    """``/segue/link/transport`` with position_beats as an OSC double, as the plugin sends it."""
    builder = OscMessageBuilder("/segue/link/transport")
    builder.add_arg(instance_id, "s")
    builder.add_arg(tempo, "f")
    builder.add_arg(num, "i")
    builder.add_arg(den, "i")
    builder.add_arg(beats, "d")
    builder.add_arg(playing, "i")
    return builder.build().dgram


def test_segue_bridge_daw_link_round_trip_over_udp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two fake plugins say hello over UDP, one reports its host's transport, a DAW script sends a region of the
    Keys track and asks for a job: the variant is played on the Keys instance, whose `loaded` reaches the DAW."""
    thread, running, result = _serve(tmp_path, "--daw", "link")
    server = running[0].osc_address
    keys, bass, daw = FakePlugin(server, "k1", "Keys"), FakePlugin(server, "b1", "Bass"), DawSocket(server)
    try:
        assert keys.hello() == [segue_version()] and bass.hello() == [segue_version()]
        keys.send_raw(_osc_double_transport("k1", 97.5, 3, 4, 12.0, 0))
        daw.send("/segue/status")
        deadline = time.monotonic() + 5
        status = daw.expect("/segue/status")
        while status[3] != "link:Keys" and time.monotonic() < deadline:  # the transport may arrive after the ask
            daw.send("/segue/status")
            status = daw.expect("/segue/status")
        assert status == [97.5, 0, 12.0, "link:Keys"]
        region = write_midi_region(tmp_path / "region.mid").resolve()
        daw.send("/segue/region", "", str(region), 12.0, 6.0, 97.5, 3, 4, "Keys")
        daw.send("/segue/generate", "continue", 2, 1)
        path, beats, replace = keys.expect("/segue/link/play", timeout=30)
        assert Path(path).is_file() and beats == pytest.approx(20.0) and replace == 1  # FakeEngine: start + 8
        keys.send("/segue/link/loaded", "k1", path, 3.7)
        assert daw.expect("/segue/link/loaded") == ["k1", path, pytest.approx(3.7)]
        daw.send("/segue/link/capture", 2)
        assert keys.expect("/segue/link/capture") == [2] and bass.expect("/segue/link/capture") == [2]
        keys.send("/segue/link/bye", "k1")
        bass.send("/segue/link/hello", "b1", "Bass", "", "48000", "test")  # a string rate: an error, no crash
        assert "must be a whole number" in bass.expect("/segue/error")[0]
        daw.send("/segue/ping")
        assert daw.expect("/segue/pong") == [segue_version()]
        assert "/segue/link/play" not in [a for a, _ in bass.received]
    finally:
        for peer in (keys, bass, daw):
            peer.close()
        running[0].stop()
        thread.join(10)
    assert result.get("code") == 0, capsys.readouterr().err


def test_twenty_instances_at_once_are_each_welcomed(tmp_path: Path) -> None:
    thread, running, _ = _serve(tmp_path)
    server = running[0].osc_address
    plugins = [FakePlugin(server, f"id{n}", f"Track {n}") for n in range(20)]
    try:
        for plugin in plugins:
            plugin.send("/segue/link/hello", plugin.instance_id, plugin.track, "", 44100, "test")
        for plugin in plugins:
            assert plugin.expect("/segue/link/welcome") == [segue_version()]
    finally:
        for plugin in plugins:
            plugin.close()
        running[0].stop()
        thread.join(10)
