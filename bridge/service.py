"""The bridge's core, shared by ``segue bridge`` and the GUI (:mod:`gui.core.session`): no Qt, no OSC, no sockets.

:class:`BridgeService` holds the last region the DAW sent, runs generation jobs one at a time on its own worker
thread (further requests wait in a queue), keeps a :class:`~engine.api.CancelToken` per running job, and tells
its listeners what happens as frozen event values (:class:`JobStarted`, :class:`JobProgress`, :class:`JobDone`,
:class:`JobFailed`, :class:`Placement`, :class:`RequestFailed`).

Threads: listeners are called **on the service's worker thread**, on its placement thread (for
:meth:`BridgeService.submit_choice`) or, for :meth:`BridgeService.choose`, on the caller's thread. A listener must
return quickly and must not touch GUI objects directly: the Qt adapter turns events into signals, the OSC layer
sends a datagram. An exception in a listener is logged and ignored.

Placement: when a job is done the service emits one :class:`Placement` per file of the variants that the
placement policy picks (``first``, ``all`` or ``none``), and :meth:`BridgeService.choose` emits them for one
variant on request. :meth:`BridgeService.submit_choice` does the same without blocking its caller (the OSC
dispatcher): it checks the request at once, then copies the files on the placement thread, so a big copy delays
neither OSC handling nor a running job; a failure there becomes a :class:`RequestFailed` for the requester.

A file goes to ``region start + place_at`` beats on the DAW timeline (the bar after the region when continuing,
the region's start when accompanying); seconds are those beats at the region's tempo, from the
timeline's zero (the region's tempo is assumed throughout: no tempo map). Events point at named copies
in ``<job_dir>/place/`` (:mod:`bridge.placement`: WAVs with a BWF time reference when the DAW position is known;
stems are copied there too, without events), or at the job's own files when the copies cannot be written.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from bridge.events import (
    BridgeEvent,
    DawRegion,
    JobDone,
    JobFailed,
    JobProgress,
    JobStarted,
    Listener,
    Origin,
    Placement,
    RequestFailed,
    TransportProvider,
    TransportState,
)
from bridge.jobs import (
    JobRecord,
    VariantRecord,
    load_job,
    recover_jobs,
)
from bridge.listeners import Listeners
from bridge.placement import PlacedFile, place_or_original
from bridge.runner import create_job, ensure_failed, execute_job, failure_message, log_quietly, record_cancelled
from bridge.worker import QueueWorker
from engine.api import CancelToken, Engine, GenerationParams, GenerationRequest, Mode, Prompt
from engine.errors import BadInputError, SegueError
from engine.provenance.record import ProvenanceSettings

log = logging.getLogger(__name__)

PlacePolicy = Literal["first", "all", "none"]
PLACE_POLICIES: tuple[str, ...] = get_args(PlacePolicy)

MAX_WAITING_JOBS = 8
MAX_WAITING_PLACEMENTS = 16
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_PLACED_ROLES = ("audio", "midi")  # the file roles that get a Placement event, in sending order (stems: files only)


Placer = Callable[[Path, JobRecord, VariantRecord, str, float | None], list[PlacedFile]]
"""``placer(job_dir, record, variant, track, position_seconds)``: writes a variant's files for the DAW and says
where they are (:func:`bridge.placement.place_or_original`; tests inject slow or failing ones)."""


@dataclass(frozen=True)
class _Pending:
    request: GenerationRequest
    region: DawRegion
    origin: Origin


@dataclass(frozen=True)
class _Choice:
    """A checked ``/segue/choose``: the variant to place and where the position comes from."""

    job_dir: Path
    record: JobRecord
    variant: VariantRecord
    region: DawRegion | None
    origin: Origin


class BridgeService:
    """Regions in, jobs out, one at a time. Call :meth:`start` before submitting and :meth:`close` at the end."""

    def __init__(
        self,
        engine: Engine,
        out_dir: Path,
        place: PlacePolicy = "first",
        model: str = "default",
        transport: TransportProvider | None = None,
        placer: Placer = place_or_original,
    ) -> None:
        if place not in PLACE_POLICIES:
            raise BadInputError(f"place must be one of {', '.join(PLACE_POLICIES)}, got {place!r}")
        self.engine = engine
        self.out_dir = out_dir
        self.place = place
        self.model = model
        # what the files say about where they came from (None: the provenance settings file); the app sets it
        self.provenance: ProvenanceSettings | None = None
        self._transport = transport
        self._placer = placer
        self._lock = threading.Lock()
        self._listeners: Listeners[BridgeEvent] = Listeners("a bridge listener")
        self._region: DawRegion | None = None
        self._tokens: dict[str, CancelToken] = {}  # running job id -> its token
        self._regions: dict[str, DawRegion] = {}  # job id -> the region it was made from (this session)
        self._worker: QueueWorker[_Pending] = QueueWorker("segue-bridge-worker", self._run_safely)
        self._place_worker: QueueWorker[_Choice] = QueueWorker("segue-place", self._place_choice)
        self._placing = 0  # choices queued or being placed
        self._closed = False

    # -- listeners and state ---------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event from now on (on the worker thread; see the module doc)."""
        self._listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    @property
    def region(self) -> DawRegion | None:
        return self._region

    def set_region(self, region: DawRegion) -> None:
        """Remember the region that the next :meth:`generate` uses."""
        if region.audio_path is None and region.midi_path is None and not region.stems:
            raise BadInputError("a region needs an audio file, a MIDI file, or both (or its tracks' audio as stems)")
        self._region = region
        log.info(
            "region: %s (%g beats at %g, %g BPM)",
            region.track or "?",
            region.length_beats,
            region.start_beats,
            region.tempo_bpm,
        )

    def transport(self) -> TransportState:
        """The provider's state, or the default: the last region's tempo, stopped, at 0, source ``"none"``."""
        if self._transport is not None:
            return self._transport()
        region = self._region
        return TransportState(tempo_bpm=region.tempo_bpm if region is not None else 0.0)

    @property
    def running_jobs(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._tokens)

    # -- jobs ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Recover the jobs a killed Segue left ``running`` in the output folder (:func:`bridge.jobs.recover_jobs`),
        then start the worker thread (once)."""
        if not self._worker.started:
            recover_jobs(self.out_dir)
        with self._lock:
            if self._closed:
                raise RuntimeError("the bridge service is closed")
            if not self._worker.started:
                self._worker.start()
                self._place_worker.start()

    def generate(self, mode: Mode, bars: int, variants: int, origin: Origin = None) -> GenerationRequest:
        """Queue a job on the last region with the engine's defaults for everything else and return its request;
        :class:`BadInputError` if that cannot be. :meth:`submit` takes every parameter (the OSC layer and the GUI
        use it). Returns at once: the job folder is made and the engine runs on the worker thread."""
        return self.submit(GenerationParams(mode=mode, bars=bars, variants=variants), origin=origin)

    def submit(self, params: GenerationParams, model: str | None = None, origin: Origin = None) -> GenerationRequest:
        """Queue a job with these parameters (checked by :class:`~engine.api.GenerationParams`) on the last region,
        optionally with another model than the service's; :class:`BadInputError` if that cannot be."""
        region = self._region
        if region is None:
            raise BadInputError("no region yet: send /segue/region before /segue/generate")
        prompt = Prompt(
            midi_path=region.midi_path,
            audio_path=region.audio_path,
            tempo_bpm=region.tempo_bpm,
            meter=region.meter,
            length_beats=region.length_beats,
            start_beats=region.start_beats,
            stems=region.stems,
        )
        request = GenerationRequest(prompt=prompt, params=params, model=model or self.model)
        with self._lock:
            if self._closed or not self._worker.started:
                raise BadInputError("the bridge is not running (start() was not called, or it is shutting down)")
            if self._worker.waiting() >= MAX_WAITING_JOBS:
                raise BadInputError(f"{MAX_WAITING_JOBS} jobs are already waiting; wait or cancel one")
            self._worker.put(_Pending(request, region, origin))
        log.info(
            "queued a %s job: %d bar(s), %d variant(s), parts %s, output %s",
            params.mode,
            params.bars,
            params.variants,
            ",".join(params.parts) or "default",
            params.output,
        )
        return request

    def cancel(self, job_id: str) -> None:
        """Ask the running job ``job_id`` to stop; :class:`BadInputError` if no such job is running."""
        with self._lock:
            token = self._tokens.get(job_id)
        if token is None:
            raise BadInputError(f"no running job {job_id!r}; running: {', '.join(self.running_jobs) or 'none'}")
        token.cancel()
        log.info("job %s: cancel requested", job_id)

    def choose(self, job_id: str, variant: int, origin: Origin = None) -> list[Placement]:
        """Place variant number ``variant`` (1-based) of a done job now, on this thread; emit and return the
        placements. Blocks while the files are copied: from a thread that must stay responsive use
        :meth:`submit_choice`."""
        choice = self._check_choice(job_id, variant, origin)
        placements = self._placements(choice.job_dir, choice.record, [choice.variant], choice.region, origin)
        for placement in placements:
            self._emit(placement)
        return placements

    def submit_choice(self, job_id: str, variant: int, origin: Origin = None) -> None:
        """Like :meth:`choose`, but returns at once: the request is checked here (:class:`BadInputError` for an
        unknown job or variant, a job that is not done, or too many waiting placements) and the files are copied
        on the placement thread, which emits the :class:`Placement` events, or a :class:`RequestFailed` for
        ``origin`` when placing fails."""
        choice = self._check_choice(job_id, variant, origin)
        with self._lock:
            if self._closed or not self._place_worker.started:
                raise BadInputError("the bridge is not running (start() was not called, or it is shutting down)")
            if self._placing >= MAX_WAITING_PLACEMENTS:
                raise BadInputError(f"{MAX_WAITING_PLACEMENTS} placements are already waiting; try again shortly")
            self._placing += 1
            self._place_worker.put(choice)
        log.info("job %s %s: placement queued", job_id, choice.variant.id)

    def _check_choice(self, job_id: str, variant: int, origin: Origin) -> _Choice:
        """What to place for ``/segue/choose job_id variant``; reads only job.json. :class:`BadInputError` if
        there is nothing to place."""
        if not _JOB_ID.fullmatch(job_id):
            raise BadInputError(f"{job_id!r} is not a job id (like 20260101-120000-region-continue-3f2a)")
        job_dir = self.out_dir / job_id
        if not job_dir.is_dir():
            raise BadInputError(f"no job {job_id} in {self.out_dir}")
        record = load_job(job_dir)
        if record.status != "done":
            raise BadInputError(f"job {job_id} is {record.status}, not done; nothing to place")
        wanted = f"v{variant:02d}"
        chosen = [v for v in record.variants if v.id == wanted]
        if not chosen:
            have = ", ".join(str(i + 1) for i in range(len(record.variants)))
            raise BadInputError(f"job {job_id} has no variant {variant}; it has {have}")
        with self._lock:
            region = self._regions.get(job_id)
        return _Choice(job_dir, record, chosen[0], region, origin)

    def close(self, timeout: float = 5.0) -> None:
        """Cancel the running job, drop waiting ones and stop the worker. Safe to call twice."""
        with self._lock:
            self._closed = True
            tokens = list(self._tokens.values())
        dropped = self._worker.drop_waiting()
        if dropped:
            log.info("dropped %d waiting job request(s)", dropped)
        for token in tokens:
            token.cancel()
        deadline = time.monotonic() + timeout
        if not self._worker.stop(timeout):
            log.warning("the running job did not stop within %.1f s; leaving it", timeout)
        if not self._place_worker.stop(max(0.0, deadline - time.monotonic())):  # after the placements already asked for
            log.warning("placements were still being written after %.1f s; leaving them", timeout)

    # -- the worker ------------------------------------------------------------------------------------------

    def _run_safely(self, pending: _Pending) -> None:
        try:
            self._run(pending)
        except BaseException as e:  # the worker survives anything one job does (_run already reported it)
            log_quietly("the bridge worker failed on a job", e)

    def _run(self, pending: _Pending) -> None:
        try:
            record = create_job(pending.request, self.out_dir, self.engine.name)
        except BaseException as e:  # no job folder exists: the requester hears why
            log.warning("cannot start a job: %s", failure_message(e))
            self._emit(RequestFailed(failure_message(e), origin=pending.origin))
            return
        job_id = record.id
        job_dir = self.out_dir / job_id
        token = CancelToken()
        with self._lock:
            closing = self._closed
            if not closing:
                self._tokens[job_id] = token
                self._regions[job_id] = pending.region
        if closing:
            record_cancelled(job_dir, record, "the bridge shut down before the job started")
            return
        self._emit(JobStarted(job_id, job_dir, origin=pending.origin))

        def on_progress(fraction: float, message: str) -> None:
            self._emit(JobProgress(job_id, fraction, message, origin=pending.origin))

        try:
            record = execute_job(
                self.engine, pending.request, self.out_dir, record, on_progress, token, self.provenance
            )
        except BaseException as e:  # BadInputError (recorded by execute_job), MemoryError, anything at all
            record = ensure_failed(job_dir, record, e)
        finally:
            with self._lock:
                self._tokens.pop(job_id, None)
        if record.status != "done":
            message = record.error.message if record.error is not None else record.status
            kind = record.error.type if record.error is not None else ""
            status: Literal["failed", "cancelled"] = "cancelled" if record.status == "cancelled" else "failed"
            self._emit(JobFailed(job_id, message, status, error_type=kind, origin=pending.origin))
            return
        self._emit(JobDone(job_id, job_dir / "job.json", origin=pending.origin))
        chosen = {"first": record.variants[:1], "all": record.variants, "none": ()}[self.place]
        for placement in self._placements(job_dir, record, chosen, pending.region, pending.origin):
            self._emit(placement)

    def _place_choice(self, choice: _Choice) -> None:
        what = f"job {choice.record.id} {choice.variant.id}"
        try:
            placements = self._placements(choice.job_dir, choice.record, [choice.variant], choice.region, choice.origin)
        except SegueError as e:
            log.warning("%s: placing failed (asked by %s): %s", what, _who(choice.origin), e)
            self._emit(RequestFailed(f"{what}: placing failed: {e}", origin=choice.origin))
            return
        except Exception as e:  # the placement thread must survive anything one placement does
            log.exception("%s: placing failed (asked by %s)", what, _who(choice.origin))
            self._emit(RequestFailed(f"{what}: placing failed ({type(e).__name__}: {e})", origin=choice.origin))
            return
        finally:
            with self._lock:
                self._placing -= 1
        for placement in placements:
            self._emit(placement)

    def _placements(
        self,
        job_dir: Path,
        record: JobRecord,
        variants: tuple[VariantRecord, ...] | list[VariantRecord],
        region: DawRegion | None,
        origin: Origin,
    ) -> list[Placement]:
        start = region.start_beats if region is not None else (record.region.start_beats or 0.0)
        tempo = region.tempo_bpm if region is not None else (record.region.tempo_bpm or 0.0)
        track = (region.track if region is not None else "") or "Segue"
        offset = record.place_at.beats if record.place_at is not None else 0.0
        position_beats = start + offset
        tempo_known = tempo > 0 and math.isfinite(tempo)
        position_seconds = position_beats * 60.0 / tempo if tempo_known else 0.0
        # the DAW timeline position is known when the DAW sent the region's start (now or in job.json)
        known = tempo_known and (region is not None or record.region.start_beats is not None)
        placements = []
        for variant in variants:
            placed = self._placer(job_dir, record, variant, track, position_seconds if known else None)
            by_role = {p.role: p for p in placed}
            for role in _PLACED_ROLES:
                if role not in by_role:
                    continue
                placements.append(
                    Placement(
                        job_id=record.id,
                        variant_id=variant.id,
                        file_path=by_role[role].path,
                        position_beats=position_beats,
                        position_seconds=position_seconds,
                        track_name=f"{track} (Segue {variant.id})",
                        kind=by_role[role].kind,
                        origin=origin,
                        region_track=region.track if region is not None else "",
                    )
                )
        return placements

    def _emit(self, event: BridgeEvent) -> None:
        self._listeners.emit(event)


def _who(origin: Origin) -> str:
    return f"{origin[0]}:{origin[1]}" if origin is not None else "a local caller"
