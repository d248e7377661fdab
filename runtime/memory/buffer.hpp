// The opaque grey_buffer of grey.h: a range of memory on one device, owned by its context.
#pragma once

#include "grey_backend.h"
#include "memory/residency.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace grey {
class Backend;
}

struct grey_buffer {
    grey_context* context;
    uint32_t device;
    const grey::Backend* backend;
    // The buffer's own device memory while it is raw; nullptr in the other residencies. Changes only
    // while the buffer is sealed and unmapped, under the context's tier mutex.
    grey_backend_buffer* handle;
    uint64_t size;
    // Live grey_buffer_map calls not yet ended by grey_buffer_unmap.
    std::atomic<uint32_t> map_count{0};
    // Of those, grey_buffer_map_async calls whose mapping failed (reported by their stream): their unmap
    // releases no cached copy. Guarded by the context's tier mutex.
    uint32_t failed_maps = 0;
    // Async calls now enqueuing work on the buffer, and per backend stream the event recorded after the
    // latest work enqueued on it there (one event a call, shared by the call's buffers; null while the
    // buffer is unsealed, until grey_buffer_seal records it: memory/tiers.hpp): the buffer is not moved
    // while any is pending (memory/async_use.hpp). Guarded by the context's tier mutex.
    uint32_t enqueuing = 0;
    std::vector<std::pair<grey_backend_stream*, grey_backend_event*>> in_flight;
    // When a call last used the buffer (read, mapped, unmapped, or gave it to device work): the
    // background scan leaves a buffer used within its interval alone, so that one in steady use is not
    // compacted and brought back between every two uses. Guarded by the context's tier mutex.
    std::chrono::steady_clock::time_point last_use{};
    grey::memory::BufferTraits traits{};
    // Sealed buffers are immutable, and so may change residency; guarded as `handle`.
    std::atomic<bool> sealed{false};
    grey::memory::Residency residency{};
    uint64_t sequence = 0;  // creation order within the context, so that compaction is deterministic
};

namespace grey {
// A raw, writable buffer made as `options` says (their struct_size and dtype already checked), tracked
// by the context and its tiers.
grey_buffer* create_buffer(grey_context& context, const grey_buffer_options& options);
// Frees the memory without touching the context's bookkeeping (the context calls this for leftovers).
void destroy_buffer_untracked(grey_buffer* buffer) noexcept;
// Refuses a buffer that is sealed (immutable) as the target of a write, naming the call `what`.
void check_writable(const grey_buffer& buffer, const char* what);
// The buffer's own device memory, for work that needs it whole and raw (the _async calls, quantization):
// refuses a buffer in another residency, naming the call `what`.
grey_backend_buffer* raw_handle(const grey_buffer& buffer, const char* what);
// Maps the buffer with `access` into *out_mapping (its struct_size checked): at once when `stream` is
// nullptr, else as grey_buffer_map_async on that stream (already checked for the buffer).
void map_buffer(grey_buffer& buffer, grey_map_access access, grey_buffer_mapping* out_mapping, grey_stream* stream);
// Refuses a range outside the buffer, naming the call `what`.
void check_range(const grey_buffer& buffer, uint64_t offset, uint64_t size, const char* what);
// Whether `size` bytes at `a_offset` of `a` and at `b_offset` of `b` share a byte (ranges already checked).
bool ranges_overlap(const grey_buffer& a, uint64_t a_offset, const grey_buffer& b, uint64_t b_offset, uint64_t size);
// Refuses copy ranges outside their buffers, and overlapping ranges of one buffer.
void check_copy(const grey_buffer& destination, uint64_t destination_offset, const grey_buffer& source, uint64_t source_offset,
                uint64_t size, const std::string& call);
}  // namespace grey
