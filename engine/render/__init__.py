"""Rendering: MIDI (symusic scores) to audio stems and mixes with a General MIDI soundfont; WAV files on disk."""
