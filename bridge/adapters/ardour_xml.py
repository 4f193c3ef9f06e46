"""The XML elements a new audio track adds to an Ardour 7 session (see :mod:`bridge.adapters.ardour_session`):
one ``<Source>`` per channel, a whole-file ``<Region>``, the placed region's ``<Playlist>`` and the track's
``<Route>``, with fresh ids; the session range grown to hold the region. Times in superclock ticks (:class:`Clock`).
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Clock:
    superclocks_per_second: int
    sample_rate: int

    def ticks(self, samples: int) -> int:
        """Samples -> superclock ticks (exact for the usual rates: 282 240 000 is a multiple of 44.1/48/96 kHz)."""
        return (samples * self.superclocks_per_second + self.sample_rate // 2) // self.sample_rate

    def pos(self, samples: int) -> str:
        return f"a{self.ticks(samples)}"

    def samples(self, value: str) -> int | None:
        """An audio-time ``a<ticks>`` (or ``a<ticks>@...``) in samples; None for beat time or junk."""
        match = re.fullmatch(r"a(-?\d+)(?:@.*)?", value.strip())
        if match is None:
            return None
        return (
            int(match.group(1)) * self.sample_rate + self.superclocks_per_second // 2
        ) // self.superclocks_per_second


class Ids:
    """Fresh object ids: above the session's ``id-counter`` and above every id in the file."""

    def __init__(self, root: ET.Element) -> None:
        highest = max((int(v) for e in root.iter() if (v := e.get("id", "")).isdigit()), default=0)
        counter = root.get("id-counter", "")
        self.counter = max(highest + 1, int(counter) if counter.isdigit() else 0)

    def next(self) -> int:
        value = self.counter
        self.counter += 1
        return value


def child(root: ET.Element, tag: str) -> ET.Element:
    """The session's ``<tag>`` section, created (before ``<Routes>``'s usual neighbours are not needed) if absent."""
    found = root.find(tag)
    if found is None:
        found = ET.SubElement(root, tag)
    return found


# -- building the new elements ------------------------------------------------------------------------------


def source_elements(root: ET.Element, file_name: str, origin: Path, channels: int, ids: Ids) -> list[ET.Element]:
    take = time.strftime("%Y-%m-%d %H.%M.%S")
    return [
        ET.Element(
            "Source",
            {
                "name": file_name,
                "take-id": take,
                "type": "audio",
                "flags": "",
                "id": str(ids.next()),
                "timestamp": str(int(time.time())),
                "natural-position": "a0",
                "captured-for": "",
                "channel": str(channel),
                "origin": str(origin.resolve()),
                "gain": "1",
            },
        )
        for channel in range(channels)
    ]


def region_element(
    name: str,
    sources: list[ET.Element],
    position: int,
    frames: int,
    clock: Clock,
    ids: Ids,
    whole_file: bool,
) -> ET.Element:
    attrs = {
        "name": name,
        "muted": "0",
        "opaque": "1",
        "locked": "0",
        "video-locked": "0",
        "automatic": "1" if whole_file else "0",
        "whole-file": "1" if whole_file else "0",
        "import": "0",
        "external": "0",
        "sync-marked": "0",
        "left-of-split": "0",
        "right-of-split": "0",
        "hidden": "0",
        "position-locked": "0",
        "valid-transients": "0",
        "start": "a0",
        "length": f"a{clock.ticks(frames)}@{clock.pos(position)}",
        "sync-position": "a0",
        "ancestral-start": "a0",
        "ancestral-length": "a0@a0",
        "stretch": "1",
        "shift": "1",
        "layering-index": "0",
        "tags": "",
        "contents": "0",
        "envelope-active": "0",
        "default-fade-in": "0",
        "default-fade-out": "0",
        "fade-in-active": "1",
        "fade-out-active": "1",
        "scale-amplitude": "1",
        "id": str(ids.next()),
        "type": "audio",
        "first-edit": "nothing",
    }
    for i, source in enumerate(sources):
        attrs[f"source-{i}"] = source.get("id", "")
    for i, source in enumerate(sources):
        attrs[f"master-source-{i}"] = source.get("id", "")
    attrs["channels"] = str(len(sources))
    return ET.Element("Region", attrs)


def master_inputs(root: ET.Element) -> list[str]:
    """The master bus's input port names (``Master/audio_in 1``...), or none when the session has no master."""
    for route in root.iter("Route"):
        info = route.find("PresentationInfo")
        if info is not None and "MasterOut" in info.get("flags", "").split(","):
            for io in route.findall("IO"):
                if io.get("direction") == "Input":
                    return [p.get("name", "") for p in io.findall("Port") if p.get("type", "audio") == "audio"]
    return []


def route_element(root: ET.Element, name: str, route_id: int, playlist_id: int, channels: int, ids: Ids) -> ET.Element:
    """An audio track as Ardour 7.3 writes one (trigger slots left out: Ardour adds them when it loads)."""
    orders = [int(v) for info in root.iter("PresentationInfo") if (v := info.get("order", "")).isdigit()]
    masters = master_inputs(root)
    route = ET.Element(
        "Route",
        {
            "version": root.get("version", "7002"),
            "id": str(route_id),
            "name": name,
            "default-type": "audio",
            "strict-io": "1",
            "active": "1",
            "denormal-protection": "0",
            "meter-point": "MeterPostFader",
            "disk-io-point": "DiskIOPreFader",
            "meter-type": "MeterPeak",
            "audio-playlist": str(playlist_id),
            "saved-meter-point": "MeterPostFader",
            "alignment-choice": "Automatic",
            "mode": "Normal",
        },
    )
    ET.SubElement(
        route,
        "PresentationInfo",
        {"order": str(max(orders, default=0) + 1), "flags": "AudioTrack,OrderSet", "color": "0"},
    )
    automation = ET.Element("Automation")
    for control, extra in (
        (
            "solo",
            {"flags": "Toggle,RealTime", "self-solo": "0", "soloed-by-upstream": "0", "soloed-by-downstream": "0"},
        ),
        ("solo-iso", {"flags": "Toggle,RealTime", "solo-isolated": "0"}),
        ("solo-safe", {"flags": "Toggle", "solo-safe": "0"}),
    ):
        controllable(route, automation, control, extra, ids, "Discrete")
    _add_io(route, name, channels, masters, ids)
    ET.SubElement(route, "MuteMaster", {"mute-point": "PostFader,Listen,Main", "muted": "0"})
    controllable(route, automation, "mute", {"flags": "Toggle,RealTime"}, ids, "Discrete")
    controllable(route, automation, "phase", {"flags": "Toggle", "phase-invert": "0" * channels}, ids, "Discrete")
    for control in ("rec-enable", "rec-safe", "monitor"):
        ET.SubElement(automation, "AutomationList", automation_list(control, ids, "Discrete"))
    route.append(automation)
    _add_pannable(route, channels, ids)
    _add_processors(route, name, ids)
    ET.SubElement(route, "Slavable")
    ET.SubElement(
        route,
        "Controllable",
        {"name": "monitor", "id": str(ids.next()), "flags": "RealTime", "value": "0", "monitoring": ""},
    )
    ET.SubElement(
        route, "Controllable", {"name": "rec-safe", "id": str(ids.next()), "flags": "Toggle,RealTime", "value": "0"}
    )
    ET.SubElement(
        route, "Controllable", {"name": "rec-enable", "id": str(ids.next()), "flags": "Toggle,RealTime", "value": "0"}
    )
    return route


def playlist_element(name: str, playlist_id: int, route_id: int, region: ET.Element) -> ET.Element:
    """The track's playlist, holding ``region``."""
    playlist = ET.Element(
        "Playlist",
        {
            "id": str(playlist_id),
            "name": name,
            "type": "audio",
            "orig-track-id": str(route_id),
            "shared-with-ids": "",
            "frozen": "0",
            "combine-ops": "0",
        },
    )
    playlist.append(region)
    return playlist


def _add_io(route: ET.Element, name: str, channels: int, masters: list[str], ids: Ids) -> None:
    """The track's input (``channels`` ports) and output (connected to the master bus's inputs)."""
    outputs = max(len(masters), channels)
    inputs = ET.SubElement(
        route, "IO", {"name": name, "id": str(ids.next()), "direction": "Input", "default-type": "audio"}
    )
    for channel in range(channels):
        ET.SubElement(inputs, "Port", {"type": "audio", "name": f"{name}/audio_in {channel + 1}"})
    output = ET.SubElement(
        route, "IO", {"name": name, "id": str(ids.next()), "direction": "Output", "default-type": "audio"}
    )
    for channel in range(outputs):
        port = ET.SubElement(output, "Port", {"type": "audio", "name": f"{name}/audio_out {channel + 1}"})
        if channel < len(masters):
            ET.SubElement(port, "Connection", {"other": masters[channel]})


def _add_pannable(route: ET.Element, channels: int, ids: Ids) -> None:
    """The panner's controls, centred (full width for more than one channel)."""
    pannable = ET.SubElement(route, "Pannable")
    pan_automation = ET.Element("Automation")
    for control, value in (
        ("pan-azimuth", "0.5"),
        ("pan-width", "1" if channels > 1 else "0"),
        ("pan-elevation", "0"),
        ("pan-frontback", "0"),
        ("pan-lfe", "0"),
    ):
        lst = automation_list(control, ids, "Linear", domain="BeatTime")
        ET.SubElement(pan_automation, "AutomationList", lst)
        ET.SubElement(pannable, "Controllable", {"name": control, "id": str(ids.next()), "flags": "", "value": value})
    pannable.append(pan_automation)


def _add_processors(route: ET.Element, name: str, ids: Ids) -> None:
    """Disk writer and reader, polarity, trim, fader, meter and main outs, in Ardour's order."""

    def processor(proc_name: str, kind: str, **extra: str) -> ET.Element:
        attrs = {"id": str(ids.next()), "name": proc_name, "active": "1", "user-latency": "0", "use-user-latency": "0"}
        attrs.update(extra)
        attrs["type"] = kind
        return ET.SubElement(route, "Processor", attrs)

    processor(f"recorder:{name}", "diskwriter", **{"record-safe": "0"})
    processor(f"player:{name}", "diskreader")
    processor("Polarity", "polarity")
    for kind, control, style, gain_name in (
        ("trim", "trim", "Logarithmic", "trimcontrol"),
        ("amp", "gain", "Exponential", "gaincontrol"),
    ):
        proc = processor("Amp", kind)
        proc_automation = ET.SubElement(proc, "Automation")
        ET.SubElement(proc_automation, "AutomationList", automation_list(control, ids, style))
        ET.SubElement(
            proc, "Controllable", {"name": gain_name, "id": str(ids.next()), "flags": "GainLike", "value": "1"}
        )
    processor(f"meter-{name}", "meter")
    main = processor(name, "main-outs", **{"own-input": "1", "own-output": "0", "output": name, "role": "Main"})
    ET.SubElement(main, "PannerShell", {"bypassed": "0", "user-panner": "", "linked-to-route": "1"})


def automation_list(control: str, ids: Ids, style: str, domain: str = "AudioTime") -> dict[str, str]:
    return {
        "automation-id": control,
        "id": str(ids.next()),
        "interpolation-style": style,
        "time-domain": domain,
        "state": "Off",
    }


def controllable(
    route: ET.Element, automation: ET.Element, name: str, extra: dict[str, str], ids: Ids, style: str
) -> None:
    ET.SubElement(automation, "AutomationList", automation_list(name, ids, style))
    attrs = {"name": name, "id": str(ids.next()), "flags": extra.pop("flags", ""), "value": "0"}
    attrs.update(extra)
    ET.SubElement(route, "Controllable", attrs)


def extend_session_range(root: ET.Element, start: int, end: int, clock: Clock, ids: Ids) -> None:
    locations = child(root, "Locations")
    for location in locations.iter("Location"):
        if "IsSessionRange" in location.get("flags", "").split(","):
            old_start = clock.samples(location.get("start", ""))
            old_end = clock.samples(location.get("end", ""))
            if old_start is not None and start < old_start:
                location.set("start", clock.pos(start))
            if old_end is not None and end > old_end:
                location.set("end", clock.pos(end))
            return
    ET.SubElement(
        locations,
        "Location",
        {
            "id": str(ids.next()),
            "name": "session",
            "start": "a0",
            "end": clock.pos(end),
            "flags": "IsSessionRange",
            "locked": "0",
            "timestamp": str(int(time.time())),
            "cue": "0",
        },
    )
