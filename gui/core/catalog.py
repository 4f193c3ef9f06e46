"""Job folders as the app shows them: variants with their files and thumbnails, history rows, the files to drag
out or to audition, and the regions that "regenerate" and "continue from a variant" use. No Qt."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from bridge.events import DawRegion
from bridge.jobs import JobRecord
from engine.api import Meter
from engine.errors import SegueError
from gui.core.media import MediaSummary, read_audio, read_midi
from gui.core.models import HistoryRow, VariantItem

log = logging.getLogger(__name__)

THUMBNAIL_BUCKETS = 240


def variant_items(
    job_dir: Path, record: JobRecord, starred: set[str], thumbnails: bool = True
) -> tuple[VariantItem, ...]:
    """One item per variant of a job, with absolute paths and (``thumbnails``, when readable) the summaries its
    thumbnails are drawn from; without, :func:`thumbnails_of` reads them later (on another thread)."""
    items = []
    for number, variant in enumerate(record.variants, start=1):
        files = {role: (job_dir / rel).resolve() for role, rel in variant.files.items()}
        if files and not any(path.exists() for path in files.values()):
            continue  # deleted (moved to the trash): the others keep their numbers
        midi, audio = thumbnails_of(files) if thumbnails else (None, None)
        items.append(
            VariantItem(
                job_id=record.id,
                variant_id=variant.id,
                number=number,
                seed=variant.seed,
                files=files,
                duration_seconds=variant.duration_seconds,
                parts=tuple(variant.parts),
                starred=f"{record.id}/{variant.id}" in starred,
                midi=midi,
                audio=audio,
            )
        )
    return tuple(items)


def thumbnails_of(files: Mapping[str, Path]) -> tuple[MediaSummary | None, MediaSummary | None]:
    """(MIDI, audio) summaries of a variant's files, for its thumbnails; None for what is missing or unreadable."""
    return _summary(files.get("midi"), "midi"), _summary(files.get("audio"), "audio")


def _summary(path: Path | None, kind: str) -> MediaSummary | None:
    if path is None or not path.is_file():
        return None
    try:
        return read_midi(path) if kind == "midi" else read_audio(path, THUMBNAIL_BUCKETS)
    except SegueError as e:
        log.warning("cannot draw %s: %s", path, e)
        return None


def status_text(record: JobRecord) -> str:
    if record.status == "done":
        return f"{len(record.variants)} variant(s)"
    if record.error is not None:
        return f"{record.status}: {record.error.message}"
    return record.status


def region_name(record: JobRecord) -> str:
    """The name of a job's region: its file's name, or for a region that was a variant's ``full.*`` (after
    "Continue it") the job's region and that variant: ``verse + v01``, never "full"."""
    sources = record.region.sources
    if not sources:
        return "region"
    path = Path(sources[0].path)
    variant, job_id = path.parent.name, path.parent.parent.name
    if path.stem == "full" and variant.startswith("v") and variant[1:].isdigit() and job_id:
        return f"{_job_region(job_id)} + {variant}"
    return path.stem


def _job_region(job_id: str) -> str:
    """``20261122-015119-pop-100bpm-4-4-continue-4e33`` -> ``pop-100bpm-4-4`` (the job folder's region part)."""
    parts = job_id.split("-")
    if len(parts) >= 5 and len(parts[1]) == 6 and parts[0].isdigit():
        return "-".join(parts[2:-2])
    return job_id


def history_row(job_dir: Path, record: JobRecord) -> HistoryRow:
    name = region_name(record)
    return HistoryRow(
        job_id=record.id,
        job_dir=job_dir,
        created=record.created,
        status=record.status,
        mode=record.mode,
        bars=(record.region.length_bars or record.params.bars) if record.mode == "accompany" else record.params.bars,
        variants=record.params.variants,
        model=record.model,
        region_name=name,
        message=record.error.message if record.error is not None else "",
    )


def audition_paths(item: VariantItem, region_first: bool) -> tuple[Path, ...]:
    """What to play: the region then the variant (``full.wav``) when asked and present, else the variant."""
    if region_first and "full_audio" in item.files:
        return (item.files["full_audio"],)
    if "audio" in item.files:
        return (item.files["audio"],)
    return ()


def drag_paths(item: VariantItem, what: str = "audio") -> list[Path]:
    """Existing files for a drag: "audio" (the mix; the MIDI when there is no audio), "midi", "stems" (all),
    "stem:<part>" (one)."""
    files = item.files
    if what == "audio":
        chosen = [files["audio"]] if "audio" in files else [files["midi"]] if "midi" in files else []
    elif what == "midi":
        chosen = [files["midi"]] if "midi" in files else []
    elif what == "stems":
        chosen = [path for role, path in sorted(files.items()) if role.startswith("stem:")]
    else:
        chosen = [files[what]] if what in files else []
    return [path for path in chosen if path.is_file()]


def region_of_job(record: JobRecord) -> DawRegion | None:
    """The region a job was made from, when its source files still exist."""
    paths = {s.role: Path(s.path) for s in record.region.sources}
    midi, audio = paths.get("midi"), paths.get("audio")
    # several tracks' audio of the region (job.json's sources "stem:<name>", in the order they were given)
    stems = tuple((role.split(":", 1)[1], path) for role, path in paths.items() if role.startswith("stem:"))
    if any(path is not None and not path.is_file() for path in (midi, audio, *(p for _, p in stems))):
        return None
    if midi is None and audio is None and not stems:
        return None
    info = record.region
    meter = Meter.parse(info.meter) if info.meter else Meter()
    first = midi or audio
    return DawRegion(
        audio_path=audio,
        midi_path=midi,
        start_beats=info.start_beats or 0.0,
        length_beats=info.length_beats or meter.quarters_per_bar,
        tempo_bpm=info.tempo_bpm or 120.0,
        meter=meter,
        track=first.stem if first is not None else "-".join(name for name, _ in stems),
        stems=stems,
    )


def region_after_variant(record: JobRecord, item: VariantItem) -> DawRegion | None:
    """The region followed by the variant (``full.mid`` for a MIDI job, ``full.wav`` for an audio job), on the
    same timeline as the original region, to continue from; for an accompaniment, the region and its parts together
    (the same bars)."""
    role = "full_midi" if record.kind == "midi" else "full_audio"
    path = item.files.get(role)
    if path is None or not path.is_file():
        return None
    info = record.region
    meter = Meter.parse(info.meter) if info.meter else Meter()
    region_beats = info.length_beats or 0.0
    added = record.params.bars * meter.quarters_per_bar if record.mode == "continue" else 0.0
    return DawRegion(
        audio_path=path if role == "full_audio" else None,
        midi_path=path if role == "full_midi" else None,
        start_beats=info.start_beats or 0.0,
        length_beats=region_beats + added if region_beats else meter.quarters_per_bar,
        tempo_bpm=info.tempo_bpm or 120.0,
        meter=meter,
        track=_after_name(record, item),
    )


def _after_name(record: JobRecord, item: VariantItem) -> str:
    """``verse + v01``; an accompaniment (the region and its parts at once): ``verse + v01 (bass, drums)``."""
    name = f"{region_name(record)} + {item.variant_id}"
    return f"{name} ({', '.join(item.parts)})" if record.mode == "accompany" and item.parts else name
