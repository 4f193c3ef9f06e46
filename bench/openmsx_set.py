"""A third held-out set for bench/bench_midi_quality.py (``--set openmsx``): OpenMSX, OpenTTD's MIDI music.

    python bench/openmsx_set.py         # rebuild bench/data/midi_quality/openmsx/ (apt-get install openttd-openmsx)

Debian's ``openttd-openmsx`` installs the 31 General MIDI songs of OpenMSX (GPL-2.0) under
/usr/share/games/openttd/baseset/openmsx/: boogie-woogie, blues and swing band arrangements by Jim Redfarn, and
pop, rock and electronic game tunes by Tistou Blomberg, imuh3, mimm and others, with drums: far from the model's
training corpus (music21's folk tunes, chorales and classics) and unlike the LMMS demos (bench/lmms_set.py), which
are synthesiser loops. The files are read as their composers wrote them (GM programs, channel-10 drums); the
conversion only groups and cuts:

- Tracks that share a GM program become one part (the engine reads them so anyway: a part is a program); all
  drum tracks become one channel-10 part; the file's ticks become 480 a quarter.
- The region is chosen by :func:`lmms_set.first_phrase`, the LMMS set's rule: the first bar on a 4-bar boundary
  that starts 4 bars in which at least two pitched parts play and pitched notes sound in every bar, followed by 8
  bars in which those parts play in at least 6; here also with one meter over all 12 bars. The file keeps those
  12 bars (region + the composer's next 8) and only the parts that play in the region, pitched parts first
  (highest mean pitch first), with the meter and the tempo (and any tempo change) of those bars.
- At most :data:`PER_COMPOSER` pieces per composer, in file-name order, so that no one composer's style weighs on
  the figures (Jim Redfarn wrote 11 of the 31 songs, Tistou Blomberg 10).

An evaluation set: nothing is tuned on it. Authors and titles are those of the package's readme.txt and
openmsx.obm; the licence is /usr/share/doc/openttd-openmsx/copyright's (GPL-2.0, ``Files: *``).
"""

from __future__ import annotations

import configparser
import statistics
from pathlib import Path
from typing import Any

from _common import ROOT
from lmms_set import (
    MIN_PITCHED_PARTS,
    REFERENCE_BARS,
    REGION_BARS,
    first_phrase,
    save_score,
    save_set,
    set_file_name,
)
from symusic.core import NoteTick, ScoreTick, TempoTick, TimeSignatureTick, TrackTick

from engine.render.parts import program_name
from engine.symbolic.region import bar_lines

SET_DIR = ROOT / "bench" / "data" / "midi_quality" / "openmsx"
SOURCE = Path("/usr/share/games/openttd/baseset/openmsx")
PACKAGE = "openttd-openmsx"
LICENCE = "GPL-2.0 (/usr/share/doc/openttd-openmsx/copyright, Files: *)"
TICKS_PER_QUARTER = 480
PER_COMPOSER = 4
# Composers as the package's readme.txt credits them ("Musicians"); the 'Ezy Street' and 'Modern' groups are the
# ezy_* and new_* entries of openmsx.obm's [files] (Jim Redfarn's files also carry "redfarn" in their names)
MODERN = "Tistou Blomberg"
COMPOSERS = {
    "the_hobo_redfarn.mid": "Jim Redfarn",
    "ttsong_iv_imuh3.mid": "imuh3",
    "ttsong_iii_imuh3.mid": "imuh3",
    "train_filled_with_cash.mid": "imuh3",
    "flying_scotsman.mid": "imuh3",
    "chuggachugga.mid": "imuh3",
    "busy_schedule.mid": "mimm",
    "the_fast_route.mid": "mimm",
    "modern_motion.mid": "Kyle Timmerman (Mr.Ksoft)",
    "keep_on_rolling.mid": "Trolley Trev",
    "tttheme2.mid": "-lucas-",
}
NOTES = {  # the readme's "Song notes"
    "moo_redfarn.mid": "inspired by Cow Cow Boogie by Benny Carter, Gene de Paul and Don Raye",
    "careless_perc_redfarn.mid": "Careless Love is a traditional song in the public domain (arranged by Jim Redfarn)",
}


def catalogue(folder: Path = SOURCE) -> dict[str, dict[str, str]]:
    """File name -> title and composer, from openmsx.obm ([files], [names]) and the readme's credits."""
    obm = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    obm.optionxform = str  # type: ignore[assignment,method-assign]  # keep the file names' case
    obm.read(folder / "openmsx.obm", encoding="utf-8")
    groups = {value.strip(): key for key, value in obm["files"].items()}
    out = {}
    for path in sorted(folder.glob("*.mid")):
        name = path.name
        if name in COMPOSERS:
            composer = COMPOSERS[name]
        elif groups.get(name, "").startswith("ezy_") or "redfarn" in name:
            composer = "Jim Redfarn"
        elif groups.get(name, "").startswith("new_"):
            composer = MODERN
        else:
            raise ValueError(f"{path}: not credited in {PACKAGE}'s readme.txt; add its composer to COMPOSERS")
        title = obm["names"].get(name, path.stem).strip() if obm.has_section("names") else path.stem
        out[name] = {"title": title, "composer": composer}
    return out


def parts_of(score: ScoreTick) -> list[tuple[TrackTick, int]]:
    """One track per GM program (the tracks sharing it merged) and one for all the drums, each named by its GM
    program (the files' own track names are often a channel number or a staff), with how many tracks it merges."""
    merged: dict[int, tuple[TrackTick, list[int]]] = {}
    for track in score.tracks:
        if not len(track.notes):
            continue
        key = -1 if track.is_drum else int(track.program)
        if key not in merged:
            part = TrackTick(program_name(max(key, 0), key < 0), max(key, 0), key < 0)
            merged[key] = (part, [])
        merged[key][0].notes.extend(track.notes)
        merged[key][1].append(1)
    for part, _ in merged.values():
        part.notes.sort(key=lambda n: (n.time, n.pitch))
    return [(part, len(count)) for part, count in merged.values()]


def _meters(score: ScoreTick, lines: list[int]) -> list[tuple[int, int]]:
    """The meter of each bar that starts at ``lines[i]`` (4/4 where the file gives none)."""
    changes = sorted((int(t.time), int(t.numerator), int(t.denominator)) for t in score.time_signatures)
    out = []
    for line in lines:
        meter = (4, 4)
        for at, num, den in changes:
            if at <= line:
                meter = (num, den)
        out.append(meter)
    return out


def choose(score: ScoreTick, parts: list[TrackTick]) -> tuple[int, list[int], tuple[int, int]] | None:
    """(first bar, the 13 bar lines from it, the meter) of the region, or None where no 12 bars fit the rule."""
    lines = bar_lines(score, int(score.end()))
    meters = _meters(score, lines)

    def bar_of(tick: int) -> int:
        low, high = 0, len(lines) - 1
        while low < high:  # the last line at or before tick
            mid = (low + high + 1) // 2
            low, high = (mid, high) if lines[mid] <= tick else (low, mid - 1)
        return low

    pitched = [{bar_of(int(n.time)) for n in p.notes} for p in parts if not p.is_drum]
    bars = REGION_BARS + REFERENCE_BARS

    def usable(start: int) -> bool:
        return start + bars < len(lines) and len(set(meters[start : start + bars])) == 1

    start = first_phrase(pitched, usable)
    if start is None:
        return None
    return start, lines[start : start + bars + 1], meters[start]


def cut(score: ScoreTick, parts: list[TrackTick], lines: list[int], meter: tuple[int, int]) -> ScoreTick:
    """The 12 bars from ``lines[0]`` as a score of their own: the parts with an onset in the 4 region bars (pitched
    by mean pitch, highest first, then the drums), notes clipped at the end, tempo and meter from the first bar."""
    begin, region_end, end = lines[0], lines[REGION_BARS], lines[-1]
    out = ScoreTick(int(score.ticks_per_quarter))
    tempos = sorted(score.tempos, key=lambda t: t.time)
    qpm = next((float(t.qpm) for t in reversed(tempos) if t.time <= begin), 120.0)
    out.tempos.append(TempoTick(0, qpm))
    for t in tempos:
        if begin < t.time < end and abs(float(t.qpm) - float(out.tempos[-1].qpm)) > 1e-6:
            out.tempos.append(TempoTick(int(t.time) - begin, float(t.qpm)))
    out.time_signatures.append(TimeSignatureTick(0, *meter))
    kept = []
    for part in parts:
        if not any(begin <= n.time < region_end for n in part.notes):
            continue
        track = TrackTick(part.name, int(part.program), bool(part.is_drum))
        for n in part.notes:
            if begin <= n.time < end:
                track.notes.append(NoteTick(int(n.time) - begin, max(1, min(int(n.duration), end - int(n.time))),
                                            int(n.pitch), int(n.velocity)))  # fmt: skip
        kept.append(track)
    pitched = sorted((t for t in kept if not t.is_drum), key=lambda t: -statistics.mean(n.pitch for n in t.notes))
    for track in pitched + [t for t in kept if t.is_drum]:
        out.tracks.append(track)
    return out


def build(path: Path) -> tuple[ScoreTick, dict[str, Any]] | str:
    """One song as a set piece and its manifest entry (without the credits), or the reason it was skipped."""
    score = ScoreTick(path).resample(TICKS_PER_QUARTER, 1)
    merged = parts_of(score)
    parts = [part for part, _ in merged]
    tracks = {(part.program, part.is_drum): count for part, count in merged}
    chosen = choose(score, parts)
    if chosen is None:
        return f"no 4 bars with {MIN_PITCHED_PARTS} pitched parts followed by 8 bars of them in one meter"
    start, lines, meter = chosen
    piece = cut(score, parts, lines, meter)
    meta = {
        "source": f"{SOURCE}/{path.name} (Debian {PACKAGE})",
        "meter": f"{meter[0]}/{meter[1]}",
        "tempo_bpm": round(float(piece.tempos[0].qpm), 2),
        "tempo_changes": len(piece.tempos) - 1,
        "start_bar": start + 1,
        "parts": [
            {
                "part": t.name,
                "program": None if t.is_drum else int(t.program),
                "drums": bool(t.is_drum),
                "tracks": tracks[(t.program, t.is_drum)],
            }
            for t in piece.tracks
        ],  # fmt: skip
        "region_bars": REGION_BARS,
        "reference_bars": REFERENCE_BARS,
    }
    return piece, meta


README_HEAD = """# Game music: OpenMSX, OpenTTD's MIDI songs (`bench/bench_midi_quality.py --set openmsx`)

Built by `bench/openmsx_set.py` from the General MIDI files that Debian's `openttd-openmsx` (0.4.2) installs under
/usr/share/games/openttd/baseset/openmsx/ (`python bench/openmsx_set.py` rebuilds this folder; the files are
deterministic). Boogie-woogie, blues and swing arrangements, and pop, rock and electronic game tunes, with drums:
not the model's training domain (music21's folk tunes, chorales, classics) and not synthesiser loops like the
LMMS set. Each file holds a 4-bar region (from the bar given below, 1-based in the song) where at least two
pitched parts play, and the composer's next 8 bars, in one meter, 480 ticks a quarter. The notes, programs and
drums are the composers' own: tracks that share a GM program are merged into one part (the engine reads a part
per program; `tracks` in the manifest), all drum tracks into one channel-10 part, and only the parts that play in
the region are kept; parts are named by their GM program.
At most PER_COMPOSER pieces per composer, in file-name order. `manifest.json` has per piece its parts.

This is an **evaluation set**: no setting is chosen on it.

Licence: GPL-2.0, as /usr/share/doc/openttd-openmsx/copyright gives it for every file (`Files: *`,
"© 2010 various authors. See readme.txt for details"); composers as the package's readme.txt credits them. The
MIDI files here are excerpts of these works; they keep the composers' credit and licence.

Each file is cut from the file of the same name under /usr/share/games/openttd/baseset/openmsx/.

| file | title | composer | region from bar | meter | BPM | parts |
|---|---|---|---|---|---|---|
"""


def readme(manifest: dict[str, Any]) -> str:
    rows = []
    for name, meta in manifest["pieces"].items():
        parts = ", ".join("drums" if p["drums"] else f"{p['part']} (GM {p['program']})" for p in meta["parts"])
        rows.append(f"| {name} | {meta['title']} | {meta['composer']} | {meta['start_bar']} | "
                    f"{meta['meter']} | {meta['tempo_bpm']:g} | {parts} |")  # fmt: skip
    notes = "\n".join(f"- `{name}`: {note}" for name, note in NOTES.items() if name in manifest["pieces"])
    left = "\n".join(f"- `{name}` ({meta['composer']}): {meta['why']}" for name, meta in manifest["left_out"].items())
    head = README_HEAD.replace("PER_COMPOSER", str(PER_COMPOSER))
    return head + "\n".join(rows) + f"\n\nNotes from the readme:\n\n{notes}\n\nLeft out (and why):\n\n{left}\n"


def main() -> int:
    if not SOURCE.is_dir():
        raise SystemExit(f"{SOURCE} is missing: install Debian's {PACKAGE} (apt-get install {PACKAGE})")
    credits = catalogue()
    SET_DIR.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "description": "game music (OpenMSX, OpenTTD's GM songs) for bench/bench_midi_quality.py --set openmsx, "
        "built by bench/openmsx_set.py; an evaluation set, nothing is tuned on it",
        "licence": LICENCE,
        "pieces": {},
        "left_out": {},
    }
    taken: dict[str, int] = {}
    for name, credit in credits.items():
        composer = credit["composer"]
        if taken.get(composer, 0) >= PER_COMPOSER:
            why = f"{PER_COMPOSER} pieces by {composer} already (file-name order)"
            manifest["left_out"][name] = {**credit, "why": why}
            continue
        built = build(SOURCE / name)
        if isinstance(built, str):
            manifest["left_out"][name] = {**credit, "why": built}
            print(f"skip {name}: {built}")  # noqa: T201
            continue
        score, meta = built
        taken[composer] = taken.get(composer, 0) + 1
        out_name = set_file_name(name)
        save_score(score, SET_DIR / out_name)
        manifest["pieces"][out_name] = {**credit, "licence": LICENCE, **meta}
        print(f"{out_name}: bar {meta['start_bar']}, {meta['meter']}, {len(meta['parts'])} parts")  # noqa: T201
    save_set(SET_DIR, manifest, readme(manifest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
