// Quantization enqueued on a caller's stream (grey_quantize_buffer_async): the kernels are launched and
// nothing is waited for or read back. The stream's scratch also serves the KV cache's attention queued
// there (grey_kv_attend_async, enqueue_with_scratch). Each job in flight gets its own flag slot (device memory the
// kernels lower on bad input) and a word of mapped host memory they set when they flag, so that
// checking a finished job costs a host read unless its input was bad. The journal checks the jobs a
// synchronize, a query or an event has seen finish, and keeps the first failure, as the host backend's
// worker-thread streams keep theirs (grey_backend.h, "Streams and events").
#pragma once

#include "common/job_failures.hpp"
#include "cuda/device_runtime.hpp"
#include "cuda/quantizer.hpp"
#include "grey.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace grey::cuda {

using QuantFailure = backend::JobFailure;

class QuantJournal {
public:
    explicit QuantJournal(DeviceRuntime& device) : device_(device) {}
    // Releases the device memory; the stream must have run every job (release_memory() says so).
    ~QuantJournal();
    QuantJournal(const QuantJournal&) = delete;
    QuantJournal& operator=(const QuantJournal&) = delete;

    // Launch the job's kernels on `stream`. Thread-safe; jobs are numbered in the order they are enqueued.
    void enqueue_quantize(CUstream stream, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination);
    void enqueue_dequantize(CUstream stream, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination);

    // Other work queued on the stream that takes device memory (the KV cache's attention): `work(scratch)`
    // runs under the journal's lock with the device's context current, `scratch(bytes)` giving the
    // stream's scratch of at least `bytes`, and is numbered as a job, so that a larger scratch taken later
    // retires the one it used only once the stream has passed it.
    template <typename Work>
    void enqueue_with_scratch(Work&& work) {
        std::lock_guard lock(mutex_);
        try {
            device_.in_context([&](const Driver&) { work([this](uint64_t bytes) { return scratch(bytes); }); });
        } catch (...) {
            failures_.advance();  // some of it may be queued, using the scratch
            throw;
        }
        failures_.advance();
    }

    // Runs `record` (an event record on the journal's stream) between two jobs and returns the number of
    // the next job: the event stands for the jobs numbered below it.
    template <typename Record>
    uint64_t mark(Record&& record) {
        std::lock_guard lock(mutex_);
        record();
        return failures_.next_job();
    }
    // The number the next job will get: a synchronize takes it before waiting, to check only the jobs it waited for.
    [[nodiscard]] uint64_t next_job();

    // Once the stream has run every job numbered below `end`: reads the flags of those that raised one,
    // keeping the first failure, and frees their slots and the scratch they were the last to use.
    void check_before(uint64_t end);
    // The kept failure, forgotten (stream synchronize and query).
    [[nodiscard]] std::optional<QuantFailure> take_failure();
    // The kept failure if a job numbered below `end` found it (event synchronize and query); kept.
    [[nodiscard]] std::optional<QuantFailure> failure_before(uint64_t end);

    // The stream is gone and has run everything: gives the device memory back now (events may keep the
    // journal for its failure longer).
    void release_memory() noexcept;

private:
    static constexpr uint32_t kSlotsPerChunk = 256;
    struct SlotChunk {
        CUdeviceptr flags = 0;                 // kSlotsPerChunk grey_qk_flags
        std::unique_ptr<PinnedHost> noticed;   // kSlotsPerChunk uint32, mapped
        CUdeviceptr noticed_device = 0;
    };
    struct Pending {
        uint64_t number;
        uint32_t slot;
        QuantFacts facts;
    };
    struct Retired {
        uint64_t end;  // the jobs numbered below it may still use the memory
        CUdeviceptr memory;
    };

    // With mutex_ held and the device's context current.
    const QuantKernels& kernels();
    uint32_t take_slot(CUstream stream);
    CUdeviceptr scratch(uint64_t bytes);
    volatile uint32_t& noticed(uint32_t slot) const;
    void check(const Pending& job);

    DeviceRuntime& device_;
    std::mutex mutex_;
    const QuantKernels* kernels_ = nullptr;
    std::vector<SlotChunk> chunks_;
    std::vector<uint32_t> free_slots_;
    std::deque<Pending> pending_;
    CUdeviceptr scratch_ = 0;
    uint64_t scratch_bytes_ = 0;
    std::vector<Retired> retired_;
    backend::JobFailures failures_;
};

}  // namespace grey::cuda
