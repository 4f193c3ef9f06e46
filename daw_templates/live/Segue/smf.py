"""Standard MIDI files, the little Segue needs: write a region's notes, read a variant's notes back (in beats)."""

import struct

TPQ = 480


def _vlq(n):
    n = int(n)
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.insert(0, (n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out)


def _read_vlq(track, pos):
    """A variable-length quantity at ``track[pos]``: (value, the position after it)."""
    value = 0
    while True:
        byte = track[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos


def write(path, notes, tempo_bpm, meter, length_beats):
    """``notes``: (pitch, start_beats, length_beats, velocity) from the region's start; one-track format 0."""
    events = []
    for order, (pitch, start, length, velocity) in enumerate(notes):
        on = max(0, int(round(start * TPQ)))
        off = max(on + 1, int(round((start + length) * TPQ)))
        pitch = max(0, min(127, int(pitch)))
        events.append((off, 0, order, bytes([0x80, pitch, 0])))
        events.append((on, 1, order, bytes([0x90, pitch, max(1, min(127, int(round(velocity))))])))
    events.sort()
    usec = int(round(60000000 / tempo_bpm))
    num, den = meter
    body = _vlq(0) + b"\xff\x51\x03" + usec.to_bytes(3, "big")
    body += _vlq(0) + b"\xff\x58\x04" + bytes([num, max(0, den.bit_length() - 1), 24, 8])
    now = 0
    for tick, _, _, data in events:
        body += _vlq(tick - now) + data
        now = tick
    body += _vlq(max(0, int(round(length_beats * TPQ)) - now)) + b"\xff\x2f\x00"
    with open(path, "wb") as out:
        out.write(b"MThd" + struct.pack(">IHHH", 6, 0, 1, TPQ) + b"MTrk" + struct.pack(">I", len(body)) + body)


def read(path):
    """(notes, length_beats): notes as (pitch, start_beats, length_beats, velocity) of every track, and where the
    last track ends. Tempo is ignored (positions in beats need none)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"MThd":
        raise ValueError(f"{path} is not a MIDI file")
    _, _, ntracks, division = struct.unpack(">IHHH", data[4:14])
    if division & 0x8000:
        raise ValueError(f"{path} uses SMPTE time, not beats")
    index, notes, end_beats = 14, [], 0.0
    for _ in range(ntracks):
        if data[index : index + 4] != b"MTrk":
            raise ValueError(f"{path}: a track chunk is missing")
        (size,) = struct.unpack(">I", data[index + 4 : index + 8])
        track, index = data[index + 8 : index + 8 + size], index + 8 + size
        pos, tick, status, held = 0, 0, 0, {}
        while pos < len(track):
            delta, pos = _read_vlq(track, pos)
            tick += delta
            if track[pos] >= 0x80:
                status = track[pos]
                pos += 1
            kind = status & 0xF0
            if status == 0xFF:
                meta, pos = track[pos], pos + 1
                length, pos = _read_vlq(track, pos)
                pos += length
                if meta == 0x2F:
                    break
            elif status in (0xF0, 0xF7):
                length, pos = _read_vlq(track, pos)
                pos += length
            elif kind in (0xC0, 0xD0):
                pos += 1
            else:
                a, b = track[pos], track[pos + 1]
                pos += 2
                key = (status & 0x0F, a)
                if kind == 0x90 and b > 0:
                    held[key] = (tick, b)
                elif kind in (0x80, 0x90) and key in held:
                    start, velocity = held.pop(key)
                    notes.append((a, start / division, (tick - start) / division, velocity))
        end_beats = max(end_beats, tick / division)
    notes.sort(key=lambda n: (n[1], n[0]))
    return notes, end_beats
