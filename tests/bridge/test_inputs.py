from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable
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


def _in_a_thread(call: Callable[[], object], timeout: float = 5.0) -> BaseException | None:
    """What ``call()`` raised, run on a thread that may not block for more than ``timeout`` seconds."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else TimeoutError(f"still blocked after {timeout} s")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "region.mid"
    os.mkfifo(path)
    try:
        for call in (lambda: sniff_format(path), lambda: sha256_file(path), lambda: classify_inputs([path])):
            error = _in_a_thread(call)
            assert isinstance(error, BadInputError), error
            assert "is not a regular file (a pipe, device or socket)" in str(error)
    finally:  # release a reader stuck in open(), if any
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_a_device_is_refused() -> None:
    with pytest.raises(BadInputError, match="not a regular file"):
        sniff_format(Path("/dev/zero"))
    with pytest.raises(BadInputError, match="not a regular file"):
        sha256_file(Path("/dev/zero"))


def test_a_two_gigabyte_file_is_refused_by_its_size_before_it_is_hashed(tmp_path: Path) -> None:
    midi = tmp_path / "big.mid"
    with midi.open("wb") as f:  # sparse files: 2 GiB that take no disk
        f.write(write_midi_region(tmp_path / "r.mid").read_bytes())
        f.truncate(2 * 2**30)
    wav = tmp_path / "big.wav"
    with wav.open("wb") as f:
        f.write(write_wav(tmp_path / "r.wav", 0.1).read_bytes())
        f.truncate(2 * 2**30)
    for path in (midi, wav):  # over every limit: refused from the size alone, before one byte is read
        with pytest.raises(BadInputError, match="is 2048 MiB; a region file may be at most 1024 MiB"):
            sha256_file(path)  # without the check first: 2 GiB read and hashed, then accepted
        with pytest.raises(BadInputError, match="is 2048 MiB; a region file may be at most 1024 MiB"):
            sniff_format(path)
    midi_over_its_limit = tmp_path / "100mb.mid"  # under the audio limit, over the MIDI one
    with midi_over_its_limit.open("wb") as f:
        f.write(b"MThd")
        f.truncate(100 * 2**20)
    for check in (sniff_format, sha256_file):
        with pytest.raises(BadInputError, match="is 100 MiB; a MIDI region may be at most 64 MiB"):
            check(midi_over_its_limit)
