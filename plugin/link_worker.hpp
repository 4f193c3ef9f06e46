// Segue Link: the worker thread's side. Writes captures (atomically) and announces them, talks OSC with Segue
// (hello, transport, welcome, play, stop, capture), loads and resamples variants. Never waited on by the audio thread.
// SPDX-License-Identifier: MIT
#pragma once

#include "link_group.hpp"
#include "link_io.hpp"
#include "link_osc.hpp"
#include "link_shared.hpp"

#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

namespace segue_link {

class LinkWorker {
public:
    explicit LinkWorker(LinkShared& shared) : fS(shared) {}
    ~LinkWorker() { stop(); }

    void start();
    void stop();
    // Reads `path`, resamples it to `rate` and hands it to the audio thread; false with `error` when it cannot.
    bool loadVariant(const std::string& path, double placeQn, bool replace, double rate, std::string& error,
                     double& seconds);
    // Loads the variant of a saved "variant" state ("path\nposition_beats\nreplace"; "" forgets it).
    void restoreVariant(const std::string& spec, double rate);

private:
    void loop();
    void drainCapture(uint64_t until);
    void handleEvent(const Event& e);
    void finishFile(const Event& e);
    void receiveOsc();
    void send(const std::string& bytes) { fUdp.send(fPort, bytes); }
    void announce(Announcement& a) {
        const std::string msg = announcementMessage(a);
        if (!msg.empty()) {
            send(msg);
            logLine("capture %u announced to Segue on port %u (%zu track(s))", a.id, unsigned(fPort), a.members.size());
        }
    }

    LinkShared& fS;
    std::thread fThread;
    std::atomic<bool> fQuit{false};
    UdpLink fUdp;
    uint16_t fPort = 9750;
    WavWriter fWav;
    std::string fTmpPath;
    std::vector<MidiNote> fNotes;
    std::vector<float> fScratch;
    Event fOpenStart{};
    bool fFileFailed = false;
    std::chrono::steady_clock::time_point fLastWelcome{};
    std::string fSegueVersion;
};

inline void LinkWorker::start() {
    if (fThread.joinable())
        return;
    {
        std::lock_guard<std::mutex> lock(fS.config);
        const int env = std::atoi(envOr("SEGUE_OSC_PORT", "0").c_str());
        const int port = env > 0 ? env : fS.statePort > 0 ? fS.statePort : 9750;
        fPort = uint16_t(port > 0 && port < 65536 ? port : 9750);
    }
    fScratch.assign(size_t(8192) * 2, 0.0f);
    fQuit.store(false);
    fThread = std::thread(&LinkWorker::loop, this);
}

inline void LinkWorker::stop() {
    if (!fThread.joinable())
        return;
    fQuit.store(true);
    fThread.join();
}

inline std::string fileSafe(const std::string& s) {
    std::string out;
    for (unsigned char c : s)
        out += (c < 32 || std::strchr("/\\:*?\"<>|", c)) ? '-' : char(c);
    while (!out.empty() && (out[0] == '.' || out[0] == ' '))
        out.erase(0, 1);
    return out.empty() ? "track" : out.substr(0, 80);
}

inline void LinkWorker::drainCapture(uint64_t until) {
    for (;;) {
        const uint32_t n = fS.ring.read(fScratch.data(), 8192, until);
        if (n == 0)
            return;
        if (fWav.isOpen())
            fWav.write(fScratch.data(), n);
    }
}

inline void LinkWorker::handleEvent(const Event& e) {
    std::string track, group;
    {
        std::lock_guard<std::mutex> lock(fS.config);
        track = fS.track;
        group = fS.group;
    }
    StemResult r;
    r.track = track;
    Announcement ready;
    switch (e.kind) {
    case evStart: {
        fOpenStart = e;
        fNotes.clear();
        const std::string dir = captureDir();
        fTmpPath = dir + "/." + fS.instanceId + "-" + std::to_string(e.id) + ".wav.part";
        fFileFailed = !makeDirs(dir) || !fWav.open(fTmpPath, uint32_t(std::lround(fS.sampleRate)), 2);
        const int err = errno;
        logLine("%s: capture %u started at %.4f quarter notes (%s), %.3f BPM %d/%d", track.c_str(), e.id, e.a,
                e.loop ? "the loop's next pass" : (std::to_string(int(e.c)) + " bars").c_str(), e.b, e.num, e.den);
        if (fFileFailed)
            logLine("%s: cannot write %s (%s)", track.c_str(), fTmpPath.c_str(), std::strerror(err));
        return;
    }
    case evMidi:
        if (e.id == fOpenStart.id && fNotes.size() < 200000)
            fNotes.push_back(MidiNote{e.a, {e.midi[0], e.midi[1], e.midi[2]}});
        return;
    case evNote:
        if (e.reason == rTempo)
            logLine("%s: capture %u: tempo changed from %.3f to %.3f BPM at %.3f quarter notes into the capture "
                    "(recorded in beats; the mean tempo is announced)", track.c_str(), e.id, e.a, e.b, e.c);
        else if (e.reason == rJumped)
            logLine("%s: capture %u: the host's position went from %.6f to %.6f quarter notes", track.c_str(), e.id,
                    e.a, e.b);
        else if (e.reason == rBusy)
            logLine("%s: capture %u asked while a capture is running; ignored", track.c_str(), e.id);
        return;
    case evAbort:
        if (fWav.isOpen() && e.id == fOpenStart.id)
            fWav.abandon();
        if (e.reason == rJumped) {
            logLine("%s: capture %u: the transport jumped; discarded, starting again at the next bar line",
                    track.c_str(), e.id);
            return;
        }
        r.outcome = e.reason == rWithdrawn ? Outcome::Withdrawn : Outcome::Failed;
        r.why = e.reason == rStopped ? "the transport stopped before the end"
                : e.reason == rOverflow ? "the disk could not keep up (capture buffer overflowed)"
                : e.reason == rNoLoop ? "no loop wrap within 64 bars: is the host looping?"
                : "replaced by a new capture";
        logLine("%s: capture %u: %s", track.c_str(), e.id, r.why.c_str());
        break;
    case evEnd:
        finishFile(e);
        return;
    }
    if (board().report(e.id, group, r, ready))
        announce(ready);
}

inline void LinkWorker::finishFile(const Event& e) {
    std::string track, group;
    {
        std::lock_guard<std::mutex> lock(fS.config);
        track = fS.track;
        group = fS.group;
    }
    const Event& s = fOpenStart;
    StemResult r;
    r.track = track;
    r.startQn = s.a;
    r.lengthQn = e.a;
    r.tempo = e.b;
    r.num = s.num;
    r.den = s.den;
    const uint64_t frames = fWav.frames();
    const bool wrote = !fFileFailed && fWav.isOpen() && fWav.finish();
    const int err = fWav.error();
    bool notes = false;
    for (const MidiNote& n : fNotes)
        notes = notes || ((n.bytes[0] & 0xF0) == 0x90 && n.bytes[2] > 0);
    if (wrote) {
        const std::string dir = captureDir();
        char stamp[32];
        const std::time_t now = std::time(nullptr);
        std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H-%M-%S", std::localtime(&now));
        const long bar = long(std::floor(s.a / (s.num * 4.0 / s.den) + 1e-9)) + 1;
        const std::string base = dir + "/" + fileSafe(track) + " bar " + std::to_string(bar) + " " + stamp;
        const std::string tmpMid = fTmpPath + ".mid";
        const bool midOk = !notes || writeMidiFile(tmpMid, fNotes, s.b, s.num, s.den, e.a);
        for (int n = 1; midOk && n < 1000 && r.wav.empty(); ++n) {
            const std::string stem = base + (n == 1 ? "" : " " + std::to_string(n));
            if (fileExists(stem + ".wav") || (notes && fileExists(stem + ".mid")))
                continue;
            if (notes && !renameNoReplace(tmpMid, stem + ".mid"))
                continue;
            if (!renameNoReplace(fTmpPath, stem + ".wav")) {
                if (notes)
                    removeFile(stem + ".mid");
                continue;
            }
            r.wav = stem + ".wav";
            r.mid = notes ? stem + ".mid" : "";
        }
        removeFile(tmpMid);
        if (!r.wav.empty()) {
            r.outcome = Outcome::Written;
            logLine("%s: capture %u written: %s (%llu frames, %.4f quarter notes from %.4f, %.3f BPM%s)%s",
                    track.c_str(), e.id, r.wav.c_str(), (unsigned long long)frames, e.a, s.a, e.b,
                    e.loop ? ", the mean of a changing tempo" : "", notes ? " with its MIDI" : "");
        } else {
            r.why = midOk ? "no free file name" : "could not write the MIDI file (disk full?)";
        }
    } else {
        r.why = std::string("could not write the audio (") + (err ? std::strerror(err) : "error") + ")";
    }
    if (r.outcome != Outcome::Written) {
        removeFile(fTmpPath);
        logLine("%s: capture %u failed: %s; nothing announced, no file left", track.c_str(), e.id, r.why.c_str());
    }
    fNotes.clear();
    Announcement ready;
    if (board().report(e.id, group, r, ready))
        announce(ready);
}

inline bool LinkWorker::loadVariant(const std::string& path, double placeQn, bool replace, double rate, std::string& error,
                            double& seconds) {
    std::unique_ptr<PlayBuffer> p(new PlayBuffer);
    uint32_t fileRate = 0;
    if (!readWav(path, p->data, fileRate, error))
        return false;
    const uint32_t hostRate = uint32_t(std::lround(rate));
    p->data = resampleStereo(p->data, fileRate, hostRate);
    p->frames = int64_t(p->data.size() / 2);
    p->placeQn = placeQn;
    p->replace = replace;
    p->path = path;
    seconds = double(p->frames) / hostRate;
    char spec[64];
    std::snprintf(spec, sizeof(spec), "\n%.17g\n%d", placeQn, replace ? 1 : 0);
    {
        std::lock_guard<std::mutex> lock(fS.config);
        fS.variantSpec = path + spec;
        fS.variantRate = long(hostRate);
    }
    delete fS.pending.exchange(p.release());
    logLine("play: loaded %s (%.3f s, %u Hz -> %u Hz) at %.4f quarter notes, %s", path.c_str(), seconds, fileRate,
            hostRate, placeQn, replace ? "replacing the input" : "mixed with the input");
    return true;
}

inline void LinkWorker::restoreVariant(const std::string& spec, double rate) {
    const size_t a = spec.find('\n'), b = a == std::string::npos ? a : spec.find('\n', a + 1);
    if (spec.empty() || b == std::string::npos) {
        std::lock_guard<std::mutex> lock(fS.config);
        fS.variantSpec.clear();
        return;
    }
    std::string error;
    double seconds = 0;
    if (!loadVariant(spec.substr(0, a), std::atof(spec.substr(a + 1, b - a - 1).c_str()),
                     std::atoi(spec.substr(b + 1).c_str()) != 0, rate, error, seconds))
        logLine("restoring the session's variant: %s", error.c_str());
}

inline void LinkWorker::receiveOsc() {
    static thread_local char buf[65536];
    std::string address;
    std::vector<OscArg> args;
    int n;
    while ((n = fUdp.receive(buf, sizeof(buf))) >= 0) {
        if (!oscParse(buf, size_t(n), address, args))
            continue;
        auto num = [&](size_t i) { return i < args.size() && args[i].type != 's'; };
        if (address == "/segue/link/welcome") {
            fLastWelcome = std::chrono::steady_clock::now();
            fSegueVersion = args.empty() ? "" : args[0].s;
        } else if (address == "/segue/link/play" && args.size() >= 3 && args[0].type == 's' && num(1) && num(2)) {
            std::string error;
            double seconds = 0;
            if (loadVariant(args[0].s, args[1].d, args[2].i != 0, fS.sampleRate, error, seconds)) {
                send(OscOut("/segue/link/loaded").s(fS.instanceId).s(args[0].s).f(float(seconds)).bytes());
            } else {
                send(OscOut("/segue/link/error").s(fS.instanceId).s(error).bytes());
                logLine("play: %s", error.c_str());
            }
        } else if (address == "/segue/link/stop") {
            delete fS.pending.exchange(nullptr);  // not yet taken by the audio thread: never plays
            fS.stopPlay.store(true);
            {
                std::lock_guard<std::mutex> lock(fS.config);
                fS.variantSpec.clear();
            }
            logLine("play: stopped");
        } else if (address == "/segue/link/capture" && num(0)) {
            std::lock_guard<std::mutex> lock(fS.config);
            armGroup(hashName(fS.group), std::max(0, std::min(64, args[0].i)));
        } else {
            send(OscOut("/segue/link/error").s(fS.instanceId).s("Segue Link does not understand " + address +
                 " with these arguments (see docs/osc.md)").bytes());
        }
    }
}

inline void LinkWorker::loop() {
    using clock = std::chrono::steady_clock;
    if (!fUdp.open())
        logLine("%s: cannot open a UDP socket on 127.0.0.1; Segue will not hear from this instance",
                fS.instanceId.c_str());
    clock::time_point lastHello{}, lastTransport{};
    fLastWelcome = clock::time_point{};
    uint32_t lastChanges = ~0u;
    bool wasConnected = false, saidMissing = false;
    const clock::time_point started = clock::now();
    for (;;) {
        const bool quitting = fQuit.load();
        Event e;
        while (fS.events.peek(e)) {
            drainCapture(e.stamp);
            fS.events.pop(e);
            handleEvent(e);
        }
        drainCapture(~uint64_t(0));
        if (quitting)
            break;
        receiveOsc();
        const clock::time_point now = clock::now();
        std::string track, group;
        {
            std::lock_guard<std::mutex> lock(fS.config);
            track = fS.track;
            group = fS.group;
        }
        if (now - lastHello >= std::chrono::seconds(2)) {
            send(OscOut("/segue/link/hello").s(fS.instanceId).s(track).s(group).i(int32_t(std::lround(fS.sampleRate)))
                     .s(kVersion).bytes());
            lastHello = now;
        }
        const TransportSnapshot ts = fS.transport.read();
        if (ts.valid && (ts.changes != lastChanges || (ts.playing && now - lastTransport >= std::chrono::milliseconds(100)))) {
            send(OscOut("/segue/link/transport").s(fS.instanceId).f(float(ts.tempo)).i(ts.num).i(ts.den)
                     .d(ts.positionQn).i(ts.playing).bytes());
            lastTransport = now;
            lastChanges = ts.changes;
        }
        const bool connected = fLastWelcome != clock::time_point{} && now - fLastWelcome < std::chrono::seconds(6);
        fS.connected.store(connected);
        if (connected && !wasConnected)
            logLine("%s: connected to Segue %s on port %u", track.c_str(), fSegueVersion.c_str(), unsigned(fPort));
        if (!connected && (wasConnected || (!saidMissing && now - started > std::chrono::seconds(6)))) {
            logLine("%s: Segue not running (no answer on 127.0.0.1:%u for 6 s); audio passes through, captures are "
                    "still written", track.c_str(), unsigned(fPort));
            saidMissing = true;
        }
        wasConnected = connected;
        PlayBuffer* old;
        while (fS.retired.pop(old))
            delete old;
        Announcement ready;
        if (board().poll(ready))
            announce(ready);
        if (fS.eventsLost) {
            logLine("%s: the event queue overflowed (too many MIDI events in one capture); some notes are missing",
                    track.c_str());
            fS.eventsLost = false;
        }
        // a few ms while a capture streams in (the ring holds 2.7 s at 192 kHz), 10 ms otherwise (transport: 10/s)
        std::this_thread::sleep_for(std::chrono::milliseconds(fWav.isOpen() ? 3 : 10));
    }
    if (fWav.isOpen()) {  // deactivated in the middle of a capture: nothing is left under a final name
        fWav.abandon();
        logLine("%s: deactivated during capture %u; discarded", fS.track.c_str(), fOpenStart.id);
    }
    send(OscOut("/segue/link/bye").s(fS.instanceId).bytes());
}

}  // namespace segue_link
