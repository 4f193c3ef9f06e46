"""Audio -> MIDI (engine/transcribe/region.py) on audio rendered here from known MIDI through the soundfont renderer:
right pitches on the right grid positions at 44.1 kHz stereo, 8 kHz mono and 96 kHz stereo, triplets, 6/8;
silence, noise and drums are "no pitched content"; a semitone cluster is "a mess"; the MIDI file's layout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mido
import numpy as np
import pytest
from symusic import Score

from engine.api import Meter
from engine.errors import BadInputError, EngineError
from engine.midi_io import Conductor, Note, PartNotes, build_midi, save_midi
from engine.render.synth import render
from engine.render.wavfile import write_wav

pytest.importorskip("onnxruntime")
if importlib.util.find_spec("basic_pitch") is None:
    pytest.skip("basic-pitch is not installed (make venv installs it)", allow_module_level=True)

from engine.transcribe import model as transcribe_model  # noqa: E402
from engine.transcribe import region as transcribe  # noqa: E402
from engine.transcribe.region import AudioRegion, transcribe_region  # noqa: E402

TPQ = 480
TEMPO = 100.0
# (start beats, length beats, pitch): C major up and down, quarters, 8ths and 16ths, over 4 bars of 4/4
MELODY = [
    (0, 1, 60), (1, 0.5, 62), (1.5, 0.5, 64), (2, 1, 65), (3, 1, 67), (4, 0.5, 69), (4.5, 0.5, 71),
    (5, 0.25, 72), (5.25, 0.25, 71), (5.5, 0.5, 69), (6, 1, 67), (7, 1, 65), (8, 0.5, 64), (8.5, 0.5, 62),
    (9, 1, 60), (10, 2, 67), (12, 0.5, 64), (12.5, 0.5, 65), (13, 1, 67), (14, 2, 72),
]  # fmt: skip


def notes_of(spec: list[tuple[float, float, int]], gap: float = 0.95) -> list[Note]:
    return [Note(round(s * TPQ), round(d * TPQ * gap), p, 96) for s, d, p in spec]


def render_region(
    path: Path, notes: list[Note], program: int, sample_rate: int, channels: int, bars: int,
    tempo: float = TEMPO, meter: Meter | None = None,
) -> Path:  # fmt: skip
    """``notes`` as one part, rendered through the soundfont to ``path`` (exactly ``bars`` bars long)."""
    meter = meter or Meter(4, 4)
    end = round(bars * meter.quarters_per_bar * TPQ)
    midi = path.with_suffix(".mid")
    save_midi(build_midi(TPQ, Conductor(((0, tempo),), ((0, meter),)), [PartNotes("x", program, tuple(notes))], end),
              midi)  # fmt: skip
    seconds = bars * meter.quarters_per_bar * 60.0 / tempo
    mix = render(Score(str(midi)), sample_rate, seconds, None).mix
    write_wav(path, mix if channels == 2 else mix.mean(axis=0, keepdims=True), sample_rate)
    return path


def grid_f1(expected: list[Note], midi: Path) -> float:
    """F1 of (onset tick, pitch) pairs: a note counts only on exactly the right grid position and pitch."""
    got = {(int(n.time), int(n.pitch)) for t in Score(str(midi)).tracks for n in t.notes}
    want = {(n.start, n.pitch) for n in expected}
    hits = len(got & want)
    return 2 * hits / (len(got) + len(want)) if got or want else 1.0


@pytest.mark.parametrize(("rate", "channels"), [(44_100, 2), (8_000, 1), (96_000, 2)])
def test_a_rendered_melody_comes_back_on_its_grid(tmp_path: Path, rate: int, channels: int) -> None:
    expected = notes_of(MELODY)
    wav = render_region(tmp_path / "melody.wav", expected, 0, rate, channels, bars=4)
    result = transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), tmp_path / "t.mid")
    f1 = grid_f1(expected, tmp_path / "t.mid")
    assert f1 >= 0.9, f"note F1 {f1:.2f} at {rate} Hz"
    assert result.length_bars == 4 and result.grid == "16ths" and not result.messy
    assert result.monophonic and result.program == transcribe.LEAD_PROGRAM and result.part_name == "melody"
    assert result.confidence > 0.5
    assert "transcribed from audio: " in result.summary and "monophonic" in result.summary


@pytest.mark.parametrize(("program", "least_f1"), [(53, 0.9), (65, 0.85)])  # GM voice oohs, alto sax
def test_a_slow_attack_line_is_on_its_grid(tmp_path: Path, program: int, least_f1: float) -> None:
    """A voice's slow attack is heard late and split in two: the note starts where its attack does."""
    expected = notes_of(MELODY)
    wav = render_region(tmp_path / "voice.wav", expected, program, 44_100, 2, bars=4)
    result = transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), tmp_path / "t.mid")
    assert result.monophonic, result.summary
    assert grid_f1(expected, tmp_path / "t.mid") >= least_f1


def test_a_bass_line_is_one_line_without_its_overtones(tmp_path: Path) -> None:
    expected = [Note(n.start, n.duration, n.pitch - 24, n.velocity) for n in notes_of(MELODY)]  # C2..C3
    wav = render_region(tmp_path / "bass.wav", expected, 33, 44_100, 2, bars=4)  # GM fingered bass
    result = transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), tmp_path / "t.mid")
    assert result.monophonic, result.summary
    assert grid_f1(expected, tmp_path / "t.mid") >= 0.85


def test_the_midi_file_has_tempo_meter_and_end_at_the_region_end(tmp_path: Path) -> None:
    expected = notes_of(MELODY)
    wav = render_region(tmp_path / "m.wav", expected, 73, 44_100, 2, bars=4)
    out = tmp_path / "region" / "transcribed.mid"
    result = transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), out)
    mid = mido.MidiFile(out)
    conductor = mid.tracks[0]
    tempo = next(m for m in conductor if m.type == "set_tempo")
    meter = next(m for m in conductor if m.type == "time_signature")
    assert mido.tempo2bpm(tempo.tempo) == pytest.approx(TEMPO) and (meter.numerator, meter.denominator) == (4, 4)
    assert all(sum(m.time for m in track) == 4 * 4 * mid.ticks_per_beat for track in mid.tracks)
    programs = [m.program for m in mid.tracks[1] if m.type == "program_change"]
    assert programs == [result.program] and len(mid.tracks) == 2
    velocities = [m.velocity for m in mid.tracks[1] if m.type == "note_on" and m.velocity > 0]
    assert len(velocities) == result.note_count and all(24 <= v <= 127 for v in velocities)
    with pytest.raises(EngineError, match="never overwrites"):
        transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), out)


def test_the_length_from_the_daw_wins(tmp_path: Path) -> None:
    wav = render_region(tmp_path / "m.wav", notes_of(MELODY), 0, 44_100, 1, bars=4)
    result = transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4), 8.0), tmp_path / "t.mid")  # the first two bars
    assert result.length_bars == 2
    ticks = [int(n.time) for t in Score(str(tmp_path / "t.mid")).tracks for n in t.notes]
    assert ticks and max(ticks) < 8 * TPQ
    assert mido.MidiFile(tmp_path / "t.mid").length == pytest.approx(2 * 4 * 60 / TEMPO)


def test_a_long_region_is_transcribed_from_its_last_minutes(tmp_path: Path) -> None:
    expected = notes_of(MELODY)
    wav = render_region(tmp_path / "m.wav", expected, 0, 44_100, 2, bars=4)
    options = transcribe.TranscriptionOptions(max_seconds=4.8)  # the last 2 bars of 4
    result = transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), tmp_path / "t.mid", options)
    assert result.length_bars == 4 and any("only its last 5 s" in n for n in result.notes)
    late = [n for n in expected if n.start >= 8 * TPQ]
    ticks = {(int(n.time), int(n.pitch)) for t in Score(str(tmp_path / "t.mid")).tracks for n in t.notes}
    assert min(t for t, _ in ticks) >= 8 * TPQ - TPQ // 4, "nothing from before the last 4.8 s"
    assert len(ticks & {(n.start, n.pitch) for n in late}) >= 0.9 * len(late), "on the region's own timeline"


def test_triplets_are_kept_when_the_playing_asks_for_them(tmp_path: Path) -> None:
    third = TPQ // 3  # 8th-note triplets, eight bars' worth of beats in 2 bars
    expected = [Note(i * third, third - 10, 60 + 2 * (i % 5), 96) for i in range(24)]
    wav = render_region(tmp_path / "trip.wav", expected, 73, 44_100, 2, bars=2)
    result = transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), tmp_path / "t.mid")
    assert result.grid == "16ths and 8th-note triplets"
    assert grid_f1(expected, tmp_path / "t.mid") >= 0.9


def test_a_straight_melody_in_six_eight(tmp_path: Path) -> None:
    meter = Meter(6, 8)
    spec = [(0, 1.5, 62), (1.5, 0.5, 64), (2, 0.5, 66), (2.5, 0.5, 67), (3, 1, 69), (4, 0.5, 67), (4.5, 1.5, 66)]
    expected = notes_of(spec)
    wav = render_region(tmp_path / "six.wav", expected, 0, 48_000, 2, bars=2, tempo=120.0, meter=meter)
    result = transcribe_region(AudioRegion(wav, 120.0, meter), tmp_path / "t.mid")
    assert result.length_bars == 2 and result.grid == "16ths"
    assert grid_f1(expected, tmp_path / "t.mid") >= 0.9
    meta = next(m for m in mido.MidiFile(tmp_path / "t.mid").tracks[0] if m.type == "time_signature")
    assert (meta.numerator, meta.denominator) == (6, 8)


def test_piano_chords_are_polyphonic_but_not_a_mess(tmp_path: Path) -> None:
    chords = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)]
    expected = [Note(i * 2 * TPQ, 2 * TPQ - 60, p, 90) for i, chord in enumerate(chords) for p in chord]
    wav = render_region(tmp_path / "triads.wav", expected, 0, 44_100, 2, bars=2)
    result = transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), tmp_path / "t.mid")
    assert not result.monophonic and result.program == transcribe.POLY_PROGRAM and result.part_name == "piano"
    assert not result.messy and result.texture.max_polyphony >= 3
    assert grid_f1(expected, tmp_path / "t.mid") >= 0.75
    assert "polyphonic" in result.summary


def test_a_dense_cluster_is_called_a_mess(tmp_path: Path) -> None:
    cluster = [Note(b * 2 * TPQ, 2 * TPQ - 60, 60 + k, 90) for b in range(4) for k in range(9)]  # C4..G#4 at once
    wav = render_region(tmp_path / "cluster.wav", cluster, 0, 44_100, 2, bars=2)
    result = transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), tmp_path / "t.mid")
    assert result.messy and result.note_count > 0
    assert any("transcribes to a mess" in n for n in result.notes)


def _white_noise(seconds: float, rate: int) -> np.ndarray:
    return (0.2 * np.random.default_rng(0).standard_normal((2, int(seconds * rate)))).astype(np.float32)


@pytest.mark.parametrize("kind", ["silence", "white_noise", "drums"])
def test_no_pitched_content_is_bad_input(tmp_path: Path, kind: str) -> None:
    wav = tmp_path / f"{kind}.wav"
    if kind == "silence":
        write_wav(wav, np.zeros((2, 44_100 * 3), np.float32), 44_100)
    elif kind == "white_noise":
        write_wav(wav, _white_noise(4.8, 44_100), 44_100)
    else:  # a rock beat on the GM kit: kick, snare, 16th hi-hats
        drums = [Note(i * 120, 60, 42, 80) for i in range(32)]
        drums += [Note(i * 960, 60, 36, 110) for i in range(4)] + [Note(480 + i * 960, 60, 38, 100) for i in range(4)]
        render_region(wav, drums, -1, 44_100, 2, bars=2)
    out = tmp_path / "t.mid"
    with pytest.raises(BadInputError, match="no pitched content") as raised:
        transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), out)
    assert str(wav) in str(raised.value) and "give a region with a melody" in str(raised.value)
    assert not out.exists()


def test_the_tests_render_with_the_bundled_soundfont() -> None:
    """tests/conftest.py pins $SEGUE_SOUNDFONT to pretty_midi's TimGM6mb.sf2: what these tests transcribe does not
    depend on the soundfonts installed (with MuseScore General's piano the model also hears low notes, MIDI 39, 41
    and 44, under this melody)."""
    from engine.render.soundfont import bundled_soundfont_path, find_soundfont

    bundled = bundled_soundfont_path()
    assert bundled is not None and find_soundfont().path == bundled.resolve()


def test_without_basic_pitch_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "basic_pitch" else real(name, *a))
    with pytest.raises(EngineError, match=r"pip install --no-deps basic-pitch"):
        transcribe_model.model_path()


def test_the_session_is_made_once_per_process() -> None:
    assert transcribe_model._session() is transcribe_model._session()


def test_progress_is_reported_and_cancel_stops_before_any_file(tmp_path: Path) -> None:
    from engine.api import CancelToken
    from engine.errors import CancelledError

    wav = render_region(tmp_path / "m.wav", notes_of(MELODY), 0, 44_100, 2, bars=4)
    seen: list[float] = []
    transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), tmp_path / "t.mid", progress=seen.append)
    assert seen and seen == sorted(seen) and 0.0 <= seen[0] and seen[-1] < 1.0
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(CancelledError):
        transcribe_region(AudioRegion(wav, TEMPO, Meter(4, 4)), tmp_path / "c.mid", cancel=cancel)
    assert not (tmp_path / "c.mid").exists()
