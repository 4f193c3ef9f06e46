"""The session's Segue Link plugins (a part of :class:`gui.core.session.Session`): the instances the Connections panel
lists (connected or not), and "Play in DAW", which plays a variant through the plugin on the region's track in
sync with the DAW (bridge/link.py). Runs on the GUI thread like the rest of the session; errors become messages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bridge.jobs import load_job
from bridge.link import LinkChanged, LinkEvent, LinkFailed, LinkLoaded, LinkPlaySent
from engine.errors import SegueError
from gui.core.models import LinkPluginRow
from gui.core.session_part import SessionPart

if TYPE_CHECKING:
    pass


class SessionPlugins(SessionPart):
    """Play in DAW through Segue Link, and the plugin list."""

    def can_play_in_daw(self) -> bool:
        """Whether a Segue Link plugin is connected now (Play in DAW shows only then)."""
        return any(row.connected for row in self.models.link.value.plugins)

    def play_in_daw(self, variant_id: str) -> None:
        """Play this variant through the Segue Link plugin on the region's track (else the latest one), from
        where the variant belongs on the DAW's timeline, whenever the DAW plays there."""
        state = self.models.variants.value
        item, job_dir = state.item(variant_id), state.job_dir
        endpoint = self._links.link
        if item is None or job_dir is None:
            return
        if endpoint is None or not self.can_play_in_daw():
            self.say("warning", "No Segue Link plugin is connected: put Segue Link on a track in your DAW first.")
            return
        try:
            record = load_job(job_dir)
            variant = next(v for v in record.variants if v.id == item.variant_id)
            region = self.models.region.value.region
            endpoint.play_variant(job_dir, record, variant, track=region.track if region is not None else "")
        except StopIteration:
            self.say("error", f"Cannot play in the DAW: {variant_id} is no longer in its job")
        except SegueError as e:
            self.say("error", f"Cannot play in the DAW: {e}")

    def refresh_plugins(self) -> None:
        """The Connections list: every instance seen since the link opened, connected while it says hello."""
        endpoint = self._links.link
        live = endpoint.registry.instances() if endpoint is not None else ()
        earlier = self.models.link.value.plugins if endpoint is not None else ()
        seen = {row.instance_id: LinkPluginRow(row.instance_id, row.track, False, row.sample_rate) for row in earlier}
        for instance in live:
            seen[instance.instance_id] = LinkPluginRow(
                instance.instance_id, instance.track_name, True, instance.sample_rate
            )
        self.models.link.update(plugins=tuple(seen.values()))

    def _on_link_event(self, event: LinkEvent) -> None:
        if isinstance(event, LinkChanged):
            self.refresh_plugins()
        elif isinstance(event, LinkPlaySent):
            track = event.instance.track_name or event.instance.instance_id
            self.say(
                "info",
                f"Sent {Path(event.audio_path).name} to Segue Link on {track!r}: it plays from beat "
                f"{event.position_beats:g} when the DAW plays there",
            )
        elif isinstance(event, LinkLoaded):
            self.say("info", f"Segue Link loaded {Path(event.audio_path).name} ({event.seconds:.1f} s)")
        elif isinstance(event, LinkFailed):
            self.say("error", f"Segue Link could not play it: {event.message}")
