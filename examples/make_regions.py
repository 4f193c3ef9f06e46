"""Compose the example MIDI regions in examples/regions/ by hand (mido only, no randomness).

    .venv/bin/python examples/make_regions.py

Every region is a type-1 file at 480 ticks per quarter note: a conductor track (tempo and time signature at
tick 0) and one track per part, each on its own channel with a program change at tick 0. Every track's
end-of-track sits exactly on the region's last bar line. Running the script again rewrites the files byte
for byte.

Notes are written as (start, length, pitch, velocity) with start and length in quarter notes from the start
of the region.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mido

TPQ = 480
OUT_DIR = Path(__file__).resolve().parent / "regions"

Note = tuple[float, float, int, int]  # start (quarters), length (quarters), MIDI pitch, velocity


def ticks(quarters: float) -> int:
    value = quarters * TPQ
    assert value == int(value), f"{quarters} quarter notes is off the tick grid"
    return int(value)


def part_track(name: str, channel: int, program: int, notes: list[Note], end: float) -> mido.MidiTrack:
    """One part: its name, a program change, its notes, and end-of-track at ``end`` quarter notes."""
    events: list[tuple[int, int, mido.Message]] = []  # (tick, order, message): note-offs before note-ons
    for start, length, pitch, velocity in notes:
        on, off = ticks(start), ticks(start + length)
        assert off <= ticks(end), f"{name}: a note ends after the region"
        events.append((on, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        events.append((off, 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1], e[2].note))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    track.append(mido.Message("program_change", channel=channel, program=program, time=0))
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=ticks(end) - now))
    return track


Part = tuple[str, int, int, list[Note]]  # name, channel, program, notes


def write_region(filename: str, bpm: float, meter: tuple[int, int], parts: list[Part], bars: int = 4) -> Path:
    numerator, denominator = meter
    end = bars * numerator * 4 / denominator  # the region's last bar line, in quarter notes
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("track_name", name=filename.removesuffix(".mid"), time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    conductor.append(
        mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator, clocks_per_click=24, time=0)
    )
    conductor.append(mido.MetaMessage("end_of_track", time=ticks(end)))
    mid = mido.MidiFile(type=1, ticks_per_beat=TPQ)
    mid.tracks.append(conductor)
    for name, channel, program, notes in parts:
        mid.tracks.append(part_track(name, channel, program, notes, end))
    path = OUT_DIR / filename
    mid.save(path)
    return path


def bars_of(per_bar: list[list[Note]], quarters_per_bar: float) -> list[Note]:
    """Join bars written from 0 each into one part."""
    return [
        (start + i * quarters_per_bar, length, pitch, velocity)
        for i, bar in enumerate(per_bar)
        for start, length, pitch, velocity in bar
    ]


def chord(start: float, length: float, pitches: tuple[int, ...], velocity: int) -> list[Note]:
    return [(start, length, p, velocity) for p in pitches]


# --- pop_100bpm_4-4: G major, G - D - Em - C --------------------------------------------------------------


def pop() -> list[Part]:
    # electric piano: the same syncopated 16th-note comp in every bar
    comp = [(0.0, 0.75, 84), (0.75, 0.75, 70), (2.0, 0.5, 80), (2.5, 1.0, 72), (3.5, 0.5, 66)]
    ep_voicings = [(55, 59, 62), (54, 57, 62), (55, 59, 64), (55, 60, 64)]  # G, D/F#-A-D, Em, C/G
    ep = bars_of([[n for s, d, v in comp for n in chord(s, d, vo, v)] for vo in ep_voicings], 4)

    # finger bass: root, 16th pickup, octave, root, fifth, and a step into the next chord
    groove = [(0, 0.75, 100), (0.75, 0.25, 80), (1.5, 0.5, 88), (2, 1, 96), (3, 0.5, 86), (3.5, 0.5, 84)]
    lines = [
        (43, 43, 55, 43, 50, 40),  # G ... E leading down to D
        (38, 38, 50, 38, 45, 42),  # D ... F# leading down to E
        (40, 40, 52, 40, 47, 38),  # Em ... D leading down to C
        (36, 36, 48, 36, 43, 45),  # C ... A leading back to G
    ]
    bass = bars_of([[(s, d, p, v) for (s, d, v), p in zip(groove, line, strict=True)] for line in lines], 4)

    # square lead: a four-bar phrase that comes to rest on D, the fifth, ready to loop back to G
    lead = bars_of(
        [
            [
                (0.5, 0.5, 71, 90),
                (1, 0.75, 74, 100),
                (1.75, 0.25, 71, 84),
                (2, 0.5, 69, 92),
                (2.5, 1, 67, 96),
                (3.5, 0.5, 69, 86),
            ],
            [
                (0, 1, 69, 98),
                (1, 0.5, 66, 88),
                (1.5, 0.5, 69, 90),
                (2, 0.75, 74, 100),
                (2.75, 0.25, 72, 82),
                (3, 1, 69, 92),
            ],
            [
                (0, 0.75, 71, 98),
                (0.75, 0.25, 71, 84),
                (1, 0.5, 76, 104),
                (1.5, 0.5, 74, 92),
                (2, 1, 71, 96),
                (3, 0.5, 67, 86),
                (3.5, 0.5, 69, 88),
            ],
            [(0, 1.5, 67, 96), (1.5, 0.5, 69, 86), (2, 0.5, 67, 90), (2.5, 0.5, 64, 84), (3, 1, 62, 92)],
        ],
        4,
    )

    # string pad: one sustained chord per bar, above the piano
    pad_voicings = [(59, 62, 67), (57, 62, 66), (59, 64, 67), (60, 64, 67)]
    pad = bars_of([chord(0, 4, vo, 56) for vo in pad_voicings], 4)

    return [
        ("Electric Piano", 0, 4, ep),
        ("Finger Bass", 1, 33, bass),
        ("Square Lead", 2, 80, lead),
        ("String Pad", 3, 48, pad),
    ]


# --- waltz_138bpm_3-4: F major, F - Bb - C7 - F ----------------------------------------------------------


def waltz() -> list[Part]:
    # piano left hand: oom (bass note) - pah - pah (chord), the last bar a held final chord
    left = bars_of(
        [
            [(0, 1, 41, 92), *chord(1, 0.5, (57, 60, 65), 66), *chord(2, 0.5, (57, 60, 65), 62)],  # F
            [(0, 1, 46, 92), *chord(1, 0.5, (58, 62, 65), 66), *chord(2, 0.5, (58, 62, 65), 62)],  # Bb
            [(0, 1, 48, 92), *chord(1, 0.5, (58, 60, 64), 66), *chord(2, 0.5, (58, 60, 64), 62)],  # C7
            [(0, 2, 41, 90), *chord(0, 2, (57, 60, 65), 70)],  # F
        ],
        3,
    )

    # violin: rises through the F chord, peaks on G over C7, whose seventh (Bb) falls to A
    melody = bars_of(
        [
            [(0, 1, 69, 84), (1, 1, 72, 88), (2, 1, 77, 96)],
            [(0, 1.5, 77, 92), (1.5, 0.5, 74, 82), (2, 1, 70, 86)],
            [(0, 1, 79, 96), (1, 0.5, 76, 86), (1.5, 0.5, 72, 80), (2, 1, 70, 86)],
            [(0, 2, 69, 88)],
        ],
        3,
    )

    return [("Piano LH", 0, 0, left), ("Violin", 1, 40, melody)]


# --- compound_6-8_drums_96bpm: D minor, Dm - Bb - Gm - A, six eighths a bar ------------------------------


def compound() -> list[Part]:
    eighth = 0.5
    bar = 6 * eighth  # 3 quarter notes

    # nylon guitar: up-and-back arpeggio in eighths
    shapes = [
        (50, 57, 62, 65, 62, 57),  # Dm
        (46, 53, 58, 62, 58, 53),  # Bb
        (43, 50, 55, 58, 55, 50),  # Gm
        (45, 52, 57, 61, 57, 52),  # A
    ]
    guitar = bars_of(
        [[(i * eighth, eighth, p, 82 if i in (0, 3) else 68) for i, p in enumerate(s)] for s in shapes], bar
    )

    # acoustic bass: dotted quarter on the root, then the fifth
    roots_fifths = [(38, 45), (34, 41), (31, 38), (33, 40)]
    bass = bars_of([[(0, 1.5, r, 96), (1.5, 1.0, f, 84)] for r, f in roots_fifths], bar)

    # drums (channel 10): kick on 1, snare on 4, closed hat on every eighth; a 16th snare fill to end
    kick, snare, hat = 36, 38, 42
    groove = [(0, 0.25, kick, 104), (1.5, 0.25, snare, 96)]
    groove += [(i * eighth, 0.25, hat, 80 if i in (0, 3) else 60) for i in range(6)]
    fill = [
        (0, 0.25, kick, 104),
        (1.5, 0.25, snare, 96),
        (0, 0.25, hat, 80),
        (0.5, 0.25, hat, 60),
        (1, 0.25, hat, 60),
        (2, 0.25, snare, 70),
        (2.25, 0.25, snare, 78),
        (2.5, 0.25, snare, 86),
        (2.75, 0.25, snare, 96),
    ]
    drums = bars_of([groove, groove, groove, fill], bar)

    return [("Nylon Guitar", 0, 24, guitar), ("Acoustic Bass", 1, 32, bass), ("Drums", 9, 0, drums)]


# --- chorale_style_72bpm_4-4: C major, four voices, ending on a half cadence ------------------------------


def chorale() -> list[Part]:
    # one chord a beat: I IV V I | vi ii V vi | IV I6 ii I | IV I6/4 V (half note)
    #            soprano alto tenor bass
    chords = [
        (76, 67, 60, 48),
        (77, 69, 60, 41),
        (74, 67, 59, 43),
        (72, 64, 55, 48),
        (72, 64, 57, 45),
        (74, 65, 57, 50),
        (71, 62, 55, 43),
        (72, 60, 52, 45),
        (69, 60, 53, 41),
        (67, 60, 48, 40),
        (65, 57, 50, 38),
        (64, 60, 55, 36),
        (69, 65, 60, 41),
        (72, 60, 52, 43),
        (71, 62, 55, 43),
    ]
    lengths = [1.0] * 14 + [2.0]
    starts = [sum(lengths[:i]) for i in range(len(lengths))]

    def voice(index: int, velocity: int) -> list[Note]:
        return [(s, d, c[index], velocity) for s, d, c in zip(starts, lengths, chords, strict=True)]

    return [
        ("Soprano (Flute)", 0, 73, voice(0, 84)),
        ("Alto (Oboe)", 1, 68, voice(1, 72)),
        ("Tenor (Clarinet)", 2, 71, voice(2, 72)),
        ("Bass (Bassoon)", 3, 70, voice(3, 80)),
    ]


# --- melody_96bpm_4-4: a G major tune alone (what a producer hums or plays), for accompany --------------------


def melody() -> list[Part]:
    # G major, crotchets and quavers, a phrase of 4 bars ending on the tonic
    tune = [
        (0.0, 1.0, 67),
        (1.0, 0.5, 71),
        (1.5, 0.5, 72),
        (2.0, 1.0, 74),
        (3.0, 1.0, 71),
        (4.0, 1.0, 72),
        (5.0, 0.5, 71),
        (5.5, 0.5, 69),
        (6.0, 2.0, 67),
        (8.0, 1.0, 69),
        (9.0, 0.5, 71),
        (9.5, 0.5, 72),
        (10.0, 1.0, 74),
        (11.0, 1.0, 76),
        (12.0, 1.0, 74),
        (13.0, 1.0, 72),
        (14.0, 0.5, 69),
        (14.5, 0.5, 66),
        (15.0, 1.0, 67),
    ]
    notes = [(s, d, p, 88 if s % 4 == 0 else 76) for s, d, p in tune]
    return [("Melody (Flute)", 0, 73, notes)]


# file name: tempo (BPM), meter, the function that composes its parts; every region is 4 bars
REGIONS: dict[str, tuple[float, tuple[int, int], Callable[[], list[Part]]]] = {
    "pop_100bpm_4-4.mid": (100, (4, 4), pop),
    "waltz_138bpm_3-4.mid": (138, (3, 4), waltz),
    "compound_6-8_drums_96bpm.mid": (96, (6, 8), compound),
    "chorale_style_72bpm_4-4.mid": (72, (4, 4), chorale),
    "melody_96bpm_4-4.mid": (96, (4, 4), melody),
}


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for filename, (bpm, meter, compose) in REGIONS.items():
        print(write_region(filename, bpm, meter, compose()).relative_to(OUT_DIR.parent.parent))


if __name__ == "__main__":
    main()
