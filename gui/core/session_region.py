"""The session's region (a part of :class:`gui.core.session.Session`): a file opened or dropped, a job's own region,
the user's tempo and meter, the tempo estimated from an audio region, and tap tempo. Runs on the GUI thread.

Whose tempo wins: the DAW's (a region it sent) and the user's (typed, tapped, or stated in the file's name) always
do; a MIDI file's tempo map next; an estimate from the audio replaces only a tempo that was assumed (120 BPM).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.api import Meter
from engine.errors import SegueError
from gui.core.media import PREVIEW_RATE, classify_dropped, preview_notes, read_media, region_from_files, tempo_from_name
from gui.core.models import TempoSource
from gui.core.readers import RegionAudioRead, read_region_audio
from gui.core.session_part import SessionPart

if TYPE_CHECKING:
    from bridge.events import DawRegion

TAP_RESET_S = 2.0  # a pause this long starts a new count
MIN_TAPS = 3


class TapTempo:
    """Tap tempo: the median interval of the taps since the last pause of :data:`TAP_RESET_S`, as BPM."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.taps: list[float] = []

    def tap(self) -> float | None:
        """Count a tap; the tempo once :data:`MIN_TAPS` taps are in, else None."""
        now = self.clock()
        if self.taps and now - self.taps[-1] > TAP_RESET_S:
            self.taps = []
        self.taps = [*self.taps[-7:], now]
        if len(self.taps) < MIN_TAPS:
            return None
        gaps = sorted(b - a for a, b in zip(self.taps, self.taps[1:], strict=False))
        median = gaps[len(gaps) // 2] if len(gaps) % 2 else (gaps[len(gaps) // 2 - 1] + gaps[len(gaps) // 2]) / 2
        return round(60.0 / median, 1) if median > 0 else None


class SessionRegion(SessionPart):
    """The Region panel's actions."""

    def open_files(self, paths: list[Path]) -> None:
        """A file (MIDI and/or audio) opened or dropped becomes the region."""
        try:
            midi, audio = classify_dropped(paths)
            region = region_from_files(midi, audio)
        except SegueError as e:
            self.say("error", f"Cannot use that file: {e}")
            return
        self._remember(last_open_dir=str(paths[0].parent))
        if midi is None and audio is not None:  # audio has no tempo map: say what was assumed
            named = tempo_from_name(audio) is not None
            self._show_region(region, "file", "name" if named else "assumed")
            where = "from its file name" if named else "assumed until it is estimated from the audio"
            self.say(
                "warning",
                f"{audio.name}: {region.tempo_bpm:g} BPM, {region.meter} {where}. If the DAW's "
                "tempo differs, set Tempo in the Region panel (or tap it) before you generate.",
            )
            return
        self._show_region(region, "file", "file")
        self.say("info", f"Region: {region.track}. Choose bars and variants, then Generate.")

    def set_region_timing(
        self, tempo_bpm: float | None = None, meter: Meter | None = None, source: TempoSource = "user"
    ) -> None:
        """The user corrected the region's tempo or meter (an audio file has neither); ``source`` says whose tempo
        it is ("estimate": from the audio)."""
        state = self.models.region.value
        if state.region is None:
            return
        region = state.region
        tempo_source = state.tempo_source
        if tempo_bpm is not None and math.isfinite(tempo_bpm) and 10.0 <= tempo_bpm <= 400.0:
            tempo_source = source
            if region.midi_path is None:  # audio only: the length in beats follows the tempo
                length = region.length_beats * tempo_bpm / region.tempo_bpm
                region = dataclasses.replace(region, tempo_bpm=tempo_bpm, length_beats=length)
            else:
                region = dataclasses.replace(region, tempo_bpm=tempo_bpm)
        if meter is not None:
            region = dataclasses.replace(region, meter=meter)
        if region != state.region:
            self._show_region(region, state.origin or "file", tempo_source, name=state.name)

    def play_region(self) -> None:
        """Hear the region alone: its audio, or a plain sketch of its MIDI notes."""
        state = self.models.region.value
        region = state.region
        if region is None:
            self.say("info", "Open a region first.")
            return
        if region.audio_path is not None:
            self.player.play("region", (region.audio_path,), region.meter)
        elif state.midi is not None and state.midi.notes:
            audio = preview_notes(state.midi.notes, region.tempo_bpm, region.length_beats)
            self.player.play_audio("region", audio, PREVIEW_RATE, region.meter)
        else:
            self.say("warning", "The region has nothing to play.")

    def tap_tempo(self) -> None:
        """One tap of the Region panel's Tap button: from the third tap on, the taps' tempo is the region's."""
        tempo = self.tapper.tap()
        if tempo is not None:
            self.set_region_timing(tempo_bpm=tempo, source="user")

    def _show_region(self, region: DawRegion, origin: str, tempo_source: TempoSource = "file", name: str = "") -> None:
        try:
            self.service.set_region(region)
        except SegueError as e:
            self.say("error", f"Cannot use that region: {e}")
            return
        midi = None
        try:  # MIDI regions are small: read at once (the key and the notes); audio on a worker thread
            midi = read_media(region.midi_path) if region.midi_path is not None else None
        except SegueError as e:
            self.say("warning", f"The region cannot be drawn: {e}")
        previous = self.models.region.value
        same_audio = previous.region is not None and previous.region.audio_path == region.audio_path
        if region.audio_path is not None and not (same_audio and previous.audio is not None):
            read_region_audio(region.audio_path, self._post, estimate=region.midi_path is None)
        bars = region.length_beats / region.meter.quarters_per_bar
        self.models.region.update(
            region=region,
            origin=origin,
            name=name or region.track or (region.midi_path or region.audio_path or Path("region")).stem,
            midi=midi,
            audio=previous.audio if same_audio else None,
            key=midi.key if midi is not None else "",
            bars=bars,
            tempo_source="daw" if origin == "daw" else tempo_source,
            tempo_estimate=previous.tempo_estimate if same_audio else None,
        )

    def _on_region_audio(self, event: RegionAudioRead) -> None:
        state = self.models.region.value
        if state.region is None or state.region.audio_path != event.path:
            return  # another region is shown by now
        if event.audio is None:
            self.say("warning", f"The region's waveform cannot be drawn: {event.error}")
            return
        self.models.region.update(audio=event.audio, tempo_estimate=event.tempo_bpm)
        if event.tempo_bpm is not None and state.tempo_source == "assumed":  # only an assumed tempo gives way
            self.set_region_timing(tempo_bpm=round(event.tempo_bpm, 1), source="estimate")
            self.say(
                "info",
                f"Tempo estimated from the audio: {event.tempo_bpm:.1f} BPM. If your DAW says otherwise, set Tempo "
                "or tap it.",
            )
