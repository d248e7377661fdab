#include "core/context.hpp"

#include "backends/host/host_backend.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "core/stream.hpp"
#include "memory/buffer.hpp"
#include "memory/host_alloc.hpp"
#include "memory/tiers.hpp"

#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <new>

namespace {

void host_log(void* host_data, grey_log_level level, const char* message) {
    static_cast<const grey_context*>(host_data)->logger.log(level, message != nullptr ? message : "");
}

// A chunk's non-OK status, carried out of the pool's job (which stops at the first exception).
struct ChunkFailed {
    grey_status status;
};

grey_status host_parallel_for(void* host_data, uint64_t items, uint64_t chunk_items, grey_status (*chunk)(void*, uint64_t, uint64_t),
                              void* chunk_data) {
    if (chunk == nullptr) return GREY_ERROR_INVALID_ARGUMENT;
    try {
        static_cast<grey_context*>(host_data)->workers->run_shared(items, chunk_items, [&](size_t begin, size_t end) {
            if (const grey_status status = chunk(chunk_data, begin, end); status != GREY_OK) throw ChunkFailed{status};
        });
        return GREY_OK;
    } catch (const ChunkFailed& failed) {
        return failed.status;
    } catch (const std::bad_alloc&) {
        return GREY_ERROR_OUT_OF_MEMORY;
    } catch (...) {
        return GREY_ERROR_INTERNAL;
    }
}

void host_set_error(void*, const char* message) { grey::detail::set_last_error(message != nullptr ? message : ""); }

// Options from a caller built against this or an older header; bytes past what this library knows must
// be zero, or a newer caller is asking for something this version cannot do.
grey_context_options read_options(const grey_context_options* given) {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    if (given == nullptr) return options;
    if (given->struct_size < sizeof(grey_context_options)) {
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, "options->struct_size is " + std::to_string(given->struct_size) +
                                                    "; initialise options with GREY_CONTEXT_OPTIONS_INIT");
    }
    const auto* extra = reinterpret_cast<const unsigned char*>(given) + sizeof(grey_context_options);
    for (size_t i = 0; i < given->struct_size - sizeof(grey_context_options); ++i)
        if (extra[i] != 0)
            grey::fail(GREY_ERROR_UNSUPPORTED, "options set fields that libgrey " + std::string(grey_version_string()) + " does not know");
    std::memcpy(&options, given, sizeof options);
    options.struct_size = sizeof options;
    if (const int64_t level = grey::raw_enum(options.log_level); level < GREY_LOG_DEBUG || level > GREY_LOG_OFF)
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, "options->log_level " + std::to_string(level) + " is not a grey_log_level");
    if (options.require_backends > 1) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "options->require_backends must be 0 or 1");
    return options;
}

grey::config::Config build_config(const grey_context_options& options) {
    grey::config::Profile profile = grey::config::Profile::Balanced;
    if (options.profile != nullptr && !grey::config::parse_profile(options.profile, profile))
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, std::string("unknown profile '") + options.profile + "' (expected conservative, balanced or aggressive)");
    grey::config::Config config(profile);
    if (options.config_path != nullptr) config.load_file(options.config_path);
    if (options.apply_env_overrides != 0) config.apply_env([](const char* n) -> const char* { return std::getenv(n); });
    return config;
}

}  // namespace

grey_context::grey_context(const grey_context_options& options, grey::config::Config cfg)
    : logger(options.log_level, options.log_callback, options.log_user), config{std::move(cfg)} {
    if (options.apply_env_overrides != 0) {
        if (const char* level = std::getenv("GREY_LOG_LEVEL")) {
            grey_log_level parsed{};
            if (grey::parse_log_level(level, parsed)) logger.set_level(parsed);
        }
    }
    host_services.struct_size = sizeof host_services;
    host_services.abi_version = GREY_BACKEND_ABI_VERSION;
    workers = std::make_unique<grey::WorkerPool>(static_cast<size_t>(config.impl.get_int("host.threads")));
    logger.debug("host work runs on " + std::to_string(workers->threads()) + " threads (host.threads " +
                 std::to_string(config.impl.get_int("host.threads")) + ")");
    host_services.host_data = this;
    host_services.log = host_log;
    host_services.set_error = host_set_error;
    host_services.parallel_for = host_parallel_for;

    // The host backend first: it is always device 0.
    backends.push_back(grey::start_backend("host", "(built in)", nullptr, &grey::host::host_backend_entry, host_services));
    reports.push_back({"host", "(built in)", GREY_BACKEND_LOADED, "built in: the host CPU", backends.back()->device_count()});

    grey::LoaderRequest request;
    request.requested = grey::parse_backend_list(options.backends);
    request.auto_detect = config.impl.get_bool("detection.auto_detect");
    request.search_path = grey::plugin_search_path(options.backend_dir,
                                                   options.apply_env_overrides != 0 ? std::getenv("GREY_BACKEND_DIR") : nullptr);
    auto loaded = grey::load_plugins(request, host_services, logger);
    plugin_dirs = std::move(loaded.directories);
    for (auto& b : loaded.backends) backends.push_back(std::move(b));
    for (auto& r : loaded.reports) reports.push_back(std::move(r));
    if (options.require_backends != 0) require_loaded(request.requested);

    for (const auto& backend : backends)
        for (uint32_t i = 0; i < backend->device_count(); ++i) {
            auto device = std::make_unique<grey::Device>();
            device->backend = backend.get();
            device->index_in_backend = i;
            devices.push_back(std::move(device));
        }
    tiers = std::make_unique<grey::memory::Tiers>(devices, config.impl);
    tiers->start_scan(logger);
}

void grey_context::require_loaded(const std::vector<std::string>& names) const {
    for (const std::string& name : names) {
        std::string why = "no plugin of that name was found";
        bool loaded = false;
        for (const auto& report : reports)
            if (report.name == name) {
                // A backend with no device is as unavailable to the host as one that did not load.
                const bool usable = report.outcome == GREY_BACKEND_LOADED && report.device_count > 0;
                loaded = loaded || usable;
                if (!usable) why = report.outcome == GREY_BACKEND_LOADED ? "it loaded but offers no device" : report.reason;
            }
        if (!loaded) grey::fail(GREY_ERROR_UNSUPPORTED, "backend '" + name + "' is not available: " + why);
    }
}

grey_context::~grey_context() {
    // The background scan goes first: it moves buffers, which are freed below.
    tiers->stop_scan();
    std::set<grey_stream*> streams;
    std::set<grey_event*> events;
    std::map<void*, const grey::Backend*> host_memory;
    {
        std::lock_guard lock(objects_mutex_);
        streams.swap(live_streams_);
        events.swap(live_events_);
        host_memory.swap(host_memory_);
    }
    for (grey_stream* stream : streams) grey::destroy_stream_untracked(stream);
    for (grey_event* event : events) grey::destroy_event_untracked(event);
    for (const auto& [memory, backend] : host_memory) grey::free_host_memory(memory, backend);
    std::set<grey_buffer*> leftovers;
    {
        std::lock_guard lock(objects_mutex_);
        leftovers.swap(live_buffers_);
    }
    if (!leftovers.empty())
        logger.warning(std::to_string(leftovers.size()) + " buffer(s) were not destroyed before their context; freeing them now");
    for (grey_buffer* buffer : leftovers) grey::destroy_buffer_untracked(buffer);
}

grey::Device& grey_context::device(uint32_t index) {
    if (index >= devices.size())
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, "device index " + std::to_string(index) + " is out of range (the context has " +
                                                    std::to_string(devices.size()) + " device(s))");
    return *devices[index];
}

namespace {
template <typename T>
void insert_locked(std::mutex& mutex, std::set<T*>& set, T* item) {
    std::lock_guard lock(mutex);
    set.insert(item);
}
template <typename T>
void erase_locked(std::mutex& mutex, std::set<T*>& set, T* item) noexcept {
    std::lock_guard lock(mutex);
    set.erase(item);
}
}  // namespace

void grey_context::track(grey_buffer* buffer) { insert_locked(objects_mutex_, live_buffers_, buffer); }
void grey_context::untrack(grey_buffer* buffer) noexcept { erase_locked(objects_mutex_, live_buffers_, buffer); }
void grey_context::track(grey_stream* stream) { insert_locked(objects_mutex_, live_streams_, stream); }
void grey_context::untrack(grey_stream* stream) noexcept { erase_locked(objects_mutex_, live_streams_, stream); }
void grey_context::track(grey_event* event) { insert_locked(objects_mutex_, live_events_, event); }
void grey_context::untrack(grey_event* event) noexcept { erase_locked(objects_mutex_, live_events_, event); }

void grey_context::track_host_memory(void* memory, const grey::Backend* backend) {
    std::lock_guard lock(objects_mutex_);
    host_memory_.emplace(memory, backend);
}

bool grey_context::untrack_host_memory(void* memory, const grey::Backend*& backend) noexcept {
    std::lock_guard lock(objects_mutex_);
    const auto found = host_memory_.find(memory);
    if (found == host_memory_.end()) return false;
    backend = found->second;
    host_memory_.erase(found);
    return true;
}

extern "C" {

grey_status grey_context_create(const grey_context_options* options, grey_context** out_context) {
    return grey::abi_guard([&] {
        grey::require_non_null(out_context, "out_context");
        const grey_context_options opts = read_options(options);
        auto context = std::make_unique<grey_context>(opts, build_config(opts));
        *out_context = context.release();
    });
}

void grey_context_destroy(grey_context* context) { std::unique_ptr<grey_context>(context).reset(); }

const grey_config* grey_context_config(const grey_context* context) {
    return context != nullptr ? &context->config : nullptr;
}

grey_status grey_backend_candidate_count(const grey_context* context, uint32_t* out_count) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_count, "out_count");
        *out_count = static_cast<uint32_t>(context->reports.size());
    });
}

grey_status grey_backend_info_get(const grey_context* context, uint32_t index, grey_backend_info* out_info) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_info, "out_info");
        if (index >= context->reports.size())
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "backend report index " + std::to_string(index) + " is out of range (" +
                                                        std::to_string(context->reports.size()) + " entries)");
        const auto& report = context->reports[index];
        grey_backend_info info{};
        info.struct_size = sizeof info;
        info.outcome = report.outcome;
        info.device_count = report.device_count;
        grey::copy_text(info.name, report.name);
        grey::copy_text(info.path, report.path);
        grey::copy_text(info.reason, report.reason);
        grey::copy_out_struct(info, out_info, sizeof(grey_backend_info), "out_info");
    });
}

grey_status grey_backend_search_path(const grey_context* context, char* buffer, size_t buffer_size, size_t* out_length) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        const std::string joined = grey::join(context->plugin_dirs, "\n", [](const auto& dir) { return dir.path.string(); });
        grey::copy_out_text(joined, buffer, buffer_size, out_length);
    });
}

grey_status grey_plugin_dir_count(const grey_context* context, uint32_t* out_count) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_count, "out_count");
        *out_count = static_cast<uint32_t>(context->plugin_dirs.size());
    });
}

grey_status grey_plugin_dir_info_get(const grey_context* context, uint32_t index, grey_plugin_dir_info* out_info) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_info, "out_info");
        if (index >= context->plugin_dirs.size())
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "plugin directory index " + std::to_string(index) + " is out of range (" +
                                                        std::to_string(context->plugin_dirs.size()) + " entries)");
        const auto& dir = context->plugin_dirs[index];
        grey_plugin_dir_info info{};
        info.struct_size = sizeof info;
        info.origin = dir.origin;
        info.state = dir.state;
        grey::copy_text(info.path, dir.path.string());
        grey::copy_text(info.real_path, dir.real_path.string());
        grey::copy_text(info.reason, dir.reason);
        grey::copy_out_struct(info, out_info, sizeof(grey_plugin_dir_info), "out_info");
    });
}

}  // extern "C"
