// Segue Link: what the audio thread and the worker thread share (lock-free queues, atomics; the config strings
// behind a mutex that only non-real-time threads take).
// SPDX-License-Identifier: MIT
#pragma once

#include "link_group.hpp"
#include "link_rt.hpp"

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace segue_link {

static const char* const kVersion = "0.1.0";
static const uint32_t kRingFrames = 1u << 19;  // 2.7 s at 192 kHz, 11 s at 48 kHz; the worker drains every few ms

enum Status { kIdle = 0, kArmed = 1, kRecording = 2, kSounding = 3 };
enum EventKind : uint8_t { evStart, evEnd, evAbort, evMidi, evNote };
enum Reason : int32_t { rStopped, rJumped, rOverflow, rNoLoop, rWithdrawn, rBusy, rTempo, rMeter };

// What the audio thread tells the worker, in order.
struct Event {
    EventKind kind;
    int32_t reason;
    uint32_t id;
    uint64_t stamp;  // FrameRing::written() when the event happened
    double a, b, c;  // start: startQn, tempo, bars; end: lengthQn, mean tempo; midi: qn; note: values
    int32_t num, den, loop;
    uint8_t midi[3];
};

// A variant ready to play, made by the worker, handed to the audio thread through LinkShared::pending.
struct PlayBuffer {
    std::vector<float> data;  // interleaved stereo at the host rate
    int64_t frames = 0;
    double placeQn = 0;
    bool replace = false;
    std::string path;
};

struct LinkShared {
    LinkShared(uint32_t ringFrames, bool transportFrames) : ring(ringFrames, 2), frameIsTransport(transportFrames) {}
    ~LinkShared() {
        PlayBuffer* p;
        while (retired.pop(p))
            delete p;
        delete pending.exchange(nullptr);
    }

    FrameRing ring;                     // captured audio, audio thread -> worker
    SpscQueue<Event, 4096> events;      // capture events, audio thread -> worker
    SpscQueue<PlayBuffer*, 16> retired; // buffers the audio thread let go of, for the worker to free
    std::atomic<PlayBuffer*> pending{nullptr};  // the next variant, worker -> audio thread
    std::atomic<bool> stopPlay{false};
    TransportBox transport;
    GroupSlot* slot = nullptr;
    std::atomic<int> status{kIdle};
    std::atomic<bool> connected{false}, eventsLost{false};
    double sampleRate = 48000.0;        // set while the worker is stopped (activate)
    const bool frameIsTransport;        // the host's frame is its transport position (LV2, VST3; not CLAP)

    mutable std::mutex config;          // never taken on the audio thread
    std::string instanceId, track, group = "default", variantSpec;
    int statePort = 0;
    long variantRate = 0;
};

}  // namespace segue_link
