#include "control_socket.hpp"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace greyctl::daemon {
namespace {

constexpr size_t kMaxLine = 64 * 1024;
constexpr size_t kMaxConnections = 64;

sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) throw std::runtime_error("control socket path is too long: " + path);
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

bool write_all(int fd, const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<size_t>(n);
    }
    return true;
}

}  // namespace

bool peer_allowed(uid_t peer, uid_t daemon_user) { return peer == daemon_user || peer == 0; }

ControlServer::ControlServer(std::string path, Handler handler, SessionFactory sessions)
    : path_(std::move(path)), handler_(std::move(handler)), sessions_(std::move(sessions)) {}

ControlServer::~ControlServer() { stop(); }

void ControlServer::start() {
    const sockaddr_un a = address(path_);
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    ::unlink(path_.c_str());  // a socket left by a daemon that died; the pid lock says none runs now
    const mode_t old = ::umask(0177);  // created 0600
    const int rc = ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    ::umask(old);
    if (rc != 0 || ::listen(listen_fd_, 16) != 0)
        throw std::runtime_error("cannot listen on " + path_ + ": " + std::strerror(errno));
    acceptor_ = std::thread([this] { accept_loop(); });
}

void ControlServer::stop() {
    if (stopping_.exchange(true)) return;
    if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
    {
        std::lock_guard lock(connections_mutex_);
        for (Connection& c : connections_) ::shutdown(c.fd, SHUT_RDWR);
    }
    reap(true);
    ::unlink(path_.c_str());
}

void ControlServer::reap(bool all) {
    std::list<Connection> finished;
    {
        std::lock_guard lock(connections_mutex_);
        for (auto it = connections_.begin(); it != connections_.end();) {
            auto next = std::next(it);
            if (all || it->done.load()) finished.splice(finished.end(), connections_, it);
            it = next;
        }
    }
    for (Connection& c : finished) {
        if (c.thread.joinable()) c.thread.join();
        ::close(c.fd);
    }
}

void ControlServer::accept_loop() {
    while (!stopping_.load()) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return;  // shut down
        }
        reap(false);
        ucred peer{};
        socklen_t length = sizeof peer;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 || !peer_allowed(peer.uid, ::geteuid())) {
            ++refused_;
            write_all(fd, json{{"ok", false}, {"error", "permission denied: greyd is controlled only by its own user and root"}}.dump() + "\n");
            ::close(fd);
            continue;
        }
        std::lock_guard lock(connections_mutex_);
        if (connections_.size() >= kMaxConnections) {
            write_all(fd, json{{"ok", false}, {"error", "too many control connections"}}.dump() + "\n");
            ::close(fd);
            continue;
        }
        Connection& c = connections_.emplace_back();
        c.fd = fd;
        c.thread = std::thread([this, &c] { serve(c); });
    }
}

void ControlServer::serve(Connection& connection) {
    std::unique_ptr<Session> session = sessions_();
    std::string buffer;
    char chunk[4096];
    while (!stopping_.load()) {
        const size_t newline = buffer.find('\n');
        if (newline == std::string::npos) {
            if (buffer.size() > kMaxLine) {
                write_all(connection.fd, json{{"ok", false}, {"error", "request line too long"}}.dump() + "\n");
                break;
            }
            const ssize_t n = ::recv(connection.fd, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            buffer.append(chunk, static_cast<size_t>(n));
            continue;
        }
        const std::string line = buffer.substr(0, newline);
        buffer.erase(0, newline + 1);
        const json request = json::parse(line, nullptr, false);
        json answer;
        if (request.is_discarded() || !request.is_object() || !request.contains("command") || !request["command"].is_string()) {
            answer = {{"ok", false}, {"error", "a request is one JSON object with a \"command\" string"}};
        } else {
            try {
                answer = handler_(request, *session);
            } catch (const std::exception& e) {
                answer = {{"ok", false}, {"error", e.what()}};
            }
        }
        if (!write_all(connection.fd, answer.dump() + "\n")) break;
    }
    session.reset();  // releases what the connection held, before the connection counts as done
    // The peer sees the end now; the descriptor is closed when the connection is reaped.
    ::shutdown(connection.fd, SHUT_RDWR);
    connection.done = true;
}

json control_request(const std::string& path, const json& request, int timeout_ms) {
    const sockaddr_un a = address(path);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        throw std::runtime_error("cannot reach greyd at " + path + ": " + why);
    }
    std::string reply;
    const bool sent = write_all(fd, request.dump() + "\n");
    char chunk[4096];
    while (sent && reply.find('\n') == std::string::npos) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) break;
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        reply.append(chunk, static_cast<size_t>(n));
    }
    ::close(fd);
    const size_t newline = reply.find('\n');
    if (newline == std::string::npos) throw std::runtime_error("greyd at " + path + " gave no answer");
    const json answer = json::parse(reply.substr(0, newline), nullptr, false);
    if (answer.is_discarded()) throw std::runtime_error("greyd at " + path + " gave a malformed answer");
    return answer;
}

}  // namespace greyctl::daemon
