// bitwig_host.js: a fake Bitwig Controller API host for the tests; runs Segue.control.js in a sandbox and plays a
// scenario (JSON on argv[3]) against it, then prints what the script did as JSON.
// usage: node bitwig_host.js SCRIPT SCENARIO_JSON
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const script = process.argv[2];
const scenario = JSON.parse(process.argv[3]);
const record = { sent: [], created: [], names: [], inserted: [], popups: [], println: [], defined: null };

function value(initial) {
  const v = { v: initial, observers: [] };
  return {
    get: () => v.v,
    set: (x) => { v.v = x; v.observers.forEach((f) => f(x)); },
    markInterested: () => {},
    addValueObserver: (f) => v.observers.push(f),
    addRawValueObserver: (f) => v.observers.push(f),
    _fire: (x) => { v.v = x; v.observers.forEach((f) => f(x)); },
  };
}

const observers = { steps: [] };
const tasks = [];
const methods = {};
const signals = {};  // label -> observer ("press": true presses the first one defined)
let firstSignal = null;
const strings = {};  // label -> value
const tempo = value(120), num = value(4), den = value(4), playStart = value(0);
const trackName = value(""), trackType = value("Instrument"), clipExists = value(true), loopLength = value(0);
const tracks = [];
const itemCount = value(0);
function makeTrack(index) {
  const t = {
    index, existsValue: value(false), nameValue: "",
    exists: () => t.existsValue,
    name: () => ({ set: (n) => { t.nameValue = n; record.names.push([index, n]); } }),
    clipLauncherSlotBank: () => ({ getItemAt: (slot) => ({ replaceInsertionPoint: () => ({
      insertFile: (p) => record.inserted.push([index, slot, p]) }) }) }),
  };
  return t;
}
for (let i = 0; i < 128; i++) tracks.push(makeTrack(i));
for (let i = 0; i < (scenario.tracks || 2); i++) { tracks[i].existsValue.set(true); }
itemCount.set(scenario.tracks || 2);
function addTrack(kind) {
  record.created.push(kind);
  const i = itemCount.get();
  tracks[i].existsValue.set(true);
  itemCount.set(i + 1);
}

const host = {
  defineController: (...a) => { record.defined = a; },
  defineMidiPorts: () => {},
  showPopupNotification: (t) => record.popups.push(t),
  scheduleTask: (f, ms) => tasks.push(f),
  createTransport: () => ({
    tempo: () => ({ value: () => tempo }),
    timeSignature: () => ({ numerator: () => num, denominator: () => den }),
    playStartPosition: () => playStart,
  }),
  createApplication: () => ({ createInstrumentTrack: () => addTrack("instrument"), createAudioTrack: () => addTrack("audio") }),
  createCursorTrack: () => ({ name: () => trackName, trackType: () => trackType }),
  createMainTrackBank: () => ({ itemCount: () => itemCount, getItemAt: (i) => tracks[i] }),
  createLauncherCursorClip: () => ({
    exists: () => clipExists,
    setStepSize: (s) => { record.stepSize = s; },
    getLoopLength: () => loopLength,
    addNoteStepObserver: (f) => observers.steps.push(f),
  }),
  getOscModule: () => ({
    createAddressSpace: () => ({
      registerMethod: (address, types, description, f) => { methods[address] = f; },
      registerDefaultMethod: () => {},
    }),
    createUdpServer: (port) => { record.listenPort = port; },
    connectToUdpServer: (h, p) => ({ sendMessage: (address, ...args) => record.sent.push(
      [h, p, address, args.length === 1 && args[0] && args[0].javaArray ? Array.from(args[0]) : args]) }),
  }),
  getDocumentState: () => ({
    getSignalSetting: (label, category, action) => ({ addSignalObserver: (f) => {
      signals[label] = f; firstSignal = firstSignal || label; record.settings = (record.settings || []).concat([["signal", label, action]]);
    } }),
    getStringSetting: (label, category, numChars, initial) => {
      const v = value(initial);
      strings[label] = v;
      record.settings = (record.settings || []).concat([["string", label, initial]]);
      return v;
    },
    getEnumSetting: (label, category, options, initial) => {
      const v = value(initial);
      strings[label] = v;  // set_string chooses an option
      record.settings = (record.settings || []).concat([["enum", label, options, initial]]);
      return v;
    },
  }),
};

const Java = {
  to: (array, type) => {  // a JS array as a Java array (what a varargs call takes)
    if (type !== "java.lang.Object[]") throw new Error("Java.to to " + type);
    const out = Array.from(array);
    out.javaArray = true;
    return out;
  },
  type: (name) => {
    if (name === "java.io.File") return function (p) { this.getParentFile = () => ({ mkdirs: () => fs.mkdirSync(path.dirname(p), { recursive: true }) }); };
    if (name === "java.io.FileOutputStream") return function (p) { const bytes = []; this.write = (b) => bytes.push(b & 255); this.close = () => fs.writeFileSync(p, Buffer.from(bytes)); };
    if (name === "java.lang.System") return { getProperty: (k) => scenario.home };
    throw new Error("no Java type " + name);
  },
};

const sandbox = { host, Java, loadAPI: (v) => { record.api = v; }, println: (t) => record.println.push(String(t)) };
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(script, "utf8"), sandbox, { filename: script });
sandbox.init();

function msg(args) {
  return { getString: (i) => String(args[i]), getFloat: (i) => Number(args[i]), getInt: (i) => args[i] | 0,
           getArguments: () => ({ size: () => args.length, get: (i) => args[i] }) };
}
function runTasks() { for (let n = 0; n < 100 && tasks.length; n++) tasks.shift()(); }

for (const step of scenario.steps) {
  if (step.tempo !== undefined) tempo._fire(step.tempo);
  if (step.meter) { num._fire(step.meter[0]); den._fire(step.meter[1]); }
  if (step.play_start !== undefined) playStart._fire(step.play_start);
  if (step.track !== undefined) trackName._fire(step.track);
  if (step.track_type !== undefined) trackType._fire(step.track_type);
  if (step.clip_exists !== undefined) clipExists._fire(step.clip_exists);
  if (step.loop_length !== undefined) loopLength._fire(step.loop_length);
  for (const s of step.notes || []) {
    const st = { channel: () => s.channel || 0, x: () => s.x, y: () => s.y, duration: () => s.duration,
                 velocity: () => s.velocity, state: () => s.state || "NoteOn" };
    observers.steps.forEach((f) => f(st));
  }
  if (step.set_string) strings[step.set_string[0]]._fire(step.set_string[1]);
  if (step.press) signals[step.press === true ? firstSignal : step.press]();
  if (step.call) record.called = (record.called || []).concat([vm.runInContext(step.call, sandbox)]);
  if (step.osc) { methods[step.osc[0]]({}, msg(step.osc.slice(1))); runTasks(); }
}
process.stdout.write("REPORT " + JSON.stringify(record) + "\n");
