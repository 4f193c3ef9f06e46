"""The session's variant actions (a part of :class:`gui.core.session.Session`): show a job's variants, audition them
(play, stop, loop, region first, A/B), star, make again, continue from one, place in the DAW, the files to drag.
Runs on the GUI thread like the rest of the session; errors become messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.jobs import load_job
from engine.api import Meter
from engine.errors import SegueError
from gui.core import catalog, library
from gui.core.audition import seconds_to_next_bar
from gui.core.models import CONTROLS, TempoSource, VariantItem, VariantsState, plays_together
from gui.core.readers import read_thumbnails
from gui.core.session_part import SessionPart

if TYPE_CHECKING:
    from bridge.events import DawRegion, TransportState


class SessionVariants(SessionPart):
    """The Variants panel's actions."""

    if TYPE_CHECKING:  # what it uses of the session's other parts

        def transport(self) -> TransportState: ...
        def _show_region(
            self, region: DawRegion, origin: str, tempo_source: TempoSource = "file", name: str = ""
        ) -> None: ...
        def generate(self, **overrides: Any) -> bool: ...
        def update_form(self, **changes: Any) -> None: ...
        def refresh_history(self, show_latest: bool = False) -> None: ...

    def open_job(self, job_dir: Path, show_region: bool = True) -> None:
        """Show a job's variants (a finished job, or one from the history) and, with ``show_region``, the region
        it was made from (its tempo and meter) above them, as the region to generate from next."""
        try:
            record = load_job(job_dir)
        except SegueError as e:
            self.say("error", f"Cannot open that job: {e}")
            return
        if show_region:
            region = catalog.region_of_job(record)
            if region is not None:
                self._show_region(region, "job", "job", name=catalog.region_name(record))
            else:
                self.say("info", f"The region files of {record.id} are gone; its variants are shown without it.")
        starred = set(self.settings.starred)
        notes = library.load_annotations(self.out_dir)
        items = tuple(
            dataclasses.replace(
                i, name=notes.get(i.key, {}).get("name", ""), notes=notes.get(i.key, {}).get("notes", "")
            )
            for i in catalog.variant_items(job_dir, record, starred, thumbnails=False)
        )
        current = self.models.variants.value
        if current.playing:
            self.player.stop()
        self.models.variants.set(
            dataclasses.replace(
                current,
                job=record,
                job_dir=job_dir,
                items=items,
                selected=items[0].variant_id if items else "",
                slot_a=items[0].variant_id if items else "",
                slot_b=items[1].variant_id if len(items) > 1 else "",
                playing="",
                muted=() if current.job_dir != job_dir else current.muted,  # a new job: every stem heard again
                soloed=() if current.job_dir != job_dir else current.soloed,
                audition_message="" if record.status == "done" else catalog.status_text(record),
            )
        )
        read_thumbnails(items, self._post)

    def select(self, variant_id: str) -> None:
        self.models.variants.update(selected=variant_id)

    def play(self, variant_id: str | None = None) -> None:
        state = self.models.variants.value
        item = state.item(variant_id or state.selected)
        if item is None:
            self.say("info", "Choose a variant to play.")
            return
        key, paths, gains = _take(item, state)
        if not paths:
            self.say("warning", f"{item.variant_id} has no audio to play; drag its MIDI into your DAW instead.")
            return
        meter = Meter.parse(state.job.region.meter) if state.job is not None and state.job.region.meter else None
        wait = seconds_to_next_bar(self.transport(), meter or Meter())
        waiting = f"V{item.number} starts on the DAW's next bar (in {wait:.1f} s)..." if wait > 0.05 else ""
        self.models.variants.update(selected=item.variant_id, audition_message=waiting or state.audition_message)
        self.player.play(key, paths, meter, gains)

    def toggle_stem(self, part: str, how: str) -> None:
        """Mute or solo (``how``) one stem in audition; what plays follows at once, from the same position."""
        state = self.models.variants.value
        field = "muted" if how == "mute" else "soloed"
        chosen = set(getattr(state, field))
        chosen.symmetric_difference_update({part})
        self.models.variants.update(**{field: tuple(sorted(chosen))})
        state = self.models.variants.value
        item = state.item(state.playing.split("+")[0]) if state.playing else None
        if item is not None and item.stems:
            key, paths, gains = _take(item, state)
            self.player.switch(key, paths, gains)

    def stop(self) -> None:
        self.player.stop()

    def toggle_play(self) -> None:
        """Space: stop what plays, else play the selected variant."""
        if self.models.variants.value.playing:
            self.stop()
        else:
            self.play()

    def set_loop(self, loop: bool) -> None:
        self.player.set_loop(loop)
        self.models.variants.update(loop=loop)
        self._remember(loop=loop)

    def set_region_first(self, region_first: bool) -> None:
        self.models.variants.update(region_first=region_first)
        self._remember(region_first=region_first)

    def set_slot(self, slot: str, variant_id: str) -> None:
        self.models.variants.update(**{"slot_a" if slot == "a" else "slot_b": variant_id})

    def toggle_ab(self) -> None:
        """Switch between the A and B variants, keeping the position (starts A when nothing plays)."""
        state = self.models.variants.value
        a, b = state.item(state.slot_a), state.item(state.slot_b)
        if a is None or b is None:
            self.say("info", "Mark two variants as A and B first.")
            return
        playing = state.playing.split("+")[0]
        target = b if playing == a.variant_id else a
        paths = catalog.audition_paths(target, state.region_first)
        if not state.playing:
            self.play(target.variant_id)
            return
        self.models.variants.update(selected=target.variant_id)
        self.player.switch(target.variant_id + ("+region" if state.playing.endswith("+region") else ""), paths)

    def toggle_star(self, variant_id: str) -> None:
        state = self.models.variants.value
        item = state.item(variant_id)
        if item is None:
            return
        starred = set(self.settings.starred)
        starred.symmetric_difference_update({item.key})
        self._remember(starred=tuple(sorted(starred)))
        items = tuple(dataclasses.replace(i, starred=i.key in starred) for i in state.items)
        self.models.variants.update(items=items)
        self.save()

    def regenerate(self, variant_id: str) -> None:
        """Make this variant again: its job's region and parameters, its seed, one variant."""
        state = self.models.variants.value
        item, job = state.item(variant_id), state.job
        if item is None or job is None or state.job_dir is None:
            return
        region = catalog.region_of_job(job)
        if region is None:
            self.say("error", "The region files of that job are gone; open the region again.")
            return
        self._show_region(region, "job", "job", name=catalog.region_name(job))
        p = job.params
        self.generate(
            mode=job.mode,
            bars=p.bars,
            variants=1,
            temperature=p.temperature,
            top_p=p.top_p,
            seed=item.seed,
            model=job.model,
            parts=p.parts,
            output=p.output,
            **{name: getattr(p, name) for name in CONTROLS},
            part_density=tuple(p.part_density.items()),  # a job from the CLI or OSC may have one; the form has none
        )

    def continue_from(self, variant_id: str) -> None:
        """The region followed by this variant becomes the region, and is continued; after an accompaniment, the
        region with its parts (full.mid / full.wav) is continued, in Continue mode (not accompanied again)."""
        state = self.models.variants.value
        item, job = state.item(variant_id), state.job
        if item is None or job is None:
            return
        region = catalog.region_after_variant(job, item)
        if region is None:
            self.say("error", f"{variant_id} has no full region file (full.mid / full.wav) to continue from.")
            return
        self._show_region(region, "variant")
        if job.mode == "accompany":  # the region and its new parts are the piece now: continue it, all parts
            self.update_form(mode="continue")
        self.generate()

    def can_place(self) -> bool:
        """Whether a placement has somewhere to go: a DAW that talked to Segue, a DAW port set, the watched folder,
        or (Talks to: Segue Link plugin) a connected plugin."""
        link = self.models.link.value
        through_plugin = link.daw == "link" and any(row.connected for row in link.plugins)
        return bool(
            link.peer or (link.daw_port and link.daw == "generic") or self._links.watch is not None or through_plugin
        )

    def place(self, variant_id: str) -> None:
        """Ask the DAW to put this variant on new tracks (what /segue/choose does)."""
        state = self.models.variants.value
        item = state.item(variant_id)
        if item is None or state.job is None:
            return
        if not self.can_place():
            self.say(
                "warning",
                "No DAW has talked to Segue yet. Send a region from your DAW's Segue script first "
                "(or drag the variant's files onto a track).",
            )
            return
        self._placed = {}  # a new placement: its message names its own files
        try:
            self.service.submit_choice(item.job_id, item.number)
        except SegueError as e:
            self.say("error", f"Cannot place: {e}")

    # -- keep and throw away --------------------------------------------------------------------------------------

    def annotate(self, variant_id: str, **fields: str) -> None:
        """Name a variant or write notes on it (``name=``, ``notes=``; "" clears), kept beside the jobs."""
        state = self.models.variants.value
        item = state.item(variant_id)
        if item is None:
            return
        try:
            library.save_annotation(self.out_dir, item.key, **{k: v.strip() for k, v in fields.items()})
        except OSError as e:
            self.say("error", f"The name could not be saved in {self.out_dir}: {e.strerror or e}")
            return
        changed = _annotated(item, {**{"name": item.name, "notes": item.notes}, **fields})
        self.models.variants.update(items=tuple(changed if i.key == item.key else i for i in state.items))

    def delete_variant(self, variant_id: str) -> None:
        """Move a variant's folder to the trash (Edit > Restore brings it back)."""
        state = self.models.variants.value
        item = state.item(variant_id)
        if item is None or state.job_dir is None:
            return
        if state.playing.split("+")[0] == variant_id:
            self.player.stop()
        try:
            entry = library.move_to_trash(self.out_dir, state.job_dir / variant_id, item.key)
        except SegueError as e:
            self.say("error", f"Cannot delete V{item.number}: {e}")
            return
        self.open_job(state.job_dir, show_region=False)
        self.say(
            "info", f"V{item.number} moved to the trash ({entry.trashed}). Edit > Restore (Ctrl+Z) brings it back."
        )

    def delete_job(self, job_dir: Path) -> None:
        """Move a whole job folder to the trash."""
        shown = self.models.variants.value.job_dir
        if shown is not None and shown.resolve() == job_dir.resolve():
            self.player.stop()
            self.models.variants.update(job=None, job_dir=None, items=(), selected="", slot_a="", slot_b="")
        try:
            entry = library.move_to_trash(self.out_dir, job_dir, job_dir.name)
        except SegueError as e:
            self.say("error", f"Cannot delete that job: {e}")
            return
        self.refresh_history()
        self.say("info", f"Job {job_dir.name} moved to the trash. Edit > Restore (Ctrl+Z) brings it back.")
        del entry

    def restore_last(self) -> None:
        """Bring back the latest thing deleted (a variant or a job)."""
        entries = library.trash_entries(self.out_dir)
        if not entries:
            self.say("info", "The trash is empty.")
            return
        entry = entries[-1]
        try:
            place = library.restore(self.out_dir, entry)
        except (SegueError, OSError) as e:
            self.say("error", f"Cannot restore {entry.label}: {e}")
            return
        self.refresh_history()
        job_dir = place.parent if "/" in entry.key else place
        self.open_job(job_dir, show_region=False)
        self.say("info", f"Restored {entry.label}.")

    def drag_paths(self, variant_id: str, what: str = "audio") -> list[Path]:
        """The existing files to drag out for ``what``: "audio", "midi", "stems" or "stem:<part>"."""
        item = self.models.variants.value.item(variant_id)
        return catalog.drag_paths(item, what) if item is not None else []


def _take(item: VariantItem, state: VariantsState) -> tuple[str, tuple[Path, ...], tuple[float, ...]]:
    """What plays for ``item``: its stems layered when some are muted or soloed, else its mix (or the region then
    it, or with it): (the take's key, the files, their gains or () to play them one after another)."""
    stems = item.stems
    if stems and (state.muted or state.soloed):
        parts = sorted(stems)
        audible = [p in state.soloed if state.soloed else p not in state.muted for p in parts]
        return f"{item.variant_id}+stems", tuple(stems[p] for p in parts), tuple(1.0 if a else 0.0 for a in audible)
    key = f"{item.variant_id}+region" if state.region_first and "full_audio" in item.files else item.variant_id
    return key, catalog.audition_paths(item, state.region_first), ()


def _annotated(item: VariantItem, fields: dict[str, str]) -> VariantItem:
    return dataclasses.replace(item, name=fields.get("name", "").strip(), notes=fields.get("notes", "").strip())


def take_name(key: str, state: VariantsState) -> str:
    """``"v02+region"`` -> ``"the region, then V2"`` (an accompaniment: ``"V2 with the region"``), as the
    audition line says it."""
    variant_id, _, extra = key.partition("+")
    item = state.item(variant_id)
    name = f"V{item.number}" if item is not None else variant_id
    if extra != "region":
        return name
    return f"{name} with the region" if plays_together(state) else f"the region, then {name}"
