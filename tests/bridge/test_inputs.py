from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fake_engine import write_midi_region, write_wav

from bridge.inputs import classify_inputs, sha256_file, sniff_format
from engine.errors import BadInputError


def test_formats_are_detected_by_content(tmp_path: Path) -> None:
    assert sniff_format(write_midi_region(tmp_path / "a.mid")) == "midi"
    assert sniff_format(write_wav(tmp_path / "a.wav", 0.1)) == "audio"
    assert sniff_format(write_wav(tmp_path / "a.flac", 0.1, fmt="FLAC")) == "audio"
    assert sniff_format(write_wav(tmp_path / "a.aiff", 0.1, fmt="AIFF")) == "audio"
    # the name lies; the content decides
    assert sniff_format(write_wav(tmp_path / "wav-named.mid", 0.1)) == "audio"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.mid", b"", "is empty"),
        ("notes.txt", b"C D E F G", "not a format Segue reads"),
        ("broken.mid", b"garbage that is not MIDI", "its content is not that format"),
        ("song.mp3", b"ID3\x03\x00\x00\x00", "not a format Segue reads"),
    ],
)
def test_unreadable_inputs_name_the_file_and_the_formats(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadInputError) as info:
        sniff_format(path)
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "MIDI file" in message and "WAV, FLAC or AIFF" in message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such file"):
        sniff_format(tmp_path / "nope.mid")
    with pytest.raises(BadInputError, match="is a folder"):
        sniff_format(tmp_path)


def test_classify_one_midi_and_one_audio(tmp_path: Path) -> None:
    midi = write_midi_region(tmp_path / "r.mid")
    wav = write_wav(tmp_path / "r.wav", 0.1)
    files = classify_inputs([wav, midi])
    assert files.midi_path == midi.resolve() and files.audio_path == wav.resolve()
    with pytest.raises(BadInputError, match="both midi files"):
        classify_inputs([midi, write_midi_region(tmp_path / "s.mid")])
    with pytest.raises(BadInputError, match="one or two"):
        classify_inputs([midi, wav, midi])


def test_sha256(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc" * 1000)
    assert sha256_file(path, chunk_bytes=7) == hashlib.sha256(b"abc" * 1000).hexdigest()
