"""Render a MIDI region to an audio region (a stand-in for a DAW bounce), for demos and tests.

``python -m engine.audio.example_region examples/regions/pop_100bpm_4-4.mid --out region.wav [--rate 48000]
[--tempo BPM] [--soundfont PATH]``

The MIDI file is rendered through the General MIDI soundfont (:func:`engine.render.soundfont.find_soundfont`) as
24-bit stereo WAV at ``--rate``, exactly as long as the file's whole bars. ``--tempo`` re-times it (one constant
tempo from its start). The file is written atomically and never over an existing one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from engine.errors import BadInputError


def render_region(
    midi: Path, out: Path, sample_rate: int = 48_000, tempo: float | None = None, soundfont: str | None = None
) -> Path:
    from symusic import Score, Tempo
    from symusic.core import ScoreTick

    from engine.render.synth import render
    from engine.render.wavfile import write_wav

    if out.exists():
        raise BadInputError(f"{out} already exists; give another --out (files are never overwritten)")
    try:
        score = cast(ScoreTick, Score(str(midi)))
    except (OSError, RuntimeError, ValueError) as e:
        raise BadInputError(f"{midi} is not a readable MIDI file ({e})") from e
    if tempo is not None:
        if not 10 <= tempo <= 400:
            raise BadInputError(f"--tempo {tempo:g} is out of range (10..400 BPM)")
        score.tempos = [Tempo(0, tempo)]  # type: ignore[assignment]
    qpm = float(score.tempos[0].qpm) if len(score.tempos) else 120.0
    if len(score.tempos) > 1 and tempo is None:
        raise BadInputError(f"{midi} changes tempo; give --tempo to render it at one constant tempo")
    seconds = score.end() / score.tpq * 60.0 / qpm
    if seconds <= 0:
        raise BadInputError(f"{midi} holds no notes")
    rendering = render(score, sample_rate, seconds, soundfont)
    write_wav(out, rendering.mix, sample_rate)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("midi", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rate", type=int, default=48_000)
    parser.add_argument("--tempo", type=float, default=None)
    parser.add_argument("--soundfont", default=None)
    args = parser.parse_args(argv)
    try:
        path = render_region(args.midi, args.out, args.rate, args.tempo, args.soundfont)
    except BadInputError as e:
        parser.exit(2, f"error: {e}\n")
    print(path)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
