// Segue.control.js: a Bitwig Studio controller script (Controller API 17, Bitwig 5.x) that sends the selected
// launcher clip's notes to Segue (to continue, or to accompany: new parts under the clip) and puts Segue's results
// into new tracks' launcher slots.
// No sockets of its own beyond Bitwig's OSC module; nothing of Segue's is imported. See README.md.
//
// What Bitwig's API cannot do, and what we do instead:
// - no clip's position on the arranger timeline: the region starts at the transport's play start position
//   (click the clip's start in the ruler before sending), or at 0;
// - no audio clip's file: only MIDI (note) clips can be sent; for audio, drag the file into Segue, or capture;
// - no inserting into the arranger at a position: results go into a launcher slot of a new track (scene 1); put
//   them on the arranger by dragging them from Segue (or from the launcher slot).

loadAPI(17);

host.defineController("Segue", "Segue", "1.0", "9b6c1c4e-3f3e-4f2b-9d7a-5e6a1c2b9f10", "Segue");
host.defineMidiPorts(0, 0);

var SEGUE_HOST = "127.0.0.1";
var SEGUE_PORT = 9750;     // `segue bridge` (Segue's OSC)
var LISTEN_PORT = 11003;   // this script's OSC: /bitwig/segue/send, /bitwig/segue/accompany, /bitwig/segue/place
var GENERATE = { mode: "continue", bars: 4, variants: 2 };  // what "Send to Segue" asks for
var ACCOMPANY = { parts: "bass,piano", variants: 2 };      // "Accompany": the parts setting's first value
// The producer's controls: the first values of the "Segue controls" settings (saved with the project). Empty or
// "auto": Segue's measured default. Similarity 0..1 (1 = stay close to the clip, 0 = free); density as a factor of
// the clip's notes per bar, for every part ("1.5") and/or per part ("bass=0.5,piano=1.5"); the flags auto/on/off.
var CONTROLS = { similarity: "", density: "", keep_opening: "auto", hold_notes: "auto", end_on_tonic: "auto" };
var CONTROL_LABELS = {
  similarity: "Similarity (1 close .. 0 free; empty: auto)",
  density: "Density (MIDI: 1.5 and/or bass=0.5; empty: auto)",
  keep_opening: "Keep opening (audio)",
  hold_notes: "Hold notes (MIDI)",
  end_on_tonic: "End on tonic (MIDI)",
};
var FLAG_CHOICES = ["auto", "on", "off"];
var MAX_PARTS = 8, MAX_BARS = 64;
var GRID_STEPS_PER_BEAT = 16;
var GRID_BEATS = 64;       // the clip grid this script reads (64 beats at 1/16 beat)
var MAX_TRACKS = 128;

var segue = {
  tempo: 120, num: 4, den: 4, playStart: 0, trackName: "Bitwig", clipLength: 0, notes: {}, parts: ACCOMPANY.parts,
  controls: {}, pending: [], messages: [],
};

function say(text) {
  segue.messages.push(text);
  host.showPopupNotification(text);
  println(text);
}

// The notes seen by the clip's step observer, as {pitch, start_beats, length_beats, velocity} from the clip start.
function clipNotes() {
  var out = [];
  for (var key in segue.notes) {
    var n = segue.notes[key];
    if (n.state === "NoteOn" && n.x / GRID_STEPS_PER_BEAT < segue.clipLength) {
      out.push({ pitch: n.y, start_beats: n.x / GRID_STEPS_PER_BEAT, length_beats: n.duration,
                 velocity: Math.max(1, Math.round(n.velocity * 127)), channel: n.channel });
    }
  }
  out.sort(function (a, b) { return a.start_beats - b.start_beats || a.pitch - b.pitch; });
  return out;
}

// A one-track MIDI file (tempo and meter at tick 0), as a byte array.
function smfBytes(notes, tempo, num, den, lengthBeats) {
  var tpq = 480, events = [], i;
  function vlq(n) {
    var bytes = [n & 0x7f];
    n = Math.floor(n / 128);
    while (n > 0) { bytes.unshift((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
    return bytes;
  }
  for (i = 0; i < notes.length; i++) {
    var n = notes[i], on = Math.max(0, Math.round(n.start_beats * tpq));
    var off = Math.max(on + 1, Math.round((n.start_beats + n.length_beats) * tpq));
    var ch = (n.channel || 0) & 15, pitch = Math.max(0, Math.min(127, n.pitch));
    events.push([off, 0, i, [0x80 | ch, pitch, 0]]);
    events.push([on, 1, i, [0x90 | ch, pitch, Math.min(127, n.velocity)]]);
  }
  events.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1] || a[2] - b[2]; });
  var usec = Math.round(60000000 / tempo), denPow = Math.round(Math.log(den) / Math.LN2);
  var body = [0, 0xff, 0x51, 3, (usec >> 16) & 255, (usec >> 8) & 255, usec & 255,
              0, 0xff, 0x58, 4, num, denPow, 24, 8];
  var now = 0;
  for (i = 0; i < events.length; i++) {
    body = body.concat(vlq(events[i][0] - now), events[i][3]);
    now = events[i][0];
  }
  body = body.concat(vlq(Math.max(0, Math.round(lengthBeats * tpq) - now)), [0xff, 0x2f, 0]);
  var len = body.length;
  return [0x4d, 0x54, 0x68, 0x64, 0, 0, 0, 6, 0, 0, 0, 1, (tpq >> 8) & 255, tpq & 255,
          0x4d, 0x54, 0x72, 0x6b, (len >>> 24) & 255, (len >> 16) & 255, (len >> 8) & 255, len & 255].concat(body);
}

// Bitwig's scripts have no file API of their own; Java's is reachable from the script engine.
function writeBytes(path, bytes) {
  var File = Java.type("java.io.File"), Out = Java.type("java.io.FileOutputStream");
  new File(path).getParentFile().mkdirs();
  var out = new Out(path);
  for (var i = 0; i < bytes.length; i++) out.write(bytes[i]);
  out.close();
}

function outDir() {
  var System = Java.type("java.lang.System");
  return System.getProperty("user.home") + "/Segue/bitwig";
}

function regionArgs(path) {
  return [ "", path, segue.playStart, segue.clipLength, segue.tempo, segue.num, segue.den, segue.trackName ];
}

// A parts list as typed (" Bass, PIANO ", "bass,piano,") as Segue wants it ("bass,piano"): names trimmed and
// lowercased, empty items dropped; "" is the model's default set. {parts: ...}, or {error: why} for what Segue
// would refuse (the rules of daw_templates/reaper/segue_core.lua's core.normalise_parts; the tests share them).
function normaliseParts(text) {
  var items = String(text === undefined || text === null ? "" : text).split(","), names = [];
  for (var i = 0; i < items.length; i++) {
    var name = items[i].replace(/^\s+|\s+$/g, "").toLowerCase();
    if (name === "") continue;
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(name)) {
      return { error: "'" + name + "' is not a part name: a name is a letter, then letters, digits, - or _ " +
                      "(at most 32), and commas go between names (e.g. bass,piano)" };
    }
    if (names.indexOf(name) >= 0) return { error: "'" + name + "' is given twice" };
    names.push(name);
  }
  if (names.length > MAX_PARTS) return { error: "at most " + MAX_PARTS + " parts, got " + names.length };
  return { parts: names.join(",") };
}

// Ask for accompaniments of the selected clip: as many bars as the clip covers (Segue checks the value; an
// accompaniment is as long as the region), with `parts` (else the "Accompany parts" setting).
function accompanyClip(parts, variants) {
  var checked = normaliseParts(parts === undefined ? segue.parts : parts);
  if (checked.error !== undefined) { say("Segue: nothing sent: " + checked.error); return null; }
  if (variants !== undefined && !(variants >= 1 && variants <= 16 && variants === Math.floor(variants))) {
    say("Segue: nothing sent: variants must be 1..16, got " + variants);
    return null;
  }
  var perBar = segue.num * 4 / segue.den;
  var bars = Math.max(1, Math.min(MAX_BARS, Math.ceil(segue.clipLength / perBar - 1e-9)));
  var args = sendClip("accompany", bars, variants || ACCOMPANY.variants, checked.parts);
  if (args) {
    say("Segue: asked for " + (variants || ACCOMPANY.variants) + " accompaniment(s) with " +
        (checked.parts || "the model's default parts") + "; they come back at beat " + segue.playStart +
        " (the clip's start)");
  }
  return args;
}

// The controls settings as /segue/generate's key/value pairs ([key, value, ...]; flags as 1/0), or {error}. Only
// the form is checked here; Segue checks the ranges (and answers /segue/error with its words).
function controlPairs(settings) {
  var pairs = [], text, key;
  text = String(settings.similarity || "").trim();
  if (text !== "") {
    if (isNaN(Number(text))) {
      return { error: "Similarity must be a number from 0 (free) to 1 (close), or empty for auto; got '" + text + "'" };
    }
    pairs.push("similarity", Number(text));
  }
  var items = String(settings.density || "").split(",");
  for (var i = 0; i < items.length; i++) {
    var item = items[i].trim();
    if (item === "") continue;
    var eq = item.indexOf("="), name = eq < 0 ? "" : item.slice(0, eq).trim().toLowerCase();
    var factor = eq < 0 ? item : item.slice(eq + 1).trim();
    if (isNaN(Number(factor)) || factor === "" || (eq >= 0 && name === "")) {
      return { error: "Density is a factor (1.5) and/or part=factor pairs (bass=0.5), separated by commas; got '" +
                      item + "'" };
    }
    pairs.push(eq < 0 ? "density" : "density:" + name, Number(factor));
  }
  var flags = ["keep_opening", "hold_notes", "end_on_tonic"];
  for (var f = 0; f < flags.length; f++) {
    key = flags[f];
    var choice = String(settings[key] || "auto");
    if (choice === "on" || choice === "off") pairs.push(key, choice === "on" ? 1 : 0);
  }
  return { pairs: pairs };
}

// Send one OSC message with any number of arguments (Bitwig's sendMessage takes them as Java varargs).
function sendArgs(address, args) {
  segue.connection.sendMessage(address, Java.to(args, "java.lang.Object[]"));
}

function sendClip(mode, bars, variants, parts) {
  var controls = controlPairs(segue.controls);
  if (controls.error !== undefined) { say("Segue: nothing sent: " + controls.error); return null; }
  if (!segue.clip.exists().get()) { say("Segue: select a launcher clip first"); return null; }
  if (segue.cursorTrack.trackType().get() === "Audio") {
    say("Segue: Bitwig's API does not give an audio clip's file: drag the file into Segue instead");
    return null;
  }
  var notes = clipNotes();
  var stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
  var path = outDir() + "/segue-" + segue.trackName.replace(/[^A-Za-z0-9-]+/g, "-") + "-" + stamp + ".mid";
  writeBytes(path, smfBytes(notes, segue.tempo, segue.num, segue.den, segue.clipLength));
  var args = regionArgs(path);
  segue.connection.sendMessage("/segue/region", args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7]);
  if (controls.pairs.length > 0) {
    sendArgs("/segue/generate", [mode, bars, variants, parts || "", "auto"].concat(controls.pairs));
  } else if (parts) {
    segue.connection.sendMessage("/segue/generate", mode, bars, variants, parts);
  } else {
    segue.connection.sendMessage("/segue/generate", mode, bars, variants);
  }
  say("Segue: sent " + notes.length + " notes (" + segue.clipLength + " beats) to " + SEGUE_HOST + ":" + SEGUE_PORT);
  return args;
}

// Put `path` into scene 1 of a new track: instrument tracks for MIDI, audio tracks for audio.
function place(path, beats, trackName, kind) {
  var count = segue.trackBank.itemCount().get();
  if (kind === "midi") segue.application.createInstrumentTrack(-1);
  else segue.application.createAudioTrack(-1);
  segue.pending.push({ path: path, name: trackName, index: count, tries: 0 });
  host.scheduleTask(fillPending, 100);
  say("Segue: " + trackName + " goes into a launcher slot (Bitwig's API cannot place it on the arranger at beat " +
      beats + "; drag it there from Segue)");
}

function fillPending() {
  var left = [];
  for (var i = 0; i < segue.pending.length; i++) {
    var p = segue.pending[i];
    var track = segue.trackBank.getItemAt(p.index);
    if (p.index < segue.trackBank.itemCount().get() && track.exists().get()) {
      track.name().set(p.name);
      track.clipLauncherSlotBank().getItemAt(0).replaceInsertionPoint().insertFile(p.path);
    } else if (++p.tries < 50) {
      left.push(p);
    } else {
      say("Segue: the new track for " + p.path + " did not appear; drag the file from Segue");
    }
  }
  segue.pending = left;
  if (left.length > 0) host.scheduleTask(fillPending, 100);
}

function init() {
  var transport = host.createTransport();
  transport.tempo().value().addRawValueObserver(function (bpm) { segue.tempo = bpm; });
  transport.timeSignature().numerator().addValueObserver(function (n) { segue.num = n; });
  transport.timeSignature().denominator().addValueObserver(function (d) { segue.den = d; });
  transport.playStartPosition().addValueObserver(function (beats) { segue.playStart = beats; });

  segue.application = host.createApplication();
  segue.cursorTrack = host.createCursorTrack("SEGUE", "Segue", 0, 0, true);
  segue.cursorTrack.name().addValueObserver(function (name) { segue.trackName = name || "Bitwig"; });
  segue.cursorTrack.trackType().markInterested();
  segue.trackBank = host.createMainTrackBank(MAX_TRACKS, 0, 1);
  segue.trackBank.itemCount().markInterested();
  for (var t = 0; t < MAX_TRACKS; t++) {
    segue.trackBank.getItemAt(t).exists().markInterested();
  }

  segue.clip = host.createLauncherCursorClip(GRID_BEATS * GRID_STEPS_PER_BEAT, 128);
  segue.clip.exists().markInterested();
  segue.clip.setStepSize(1 / GRID_STEPS_PER_BEAT);
  segue.clip.getLoopLength().addValueObserver(function (beats) { segue.clipLength = beats; });
  segue.clip.addNoteStepObserver(function (step) {
    var key = step.channel() + ":" + step.x() + ":" + step.y();
    segue.notes[key] = { x: step.x(), y: step.y(), channel: step.channel(), duration: step.duration(),
                         velocity: step.velocity(), state: String(step.state()) };
  });

  var osc = host.getOscModule();
  var space = osc.createAddressSpace();
  space.registerMethod("/segue/place", ",sffss", "a file Segue placed", function (source, msg) {
    place(msg.getString(0), msg.getFloat(1), msg.getString(3), msg.getString(4));
  });
  space.registerMethod("/bitwig/segue/place", ",sfss", "place a file", function (source, msg) {
    place(msg.getString(0), msg.getFloat(1), msg.getString(2), msg.getString(3));
  });
  space.registerMethod("/bitwig/segue/send", "*", "send the selected clip", function (source, msg) {
    sendClip(GENERATE.mode, GENERATE.bars, GENERATE.variants);
  });
  space.registerMethod("/bitwig/segue/accompany", "*", "accompany the selected clip [s:parts i:variants]",
    function (source, msg) {
      var n = msg.getArguments().size();
      accompanyClip(n > 0 ? msg.getString(0) : undefined, n > 1 ? msg.getInt(1) : undefined);
    });
  space.registerMethod("/segue/job/done", "*", "job done", function (source, msg) {
    say("Segue: job " + msg.getString(0) + " done");
  });
  space.registerMethod("/segue/error", "*", "an error", function (source, msg) {
    say("Segue: " + msg.getString(0));
  });
  space.registerDefaultMethod(function (source, msg) {});
  osc.createUdpServer(LISTEN_PORT, space);
  segue.connection = osc.connectToUdpServer(SEGUE_HOST, SEGUE_PORT, space); // Segue answers on this connection

  var doc = host.getDocumentState();  // shown in the Studio I/O panel; saved with the project
  var send = doc.getSignalSetting("Send the selected clip", "Segue", "Send to Segue");
  send.addSignalObserver(function () { sendClip(GENERATE.mode, GENERATE.bars, GENERATE.variants); });
  var parts = doc.getStringSetting("Accompany parts", "Segue", 64, ACCOMPANY.parts);
  parts.addValueObserver(function (text) { segue.parts = text; });
  var accompany = doc.getSignalSetting("Accompany the selected clip", "Segue", "Accompany");
  accompany.addSignalObserver(function () { accompanyClip(); });
  ["similarity", "density"].forEach(function (key) {
    var setting = doc.getStringSetting(CONTROL_LABELS[key], "Segue controls", 64, CONTROLS[key]);
    segue.controls[key] = CONTROLS[key];
    setting.addValueObserver(function (text) { segue.controls[key] = text; });
  });
  ["keep_opening", "hold_notes", "end_on_tonic"].forEach(function (key) {
    var setting = doc.getEnumSetting(CONTROL_LABELS[key], "Segue controls", FLAG_CHOICES, CONTROLS[key]);
    segue.controls[key] = CONTROLS[key];
    setting.addValueObserver(function (choice) { segue.controls[key] = choice; });
  });
  println("Segue: ready (OSC " + LISTEN_PORT + " in, Segue at " + SEGUE_HOST + ":" + SEGUE_PORT + ")");
}

function flush() {}

function exit() {}
