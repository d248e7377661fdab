// The opaque grey_context of grey.h: configuration, logging, the started backends, and the flat device
// table that maps a public device index to (backend, device within backend).
#pragma once

#include "config/config_handle.hpp"
#include "core/backend.hpp"
#include "core/loader.hpp"
#include "core/log.hpp"
#include "core/worker_pool.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

struct grey_buffer;
struct grey_stream;
namespace grey::memory {
class Tiers;
}
struct grey_event;

namespace grey {

struct Device {
    Backend* backend;
    uint32_t index_in_backend;
    // Why fields of the latest spec/telemetry query were unavailable; guarded by `mutex`.
    std::mutex mutex;
    std::map<grey_field, std::string> reasons;
};

}  // namespace grey

struct grey_context {
    grey_context(const grey_context_options& options, grey::config::Config config);
    ~grey_context();
    grey_context(const grey_context&) = delete;
    grey_context& operator=(const grey_context&) = delete;

    grey::Device& device(uint32_t index);

    // Buffers still alive when the context is destroyed are freed then (and logged as leaks).
    void track(grey_buffer* buffer);
    void untrack(grey_buffer* buffer) noexcept;
    // Streams and events left are destroyed first (streams wait for their work, which may use buffers).
    void track(grey_stream* stream);
    void untrack(grey_stream* stream) noexcept;
    void track(grey_event* event);
    void untrack(grey_event* event) noexcept;
    // grey_host_alloc memory and the backend that pinned it (nullptr: plain aligned memory).
    void track_host_memory(void* memory, const grey::Backend* backend);
    // Forgets `memory` and says which backend pinned it; false when the context did not give it.
    bool untrack_host_memory(void* memory, const grey::Backend*& backend) noexcept;

    grey::Logger logger;
    grey_config config;  // the effective configuration, lent out by grey_context_config
    grey_backend_host host_services{};
    // The threads host work shares out (grey_backend_host.parallel_for): host.threads of them, the
    // calling thread's included, started with the context. Declared before the backends, which may use
    // it until they shut down, so that it stops after them.
    std::unique_ptr<grey::WorkerPool> workers;
    std::vector<grey::PluginDirectory> plugin_dirs;  // the search path, each with the loader's verdict
    std::vector<grey::BackendReport> reports;
    // Declared before the buffers so that it is destroyed after them.
    std::vector<std::unique_ptr<grey::Backend>> backends;
    std::vector<std::unique_ptr<grey::Device>> devices;
    // Sealed buffers' residencies and the devices' shared blocks and caches; destroyed before the devices.
    std::unique_ptr<grey::memory::Tiers> tiers;

private:
    // Fails (GREY_ERROR_UNSUPPORTED) naming the first of `names` that did not load, and why.
    void require_loaded(const std::vector<std::string>& names) const;

    std::mutex objects_mutex_;
    std::set<grey_buffer*> live_buffers_;
    std::set<grey_stream*> live_streams_;
    std::set<grey_event*> live_events_;
    std::map<void*, const grey::Backend*> host_memory_;
};
