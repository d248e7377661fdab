#include "quant/staged_upload.hpp"

#include "core/context.hpp"
#include "core/worker_pool.hpp"
#include "quant/model_api_support.hpp"

#include <algorithm>
#include <cstring>
#include <tuple>

namespace grey::quant {
namespace {

// Pieces of a chunk the workers copy: large enough that handing one out costs nothing beside it.
constexpr size_t kCopyBlock = 1u << 20;

}  // namespace

StagedUpload::StagedUpload(grey_context* context, uint32_t device, uint64_t chunk_bytes) : context_(context), chunk_bytes_(chunk_bytes) {
    try {
        for (void*& chunk : chunks_) check_api(grey_host_alloc(context, device, chunk_bytes, &chunk));
        grey_stream* stream = nullptr;
        check_api(grey_stream_create(context, device, &stream));
        stream_.reset(stream);
        for (auto& event : chunk_free_) {
            grey_event* raw = nullptr;
            check_api(grey_event_create(context, device, &raw));
            event.reset(raw);
        }
    } catch (...) {
        for (void* chunk : chunks_) std::ignore = grey_host_free(context, chunk);
        throw;
    }
}

StagedUpload::~StagedUpload() {
    // A failed upload may have left copies from the chunks queued: they finish before the chunks go.
    if (stream_) std::ignore = grey_stream_synchronize(stream_.get());
    for (void* chunk : chunks_) std::ignore = grey_host_free(context_, chunk);
}

void StagedUpload::operator()(grey_buffer* target, uint64_t offset, std::span<const std::byte> bytes) {
    for (uint64_t done = 0, index = 0; done < bytes.size(); ++index) {
        const size_t size = static_cast<size_t>(std::min<uint64_t>(chunk_bytes_, bytes.size() - done));
        const size_t slot = index % 2;
        auto* chunk = static_cast<std::byte*>(chunks_[slot]);
        // The chunk's previous copy (two chunks ago) must have left it.
        if (index >= 2) check_api(grey_event_synchronize(chunk_free_[slot].get()));
        const std::byte* from = bytes.data() + done;
        const auto copy = [&](size_t begin, size_t end) {
            std::memcpy(chunk + begin * kCopyBlock, from + begin * kCopyBlock, std::min(size, end * kCopyBlock) - begin * kCopyBlock);
        };
        context_->workers->run_shared((size + kCopyBlock - 1) / kCopyBlock, 1, copy);
        check_api(grey_buffer_write_async(target, offset + done, chunk, size, stream_.get()));
        check_api(grey_event_record(chunk_free_[slot].get(), stream_.get()));
        done += size;
    }
    check_api(grey_stream_synchronize(stream_.get()));
}

}  // namespace grey::quant
