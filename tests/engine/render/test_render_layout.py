"""Rendered audio is laid out frame by frame (L R L R ...), so a WAV is written without reordering the samples;
left stays left, and the stems, the mix and the file hold the same samples.

Scores are built here (a few notes, a hard pan); the soundfont is whatever :func:`find_soundfont` picks (the tests
pin the bundled TimGM6mb, GPL-2, from the pretty_midi wheel).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from symusic import ControlChange, Note, Score, Tempo, TimeSignature, Track
from symusic.core import ScoreTick

from engine.render.synth import mix_stems, render
from engine.render.wavfile import write_wav

TPQ = 480
RATE = 22_050


def _panned_score() -> ScoreTick:
    """A piano panned hard left (CC10 = 0) and a bass panned hard right (CC10 = 127), two bars at 120 BPM."""
    score = Score(TPQ)
    score.tempos.append(Tempo(0, qpm=120.0))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    for name, program, pan, pitch in (("left piano", 0, 0, 72), ("right bass", 33, 127, 40)):
        track = Track(name, program, False)
        track.controls.append(ControlChange(0, 10, pan))
        for beat in range(8):
            track.notes.append(Note(beat * TPQ, TPQ, pitch, 110))
        score.tracks.append(track)
    return score


def test_stems_and_mix_are_frame_ordered_and_keep_left_and_right() -> None:
    rendering = render(_panned_score(), RATE, 4.0)
    left, right = rendering.stems["left_piano"], rendering.stems["right_bass"]
    for audio in (left, right, rendering.mix):
        assert audio.shape == (2, 4 * RATE) and audio.dtype == np.float32
        assert audio.T.flags.c_contiguous  # what a WAV holds: no copy on the way out
    assert np.abs(left[0]).sum() > 5 * np.abs(left[1]).sum()  # hard left: the right channel is much quieter
    assert np.abs(right[1]).sum() > 5 * np.abs(right[0]).sum()
    assert np.allclose(rendering.mix, left + right, atol=1e-6)


def test_a_scaled_mix_keeps_the_layout_and_the_sum() -> None:
    stems = render(_panned_score(), RATE, 4.0).stems
    loud = {name: stem * np.float32(8.0) for name, stem in stems.items()}
    mix, scaled, gain = mix_stems(loud, 4 * RATE)
    assert gain < 1.0
    assert all(s.dtype == np.float32 and s.T.flags.c_contiguous for s in scaled.values())
    assert np.allclose(mix, sum(scaled.values()), atol=1e-5)


def test_the_wav_file_holds_the_rendered_samples_in_channel_order(tmp_path: Path) -> None:
    rendering = render(_panned_score(), RATE, 4.0)
    stem = rendering.stems["left_piano"]
    path = write_wav(tmp_path / "left.wav", stem, RATE)
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert rate == RATE and data.shape == (4 * RATE, 2)
    assert np.allclose(data.T, stem, atol=2.0 / 2**23)  # 24-bit PCM
    assert np.abs(data[:, 0]).sum() > 5 * np.abs(data[:, 1]).sum()
