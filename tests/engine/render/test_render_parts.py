"""Part names: meaningful track names, else General MIDI names; file-safe and unique."""

from __future__ import annotations

import re

from symusic import Track

from engine.render.parts import GM_PROGRAM_NAMES, part_base_name, part_names, program_name, slug


def test_gm_table() -> None:
    assert len(GM_PROGRAM_NAMES) == 128
    assert len(set(GM_PROGRAM_NAMES)) == 128
    assert program_name(0) == "acoustic_grand_piano"
    assert program_name(33) == "electric_bass_finger"
    assert program_name(0, is_drum=True) == "drums"
    assert program_name(300) == "program_300"


def test_names_from_tracks() -> None:
    tracks = [
        Track("Lead Vox!", 52, False),
        Track("", 0, False),
        Track("Track 3", 0, False),
        Track("", 0, True),
        Track("MIDI 01", 0, True),
        Track("Électrique / Bass", 33, False),
        Track("con", 1, False),
    ]
    names = part_names(tracks)
    assert names == [
        "lead_vox",
        "acoustic_grand_piano",
        "acoustic_grand_piano_2",
        "drums",
        "drums_2",
        "lectrique_bass",
        "con_part",
    ]
    assert all(re.fullmatch(r"[a-z0-9_-]+", n) for n in names)
    assert part_names(tracks) == names  # stable


def test_slug_is_bounded() -> None:
    assert slug("  Strings (legato)  ") == "strings_legato"
    assert len(slug("x" * 100)) == 40
    assert part_base_name("", 48, False) == "string_ensemble_1"
    assert part_base_name("!!!", 48, False) == "string_ensemble_1"
