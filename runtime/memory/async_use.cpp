#include "memory/async_use.hpp"

#include "core/context.hpp"
#include "core/stream.hpp"
#include "memory/buffer.hpp"
#include "memory/tiers.hpp"

namespace grey::memory {

AsyncUse::AsyncUse(std::initializer_list<const grey_buffer*> buffers) {
    // A buffer of another context is left out: its tiers have their own lock, and the call refuses it.
    for (const grey_buffer* b : buffers)
        if (b != nullptr && (buffers_.empty() || b->context == buffers_.front()->context)) buffers_.push_back(b);
    if (!buffers_.empty()) buffers_.front()->context->tiers->begin_use(buffers_);
}

AsyncUse::AsyncUse(grey_stream& stream, std::initializer_list<const grey_buffer*> buffers) : AsyncUse(buffers) { stream_ = &stream; }

AsyncUse::~AsyncUse() {
    if (buffers_.empty()) return;
    // Work the runtime ran at enqueue (or synchronously) is done already; only a backend stream's needs an event.
    grey_backend_stream* queued_on = enqueued_ && stream_ != nullptr ? stream_->handle : nullptr;
    const bool recorded = buffers_.front()->context->tiers->end_use(buffers_, queued_on);
    if (!recorded) {
        // No event could say when the work completes: wait for it here, keeping its failure for the stream.
        std::lock_guard lock(stream_->mutex);
        drain_backend_stream(*stream_);
    }
}

}  // namespace grey::memory
