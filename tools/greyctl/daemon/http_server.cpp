#include "http_server.hpp"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <stdexcept>

namespace greyctl::daemon {

sockaddr_storage listen_address(const std::string& numeric_address, uint16_t port) {
    sockaddr_storage storage{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET, numeric_address.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, numeric_address.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
    } else {
        throw std::runtime_error("--bind '" + numeric_address + "' is not a numeric IPv4 or IPv6 address (host names are not accepted)");
    }
    return storage;
}

bool is_loopback(const sockaddr_storage& address) {
    if (address.ss_family == AF_INET)
        return (ntohl(reinterpret_cast<const sockaddr_in*>(&address)->sin_addr.s_addr) >> 24) == 127;
    if (address.ss_family == AF_INET6) return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr);
    return false;
}

// libmicrohttpd's C callbacks, with access to HttpServer's private members.
struct HttpCallbacks {
    // The path is matched as sent, never percent-decoded: a decoded "%00" would cut the C string
    // libmicrohttpd hands over ("/metrics%00x" read as "/metrics"), and no page needs decoding.
    static size_t keep_escaped(void* /*cls*/, MHD_Connection* /*connection*/, char* text) { return std::strlen(text); }

    static MHD_Result request(void* cls, MHD_Connection* connection, const char* url, const char* method, const char* /*version*/,
                              const char* /*upload_data*/, size_t* upload_data_size, void** request_state) {
        const auto& server = *static_cast<const HttpServer*>(cls);
        // A body is refused on the first call, before libmicrohttpd reads any of it; a response queued
        // while a body is still unread makes it close the connection after answering.
        const char* length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const bool has_body = *upload_data_size != 0 ||
                              MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) != nullptr ||
                              (length != nullptr && std::strcmp(length, "0") != 0);
        // A request without a body is answered on the second call, once libmicrohttpd has the whole
        // request: answering on the first would make it close a keep-alive connection.
        static char headers_seen;
        if (!has_body && *request_state == nullptr) {
            *request_state = &headers_seen;
            return MHD_YES;
        }
        HttpReply reply;
        try {
            reply = server.answer(method, url, has_body);
        } catch (const std::exception& e) {
            reply = {500, "text/plain", std::string("greyd: ") + e.what() + "\n"};
        }
        MHD_Response* response = MHD_create_response_from_buffer(reply.body.size(), reply.body.data(), MHD_RESPMEM_MUST_COPY);
        if (response == nullptr) return MHD_NO;  // out of memory: libmicrohttpd closes the connection
        MHD_Result queued = MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
        if (reply.status == MHD_HTTP_METHOD_NOT_ALLOWED && queued == MHD_YES) queued = MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        if (queued == MHD_YES) queued = MHD_queue_response(connection, reply.status, response);
        MHD_destroy_response(response);
        return queued;
    }
};

HttpServer::HttpServer(std::map<std::string, PageHandler> pages) : pages_(std::move(pages)) {}

HttpServer::~HttpServer() { stop(); }

HttpReply HttpServer::answer(const std::string& method, const std::string& path, bool has_body) const {
    if (method != "GET" && method != "HEAD")
        return {405, "text/plain", "greyd serves only GET and HEAD: control goes over its Unix socket\n"};
    if (has_body) return {413, "text/plain", "greyd's pages take no request body\n"};
    const auto page = pages_.find(path);
    if (page == pages_.end()) return {404, "text/plain", "not found: greyd serves /healthz, /status and /metrics\n"};
    return page->second();
}

void HttpServer::start(const sockaddr_storage& address) {
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD;
    if (address.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    daemon_ = MHD_start_daemon(flags, 0, nullptr, nullptr, &HttpCallbacks::request, this,
                               MHD_OPTION_SOCK_ADDR, reinterpret_cast<const sockaddr*>(&address),
                               MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                               MHD_OPTION_CONNECTION_MEMORY_LIMIT, kConnectionMemory,
                               MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,
                               MHD_OPTION_CONNECTION_TIMEOUT, kIdleTimeoutS,
                               MHD_OPTION_THREAD_POOL_SIZE, 2u,
                               MHD_OPTION_UNESCAPE_CALLBACK, &HttpCallbacks::keep_escaped, nullptr,
                               MHD_OPTION_END);
    if (daemon_ == nullptr) throw std::runtime_error("the port is in use, or the address is not one of this machine's");
}

void HttpServer::stop() {
    if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
    daemon_ = nullptr;
}

}  // namespace greyctl::daemon
