"""segue_core.lua (the Lua shared by the REAPER and Ardour scripts) under a stock Lua: JSON both ways against Python's
json, WAV and MIDI files read back by soundfile and mido, the placed-file queue, and the Ardour scripts' embedded
copies (daw_templates/embed_core.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile
from lua_helpers import TEMPLATES, lua_string, run_lua

CORE = TEMPLATES / "reaper" / "segue_core.lua"


def core_lua(body: str, tmp_path: Path) -> str:
    return run_lua(f"local core = dofile({lua_string(str(CORE))})\n{body}", tmp_path)


def test_json_from_python_decodes_and_encodes_back(tmp_path: Path) -> None:
    value = {
        "segue": 1,
        "file_path": '/Müsic/"quoted" \\ back/tab\there/\u2603 snow/\U0001f3b5.wav',
        "position_beats": 32.125,
        "neg": -1.5e-3,
        "list": [1, 2.5, "x", True, False, {"a": []}],
        "empty": {},
    }
    (tmp_path / "in.json").write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "esc.json").write_text(json.dumps(value, ensure_ascii=True), encoding="utf-8")
    out = core_lua(
        """
for _, name in ipairs({"in.json", "esc.json"}) do
  local v = core.json_decode(core.read_file(name))
  print(core.json_encode(v))
end
""",
        tmp_path,
    )
    for line in out.splitlines():
        decoded = json.loads(line)
        decoded["empty"] = {}  # Lua has one kind of empty table; it encodes as {}
        decoded["list"][5]["a"] = []
        assert decoded == value


@pytest.mark.parametrize("text", ['{"a": 1', '{"a" 1}', "[1,,2]", '"open', "tru", '{"a": 1} x'])
def test_bad_json_is_an_error_naming_the_place(tmp_path: Path, text: str) -> None:
    out = core_lua(
        f"local ok, err = pcall(core.json_decode, {lua_string(text)}) print(ok, err)",
        tmp_path,
    )
    assert out.startswith("false\tbad JSON at character"), out


def test_wav_and_midi_files_read_back(tmp_path: Path) -> None:
    core_lua(
        """
assert(core.write_wav("a.wav", 44100, 2, 100000, function(offset, count)
  local l, r = {}, {}
  for i = 1, count do l[i] = ((offset + i - 1) % 100) / 100 r[i] = -l[i] end
  return { l, r }
end, 4096))
assert(core.write_smf("a.mid", {
  { start_beats = 0.5, length_beats = 1.0, pitch = 60, velocity = 90 },
  { start_beats = 1.5, length_beats = 0.25, pitch = 200, velocity = 0, channel = 9 },
  { start_beats = 0.5, length_beats = 0.0, pitch = 62 },
}, 97.5, 6, 8, 6.0))
""",
        tmp_path,
    )
    data, rate = soundfile.read(tmp_path / "a.wav", dtype="float32")
    expected = (np.arange(100000) % 100) / 100
    assert rate == 44100 and data.shape == (100000, 2)
    np.testing.assert_allclose(data[:, 0], expected, atol=1e-7)
    np.testing.assert_allclose(data[:, 1], -expected, atol=1e-7)
    mid = mido.MidiFile(tmp_path / "a.mid")
    assert mid.type == 0 and mid.ticks_per_beat == 480
    tick, events = 0, []
    for m in mid.tracks[0]:
        tick += m.time
        if m.type in ("note_on", "note_off"):
            events.append((tick, m.type, m.note, m.velocity, m.channel))
    assert events == [
        (240, "note_on", 60, 90, 0),
        (240, "note_on", 62, 100, 0),
        (241, "note_off", 62, 0, 0),  # a zero-length note lasts one tick
        (720, "note_off", 60, 0, 0),
        (720, "note_on", 127, 1, 9),  # clamped
        (840, "note_off", 127, 0, 9),
    ]
    assert tick == 6 * 480
    metas = {m.type: m for m in mid.tracks[0] if m.is_meta}
    assert mido.tempo2bpm(metas["set_tempo"].tempo) == pytest.approx(97.5, abs=1e-3)
    assert (metas["time_signature"].numerator, metas["time_signature"].denominator) == (6, 8)


def test_pending_placements_in_number_order_past_small_gaps(tmp_path: Path) -> None:
    placed = tmp_path / "w" / "placed"
    (placed / "done").mkdir(parents=True)
    record = {"file_path": "/x.wav", "kind": "audio", "position_beats": 4}
    (placed / "done" / "000001.json").write_text(json.dumps(record))
    (placed / "000002.json").write_text(json.dumps(record))
    (placed / "000003.json").write_text("{broken")
    (placed / "000004.json").write_text(json.dumps(dict(record, position_beats=None)))  # not a placement
    (placed / "000006.json").write_text(json.dumps(dict(record, file_path="/y.wav")))  # 000005 is missing
    (placed / "000010.json").write_text(json.dumps(record))  # too far past the gap: later
    out = core_lua(
        """
local state = {}
for _, item in ipairs(core.pending_placements("w", state)) do
  print(item.name, item.record and item.record.file_path or ("error: " .. tostring(item.error)))
  if item.record then assert(core.mark_done("w", item)) end
end
print("next", state.next)
print("again", #core.pending_placements("w", state))
""",
        tmp_path,
    )
    lines = out.splitlines()
    assert lines[0] == "000002.json\t/x.wav"
    assert lines[1].startswith("000003.json\terror: bad JSON")
    assert lines[2] == "000004.json\terror: not a placement"
    assert lines[3] == "000006.json\t/y.wav"
    assert lines[4:] == ["next\t7", "again\t0"]
    assert sorted(p.name for p in (placed / "done").iterdir()) == ["000001.json", "000002.json", "000006.json"]


def test_musical_time_helpers(tmp_path: Path) -> None:
    out = core_lua(
        """
print(core.next_bar_line(11.34, 4), core.next_bar_line(12, 4), core.next_bar_line(0, 3), core.next_bar_line(6.5, 3))
print(core.beats_from_str("4:960"), core.beats_from_str("0:0"), core.quarters_per_bar(6, 8))
print(core.region_args({ start_beats = 1, length_beats = 0, tempo_bpm = 500 }))
""",
        tmp_path,
    )
    lines = out.splitlines()
    assert lines[0].split("\t") == ["12", "12", "0", "9"]
    assert [float(x) for x in lines[1].split("\t")] == [4.5, 0.0, 3.0]
    assert lines[2].startswith("nil\tnothing to send") and "tempo must be 10..400 BPM" in lines[2]


def test_the_ardour_scripts_carry_the_current_shared_lua() -> None:
    spec = importlib.util.spec_from_file_location("embed_core", TEMPLATES / "embed_core.py")
    assert spec is not None and spec.loader is not None
    embed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(embed)
    for script in embed.SCRIPTS:
        text = (TEMPLATES / "ardour" / script).read_text(encoding="utf-8")
        assert embed.embedded(text) == text, f"{script} is stale: run `python3 daw_templates/embed_core.py`"
