// Segue Link: the audio thread's side. Follows the host transport, captures on its bar grid into the shared ring,
// plays the variant the worker handed over. No allocation, lock, file or socket I/O here.
// SPDX-License-Identifier: MIT
#pragma once

#include "DistrhoPlugin.hpp"

#include "link_shared.hpp"

#include <cmath>
#include <cstring>

namespace segue_link {

using DISTRHO_NAMESPACE::MidiEvent;
using DISTRHO_NAMESPACE::TimePosition;

class LinkAudio {
public:
    explicit LinkAudio(LinkShared& shared) : fS(shared) {}
    ~LinkAudio() {
        delete fCurrent;
        delete fNext;
    }

    void reset() {
        fPrevPlaying = false;
        fPlayIdxValid = false;
    }
    void process(const TimePosition& tp, const float** inputs, float** outputs, uint32_t frames,
                 const MidiEvent* midi, uint32_t midiCount);

    // parameters (the host writes them between process calls)
    float fArmParam = 0.0f, fMixParam = 1.0f;
    int fBarsParam = 4;
    bool fPlayParam = true;

private:
    struct Now {
        bool valid, playing, jumped, backward;
        double posQn, tempoQn, qnPerFrame, barQn, inBarQn, barStartQn;
        int num, den;
    };
    Now readTransport(const TimePosition& tp, uint32_t frames);
    void stepCapture(const Now& t, const float** in, uint32_t frames, const MidiEvent* midi, uint32_t midiCount,
                     double prevEndQn);
    void recordBars(const Now& t, const float** in, uint32_t from, uint32_t frames, const MidiEvent* midi,
                    uint32_t midiCount);
    void startCapture(const Now& t, double startQn);
    void endCapture(int32_t reason, bool ok, double lengthQn);
    void recordFrames(const Now& t, const float** in, uint32_t from, uint32_t to, const MidiEvent* midi,
                      uint32_t midiCount);
    bool stepPlayback(const Now& t, const float** in, float** out, uint32_t frames);
    void handOver();
    // Gives `b` to the worker to free (`b` becomes null); false, `b` kept, while the worker's queue is full.
    bool retire(PlayBuffer*& b) {
        if (b && !fS.retired.push(b))
            return false;
        b = nullptr;
        return true;
    }
    void pushEvent(Event e) {
        e.stamp = fS.ring.written();
        if (!fS.events.push(e))
            fS.eventsLost = true;
    }
    static int64_t framesUntil(const Now& t, double targetQn) {
        return int64_t(std::ceil((targetQn - t.posQn) / t.qnPerFrame - 1e-7));
    }

    LinkShared& fS;
    PlayBuffer* fCurrent = nullptr;
    PlayBuffer* fNext = nullptr;  // taken from `pending` while `retired` was full: plays once fCurrent is retired
    bool fStopWanted = false;     // a stop not yet done (`retired` was full): the variant is silent meanwhile
    bool fPrevPlaying = false, fPrevValid = false, fArmHigh = false;
    double fExpectQn = 0.0, fPrevTempo = 0.0, fPrevPos = 0.0;
    uint64_t fPrevFrame = 0, fPrevFrames = 0;
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
};

inline LinkAudio::Now LinkAudio::readTransport(const TimePosition& tp, uint32_t frames) {
    Now t{};
    t.playing = tp.playing;
    t.valid = tp.bbt.valid && tp.bbt.beatsPerMinute > 0.0 && tp.bbt.beatsPerBar > 0.0f && tp.bbt.beatType > 0.0f &&
              tp.bbt.ticksPerBeat > 0.0;
    t.num = t.valid ? int(std::lround(tp.bbt.beatsPerBar)) : 4;
    t.den = t.valid ? int(std::lround(tp.bbt.beatType)) : 4;
    const double qnPerBeat = 4.0 / t.den;
    const double bpm = t.valid ? tp.bbt.beatsPerMinute : 120.0;
    t.tempoQn = bpm * qnPerBeat;
    t.qnPerFrame = t.tempoQn / 60.0 / fS.sampleRate;
    t.barQn = t.num * qnPerBeat;
    t.inBarQn = t.valid ? ((tp.bbt.beat - 1) + tp.bbt.tick / tp.bbt.ticksPerBeat) * qnPerBeat : 0.0;
    t.barStartQn = t.valid ? (tp.bbt.bar - 1) * t.barQn : 0.0;
    if (fS.frameIsTransport && t.valid) {
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
    fS.transport.publish(s);
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

inline void LinkAudio::process(const TimePosition& tp, const float** inputs, float** outputs, uint32_t frames,
                        const MidiEvent* midi, uint32_t midiCount) {
    if (frames == 0)
        return;
    const double expectedBefore = fExpectQn;  // where the previous block said this one starts
    const Now t = readTransport(tp, frames);

    // Capture requests: this instance's Capture parameter (rising edge) arms the whole group; the group's requests
    // (from any member or from Segue's /segue/link/capture) arrive in this instance's slot.
    const bool high = fArmParam > 0.5f;
    if (high && !fArmHigh && fS.slot)
        armGroup(fS.slot->group.load(), fBarsParam);
    fArmHigh = high;
    if (fS.slot) {
        if (const uint64_t req = fS.slot->armRequest.exchange(0)) {
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
    fS.status.store(fCapState == kRecording ? kRecording : fCapState == kArmed ? kArmed : sounding ? kSounding : kIdle,
                  std::memory_order_relaxed);
}

inline void LinkAudio::startCapture(const Now& t, double startQn) {
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

inline void LinkAudio::endCapture(int32_t reason, bool ok, double lengthQn) {
    Event e{};
    e.kind = ok ? evEnd : evAbort;
    e.reason = reason;
    e.id = fCapId;
    e.a = lengthQn;
    const double seconds = double(fCapFrames) / fS.sampleRate;
    e.b = (fCapTempoChanged && seconds > 0) ? lengthQn * 60.0 / seconds : fCapTempo;
    e.loop = fCapTempoChanged;
    pushEvent(e);
}

inline void LinkAudio::recordFrames(const Now& t, const float** in, uint32_t from, uint32_t to, const MidiEvent* midi,
                             uint32_t midiCount) {
    if (to <= from)
        return;
    if (!fS.ring.write(in, from, to - from)) {
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

inline void LinkAudio::recordBars(const Now& t, const float** in, uint32_t from, uint32_t frames, const MidiEvent* midi,
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

inline void LinkAudio::stepCapture(const Now& t, const float** in, uint32_t frames, const MidiEvent* midi, uint32_t midiCount,
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

// The variant hand-over, worker -> audio thread. `pending` is only ever emptied here, never written back: the
// worker may put a newer variant there at any moment, and writing an older one back would drop the newer one (and
// leak it). What the audio thread lets go of goes to `retired`, which the worker empties every 10 ms; while it is
// full, a variant taken waits in fNext and a stop in fStopWanted (the variant silent meanwhile), for later blocks.
inline void LinkAudio::handOver() {
    if (fS.stopPlay.exchange(false))
        fStopWanted = true;
    if (fStopWanted && retire(fNext) && retire(fCurrent))
        fStopWanted = false;
    if (!fStopWanted && !fNext)
        fNext = fS.pending.exchange(nullptr);  // sent after any stop already seen: it plays
    if (fNext && retire(fCurrent)) {
        fCurrent = fNext;
        fNext = nullptr;
        fPlayIdxValid = false;
    }
}

inline bool LinkAudio::stepPlayback(const Now& t, const float** in, float** out, uint32_t frames) {
    handOver();
    const PlayBuffer* p = fStopWanted ? nullptr : fCurrent;
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

}  // namespace segue_link
