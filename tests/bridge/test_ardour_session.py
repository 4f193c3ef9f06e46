"""Inserting a WAV into a closed Ardour 7 session file (bridge/adapters/ardour_session.py), without Ardour.

The session below is what ``ardour7-new_session -s 48000`` (Ardour 7.3) writes, trimmed of options that do not
matter here. tests/integration/test_ardour.py checks the result with the real Ardour (it lists the regions and
renders the session with ``ardour7-export``).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import soundfile

from bridge.adapters.ardour_session import (
    BACKUP_SUFFIX,
    insert_audio_file,
    session_file_of,
    wav_info,
)
from bridge.bwf import Bext, copy_with_bext
from engine.errors import BadInputError

SESSION = """<?xml version="1.0" encoding="UTF-8"?>
<Session version="7002" name="{name}" sample-rate="{rate}" session-range-is-free="1" id-counter="119" \
name-counter="1" event-counter="0" vca-counter="1">
  <ProgramVersion created-with="Ardour 7.3.0~ds0-1" modified-with="Ardour 7.3.0~ds0-1"/>
  <Config>
    <Option name="native-file-data-format" value="FormatFloat"/>
  </Config>
  <Metadata/>
  <Sources/>
  <TriggerBindings/>
  <Regions/>
  <Selection/>
  <Locations/>
  <Bundles/>
  <VCAManager/>
  <Routes>
    <Route version="7002" id="28" name="Master" default-type="audio" strict-io="1" active="1">
      <PresentationInfo order="0" flags="MasterOut,OrderSet" color="0"/>
      <IO name="Master" id="56" direction="Input" default-type="audio">
        <Port type="audio" name="Master/audio_in 1"/>
        <Port type="audio" name="Master/audio_in 2"/>
      </IO>
      <IO name="Master" id="57" direction="Output" default-type="audio">
        <Port type="audio" name="Master/audio_out 1">
          <Connection other="system:playback_1"/>
        </Port>
        <Port type="audio" name="Master/audio_out 2">
          <Connection other="system:playback_2"/>
        </Port>
      </IO>
      <Processor id="62" name="Master" active="1" own-input="1" own-output="0" output="Master" type="main-outs"/>
    </Route>
  </Routes>
  <Playlists/>
  <UnusedPlaylists/>
  <RouteGroups/>
  <TempoMap superclocks-per-second="282240000">
    <Tempos>
      <Tempo npm="120" enpm="120" note-type="4" type="Tempo::Constant" active="1" sclock="0" quarters="0:0" \
bbt="1|1|0" omega="0"/>
    </Tempos>
    <Meters>
      <Meter note-value="4" divisions-per-bar="4" sclock="0" quarters="0:0" bbt="1|1|0"/>
    </Meters>
    <MusicTimes/>
  </TempoMap>
  <ControlProtocols/>
</Session>
"""
SC_PER_SAMPLE_48K = 282_240_000 // 48_000  # 5880


def make_session(parent: Path, name: str = "song", rate: int = 48_000, version: str = "7002") -> Path:
    folder = parent / name
    (folder / "interchange" / name / "audiofiles").mkdir(parents=True)
    session_file = folder / f"{name}.ardour"
    text = SESSION.format(name=name, rate=rate).replace('version="7002" name=', f'version="{version}" name=', 1)
    session_file.write_text(text, encoding="utf-8")
    return session_file


def write_wav(path: Path, frames: int = 4800, channels: int = 1, rate: int = 48_000) -> Path:
    data = np.random.default_rng(3).uniform(-0.5, 0.5, size=(frames, channels)).astype(np.float32)
    soundfile.write(path, data, rate, subtype="PCM_24", format="WAV")
    return path


def root_of(session_file: Path) -> ET.Element:
    return ET.parse(session_file).getroot()


def by_id(root: ET.Element) -> dict[str, ET.Element]:
    return {e.get("id", ""): e for e in root.iter() if e.get("id") is not None}


def test_mono_file_becomes_a_track_with_one_region_at_the_sample(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    original = session_file.read_bytes()
    wav = write_wav(tmp_path / "vocal_ab12_v01_mix.wav", frames=4800)

    result = insert_audio_file(session_file.parent, wav, position_samples=96_000, track_name="Vocal")

    assert result.session_file == session_file
    assert result.track_name == "Vocal" and result.channels == 1 and result.length_samples == 4800
    assert result.audio_file == session_file.parent / "interchange" / "song" / "audiofiles" / wav.name
    assert result.audio_file.read_bytes() == wav.read_bytes()  # byte for byte
    assert result.backup.read_bytes() == original and result.backup.name == f"song.ardour{BACKUP_SUFFIX}"

    root = root_of(session_file)
    [source] = root.findall("./Sources/Source")
    assert source.get("name") == wav.name and source.get("channel") == "0" and source.get("type") == "audio"
    [whole] = root.findall("./Regions/Region")
    assert whole.get("whole-file") == "1" and whole.get("length") == f"a{4800 * SC_PER_SAMPLE_48K}@a0"
    [playlist] = root.findall("./Playlists/Playlist")
    [placed] = playlist.findall("Region")
    assert placed.get("length") == f"a{4800 * SC_PER_SAMPLE_48K}@a{96_000 * SC_PER_SAMPLE_48K}"
    assert placed.get("start") == "a0" and placed.get("source-0") == source.get("id") and placed.get("channels") == "1"
    [route] = [r for r in root.iter("Route") if r.get("name") == "Vocal"]
    assert route.get("audio-playlist") == playlist.get("id") == str(result.playlist_id)
    assert playlist.get("orig-track-id") == route.get("id") == str(result.route_id)
    [info] = route.findall("PresentationInfo")
    assert info.get("flags") == "AudioTrack,OrderSet" and info.get("order") == "1"
    inputs, outputs = (io for io in route.findall("IO"))
    assert [p.get("name") for p in inputs.findall("Port")] == ["Vocal/audio_in 1"]
    assert [p.find("Connection") for p in inputs.findall("Port")] == [None]  # not wired to any capture port
    assert [(p.get("name"), p.find("Connection").get("other")) for p in outputs.findall("Port")] == [  # type: ignore[union-attr]
        ("Vocal/audio_out 1", "Master/audio_in 1"),
        ("Vocal/audio_out 2", "Master/audio_in 2"),
    ]
    kinds = [p.get("type") for p in route.findall("Processor")]
    assert kinds == ["diskwriter", "diskreader", "polarity", "trim", "amp", "meter", "main-outs"]
    # the session range now covers the region, from the session's start
    [session_range] = [loc for loc in root.iter("Location") if loc.get("flags") == "IsSessionRange"]
    assert session_range.get("start") == "a0"
    assert session_range.get("end") == f"a{(96_000 + 4800) * SC_PER_SAMPLE_48K}"


def test_ids_are_fresh_unique_and_below_the_new_id_counter(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    before = set(by_id(root_of(session_file)))
    insert_audio_file(session_file, write_wav(tmp_path / "a.wav"), position_samples=0)
    root = root_of(session_file)
    ids = [e.get("id", "") for e in root.iter() if e.get("id") is not None]
    assert len(ids) == len(set(ids)), "duplicate ids"
    new = [int(i) for i in ids if i not in before]
    assert new and min(new) >= 119  # the session's id-counter
    assert int(root.get("id-counter", "0")) > max(int(i) for i in ids)


def test_stereo_file_gets_one_source_per_channel(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    wav = write_wav(tmp_path / "pad.wav", frames=1000, channels=2)
    result = insert_audio_file(session_file, wav, position_samples=48_000)
    root = root_of(session_file)
    sources = root.findall("./Sources/Source")
    assert [s.get("channel") for s in sources] == ["0", "1"] and {s.get("name") for s in sources} == {"pad.wav"}
    assert result.source_ids == tuple(int(s.get("id", "")) for s in sources)
    [placed] = root.findall("./Playlists/Playlist/Region")
    assert placed.get("channels") == "2"
    assert (placed.get("source-0"), placed.get("source-1")) == (sources[0].get("id"), sources[1].get("id"))
    [route] = [r for r in root.iter("Route") if r.get("name") == "Segue"]
    inputs = route.findall("IO")[0]
    assert [p.get("name") for p in inputs.findall("Port")] == ["Segue/audio_in 1", "Segue/audio_in 2"]


def test_position_comes_from_the_bext_time_reference(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    plain = write_wav(tmp_path / "plain.wav")
    placed = tmp_path / "placed.wav"
    with placed.open("wb") as out:
        copy_with_bext(plain, out, Bext(originator="Segue", time_reference=472_615))
    result = insert_audio_file(session_file, placed)
    assert result.position_samples == 472_615
    [region] = root_of(session_file).findall("./Playlists/Playlist/Region")
    assert region.get("length", "").endswith(f"@a{472_615 * SC_PER_SAMPLE_48K}")


def test_without_bext_the_position_is_required(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    original = session_file.read_bytes()
    with pytest.raises(BadInputError, match="no BWF time reference"):
        insert_audio_file(session_file, write_wav(tmp_path / "plain.wav"))
    assert session_file.read_bytes() == original
    assert list((session_file.parent / "interchange" / "song" / "audiofiles").iterdir()) == []


@pytest.mark.parametrize("position", [-1, 1.5, True])
def test_bad_positions_are_refused(tmp_path: Path, position: object) -> None:
    session_file = make_session(tmp_path)
    with pytest.raises(BadInputError, match="position_samples"):
        insert_audio_file(session_file, write_wav(tmp_path / "a.wav"), position_samples=position)  # type: ignore[arg-type]


def test_another_sample_rate_is_refused_with_what_to_do(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    original = session_file.read_bytes()
    wav = write_wav(tmp_path / "a.wav", rate=44_100)
    with pytest.raises(BadInputError, match=r"44100 Hz .* 48000 Hz; render or resample"):
        insert_audio_file(session_file, wav, position_samples=0)
    assert session_file.read_bytes() == original
    assert not list(session_file.parent.glob(f"*{BACKUP_SUFFIX}*"))


def test_ardour_6_sessions_are_refused(tmp_path: Path) -> None:
    session_file = make_session(tmp_path, version="6000")
    with pytest.raises(BadInputError, match="Ardour 7"):
        insert_audio_file(session_file, write_wav(tmp_path / "a.wav"), position_samples=0)


def test_not_a_session_or_not_a_wav(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    bogus = tmp_path / "x.ardour"
    bogus.write_text("<NotASession/>")
    with pytest.raises(BadInputError, match="not an Ardour session"):
        insert_audio_file(bogus, write_wav(tmp_path / "a.wav"), position_samples=0)
    broken = tmp_path / "y.ardour"
    broken.write_text("<Session")
    with pytest.raises(BadInputError, match="not a readable Ardour session"):
        insert_audio_file(broken, write_wav(tmp_path / "b.wav"), position_samples=0)
    midi = tmp_path / "c.mid"
    midi.write_bytes(b"MThd\0\0\0\x06\0\0\0\x01\0\x60")
    with pytest.raises(BadInputError, match="not a WAV"):
        insert_audio_file(session_file, midi, position_samples=0)


def test_44k1_sessions_use_6400_superclocks_per_sample(tmp_path: Path) -> None:
    session_file = make_session(tmp_path, rate=44_100)
    insert_audio_file(session_file, write_wav(tmp_path / "a.wav", frames=441, rate=44_100), position_samples=44_100)
    [region] = root_of(session_file).findall("./Playlists/Playlist/Region")
    assert region.get("length") == f"a{441 * 6400}@a{44_100 * 6400}"


def test_names_never_clash_and_nothing_is_overwritten(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    wav = write_wav(tmp_path / "take.wav")
    first = insert_audio_file(session_file, wav, position_samples=0, track_name="Keys")
    second = insert_audio_file(session_file, wav, position_samples=4800, track_name="Keys")
    third = insert_audio_file(session_file, wav, position_samples=9600, track_name="Keys")
    assert [r.track_name for r in (first, second, third)] == ["Keys", "Keys 2", "Keys 3"]
    assert [r.audio_file.name for r in (first, second, third)] == ["take.wav", "take-2.wav", "take-3.wav"]
    assert [r.backup.name for r in (first, second, third)] == [
        f"song.ardour{BACKUP_SUFFIX}",
        f"song.ardour{BACKUP_SUFFIX}-2",
        f"song.ardour{BACKUP_SUFFIX}-3",
    ]
    root = root_of(session_file)
    assert len([r for r in root.iter("Route")]) == 4  # master + 3 tracks
    assert len({p.get("name") for p in root.iter("Playlist")}) == 3
    # each backup holds the session as it was before that insert
    assert len([r for r in root_of(third.backup).iter("Route")]) == 3


def test_track_names_are_made_safe_for_port_names(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    result = insert_audio_file(session_file, write_wav(tmp_path / "a.wav"), position_samples=0, track_name="L/R: mix")
    assert result.track_name == "L-R- mix"
    [route] = [r for r in root_of(session_file).iter("Route") if r.get("name") == "L-R- mix"]
    assert route.findall("IO")[0].findall("Port")[0].get("name") == "L-R- mix/audio_in 1"


def test_ardours_own_io_names_are_not_used_for_tracks(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    wav = write_wav(tmp_path / "a.wav")
    # "Click" is Ardour's metronome output: a track of that name makes the session fail to load on JACK
    assert insert_audio_file(session_file, wav, position_samples=0, track_name="Click").track_name == "Click 2"
    assert insert_audio_file(session_file, wav, position_samples=0, track_name="Master").track_name == "Master 2"


def test_an_existing_session_range_grows_and_never_shrinks(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    text = session_file.read_text().replace(
        "<Locations/>",
        f'<Locations><Location id="90" name="session" start="a{48_000 * SC_PER_SAMPLE_48K}" '
        f'end="a{96_000 * SC_PER_SAMPLE_48K}" flags="IsSessionRange" locked="0"/></Locations>',
    )
    session_file.write_text(text)
    insert_audio_file(session_file, write_wav(tmp_path / "a.wav", frames=4800), position_samples=60_000)
    [loc] = root_of(session_file).iter("Location")
    assert (loc.get("start"), loc.get("end")) == (f"a{48_000 * SC_PER_SAMPLE_48K}", f"a{96_000 * SC_PER_SAMPLE_48K}")
    insert_audio_file(session_file, write_wav(tmp_path / "b.wav", frames=4800), position_samples=100_000)
    [loc] = root_of(session_file).iter("Location")
    assert loc.get("end") == f"a{104_800 * SC_PER_SAMPLE_48K}"
    insert_audio_file(session_file, write_wav(tmp_path / "c.wav", frames=4800), position_samples=0)
    [loc] = root_of(session_file).iter("Location")
    assert loc.get("start") == "a0"


def test_session_file_of(tmp_path: Path) -> None:
    session_file = make_session(tmp_path)
    assert session_file_of(session_file.parent) == session_file
    assert session_file_of(session_file) == session_file
    with pytest.raises(BadInputError, match="not an Ardour session file"):
        session_file_of(write_wav(tmp_path / "a.wav"))
    with pytest.raises(BadInputError, match="does not exist"):
        session_file_of(tmp_path / "missing")
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "one.ardour").write_text("x")
    (odd / "two.ardour").write_text("x")
    with pytest.raises(BadInputError, match="2 .ardour files"):
        session_file_of(odd)


def test_wav_info_counts_frames(tmp_path: Path) -> None:
    info = wav_info(write_wav(tmp_path / "a.wav", frames=1234, channels=2, rate=44_100))
    assert (info.channels, info.sample_rate, info.frames) == (2, 44_100, 1234)
    empty = tmp_path / "empty.wav"
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros((0, 1), dtype=np.float32), 48_000, format="WAV", subtype="FLOAT")
    empty.write_bytes(buffer.getvalue())
    with pytest.raises(BadInputError, match="holds no audio"):
        wav_info(empty)
