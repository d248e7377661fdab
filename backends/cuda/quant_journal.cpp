#include "cuda/quant_journal.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace grey::cuda {

QuantJournal::~QuantJournal() { release_memory(); }

const QuantKernels& QuantJournal::kernels() {
    // Loaded once, under the device's lock as the synchronous jobs load them.
    if (kernels_ == nullptr) kernels_ = device_.exclusive([&] { return &device_.quant_kernels(); });
    return *kernels_;
}

volatile uint32_t& QuantJournal::noticed(uint32_t slot) const {
    return static_cast<volatile uint32_t*>(chunks_[slot / kSlotsPerChunk].noticed->get())[slot % kSlotsPerChunk];
}

// A free slot, adding a chunk when every slot is in flight. A new chunk's flags are armed by a fill on
// the stream itself, so the jobs that use them come after it; its words start at 0.
uint32_t QuantJournal::take_slot(CUstream stream) {
    if (free_slots_.empty()) {
        SlotChunk chunk;
        chunk.noticed = std::make_unique<PinnedHost>(device_.driver(), kSlotsPerChunk * sizeof(uint32_t));
        std::memset(chunk.noticed->get(), 0, kSlotsPerChunk * sizeof(uint32_t));
        device_.driver().check(device_.driver().cuMemHostGetDevicePointer(&chunk.noticed_device, chunk.noticed->get(), 0),
                               "cuMemHostGetDevicePointer");
        chunk.flags = device_.pool().allocate(kSlotsPerChunk * sizeof(grey_qk_flags));
        try {
            device_.enqueue_fill(stream, chunk.flags, 0xFF, kSlotsPerChunk * sizeof(grey_qk_flags));
            // Room for every slot, so that giving one back (check) never allocates.
            free_slots_.reserve((chunks_.size() + 1) * kSlotsPerChunk);
            chunks_.reserve(chunks_.size() + 1);
        } catch (...) {
            device_.pool().release(chunk.flags);
            throw;
        }
        const auto first = static_cast<uint32_t>(chunks_.size() * kSlotsPerChunk);
        chunks_.push_back(std::move(chunk));
        // Taken lowest first, so a stream that never has many jobs in flight touches few slots.
        for (uint32_t i = kSlotsPerChunk; i-- > 0;) free_slots_.push_back(first + i);
    }
    const uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
}

// Jobs of one stream run one after another, so they share one scratch area; a job that needs more gets a
// larger one, and the old one goes back to the pool once the jobs before it are checked.
CUdeviceptr QuantJournal::scratch(uint64_t bytes) {
    if (bytes == 0) return 0;
    if (bytes > scratch_bytes_) {
        const uint64_t size = std::max(bytes, scratch_bytes_ * 2);
        const CUdeviceptr larger = device_.pool().allocate(size);
        if (scratch_ != 0) {
            try {
                retired_.push_back({failures_.next_job(), scratch_});
            } catch (...) {
                device_.pool().release(larger);
                throw;
            }
        }
        scratch_ = larger;
        scratch_bytes_ = size;
    }
    return scratch_;
}

void QuantJournal::enqueue_quantize(CUstream stream, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination) {
    const QuantFacts facts = facts_of(job);
    std::lock_guard lock(mutex_);
    device_.in_context([&](const Driver&) {
        const QuantKernels& k = kernels();
        const CUdeviceptr work = scratch(quantize_scratch_bytes(device_, job, source, destination));
        if (pending_.size() == pending_.max_size()) throw std::length_error("too many quantizations in flight on one stream");
        const uint32_t slot = take_slot(stream);
        try {
            const SlotChunk& chunk = chunks_[slot / kSlotsPerChunk];
            const uint64_t at = slot % kSlotsPerChunk;
            grey::cuda::enqueue_quantize(device_, k, stream, job, source, destination,
                                         {chunk.flags + at * sizeof(grey_qk_flags), chunk.noticed_device + at * sizeof(uint32_t), work, 0});
            pending_.push_back({failures_.next_job(), slot, facts});
        } catch (...) {
            // Kernels of the job may already be queued and lower the slot's flags: check it with the
            // others rather than hand it out again unchecked.
            pending_.push_back({failures_.next_job(), slot, facts});
            failures_.advance();
            throw;
        }
        failures_.advance();
    });
}

void QuantJournal::enqueue_dequantize(CUstream stream, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination) {
    std::lock_guard lock(mutex_);
    device_.in_context([&](const Driver&) { grey::cuda::enqueue_dequantize(device_, kernels(), stream, job, source, destination); });
}

uint64_t QuantJournal::next_job() {
    std::lock_guard lock(mutex_);
    return failures_.next_job();
}

// A finished job: nothing to read unless its kernels set the word. Flags read back go through the
// device's own stream (the caller's may hold newer work), and are re-armed before the slot is reused.
void QuantJournal::check(const Pending& job) {
    volatile uint32_t& word = noticed(job.slot);
    if (word != 0) {
        const SlotChunk& chunk = chunks_[job.slot / kSlotsPerChunk];
        const CUdeviceptr flags = chunk.flags + (job.slot % kSlotsPerChunk) * sizeof(grey_qk_flags);
        grey_qk_flags found{};
        device_.exclusive([&] {
            static const grey_qk_flags armed{~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}};
            device_.copy_to_host_async(&found, flags, sizeof found);
            device_.copy_to_device_async(flags, &armed, sizeof armed);
            device_.finish();
        });
        word = 0;
        if (!failures_.holds_one()) {
            try {
                throw_if_flagged(found, job.facts);
            } catch (const std::invalid_argument& e) {
                failures_.keep(job.number, {GREY_ERROR_INVALID_ARGUMENT, e.what()});
            }
        }
    }
    free_slots_.push_back(job.slot);
}

void QuantJournal::check_before(uint64_t end) {
    std::lock_guard lock(mutex_);
    // free_slots_ has room for every slot (take_slot reserves it), so nothing below throws but a driver
    // call: the job stays pending then, for the next check.
    while (!pending_.empty() && pending_.front().number < end) {
        check(pending_.front());
        pending_.pop_front();
    }
    const auto done = std::remove_if(retired_.begin(), retired_.end(), [&](const Retired& r) {
        if (r.end > end) return false;
        device_.pool().release(r.memory);
        return true;
    });
    retired_.erase(done, retired_.end());
}

std::optional<QuantFailure> QuantJournal::take_failure() {
    std::lock_guard lock(mutex_);
    return failures_.take();
}

std::optional<QuantFailure> QuantJournal::failure_before(uint64_t end) {
    std::lock_guard lock(mutex_);
    return failures_.before(end);
}

void QuantJournal::release_memory() noexcept {
    std::lock_guard lock(mutex_);
    // Released already (the stream went first): the device may be gone by the time the last event goes.
    if (chunks_.empty() && retired_.empty() && scratch_ == 0) return;
    try {
        device_.in_context([&](const Driver&) {
            for (SlotChunk& chunk : chunks_) {
                device_.pool().release(chunk.flags);
                chunk.noticed.reset();
            }
            for (const Retired& r : retired_) device_.pool().release(r.memory);
            if (scratch_ != 0) device_.pool().release(scratch_);
        });
    } catch (const std::exception&) {
        // The context is gone, and the memory with it.
    }
    chunks_.clear();
    free_slots_.clear();
    pending_.clear();
    retired_.clear();
    scratch_ = 0;
    scratch_bytes_ = 0;
}

}  // namespace grey::cuda
