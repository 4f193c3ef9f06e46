// Segue Link's variant hand-over (worker -> audio thread, plugin/link_audio.hpp stepPlayback) driven block by block
// from one thread, so that the cases a real host reaches only by chance come every time: the queue of buffers the
// audio thread lets go of ("retired", which the worker empties every 10 ms) is full when a new variant or a stop
// arrives. Prints one line per check and exits 1 if any fails. Built and run by tests/plugin/test_handover.py.
// SPDX-License-Identifier: MIT
#include "link_audio.hpp"

#include <cstdio>
#include <vector>

using namespace segue_link;

static int gFailed = 0;

static void check(bool ok, const char* what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    gFailed += ok ? 0 : 1;
}

// The PlayBuffers made here, each until it is freed (by this file's worker side or by the plugin's destructors):
// a fixed table, so that operator delete can strike them off without allocating.
static void* gMade[512];
static int gMadeCount = 0;

void operator delete(void* p) noexcept {
    for (int i = 0; p && i < gMadeCount; ++i)
        if (gMade[i] == p)
            gMade[i] = nullptr;
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }

static int living() {
    int n = 0;
    for (int i = 0; i < gMadeCount; ++i)
        n += gMade[i] != nullptr;
    return n;
}

static PlayBuffer* make(float value) {
    PlayBuffer* p = new PlayBuffer;
    p->frames = 1 << 16;
    p->data.assign(size_t(p->frames) * 2, value);
    p->placeQn = 0.0;  // plays from the first block on
    p->replace = true;
    if (gMadeCount < 512)
        gMade[gMadeCount++] = p;
    return p;
}

struct Rig {
    LinkShared shared{16, true};
    LinkAudio audio{shared};
    std::vector<float> inL = std::vector<float>(64, 0.0f), inR = std::vector<float>(64, 0.0f);
    std::vector<float> outL = std::vector<float>(64), outR = std::vector<float>(64);
    uint64_t frame = 0;

    Rig() { shared.sampleRate = 48000.0; }
    ~Rig() { drain(); }

    // One 64-frame block, transport rolling at 120 BPM in 4/4 from bar 1; returns the block's first output sample.
    float block() {
        TimePosition tp;
        tp.playing = true;
        tp.frame = frame;
        tp.bbt.valid = true;
        tp.bbt.beatsPerMinute = 120.0;
        tp.bbt.beatsPerBar = 4.0f;
        tp.bbt.beatType = 4.0f;
        tp.bbt.ticksPerBeat = 1920.0;
        const double beats = double(frame) / 24000.0;  // 120 BPM at 48 kHz
        tp.bbt.bar = int32_t(beats / 4.0) + 1;
        tp.bbt.beat = int32_t(beats - 4.0 * (tp.bbt.bar - 1)) + 1;
        tp.bbt.tick = (beats - std::floor(beats)) * 1920.0;
        const float* in[2] = {inL.data(), inR.data()};
        float* out[2] = {outL.data(), outR.data()};
        audio.process(tp, in, out, 64, nullptr, 0);
        frame += 64;
        return outL[0];
    }
    // The worker's side: free what the audio thread let go of.
    void drain() {
        PlayBuffer* p;
        while (shared.retired.pop(p))
            delete p;
    }
    // Fill the retired queue with buffers of the worker's own, as if it had not run for a while.
    int fill() {
        for (int n = 0;; ++n) {
            PlayBuffer* p = make(-1.0f);
            if (!shared.retired.push(p)) {
                delete p;
                return n;
            }
        }
    }
    // The worker's side of /segue/link/play: a newer variant replaces one the audio thread has not taken yet.
    void publish(float value) { delete shared.pending.exchange(make(value)); }
};

int main() {
    {
        Rig r;
        r.publish(0.25f);
        check(r.block() == 0.25f, "a variant handed over plays from the next block");

        const int full = r.fill();
        check(full > 0, "the retired queue can be filled");
        r.publish(0.5f);
        const float played = r.block();
        check(played == 0.25f, "while the retired queue is full the playing variant goes on");
        check(r.shared.pending.load() == nullptr,
              "a variant taken while the queue is full waits in the audio thread, not in `pending` (which the worker "
              "may fill with a newer one at any moment)");
        r.publish(0.75f);  // the worker: a newer variant, while the last one still waits
        r.drain();         // the worker runs again
        float last = 0.0f;
        for (int i = 0; i < 4; ++i)
            last = r.block();
        check(last == 0.75f, "the newest variant plays once the queue has room");
    }
    check(living() == 0, "every variant made was freed (none leaked)");
    {
        Rig r;
        r.publish(0.25f);
        r.block();
        r.fill();
        r.shared.stopPlay.store(true);  // /segue/link/stop
        check(r.block() == 0.0f, "a stop while the retired queue is full silences the variant at once");
        r.drain();
        r.block();
        check(r.block() == 0.0f, "and it stays stopped once the queue has room");
        r.drain();
        r.publish(0.5f);  // a new play after the stop
        r.block();
        check(r.block() == 0.5f, "a variant sent after the stop plays");
    }
    check(living() == 0, "every variant made was freed after the stops");
    std::printf("%s\n", gFailed ? "FAILED" : "PASSED");
    return gFailed ? 1 : 0;
}
