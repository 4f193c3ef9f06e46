"""A small OSC 1.0 codec (messages and bundles; types i f d h s T F N), enough for Segue's addresses."""

import struct

_NUMBERS = {"i": (">i", 4), "f": (">f", 4), "d": (">d", 8), "h": (">q", 8)}  # type tag: struct layout, bytes


def _pad(data):
    return data + b"\0" * (4 - len(data) % 4)


def _string(text):
    return _pad(text.encode("utf-8"))


def encode(address, args=()):
    """One OSC message; ints become ``i``, floats ``f``, strings ``s``, booleans ``T``/``F``."""
    tags, payload = ",", b""
    for arg in args:
        if isinstance(arg, bool):
            tags += "T" if arg else "F"
        elif isinstance(arg, int):
            tags += "i"
            payload += struct.pack(">i", arg)
        elif isinstance(arg, float):
            tags += "f"
            payload += struct.pack(">f", arg)
        elif isinstance(arg, str):
            tags += "s"
            payload += _string(arg)
        else:
            raise TypeError(f"cannot send {arg!r} over OSC")
    return _string(address) + _string(tags) + payload


def _read_string(data, index):
    end = data.index(b"\0", index)
    text = data[index:end].decode("utf-8", "replace")
    return text, (end // 4 + 1) * 4


def decode(data):
    """A list of (address, [args]) for a message or a (nested) bundle; ValueError if it is not OSC."""
    try:
        if data.startswith(b"#bundle\0"):
            messages, index = [], 16
            while index + 4 <= len(data):
                (size,) = struct.unpack(">i", data[index : index + 4])
                messages.extend(decode(data[index + 4 : index + 4 + size]))
                index += 4 + size
            return messages
        address, index = _read_string(data, 0)
        if not address.startswith("/"):
            raise ValueError(f"not an OSC address: {address!r}")
        if index >= len(data):
            return [(address, [])]
        tags, index = _read_string(data, index)
        args = []
        for tag in tags[1:]:
            if tag in _NUMBERS:
                layout, size = _NUMBERS[tag]
                args.append(struct.unpack(layout, data[index : index + size])[0])
                index += size
            elif tag == "s":
                text, index = _read_string(data, index)
                args.append(text)
            elif tag in "TF":
                args.append(tag == "T")
            elif tag == "N":
                args.append(None)
            else:
                raise ValueError(f"unsupported OSC type {tag!r}")
        return [(address, args)]
    except (struct.error, IndexError) as e:
        raise ValueError(f"truncated OSC data: {e}") from e
