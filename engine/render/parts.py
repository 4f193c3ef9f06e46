"""Stable, file-safe, unique names for the parts (tracks) of a score: the names of the stem files.

A part is named after its track when the track name means something ("Lead Vox" -> ``lead_vox``), else after
its General MIDI instrument (``acoustic_grand_piano``, ``drums``); repeats get ``_2``, ``_3``. The rules match
:mod:`engine.symbolic.naming`, so a part keeps its name between the MIDI file and its stem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

MAX_NAME_CHARS = 40

# General MIDI Level 1 program names, slugged (program 0..127).
GM_PROGRAM_NAMES: tuple[str, ...] = (
    "acoustic_grand_piano", "bright_acoustic_piano", "electric_grand_piano", "honky_tonk_piano",
    "electric_piano_1", "electric_piano_2", "harpsichord", "clavi",
    "celesta", "glockenspiel", "music_box", "vibraphone", "marimba", "xylophone", "tubular_bells", "dulcimer",
    "drawbar_organ", "percussive_organ", "rock_organ", "church_organ", "reed_organ", "accordion", "harmonica",
    "tango_accordion",
    "acoustic_guitar_nylon", "acoustic_guitar_steel", "electric_guitar_jazz", "electric_guitar_clean",
    "electric_guitar_muted", "overdriven_guitar", "distortion_guitar", "guitar_harmonics",
    "acoustic_bass", "electric_bass_finger", "electric_bass_pick", "fretless_bass", "slap_bass_1", "slap_bass_2",
    "synth_bass_1", "synth_bass_2",
    "violin", "viola", "cello", "contrabass", "tremolo_strings", "pizzicato_strings", "orchestral_harp", "timpani",
    "string_ensemble_1", "string_ensemble_2", "synth_strings_1", "synth_strings_2", "choir_aahs", "voice_oohs",
    "synth_voice", "orchestra_hit",
    "trumpet", "trombone", "tuba", "muted_trumpet", "french_horn", "brass_section", "synth_brass_1",
    "synth_brass_2",
    "soprano_sax", "alto_sax", "tenor_sax", "baritone_sax", "oboe", "english_horn", "bassoon", "clarinet",
    "piccolo", "flute", "recorder", "pan_flute", "blown_bottle", "shakuhachi", "whistle", "ocarina",
    "lead_1_square", "lead_2_sawtooth", "lead_3_calliope", "lead_4_chiff", "lead_5_charang", "lead_6_voice",
    "lead_7_fifths", "lead_8_bass_lead",
    "pad_1_new_age", "pad_2_warm", "pad_3_polysynth", "pad_4_choir", "pad_5_bowed", "pad_6_metallic",
    "pad_7_halo", "pad_8_sweep",
    "fx_1_rain", "fx_2_soundtrack", "fx_3_crystal", "fx_4_atmosphere", "fx_5_brightness", "fx_6_goblins",
    "fx_7_echoes", "fx_8_sci_fi",
    "sitar", "banjo", "shamisen", "koto", "kalimba", "bag_pipe", "fiddle", "shanai",
    "tinkle_bell", "agogo", "steel_drums", "woodblock", "taiko_drum", "melodic_tom", "synth_drum",
    "reverse_cymbal",
    "guitar_fret_noise", "breath_noise", "seashore", "bird_tweet", "telephone_ring", "helicopter", "applause",
    "gunshot",
)  # fmt: skip

DRUMS_NAME = "drums"

# Names that mean nothing: "", "Track 3", "MIDI 01", "untitled", "Instrument 2", "Part 1", "7".
_GENERIC = re.compile(r"^(track|untitled|midi|instrument|part)?[\s_-]*\d*$", re.IGNORECASE)
# Names Windows refuses as file names.
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))})


class PartLike(Protocol):
    """What naming needs from a track (a ``symusic`` track has these)."""

    @property
    def name(self) -> str: ...
    @property
    def program(self) -> int: ...
    @property
    def is_drum(self) -> bool: ...


def slug(text: str) -> str:
    """``"Electric Bass (finger)"`` -> ``"electric_bass_finger"``: lowercase a-z, 0-9 and ``_`` only."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:MAX_NAME_CHARS].strip("_")


def program_name(program: int, is_drum: bool = False) -> str:
    """General MIDI name of ``program`` (0..127), or ``"drums"``; out-of-range programs get ``program_N``."""
    if is_drum:
        return DRUMS_NAME
    if 0 <= program < len(GM_PROGRAM_NAMES):
        return GM_PROGRAM_NAMES[program]
    return f"program_{program}"


def part_base_name(name: str, program: int, is_drum: bool) -> str:
    """The track's name when it means something, else the GM instrument; before de-duplication."""
    base = "" if _GENERIC.match(name.strip()) else slug(name)
    base = base or program_name(program, is_drum)
    return f"{base}_part" if base in _RESERVED else base


def part_names(parts: Iterable[PartLike]) -> list[str]:
    """One unique, file-safe name per part, in order; repeats become ``name_2``, ``name_3``, ..."""
    names: list[str] = []
    used: set[str] = set()
    for part in parts:
        base = part_base_name(str(part.name), int(part.program), bool(part.is_drum))
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        names.append(name)
    return names
