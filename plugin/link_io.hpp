// Segue Link: files and the log, used ONLY on the worker thread (or outside process()): paths, the log, WAV/MIDI
// files written atomically, WAV reading and resampling. OSC and UDP are in link_osc.hpp.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <vector>

#ifdef _WIN32
#include <direct.h>
#include <io.h>
#include <winsock2.h>  // before windows.h
#include <windows.h>
#else
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace segue_link {

constexpr double kPi = 3.14159265358979323846;

// ---------------------------------------------------------------------------------------------------------------
// Paths and the log.

inline std::string envOr(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return (v && *v) ? std::string(v) : fallback;
}

inline std::string captureDir() {
    std::string dir = envOr("SEGUE_LINK_DIR", "");
    if (!dir.empty())
        return dir;
#ifdef _WIN32
    return envOr("LOCALAPPDATA", envOr("USERPROFILE", ".")) + "\\Segue\\link";
#else
    std::string data = envOr("XDG_DATA_HOME", "");
    if (data.empty())
        data = envOr("HOME", "/tmp") + "/.local/share";
    return data + "/segue/link";
#endif
}

inline bool makeDirs(const std::string& path) {
    for (size_t i = 1; i <= path.size(); ++i) {
        if (i == path.size() || path[i] == '/' || path[i] == '\\') {
            const std::string part = path.substr(0, i);
#ifdef _WIN32
            _mkdir(part.c_str());
#else
            ::mkdir(part.c_str(), 0755);
#endif
        }
    }
#ifdef _WIN32
    return _access(path.c_str(), 0) == 0;
#else
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
#endif
}

inline bool fileExists(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f)
        std::fclose(f);
    return f != nullptr;
}

// "<dir>/segue-link.log" and stderr; worker threads only.
inline void logLine(const char* fmt, ...) {
    static std::mutex mutex;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", std::localtime(&now));
    std::lock_guard<std::mutex> lock(mutex);
    std::fprintf(stderr, "[segue-link] %s\n", text);
    const std::string dir = captureDir();
    if (makeDirs(dir)) {
        if (FILE* f = std::fopen((dir + "/segue-link.log").c_str(), "a")) {
            std::fprintf(f, "%s %s\n", stamp, text);
            std::fclose(f);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Files written under a temporary name, checked, then given their final name without ever replacing a file.

inline bool syncAndClose(FILE* f) {
    bool ok = std::fflush(f) == 0 && !std::ferror(f);
#ifndef _WIN32
    ok = ok && ::fsync(fileno(f)) == 0;
#endif
    return (std::fclose(f) == 0) && ok;
}

// Gives `tmp` the name `finalPath` only if no file has it (link + unlink on POSIX, MoveFile on Windows).
inline bool renameNoReplace(const std::string& tmp, const std::string& finalPath) {
#ifdef _WIN32
    return MoveFileExA(tmp.c_str(), finalPath.c_str(), MOVEFILE_WRITE_THROUGH) != 0;
#else
    if (::link(tmp.c_str(), finalPath.c_str()) != 0)
        return false;
    ::unlink(tmp.c_str());
    return true;
#endif
}

inline void removeFile(const std::string& path) { std::remove(path.c_str()); }

// A streaming 32-bit float WAV writer; every write is checked (a full disk fails the file).
class WavWriter {
public:
    bool open(const std::string& path, uint32_t rate, uint32_t channels) {
        fPath = path;
        fRate = rate;
        fChannels = channels;
        fFrames = 0;
        fOk = true;
        fErr = 0;
        fFile = std::fopen(path.c_str(), "wb");
        if (!fFile) {
            fail();
            return false;
        }
        writeHeader();
        return fOk;
    }
    bool isOpen() const { return fFile != nullptr; }
    bool ok() const { return fOk; }
    int error() const { return fErr; }  // errno of the first failure
    uint64_t frames() const { return fFrames; }
    void write(const float* interleaved, uint32_t frames) {
        if (!fFile || !fOk || frames == 0)
            return;
        if (std::fwrite(interleaved, sizeof(float) * fChannels, frames, fFile) != frames)
            fail();
        fFrames += frames;
    }
    // Rewrites the header with the final sizes, syncs and closes. False on any failure.
    bool finish() {
        if (!fFile)
            return false;
        if (fOk && std::fseek(fFile, 0, SEEK_SET) == 0)
            writeHeader();
        else
            fail();
        if (!syncAndClose(fFile))
            fail();
        fFile = nullptr;
        return fOk;
    }
    void abandon() {
        if (fFile)
            std::fclose(fFile);
        fFile = nullptr;
        removeFile(fPath);
    }

private:
    void put32(uint32_t v) { const uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)}; raw(b, 4); }
    void put16(uint16_t v) { const uint8_t b[2] = {uint8_t(v), uint8_t(v >> 8)}; raw(b, 2); }
    void raw(const void* p, size_t n) { if (std::fwrite(p, 1, n, fFile) != n) fail(); }
    void fail() {
        if (fOk || fErr == 0)
            fErr = errno;
        fOk = false;
    }
    void writeHeader() {
        const uint64_t dataBytes64 = fFrames * fChannels * 4;
        const uint32_t dataBytes = dataBytes64 > 0xFFFFFF00u ? 0xFFFFFF00u : uint32_t(dataBytes64);
        raw("RIFF", 4); put32(4 + 26 + 12 + 8 + dataBytes); raw("WAVE", 4);
        raw("fmt ", 4); put32(18); put16(3); put16(uint16_t(fChannels)); put32(fRate);
        put32(fRate * fChannels * 4); put16(uint16_t(fChannels * 4)); put16(32); put16(0);
        raw("fact", 4); put32(4); put32(uint32_t(fFrames));
        raw("data", 4); put32(dataBytes);
    }
    FILE* fFile = nullptr;
    std::string fPath;
    uint32_t fRate = 48000, fChannels = 2;
    uint64_t fFrames = 0;
    bool fOk = true;
    int fErr = 0;
};

// A Standard MIDI File (format 0, 960 ticks per quarter note) of the notes that passed during a capture.
struct MidiNote {
    double qn;  // quarter notes from the capture's start
    uint8_t bytes[3];
};

inline bool writeMidiFile(const std::string& path, const std::vector<MidiNote>& notes, double tempoQn, int num,
                          int den, double lengthQn) {
    std::string trk;
    auto varlen = [&](uint32_t v) {
        uint8_t buf[5];
        int n = 0;
        buf[n++] = v & 0x7F;
        while (v >>= 7)
            buf[n++] = 0x80 | (v & 0x7F);
        while (n)
            trk += char(buf[--n]);
    };
    const uint32_t usPerQn = uint32_t(std::lround(60000000.0 / (tempoQn > 0 ? tempoQn : 120.0)));
    int denPow = 0;
    while ((1 << denPow) < den && denPow < 7)
        ++denPow;
    varlen(0); trk += "\xFF\x51\x03"; trk += char(usPerQn >> 16); trk += char(usPerQn >> 8); trk += char(usPerQn);
    varlen(0); trk += "\xFF\x58\x04"; trk += char(num); trk += char(denPow); trk += char(24); trk += char(8);
    uint32_t last = 0;
    const uint32_t endTick = uint32_t(std::lround(lengthQn * 960.0));
    bool held[16][128] = {};
    auto event = [&](uint32_t tick, const uint8_t* b) {
        varlen(tick - last);
        last = tick;
        trk.append(reinterpret_cast<const char*>(b), 3);
    };
    for (const MidiNote& n : notes) {
        uint32_t tick = uint32_t(std::lround(std::max(0.0, n.qn) * 960.0));
        tick = std::min(std::max(tick, last), endTick);
        const uint8_t kind = n.bytes[0] & 0xF0, ch = n.bytes[0] & 0x0F, key = n.bytes[1] & 0x7F;
        if (kind == 0x90 && n.bytes[2] > 0)
            held[ch][key] = true;
        else if (kind == 0x80 || kind == 0x90)
            held[ch][key] = false;
        event(tick, n.bytes);
    }
    for (int ch = 0; ch < 16; ++ch)
        for (int key = 0; key < 128; ++key)
            if (held[ch][key]) {  // a note still held when the capture ended stops at its end
                const uint8_t off[3] = {uint8_t(0x80 | ch), uint8_t(key), 0};
                event(std::max(endTick, last), off);
            }
    varlen(std::max(endTick, last) - last);
    trk += "\xFF\x2F";
    trk += '\0';
    std::string file = std::string("MThd\0\0\0\x06\0\0\0\x01\x03\xC0", 14) + "MTrk";
    const uint32_t len = uint32_t(trk.size());
    file += char(len >> 24); file += char(len >> 16); file += char(len >> 8); file += char(len);
    file += trk;
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f)
        return false;
    const bool wrote = std::fwrite(file.data(), 1, file.size(), f) == file.size();
    const bool closed = syncAndClose(f);
    if (!(wrote && closed))
        removeFile(path);
    return wrote && closed;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a variant: WAV PCM 16/24/32-bit or float 32/64-bit, any channels (the first two are used; mono is copied
// to both), into interleaved stereo floats. Errors are explained in `error`.

inline bool readWav(const std::string& path, std::vector<float>& stereo, uint32_t& rate, std::string& error) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        error = "cannot open " + path + ": " + std::strerror(errno);
        return false;
    }
    std::vector<uint8_t> bytes;
    uint8_t buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
        bytes.insert(bytes.end(), buf, buf + n);
        if (bytes.size() > (size_t(1) << 31)) {
            std::fclose(f);
            error = path + " is larger than 2 GiB";
            return false;
        }
    }
    std::fclose(f);
    auto u16 = [&](size_t p) { return uint32_t(bytes[p]) | (uint32_t(bytes[p + 1]) << 8); };
    auto u32 = [&](size_t p) { return u16(p) | (u16(p + 2) << 16); };
    if (bytes.size() < 12 || std::memcmp(&bytes[0], "RIFF", 4) != 0 || std::memcmp(&bytes[8], "WAVE", 4) != 0) {
        error = path + " is not a WAV file (RIFF/WAVE)";
        return false;
    }
    uint32_t format = 0, channels = 0, bits = 0;
    size_t dataPos = 0, dataLen = 0;
    for (size_t p = 12; p + 8 <= bytes.size();) {
        const uint32_t len = u32(p + 4);
        if (std::memcmp(&bytes[p], "fmt ", 4) == 0 && len >= 16 && p + 8 + 16 <= bytes.size()) {
            format = u16(p + 8);
            channels = u16(p + 10);
            rate = u32(p + 12);
            bits = u16(p + 22);
            if (format == 0xFFFE && len >= 40 && p + 8 + 26 <= bytes.size())
                format = u16(p + 8 + 24);
        } else if (std::memcmp(&bytes[p], "data", 4) == 0) {
            dataPos = p + 8;
            dataLen = std::min<size_t>(len, bytes.size() - dataPos);
            break;
        }
        p += 8 + len + (len & 1);
    }
    const bool pcm = format == 1 && (bits == 16 || bits == 24 || bits == 32);
    const bool flt = format == 3 && (bits == 32 || bits == 64);
    if (!(pcm || flt) || channels == 0 || rate < 1000 || rate > 768000 || dataPos == 0) {
        error = path + ": unsupported WAV (Segue Link plays PCM 16/24/32-bit or float 32/64-bit WAV, got format " +
                std::to_string(format) + ", " + std::to_string(bits) + " bits, " + std::to_string(channels) +
                " channels)";
        return false;
    }
    const size_t width = bits / 8, frames = dataLen / (width * channels);
    stereo.assign(frames * 2, 0.0f);
    for (size_t i = 0; i < frames; ++i)
        for (uint32_t c = 0; c < 2; ++c) {
            const size_t p = dataPos + (i * channels + (c < channels ? c : 0)) * width;
            float v = 0.0f;
            if (flt && bits == 32) std::memcpy(&v, &bytes[p], 4);
            else if (flt) { double d; std::memcpy(&d, &bytes[p], 8); v = float(d); }
            else if (bits == 16) v = float(int16_t(u16(p))) / 32768.0f;
            else if (bits == 24) v = float(int32_t(u16(p) << 8 | uint32_t(bytes[p + 2]) << 24) >> 8) / 8388608.0f;
            else v = float(double(int32_t(u32(p))) / 2147483648.0);
            stereo[i * 2 + c] = v;
        }
    return true;
}

// Windowed-sinc resampling of interleaved stereo (Blackman window, 32 zero crossings a side, cut-off below the
// lower Nyquist). Same rate: returned untouched.
inline std::vector<float> resampleStereo(const std::vector<float>& in, uint32_t from, uint32_t to) {
    if (from == to || in.empty())
        return in;
    const size_t inFrames = in.size() / 2;
    const double ratio = double(to) / double(from);
    const size_t outFrames = size_t(std::floor(double(inFrames) * ratio));
    const double cutoff = std::min(1.0, ratio) * 0.97;  // relative to the input's Nyquist
    const int half = int(std::ceil(32.0 / cutoff));
    std::vector<float> out(outFrames * 2, 0.0f);
    for (size_t j = 0; j < outFrames; ++j) {
        const double t = double(j) / ratio;
        const long centre = long(std::floor(t));
        double acc0 = 0, acc1 = 0, wsum = 0;
        for (long k = centre - half + 1; k <= centre + half; ++k) {
            const double x = t - double(k);
            const double u = x / half;
            if (u <= -1.0 || u >= 1.0)
                continue;
            const double win = 0.42 + 0.5 * std::cos(kPi * u) + 0.08 * std::cos(2 * kPi * u);
            const double arg = kPi * x * cutoff;
            const double w = cutoff * (std::fabs(arg) < 1e-12 ? 1.0 : std::sin(arg) / arg) * win;
            wsum += w;
            if (k < 0 || size_t(k) >= inFrames)
                continue;
            acc0 += w * in[size_t(k) * 2];
            acc1 += w * in[size_t(k) * 2 + 1];
        }
        (void)wsum;
        out[j * 2] = float(acc0);
        out[j * 2 + 1] = float(acc1);
    }
    return out;
}

}  // namespace segue_link
