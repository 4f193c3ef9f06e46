"""Reads that can take a while (long takes, many variants, a slow disk) run on a worker thread and come back as
events for the GUI thread, so showing a job or a region never freezes the window. No Qt."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import SegueError
from gui.core import catalog
from gui.core.media import MediaSummary, estimate_audio_tempo, read_audio
from gui.core.models import VariantItem

log = logging.getLogger(__name__)

Post = Callable[[object], None]


@dataclass(frozen=True)
class ThumbnailsRead:
    """A variant's thumbnails, read on a worker thread after its job was shown."""

    key: str  # VariantItem.key
    midi: MediaSummary | None
    audio: MediaSummary | None


@dataclass(frozen=True)
class RegionAudioRead:
    """The waveform of the region's audio file (``audio`` None and ``error`` set when it cannot be read)."""

    path: Path
    audio: MediaSummary | None
    error: str = ""
    tempo_bpm: float | None = None  # estimated from the audio, when asked and it could be


def read_thumbnails(items: tuple[VariantItem, ...], post: Post) -> None:
    """Read the variants' MIDI and audio for their thumbnails on a worker thread; post one event per variant."""

    def read() -> None:
        for item in items:
            try:
                midi, audio = catalog.thumbnails_of(item.files)
            except Exception:  # a thumbnail is not worth a crash; the row shows without it
                log.exception("reading the thumbnails of %s failed", item.key)
                continue
            post(ThumbnailsRead(item.key, midi, audio))

    threading.Thread(target=read, name="segue-thumbnails", daemon=True).start()


def read_region_audio(path: Path, post: Post, estimate: bool = False) -> None:
    """Read an audio region's waveform (and with ``estimate`` its tempo: :func:`gui.core.media.estimate_audio_tempo`) on
    a worker thread; post a :class:`RegionAudioRead`."""

    def read() -> None:
        try:
            audio = read_audio(path)
            post(RegionAudioRead(path, audio, tempo_bpm=estimate_audio_tempo(path) if estimate else None))
        except SegueError as e:
            post(RegionAudioRead(path, None, str(e)))
        except Exception as e:  # an odd file must not take the window down
            log.exception("reading %s failed", path)
            post(RegionAudioRead(path, None, f"{type(e).__name__}: {e}"))

    threading.Thread(target=read, name="segue-region-audio", daemon=True).start()
