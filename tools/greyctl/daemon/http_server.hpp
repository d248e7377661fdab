// greyd's read-only HTTP pages, served by GNU libmicrohttpd (Debian's libmicrohttpd-dev) with hard
// bounds on what one client can make the daemon hold: the request line and headers of a connection must
// fit in kConnectionMemory (else 431/414 and the connection is closed), a request may carry no body
// (413), at most kMaxConnections are open at once (more wait in the kernel's accept queue), and a
// connection idle for kIdleTimeoutS is closed. cpp-httplib 0.11 (Debian 12's) was dropped for this: it reads a whole
// request line, header line or chunked body into memory before checking any limit, so one client on
// the loopback could grow the daemon by gigabytes (tests/govern/test_daemon.py sends such requests).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <sys/socket.h>

struct MHD_Daemon;

namespace greyctl::daemon {

struct HttpReply {
    unsigned status = 200;
    std::string content_type;
    std::string body;
};

using PageHandler = std::function<HttpReply()>;

// The address greyd listens on: a numeric IPv4 or IPv6 address (no host names: a name could resolve
// to an address the operator did not mean to expose). Throws std::runtime_error naming the text.
sockaddr_storage listen_address(const std::string& numeric_address, uint16_t port);

// True for 127.0.0.0/8 and ::1.
bool is_loopback(const sockaddr_storage& address);

class HttpServer {
public:
    static constexpr size_t kConnectionMemory = 16 * 1024;  // request line + headers, per connection
    static constexpr unsigned kMaxConnections = 64;
    static constexpr unsigned kIdleTimeoutS = 10;

    // `pages` maps a path ("/metrics") to what it answers to GET and HEAD.
    explicit HttpServer(std::map<std::string, PageHandler> pages);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Starts serving on `address` (see listen_address). Throws std::runtime_error when it cannot.
    void start(const sockaddr_storage& address);
    void stop();  // closes every connection and joins the server's threads; idempotent

private:
    HttpReply answer(const std::string& method, const std::string& path, bool has_body) const;
    friend struct HttpCallbacks;

    std::map<std::string, PageHandler> pages_;
    MHD_Daemon* daemon_ = nullptr;
};

}  // namespace greyctl::daemon
