// Quantization enqueued on a caller's HIP stream (the quantize_async slot): the kernels are launched on
// the stream and nothing is waited for. Each job in flight gets its own block of the device's pool for
// the flags the kernels lower on bad input and the word they set when they do (armed by fills on the
// stream itself), its own scratch, and a host copy of that block which the stream fills after the
// kernels (hipMemcpyAsync). A synchronize, a query that finds the stream idle, or an event recorded
// after the job checks the jobs it has seen finish: a job whose word is 0 costs a host read; one whose
// kernels flagged is turned into the synchronous call's message, the first such failure kept
// (grey_backend.h, "Streams and events"). The memory goes back to the pool only then, once the stream
// has run the work that uses it. The CUDA plugin's QuantJournal is the model; HIP has no mapped host
// word here (the runtime's entry points this plugin resolves have no hipHostMalloc), so the word comes
// back by a copy on the stream.
#pragma once

#include "common/chunk_pool.hpp"
#include "common/job_failures.hpp"
#include "common/quant_plan.hpp"
#include "hip/hip_quantizer.hpp"

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace grey::hip {

using QuantFailure = backend::JobFailure;

class QuantJournal {
public:
    QuantJournal() = default;
    QuantJournal(const QuantJournal&) = delete;
    QuantJournal& operator=(const QuantJournal&) = delete;

    // With the device current and its pool at hand (on_device): arms a flag block for the job, launches
    // its kernels on `stream` and the copy of the block back to the host. Throws what enqueue_quantize
    // throws, and backend::PoolOutOfMemory; a job whose kernels may be partly queued is still checked
    // (and its memory kept) until the stream has run it. Jobs are numbered in the order they are enqueued.
    void enqueue_quantize(const HipRuntime& hip, const QuantKernels& k, backend::ChunkPool& pool, api::Stream stream,
                          const grey_backend_quant_job& job, uint64_t source, uint64_t destination);

    // Runs `record` (an event record on the journal's stream) between two jobs and returns the number of
    // the next job: the event stands for the jobs numbered below it.
    template <typename Record>
    uint64_t mark(Record&& record) {
        std::lock_guard lock(mutex_);
        record();
        return failures_.next_job();
    }
    // The number the next job will get: a wait takes it before waiting, to check only the jobs it waited for.
    [[nodiscard]] uint64_t next_job();

    // Once the stream has run every job numbered below `end`: turns the flags of those that raised one
    // into a failure (the first is kept) and gives their memory back to `pool`.
    void check_before(uint64_t end, backend::ChunkPool& pool);
    // The kept failure, forgotten (stream synchronize and query).
    [[nodiscard]] std::optional<QuantFailure> take_failure();
    // The kept failure if a job numbered below `end` found it (event synchronize and query); kept.
    [[nodiscard]] std::optional<QuantFailure> failure_before(uint64_t end);
    // The stream has run everything and goes: every job's memory back to `pool` (events may keep the
    // journal, for its failure, longer).
    void release(backend::ChunkPool& pool) noexcept;

private:
    // A job's flag block as the kernels see it (flags at the block, the word after them) and as it comes back.
    struct Found {
        grey_qk_flags flags{~uint64_t{0}, ~uint64_t{0}, ~uint64_t{0}};
        uint32_t noticed = 0;
    };
    static constexpr uint64_t kFoundBytes = sizeof(grey_qk_flags) + sizeof(uint32_t);
    struct Pending {
        uint64_t number;
        uint64_t block;    // kFoundBytes of the pool
        uint64_t scratch;  // 0: none
        std::unique_ptr<Found> found;
        backend::quant::QuantFacts facts;
    };
    void check(Pending& job);                                        // with mutex_ held
    static void free_memory(const Pending& job, backend::ChunkPool& pool) noexcept;

    std::mutex mutex_;
    std::deque<Pending> pending_;
    backend::JobFailures failures_;
};

}  // namespace grey::hip
