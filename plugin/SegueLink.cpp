// Segue Link: a stereo effect that captures its track on the host's bar grid for Segue, tells Segue the host's
// transport, and plays a chosen variant back in sync. One source, built as CLAP, VST3 and LV2 with DPF.
// The audio thread (run) never allocates, locks, or touches files or sockets: it talks to a worker thread through
// a lock-free ring of frames, a queue of events and atomics (link_rt.hpp). See plugin/README.md.
// SPDX-License-Identifier: MIT

#include "DistrhoPlugin.hpp"
#include "DistrhoPluginUtils.hpp"

#include "link_group.hpp"
#include "link_io.hpp"
#include "link_rt.hpp"

#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

START_NAMESPACE_DISTRHO

using namespace segue_link;

static const char* const kVersion = "0.1.0";
enum ParamId { kArm, kBars, kPlay, kMix, kStatus, kConnected, kParamCount };
enum StateId { kStateTrack, kStateGroup, kStatePort, kStateVariant, kStateCount };
enum Status { kIdle = 0, kArmed = 1, kRecording = 2, kSounding = 3 };
static const uint32_t kRingFrames = 1u << 19;  // 2.7 s at 192 kHz, 11 s at 48 kHz; the worker drains every few ms

enum EventKind : uint8_t { evStart, evEnd, evAbort, evMidi, evNote };
enum Reason : int32_t { rStopped, rJumped, rOverflow, rNoLoop, rWithdrawn, rBusy, rTempo, rMeter };

struct Event {
    EventKind kind;
    int32_t reason;
    uint32_t id;
    uint64_t stamp;  // FrameRing::written() when the event happened
    double a, b, c;  // start: startQn, tempo, bars; end: lengthQn, mean tempo; midi: qn; note: values
    int32_t num, den, loop;
    uint8_t midi[3];
};

struct PlayBuffer {
    std::vector<float> data;  // interleaved stereo at the host rate
    int64_t frames = 0;
    double placeQn = 0;
    bool replace = false;
    std::string path;
};

class SegueLink : public Plugin {
public:
    SegueLink()
        : Plugin(kParamCount, 0, kStateCount), fRing(isDummyInstance() ? 16 : kRingFrames, 2) {
        static std::atomic<uint32_t> instances{0};
        const uint32_t n = isDummyInstance() ? 0 : ++instances;
        char id[64];
        std::snprintf(id, sizeof(id), "link-%ld-%u", long(getpid()), n);
        fInstanceId = id;
        fTrack = "Segue Link " + std::to_string(n);
        fGroup = "default";
        if (!isDummyInstance())
            fSlot = registerSlot(hashName(fGroup));
    }
    ~SegueLink() override {
        stopWorker();
        releaseSlot(fSlot);
        delete fCurrent;
        PlayBuffer* p;
        while (fRetired.pop(p))
            delete p;
        delete fPending.exchange(nullptr);
    }

protected:
    const char* getLabel() const override { return "SegueLink"; }
    const char* getDescription() const override {
        return "Captures its track on the host's bar grid for Segue, follows the transport, plays variants back.";
    }
    const char* getMaker() const override { return "Segue"; }
    const char* getLicense() const override { return "MIT"; }
    uint32_t getVersion() const override { return d_version(0, 1, 0); }
    int64_t getUniqueId() const override { return d_cconst('S', 'g', 'L', 'k'); }

    void initAudioPort(bool input, uint32_t index, AudioPort& port) override {
        port.groupId = kPortGroupStereo;
        Plugin::initAudioPort(input, index, port);
    }

    void initParameter(uint32_t index, Parameter& p) override {
        p.hints = kParameterIsAutomatable;
        p.ranges.min = 0.0f;
        p.ranges.max = 1.0f;
        switch (index) {
        case kArm: p.hints |= kParameterIsTrigger; p.name = "Capture"; p.symbol = "arm"; p.ranges.def = 0; break;
        case kBars:
            p.hints |= kParameterIsInteger;
            p.name = "Bars (0 = loop)"; p.symbol = "bars"; p.ranges.max = 64; p.ranges.def = 4;
            break;
        case kPlay: p.hints |= kParameterIsBoolean; p.name = "Play variant"; p.symbol = "play"; p.ranges.def = 1; break;
        case kMix: p.name = "Variant level"; p.symbol = "mix"; p.ranges.def = 1; break;
        case kStatus:
            p.hints = kParameterIsOutput | kParameterIsInteger;
            p.name = "Status"; p.symbol = "status"; p.ranges.max = 3; p.ranges.def = 0;
            break;
        case kConnected:
            p.hints = kParameterIsOutput | kParameterIsBoolean;
            p.name = "Segue connected"; p.symbol = "connected"; p.ranges.def = 0;
            break;
        }
    }

    float getParameterValue(uint32_t index) const override {
        switch (index) {
        case kArm: return fArmParam;
        case kBars: return float(fBarsParam);
        case kPlay: return fPlayParam ? 1.0f : 0.0f;
        case kMix: return fMixParam;
        case kStatus: return float(fStatus.load());
        case kConnected: return fConnected.load() ? 1.0f : 0.0f;
        }
        return 0.0f;
    }

    void setParameterValue(uint32_t index, float value) override {
        switch (index) {
        case kArm: fArmParam = value; break;
        case kBars: fBarsParam = std::max(0, std::min(64, int(std::lround(value)))); break;
        case kPlay: fPlayParam = value > 0.5f; break;
        case kMix: fMixParam = std::max(0.0f, std::min(1.0f, value)); break;
        }
    }

    void initState(uint32_t index, State& s) override {
        s.hints = kStateIsHostWritable;
        switch (index) {
        case kStateTrack: s.key = "track"; s.defaultValue = ""; s.label = "Track name"; break;
        case kStateGroup: s.key = "group"; s.defaultValue = "default"; s.label = "Capture group"; break;
        case kStatePort: s.key = "osc_port"; s.defaultValue = "9750"; s.label = "Segue OSC port"; break;
        case kStateVariant:  // the variant Segue asked to play: "path\nposition_beats\nreplace" (a render reloads it)
            s.key = "variant"; s.defaultValue = ""; s.label = "Variant playing"; break;
        }
    }

    String getState(const char* key) const override {
        std::lock_guard<std::mutex> lock(fConfigMutex);
        const std::string k(key);
        if (k == "track") return String(fTrack.c_str());
        if (k == "group") return String(fGroup.c_str());
        if (k == "osc_port") return String(fStatePort > 0 ? std::to_string(fStatePort).c_str() : "9750");
        if (k == "variant") return String(fVariantSpec.c_str());
        return String();
    }

    void setState(const char* key, const char* value) override {
        const std::string k(key), v(value ? value : "");
        if (k == "variant") {  // a restored session: load now (not the audio thread), so a render has it at once
            restoreVariant(v);
            return;
        }
        std::lock_guard<std::mutex> lock(fConfigMutex);
        if (k == "track" && !v.empty())
            fTrack = v;
        else if (k == "group") {
            fGroup = v.empty() ? "default" : v;
            if (fSlot)
                fSlot->group.store(hashName(fGroup));
        } else if (k == "osc_port")
            fStatePort = std::atoi(v.c_str());
    }

    void activate() override {
        fSampleRate = getSampleRate();
        std::string spec;
        {
            std::lock_guard<std::mutex> lock(fConfigMutex);
            spec = fVariantSpec;
        }
        if (!spec.empty() && std::lround(fSampleRate) != fVariantRate)
            restoreVariant(spec);  // loaded at another rate before: again at this one
        fPrevPlaying = false;
        fPlayIdxValid = false;
        startWorker();
    }
    void deactivate() override { stopWorker(); }

#if DISTRHO_PLUGIN_WANT_MIDI_INPUT
    void run(const float** inputs, float** outputs, uint32_t frames, const MidiEvent* midi, uint32_t midiCount) override {
        process(inputs, outputs, frames, midi, midiCount);
    }
#else
    void run(const float** inputs, float** outputs, uint32_t frames) override {
        process(inputs, outputs, frames, nullptr, 0);
    }
#endif
    void process(const float** inputs, float** outputs, uint32_t frames, const MidiEvent* midi, uint32_t midiCount);

private:
    // ---- audio thread --------------------------------------------------------------------------------------
    struct Now {
        bool valid, playing, jumped, backward;
        double posQn, tempoQn, qnPerFrame, barQn, inBarQn, barStartQn;
        int num, den;
    };
    Now readTransport(uint32_t frames);
    void stepCapture(const Now& t, const float** in, uint32_t frames, const MidiEvent* midi, uint32_t midiCount,
                     double prevEndQn);
    void recordBars(const Now& t, const float** in, uint32_t from, uint32_t frames, const MidiEvent* midi,
                    uint32_t midiCount);
    void startCapture(const Now& t, double startQn);
    void endCapture(int32_t reason, bool ok, double lengthQn);
    void recordFrames(const Now& t, const float** in, uint32_t from, uint32_t to, const MidiEvent* midi,
                      uint32_t midiCount);
    bool stepPlayback(const Now& t, const float** in, float** out, uint32_t frames);
    void pushEvent(Event e) { e.stamp = fRing.written(); if (!fEvents.push(e)) fEventsLost = true; }
    static int64_t framesUntil(const Now& t, double targetQn) {
        return int64_t(std::ceil((targetQn - t.posQn) / t.qnPerFrame - 1e-7));
    }

    // ---- worker ---------------------------------------------------------------------------------------------
    void startWorker();
    void stopWorker();
    void workerLoop();
    void drainCapture(uint64_t until);
    void handleEvent(const Event& e);
    void finishFile(const Event& e);
    void receiveOsc();
    bool loadVariant(const std::string& path, double placeQn, bool replace, double rate, std::string& error,
                     double& seconds);
    void restoreVariant(const std::string& spec);
    void send(const std::string& bytes) { fUdp.send(fPort, bytes); }
    void announce(Announcement& a) {
        const std::string msg = announcementMessage(a);
        if (!msg.empty()) {
            send(msg);
            logLine("capture %u announced to Segue on port %u (%zu track(s))", a.id, unsigned(fPort), a.members.size());
        }
    }

    FrameRing fRing;
    SpscQueue<Event, 4096> fEvents;
    SpscQueue<PlayBuffer*, 16> fRetired;
    std::atomic<PlayBuffer*> fPending{nullptr};
    std::atomic<bool> fStopPlay{false};
    PlayBuffer* fCurrent = nullptr;
    TransportBox fTransport;
    GroupSlot* fSlot = nullptr;

    // parameters (host thread writes, audio thread reads)
    float fArmParam = 0.0f, fMixParam = 1.0f;
    int fBarsParam = 4;
    bool fPlayParam = true;
    std::atomic<int> fStatus{kIdle};
    std::atomic<bool> fConnected{false};

    // audio-thread state
    double fSampleRate = 48000.0;
    bool fPrevPlaying = false, fPrevValid = false, fArmHigh = false, fEventsLost = false;
    double fExpectQn = 0.0, fPrevTempo = 0.0, fPrevPos = 0.0;
    uint64_t fPrevFrame = 0, fPrevFrames = 0;
    const bool fFrameIsTransport = std::strcmp(getPluginFormatName(), "CLAP") != 0;
    int fPrevNum = 0, fPrevDen = 0;
    uint32_t fChanges = 0;
    int fCapState = kIdle;  // kIdle, kArmed, kRecording
    uint32_t fCapId = 0;
    int fCapBars = 0;
    double fCapStartQn = 0, fCapBarQn = 4, fCapTempo = 120, fCapLastTempo = 120, fPlayTempo = 0;
    uint64_t fCapFrames = 0;
    bool fCapTempoChanged = false;
    int64_t fPlayIdx = 0;
    bool fPlayIdxValid = false;

    // worker state
    std::thread fWorker;
    std::atomic<bool> fQuit{false};
    UdpLink fUdp;
    uint16_t fPort = 9750;
    mutable std::mutex fConfigMutex;
    std::string fVariantSpec;
    long fVariantRate = 0;
    std::string fInstanceId, fTrack, fGroup;
    int fStatePort = 0;
    WavWriter fWav;
    std::string fTmpPath;
    std::vector<MidiNote> fNotes;
    std::vector<float> fScratch;
    Event fOpenStart{};
    bool fFileFailed = false;
    std::chrono::steady_clock::time_point fLastWelcome{};
    std::string fSegueVersion;

    DISTRHO_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(SegueLink)
};

// =====================================================================================================================
// Audio thread

SegueLink::Now SegueLink::readTransport(uint32_t frames) {
    const TimePosition& tp = getTimePosition();
    Now t{};
    t.playing = tp.playing;
    t.valid = tp.bbt.valid && tp.bbt.beatsPerMinute > 0.0 && tp.bbt.beatsPerBar > 0.0f && tp.bbt.beatType > 0.0f &&
              tp.bbt.ticksPerBeat > 0.0;
    t.num = t.valid ? int(std::lround(tp.bbt.beatsPerBar)) : 4;
    t.den = t.valid ? int(std::lround(tp.bbt.beatType)) : 4;
    const double qnPerBeat = 4.0 / t.den;
    const double bpm = t.valid ? tp.bbt.beatsPerMinute : 120.0;
    t.tempoQn = bpm * qnPerBeat;
    t.qnPerFrame = t.tempoQn / 60.0 / fSampleRate;
    t.barQn = t.num * qnPerBeat;
    t.inBarQn = t.valid ? ((tp.bbt.beat - 1) + tp.bbt.tick / tp.bbt.ticksPerBeat) * qnPerBeat : 0.0;
    t.barStartQn = t.valid ? (tp.bbt.bar - 1) * t.barQn : 0.0;
    if (fFrameIsTransport && t.valid) {
        // LV2 and VST3 give the transport's sample position too (CLAP's is DPF's steady time). (1) While the frames
        // run on without a gap, the bar count is taken from continuity: DPF 1.6's LV2 wrapper does not count bars
        // between the host's position messages (jalv sends one only on a change), so its bar number lags.
        const bool contiguous = t.playing && fPrevPlaying && fPrevValid && tp.frame == fPrevFrame + fPrevFrames;
        if (contiguous)
            t.barStartQn = t.barQn * std::round((fExpectQn - t.inBarQn) / t.barQn);
        // (2) The host's beats are rounded to its ticks (Ardour: 1/1920 beat, 14 samples at 97.5 BPM and 44.1 kHz);
        // when the sample position at this tempo agrees with them to within a tick and a half, it is the exact one.
        const double fromFrame = double(tp.frame) * t.qnPerFrame;
        const double tickQn = qnPerBeat / tp.bbt.ticksPerBeat;
        if (tp.frame > 0 && std::fabs(fromFrame - (t.barStartQn + t.inBarQn)) <= 1.5 * tickQn) {
            t.inBarQn = fromFrame - t.barStartQn;
        }
    }
    t.posQn = t.barStartQn + t.inBarQn;
    const double tol = std::max(1e-3, 4.0 * t.qnPerFrame);
    const bool rolling = t.valid && t.playing && fPrevValid && fPrevPlaying;
    t.jumped = rolling && std::fabs(t.posQn - fExpectQn) > tol;
    t.backward = t.jumped && t.posQn < fExpectQn;
    const bool located = !t.playing && t.valid && std::fabs(t.posQn - fPrevPos) > 1e-9;
    const bool changed = t.jumped || located || t.playing != fPrevPlaying || t.valid != fPrevValid || t.num != fPrevNum ||
                         t.den != fPrevDen || std::fabs(t.tempoQn - fPrevTempo) > 1e-6;
    if (changed)
        ++fChanges;
    TransportSnapshot s;
    s.tempo = t.tempoQn;
    s.positionQn = t.posQn;
    s.num = t.num;
    s.den = t.den;
    s.playing = t.playing ? 1 : 0;
    s.valid = t.valid ? 1 : 0;
    s.changes = fChanges;
    fTransport.publish(s);
    fPrevPlaying = t.playing;
    fPrevValid = t.valid;
    fPrevNum = t.num;
    fPrevDen = t.den;
    fPrevTempo = t.tempoQn;
    fExpectQn = t.posQn + frames * t.qnPerFrame;
    fPrevPos = t.posQn;
    fPrevFrame = tp.frame;
    fPrevFrames = frames;
    return t;
}

void SegueLink::process(const float** inputs, float** outputs, uint32_t frames, const MidiEvent* midi,
                        uint32_t midiCount) {
    if (frames == 0)
        return;
    const double expectedBefore = fExpectQn;  // where the previous block said this one starts
    const Now t = readTransport(frames);

    // Capture requests: this instance's Capture parameter (rising edge) arms the whole group; the group's requests
    // (from any member or from Segue's /segue/link/capture) arrive in this instance's slot.
    const bool high = fArmParam > 0.5f;
    if (high && !fArmHigh && fSlot)
        armGroup(fSlot->group.load(), fBarsParam);
    fArmHigh = high;
    if (fSlot) {
        if (const uint64_t req = fSlot->armRequest.exchange(0)) {
            const uint32_t id = uint32_t(req >> 32);
            const int bars = int(uint32_t(req) - 1);
            if (fCapState == kRecording) {
                Event e{}; e.kind = evNote; e.reason = rBusy; e.id = id; pushEvent(e);
            } else {
                if (fCapState == kArmed) {  // a new press replaces the waiting one
                    Event e{}; e.kind = evAbort; e.reason = rWithdrawn; e.id = fCapId; pushEvent(e);
                }
                acceptCapture(id);
                fCapId = id;
                fCapBars = bars;
                fCapState = kArmed;
            }
        }
    }
    stepCapture(t, inputs, frames, midi, midiCount, expectedBefore);
    const bool sounding = stepPlayback(t, inputs, outputs, frames);
    fStatus.store(fCapState == kRecording ? kRecording : fCapState == kArmed ? kArmed : sounding ? kSounding : kIdle,
                  std::memory_order_relaxed);
}

void SegueLink::startCapture(const Now& t, double startQn) {
    fCapState = kRecording;
    fCapStartQn = startQn;
    fCapBarQn = t.barQn;
    fCapTempo = fCapLastTempo = t.tempoQn;
    fCapTempoChanged = false;
    fCapFrames = 0;
    Event e{};
    e.kind = evStart;
    e.id = fCapId;
    e.a = startQn;
    e.b = t.tempoQn;
    e.c = fCapBars;
    e.num = t.num;
    e.den = t.den;
    e.loop = fCapBars == 0;
    pushEvent(e);
}

void SegueLink::endCapture(int32_t reason, bool ok, double lengthQn) {
    Event e{};
    e.kind = ok ? evEnd : evAbort;
    e.reason = reason;
    e.id = fCapId;
    e.a = lengthQn;
    const double seconds = double(fCapFrames) / fSampleRate;
    e.b = (fCapTempoChanged && seconds > 0) ? lengthQn * 60.0 / seconds : fCapTempo;
    e.loop = fCapTempoChanged;
    pushEvent(e);
}

void SegueLink::recordFrames(const Now& t, const float** in, uint32_t from, uint32_t to, const MidiEvent* midi,
                             uint32_t midiCount) {
    if (to <= from)
        return;
    if (!fRing.write(in, from, to - from)) {
        endCapture(rOverflow, false, 0);
        fCapState = kIdle;
        return;
    }
    fCapFrames += to - from;
    for (uint32_t i = 0; i < midiCount; ++i) {
        const MidiEvent& m = midi[i];
        const uint8_t kind = m.size >= 3 ? (m.data[0] & 0xF0) : 0;
        if ((kind != 0x80 && kind != 0x90) || m.frame < from || m.frame >= to)
            continue;
        Event e{};
        e.kind = evMidi;
        e.id = fCapId;
        e.a = t.posQn + m.frame * t.qnPerFrame - fCapStartQn;
        std::memcpy(e.midi, m.data, 3);
        pushEvent(e);
    }
}

void SegueLink::recordBars(const Now& t, const float** in, uint32_t from, uint32_t frames, const MidiEvent* midi,
                           uint32_t midiCount) {
    const double lengthQn = fCapBars * fCapBarQn;
    const int64_t left = framesUntil(t, fCapStartQn + lengthQn);
    const uint32_t to = uint32_t(std::max<int64_t>(from, std::min<int64_t>(frames, left)));
    recordFrames(t, in, from, to, midi, midiCount);
    if (fCapState == kRecording && left <= int64_t(frames)) {
        endCapture(0, true, lengthQn);
        fCapState = kIdle;
    }
}

void SegueLink::stepCapture(const Now& t, const float** in, uint32_t frames, const MidiEvent* midi, uint32_t midiCount,
                            double prevEndQn) {
    if (fCapState == kRecording) {
        if (!t.valid || !t.playing) {
            endCapture(rStopped, false, 0);
            fCapState = kIdle;
            return;
        }
        if (t.jumped && fCapBars == 0 && t.backward) {  // the loop wrapped: its pass ended where the last block did
            endCapture(0, true, prevEndQn - fCapStartQn);
            fCapState = kIdle;
            return;
        }
        if (t.jumped) {  // a locate or a loop shorter than the capture: start again at the next bar line
            Event e{};
            e.kind = evNote; e.reason = rJumped; e.id = fCapId; e.a = prevEndQn; e.b = t.posQn;
            pushEvent(e);
            endCapture(rJumped, false, 0);
            fCapState = kArmed;
        } else {
            if (std::fabs(t.tempoQn - fCapLastTempo) > 1e-6) {
                Event e{};
                e.kind = evNote; e.reason = rTempo; e.id = fCapId;
                e.a = fCapLastTempo; e.b = t.tempoQn; e.c = t.posQn - fCapStartQn;
                pushEvent(e);
                fCapLastTempo = t.tempoQn;
                fCapTempoChanged = true;
            }
            if (fCapBars > 0) {
                recordBars(t, in, 0, frames, midi, midiCount);
            } else {
                recordFrames(t, in, 0, frames, midi, midiCount);
                if (fCapState == kRecording && fCapFrames * t.qnPerFrame > 64.0 * fCapBarQn) {
                    endCapture(rNoLoop, false, 0);  // 64 bars and no wrap: the host is not looping
                    fCapState = kIdle;
                }
            }
            return;
        }
    }
    if (fCapState != kArmed || !t.valid || !t.playing)
        return;
    if (fCapBars == 0) {  // the loop range on its next pass: starts where the host wraps
        if (t.backward) {
            startCapture(t, t.posQn);
            recordFrames(t, in, 0, frames, midi, midiCount);
        }
        return;
    }
    // the first bar line at or after this block's first sample (half a sample's grace for rounding)
    const double target = t.barStartQn + t.barQn * std::ceil((t.inBarQn - 0.5 * t.qnPerFrame) / t.barQn);
    const int64_t off = std::max<int64_t>(0, framesUntil(t, target));
    if (off >= int64_t(frames))
        return;
    startCapture(t, target);
    recordBars(t, in, uint32_t(std::max<int64_t>(0, off)), frames, midi, midiCount);
}

bool SegueLink::stepPlayback(const Now& t, const float** in, float** out, uint32_t frames) {
    if (fStopPlay.exchange(false) && fCurrent) {
        if (fRetired.push(fCurrent))
            fCurrent = nullptr;
    }
    if (PlayBuffer* p = fPending.exchange(nullptr)) {
        if (fCurrent && !fRetired.push(fCurrent))
            fPending.store(p);  // the worker has not freed the last ones yet: take it next block
        else {
            fCurrent = p;
            fPlayIdxValid = false;
        }
    }
    const PlayBuffer* p = fCurrent;
    bool sounding = false;
    if (p && fPlayParam && t.valid && t.playing) {
        const int64_t idx = -int64_t(std::ceil((p->placeQn - t.posQn) / t.qnPerFrame - 1e-7));
        if (!fPlayIdxValid || t.jumped || std::fabs(t.tempoQn - fPlayTempo) > 1e-9 || std::llabs(idx - fPlayIdx) > 2)
            fPlayIdx = idx;
        const float gain = fMixParam;
        const float dry = p->replace ? 0.0f : 1.0f;
        for (uint32_t i = 0; i < frames; ++i) {
            const int64_t k = fPlayIdx + i;
            if (k >= 0 && k < p->frames) {
                sounding = true;
                for (uint32_t c = 0; c < 2; ++c)
                    out[c][i] = dry * in[c][i] + gain * p->data[size_t(k) * 2 + c];
            } else {
                for (uint32_t c = 0; c < 2; ++c)
                    out[c][i] = in[c][i];
            }
        }
        fPlayIdx += frames;
        fPlayTempo = t.tempoQn;
        fPlayIdxValid = true;
        return sounding;
    }
    fPlayIdxValid = false;
    for (uint32_t c = 0; c < 2; ++c)
        if (out[c] != in[c])
            std::memmove(out[c], in[c], sizeof(float) * frames);
    return false;
}

// =====================================================================================================================
// Worker thread: files, sockets, loading variants. Never waited on by the audio thread.

void SegueLink::startWorker() {
    if (isDummyInstance() || fWorker.joinable())
        return;
    {
        std::lock_guard<std::mutex> lock(fConfigMutex);
        const int env = std::atoi(envOr("SEGUE_OSC_PORT", "0").c_str());
        const int port = env > 0 ? env : fStatePort > 0 ? fStatePort : 9750;
        fPort = uint16_t(port > 0 && port < 65536 ? port : 9750);
    }
    fScratch.assign(size_t(8192) * 2, 0.0f);
    fQuit.store(false);
    fWorker = std::thread(&SegueLink::workerLoop, this);
}

void SegueLink::stopWorker() {
    if (!fWorker.joinable())
        return;
    fQuit.store(true);
    fWorker.join();
}

static std::string fileSafe(const std::string& s) {
    std::string out;
    for (unsigned char c : s)
        out += (c < 32 || std::strchr("/\\:*?\"<>|", c)) ? '-' : char(c);
    while (!out.empty() && (out[0] == '.' || out[0] == ' '))
        out.erase(0, 1);
    return out.empty() ? "track" : out.substr(0, 80);
}

void SegueLink::drainCapture(uint64_t until) {
    for (;;) {
        const uint32_t n = fRing.read(fScratch.data(), 8192, until);
        if (n == 0)
            return;
        if (fWav.isOpen())
            fWav.write(fScratch.data(), n);
    }
}

void SegueLink::handleEvent(const Event& e) {
    std::string track, group;
    {
        std::lock_guard<std::mutex> lock(fConfigMutex);
        track = fTrack;
        group = fGroup;
    }
    StemResult r;
    r.track = track;
    Announcement ready;
    switch (e.kind) {
    case evStart: {
        fOpenStart = e;
        fNotes.clear();
        const std::string dir = captureDir();
        fTmpPath = dir + "/." + fInstanceId + "-" + std::to_string(e.id) + ".wav.part";
        fFileFailed = !makeDirs(dir) || !fWav.open(fTmpPath, uint32_t(std::lround(fSampleRate)), 2);
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

void SegueLink::finishFile(const Event& e) {
    std::string track, group;
    {
        std::lock_guard<std::mutex> lock(fConfigMutex);
        track = fTrack;
        group = fGroup;
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

bool SegueLink::loadVariant(const std::string& path, double placeQn, bool replace, double rate, std::string& error,
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
        std::lock_guard<std::mutex> lock(fConfigMutex);
        fVariantSpec = path + spec;
        fVariantRate = long(hostRate);
    }
    delete fPending.exchange(p.release());
    logLine("play: loaded %s (%.3f s, %u Hz -> %u Hz) at %.4f quarter notes, %s", path.c_str(), seconds, fileRate,
            hostRate, placeQn, replace ? "replacing the input" : "mixed with the input");
    return true;
}

void SegueLink::restoreVariant(const std::string& spec) {
    const size_t a = spec.find('\n'), b = a == std::string::npos ? a : spec.find('\n', a + 1);
    if (spec.empty() || b == std::string::npos) {
        std::lock_guard<std::mutex> lock(fConfigMutex);
        fVariantSpec.clear();
        return;
    }
    std::string error;
    double seconds = 0;
    const double rate = getSampleRate() > 0 ? getSampleRate() : 48000.0;
    if (!loadVariant(spec.substr(0, a), std::atof(spec.substr(a + 1, b - a - 1).c_str()),
                     std::atoi(spec.substr(b + 1).c_str()) != 0, rate, error, seconds))
        logLine("restoring the session's variant: %s", error.c_str());
}

void SegueLink::receiveOsc() {
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
            if (loadVariant(args[0].s, args[1].d, args[2].i != 0, fSampleRate, error, seconds)) {
                send(OscOut("/segue/link/loaded").s(fInstanceId).s(args[0].s).f(float(seconds)).bytes());
            } else {
                send(OscOut("/segue/link/error").s(fInstanceId).s(error).bytes());
                logLine("play: %s", error.c_str());
            }
        } else if (address == "/segue/link/stop") {
            delete fPending.exchange(nullptr);  // not yet taken by the audio thread: never plays
            fStopPlay.store(true);
            {
                std::lock_guard<std::mutex> lock(fConfigMutex);
                fVariantSpec.clear();
            }
            logLine("play: stopped");
        } else if (address == "/segue/link/capture" && num(0)) {
            std::lock_guard<std::mutex> lock(fConfigMutex);
            armGroup(hashName(fGroup), std::max(0, std::min(64, args[0].i)));
        } else {
            send(OscOut("/segue/link/error").s(fInstanceId).s("Segue Link does not understand " + address +
                 " with these arguments (see docs/osc.md)").bytes());
        }
    }
}

void SegueLink::workerLoop() {
    using clock = std::chrono::steady_clock;
    if (!fUdp.open())
        logLine("%s: cannot open a UDP socket on 127.0.0.1; Segue will not hear from this instance",
                fInstanceId.c_str());
    clock::time_point lastHello{}, lastTransport{};
    fLastWelcome = clock::time_point{};
    uint32_t lastChanges = ~0u;
    bool wasConnected = false, saidMissing = false;
    const clock::time_point started = clock::now();
    for (;;) {
        const bool quitting = fQuit.load();
        Event e;
        while (fEvents.peek(e)) {
            drainCapture(e.stamp);
            fEvents.pop(e);
            handleEvent(e);
        }
        drainCapture(~uint64_t(0));
        if (quitting)
            break;
        receiveOsc();
        const clock::time_point now = clock::now();
        std::string track, group;
        {
            std::lock_guard<std::mutex> lock(fConfigMutex);
            track = fTrack;
            group = fGroup;
        }
        if (now - lastHello >= std::chrono::seconds(2)) {
            send(OscOut("/segue/link/hello").s(fInstanceId).s(track).s(group).i(int32_t(std::lround(fSampleRate)))
                     .s(kVersion).bytes());
            lastHello = now;
        }
        const TransportSnapshot ts = fTransport.read();
        if (ts.valid && (ts.changes != lastChanges || (ts.playing && now - lastTransport >= std::chrono::milliseconds(100)))) {
            send(OscOut("/segue/link/transport").s(fInstanceId).f(float(ts.tempo)).i(ts.num).i(ts.den)
                     .d(ts.positionQn).i(ts.playing).bytes());
            lastTransport = now;
            lastChanges = ts.changes;
        }
        const bool connected = fLastWelcome != clock::time_point{} && now - fLastWelcome < std::chrono::seconds(6);
        fConnected.store(connected);
        if (connected && !wasConnected)
            logLine("%s: connected to Segue %s on port %u", track.c_str(), fSegueVersion.c_str(), unsigned(fPort));
        if (!connected && (wasConnected || (!saidMissing && now - started > std::chrono::seconds(6)))) {
            logLine("%s: Segue not running (no answer on 127.0.0.1:%u for 6 s); audio passes through, captures are "
                    "still written", track.c_str(), unsigned(fPort));
            saidMissing = true;
        }
        wasConnected = connected;
        PlayBuffer* old;
        while (fRetired.pop(old))
            delete old;
        Announcement ready;
        if (board().poll(ready))
            announce(ready);
        if (fEventsLost) {
            logLine("%s: the event queue overflowed (too many MIDI events in one capture); some notes are missing",
                    track.c_str());
            fEventsLost = false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
    if (fWav.isOpen()) {  // deactivated in the middle of a capture: nothing is left under a final name
        fWav.abandon();
        logLine("%s: deactivated during capture %u; discarded", fTrack.c_str(), fOpenStart.id);
    }
    send(OscOut("/segue/link/bye").s(fInstanceId).bytes());
}

Plugin* createPlugin() { return new SegueLink(); }

END_NAMESPACE_DISTRHO
