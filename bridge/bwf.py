"""Broadcast Wave (BWF) for placement: the RIFF/``bext`` helpers of :mod:`engine.provenance.riff`, under the name
the bridge has always used. Stdlib only."""

from __future__ import annotations

from engine.provenance.riff import (
    BEXT_FIXED_SIZE,
    BEXT_ID,
    MAX_RIFF_SIZE,
    MAX_TIME_REFERENCE,
    Bext,
    Chunk,
    WaveFormat,
    ascii_text,
    coding_history,
    copy_plain,
    copy_with_bext,
    pack_bext,
    read_bext,
    read_chunk_data,
    read_chunks,
    read_format,
    unpack_bext,
)

__all__ = [
    "BEXT_FIXED_SIZE",
    "BEXT_ID",
    "MAX_RIFF_SIZE",
    "MAX_TIME_REFERENCE",
    "Bext",
    "Chunk",
    "WaveFormat",
    "ascii_text",
    "coding_history",
    "copy_plain",
    "copy_with_bext",
    "pack_bext",
    "read_bext",
    "read_chunk_data",
    "read_chunks",
    "read_format",
    "unpack_bext",
]
