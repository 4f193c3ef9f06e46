// Segue Link: OSC 1.0 messages and the instance's UDP socket on loopback (worker thread only).
// SPDX-License-Identifier: MIT
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET link_socket_t;
#define LINK_BAD_SOCKET INVALID_SOCKET
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
typedef int link_socket_t;
#define LINK_BAD_SOCKET (-1)
#endif

namespace segue_link {

// ---------------------------------------------------------------------------------------------------------------
// OSC 1.0 messages (types s i f d), enough for the Segue Link contract.

struct OscArg {
    char type = 'i';
    int32_t i = 0;
    double d = 0.0;  // f and d
    std::string s;
};

class OscOut {
public:
    explicit OscOut(const char* address) { pad(address, fHead); fTags = ","; }
    OscOut& s(const std::string& v) { fTags += 's'; pad(v.c_str(), fArgs); return *this; }
    OscOut& i(int32_t v) { fTags += 'i'; be32(static_cast<uint32_t>(v), fArgs); return *this; }
    OscOut& f(float v) { uint32_t u; std::memcpy(&u, &v, 4); fTags += 'f'; be32(u, fArgs); return *this; }
    OscOut& d(double v) {
        uint64_t u;
        std::memcpy(&u, &v, 8);
        fTags += 'd';
        be32(static_cast<uint32_t>(u >> 32), fArgs);
        be32(static_cast<uint32_t>(u), fArgs);
        return *this;
    }
    std::string bytes() const {
        std::string out = fHead;
        pad(fTags.c_str(), out);
        return out + fArgs;
    }

private:
    static void be32(uint32_t v, std::string& to) {
        const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
        to.append(b, 4);
    }
    static void pad(const char* v, std::string& dst) {
        dst.append(v);
        dst.append(4 - (std::strlen(v) % 4), '\0');
    }
    std::string fHead, fTags, fArgs;
};

// Parses one OSC message (bundles are not used by Segue's answers). False on anything malformed.
inline bool oscParse(const char* data, size_t size, std::string& address, std::vector<OscArg>& args) {
    size_t pos = 0;
    auto readStr = [&](std::string& out) -> bool {
        const void* end = std::memchr(data + pos, 0, size - pos);
        if (pos >= size || !end)
            return false;
        const size_t len = static_cast<const char*>(end) - (data + pos);
        out.assign(data + pos, len);
        pos += (len / 4 + 1) * 4;
        return pos <= size;
    };
    auto rd32 = [&](uint32_t& v) -> bool {
        if (pos + 4 > size)
            return false;
        const unsigned char* b = reinterpret_cast<const unsigned char*>(data + pos);
        v = (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | b[3];
        pos += 4;
        return true;
    };
    std::string tags;
    args.clear();
    if (!readStr(address) || address.empty() || address[0] != '/' || !readStr(tags) || tags.empty() || tags[0] != ',')
        return false;
    for (size_t t = 1; t < tags.size(); ++t) {
        OscArg a;
        a.type = tags[t];
        uint32_t u = 0, u2 = 0;
        switch (a.type) {
        case 'i': if (!rd32(u)) return false; a.i = static_cast<int32_t>(u); a.d = a.i; break;
        case 'f': { if (!rd32(u)) return false; float f; std::memcpy(&f, &u, 4); a.d = f; a.i = int32_t(f); break; }
        case 'd': {
            if (!rd32(u) || !rd32(u2)) return false;
            const uint64_t w = (uint64_t(u) << 32) | u2;
            std::memcpy(&a.d, &w, 8);
            a.i = int32_t(a.d);
            break;
        }
        case 's': if (!readStr(a.s)) return false; break;
        default: return false;
        }
        args.push_back(a);
    }
    return true;
}

// ---------------------------------------------------------------------------------------------------------------
// One UDP socket per instance, bound to 127.0.0.1:<ephemeral>, non-blocking.

class UdpLink {
public:
    ~UdpLink() { close(); }
    bool open() {
        if (fSock != LINK_BAD_SOCKET)
            return true;
#ifdef _WIN32
        WSADATA wsa;
        WSAStartup(MAKEWORD(2, 2), &wsa);
#endif
        fSock = ::socket(AF_INET, SOCK_DGRAM, 0);
        if (fSock == LINK_BAD_SOCKET)
            return false;
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        if (::bind(fSock, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
            close();
            return false;
        }
#ifdef _WIN32
        u_long nb = 1;
        ioctlsocket(fSock, FIONBIO, &nb);
#else
        fcntl(fSock, F_SETFL, fcntl(fSock, F_GETFL, 0) | O_NONBLOCK);
#endif
        return true;
    }
    void close() {
        if (fSock == LINK_BAD_SOCKET)
            return;
#ifdef _WIN32
        closesocket(fSock);
#else
        ::close(fSock);
#endif
        fSock = LINK_BAD_SOCKET;
    }
    bool send(uint16_t port, const std::string& bytes) {
        if (fSock == LINK_BAD_SOCKET)
            return false;
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        return ::sendto(fSock, bytes.data(), static_cast<int>(bytes.size()), 0, reinterpret_cast<sockaddr*>(&a),
                        sizeof(a)) == static_cast<long>(bytes.size());
    }
    // One datagram, or -1 when none is waiting (errors such as ICMP "port unreachable" are swallowed).
    int receive(char* buf, int size) {
        if (fSock == LINK_BAD_SOCKET)
            return -1;
        for (int tries = 0; tries < 8; ++tries) {
            const long n = ::recvfrom(fSock, buf, size, 0, nullptr, nullptr);
            if (n >= 0)
                return static_cast<int>(n);
#ifdef _WIN32
            if (WSAGetLastError() != WSAECONNRESET)
                return -1;
#else
            if (errno != ECONNREFUSED && errno != EINTR)
                return -1;
#endif
        }
        return -1;
    }

private:
    link_socket_t fSock = LINK_BAD_SOCKET;
};

}  // namespace segue_link
