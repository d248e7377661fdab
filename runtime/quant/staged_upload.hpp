// Host bytes into a device buffer through pinned memory, for grey_model_quantize on a device: a mapped
// file's pages are pageable memory, which a GPU takes at a fraction of the speed it takes pinned memory
// (the driver stages pageable bytes itself, one piece at a time, with the caller waiting). Here the
// context's workers copy the bytes into one of two pinned chunks while the device takes the other by DMA.
#pragma once

#include "grey.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace grey::quant {

class StagedUpload {
public:
    static constexpr uint64_t kChunkBytes = 16ull << 20;

    // Two chunks of `chunk_bytes` (grey_host_alloc: pinned where the device's backend pins), a stream
    // and two events on `device` of `context`.
    StagedUpload(grey_context* context, uint32_t device, uint64_t chunk_bytes = kChunkBytes);
    ~StagedUpload();
    StagedUpload(const StagedUpload&) = delete;
    StagedUpload& operator=(const StagedUpload&) = delete;

    // Writes `bytes` to [offset, offset + bytes.size()) of `target` (on the same device) and returns once
    // they are there.
    void operator()(grey_buffer* target, uint64_t offset, std::span<const std::byte> bytes);

private:
    struct StreamCloser {
        void operator()(grey_stream* s) const noexcept { grey_stream_destroy(s); }
    };
    struct EventCloser {
        void operator()(grey_event* e) const noexcept { grey_event_destroy(e); }
    };

    grey_context* context_;
    uint64_t chunk_bytes_;
    std::array<void*, 2> chunks_{};
    std::unique_ptr<grey_stream, StreamCloser> stream_;
    std::array<std::unique_ptr<grey_event, EventCloser>, 2> chunk_free_;  // recorded after each chunk's copy
};

}  // namespace grey::quant
