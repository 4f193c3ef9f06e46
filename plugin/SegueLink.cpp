// Segue Link: a stereo effect that captures its track on the host's bar grid for Segue, tells Segue the host's
// transport, and plays a chosen variant back in sync. One source, built as CLAP, VST3 and LV2 with DPF.
// This file is DPF's glue: parameters, state, activation. The audio thread's work is in link_audio.hpp (never
// allocates, locks, or touches files or sockets), the worker thread's in link_worker.hpp; they share
// link_shared.hpp (lock-free ring and queues, link_rt.hpp). See plugin/README.md.
// SPDX-License-Identifier: MIT

#include "DistrhoPlugin.hpp"
#include "DistrhoPluginUtils.hpp"

#include "link_audio.hpp"
#include "link_worker.hpp"

#include <unistd.h>

START_NAMESPACE_DISTRHO

using namespace segue_link;

enum ParamId { kArm, kBars, kPlay, kMix, kStatus, kConnected, kParamCount };
enum StateId { kStateTrack, kStateGroup, kStatePort, kStateVariant, kStateCount };

class SegueLink : public Plugin {
public:
    SegueLink()
        : Plugin(kParamCount, 0, kStateCount),
          fShared(isDummyInstance() ? 16 : kRingFrames, std::strcmp(getPluginFormatName(), "CLAP") != 0),
          fAudio(fShared),
          fWorker(fShared) {
        static std::atomic<uint32_t> instances{0};
        const uint32_t n = isDummyInstance() ? 0 : ++instances;
        char id[64];
        std::snprintf(id, sizeof(id), "link-%ld-%u", long(getpid()), n);
        fShared.instanceId = id;
        fShared.track = "Segue Link " + std::to_string(n);
        if (!isDummyInstance())
            fShared.slot = registerSlot(hashName(fShared.group));
    }
    ~SegueLink() override {
        fWorker.stop();
        releaseSlot(fShared.slot);
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
        case kArm: return fAudio.fArmParam;
        case kBars: return float(fAudio.fBarsParam);
        case kPlay: return fAudio.fPlayParam ? 1.0f : 0.0f;
        case kMix: return fAudio.fMixParam;
        case kStatus: return float(fShared.status.load());
        case kConnected: return fShared.connected.load() ? 1.0f : 0.0f;
        }
        return 0.0f;
    }

    void setParameterValue(uint32_t index, float value) override {
        switch (index) {
        case kArm: fAudio.fArmParam = value; break;
        case kBars: fAudio.fBarsParam = std::max(0, std::min(64, int(std::lround(value)))); break;
        case kPlay: fAudio.fPlayParam = value > 0.5f; break;
        case kMix: fAudio.fMixParam = std::max(0.0f, std::min(1.0f, value)); break;
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
        std::lock_guard<std::mutex> lock(fShared.config);
        const std::string k(key);
        if (k == "track") return String(fShared.track.c_str());
        if (k == "group") return String(fShared.group.c_str());
        if (k == "osc_port") return String(fShared.statePort > 0 ? std::to_string(fShared.statePort).c_str() : "9750");
        if (k == "variant") return String(fShared.variantSpec.c_str());
        return String();
    }

    void setState(const char* key, const char* value) override {
        const std::string k(key), v(value ? value : "");
        if (k == "variant") {  // a restored session: load now (not the audio thread), so a render has it at once
            fWorker.restoreVariant(v, getSampleRate() > 0 ? getSampleRate() : 48000.0);
            return;
        }
        std::lock_guard<std::mutex> lock(fShared.config);
        if (k == "track" && !v.empty())
            fShared.track = v;
        else if (k == "group") {
            fShared.group = v.empty() ? "default" : v;
            if (fShared.slot)
                fShared.slot->group.store(hashName(fShared.group));
        } else if (k == "osc_port")
            fShared.statePort = std::atoi(v.c_str());
    }

    void activate() override {
        fShared.sampleRate = getSampleRate();
        std::string spec;
        long rate;
        {
            std::lock_guard<std::mutex> lock(fShared.config);
            spec = fShared.variantSpec;
            rate = fShared.variantRate;
        }
        if (!spec.empty() && std::lround(fShared.sampleRate) != rate)
            fWorker.restoreVariant(spec, fShared.sampleRate);  // loaded at another rate before: again at this one
        fAudio.reset();
        if (!isDummyInstance())
            fWorker.start();
    }
    void deactivate() override { fWorker.stop(); }

#if DISTRHO_PLUGIN_WANT_MIDI_INPUT
    void run(const float** inputs, float** outputs, uint32_t frames, const MidiEvent* midi, uint32_t midiCount) override {
        fAudio.process(getTimePosition(), inputs, outputs, frames, midi, midiCount);
    }
#else
    void run(const float** inputs, float** outputs, uint32_t frames) override {
        fAudio.process(getTimePosition(), inputs, outputs, frames, nullptr, 0);
    }
#endif

private:
    LinkShared fShared;
    LinkAudio fAudio;
    LinkWorker fWorker;

    DISTRHO_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(SegueLink)
};

Plugin* createPlugin() { return new SegueLink(); }

END_NAMESPACE_DISTRHO
