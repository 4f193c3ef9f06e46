// A small CLAP host for Segue Link's tests: loads a .clap, runs its instances over raw float input with a scripted
// transport (tempo, meter, start position, tempo changes, jumps, a loop, a stop), block sizes drawn at random
// between two bounds, and counts allocations, locks and I/O made on the audio thread during process().
//
// The counting works by defining malloc & co. in this executable (linked -rdynamic): every call from the plugin
// resolves here; a thread-local flag set only around plugin->process() decides what is counted. libc's own
// __libc_malloc family does the real work. Build: g++ -O1 -std=c++17 -rdynamic clap_host.cpp -ldl -o clap_host
// SPDX-License-Identifier: MIT
#include <clap/entry.h>
#include <clap/events.h>
#include <clap/ext/params.h>
#include <clap/ext/state.h>
#include <clap/plugin-factory.h>
#include <clap/plugin.h>
#include <clap/process.h>

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

// ------------------------------------------------------------------------------------------------------------------
// Counting interposers

static thread_local bool tCounting = false;
static std::atomic<long> gAllocs{0}, gFrees{0}, gLocks{0}, gIo{0};

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
void* __libc_memalign(size_t, size_t);

void* malloc(size_t n) { if (tCounting) ++gAllocs; return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { if (tCounting) ++gAllocs; return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { if (tCounting) ++gAllocs; return __libc_realloc(p, n); }
void free(void* p) { if (tCounting && p) ++gFrees; __libc_free(p); }
void* memalign(size_t a, size_t n) { if (tCounting) ++gAllocs; return __libc_memalign(a, n); }
void* aligned_alloc(size_t a, size_t n) { if (tCounting) ++gAllocs; return __libc_memalign(a, n); }
int posix_memalign(void** out, size_t a, size_t n) {
    if (tCounting) ++gAllocs;
    *out = __libc_memalign(a, n);
    return *out ? 0 : 12;
}

#define NEXT(name) reinterpret_cast<decltype(&name)>(dlsym(RTLD_NEXT, #name))
int pthread_mutex_lock(pthread_mutex_t* m) { if (tCounting) ++gLocks; static auto f = NEXT(pthread_mutex_lock); return f(m); }
int pthread_mutex_trylock(pthread_mutex_t* m) { if (tCounting) ++gLocks; static auto f = NEXT(pthread_mutex_trylock); return f(m); }
int pthread_cond_signal(pthread_cond_t* c) { if (tCounting) ++gLocks; static auto f = NEXT(pthread_cond_signal); return f(c); }
int pthread_cond_broadcast(pthread_cond_t* c) { if (tCounting) ++gLocks; static auto f = NEXT(pthread_cond_broadcast); return f(c); }
ssize_t write(int fd, const void* b, size_t n) { if (tCounting) ++gIo; static auto f = NEXT(write); return f(fd, b, n); }
ssize_t sendto(int s, const void* b, size_t n, int fl, const struct sockaddr* a, socklen_t l) {
    if (tCounting) ++gIo;
    static auto f = NEXT(sendto);
    return f(s, b, n, fl, a, l);
}
ssize_t send(int s, const void* b, size_t n, int fl) { if (tCounting) ++gIo; static auto f = NEXT(send); return f(s, b, n, fl); }
ssize_t recvfrom(int s, void* b, size_t n, int fl, struct sockaddr* a, socklen_t* l) {
    if (tCounting) ++gIo;
    static auto f = NEXT(recvfrom);
    return f(s, b, n, fl, a, l);
}
FILE* fopen(const char* p, const char* m) { if (tCounting) ++gIo; static auto f = NEXT(fopen); return f(p, m); }
size_t fwrite(const void* b, size_t s, size_t n, FILE* fp) { if (tCounting) ++gIo; static auto f = NEXT(fwrite); return f(b, s, n, fp); }
}

// ------------------------------------------------------------------------------------------------------------------
// Host callbacks (the plugin may call them; nothing is needed)

static const void* hostGetExtension(const clap_host_t*, const char*) { return nullptr; }
static void hostNoop(const clap_host_t*) {}
static clap_host_t gHost = {CLAP_VERSION_INIT, nullptr, "segue-test-host", "Segue", "", "1.0",
                            hostGetExtension, hostNoop, hostNoop, hostNoop};

struct EventList {
    std::vector<const clap_event_header_t*> items;
    static uint32_t size(const clap_input_events_t* l) {
        return uint32_t(static_cast<EventList*>(l->ctx)->items.size());
    }
    static const clap_event_header_t* get(const clap_input_events_t* l, uint32_t i) {
        return static_cast<EventList*>(l->ctx)->items[i];
    }
};
static bool pushOut(const clap_output_events_t*, const clap_event_header_t*) { return true; }

static void die(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fprintf(stderr, "\n");
    std::exit(2);
}

struct Timed { long frame; double a, b; int c; };

static int64_t streamWrite(const clap_ostream_t* s, const void* b, uint64_t n) {
    return int64_t(fwrite(b, 1, size_t(n), static_cast<FILE*>(s->ctx)));
}
static int64_t streamRead(const clap_istream_t* s, void* b, uint64_t n) {
    return int64_t(fread(b, 1, size_t(n), static_cast<FILE*>(s->ctx)));
}

int main(int argc, char** argv) {
    std::string plugin, inPath, outPath, waitFile, untilFile, stateIn, stateOut, stateWhen = "before";
    double rate = 48000, bpm = 120, startQn = 0, pace = 0, loopStart = -1, loopEnd = -1;
    int num = 4, den = 4, instances = 1, minBlock = 1, maxBlock = 8192;
    unsigned seed = 1;
    long stopFrame = -1, lingerMs = 300, fsize = -1;
    bool count = false, selftest = false, watchStatus = false;
    std::vector<Timed> params, notes, tempos, jumps;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> const char* { if (i + 1 >= argc) die("%s needs a value", a.c_str()); return argv[++i]; };
        if (a == "--plugin") plugin = next();
        else if (a == "--rate") rate = std::atof(next());
        else if (a == "--bpm") bpm = std::atof(next());
        else if (a == "--meter") { if (std::sscanf(next(), "%d/%d", &num, &den) != 2) die("--meter N/D"); }
        else if (a == "--start-qn") startQn = std::atof(next());
        else if (a == "--in") inPath = next();
        else if (a == "--out") outPath = next();
        else if (a == "--instances") instances = std::atoi(next());
        else if (a == "--blocks") { if (std::sscanf(next(), "%d:%d", &minBlock, &maxBlock) != 2) die("--blocks A:B"); }
        else if (a == "--seed") seed = unsigned(std::atol(next()));
        else if (a == "--param") { Timed t{}; if (std::sscanf(next(), "%ld:%d:%lf", &t.frame, &t.c, &t.a) != 3) die("--param F:ID:V"); params.push_back(t); }
        else if (a == "--note") { Timed t{}; if (std::sscanf(next(), "%ld:%d:%lf:%lf", &t.frame, &t.c, &t.a, &t.b) != 4) die("--note F:STATUS:KEY:VEL"); notes.push_back(t); }
        else if (a == "--tempo") { Timed t{}; if (std::sscanf(next(), "%ld:%lf", &t.frame, &t.a) != 2) die("--tempo F:BPM"); tempos.push_back(t); }
        else if (a == "--jump") { Timed t{}; if (std::sscanf(next(), "%ld:%lf", &t.frame, &t.a) != 2) die("--jump F:QN"); jumps.push_back(t); }
        else if (a == "--loop") { if (std::sscanf(next(), "%lf:%lf", &loopStart, &loopEnd) != 2) die("--loop A:B"); }
        else if (a == "--stop") stopFrame = std::atol(next());
        else if (a == "--wait-file") waitFile = next();
        else if (a == "--state-in") stateIn = next();
        else if (a == "--state-out") stateOut = next();
        else if (a == "--state-when") stateWhen = next();  // before, after (activate: Ardour 7's order) or both
        else if (a == "--until-file") untilFile = next();
        else if (a == "--pace") pace = std::atof(next());
        else if (a == "--linger-ms") lingerMs = std::atol(next());
        else if (a == "--fsize") fsize = std::atol(next());
        else if (a == "--count") count = true;
        else if (a == "--selftest") selftest = true;
        else if (a == "--watch-status") watchStatus = true;
        else die("unknown option %s", a.c_str());
    }
    if (fsize >= 0) {  // a "full disk" for the plugin's writer: writes past fsize bytes fail with EFBIG
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {rlim_t(fsize), RLIM_INFINITY};
        setrlimit(RLIMIT_FSIZE, &rl);
    }
    std::vector<float> input;
    if (FILE* f = fopen(inPath.c_str(), "rb")) {
        float buf[4096];
        size_t n;
        while ((n = fread(buf, sizeof(float), 4096, f)) > 0) input.insert(input.end(), buf, buf + n);
        fclose(f);
    } else die("cannot read --in %s", inPath.c_str());
    const long total = long(input.size() / 2);

    void* lib = dlopen(plugin.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) die("dlopen: %s", dlerror());
    auto entry = static_cast<const clap_plugin_entry_t*>(dlsym(lib, "clap_entry"));
    if (!entry || !entry->init(plugin.c_str())) die("no clap_entry");
    auto factory = static_cast<const clap_plugin_factory_t*>(entry->get_factory(CLAP_PLUGIN_FACTORY_ID));
    const clap_plugin_descriptor_t* desc = factory->get_plugin_descriptor(factory, 0);
    std::vector<const clap_plugin_t*> plugins;
    long setupAllocs = 0;
    plugins.reserve(size_t(instances));
    for (int k = 0; k < instances; ++k) {
        tCounting = count && k == 0;  // the plugin's own allocations while it is made: proves they are counted
        const clap_plugin_t* p = factory->create_plugin(factory, &gHost, desc->id);
        if (!p || !p->init(p)) die("create_plugin failed");
        auto loadState = [&]() {  // a saved session
            auto st = static_cast<const clap_plugin_state_t*>(p->get_extension(p, CLAP_EXT_STATE));
            FILE* f = fopen(stateIn.c_str(), "rb");
            clap_istream_t is = {f, streamRead};
            if (!st || !f || !st->load(p, &is)) die("cannot load the state %s", stateIn.c_str());
            fclose(f);
        };
        if (stateWhen != "before" && stateWhen != "after" && stateWhen != "both") die("--state-when before|after|both");
        if (!stateIn.empty() && stateWhen != "after")  // before activation, as most hosts do
            loadState();
        if (!p->activate(p, rate, 1, 8192)) die("activate failed");
        if (!stateIn.empty() && stateWhen != "before")  // after it too, as Ardour 7 restores an LV2 plugin's state
            loadState();
        tCounting = false;
        if (k == 0) setupAllocs = gAllocs.exchange(0);
        gFrees = 0; gLocks = 0; gIo = 0;
        plugins.push_back(p);
    }
    auto params0 = static_cast<const clap_plugin_params_t*>(plugins[0]->get_extension(plugins[0], CLAP_EXT_PARAMS));
    std::printf("{\"event\": \"ready\", \"plugin\": \"%s\", \"instances\": %d}\n", desc->id, instances);
    std::fflush(stdout);
    for (int waited = 0; !waitFile.empty() && access(waitFile.c_str(), F_OK) != 0; waited += 10) {
        if (waited > 30000) die("gave up waiting for %s", waitFile.c_str());
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (auto p : plugins) p->start_processing(p);

    // Buffers and events are made before the first process() so that only the plugin's allocations count.
    std::vector<std::vector<float>> in(instances * 2, std::vector<float>(8192)), out(instances * 2, std::vector<float>(8192));
    std::vector<float> output;
    output.reserve(input.size());
    std::vector<clap_event_param_value_t> pv(params.size());
    std::vector<clap_event_midi_t> mv(notes.size());
    EventList events;
    events.items.reserve(params.size() + notes.size() + 8);
    clap_input_events_t inEv = {&events, EventList::size, EventList::get};
    clap_output_events_t outEv = {nullptr, pushOut};
    clap_event_transport_t tr{};
    uint32_t rng = seed * 2654435761u + 1;
    double pos = startQn;
    long frame = 0, blocks = 0, wraps = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (frame < total) {
        rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
        long n = minBlock + long(rng % uint32_t(maxBlock - minBlock + 1));
        n = std::min(n, total - frame);
        auto cut = [&](long at) { if (at > frame && at < frame + n) n = at - frame; };
        for (auto& t : tempos) cut(t.frame);
        for (auto& t : jumps) cut(t.frame);
        cut(stopFrame);
        for (auto& t : tempos) if (t.frame == frame) bpm = t.a;
        for (auto& t : jumps) if (t.frame == frame) pos = t.a;
        const bool playing = stopFrame < 0 || frame < stopFrame;
        const double qnPerFrame = bpm / 60.0 / rate;
        if (playing && loopEnd > loopStart && pos < loopEnd) {
            const long toEnd = long(std::ceil((loopEnd - pos) / qnPerFrame - 1e-9));
            cut(frame + std::max(1L, toEnd));
        }
        tr.header = {sizeof(tr), 0, CLAP_CORE_EVENT_SPACE_ID, CLAP_EVENT_TRANSPORT, 0};
        tr.flags = CLAP_TRANSPORT_HAS_TEMPO | CLAP_TRANSPORT_HAS_BEATS_TIMELINE | CLAP_TRANSPORT_HAS_SECONDS_TIMELINE |
                   CLAP_TRANSPORT_HAS_TIME_SIGNATURE | (playing ? CLAP_TRANSPORT_IS_PLAYING : 0);
        const double beats = pos * den / 4.0;
        tr.song_pos_beats = clap_beattime(std::llround(beats * double(CLAP_BEATTIME_FACTOR)));
        tr.tempo = bpm;
        tr.tsig_num = uint16_t(num);
        tr.tsig_denom = uint16_t(den);
        tr.bar_number = int32_t(std::floor(beats / num));
        tr.bar_start = clap_beattime(std::llround(tr.bar_number * num * double(CLAP_BEATTIME_FACTOR)));
        events.items.clear();
        for (size_t k = 0; k < params.size(); ++k)
            if (params[k].frame >= frame && params[k].frame < frame + n) {
                pv[k] = {{sizeof(clap_event_param_value_t), 0, CLAP_CORE_EVENT_SPACE_ID, CLAP_EVENT_PARAM_VALUE, 0},
                         clap_id(params[k].c), nullptr, -1, -1, -1, -1, params[k].a};
                events.items.push_back(&pv[k].header);
            }
        for (size_t k = 0; k < notes.size(); ++k)
            if (notes[k].frame >= frame && notes[k].frame < frame + n) {
                mv[k].header = {sizeof(clap_event_midi_t), uint32_t(notes[k].frame - frame), CLAP_CORE_EVENT_SPACE_ID,
                                CLAP_EVENT_MIDI, 0};
                mv[k].port_index = 0;
                mv[k].data[0] = uint8_t(notes[k].c);
                mv[k].data[1] = uint8_t(notes[k].a);
                mv[k].data[2] = uint8_t(notes[k].b);
                events.items.push_back(&mv[k].header);
            }
        for (int k = 0; k < instances; ++k) {
            const float gain = float(k + 1);
            for (long i = 0; i < n; ++i) {
                in[k * 2][i] = input[size_t(frame + i) * 2] * gain;
                in[k * 2 + 1][i] = input[size_t(frame + i) * 2 + 1] * gain;
            }
            float* ins[2] = {in[k * 2].data(), in[k * 2 + 1].data()};
            float* outs[2] = {out[k * 2].data(), out[k * 2 + 1].data()};
            clap_audio_buffer_t ib = {ins, nullptr, 2, 0, 0}, ob = {outs, nullptr, 2, 0, 0};
            clap_process_t proc = {int64_t(frame), uint32_t(n), &tr, &ib, &ob, 1, 1, &inEv, &outEv};
            tCounting = count;
            if (selftest && blocks == 0 && k == 0) free(malloc(16));  // proves the counter counts
            const clap_process_status st = plugins[k]->process(plugins[k], &proc);
            tCounting = false;
            if (st == CLAP_PROCESS_ERROR) die("process failed at frame %ld", frame);
        }
        if (watchStatus && params0) {  // the Status output parameter (id 4) whenever it changes
            static double last = -1;
            double v = -1;
            if (params0->get_value(plugins[0], 4, &v) && v != last)
                std::printf("{\"event\": \"status\", \"frame\": %ld, \"value\": %g}\n", frame, v);
            last = v;
        }
        for (long i = 0; i < n; ++i) {
            output.push_back(out[0][i]);
            output.push_back(out[1][i]);
        }
        frame += n;
        ++blocks;
        if (playing) pos += n * qnPerFrame;
        if (playing && loopEnd > loopStart && pos >= loopEnd - 1e-9) {
            std::printf("{\"event\": \"wrap\", \"frame\": %ld, \"qn\": %.9f}\n", frame, pos);
            pos = loopStart + (pos - loopEnd);
            ++wraps;
        }
        if (pace > 0) {
            const double due = double(frame) / rate / pace;
            const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (due > now) std::this_thread::sleep_for(std::chrono::duration<double>(due - now));
        }
    }
    std::printf("{\"event\": \"processed\", \"blocks\": %ld, \"frames\": %ld, \"allocs\": %ld, \"frees\": %ld, "
                "\"locks\": %ld, \"io\": %ld, \"wraps\": %ld, \"setup_allocs\": %ld}\n", blocks, frame, gAllocs.load(),
                gFrees.load(), gLocks.load(), gIo.load(), wraps, setupAllocs);
    std::fflush(stdout);
    for (int waited = 0; !untilFile.empty() && access(untilFile.c_str(), F_OK) != 0; waited += 10) {
        if (waited > 30000) die("gave up waiting for %s", untilFile.c_str());
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(lingerMs));
    if (fsize >= 0) {  // the host's own output is not part of the "full disk"
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        setrlimit(RLIMIT_FSIZE, &rl);
    }
    if (!outPath.empty()) {
        FILE* f = fopen(outPath.c_str(), "wb");
        if (!f || fwrite(output.data(), sizeof(float), output.size(), f) != output.size()) die("cannot write --out");
        fclose(f);
    }
    if (params0) {
        for (uint32_t i = 0; i < params0->count(plugins[0]); ++i) {
            clap_param_info_t info;
            double v = 0;
            if (params0->get_info(plugins[0], i, &info) && params0->get_value(plugins[0], info.id, &v))
                std::printf("{\"event\": \"param\", \"id\": %u, \"name\": \"%s\", \"value\": %g}\n", info.id, info.name, v);
        }
    }
    if (!stateOut.empty()) {
        auto st = static_cast<const clap_plugin_state_t*>(plugins[0]->get_extension(plugins[0], CLAP_EXT_STATE));
        FILE* f = fopen(stateOut.c_str(), "wb");
        clap_ostream_t os = {f, streamWrite};
        if (!st || !f || !st->save(plugins[0], &os)) die("cannot save the state to %s", stateOut.c_str());
        fclose(f);
    }
    for (auto p : plugins) { p->stop_processing(p); p->deactivate(p); p->destroy(p); }
    entry->deinit();
    std::printf("{\"event\": \"done\"}\n");
    return 0;
}
