#include "hip/hip_quant_journal.hpp"

#include <stdexcept>
#include <utility>

namespace grey::hip {

namespace quant = backend::quant;

void QuantJournal::enqueue_quantize(const HipRuntime& hip, const QuantKernels& k, backend::ChunkPool& pool, api::Stream stream,
                                    const grey_backend_quant_job& job, uint64_t source, uint64_t destination) {
    // Everything that can refuse the job comes before anything is queued: the facts (the job lives only
    // for this call), the memory (given back by its scopes if what follows refuses), the plan's checks.
    const quant::QuantFacts facts = quant::facts_of(job);
    std::lock_guard lock(mutex_);
    auto found = std::make_unique<Found>();
    backend::ChunkScratch block(pool, kFoundBytes);
    backend::ChunkScratch scratch(pool, quant::quantize_scratch_bytes(job, k.compute_units(), source, destination));
    if (pending_.size() == pending_.max_size()) throw std::length_error("too many quantizations in flight on one HIP stream");
    Pending entry{failures_.next_job(), block.get(), scratch.get(), std::move(found), facts};
    quant::Plan plan = quant::plan_quantize(job, k.compute_units(), source, destination,
                                            {entry.block, entry.block + sizeof(grey_qk_flags), entry.scratch, 0});
    void* flags = reinterpret_cast<void*>(entry.block);
    void* noticed = reinterpret_cast<void*>(entry.block + sizeof(grey_qk_flags));
    // Armed on the stream, so the fills run after whatever the stream ran before, and the kernels after them.
    hip.check(hip.mem_set_async(flags, 0xFF, sizeof(grey_qk_flags), stream), "hipMemsetAsync");
    auto keep = [&] {
        // From here kernels of the job may be queued: the memory stays with the journal until a wait has
        // seen the stream run them.
        pending_.push_back(std::move(entry));
        (void)block.take();
        (void)scratch.take();
        failures_.advance();
    };
    try {
        hip.check(hip.mem_set_async(noticed, 0, sizeof(uint32_t), stream), "hipMemsetAsync");
        enqueue_plan(hip, k, stream, plan);
        hip.check(hip.mem_copy_async(entry.found.get(), flags, kFoundBytes, api::kMemcpyDeviceToHost, stream), "hipMemcpyAsync");
    } catch (...) {
        // The copy back may not be queued: the host copy still says "nothing noticed", so a partly queued
        // job reports only the enqueue's own error (returned now).
        keep();
        throw;
    }
    keep();
}

uint64_t QuantJournal::next_job() {
    std::lock_guard lock(mutex_);
    return failures_.next_job();
}

void QuantJournal::check(Pending& job) {
    if (job.found->noticed == 0 || failures_.holds_one()) return;
    try {
        quant::throw_if_flagged(job.found->flags, job.facts);
    } catch (const std::invalid_argument& e) {
        failures_.keep(job.number, {GREY_ERROR_INVALID_ARGUMENT, e.what()});
    }
}

void QuantJournal::free_memory(const Pending& job, backend::ChunkPool& pool) noexcept {
    try {
        pool.release(job.block);
        if (job.scratch != 0) pool.release(job.scratch);
    } catch (const std::exception&) {
        // Only an address the pool never gave out throws: none is recorded here.
    }
}

void QuantJournal::check_before(uint64_t end, backend::ChunkPool& pool) {
    std::lock_guard lock(mutex_);
    while (!pending_.empty() && pending_.front().number < end) {
        check(pending_.front());
        free_memory(pending_.front(), pool);
        pending_.pop_front();
    }
}

std::optional<QuantFailure> QuantJournal::take_failure() {
    std::lock_guard lock(mutex_);
    return failures_.take();
}

std::optional<QuantFailure> QuantJournal::failure_before(uint64_t end) {
    std::lock_guard lock(mutex_);
    return failures_.before(end);
}

void QuantJournal::release(backend::ChunkPool& pool) noexcept {
    std::lock_guard lock(mutex_);
    for (const Pending& job : pending_) free_memory(job, pool);
    pending_.clear();
}

}  // namespace grey::hip
