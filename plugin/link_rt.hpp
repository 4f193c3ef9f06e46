// Segue Link: lock-free pieces shared by the audio thread and the worker thread (no allocation after construction).
// SPDX-License-Identifier: MIT
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

namespace segue_link {

// Single-producer single-consumer ring of interleaved float frames. The audio thread writes, the worker reads.
// Capacity is fixed at construction (a power of two); the counters only grow, so "frames ever written" doubles as a
// stamp that events can refer to.
class FrameRing {
public:
    FrameRing(uint32_t capacityFrames, uint32_t channels)
        : fCap(capacityFrames), fMask(capacityFrames - 1), fChannels(channels),
          fData(static_cast<size_t>(capacityFrames) * channels, 0.0f) {}

    uint32_t channels() const { return fChannels; }
    uint64_t written() const { return fWrite.load(std::memory_order_acquire); }
    uint64_t readPos() const { return fRead.load(std::memory_order_acquire); }

    // Audio thread: append `frames` frames from per-channel pointers (offset `from`). False when it does not fit.
    bool write(const float* const* chans, uint32_t from, uint32_t frames) {
        const uint64_t w = fWrite.load(std::memory_order_relaxed);
        const uint64_t r = fRead.load(std::memory_order_acquire);
        if (w - r + frames > fCap)
            return false;
        for (uint32_t i = 0; i < frames; ++i) {
            float* dst = &fData[static_cast<size_t>((w + i) & fMask) * fChannels];
            for (uint32_t c = 0; c < fChannels; ++c)
                dst[c] = chans[c][from + i];
        }
        fWrite.store(w + frames, std::memory_order_release);
        return true;
    }

    // Worker: copy up to `maxFrames` frames (never past absolute stamp `until`) into `out`; returns frames copied.
    uint32_t read(float* out, uint32_t maxFrames, uint64_t until) {
        const uint64_t r = fRead.load(std::memory_order_relaxed);
        uint64_t w = fWrite.load(std::memory_order_acquire);
        if (w > until)
            w = until;
        if (w <= r)
            return 0;
        uint64_t n = w - r;
        if (n > maxFrames)
            n = maxFrames;
        for (uint64_t i = 0; i < n; ++i)
            std::memcpy(out + i * fChannels, &fData[static_cast<size_t>((r + i) & fMask) * fChannels],
                        sizeof(float) * fChannels);
        fRead.store(r + n, std::memory_order_release);
        return static_cast<uint32_t>(n);
    }

private:
    const uint32_t fCap, fMask, fChannels;
    std::vector<float> fData;
    std::atomic<uint64_t> fWrite{0}, fRead{0};
};

// Single-producer single-consumer queue of trivially copyable items, fixed size.
template <typename T, uint32_t N>
class SpscQueue {
    static_assert((N & (N - 1)) == 0, "N must be a power of two");

public:
    bool push(const T& item) {
        const uint32_t w = fWrite.load(std::memory_order_relaxed);
        if (w - fRead.load(std::memory_order_acquire) >= N)
            return false;
        fItems[w & (N - 1)] = item;
        fWrite.store(w + 1, std::memory_order_release);
        return true;
    }
    bool pop(T& item) {
        const uint32_t r = fRead.load(std::memory_order_relaxed);
        if (r == fWrite.load(std::memory_order_acquire))
            return false;
        item = fItems[r & (N - 1)];
        fRead.store(r + 1, std::memory_order_release);
        return true;
    }
    bool peek(T& item) const {
        const uint32_t r = fRead.load(std::memory_order_relaxed);
        if (r == fWrite.load(std::memory_order_acquire))
            return false;
        item = fItems[r & (N - 1)];
        return true;
    }

private:
    T fItems[N];
    std::atomic<uint32_t> fWrite{0}, fRead{0};
};

// The host transport as the audio thread last saw it, published with a sequence lock (one writer: the audio
// thread; readers retry). `changes` counts tempo/meter/play changes and jumps: the worker sends at once on a change.
struct TransportSnapshot {
    double tempo = 120.0;     // quarter notes per minute
    double positionQn = 0.0;  // quarter notes from the timeline start
    int32_t num = 4, den = 4;
    int32_t playing = 0;
    int32_t valid = 0;
    uint32_t changes = 0;
};

class TransportBox {
public:
    void publish(const TransportSnapshot& s) {
        const uint32_t v = fSeq.load(std::memory_order_relaxed);
        fSeq.store(v + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        fTempo.store(s.tempo, std::memory_order_relaxed);
        fPos.store(s.positionQn, std::memory_order_relaxed);
        fNum.store(s.num, std::memory_order_relaxed);
        fDen.store(s.den, std::memory_order_relaxed);
        fPlaying.store(s.playing, std::memory_order_relaxed);
        fValid.store(s.valid, std::memory_order_relaxed);
        fChanges.store(s.changes, std::memory_order_relaxed);
        fSeq.store(v + 2, std::memory_order_release);
    }
    TransportSnapshot read() const {
        TransportSnapshot s;
        for (;;) {
            const uint32_t v1 = fSeq.load(std::memory_order_acquire);
            s.tempo = fTempo.load(std::memory_order_relaxed);
            s.positionQn = fPos.load(std::memory_order_relaxed);
            s.num = fNum.load(std::memory_order_relaxed);
            s.den = fDen.load(std::memory_order_relaxed);
            s.playing = fPlaying.load(std::memory_order_relaxed);
            s.valid = fValid.load(std::memory_order_relaxed);
            s.changes = fChanges.load(std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_acquire);
            if ((v1 & 1) == 0 && v1 == fSeq.load(std::memory_order_relaxed))
                return s;
        }
    }

private:
    std::atomic<uint32_t> fSeq{0};
    std::atomic<double> fTempo{120.0}, fPos{0.0};
    std::atomic<int32_t> fNum{4}, fDen{4}, fPlaying{0}, fValid{0};
    std::atomic<uint32_t> fChanges{0};
};

}  // namespace segue_link
