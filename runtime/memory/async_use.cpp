#include "memory/async_use.hpp"

#include "core/context.hpp"
#include "core/stream.hpp"
#include "memory/buffer.hpp"
#include "memory/tiers.hpp"

namespace grey::memory {

AsyncUse::AsyncUse(grey_stream& stream, std::initializer_list<const grey_buffer*> buffers) : stream_(stream) {
    for (const grey_buffer* b : buffers)
        if (b != nullptr) buffers_.push_back(b);
    if (!buffers_.empty()) stream_.context->tiers->begin_use(buffers_);
}

AsyncUse::~AsyncUse() {
    if (buffers_.empty()) return;
    // Work the runtime ran at enqueue is done already; only a backend stream's needs an event.
    const bool recorded = stream_.context->tiers->end_use(buffers_, enqueued_ ? stream_.handle : nullptr);
    if (!recorded) {
        // No event could say when the work completes: wait for it here, keeping its failure for the stream.
        std::lock_guard lock(stream_.mutex);
        drain_backend_stream(stream_);
    }
}

}  // namespace grey::memory
