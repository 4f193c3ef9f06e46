// Segue Link: capture groups. Every instance in one process registers a slot; pressing Capture on one instance
// arms every slot of its group (lock-free, callable from the audio thread). Finished captures are collected on the
// worker threads (a mutex is fine there) and announced once: /segue/region for one track, /segue/region/stems
// for several.
// SPDX-License-Identifier: MIT
#pragma once

#include "link_io.hpp"
#include "link_osc.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cctype>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace segue_link {

constexpr uint32_t kMaxSlots = 256;
constexpr uint32_t kMaxStems = 16;  // Segue's engine.api.MAX_STEMS

struct GroupSlot {
    std::atomic<int> used{0};
    std::atomic<uint64_t> group{0};
    std::atomic<uint64_t> armRequest{0};  // (capture id << 32) | (bars + 1); 0 = nothing asked
};

struct GroupCapture {
    std::atomic<uint32_t> id{0};
    std::atomic<uint32_t> accepted{0};  // members whose audio thread took this capture
};

inline GroupSlot* slots() { static GroupSlot s[kMaxSlots]; return s; }
inline GroupCapture* captures() { static GroupCapture c[64]; return c; }
inline std::atomic<uint32_t>& captureCounter() { static std::atomic<uint32_t> n{0}; return n; }

inline uint64_t hashName(const std::string& s) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : s)
        h = (h ^ c) * 1099511628211ull;
    return h ? h : 1;
}

inline GroupSlot* registerSlot(uint64_t group) {
    for (uint32_t i = 0; i < kMaxSlots; ++i) {
        int expected = 0;
        if (slots()[i].used.compare_exchange_strong(expected, 1)) {
            slots()[i].group.store(group);
            slots()[i].armRequest.store(0);
            return &slots()[i];
        }
    }
    return nullptr;
}

inline void releaseSlot(GroupSlot* slot) {
    if (slot) {
        slot->armRequest.store(0);
        slot->used.store(0);
    }
}

// Arms every instance of `group` for `bars` bars (0: the loop range on its next pass). Lock-free, no allocation.
inline void armGroup(uint64_t group, int bars) {
    uint32_t id = captureCounter().fetch_add(1) + 1;
    if (id == 0)
        id = captureCounter().fetch_add(1) + 1;
    GroupCapture& c = captures()[id % 64];
    c.accepted.store(0);
    c.id.store(id);
    const uint64_t request = (uint64_t(id) << 32) | uint64_t(uint32_t(bars) + 1);
    for (uint32_t i = 0; i < kMaxSlots; ++i)
        if (slots()[i].used.load() && slots()[i].group.load() == group)
            slots()[i].armRequest.store(request);
}

inline void acceptCapture(uint32_t id) {
    GroupCapture& c = captures()[id % 64];
    if (c.id.load() == id)
        c.accepted.fetch_add(1);
}

// ---------------------------------------------------------------------------------------------------------------
// Worker side.

enum class Outcome { Written, Failed, Withdrawn };

struct StemResult {
    Outcome outcome = Outcome::Failed;
    std::string track, wav, mid, why;
    double startQn = 0, lengthQn = 0, tempo = 120;
    int num = 4, den = 4;
};

struct Announcement {
    std::vector<StemResult> members;
    std::string group;
    uint32_t id = 0;
};

// Lowercase letters, digits, '-' and '_', starting with a letter, at most 32 characters (Segue's stem names).
inline std::string stemName(const std::string& track) {
    std::string out;
    for (unsigned char c : track) {
        char k = char(std::tolower(c));
        if (!std::isalnum(c) && k != '_')
            k = '-';
        if (k == '-' && (out.empty() || out.back() == '-'))
            continue;
        out += k;
    }
    while (!out.empty() && out.back() == '-')
        out.pop_back();
    if (out.empty() || !std::isalpha(static_cast<unsigned char>(out[0])))
        out = "t-" + out;
    return out.substr(0, 28);
}

class GroupBoard {
public:
    // Records one member's outcome; returns true (and fills `ready`) when the capture is complete and due.
    bool report(uint32_t id, const std::string& group, const StemResult& r, Announcement& ready) {
        std::lock_guard<std::mutex> lock(fMutex);
        Pending* p = find(id);
        if (!p) {
            fPending.push_back(Pending{});
            p = &fPending.back();
            p->id = id;
            p->group = group;
            p->first = std::chrono::steady_clock::now();
        }
        p->results.push_back(r);
        return takeIfDue(ready, false);
    }
    // A member that never reports (its host stopped processing it) does not hold the others back for long.
    bool poll(Announcement& ready) {
        std::lock_guard<std::mutex> lock(fMutex);
        return takeIfDue(ready, true);
    }

private:
    struct Pending {
        uint32_t id = 0;
        std::string group;
        std::vector<StemResult> results;
        std::chrono::steady_clock::time_point first;
    };
    Pending* find(uint32_t id) {
        for (Pending& p : fPending)
            if (p.id == id)
                return &p;
        return nullptr;
    }
    bool takeIfDue(Announcement& ready, bool allowTimeout) {
        const auto now = std::chrono::steady_clock::now();
        for (size_t i = 0; i < fPending.size(); ++i) {
            Pending& p = fPending[i];
            const GroupCapture& c = captures()[p.id % 64];
            const uint32_t expected = c.id.load() == p.id ? c.accepted.load() : 0;
            const bool all = p.results.size() >= expected;
            const bool late = allowTimeout && now - p.first > std::chrono::seconds(10);
            if (!all && !late)
                continue;
            ready.id = p.id;
            ready.group = p.group;
            ready.members = p.results;
            if (!all)
                logLine("capture %u: %zu of %u tracks reported within 10 s; announcing those", p.id,
                        p.results.size(), expected);
            fPending.erase(fPending.begin() + long(i));
            return true;
        }
        return false;
    }
    std::mutex fMutex;
    std::vector<Pending> fPending;
};

inline GroupBoard& board() { static GroupBoard b; return b; }

// The OSC message that announces a finished capture, or "" (with the reason logged) when nothing is to be sent.
inline std::string announcementMessage(Announcement a) {
    std::vector<StemResult> written;
    for (const StemResult& m : a.members) {
        if (m.outcome == Outcome::Failed) {
            logLine("capture %u: %s failed (%s): nothing announced", a.id, m.track.c_str(), m.why.c_str());
            return "";
        }
        if (m.outcome == Outcome::Written)
            written.push_back(m);
    }
    if (written.empty())
        return "";
    std::sort(written.begin(), written.end(),
              [](const StemResult& x, const StemResult& y) { return x.track < y.track; });
    const StemResult& f = written.front();
    if (written.size() == 1) {
        OscOut m("/segue/region");
        m.s(f.wav).s(f.mid).f(float(f.startQn)).f(float(f.lengthQn)).f(float(f.tempo)).i(f.num).i(f.den).s(f.track);
        return m.bytes();
    }
    if (written.size() > kMaxStems) {
        logLine("capture %u: %zu tracks captured; Segue takes %u stems, so the first %u by track name are announced "
                "(every file stays in the capture folder)", a.id, written.size(), kMaxStems, kMaxStems);
        written.resize(kMaxStems);
    }
    OscOut m("/segue/region/stems");
    m.s("").s("").f(float(f.startQn)).f(float(f.lengthQn)).f(float(f.tempo)).i(f.num).i(f.den).s(a.group);
    std::vector<std::string> used;
    for (const StemResult& r : written) {
        std::string name = stemName(r.track), unique = name;
        for (int n = 2; std::find(used.begin(), used.end(), unique) != used.end(); ++n)
            unique = name + "-" + std::to_string(n);
        used.push_back(unique);
        m.s(unique).s(r.wav);
    }
    return m.bytes();
}

}  // namespace segue_link
