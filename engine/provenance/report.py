"""What a file carries: its ``bext``, ``iXML`` and C2PA manifest (WAV) or its meta events (MIDI), and whether the
signature holds. ``segue provenance FILE`` prints :func:`format_report` of :func:`inspect_file`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import BadInputError
from engine.provenance.ixml import IXML_ID, IxmlInfo, parse_ixml
from engine.provenance.midi import MidiInfo, read_midi_provenance
from engine.provenance.record import ProvenanceRecord
from engine.provenance.riff import BEXT_ID, Bext, chunk_bytes, parse_chunks, unpack_bext
from engine.provenance.signing import C2PA_CHUNK_ID, C2paStatus, check_wav

MAX_FILE_BYTES = 2 << 30


@dataclass(frozen=True)
class FileProvenance:
    """Everything :func:`inspect_file` found in one file."""

    path: Path
    kind: str  # "wav" | "midi"
    record: ProvenanceRecord | None  # Segue's record (iXML for WAV, the sequencer-specific event for MIDI)
    bext: Bext | None = None
    ixml: IxmlInfo | None = None
    c2pa: C2paStatus | None = None
    midi: MidiInfo | None = None
    chunk_sizes: dict[str, int] = dataclasses.field(default_factory=dict)  # WAV: chunk id -> data bytes

    @property
    def signature_holds(self) -> bool | None:
        """True/False when the file has a C2PA manifest that could be checked, else None."""
        if self.c2pa is None or not self.c2pa.present or not self.c2pa.checked:
            return None
        return self.c2pa.signature_holds

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": str(self.path), "kind": self.kind}
        data["record"] = self.record.to_json() if self.record is not None else None
        if self.bext is not None:
            bext = dataclasses.asdict(self.bext)
            bext.pop("umid", None)
            data["bext"] = bext
        if self.ixml is not None:
            data["ixml"] = {"fields": self.ixml.fields, "problem": self.ixml.problem}
        if self.c2pa is not None:
            c2pa = dataclasses.asdict(self.c2pa)
            c2pa.pop("extra", None)
            data["c2pa"] = c2pa
        if self.midi is not None:
            data["midi"] = {"texts": list(self.midi.texts), "copyrights": list(self.midi.copyrights),
                            "problem": self.midi.problem}  # fmt: skip
        data["chunk_sizes"] = self.chunk_sizes
        data["signature_holds"] = self.signature_holds
        return data


def inspect_file(path: Path) -> FileProvenance:
    """Read what ``path`` (a WAV or a MIDI file) says about where it came from; :class:`BadInputError` if it is
    neither or cannot be read."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BadInputError(f"{path} is {size} bytes; Segue reads provenance from files up to 2 GiB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInputError(f"{path} is a folder; give a WAV or MIDI file") from None
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {e.strerror or e}") from e
    if data[:4] == b"MThd":
        midi = read_midi_provenance(data, str(path))
        return FileProvenance(path, "midi", midi.record, midi=midi)
    if data[:4] in (b"RIFF", b"RF64", b"BW64"):
        return _inspect_wav(path, data)
    raise BadInputError(f"{path} is neither a WAV nor a MIDI file; give one that Segue wrote")


def _inspect_wav(path: Path, data: bytes) -> FileProvenance:
    chunks = parse_chunks(data, str(path))
    sizes = {c.id.decode("latin-1"): c.size for c in chunks}
    raw_bext = chunk_bytes(data, BEXT_ID, chunks)
    bext = None
    if raw_bext is not None:
        try:
            bext = unpack_bext(raw_bext)
        except BadInputError:
            bext = None
    raw_ixml = chunk_bytes(data, IXML_ID, chunks)
    ixml = None
    if raw_ixml is not None:
        try:
            ixml = parse_ixml(raw_ixml)
        except BadInputError as e:
            ixml = IxmlInfo({}, None, str(e))
    c2pa = check_wav(data, any(c.id == C2PA_CHUNK_ID for c in chunks))
    record = ixml.record if ixml is not None else None
    return FileProvenance(path, "wav", record, bext, ixml, c2pa, None, sizes)


def format_report(found: FileProvenance) -> str:
    """The report ``segue provenance`` prints: people first, then the fields."""
    lines = [f"{found.path}"]
    record = found.record
    if record is None:
        lines.append("  no Segue provenance record")
    else:
        lines.append(f"  generated: yes ({record.digital_source_type}) by Segue {record.segue_version}")
        lines.append(f"  model: {record.model} {record.model_version or '(version unknown)'}")
        lines.append(f"  licence: {record.licence}")
        lines.append(f"  job: {record.job} {record.variant} ({record.role}), mode {record.mode}, {record.engine}")
        lines.append(f"  seed: {record.seed}")
        region = record.region_name if record.region_name else "(name left out)"
        lines.append(f"  region: {region} sha256 {', '.join(record.region_sha256) or 'unknown'}")
        if record.params:
            lines.append("  params: " + ", ".join(f"{k}={v}" for k, v in sorted(record.params.items())))
    if found.kind == "wav":
        lines += _wav_lines(found)
    elif found.midi is not None:
        lines.append("  MIDI text: " + (" | ".join(found.midi.texts) or "none"))
        lines.append("  MIDI copyright: " + (" | ".join(found.midi.copyrights) or "none"))
        lines.append("  MIDI sequencer-specific record: " + ("yes" if found.record else "none"))
        if found.midi.problem:
            lines.append(f"  problem: {found.midi.problem}")
        lines.append("  C2PA: not available for MIDI files (the standard has no MIDI binding)")
    return "\n".join(lines)


def _wav_lines(found: FileProvenance) -> list[str]:
    lines = []
    bext = found.bext
    if bext is None:
        lines.append("  bext: none")
    else:
        lines.append(f"  bext description: {bext.description}")
        lines.append(f"  bext originator: {bext.originator}; reference {bext.originator_reference}; "
                     f"{bext.origination_date} {bext.origination_time}")  # fmt: skip
        lines.append(f"  bext time reference: {bext.time_reference} samples")
        lines.append(f"  bext coding history: {bext.coding_history.strip()}")
    ixml = found.ixml
    if ixml is None:
        lines.append("  iXML: none")
    else:
        lines.append(f"  iXML: {', '.join(f'{k}={v!r}' for k, v in ixml.fields.items() if k != 'USER')}")
        if ixml.problem:
            lines.append(f"  iXML problem: {ixml.problem}")
    status = found.c2pa
    if status is None or not status.present:
        lines.append("  C2PA: none")
    elif not status.checked:
        lines.append(f"  C2PA: present, not checked: {status.problem}")
    else:
        trust = "trusted issuer" if status.trusted else "issuer not on a trust list (untrusted)"
        verdict = "signature holds" if status.signature_holds else "SIGNATURE DOES NOT HOLD"
        lines.append(f"  C2PA: {verdict} ({status.state}); signer {status.signer!r} of {status.issuer!r}, {trust}")
        lines.append(f"  C2PA digital source type: {status.digital_source_type or 'none'}")
        for ingredient in status.ingredients:
            lines.append(f"  C2PA ingredient: {ingredient}")
        if status.failures:
            lines.append(f"  C2PA failures: {', '.join(status.failures)}")
        if status.problem:
            lines.append(f"  C2PA problem: {status.problem}")
    sizes = found.chunk_sizes
    lines.append("  chunks: " + ", ".join(f"{k.strip()} {v} B" for k, v in sizes.items()))
    return lines
