// greyd's control channel: a Unix socket (0600, in the private run directory) speaking one JSON object
// per line each way. Every connection's peer is checked with SO_PEERCRED: only the daemon's own user
// and root are served; anyone else is told so and disconnected. Control never goes over HTTP.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <thread>

namespace greyctl::daemon {

using json = nlohmann::ordered_json;

// Whatever a connection keeps between its requests (its tenants' tickets); the handler's to fill.
struct Session {
    virtual ~Session() = default;
};

// Only the daemon's own user and root may control it.
bool peer_allowed(uid_t peer, uid_t daemon_user);

class ControlServer {
public:
    using Handler = std::function<json(const json& request, Session& session)>;
    using SessionFactory = std::function<std::unique_ptr<Session>()>;

    ControlServer(std::string path, Handler handler, SessionFactory sessions);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    void start();  // binds (replacing a stale socket file) and starts accepting
    void stop();   // stops accepting, closes every connection, joins every thread
    [[nodiscard]] uint64_t refused() const noexcept { return refused_.load(); }

private:
    struct Connection {
        int fd;
        std::thread thread;
        std::atomic<bool> done{false};
    };
    void accept_loop();
    void serve(Connection& connection);
    void reap(bool all);

    std::string path_;
    Handler handler_;
    SessionFactory sessions_;
    int listen_fd_ = -1;
    std::atomic<bool> stopping_{false};
    std::atomic<uint64_t> refused_{0};
    std::thread acceptor_;
    std::mutex connections_mutex_;
    std::list<Connection> connections_;
};

// One request, one answer: connects to `path`, sends `request`, returns the answer. Throws
// std::runtime_error when the daemon cannot be reached or answers nothing.
json control_request(const std::string& path, const json& request, int timeout_ms = 10000);

}  // namespace greyctl::daemon
