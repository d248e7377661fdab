#include "core/host_memory_backend.hpp"

#include "backends/host/host_backend.hpp"
#include "core/error.hpp"
#include "core/loader.hpp"

namespace grey {
namespace {

// No context, so no logger: the host backend logs nothing on its quantization paths anyway.
void no_log(void*, grey_log_level, const char*) {}
void set_error(void*, const char* message) { detail::set_last_error(message != nullptr ? message : ""); }

// No worker pool: a call without a context runs on the calling thread (no global state).
const grey_backend_host kServices{sizeof(grey_backend_host), GREY_BACKEND_ABI_VERSION, nullptr, no_log, set_error, nullptr};

}  // namespace

const Backend& host_memory_backend() {
    // Never destroyed: a call on another thread may still be using it while the process exits, and
    // the host backend holds nothing that must be released (LeakSanitizer sees it through this pointer).
    static const Backend* const backend =
        start_backend("host", "(built in, host memory)", nullptr, &host::host_backend_entry, kServices).release();
    return *backend;
}

}  // namespace grey
