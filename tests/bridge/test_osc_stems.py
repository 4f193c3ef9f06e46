"""``/segue/region/stems``: one region given as several tracks' audio (drums, bass, keys), each as a name and a
path after /segue/region's 8 arguments, and the same through the watched folder. The stems reach the engine in
order, job.json records them (names, paths, SHA-256), and bad input is answered with /segue/error before any job
exists; the single-path /segue/region keeps working beside it.

Material: sine tones written by the tests (fake_engine.write_wav)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from fake_engine import FakeEngine, write_midi_region, write_wav
from osc_helpers import CLIENT, Recorder
from pythonosc.osc_message_builder import build_msg
from test_watch import _drop, _wait

from bridge.osc import OscBridge
from bridge.service import BridgeService
from bridge.watch import WatchFolder, request_messages
from engine.api import MAX_STEMS

REGION = [0.0, 8.0, 120.0, 4, 4, "Band"]  # start_beats, length_beats, tempo_bpm, meter_num, meter_den, track


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.engine = FakeEngine()
        self.out = tmp_path / "out"
        self.service = BridgeService(self.engine, self.out, place="none")
        self.bridge = OscBridge(self.service)
        self.sent = Recorder()
        self.bridge.attach(self.sent)
        self.service.start()
        self.tracks = {n: write_wav(tmp_path / f"{n}.wav", 0.5 + 0.25 * i).resolve()
                       for i, n in enumerate(("drums", "bass", "keys"))}  # fmt: skip

    def send(self, address: str, *args: Any) -> None:
        self.bridge.handle_datagram(build_msg(address, list(args)).dgram, CLIENT)

    def send_stems(self, pairs: list[Any], mix: str = "", midi: str = "") -> None:
        self.send("/segue/region/stems", mix, midi, *REGION, *pairs)

    def pairs(self) -> list[str]:
        return [item for name, path in self.tracks.items() for item in (name, str(path))]

    def errors(self) -> list[str]:
        return [args[0] for args in self.sent.of("/segue/error")]


@pytest.fixture
def osc(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.service.close()


def test_stems_reach_the_engine_in_order_and_job_json_records_each_with_its_hash(osc: Harness) -> None:
    osc.send_stems(osc.pairs())
    assert osc.errors() == []
    region = osc.service.region
    assert region is not None and region.audio_path is None and region.midi_path is None
    assert region.stems == tuple(osc.tracks.items()) and region.track == "Band"
    osc.send("/segue/generate", "continue", 2, 1)
    (done,) = osc.sent.wait_for("/segue/job/done")
    (request,) = osc.engine.requests
    assert request.prompt.stems == tuple(osc.tracks.items()) and request.prompt.tempo_bpm == 120.0
    sources = json.loads(Path(done[1]).read_text())["region"]["sources"]
    assert sources == [
        {"path": str(path), "role": f"stem:{name}", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
         "size_bytes": path.stat().st_size}
        for name, path in osc.tracks.items()
    ]  # fmt: skip


def test_an_accompaniment_of_stems_is_refused_at_once(osc: Harness) -> None:
    osc.send_stems(osc.pairs())
    osc.send("/segue/generate", "accompany", 2, 1)
    (error,) = osc.errors()
    assert "stems are continued together (mode continue)" in error and osc.engine.requests == []


def test_a_mix_beside_the_stems_is_the_region_audio(osc: Harness, tmp_path: Path) -> None:
    mix = write_wav(tmp_path / "mix.wav", 0.5).resolve()
    osc.send_stems(osc.pairs(), mix=str(mix))
    region = osc.service.region
    assert osc.errors() == [] and region is not None and region.audio_path == mix and len(region.stems) == 3


def test_the_single_path_region_still_works_and_carries_no_stems(osc: Harness) -> None:
    osc.send("/segue/region", str(osc.tracks["drums"]), "", *REGION)
    region = osc.service.region
    assert osc.errors() == [] and region is not None and region.audio_path == osc.tracks["drums"]
    assert region.stems == ()


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], "/segue/region/stems: give each track's audio after the region's 8 arguments"),
        (["Drums Kit", "DRUMS"], "a stem name is lowercase letters, digits, '-' or '_'"),
        (["drums", "DRUMS", "drums", "BASS"], "a stem name is given twice in drums, drums"),
        (["drums", "/no/such/drums.wav"], "cannot read a region at /no/such/drums.wav: it does not exist or is"),
        (["drums", "relative.wav"], "stem drums must be absolute"),
        (["keys", "MIDI"], "is a midi file, given as stem keys"),
        (["drums", ""], "stem 'drums' needs the path of its audio file"),
        (["drums", 3], "argument 10 (the path of stem 'drums') must be a string, got an int"),
        (["drums"], "so the last key has no value"),
    ],
)
def test_bad_stems_are_answered_with_an_error_and_set_no_region(
    osc: Harness, tmp_path: Path, pairs: list[Any], expected: str
) -> None:
    midi = str(write_midi_region(tmp_path / "r.mid").resolve())
    paths = {"DRUMS": str(osc.tracks["drums"]), "BASS": str(osc.tracks["bass"]), "MIDI": midi}
    osc.send_stems([paths.get(p, p) if isinstance(p, str) else p for p in pairs])
    (error,) = osc.errors()
    assert expected in error and error.startswith("/segue/region/stems")
    assert osc.service.region is None


def test_an_unreadable_stem_gets_the_same_answer_as_an_unreadable_region(osc: Harness) -> None:
    osc.send("/segue/region", "/no/such/take.wav", "", *REGION)
    osc.send_stems(["drums", "/no/such/take.wav"])
    region_error, stems_error = osc.errors()
    assert region_error.replace("/segue/region", "") == stems_error.replace("/segue/region/stems", "")


def test_too_many_stems_are_refused_before_any_file_is_read(osc: Harness) -> None:
    pairs = [item for i in range(MAX_STEMS + 1) for item in (f"t{i}", f"/no/such/t{i}.wav")]
    osc.send_stems(pairs)
    (error,) = osc.errors()
    assert f"at most {MAX_STEMS} stems per region, got {MAX_STEMS + 1}" in error  # not "cannot read"
    assert osc.service.region is None


def test_a_watched_folder_request_with_stems_is_the_stems_message(tmp_path: Path) -> None:
    stems = [{"name": "drums", "path": "/a/drums.wav"}, {"name": "bass", "path": "/a/bass.wav"}]
    request = {"audio_path": "", "start_beats": 0, "length_beats": 8, "tempo_bpm": 120, "stems": stems}
    ((address, args),) = request_messages(request)
    assert address == "/segue/region/stems"
    assert args[8:] == [("s", "drums"), ("s", "/a/drums.wav"), ("s", "bass"), ("s", "/a/bass.wav")]
    for bad, says in ((["/a/drums.wav"], "stem 1 must be an object with a name and a path"), ([], "must be a list"),
                      ([{"name": "drums", "path": 3}], "the path of stem 1 must be a string")):  # fmt: skip
        with pytest.raises(Exception, match=says):
            request_messages({**request, "stems": bad})


def test_the_watched_folder_runs_a_stems_job(tmp_path: Path) -> None:
    service = BridgeService(FakeEngine(), tmp_path / "jobs", place="none")
    service.start()
    folder = WatchFolder(service, tmp_path / "watch", poll_s=0.05)
    folder.start()
    try:
        tracks = {n: write_wav(tmp_path / f"{n}.wav", 0.5).resolve() for n in ("drums", "bass")}
        _drop(folder, "s.json", {"start_beats": 0, "length_beats": 8, "tempo_bpm": 120,
                                 "stems": [{"name": n, "path": str(p)} for n, p in tracks.items()],
                                 "generate": {"mode": "continue", "bars": 2, "variants": 1}})  # fmt: skip
        assert _wait(lambda: json.loads((folder.folder / "status.json").read_text() or "{}").get("event") == "done"
                     if (folder.folder / "status.json").is_file() else False)  # fmt: skip
        assert service.region is not None and service.region.stems == tuple(tracks.items())
    finally:
        folder.close()
        service.close()


def test_a_real_job_accepts_a_mono_stem_and_fails_stems_of_other_lengths_or_rates_saying_which(
    tmp_path: Path,
) -> None:
    """segue-concat itself (no fake): what /segue/job/done and /segue/job/failed say for stems the DAW got wrong.
    Material: the numpy drums of tests/support/concat_material.py, split into tracks (test_cli_stems)."""
    from test_cli_stems import _tracks

    from engine.local import LocalEngine

    service = BridgeService(LocalEngine(device="cpu"), tmp_path / "out", place="none")
    bridge, sent = OscBridge(service), Recorder()
    bridge.attach(sent)
    service.start()
    try:
        for case, rate in (("good", 44_100), ("rates", 48_000), ("lengths", 44_100)):
            (tmp_path / case).mkdir()
            kick, snare, hats = _tracks(tmp_path / case, rate_of_hats=rate)  # hats: mono
            if case == "lengths":
                data, sr = sf.read(str(hats))
                sf.write(str(hats), data[: len(data) // 2], sr)
            pairs = [item for path in (kick, snare, hats) for item in (path.stem, str(path))]
            message = build_msg("/segue/region/stems", ["", "", 0.0, 16.0, 110.0, 4, 4, "Drums", *pairs])
            bridge.handle_datagram(message.dgram, CLIENT)
            bridge.handle_datagram(build_msg("/segue/generate", ["continue", 1, 1]).dgram, CLIENT)
        sent.wait_for("/segue/job/done", 1, timeout=60)
        failed = sent.wait_for("/segue/job/failed", 2, timeout=60)
    finally:
        service.close()
    assert [args[0] for args in sent.of("/segue/error")] == []
    (done,) = sent.of("/segue/job/done")
    files = json.loads(Path(done[1]).read_text())["variants"][0]["files"]
    assert sf.info(str(Path(done[1]).parent / files["stem:hats"])).channels == 1  # the mono stem comes back mono
    rates, lengths = sorted((args[1] for args in failed), key=lambda m: "rate" not in m)
    assert "must share one sample rate: kick 44100 Hz, snare 44100 Hz, hats 48000 Hz" in rates
    assert "the stems are of different lengths" in lengths and "hats 4.36" in lengths
