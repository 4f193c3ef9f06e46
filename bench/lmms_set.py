"""A held-out set of producers' songs for bench/bench_midi_quality.py (``--set lmms``): LMMS demo projects.

    python bench/lmms_set.py            # rebuild bench/data/midi_quality/lmms/ (needs Debian's lmms-common)

The pop and electronic demo songs that Debian's ``lmms-common`` installs under /usr/share/lmms/projects/ are far
from the shipped model's training corpus (music21: folk tunes, chorales, classical). Each project is read as LMMS
writes it (``.mmpz``: a 4-byte big-endian length, then zlib-compressed XML; ``.mmp``: the XML), converted to MIDI
(:func:`read_project`), and cut to a region of 4 bars where at least two pitched parts play plus the composer's
next 8 bars (:func:`choose_region`). Only the parts that play in the region are kept: the reference is what the
region's parts play next. The set is an evaluation set: nothing is tuned on it.

Conversion: LMMS counts 192 ticks to a 4/4 bar (48 a quarter); they become 480 a quarter. Instrument tracks
(type 0) are parts; a pitched note sounds at ``key - basenote + 69 + masterpitch`` in MIDI (LMMS plays its key 57,
A4, at 440 Hz for the default base note 57). Beat/bassline tracks (type 1) hold their own instrument tracks, whose
pattern number ``pos // 192`` belongs to the n-th beat/bassline track; each ``bbtco`` of that track plays the
pattern, looped, from its ``pos`` for its ``len``. Step notes (negative length) last a sixteenth. A track whose
sample is a drum (kick, snare, hat, clap, rim, tom, crash, ride) goes to one channel-10 drum part with the GM note
for that drum; other sample tracks that are clearly percussion or effects are dropped (listed in the manifest).
Muted tracks and patterns are left out. LMMS's arpeggiator and chord stacking are not expanded: a song whose
region has a part that uses them is skipped. A pitched part gets a GM program from its track name where the name says
it (bass, strings, pad, piano, organ, ...), else one from its synthesiser and register; a program another part of
the piece has already taken moves to the next free one of its GM family, so every track stays a part of its own.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from _common import ROOT
from symusic.core import NoteTick, ScoreTick, TempoTick, TimeSignatureTick, TrackTick

from engine.atomic import write_json, write_text, write_with

SET_DIR = ROOT / "bench" / "data" / "midi_quality" / "lmms"
PROJECTS = Path("/usr/share/lmms/projects")
LMMS_TICKS_PER_BAR = 192  # of 4/4; 48 a quarter
LMMS_TICKS_PER_QUARTER = 48
TICKS_PER_QUARTER = 480
REGION_BARS = 4
REFERENCE_BARS = 8
MIN_PITCHED_PARTS = 2

# (name pattern, GM drum note): the first match wins, so "hihat_opened" is open before "hihat" is closed
DRUMS = (
    (r"kick|bassdrum|bass_drum|(?<![a-z])bd(?![a-z])|kik", 36),
    (r"rim", 37),
    (r"snare|snr|(?<![a-z])sd(?![a-z])", 38),
    (r"clap", 39),
    (r"(hi.?h.?at|(?<![a-z])hh(?![a-z])|hat).*open|open.*(hi.?h.?at|(?<![a-z])hh(?![a-z])|hat)|hat_o", 46),
    (r"hi.?h.?at|(?<![a-z])hh(?![a-z])|hat", 42),
    (r"crash", 49),
    (r"ride", 51),
    (r"tom.*(low|_l\b)", 45),
    (r"tom.*(hi|_h\b)", 50),
    (r"tom", 47),
    (r"wood", 76),
)
# (track-name pattern, GM program) for pitched parts, first match wins
PROGRAMS = (
    (r"slap", 36),
    (r"sub|bass", 38),
    (r"e-?piano|rhodes", 4),
    (r"piano", 0),
    (r"organ", 16),
    (r"guitar|axe", 27),
    (r"string", 48),
    (r"choir", 52),
    (r"trumpet|brass|brazz", 61),
    (r"reed", 68),
    (r"pipe|flute", 73),
    (r"pad", 89),
    (r"pluck", 84),
    (r"arp|bell", 81),
    (r"lead", 81),
)
# Licences as /usr/share/doc/lmms-common/copyright gives them (path pattern, holders, licence)
LICENCES = (
    (r"demos/Saber-", "Saber Rastikerdar", "BSD-2-clause"),
    (r"demos/Alf42red-", "Armin Heller (Alf42red)", "CC-BY-SA-3.0"),
    (r"demos/CapDan/CapDan-TwilightArea-", "Der Daniel (CapDan), after Armin Heller (Alf42red)", "CC-BY-SA-3.0"),
    (r"demos/Jousboxx-", "Jousboxx", "CC-BY-SA-4.0"),
    (r"/Skiessi/", "Skiessi", "CC-BY-SA-4.0"),
    (
        r"demos/CapDan/|demos/EsoXLB-|demos/Impulslogik-|demos/Momo64-|demos/Oglsdl-|demos/Settel-|"
        r"demos/Socceroos-|demos/TameAnderson-|demos/Thomasso-|shorties/Crunk|shorties/Greshz-|shorties/Surrender-",
        None,
        "Artistic-2.0",
    ),
)
# The Artistic-2.0 stanza's holders by the project file's prefix
HOLDERS = {
    "CapDan": "Der Daniel (CapDan)",
    "EsoXLB": "E.SoX (lowbudget)",
    "Momo64": "mauro (momo64)",
    "Oglsdl": "Ümit (oglsdl)",
    "Settel": "Achim Settelmeier",
    "Socceroos": "Sam (socceroos)",
    "TameAnderson": "tame anderson",
    "Surrender": "Peter Asplund (Surrender)",
}
GPL_NOTE = "GPL-2+ (the lmms-common default stanza, Files: *; see upstream issue LMMS/lmms#2752)"


def licence_for(rel: str) -> tuple[str, str]:
    """(author, licence) of a project path relative to /usr/share/lmms/projects, from the package's copyright file;
    the author falls back to the name before the dash in the file name."""
    stem = Path(rel).stem
    prefix = stem.split("-")[0]
    fallback = HOLDERS.get(prefix, prefix) if "-" in stem else "not named in the copyright file"
    for pattern, author, licence in LICENCES:
        if re.search(pattern, rel):
            return author or fallback, licence
    return fallback, GPL_NOTE


def read_xml(path: Path) -> ElementTree.Element:
    """The project's XML root; ``.mmpz`` is a big-endian length then zlib data (the length is checked)."""
    data = path.read_bytes()
    if path.suffix == ".mmpz":
        (length,) = struct.unpack(">I", data[:4])
        data = zlib.decompress(data[4:])
        if len(data) != length:
            raise ValueError(f"{path}: header says {length} bytes, zlib gave {len(data)}; not an LMMS .mmpz")
    return ElementTree.fromstring(data)


@dataclass
class Part:
    name: str
    plugin: str
    drum: int | None  # GM drum note, or None for a pitched part
    notes: list[tuple[int, int, int, int]] = field(default_factory=list)  # (start, duration, pitch, velocity) LMMS
    expands: str = ""  # "arpeggiator" / "chord stacking" where LMMS makes more notes than the pattern holds


def _sample_name(track: ElementTree.Element) -> str:
    afp = track.find("instrumenttrack/instrument/audiofileprocessor")
    src = afp.get("src", "") if afp is not None else ""
    return f"{track.get('name', '')} {Path(src).stem}".lower()


def _classify(track: ElementTree.Element) -> tuple[str, int | None]:
    """("pitched" | "drum" | "dropped", GM drum note)."""
    plugin = track.find("instrumenttrack/instrument")
    name = plugin.get("name", "") if plugin is not None else ""
    if name not in ("audiofileprocessor", "kicker"):
        return "pitched", None
    sample = _sample_name(track)
    for pattern, note in DRUMS:
        if re.search(pattern, sample):
            return "drum", note
    afp = track.find("instrumenttrack/instrument/audiofileprocessor")
    src = afp.get("src", "") if afp is not None else ""
    if name == "kicker" or src.startswith(("drums/", "effects/", "misc/", "latin/", "beats/")) or src.endswith(".ds"):
        return "dropped", None
    return "pitched", None


def _velocity(note: ElementTree.Element) -> int:
    return max(1, min(127, round(float(note.get("vol", "100")))))  # LMMS 0-200, 100 the default


def _pattern_notes(pattern: ElementTree.Element) -> list[tuple[int, int, int, int]]:
    out = []
    for note in pattern.findall("note"):
        length = int(float(note.get("len", "0")))
        out.append((int(float(note.get("pos", "0"))), length if length > 0 else 12, int(note.get("key", "57")),
                    _velocity(note)))  # fmt: skip
    return out


def _pitch(track: ElementTree.Element, key: int, master: int) -> int:
    base = int(float(track.find("instrumenttrack").get("basenote", "57")))  # type: ignore[union-attr]
    return key - base + 69 + master


def _expands(track: ElementTree.Element) -> str:
    """What LMMS adds to the pattern's notes when it plays them (not converted): its arpeggiator, chord stacking."""
    arp = track.find("instrumenttrack/arpeggiator")
    chord = track.find("instrumenttrack/chordcreator")
    found = [label for node, key, label in ((arp, "arp-enabled", "arpeggiator"), (chord, "chord-enabled",
             "chord stacking")) if node is not None and node.get(key) == "1"]  # fmt: skip
    return " and ".join(found)


def read_project(path: Path) -> tuple[dict[str, Any], list[Part], list[str]]:
    """The project's head (bpm, meter) and its parts with notes on the song's timeline (LMMS ticks), plus a
    note of every track left out and why."""
    root = read_xml(path)
    head = root.find("head")
    if head is None:
        raise ValueError(f"{path}: no <head>; not an LMMS project")
    master = int(float(head.get("masterpitch", "0")))
    info = {"bpm": float(head.get("bpm", "140")), "meter": (int(head.get("timesig_numerator", "4")),
            int(head.get("timesig_denominator", "4")))}  # fmt: skip
    song = root.findall("song/trackcontainer/track")
    parts: list[Part] = []
    dropped: list[str] = []
    bb_tracks = [t for t in song if t.get("type") == "1"]

    def add(track: ElementTree.Element, placed: list[tuple[int, int, int, int]]) -> None:
        kind, drum = _classify(track)
        name = track.get("name", "")
        if track.get("muted") == "1":
            dropped.append(f"{name}: muted")
            return
        if not placed:
            return
        if kind == "dropped":
            dropped.append(
                f"{name} ({_sample_name(track).split()[-1]}): a sample that is neither a GM drum nor pitched"
            )
            return
        plugin = track.find("instrumenttrack/instrument").get("name", "")  # type: ignore[union-attr]
        part = Part(name, plugin, drum, expands=_expands(track))
        for start, duration, key, velocity in placed:
            pitch = drum if drum is not None else _pitch(track, key, master)
            if 0 <= pitch <= 127:
                part.notes.append((start, duration, pitch, velocity))
        parts.append(part)

    for track in song:
        if track.get("type") == "0":
            placed = []
            for pattern in track.findall("pattern"):
                if pattern.get("muted") == "1":
                    continue
                pos = int(pattern.get("pos", "0"))
                placed += [(pos + s, d, k, v) for s, d, k, v in _pattern_notes(pattern)]
            add(track, placed)
    for index, bb in enumerate(bb_tracks):
        if bb.get("muted") == "1":
            continue
        spans = [(int(t.get("pos", "0")), int(t.get("len", "0"))) for t in bb.findall("bbtco") if t.get("muted") != "1"]
        for track in bb.findall("bbtrack/trackcontainer/track"):
            placed = []
            for pattern in track.findall("pattern"):
                if int(pattern.get("pos", "0")) // LMMS_TICKS_PER_BAR != index or pattern.get("muted") == "1":
                    continue
                loop = max(1, int(pattern.get("steps", "16")) // 16) * LMMS_TICKS_PER_BAR
                notes = _pattern_notes(pattern)
                for pos, length in spans:
                    for offset in range(0, length, loop):
                        placed += [(pos + offset + s, min(d, length - offset - s), k, v)
                                   for s, d, k, v in notes if offset + s < length]  # fmt: skip
            add(track, placed)
    return info, parts, dropped


def _bars_with_notes(part: Part) -> set[int]:
    return {start // LMMS_TICKS_PER_BAR for start, *_ in part.notes}


def choose_region(parts: list[Part]) -> int | None:
    """The first bar, on a 4-bar phrase boundary, that starts 4 bars in which at least two pitched parts play and
    pitched notes sound in every bar, followed by 8 bars in which the region's pitched parts play in at least 6."""
    return first_phrase([_bars_with_notes(p) for p in parts if p.drum is None])


def first_phrase(pitched: list[set[int]], usable: Callable[[int], bool] = lambda start: True) -> int | None:
    """:func:`choose_region`'s rule on the bars (0-based) in which each pitched part has a note onset; a start
    ``usable`` refuses is passed over (bench/openmsx_set.py: a meter change inside the 12 bars)."""
    if not any(pitched):
        return None
    last = max(max(b) for b in pitched if b)
    for start in range(0, last - REGION_BARS - REFERENCE_BARS + 2, 4):
        if not usable(start):
            continue
        region = range(start, start + REGION_BARS)
        playing = [b for b in pitched if any(x in b for x in region)]
        if len(playing) < MIN_PITCHED_PARTS or not all(any(x in b for b in playing) for x in region):
            continue
        later = range(start + REGION_BARS, start + REGION_BARS + REFERENCE_BARS)
        if sum(any(x in b for b in playing) for x in later) >= 6:
            return start
    return None


def guess_program(part: Part) -> int:
    name = part.name.lower()
    for pattern, program in PROGRAMS:
        if re.search(pattern, name):
            return program
    pitches = [p for _, _, p, _ in part.notes]
    if pitches and sum(pitches) / len(pitches) < 48:
        return 38  # synth bass
    return {"sid": 80, "papu": 80, "bitinvader": 80, "lb302": 38, "organic": 16}.get(part.plugin, 81)


def distinct_program(program: int, used: set[int]) -> int:
    """``program``, or the next free one of its GM family of 8, so that every track stays a part of its own (the
    engine reads tracks that share a program as one part); added to ``used``."""
    family = program - program % 8
    for step in range(8):
        candidate = family + (program - family + step) % 8
        if candidate not in used:
            used.add(candidate)
            return candidate
    used.add(program)
    return program


def to_score(info: dict[str, Any], parts: list[Part], start_bar: int) -> tuple[ScoreTick, list[dict[str, Any]]]:
    """The region and its reference (4 + 8 bars from ``start_bar``) as a MIDI score: the parts that play in the
    region, pitched parts first (by mean pitch, highest first), the drums merged into one channel-10 part."""
    scale = TICKS_PER_QUARTER // LMMS_TICKS_PER_QUARTER
    begin = start_bar * LMMS_TICKS_PER_BAR
    end = begin + (REGION_BARS + REFERENCE_BARS) * LMMS_TICKS_PER_BAR
    region_end = begin + REGION_BARS * LMMS_TICKS_PER_BAR

    def cut(part: Part) -> list[tuple[int, int, int, int]]:
        return [(s - begin, min(d, end - s), p, v) for s, d, p, v in part.notes if begin <= s < end]

    playing = [p for p in parts if any(begin <= s < region_end for s, *_ in p.notes)]
    pitched = sorted((p for p in playing if p.drum is None), key=lambda p: -sum(n[2] for n in cut(p)) / len(cut(p)))
    drums = [p for p in playing if p.drum is not None]
    score = ScoreTick(TICKS_PER_QUARTER)
    score.tempos.append(TempoTick(0, info["bpm"]))
    score.time_signatures.append(TimeSignatureTick(0, *info["meter"]))
    described = []
    used: set[int] = set()
    for part in pitched:
        program = distinct_program(guess_program(part), used)
        track = TrackTick(part.name or f"Part program {program}", program, False)
        for s, d, p, v in sorted(cut(part)):
            track.notes.append(NoteTick(s * scale, max(1, d) * scale, p, v))
        score.tracks.append(track)
        described.append({"track": part.name, "synth": part.plugin, "program": program})
    if drums:
        track = TrackTick("Drums", 0, True)
        for s, d, p, v in sorted(n for part in drums for n in cut(part)):
            track.notes.append(NoteTick(s * scale, max(1, d) * scale, p, v))
        score.tracks.append(track)
        described.append({"track": "Drums", "from": sorted({f"{p.name} -> {p.drum}" for p in drums})})
    return score, described


# Chosen by what converts cleanly (see the module's docstring and the README); each skip says why
SKIPPED = {
    "demos/Jousboxx-BuzzerBeater.mmpz": "every track is the 'kicker' drum synth, leads and chords too (46 tracks in "
    "left/right and hi/lo pairs): pitched and percussive parts cannot be told apart by name",
    "demos/Oglsdl-PpTrip.mmpz": "8/4 head meter",
    "demos/Skiessi/Skiessi-Onion.mmpz": "1/1 head meter",
}


def build(rel: str) -> tuple[ScoreTick, dict[str, Any]] | str:
    """One project as a set piece and its manifest entry, or the reason it was skipped."""
    if rel in SKIPPED:
        return SKIPPED[rel]
    info, parts, dropped = read_project(PROJECTS / rel)
    if info["meter"] != (4, 4):
        return f"{info['meter'][0]}/{info['meter'][1]} head meter"
    start = choose_region(parts)
    if start is None:
        return f"no 4 bars with {MIN_PITCHED_PARTS} pitched parts followed by 8 bars of them"
    begin, end = start * LMMS_TICKS_PER_BAR, (start + REGION_BARS) * LMMS_TICKS_PER_BAR
    expanded = [f"{p.name} ({p.expands})" for p in parts if p.expands and any(begin <= n[0] < end for n in p.notes)]
    if expanded:
        return f"LMMS expands region parts when it plays them (not converted): {', '.join(expanded)}"
    score, described = to_score(info, parts, start)
    author, licence = licence_for(rel)
    meta = {
        "source": f"/usr/share/lmms/projects/{rel} (Debian lmms-common)",
        "author": author,
        "licence": licence,
        "meter": "4/4",
        "tempo_bpm": info["bpm"],
        "start_bar": start + 1,
        "parts": described,
        "programs": [d["program"] for d in described if "program" in d],
        "dropped": dropped,
        "region_bars": REGION_BARS,
        "reference_bars": REFERENCE_BARS,
    }
    return score, meta


README_HEAD = """# Producers' songs: LMMS demo projects (`bench/bench_midi_quality.py --set lmms`)

Built by `bench/lmms_set.py` from the demo projects that Debian's `lmms-common` installs under
/usr/share/lmms/projects/ (`python bench/lmms_set.py` rebuilds this folder; the files are deterministic). Each file
holds a 4-bar region (from the bar given below, 1-based in the song) where at least two pitched parts play and
the composer's next 8 bars, in 4/4 at the song's tempo, 480 ticks a quarter. Only the parts that play in the region
are kept; drum samples are merged into one channel-10 part (GM kick 36, rim 37, snare 38, clap 39, closed/open hat
42/46, crash 49, ride 51, toms 45/47/50, wood block 76); effect samples are dropped. GM programs are guesses from
the track name (else from the synthesiser and register; a program taken by another part moves to the next free one
of its family): the LMMS synth patches themselves are not carried. `manifest.json` has per piece the parts, their
programs, the drum mapping and what was dropped.

This is an **evaluation set**: no setting is chosen on it.

Licences and authors as /usr/share/doc/lmms-common/copyright gives them (Artistic-2.0, CC-BY-SA-3.0/4.0 and
BSD-2-clause stanzas name these projects; a project the file names nowhere falls under its `Files: *` stanza,
GPL-2+, about which the package notes the upstream issue LMMS/lmms#2752). The MIDI files here are excerpts of
these works converted to notes; they keep the authors' credit and licence.

| file | source (under /usr/share/lmms/projects) | author | licence | region from bar | BPM | parts |
|---|---|---|---|---|---|---|
"""


def readme(manifest: dict[str, Any]) -> str:
    rows = []
    for name, meta in manifest["pieces"].items():
        source = meta["source"].split(" ")[0].replace(f"{PROJECTS}/", "")
        parts = ", ".join(
            f"{p['track']} ({p['synth']}, GM {p['program']})" if "program" in p else p["track"] for p in meta["parts"]
        )
        rows.append(f"| {name} | `{source}` | {meta['author']} | {meta['licence']} | {meta['start_bar']} | "
                    f"{meta['tempo_bpm']:g} | {parts} |")  # fmt: skip
    skipped = "\n".join(f"- `{rel}`: {why}" for rel, why in manifest["skipped"].items())
    return README_HEAD + "\n".join(rows) + f"\n\nSkipped (and why):\n\n{skipped}\n"


def set_file_name(stem: str) -> str:
    """A set file's name: ``stem`` with every run of characters other than letters, digits, ``_.-`` made ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


def save_score(score: ScoreTick, path: Path) -> None:
    """Write one piece of a set as a MIDI file, atomically (a rebuilt set replaces the old file whole)."""
    write_with(path, partial(_dump, score))


def save_set(set_dir: Path, manifest: dict[str, Any], readme_text: str) -> None:
    """A set's ``manifest.json`` and ``README.md``, once its pieces are written."""
    write_json(set_dir / "manifest.json", manifest)
    write_text(set_dir / "README.md", readme_text)


def _dump(score: ScoreTick, path: Path) -> None:
    score.dump_midi(str(path))


def main() -> int:
    if not PROJECTS.is_dir():
        raise SystemExit(f"{PROJECTS} is missing: install Debian's lmms-common (apt-get install lmms-common)")
    SET_DIR.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "description": "producers' songs (LMMS demos) for bench/bench_midi_quality.py --set lmms, built by "
        "bench/lmms_set.py; an evaluation set, nothing is tuned on it",
        "pieces": {},
        "skipped": {},
    }
    for path in sorted(PROJECTS.glob("*/**/*.mmp*")):
        rel = path.relative_to(PROJECTS).as_posix()
        if rel.startswith("templates/"):
            continue
        built = build(rel)
        if isinstance(built, str):
            manifest["skipped"][rel] = built
            print(f"skip {rel}: {built}")  # noqa: T201
            continue
        score, meta = built
        name = set_file_name(Path(rel).stem) + ".mid"
        save_score(score, SET_DIR / name)
        manifest["pieces"][name] = meta
        print(f"{name}: bar {meta['start_bar']}, {len(meta['parts'])} parts, {meta['tempo_bpm']} BPM")  # noqa: T201
    save_set(SET_DIR, manifest, readme(manifest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
