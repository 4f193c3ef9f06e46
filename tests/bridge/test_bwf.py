"""BWF ``bext`` chunks: the EBU Tech 3285 v1 layout, RIFF sizes and word alignment, audio left untouched."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile

from bridge.bwf import (
    BEXT_FIXED_SIZE,
    Bext,
    Chunk,
    coding_history,
    copy_with_bext,
    pack_bext,
    read_bext,
    read_chunk_data,
    read_chunks,
    read_format,
    unpack_bext,
)
from engine.errors import BadInputError


def write_wav(path: Path, sample_rate: int = 48_000, frames: int = 4_801, channels: int = 2) -> Path:
    rng = np.random.default_rng(7)
    audio = rng.uniform(-0.5, 0.5, size=(frames, channels)).astype(np.float32)
    soundfile.write(path, audio, sample_rate, subtype="PCM_24", format="WAV")
    return path


def riff(*chunks: tuple[bytes, bytes]) -> bytes:
    """A RIFF/WAVE file from (id, data) pairs, padded as RIFF wants."""
    body = b"".join(cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1) for cid, data in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def fmt_pcm(channels: int, rate: int, bits: int) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", 1, channels, rate, rate * align, align, bits)


def check_riff(path: Path) -> list[Chunk]:
    """The RIFF size matches the file, and the chunks tile it exactly (word aligned, pad bytes included)."""
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    assert struct.unpack_from("<I", raw, 4)[0] + 8 == len(raw)
    chunks = read_chunks(path)
    pos = 12
    for chunk in chunks:
        assert chunk.offset == pos + 8 and pos % 2 == 0
        pos = chunk.offset + chunk.size + (chunk.size & 1)
    assert pos == len(raw)
    return chunks


def with_bext(tmp_path: Path, source: Path, bext: Bext, name: str = "out.wav") -> Path:
    target = tmp_path / name
    with target.open("wb") as out:
        written = copy_with_bext(source, out, bext)
    assert written == target.stat().st_size
    return target


def test_round_trip_at_48k_and_12_5_seconds(tmp_path: Path) -> None:
    source = write_wav(tmp_path / "in.wav")
    fmt = read_format(source)
    bext = Bext(
        description="Segue continue v01 mix for track Lead Vox",
        originator="Segue",
        originator_reference="SEGUE-3f2a-v01",
        origination_date="2026-01-31",
        origination_time="23-59-58",
        time_reference=round(12.5 * fmt.sample_rate),
        coding_history=coding_history(fmt, "Segue 0.1"),
    )
    target = with_bext(tmp_path, source, bext)
    back = read_bext(target)
    assert back == bext
    assert back is not None and back.time_reference == 600_000 and back.version == 1
    assert back.coding_history == "A=PCM,F=48000,W=24,M=stereo,T=Segue 0.1\r\n"

    chunks = check_riff(target)
    ids = [c.id for c in chunks]
    assert ids.index(b"bext") == ids.index(b"data") - 1 and ids.count(b"bext") == 1
    raw_bext = read_chunk_data(target, chunks[ids.index(b"bext")])
    assert struct.unpack_from("<Q", raw_bext, 338)[0] == 600_000  # TimeReference: 256 + 32 + 32 + 10 + 8
    assert struct.unpack_from("<H", raw_bext, 346)[0] == 1  # Version
    assert raw_bext[348:BEXT_FIXED_SIZE] == bytes(64 + 190)  # UMID and reserved
    assert raw_bext[:41] == b"Segue continue v01 mix for track Lead Vox" and raw_bext[41:256] == bytes(215)


def test_audio_is_untouched_and_soundfile_reads_it(tmp_path: Path) -> None:
    source = write_wav(tmp_path / "in.wav")
    target = with_bext(tmp_path, source, Bext(time_reference=123))
    data_in = [c for c in read_chunks(source) if c.id == b"data"][0]
    data_out = [c for c in read_chunks(target) if c.id == b"data"][0]
    assert read_chunk_data(source, data_in) == read_chunk_data(target, data_out)
    a, rate_a = soundfile.read(source, dtype="int32")
    b, rate_b = soundfile.read(target, dtype="int32")
    assert rate_a == rate_b == 48_000 and np.array_equal(a, b)
    assert soundfile.info(str(target)).subtype == "PCM_24"


def test_odd_sized_chunks_are_padded_and_kept(tmp_path: Path) -> None:
    # mono 24-bit, 3 frames: a 9-byte data chunk; a 3-byte private chunk before it; both need a pad byte
    frames = bytes([1, 0, 0, 2, 0, 0, 0xFF, 0xFF, 0x7F])
    source = tmp_path / "odd.wav"
    source.write_bytes(riff((b"fmt ", fmt_pcm(1, 44_100, 24)), (b"abcd", b"xyz"), (b"data", frames)))
    check_riff(source)
    history = "A=PCM,F=44100,W=24,M=mono,T=odd\r\n"  # 33 characters: the bext chunk is odd too
    assert (BEXT_FIXED_SIZE + len(history)) % 2 == 1
    target = with_bext(tmp_path, source, Bext(time_reference=44_100, coding_history=history))
    chunks = check_riff(target)
    assert [c.id for c in chunks] == [b"fmt ", b"abcd", b"bext", b"data"]
    assert [c.size for c in chunks] == [16, 3, BEXT_FIXED_SIZE + len(history), 9]
    assert read_chunk_data(target, chunks[1]) == b"xyz" and read_chunk_data(target, chunks[3]) == frames
    back = read_bext(target)
    assert back is not None and back.coding_history == history and back.time_reference == 44_100
    audio, rate = soundfile.read(target, dtype="int32")
    assert rate == 44_100 and audio.shape == (3,) and audio[2] == 0x7FFFFF << 8


def test_an_existing_bext_is_replaced(tmp_path: Path) -> None:
    source = with_bext(tmp_path, write_wav(tmp_path / "in.wav"), Bext(time_reference=1), "first.wav")
    target = with_bext(tmp_path, source, Bext(time_reference=2), "second.wav")
    assert [c.id for c in check_riff(target)].count(b"bext") == 1
    back = read_bext(target)
    assert back is not None and back.time_reference == 2


def test_text_is_ascii_and_cut_to_its_field() -> None:
    packed = pack_bext(Bext(description="Lead Vox #2/ä " + "x" * 300, originator="Ségue™", version=1))
    back = unpack_bext(packed)
    assert back.description.startswith("Lead Vox #2/a x") and len(back.description) == 256
    assert back.originator == "SegueTM"


@pytest.mark.parametrize(
    ("bext", "message"),
    [
        (Bext(time_reference=-1), "time_reference must be in 0..2**64-1"),
        (Bext(time_reference=2**64), "time_reference must be in 0..2**64-1"),
        (Bext(origination_date="31/01/2026"), "origination_date must look like yyyy-mm-dd"),
        (Bext(origination_time="23h59"), "origination_time must look like hh-mm-ss"),
        (Bext(umid=b"\1"), "umid must be 64 bytes"),
    ],
)
def test_bad_fields_are_refused(bext: Bext, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("*", r"\*").replace(".", r"\.")):
        pack_bext(bext)


def test_files_that_are_not_usable_wavs(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(BadInputError, match="not a WAV file"):
        read_chunks(text)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(write_wav(tmp_path / "in.wav").read_bytes()[:-100])
    with pytest.raises(BadInputError, match="past the end of the file"):
        read_chunks(cut)
    no_data = tmp_path / "nodata.wav"
    no_data.write_bytes(riff((b"fmt ", fmt_pcm(2, 48_000, 24))))
    with (tmp_path / "x.wav").open("wb") as out, pytest.raises(BadInputError, match="lacks a fmt or data chunk"):
        copy_with_bext(no_data, out, Bext())
    with pytest.raises(BadInputError, match="shorter|at least 602"):
        unpack_bext(b"\0" * 10)
