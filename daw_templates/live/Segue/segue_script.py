"""The Segue control surface: a UDP socket polled from Live's ``update_display`` (about every 100 ms), the selected
clip sent to Segue's bridge, and Segue's ``/segue/place`` turned into clips.

Addresses it answers, in AbletonOSC's ``/live/<object>/<verb>`` style, on UDP 127.0.0.1:11002 (AbletonOSC itself
has 11000/11001; both can run at once):

- ``/live/segue/send [s:mode i:bars i:variants [s:parts [s:key value ...]]]``: send the clip shown in Live's Detail
  View (a MIDI clip's notes as a .mid; an audio clip's file) with its position, Live's tempo and meter, then ask for
  a job. Key/value pairs (``similarity 0.3``, ``hold_notes 1``, ``density:bass 0.5``: /segue/generate's, see
  docs/osc.md) go to Segue as they are, over ``CONTROLS``. A MIDI note (``TRIGGER_NOTE`` on any channel, from the
  control surface's MIDI input) does the same with ``GENERATE`` and ``CONTROLS``.
- ``/live/segue/accompany [s:parts [i:variants]]``: the same clip, asking for accompaniments (new parts under the
  clip's own bars, e.g. ``"bass,piano"``; ``""``: the model's default set); without arguments, ``ACCOMPANY``. The
  MIDI note ``ACCOMPANY_NOTE`` does the same. They come back at the clip's start.
- ``/live/segue/place s:file_path f:position_beats s:track_name s:kind``, and Segue's own
  ``/segue/place s:file_path f:position_beats f:position_seconds s:track_name s:kind`` (what the bridge sends back
  to this script, since it asked): a new track, named as given, holding the file as a clip.
- ``/segue/job/started|progress|done|failed`` and ``/segue/error``: shown in Live's status bar.

Where a result goes: from an arrangement clip, into the arrangement at ``position_beats`` when this Live can
(``Track.create_midi_clip`` / ``Track.create_audio_clip``: Live 12.0.5 and later); otherwise into the session slot
of the scene the clip came from (MIDI: ``ClipSlot.create_clip`` and the notes; audio: ``ClipSlot.create_audio_clip``
where it exists, Live 12.0.5+). Older Live versions cannot load an audio file from a script at all: the script says
so and names the file to drag in from Segue.
"""

import errno
import math
import os
import re
import socket
import time

from . import oscmini, smf

try:  # Live's own module; absent outside Live (the tests put a fake one in sys.modules)
    import Live
except ImportError:  # pragma: no cover
    Live = None

LISTEN_PORT = int(os.environ.get("SEGUE_LIVE_PORT", "11002"))
BRIDGE = (os.environ.get("SEGUE_HOST", "127.0.0.1"), int(os.environ.get("SEGUE_PORT", "9750")))
GENERATE = ("continue", 4, 2)  # mode, bars, variants asked for by the MIDI trigger
TRIGGER_NOTE = 0  # C-2 (note 0), any channel
# parts, variants asked for by /live/segue/accompany without arguments and by the accompany note
ACCOMPANY = (os.environ.get("SEGUE_ACCOMPANY_PARTS", "bass,piano"), 2)
ACCOMPANY_NOTE = 1  # C#-2 (note 1), any channel
# The producer's controls sent with every request (None: Segue's measured default; Segue checks the ranges):
# similarity 0..1 (1 = stay close to the clip, 0 = free), keep_opening True/False (audio: open with the clip's first
# bar), density 0.25..4 (MIDI notes per bar as a factor of the clip's), hold_notes True/False (keep the clip's note
# lengths), end_on_tonic True/False (a cadence in the last bar); PART_DENSITY per part, e.g. {"bass": 0.5}.
CONTROLS = {"similarity": None, "keep_opening": None, "density": None, "hold_notes": None, "end_on_tonic": None}
PART_DENSITY = {}
MAX_PARTS = 8
MAX_BARS = 64
_PART_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
OUT_DIR = os.environ.get("SEGUE_LIVE_DIR") or os.path.join(os.path.expanduser("~"), "Segue", "live")
MAX_DATAGRAMS_PER_TICK = 64


class SegueScript:
    """What Live calls (``update_display``, ``disconnect``, MIDI map hooks); ``c_instance`` gives the song."""

    def __init__(self, c_instance, listen_port=None, bridge=None, out_dir=None):
        self._c = c_instance
        self.bridge = bridge or BRIDGE
        self.out_dir = out_dir or OUT_DIR
        self.last_source = None  # ("arrangement" | "session", scene index) of the last clip sent
        self.messages = []  # what was shown in the status bar (tests read it)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(("127.0.0.1", LISTEN_PORT if listen_port is None else listen_port))
        self.handlers = {
            "/live/segue/send": self._on_send,
            "/live/segue/accompany": self._on_accompany,
            "/live/segue/place": self._on_live_place,
            "/segue/place": self._on_segue_place,
            "/segue/job/started": lambda a: self.say(f"Segue: job {a[0]} started"),
            "/segue/job/progress": lambda a: self.say(f"Segue: {round(100 * a[1])}%"),
            "/segue/job/done": lambda a: self.say(f"Segue: job {a[0]} done"),
            "/segue/job/failed": lambda a: self.say(f"Segue: job failed: {a[1]}"),
            "/segue/error": lambda a: self.say(f"Segue: {a[0]}"),
            "/segue/pong": lambda a: self.say(f"Segue {a[0]} is there"),
        }
        self.say(f"Segue: listening on UDP {self.port}, sending to {self.bridge[0]}:{self.bridge[1]}")

    @property
    def port(self):
        return self.sock.getsockname()[1]

    def song(self):
        return self._c.song()

    def say(self, text):
        self.messages.append(text)
        self._c.show_message(text)
        self._c.log_message(text)

    # -- what Live calls -------------------------------------------------------------------------------------

    def update_display(self):
        """Live's tick: handle what arrived on the socket (never blocks)."""
        for _ in range(MAX_DATAGRAMS_PER_TICK):
            try:
                data, sender = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNRESET):
                    return
                raise
            self.handle_datagram(data, sender)

    def handle_datagram(self, data, sender):
        try:
            messages = oscmini.decode(data)
        except ValueError as e:
            self._c.log_message(f"Segue: ignoring a datagram from {sender[0]}:{sender[1]}: {e}")
            return
        for address, args in messages:
            handler = self.handlers.get(address)
            if handler is None:
                continue
            try:
                handler(args)
            except Exception as e:  # a bad message must not stop the script
                self.say(f"Segue: {address} failed: {e}")

    def disconnect(self):
        self.sock.close()

    def refresh_state(self):
        pass

    def connect_script_instances(self, instanciated_scripts):
        pass

    def can_lock_to_devices(self):
        return False

    def suggest_input_port(self):
        return ""

    def suggest_output_port(self):
        return ""

    def suggest_map_mode(self, cc_no, channel):
        return -1

    def build_midi_map(self, midi_map_handle):
        if Live is not None:
            for note in (TRIGGER_NOTE, ACCOMPANY_NOTE):
                for channel in range(16):
                    Live.MidiMap.forward_midi_note(self._c.handle(), midi_map_handle, channel, note)

    def receive_midi(self, midi_bytes):
        if not (len(midi_bytes) == 3 and midi_bytes[0] & 0xF0 == 0x90 and midi_bytes[2]):
            return
        if midi_bytes[1] == TRIGGER_NOTE:
            self.send_selected_clip(*GENERATE)
        elif midi_bytes[1] == ACCOMPANY_NOTE:
            self.accompany_selected_clip(*ACCOMPANY)

    # -- send ------------------------------------------------------------------------------------------------

    def _on_send(self, args):
        mode, bars, variants = (list(args) + list(GENERATE)[len(args) :])[:3]
        parts = str(args[3]) if len(args) > 3 else ""
        if len(args) > 4 and len(args) % 2:
            self.say(f"Segue: nothing sent: after the parts come key/value pairs (similarity 0.3 ...), got {args[4:]}")
            return
        self.send_selected_clip(str(mode), int(bars), int(variants), parts, list(args[4:]))

    def _on_accompany(self, args):
        parts, variants = (list(args) + list(ACCOMPANY)[len(args) :])[:2]
        self.accompany_selected_clip(str(parts), int(variants))

    def send_osc(self, address, args):
        self.sock.sendto(oscmini.encode(address, args), self.bridge)

    def selected_clip(self):
        """The clip in Detail View (else the highlighted slot's), and ("arrangement"|"session", scene index)."""
        view = self.song().view
        clip = getattr(view, "detail_clip", None)
        scene = _index_of(self.song().scenes, getattr(view, "selected_scene", None))
        if clip is None:
            slot = getattr(view, "highlighted_clip_slot", None)
            clip = slot.clip if slot is not None and slot.has_clip else None
        if clip is None:
            return None, None
        if getattr(clip, "is_arrangement_clip", False):
            return clip, ("arrangement", scene)
        return clip, ("session", scene)

    def region_of_clip(self, clip, where):
        """/segue/region's arguments for ``clip`` (writing its notes to a .mid for a MIDI clip)."""
        song = self.song()
        meter = (int(song.signature_numerator), int(song.signature_denominator))
        start_in_clip = clip.loop_start if clip.looping else clip.start_marker
        length = float(clip.length)
        start = float(clip.start_time) if where[0] == "arrangement" else 0.0
        track = _track_of(clip)
        name = _safe(track.name if track is not None else "") or "Live"
        if clip.is_midi_clip:
            notes = [
                (pitch, time_ - start_in_clip, duration, velocity)
                for pitch, time_, duration, velocity, mute in _notes(clip, start_in_clip, length)
                if not mute and start_in_clip <= time_ < start_in_clip + length
            ]
            if not os.path.isdir(self.out_dir):
                os.makedirs(self.out_dir)
            path = os.path.join(self.out_dir, "segue-{}-{}.mid".format(name, time.strftime("%Y%m%d-%H%M%S")))
            smf.write(path, notes, float(song.tempo), meter, length)
            audio, midi = "", path
        else:
            audio, midi = clip.file_path, ""
            if start_in_clip or getattr(clip, "warping", False):
                self.say(f"Segue: sending the whole file {audio} (its clip start and warping are not applied)")
        return [audio, midi, start, length, float(song.tempo), meter[0], meter[1], name]

    def send_selected_clip(self, mode, bars, variants, parts="", pairs=()):
        """Send the selected clip and ask for ``mode`` (parts: accompany only) with the controls (``CONTROLS``,
        ``PART_DENSITY``, then ``pairs``: key, value, ...); /segue/region's arguments, or None."""
        try:
            parts = normalise_parts(parts)
        except ValueError as e:
            self.say(f"Segue: nothing sent: {e}")
            return None
        if parts and mode != "accompany":
            self.say(f"Segue: nothing sent: parts ({parts}) are only for accompany, not {mode}")
            return None
        clip, where = self.selected_clip()
        if clip is None:
            self.say("Segue: select a clip first (it shows in the Detail View)")
            return None
        region = self.region_of_clip(clip, where)
        self.last_source = where
        self.send_osc("/segue/region", region)
        controls = control_pairs(CONTROLS, PART_DENSITY, pairs)
        if controls:
            self.send_osc("/segue/generate", [mode, bars, variants, parts, "auto"] + controls)
        else:
            self.send_osc("/segue/generate", [mode, bars, variants] + ([parts] if parts else []))
        self.say(f"Segue: sent {region[7]} ({region[3]:.2f} beats) to {self.bridge[0]}:{self.bridge[1]}")
        if mode == "accompany":
            self.say(
                f"Segue: asked for {variants} accompaniment(s) with {parts or 'the model default parts'}; they come "
                f"back at beat {region[2]:g} (the clip's start)"
            )
        return region

    def accompany_selected_clip(self, parts, variants):
        """Ask for accompaniments of the selected clip: as many bars as the clip covers (Segue checks the value;
        an accompaniment is as long as the region)."""
        clip, _where = self.selected_clip()
        song = self.song()
        per_bar = int(song.signature_numerator) * 4 / int(song.signature_denominator)
        length = float(clip.length) if clip is not None else 0.0
        bars = max(1, min(MAX_BARS, int(math.ceil(length / per_bar - 1e-9))))
        return self.send_selected_clip("accompany", bars, int(variants), parts)

    # -- place -----------------------------------------------------------------------------------------------

    def _on_segue_place(self, args):
        path, beats, _seconds, track_name, kind = args
        self.place(str(path), float(beats), str(track_name), str(kind))

    def _on_live_place(self, args):
        path, beats, track_name, kind = args
        self.place(str(path), float(beats), str(track_name), str(kind))

    def place(self, path, position_beats, track_name, kind):
        """Put ``path`` on a new track named ``track_name``; returns where it went ("arrangement"/"session"/None)."""
        if not os.path.isfile(path):
            self.say(f"Segue: {path} is not there; nothing placed")
            return None
        song = self.song()
        where, scene = self.last_source or ("arrangement", 0)
        scene = scene or 0
        if kind == "midi":
            notes, length = smf.read(path)
            song.create_midi_track(-1)
            track = song.tracks[-1]
            track.name = track_name
            if where == "arrangement" and hasattr(track, "create_midi_clip"):
                clip = track.create_midi_clip(position_beats, max(length, 1.0))
                placed = "arrangement"
            else:
                slot = track.clip_slots[min(scene, len(track.clip_slots) - 1)]
                slot.create_clip(max(length, 1.0))
                clip = slot.clip
                placed = "session"
            _add_notes(clip, notes)
            return placed
        song.create_audio_track(-1)
        track = song.tracks[-1]
        if where == "arrangement" and hasattr(track, "create_audio_clip"):
            track.name = track_name
            track.create_audio_clip(path, position_beats)
            return "arrangement"
        slot = track.clip_slots[min(scene, len(track.clip_slots) - 1)]
        if hasattr(slot, "create_audio_clip"):
            track.name = track_name
            slot.create_audio_clip(path)
            return "session"
        song.delete_track(len(song.tracks) - 1)
        self.say(
            "Segue: this Live cannot load audio from a script (that needs Live 12.0.5 or later): drag "
            f"{os.path.basename(path)} from Segue onto a track at beat {position_beats:g}"
        )
        return None


def control_pairs(controls, part_density, pairs=()):
    """The controls as /segue/generate's key/value arguments: ``controls`` and ``part_density`` (None: left out),
    overridden by ``pairs`` (key, value, ... as an OSC message gave them). Flags go as 1/0, numbers as floats; the
    values are Segue's to check."""
    chosen = {}
    for key, value in controls.items():
        if value is not None:
            chosen[key] = value
    for part, factor in part_density.items():
        chosen["density:" + part] = factor
    for index in range(0, len(pairs) - 1, 2):
        chosen[str(pairs[index])] = pairs[index + 1]
    out = []
    for key, value in chosen.items():
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, int):
            value = float(value)
        out += [key, value]
    return out


def normalise_parts(text):
    """A parts list as typed (" Bass, PIANO ", "bass,piano,") as Segue wants it ("bass,piano"): names trimmed and
    lowercased, empty items dropped; "" is the model's default set. ValueError, saying why, for what Segue would
    refuse (the rules of daw_templates/reaper/segue_core.lua's core.normalise_parts, which the tests share)."""
    names = []
    for item in str(text).split(","):
        name = item.strip().lower()
        if not name:
            continue
        if not _PART_NAME.fullmatch(name):
            raise ValueError(
                f"'{name}' is not a part name: a name is a letter, then letters, digits, - or _ (at most 32), and "
                "commas go between names (e.g. bass,piano)"
            )
        if name in names:
            raise ValueError(f"'{name}' is given twice")
        names.append(name)
    if len(names) > MAX_PARTS:
        raise ValueError(f"at most {MAX_PARTS} parts, got {len(names)}")
    return ",".join(names)


def _index_of(items, item):
    for index, candidate in enumerate(items):
        if candidate == item:
            return index
    return 0


def _track_of(clip):
    """The clip's track: an arrangement clip's parent, a session clip's slot's parent."""
    parent = getattr(clip, "canonical_parent", None)
    for _ in range(2):
        if parent is None or hasattr(parent, "clip_slots"):
            return parent
        parent = getattr(parent, "canonical_parent", None)
    return None


def _safe(name):
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(name)).strip("-")


def _notes(clip, start, length):
    """(pitch, time, duration, velocity, mute) of the clip's notes: Live 11+'s get_notes_extended, else get_notes."""
    if hasattr(clip, "get_notes_extended"):
        found = clip.get_notes_extended(0, 128, start, length)
        return [(n.pitch, n.start_time, n.duration, n.velocity, n.mute) for n in found]
    return list(clip.get_notes(start, 0, length, 128))


def _add_notes(clip, notes):
    """Live 11+: add_new_notes with MidiNoteSpecification; older: set_notes with tuples."""
    spec = getattr(getattr(Live, "Clip", None), "MidiNoteSpecification", None)
    if spec is not None and hasattr(clip, "add_new_notes"):
        clip.add_new_notes(
            tuple(spec(pitch=p, start_time=t, duration=d, velocity=float(v), mute=False) for p, t, d, v in notes)
        )
    else:
        clip.set_notes(tuple((p, t, d, v, False) for p, t, d, v in notes))
