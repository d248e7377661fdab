// How the host quantizer shares its work out: in chunks over the context's worker pool (the host
// service grey_backend_host.parallel_for), or on the calling thread where there is none (a host of an
// older libgrey, the context-free grey_quantize). Every chunk computes what the single-threaded loop
// computes for its items, so the result is the same bits whatever the thread count; a chunk that
// throws stops the job and the exception of the lowest chunk that threw reaches the caller, the one a
// single thread would have met first.
#pragma once

#include "grey_backend.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

namespace grey::host::quant {

class Parallel {
public:
    // Elements a chunk covers by default: large enough that handing one out costs nothing beside its
    // work, small enough that a tensor of a few MiB keeps every core busy. Tests pass small values to
    // put chunk boundaries everywhere.
    static constexpr uint64_t kDefaultChunkElements = 64 * 1024;

    // On the calling thread.
    Parallel() = default;
    // Over `host`'s worker pool when it offers one. `chunk_elements` must be even and a multiple of 32
    // (4-bit codes come in pairs; ggml blocks hold 32).
    explicit Parallel(const grey_backend_host* host, uint64_t chunk_elements = kDefaultChunkElements)
        : host_(offers_pool(host) ? host : nullptr), chunk_elements_(checked_chunk(chunk_elements)) {}

    [[nodiscard]] uint64_t chunk_elements() const { return chunk_elements_; }

    // Calls body(begin, end) for consecutive chunks of `chunk` items covering [0, n).
    template <typename Body>
    void for_chunks(uint64_t n, uint64_t chunk, const Body& body) const {
        chunk = std::max<uint64_t>(chunk, 1);
        if (host_ == nullptr || n <= chunk) {
            for (uint64_t begin = 0; begin < n; begin += chunk) body(begin, std::min(n, begin + chunk));
            return;
        }
        Shared<Body> shared{&body};
        const grey_status status = host_->parallel_for(host_->host_data, n, chunk, &Shared<Body>::run, &shared);
        if (shared.error) std::rethrow_exception(shared.error);
        if (status == GREY_ERROR_OUT_OF_MEMORY) throw std::bad_alloc();
        if (status != GREY_OK) throw std::runtime_error("the host's worker pool failed (status " + std::to_string(status) + ")");
    }

private:
    template <typename Body>
    struct Shared {
        const Body* body;
        std::mutex mutex;
        uint64_t failed_at = std::numeric_limits<uint64_t>::max();
        std::exception_ptr error;

        static grey_status run(void* data, uint64_t begin, uint64_t end) {
            auto& self = *static_cast<Shared*>(data);
            try {
                (*self.body)(begin, end);
                return GREY_OK;
            } catch (...) {
                const std::lock_guard lock(self.mutex);
                if (begin < self.failed_at) {
                    self.failed_at = begin;
                    self.error = std::current_exception();
                }
                return GREY_ERROR_INTERNAL;  // stops the job; the exception above says what happened
            }
        }
    };

    static bool offers_pool(const grey_backend_host* host) {
        return host != nullptr && host->struct_size >= offsetof(grey_backend_host, parallel_for) + sizeof host->parallel_for &&
               host->parallel_for != nullptr;
    }
    static uint64_t checked_chunk(uint64_t elements) {
        if (elements == 0 || elements % 32 != 0) throw std::invalid_argument("chunk_elements must be a positive multiple of 32");
        return elements;
    }

    const grey_backend_host* host_ = nullptr;
    uint64_t chunk_elements_ = kDefaultChunkElements;
};

}  // namespace grey::host::quant
