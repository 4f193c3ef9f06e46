"""The app's session: the bridge service, the embedded OSC server, the MIDI clock, the engine and the player,
and the panel models they feed. No Qt: :class:`gui.adapters.QtEventPump` carries events from the foreign
threads to :meth:`Session.apply` on the GUI thread, and the views call the action methods.

Threads: every public method runs on the GUI thread. What happens elsewhere (service jobs, OSC datagrams, the
engine opening, the player) arrives as a frozen event through ``post``, which must hand it to the GUI thread.
Errors never escape an action: they become a :class:`gui.core.models.Message` for the user.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge import events
from bridge.adapters import DawAdapter, open_adapter
from bridge.daemon import MidiClockIn, combined_transport
from bridge.jobs import list_jobs
from bridge.link import LinkChanged, LinkEndpoint, LinkFailed, LinkLoaded, LinkPlaySent, link_transport
from bridge.midiports import input_names
from bridge.osc import OscServer
from bridge.service import BridgeService, PlacePolicy
from bridge.watch import WatchFolder
from engine import entrypoints
from engine.api import GenerationParams, Meter
from engine.errors import SegueError
from gui.core import catalog
from gui.core.audition import (
    AudioOutput,
    AuditionEvent,
    AuditionFailed,
    AuditionStarted,
    AuditionStopped,
    Player,
    SoundDeviceOutput,
)
from gui.core.daw_link import OscHeard, OscRejected, RegionFromDaw, WatchedOscBridge
from gui.core.engines import EngineFactory, EngineHandle, EngineState
from gui.core.models import CONTROLS, MESSAGES_KEPT, SAVED_FORM_FIELDS, JobRow, Message, Models
from gui.core.readers import RegionAudioRead, ThumbnailsRead
from gui.core.session_links import SessionLinks
from gui.core.session_plugins import SessionPlugins
from gui.core.session_region import SessionRegion, TapTempo
from gui.core.session_variants import SessionVariants, take_name
from gui.core.settings import GuiSettings, save_settings

log = logging.getLogger(__name__)


SessionEvent = (
    events.BridgeEvent
    | AuditionEvent
    | EngineState
    | OscHeard
    | OscRejected
    | RegionFromDaw
    | ThumbnailsRead
    | RegionAudioRead
    | LinkPlaySent
    | LinkLoaded
    | LinkFailed
    | LinkChanged
)
Post = Callable[[object], None]


@dataclass(frozen=True)
class SessionDeps:
    """What the session opens; tests replace the parts that need devices, sockets or torch."""

    engine_factory: EngineFactory = entrypoints.open_engine
    output_factory: Callable[[], AudioOutput] = SoundDeviceOutput
    midi_inputs: Callable[[], list[str]] = input_names
    clock_factory: Callable[[str], MidiClockIn] = MidiClockIn
    adapter_factory: Callable[[str, tuple[str, int]], DawAdapter] = open_adapter
    osc: bool = True  # open the embedded OSC server


@dataclass
class _Links:
    osc: WatchedOscBridge | None = None
    server: OscServer | None = None
    adapter: DawAdapter | None = None
    clock: MidiClockIn | None = None
    watch: WatchFolder | None = None
    link: LinkEndpoint | None = None  # the Segue Link plugins' addresses on the OSC server
    extra: list[Callable[[], None]] = field(default_factory=list)


class Session(SessionLinks, SessionRegion, SessionVariants, SessionPlugins):
    """Everything behind the window. Call :meth:`start` once, :meth:`close` at the end."""

    def __init__(
        self,
        settings: GuiSettings,
        settings_path: Path | None = None,
        deps: SessionDeps | None = None,
        post: Post | None = None,
        saved: GuiSettings | None = None,
    ) -> None:
        """``saved``: the settings as stored, when ``settings`` carries this run's command-line overrides
        (``--out``, ``--engine``, ``--osc-port``): those are not written back unless changed in the window."""
        self.settings = settings
        self.settings_path = settings_path
        self._overrides = {
            f.name: (getattr(settings, f.name), getattr(saved, f.name))
            for f in dataclasses.fields(GuiSettings)
            if saved is not None and getattr(settings, f.name) != getattr(saved, f.name)
        }
        self.deps = deps or SessionDeps()
        self.models = Models()
        self._post: Post = post or self.apply
        self.out_dir = settings.jobs_dir().expanduser().resolve()
        self.engine = EngineHandle(self.deps.engine_factory, self._post)
        place: PlacePolicy = "first" if settings.place_first else "none"  # by default: audition, then place
        self.service = BridgeService(self.engine, self.out_dir, place=place, transport=self.transport)
        self.service.add_listener(self._post)
        self.service.provenance = self._provenance()
        self.player = Player(self.deps.output_factory, self.transport, self._post)
        self._links = _Links()
        self._started = False
        self._closed = False
        self._cancel_on_start = 0  # waiting jobs to stop as they start
        self._last_watch_region: events.DawRegion | None = None
        self.tapper = TapTempo()
        self._placed: dict[tuple[str, str], list[events.Placement]] = {}  # the files sent for the latest placement
        self._init_models()

    def _init_models(self) -> None:
        s = self.settings
        m = self.models
        m.link.update(daw=s.daw, osc_host=s.osc_host, osc_port=s.osc_port, daw_host=s.daw_host, daw_port=s.daw_port)
        m.clock.update(port=s.midi_clock_in)
        m.engine.update(spec=s.engine, token=s.token)
        m.form.update(**{name: getattr(s, name) for name in SAVED_FORM_FIELDS})
        m.variants.update(loop=s.loop, region_first=s.region_first)
        self.player.set_loop(s.loop)

    # -- life ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.service.start()
        self.engine.open(self.settings.engine, self.settings.token)
        self.apply_link()
        self.refresh_ports()
        if self.settings.midi_clock_in:
            self.set_clock_port(self.settings.midi_clock_in)
        if self.settings.watch_dir:
            self.set_watch_dir(self.settings.watch_dir)
        self.refresh_history(show_latest=True)

    def close(self) -> None:
        """Save the settings, stop audition, the links and the service (cancels a running job). Safe twice."""
        if self._closed:
            return
        self._closed = True
        self.save()
        self.player.close()
        self._close_links()
        self.service.close(timeout=2.0)
        self.engine.close()

    def save(self) -> None:
        if self.settings_path is None:
            return
        stored = self.settings
        for name, (override, original) in self._overrides.items():
            if getattr(stored, name) == override:  # still this run's override: keep what was stored
                stored = dataclasses.replace(stored, **{name: original})
        try:
            save_settings(self.settings_path, stored)
        except OSError as e:
            self.say("warning", f"Settings could not be saved to {self.settings_path}: {e.strerror or e}")

    def _remember(self, **changes: Any) -> None:
        self.settings = dataclasses.replace(self.settings, **changes)

    def say(self, level: str, text: str) -> None:
        log.log(logging.ERROR if level == "error" else logging.INFO, "%s", text)
        message = Message(level, text)  # type: ignore[arg-type]
        self.models.message.set(message)
        self.models.messages.set((*self.models.messages.value, message)[-MESSAGES_KEPT:])  # every one stays reachable

    # -- events from other threads, applied on the GUI thread ------------------------------------------------

    def apply(self, event: object) -> None:
        if self._closed:  # late news from a worker thread: the window may be gone
            log.debug("closed: dropped %r", event)
            return
        handler = self._HANDLERS.get(type(event))
        if handler is None:
            log.debug("no handler for %r", event)
            return
        try:
            handler(self, event)
        except Exception as e:  # a bad job folder must not take the window down
            log.exception("handling %s failed", type(event).__name__)
            self.say("error", f"Something went wrong while showing {type(event).__name__}: {e}")

    def _on_started(self, event: events.JobStarted) -> None:
        jobs = self.models.jobs.value
        waiting = max(0, jobs.waiting - 1) if event.origin is None else jobs.waiting
        rows = (*[r for r in jobs.rows if r.job_id != event.job_id], JobRow(event.job_id, "running", 0.0, "starting"))
        self.models.jobs.set(dataclasses.replace(jobs, rows=rows[-8:], waiting=waiting))
        self.refresh_history()
        if event.origin is None and self._cancel_on_start > 0:  # Cancel was pressed while it waited
            self._cancel_on_start -= 1
            try:
                self.service.cancel(event.job_id)
            except SegueError:  # it finished before this news arrived
                return
            self._set_row(event.job_id, message="cancelling...")

    def _on_progress(self, event: events.JobProgress) -> None:
        self._set_row(event.job_id, status="running", fraction=event.fraction, message=event.message)

    def _on_done(self, event: events.JobDone) -> None:
        self._set_row(event.job_id, status="done", fraction=1.0, message="done")
        self.refresh_history()
        self.open_job(event.job_json_path.parent, show_region=False)  # its region is the one shown
        count = len(self.models.variants.value.items)
        self.say("info", f"{count} variant(s) ready. Play them, star the keepers, drag one into your DAW.")

    def _on_failed(self, event: events.JobFailed) -> None:
        self._set_row(event.job_id, status=event.status, message=event.message)
        self.refresh_history()
        if event.status == "cancelled":
            self.say("info", "Generation cancelled.")
        else:
            self.engine.check()  # an engine process that died shows as failed
            self.say("error", f"Generation failed: {event.message}")

    def _on_request_failed(self, event: events.RequestFailed) -> None:
        if event.origin is None:
            jobs = self.models.jobs.value
            self.models.jobs.update(waiting=max(0, jobs.waiting - 1))
        self.say("error", f"Could not start: {event.message}")

    def _on_placement(self, event: events.Placement) -> None:
        """One message for a variant's placement that names every file sent (they arrive one by one)."""
        key = (event.job_id, event.variant_id)
        sent = [*self._placed.get(key, []), event]
        self._placed = {key: sent}
        where = self.models.link.value.peer or "the DAW"
        files = "; ".join(f"{p.file_path.name} ({p.kind}, track {p.track_name!r})" for p in sent)
        self.say("info", f"Sent {event.variant_id} to {where} at beat {event.position_beats:g}: {files}")

    def _set_row(self, job_id: str, **changes: Any) -> None:
        jobs = self.models.jobs.value
        rows = tuple(dataclasses.replace(r, **changes) if r.job_id == job_id else r for r in jobs.rows)
        if not any(r.job_id == job_id for r in rows):
            rows = (*rows, dataclasses.replace(JobRow(job_id, "running"), **changes))
        self.models.jobs.update(rows=rows)

    def _on_engine(self, state: EngineState) -> None:
        self.models.engine.update(status=state.status, name=state.name, models=state.models, message=state.message)
        if state.status == "failed":
            self.say("error", f"Engine: {state.message}")

    def _on_heard(self, event: OscHeard) -> None:
        link = self.models.link.value
        peer = link.peer if event.from_plugin else f"{event.sender[0]}:{event.sender[1]}"
        status = "connected" if link.status in ("listening", "connected") else link.status
        self.models.link.update(last_message=event.summary, last_message_time=event.when, peer=peer, status=status)

    def _on_rejected(self, event: OscRejected) -> None:
        self.say("warning", f"The DAW sent something Segue could not use: {event.message}")

    def _on_daw_region(self, event: RegionFromDaw) -> None:
        self._show_region(event.region, "daw")

    def _on_audition(self, event: AuditionEvent) -> None:
        if isinstance(event, AuditionStarted):
            waited = f" (started on the DAW's bar after {event.waited_seconds:.1f} s)" if event.waited_seconds else ""
            name = take_name(event.key, self.models.variants.value)
            self.models.variants.update(
                playing=event.key, audition_message=f"Playing {name}{waited}", take_seconds=event.seconds
            )
        elif isinstance(event, AuditionStopped):
            if self.models.variants.value.playing == event.key:
                self.models.variants.update(playing="", audition_message="")
        elif isinstance(event, AuditionFailed):
            self.models.variants.update(playing="", audition_message=event.message)
            self.say("warning", event.message)

    def _on_thumbnails(self, event: ThumbnailsRead) -> None:
        state = self.models.variants.value
        items = tuple(
            dataclasses.replace(i, midi=event.midi, audio=event.audio) if i.key == event.key else i for i in state.items
        )
        self.models.variants.update(items=items)

    _HANDLERS: dict[type, Callable[[Session, Any], None]] = {
        events.JobStarted: _on_started,
        events.JobProgress: _on_progress,
        events.JobDone: _on_done,
        events.JobFailed: _on_failed,
        events.RequestFailed: _on_request_failed,
        events.Placement: _on_placement,
        EngineState: _on_engine,
        OscHeard: _on_heard,
        OscRejected: _on_rejected,
        RegionFromDaw: _on_daw_region,
        ThumbnailsRead: _on_thumbnails,
        RegionAudioRead: SessionRegion._on_region_audio,
        AuditionStarted: _on_audition,
        AuditionStopped: _on_audition,
        AuditionFailed: _on_audition,
        LinkPlaySent: SessionPlugins._on_link_event,
        LinkLoaded: SessionPlugins._on_link_event,
        LinkFailed: SessionPlugins._on_link_event,
        LinkChanged: SessionPlugins._on_link_event,
    }

    # -- transport ---------------------------------------------------------------------------------------------

    def transport(self) -> events.TransportState:
        """The DAW's transport from a Segue Link plugin, the MIDI clock and/or the DAW adapter (any thread)."""
        provider = combined_transport(self._links.clock, self._links.adapter)
        if self._links.link is not None:
            provider = link_transport(self._links.link.registry, provider)
        if provider is not None:
            return provider()
        region = self.service.region if self._started else None
        return events.TransportState(tempo_bpm=region.tempo_bpm if region is not None else 0.0)

    def tick(self) -> None:
        """Refresh the transport display and the playhead (a timer calls this a few times a second); show a region
        that reached the service another way (the watched folder)."""
        latest = self.service.region
        if latest is not None and latest is not self.models.region.value.region and self._links.watch is not None:
            if latest is not self._last_watch_region:
                self._last_watch_region = latest
                self._show_region(latest, "daw")
        self.models.playhead.set(self.player.position_seconds() if self.models.variants.value.playing else 0.0)
        self.refresh_plugins()
        state = self.transport()
        region = self.models.region.value.region
        meter = region.meter if region is not None else Meter()
        bar, beat = bar_and_beat(state.position_beats, meter)
        clock = self._links.clock
        self.models.clock.update(
            tempo_bpm=state.tempo_bpm,
            playing=state.playing,
            position_beats=state.position_beats,
            bar=bar,
            beat=beat,
            source=state.clock_source,
            connected=clock.connected if clock is not None else False,
        )

    # -- generate ------------------------------------------------------------------------------------------

    def update_form(self, **changes: Any) -> None:
        self.models.form.update(**changes)
        form = self.models.form.value
        self._remember(**{name: getattr(form, name) for name in SAVED_FORM_FIELDS})

    def new_seed(self) -> None:
        """A fresh random seed in the form (variants get seed, seed+1, ...)."""
        self.update_form(seed=random.randrange(0, 2**31 - 64))

    def generate(self, **overrides: Any) -> bool:
        """Queue a job on the region with the form's parameters (``overrides`` replace some). True if queued."""
        if self.models.region.value.region is None:
            self.say("warning", "Open a MIDI or audio file (or send a region from your DAW) first.")
            return False
        form = dataclasses.replace(self.models.form.value, **overrides)
        try:
            params = GenerationParams(
                mode=form.mode,  # type: ignore[arg-type]
                bars=form.bars,
                variants=form.variants,
                temperature=form.temperature,
                top_p=form.top_p,
                seed=form.seed,
                parts=form.parts if form.mode == "accompany" else (),  # kept in the form for the next accompany
                output=form.output,  # type: ignore[arg-type]
                **{name: getattr(form, name) for name in CONTROLS},
                part_density=form.part_density,
            )
            self.service.submit(params, model=form.model)
        except SegueError as e:
            self.say("error", f"Cannot generate: {e}")
            return False
        jobs = self.models.jobs.value
        self.models.jobs.update(waiting=jobs.waiting + 1)
        self.save()
        if form.mode == "accompany":
            parts = ", ".join(form.parts) or "the model's default parts"
            self.say("info", f"Generating {form.variants} accompaniment(s) ({parts}) under the region...")
        else:
            self.say("info", f"Generating {form.variants} variant(s) of {form.bars} bar(s)...")
        return True

    def clear_jobs(self) -> None:
        """Drop the finished jobs from the Generate panel's list (running ones stay; the History keeps them all)."""
        jobs = self.models.jobs.value
        self.models.jobs.update(rows=tuple(r for r in jobs.rows if r.status == "running"))

    def cancel(self, job_id: str | None = None) -> None:
        """Cancel ``job_id``, or every job: the running one now, the waiting ones as they start (the bridge's
        queue cannot drop them, so each is stopped at once and recorded as cancelled)."""
        running = self.service.running_jobs
        targets = [job_id] if job_id else list(running)
        waiting = 0 if job_id else self.models.jobs.value.waiting
        if not job_id:
            self._cancel_on_start = waiting
        if waiting:
            self.say("info", f"Cancelling{' the running job and' if targets else ''} {waiting} waiting job(s).")
        if not targets:
            if not waiting:
                self.say("info", "Nothing is running.")
            return
        for target in targets:
            try:
                self.service.cancel(target)
            except SegueError as e:
                self.say("warning", f"Cannot cancel: {e}")
                continue
            self._set_row(target, message="cancelling...")

    # -- history ------------------------------------------------------------------------------------------------

    def set_jobs_dir(self, folder: Path) -> None:
        """Keep the jobs in another folder from now on (kept in the settings); its History shows at once."""
        if self.service.running_jobs or self.models.jobs.value.waiting:
            self.say("warning", "Wait for the jobs to end (or cancel them) before changing the jobs folder.")
            return
        path = folder.expanduser().resolve()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self.say("error", f"The jobs folder cannot be {path}: {e.strerror or e}. Choose a folder you can write.")
            return
        self.out_dir = path
        self.service.out_dir = path
        self._remember(out_dir=str(path))
        self.save()
        self.models.variants.update(job=None, job_dir=None, items=(), selected="", slot_a="", slot_b="")
        self.refresh_history(show_latest=True)
        self.say("info", f"Jobs are kept in {path} from now on.")

    def refresh_history(self, show_latest: bool = False) -> None:
        rows = tuple(catalog.history_row(d, r) for d, r in reversed(list_jobs(self.out_dir)))
        self.models.history.update(rows=rows, out_dir=self.out_dir)
        if show_latest and self.models.variants.value.job is None:
            done = next((r for r in rows if r.status == "done"), None)
            if done is not None:
                self.open_job(done.job_dir)


def bar_and_beat(position_beats: float, meter: Meter) -> tuple[int, int]:
    """1-based bar and beat (in the meter's own beats) of a position in quarter notes."""
    position = max(0.0, position_beats)
    bar_len = meter.quarters_per_bar
    beat_len = 4.0 / meter.denominator
    bar = int(position // bar_len)
    beat = int((position - bar * bar_len + 1e-9) // beat_len)
    return bar + 1, min(beat, meter.numerator - 1) + 1
