"""Rendering scores to stems and a mix: exact length, names, headroom, silence/sound, drums, fade, tempo maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from symusic import Note, Score, Tempo, TimeSignature, Track
from symusic.core import ScoreTick

from engine.errors import BadInputError
from engine.render.soundfont import SoundFont, find_soundfont
from engine.render.synth import (
    FADE_SECONDS,
    mix_stems,
    num_samples_for,
    peak_dbfs,
    render,
    render_parts,
)

TPQ = 480


@pytest.fixture(scope="module")
def soundfont() -> SoundFont:
    return find_soundfont()


def make_score(
    parts: list[tuple[str, int, bool]],
    bars: int = 2,
    meter: tuple[int, int] = (4, 4),
    tempos: list[tuple[int, float]] | None = None,
    note_ticks: int = TPQ,
) -> ScoreTick:
    """One note per beat in every part (drums: kick/snare), for ``bars`` bars."""
    score = Score(TPQ)
    for tick, qpm in tempos or [(0, 120.0)]:
        score.tempos.append(Tempo(tick, qpm=qpm))
    score.time_signatures.append(TimeSignature(0, meter[0], meter[1]))
    beat_ticks = TPQ * 4 // meter[1]
    for name, program, is_drum in parts:
        track = Track(name, program, is_drum)
        for beat in range(bars * meter[0]):
            pitch = (36 if beat % 2 == 0 else 38) if is_drum else 60 + (beat % 4) * 2
            track.notes.append(Note(beat * beat_ticks, min(note_ticks, beat_ticks), pitch, 100))
        score.tracks.append(track)
    return score


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


FOUR_PARTS = [("Piano", 0, False), ("", 33, False), ("Track 3", 48, False), ("", 0, True)]


@pytest.mark.parametrize("sample_rate", [22050, 44100, 48000])
@pytest.mark.parametrize(
    ("meter", "qpm", "bars"),
    [((4, 4), 120.0, 2), ((3, 4), 97.0, 3), ((6, 8), 133.3, 2), ((7, 8), 71.0, 1)],
)
def test_exact_length(soundfont: SoundFont, sample_rate: int, meter: tuple[int, int], qpm: float, bars: int) -> None:
    score = make_score([("Piano", 0, False)], bars=bars, meter=meter, tempos=[(0, qpm)])
    length_seconds = bars * meter[0] * (4 / meter[1]) * 60.0 / qpm
    result = render(score, sample_rate, length_seconds, soundfont)
    expected = round(length_seconds * sample_rate)
    assert result.mix.shape == (2, expected)
    assert result.mix.dtype == np.float32
    assert all(stem.shape == (2, expected) and stem.dtype == np.float32 for stem in result.stems.values())
    assert result.num_samples == num_samples_for(length_seconds, sample_rate) == expected


def test_stems_names_mix_and_headroom(soundfont: SoundFont) -> None:
    score = make_score(FOUR_PARTS, bars=2)
    score.tracks.append(Track("empty", 5, False))  # no notes: no stem
    result = render(score, 44100, 4.0, soundfont)
    assert list(result.stems) == ["piano", "electric_bass_finger", "string_ensemble_1", "drums"]
    total = np.sum(list(result.stems.values()), axis=0)
    np.testing.assert_allclose(result.mix, total, atol=1e-5)
    assert float(np.max(np.abs(result.mix))) <= 10 ** (-1 / 20) + 1e-6
    for stem in result.stems.values():
        assert float(np.max(np.abs(stem))) <= 1.0
        assert rms(stem) > 1e-3
    assert result.peak_dbfs <= -1.0 + 1e-4
    assert result.soundfont == soundfont


def test_loud_mix_is_scaled_with_its_stems(soundfont: SoundFont) -> None:
    # Many loud parts on the same beats: the raw sum exceeds -1 dBFS.
    parts = [(f"brass {i}", 61, False) for i in range(8)] + [("kit", 0, True)]
    score = make_score(parts, bars=1)
    raw = render_parts(score, 44100, 2.0, soundfont, gain_db=6.0)
    raw_peak = float(np.max(np.abs(np.sum(list(raw.values()), axis=0))))
    assert raw_peak > 1.0
    mix, stems, gain = mix_stems(raw, round(2.0 * 44100))
    assert gain == pytest.approx(10 ** (-1 / 20) / max(raw_peak, *(float(np.max(np.abs(s))) for s in raw.values())))
    assert float(np.max(np.abs(mix))) <= 10 ** (-1 / 20) + 1e-6
    np.testing.assert_allclose(mix, np.sum(list(stems.values()), axis=0), atol=1e-5)
    for name in raw:
        np.testing.assert_allclose(stems[name], raw[name] * gain, atol=1e-6)


def test_quiet_mix_is_left_alone() -> None:
    stems = {"a": np.full((2, 100), 0.2, dtype=np.float32), "b": np.full((2, 100), 0.3, dtype=np.float32)}
    mix, out, gain = mix_stems(stems, 100)
    assert gain == 1.0
    np.testing.assert_allclose(mix, 0.5)
    assert out["a"] is stems["a"]
    assert peak_dbfs(np.zeros((2, 10), dtype=np.float32)) == -math.inf


def test_silence_where_no_notes_and_sound_where_notes(soundfont: SoundFont) -> None:
    sample_rate = 22050
    score = Score(TPQ)
    score.tempos.append(Tempo(0, qpm=120.0))
    track = Track("Piano", 0, False)
    track.notes.append(Note(2 * TPQ, TPQ, 60, 100))  # 1.0 s .. 1.5 s
    score.tracks.append(track)
    stem = render_parts(score, sample_rate, 4.0, soundfont)["piano"]
    assert rms(stem[:, : int(0.95 * sample_rate)]) == 0.0  # before the note: digital silence
    assert rms(stem[:, int(1.0 * sample_rate) : int(1.5 * sample_rate)]) > 1e-2
    assert rms(stem[:, int(3.5 * sample_rate) :]) < 1e-4  # long after the release


def test_drums_render(soundfont: SoundFont) -> None:
    score = make_score([("", 0, True)], bars=1)
    score.tracks[0].notes.append(Note(0, 1, 42, 100))  # a 1-tick hat still sounds
    stems = render_parts(score, 44100, 2.0, soundfont)
    assert list(stems) == ["drums"]
    assert rms(stems["drums"]) > 1e-2


def test_last_sample_is_faded_to_zero(soundfont: SoundFont) -> None:
    # A sustained organ chord plays through the end.
    score = Score(TPQ)
    score.tempos.append(Tempo(0, qpm=120.0))
    track = Track("Organ", 19, False)
    for pitch in (48, 55, 60, 64):
        track.notes.append(Note(0, 16 * TPQ, pitch, 110))
    score.tracks.append(track)
    result = render(score, 48000, 2.0, soundfont)
    fade = round(FADE_SECONDS * 48000)
    assert rms(result.mix[:, -4 * fade : -2 * fade]) > 1e-2  # still loud just before the fade
    assert np.all(result.mix[:, -1] == 0.0)
    assert float(np.max(np.abs(result.mix[:, -3:]))) < 1e-2
    # no click: the fade never steps further than the organ itself does just before it (FluidR3's organ is bright
    # enough to step 0.07 per sample on its own, TimGM6mb's about 0.03)
    step = np.max(np.abs(np.diff(result.mix[:, -fade:], axis=1)))
    own = np.max(np.abs(np.diff(result.mix[:, -4 * fade : -fade], axis=1)))
    assert step <= own


def onset_seconds(audio: np.ndarray, sample_rate: int, after_seconds: float = 0.0) -> float:
    """Time of the first 5 ms frame whose energy jumps above a threshold."""
    hop = int(0.005 * sample_rate)
    mono = audio.mean(axis=0)
    start = int(after_seconds * sample_rate)
    frames = mono[start : start + (len(mono) - start) // hop * hop].reshape(-1, hop)
    energy = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    above = np.flatnonzero(energy > 0.1 * energy.max())
    return after_seconds + float(above[0]) * hop / sample_rate


def test_tempo_change_is_honoured(soundfont: SoundFont) -> None:
    # 120 BPM for 4 quarters (2.0 s), then 60 BPM: a note 2 quarters after the change starts at 4.0 s
    # (at 120 BPM throughout it would be at 3.0 s).
    sample_rate = 44100
    score = Score(TPQ)
    score.tempos.append(Tempo(0, qpm=120.0))
    score.tempos.append(Tempo(4 * TPQ, qpm=60.0))
    score.tempos.append(Tempo(7 * TPQ, qpm=240.0))
    track = Track("Piano", 0, False)
    track.notes.append(Note(0, TPQ // 2, 72, 100))
    track.notes.append(Note(6 * TPQ, TPQ // 2, 72, 100))
    track.notes.append(Note(9 * TPQ, TPQ // 2, 72, 100))  # 5.0 s + 2 quarters at 240 BPM = 5.5 s
    score.tracks.append(track)
    stem = render_parts(score, sample_rate, 7.0, soundfont)["piano"]
    assert onset_seconds(stem, sample_rate) == pytest.approx(0.0, abs=0.01)
    assert onset_seconds(stem, sample_rate, after_seconds=3.5) == pytest.approx(4.0, abs=0.01)
    assert onset_seconds(stem, sample_rate, after_seconds=5.2) == pytest.approx(5.5, abs=0.01)
    assert rms(stem[:, int(2.6 * sample_rate) : int(3.95 * sample_rate)]) < 1e-3


def test_score_in_seconds_and_quarters_render_alike(soundfont: SoundFont) -> None:
    score = make_score([("Piano", 0, False)], bars=1, tempos=[(0, 90.0), (2 * TPQ, 150.0)])
    by_tick = render_parts(score, 22050, 3.0, soundfont)["piano"]
    by_second = render_parts(score.to("second"), 22050, 3.0, soundfont)["piano"]
    by_quarter = render_parts(score.to("quarter"), 22050, 3.0, soundfont)["piano"]
    # Seconds are float32 inside symusic: allow a sample of jitter in onsets.
    assert onset_seconds(by_second, 22050, 1.0) == pytest.approx(onset_seconds(by_tick, 22050, 1.0), abs=0.006)
    np.testing.assert_allclose(by_quarter, by_tick, atol=1e-6)


def test_odd_input_does_not_crash(soundfont: SoundFont) -> None:
    score = Score(TPQ)  # no tempo at all: 120 BPM
    track = Track("Weird", 0, False)
    track.notes.append(Note(0, 0, 60, 100))  # zero length
    track.notes.append(Note(TPQ, TPQ, 61, 0))  # velocity 0
    track.notes.append(Note(100 * TPQ, TPQ, 62, 100))  # after the end
    track.notes.append(Note(TPQ, 8 * TPQ, 64, 100))  # sounds past the end
    score.tracks.append(track)
    stems = render_parts(score, 22050, 1.0, soundfont)
    assert stems["weird"].shape == (2, 22050)
    assert np.all(np.isfinite(stems["weird"]))
    assert render_parts(Score(TPQ), 22050, 1.0, soundfont) == {}


@pytest.mark.parametrize(
    ("sample_rate", "length_seconds"), [(0, 1.0), (1_000_000, 1.0), (44100, 0.0), (44100, math.nan), (44100, 1e6)]
)
def test_bad_arguments(soundfont: SoundFont, sample_rate: int, length_seconds: float) -> None:
    with pytest.raises(BadInputError):
        render_parts(make_score(FOUR_PARTS), sample_rate, length_seconds, soundfont)


def test_eight_bars_of_four_parts_render_four_stems(soundfont: SoundFont) -> None:
    """Rendering speed is measured by bench/bench_midi_speed.py, side by side with a baseline, not asserted here."""
    score = make_score(FOUR_PARTS, bars=8, tempos=[(0, 96.0)])
    result = render(score, 44100, 20.0, soundfont)
    assert len(result.stems) == 4


def test_a_loud_mix_scales_the_callers_stems_only_when_asked_in_place() -> None:
    def loud() -> dict[str, np.ndarray]:
        return {"a": np.full((2, 50), 0.8, dtype=np.float32), "b": np.full((2, 50), 0.5, dtype=np.float32)}

    given = loud()
    _, copies, gain = mix_stems(given, 50)
    assert gain < 1.0
    np.testing.assert_array_equal(given["a"], loud()["a"])  # the caller's arrays are left alone
    owned = loud()
    _, scaled, same_gain = mix_stems(owned, 50, in_place=True)
    assert same_gain == gain and scaled["a"] is owned["a"]
    np.testing.assert_array_equal(owned["a"], copies["a"])


def test_the_peak_counts_negative_samples_too() -> None:
    audio = np.array([[0.1, -0.5], [0.2, 0.3]], dtype=np.float32)
    assert peak_dbfs(audio) == pytest.approx(20 * math.log10(0.5))
    assert peak_dbfs(np.zeros((2, 0), dtype=np.float32)) == -math.inf
