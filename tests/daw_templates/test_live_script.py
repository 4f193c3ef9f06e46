"""The Ableton Live Remote Script (daw_templates/live/Segue) against a fake Live object model, talking over loopback
UDP to Segue's real OSC bridge (:class:`bridge.osc.OscServer`, the fake engine). Not tested in a running Live: the
fake follows the Live Object Model's documented names (Song, Track, ClipSlot, Clip; Live 11's
``get_notes_extended``/``add_new_notes``, Live 12.0.5's ``create_audio_clip``)."""

from __future__ import annotations

import importlib.util
import socket
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mido
import pytest
from fake_engine import FakeEngine
from lua_helpers import TEMPLATES
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from region_engine import RegionEngine
from test_accompany_actions import PARTS_CASES, check_parts

from bridge.osc import OscBridge, OscServer
from bridge.service import BridgeService

LIVE_DIR = TEMPLATES / "live" / "Segue"


# -- a fake Live -------------------------------------------------------------------------------------------------


class NoteSpec:
    def __init__(self, pitch: int, start_time: float, duration: float, velocity: float, mute: bool) -> None:
        self.pitch, self.start_time, self.duration, self.velocity, self.mute = (
            pitch,
            start_time,
            duration,
            velocity,
            mute,
        )


fake_live = types.ModuleType("Live")
fake_live.MidiMap = types.SimpleNamespace(forward_midi_note=lambda *a: fake_live.forwarded.append(a))  # type: ignore[attr-defined]
fake_live.Clip = types.SimpleNamespace(MidiNoteSpecification=NoteSpec)  # type: ignore[attr-defined]
fake_live.forwarded = []  # type: ignore[attr-defined]


class Clip:
    def __init__(self, parent: Any, length: float, midi: bool = True, **attrs: Any) -> None:
        self.canonical_parent = parent
        self.length = length
        self.is_midi_clip = midi
        self.is_arrangement_clip = False
        self.start_time = 0.0
        self.looping = False
        self.loop_start = 0.0
        self.start_marker = 0.0
        self.file_path = ""
        self.warping = False
        self.notes: list[tuple[int, float, float, float, bool]] = []
        self.__dict__.update(attrs)

    def get_notes(self, start: float, pitch: int, span: float, pitch_span: int) -> tuple[Any, ...]:
        return tuple(n for n in self.notes if start <= n[1] < start + span)

    def set_notes(self, notes: tuple[Any, ...]) -> None:
        self.notes = list(notes)


class ModernClip(Clip):
    def get_notes_extended(self, pitch: int, pitch_span: int, start: float, span: float) -> list[NoteSpec]:
        return [NoteSpec(*n) for n in self.notes if start <= n[1] < start + span]

    def add_new_notes(self, specs: tuple[NoteSpec, ...]) -> None:
        self.notes += [(s.pitch, s.start_time, s.duration, s.velocity, s.mute) for s in specs]


class Slot:
    def __init__(self, track: Track) -> None:
        self.canonical_parent = track
        self.clip: Clip | None = None

    @property
    def has_clip(self) -> bool:
        return self.clip is not None

    def create_clip(self, length: float) -> None:
        self.clip = self.canonical_parent.song.clip_class(self, length)


class ModernSlot(Slot):
    def create_audio_clip(self, path: str) -> None:
        self.clip = ModernClip(self, 8.0, midi=False, file_path=path)


class Track:
    def __init__(self, song: Song, name: str, scenes: int) -> None:
        self.song, self.name = song, name
        self.canonical_parent = song
        self.clip_slots = [song.slot_class(self) for _ in range(scenes)]
        self.arrangement_clips: list[Clip] = []


class ModernTrack(Track):
    def create_midi_clip(self, start: float, length: float) -> Clip:
        clip = ModernClip(self, length, is_arrangement_clip=True, start_time=start)
        self.arrangement_clips.append(clip)
        return clip

    def create_audio_clip(self, path: str, position: float) -> Clip:
        clip = ModernClip(self, 8.0, midi=False, is_arrangement_clip=True, start_time=position, file_path=path)
        self.arrangement_clips.append(clip)
        return clip


class Song:
    def __init__(self, modern: bool = True) -> None:
        self.track_class = ModernTrack if modern else Track
        self.slot_class = ModernSlot if modern else Slot
        self.clip_class = ModernClip if modern else Clip
        self.tempo, self.signature_numerator, self.signature_denominator = 96.0, 4, 4
        self.scenes = [object(), object(), object()]
        self.tracks = [self.track_class(self, "Keys", 3)]
        self.view = types.SimpleNamespace(detail_clip=None, selected_scene=self.scenes[0], highlighted_clip_slot=None)

    def create_midi_track(self, index: int) -> None:
        self.tracks.append(self.track_class(self, "MIDI", len(self.scenes)))

    def create_audio_track(self, index: int) -> None:
        self.tracks.append(self.track_class(self, "Audio", len(self.scenes)))

    def delete_track(self, index: int) -> None:
        del self.tracks[index]


class CInstance:
    def __init__(self, song: Song) -> None:
        self._song, self.shown = song, []

    def song(self) -> Song:
        return self._song

    def show_message(self, text: str) -> None:
        self.shown.append(text)

    def log_message(self, text: str) -> None:
        pass

    def handle(self) -> int:
        return 7


def load_script() -> Any:
    sys.modules["Live"] = fake_live
    for name in [n for n in sys.modules if n == "SegueLiveScript" or n.startswith("SegueLiveScript.")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        "SegueLiveScript", LIVE_DIR / "__init__.py", submodule_search_locations=[str(LIVE_DIR)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["SegueLiveScript"] = module
    spec.loader.exec_module(module)
    return module


# -- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[tuple[tuple[str, int], RegionEngine]]:
    engine = RegionEngine()
    service = BridgeService(engine, tmp_path / "jobs", place="first")
    server = OscServer(OscBridge(service), "127.0.0.1", 0)
    service.start()
    server.start()
    yield server.address, engine
    server.close()
    service.close()


def make(tmp_path: Path, song: Song, bridge_address: tuple[str, int] = ("127.0.0.1", 9)) -> Any:
    module = load_script()
    c = CInstance(song)
    script = module.SegueScript(c, listen_port=0, bridge=bridge_address, out_dir=str(tmp_path / "live"))
    return script


def pump(script: Any, until: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        script.update_display()
        if until():
            return True
        time.sleep(0.01)
    return bool(until())


def _arrangement_clip(song: Song) -> Clip:
    track = song.tracks[0]
    clip = song.clip_class(track, 8.0, is_arrangement_clip=True, start_time=16.0)
    clip.notes = [
        (60, 0.0, 1.0, 100.0, False),
        (64, 2.5, 0.5, 80.0, False),
        (67, 3.0, 1.0, 90.0, True),
        (70, 9.0, 1.0, 90.0, False),
    ]
    song.view.detail_clip = clip
    return clip


# -- tests ------------------------------------------------------------------------------------------------------


def test_a_midi_clip_goes_to_segue_and_the_results_come_back_into_the_arrangement(
    tmp_path: Path, bridge: tuple[tuple[str, int], RegionEngine]
) -> None:
    address, engine = bridge
    song = Song(modern=True)
    _arrangement_clip(song)
    script = make(tmp_path, song, address)
    try:
        # the trigger over OSC, as any OSC tool (or Segue) would send it, AbletonOSC-style
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tool:
            message = OscMessageBuilder("/live/segue/send")
            for value in ("continue", 2, 1):
                message.add_arg(value)
            tool.sendto(message.build().dgram, ("127.0.0.1", script.port))
        assert pump(script, lambda: len(song.tracks) == 3), script.messages
    finally:
        script.disconnect()
    prompt = engine.requests[0].prompt
    assert (prompt.start_beats, prompt.length_beats, prompt.tempo_bpm) == (16.0, 8.0, 96.0)
    assert prompt.audio_path is None and prompt.midi_path is not None
    notes = [(m.note, m.velocity) for m in mido.MidiFile(prompt.midi_path).tracks[0] if m.type == "note_on"]
    assert notes == [(60, 100), (64, 80)]  # the muted note and the one past the clip's end left out
    audio, midi = song.tracks[1], song.tracks[2]  # place first: the mix, then the MIDI
    assert audio.name == midi.name == "Keys (Segue v01)"
    assert [(c.file_path.endswith("_v01_mix.wav"), c.start_time) for c in audio.arrangement_clips] == [(True, 24.0)]
    (clip,) = midi.arrangement_clips
    assert clip.start_time == 24.0 and clip.length == 8.0  # the bar after the clip; 2 bars
    assert [(p, t) for p, t, *_ in clip.notes] == [(60, 0.0), (60, 4.0)]  # the fake engine: a note per bar
    assert any("job" in m and "done" in m for m in script.messages)


def test_a_session_clip_puts_the_results_in_its_scene(tmp_path: Path) -> None:
    song = Song(modern=True)
    track = song.tracks[0]
    slot = track.clip_slots[1]
    slot.create_clip(4.0)
    assert slot.clip is not None
    slot.clip.notes = [(48, 0.5, 1.0, 90.0, False)]
    song.view.detail_clip = slot.clip
    song.view.selected_scene = song.scenes[1]
    script = make(tmp_path, song)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as fake_bridge:
        fake_bridge.bind(("127.0.0.1", 0))
        fake_bridge.settimeout(5)
        script.bridge = fake_bridge.getsockname()
        region = script.send_selected_clip("accompany", 1, 3)
        first = fake_bridge.recv(65535)
        second = fake_bridge.recv(65535)
    assert region[2:] == [0.0, 4.0, 96.0, 4, 4, "Keys"]
    assert first.startswith(b"/segue/region\0") and second.startswith(b"/segue/generate\0")
    (tmp_path / "v.mid").write_bytes(Path(region[1]).read_bytes())
    (tmp_path / "v.wav").write_bytes(b"RIFF")
    assert script.place(str(tmp_path / "v.mid"), 4.0, "Keys (Segue v01)", "midi") == "session"
    assert script.place(str(tmp_path / "v.wav"), 4.0, "Keys (Segue v01)", "audio") == "session"
    script.disconnect()
    midi_track, audio_track = song.tracks[1], song.tracks[2]
    assert midi_track.clip_slots[1].clip.notes[0][:2] == (48, 0.5)
    assert audio_track.clip_slots[1].clip.file_path == str(tmp_path / "v.wav")


def test_older_live_gets_midi_in_the_session_and_is_told_to_drag_audio(tmp_path: Path) -> None:
    song = Song(modern=False)  # no create_midi_clip / create_audio_clip / get_notes_extended / add_new_notes
    clip = _arrangement_clip(song)
    script = make(tmp_path, song)
    region = script.region_of_clip(clip, ("arrangement", 0))
    script.last_source = ("arrangement", 0)
    (tmp_path / "v.wav").write_bytes(b"RIFF")
    assert script.place(region[1], 24.0, "Keys (Segue v01)", "midi") == "session"
    assert script.place(str(tmp_path / "v.wav"), 24.0, "Keys (Segue v01)", "audio") is None
    script.disconnect()
    assert len(song.tracks) == 2  # the MIDI track only; the empty audio track was removed again
    assert song.tracks[1].clip_slots[0].clip.notes == [(60, 0.0, 1.0, 100, False), (64, 2.5, 0.5, 80, False)]
    assert "needs Live 12.0.5 or later): drag v.wav from Segue onto a track at beat 24" in script.messages[-1]


def test_the_midi_trigger_and_its_map(tmp_path: Path) -> None:
    song = Song()
    script = make(tmp_path, song)
    script.build_midi_map(99)
    # the send note (C-2) and the accompany note (C#-2), on every channel
    assert fake_live.forwarded[-32:] == [(7, 99, ch, n) for n in (0, 1) for ch in range(16)]  # type: ignore[attr-defined]
    script.receive_midi((0x90, 0, 100))
    assert script.messages[-1] == "Segue: select a clip first (it shows in the Detail View)"
    script.handle_datagram(b"garbage", ("127.0.0.1", 1))  # ignored, logged
    script.handle_datagram(OscMessageBuilder("/segue/place").build().dgram, ("127.0.0.1", 1))
    assert "/segue/place failed" in script.messages[-1]
    script.disconnect()


def test_osc_and_midi_files_round_trip(tmp_path: Path) -> None:
    module = load_script()
    oscmini, smf = module.oscmini, module.smf
    msg = OscMessageBuilder("/segue/place")
    for value in ("/a b/ü.wav", 24.0, 12.5, "Keys", "audio"):
        msg.add_arg(value)
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(msg.build())
    bundle.add_content(OscMessageBuilder("/segue/pong").build())
    decoded = oscmini.decode(bundle.build().dgram)
    assert decoded == [("/segue/place", ["/a b/ü.wav", 24.0, 12.5, "Keys", "audio"]), ("/segue/pong", [])]
    assert oscmini.decode(oscmini.encode("/x", [1, 2.5, "s", True])) == [("/x", [1, 2.5, "s", True])]
    # a two-track file with running status, as other tools write it
    mid = mido.MidiFile(ticks_per_beat=96)
    for pitch in (60, 72):
        track = mido.MidiTrack()
        track.append(mido.Message("note_on", note=pitch, velocity=90, time=48))
        track.append(mido.Message("note_on", note=pitch, velocity=0, time=96))
        mid.tracks.append(track)
    mid.save(tmp_path / "two.mid")
    notes, end = smf.read(str(tmp_path / "two.mid"))
    assert notes == [(60, 0.5, 1.0, 90), (72, 0.5, 1.0, 90)] and end == 1.5


# -- accompany ----------------------------------------------------------------------------------------------------


@pytest.fixture
def accompany_bridge(tmp_path: Path) -> Iterator[tuple[tuple[str, int], FakeEngine]]:
    """The real OSC bridge with the bridge tests' fake engine, which accompanies at the region's start."""
    engine = FakeEngine()
    service = BridgeService(engine, tmp_path / "jobs", place="first")
    server = OscServer(OscBridge(service), "127.0.0.1", 0)
    service.start()
    server.start()
    yield server.address, engine
    server.close()
    service.close()


def _osc(script: Any, address: str, *args: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tool:
        message = OscMessageBuilder(address)
        for value in args:
            message.add_arg(value)
        tool.sendto(message.build().dgram, ("127.0.0.1", script.port))


def test_accompany_over_osc_asks_for_the_parts_and_the_results_land_at_the_clips_start(
    tmp_path: Path, accompany_bridge: tuple[tuple[str, int], FakeEngine]
) -> None:
    address, engine = accompany_bridge
    song = Song(modern=True)
    _arrangement_clip(song)  # 8 beats at beat 16, 4/4
    script = make(tmp_path, song, address)
    try:
        _osc(script, "/live/segue/accompany", " Bass, PIANO ", 1)
        assert pump(script, lambda: len(song.tracks) == 3), script.messages
    finally:
        script.disconnect()
    (request,) = engine.requests
    assert (request.params.mode, request.params.parts, request.params.variants) == ("accompany", ("bass", "piano"), 1)
    assert request.params.bars == 2  # the clip's 8 beats in 4/4
    assert (request.prompt.start_beats, request.prompt.length_beats) == (16.0, 8.0)
    audio, midi = song.tracks[1], song.tracks[2]
    assert [c.start_time for c in audio.arrangement_clips] == [16.0]  # under the clip, not after it
    assert [c.start_time for c in midi.arrangement_clips] == [16.0]
    assert any("come back at beat 16 (the clip's start)" in m for m in script.messages)


def _handled(script: Any, address: str, *args: Any) -> None:
    """Send ``address`` to the script and give it a few ticks to handle it."""
    _osc(script, address, *args)
    pump(script, lambda: False, 0.2)


def _sent_to(script: Any, action: Any) -> list[tuple[str, list[Any]]]:
    """What the script sends to a fake bridge while ``action`` runs (nothing: [])."""
    module = sys.modules["SegueLiveScript"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as fake_bridge:
        fake_bridge.bind(("127.0.0.1", 0))
        fake_bridge.settimeout(0.3)
        script.bridge = fake_bridge.getsockname()
        action()
        out = []
        try:
            while True:
                out += module.oscmini.decode(fake_bridge.recv(65535))
        except TimeoutError:
            return out


def test_the_accompany_note_and_defaults(tmp_path: Path) -> None:
    song = Song(modern=True)
    _arrangement_clip(song)
    script = make(tmp_path, song)
    sent = _sent_to(script, lambda: script.receive_midi((0x91, 1, 100)))  # C#-2 on channel 2
    assert [a for a, _ in sent] == ["/segue/region", "/segue/generate"]
    assert sent[1][1] == ["accompany", 2, 2, "bass,piano"]  # ACCOMPANY: bass,piano, 2 variants
    sent = _sent_to(script, lambda: _handled(script, "/live/segue/accompany", ""))
    assert sent[1][1] == ["accompany", 2, 2]  # "": the model's default set, the 3-argument form
    sent = _sent_to(script, lambda: _handled(script, "/live/segue/send"))
    assert sent[1][1] == ["continue", 4, 2]  # the continue action is unchanged
    script.disconnect()


@pytest.mark.parametrize(
    ("address", "args", "says"),
    [
        ("/live/segue/accompany", ["double bass"], "nothing sent: 'double bass' is not a part name"),
        ("/live/segue/accompany", ["bass,BASS", 2], "nothing sent: 'bass' is given twice"),
        ("/live/segue/send", ["continue", 4, 2, "bass"], "parts (bass) are only for accompany"),
    ],
)
def test_bad_parts_are_refused_in_the_status_bar(tmp_path: Path, address: str, args: list[Any], says: str) -> None:
    song = Song(modern=True)
    _arrangement_clip(song)
    script = make(tmp_path, song)
    sent = _sent_to(script, lambda: _handled(script, address, *args))
    script.disconnect()
    assert sent == []
    assert says in script.messages[-1], script.messages


def test_the_live_script_normalises_parts_like_the_lua_core() -> None:
    module = load_script()
    results: list[tuple[str | None, str]] = []
    for typed, _, _ in PARTS_CASES:
        try:
            results.append((module.segue_script.normalise_parts(typed), ""))
        except ValueError as e:
            results.append((None, str(e)))
    check_parts(results)
