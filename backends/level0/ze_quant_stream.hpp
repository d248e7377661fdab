// Quantization enqueued on a Level Zero stream (the quantize_async slot). A quantize job is not device
// work alone: between its kernels the host combines the statistics and chooses every parameter set
// (quant_launch.hpp), so its steps cannot all be appended to the stream's queue when it is enqueued.
// Instead the queue is given one command list that signals a gate event when the queue reaches the job
// and then waits on a release event; a host thread of the stream (started with its first job) waits for
// the gate, runs the job as the synchronous slot runs it (DeviceQueue::quantize, on the device's own
// command list), keeps the first failure, and signals the release from the host. Work enqueued after the
// job waits for it on the device, and the enqueue returns at once. Both events are EventSlots
// (ze_stream.hpp), kept by the command list that names them and by the thread's task until each is done.
//
// Failures are numbered by job, as the CUDA and HIP plugins' journals number theirs: a synchronize or an
// idle query returns (and forgets) the first one; an event recorded after a failed job returns it.
#pragma once

#include "common/job_failures.hpp"
#include "grey.h"
#include "level0/ze_library.hpp"
#include "level0/ze_stream.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace grey::level0 {

using QuantFailure = backend::JobFailure;

class StreamQuantizer {
public:
    // Runs one job to its end on the calling thread; throws what the synchronous slot throws.
    using Job = std::function<void()>;
    // The status and message of the exception being handled, as the backend's slots report it.
    using Classify = std::function<QuantFailure()>;

    StreamQuantizer(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device, Classify classify);
    // Ends the thread (stop()).
    ~StreamQuantizer();
    StreamQuantizer(const StreamQuantizer&) = delete;
    StreamQuantizer& operator=(const StreamQuantizer&) = delete;

    // Submits the gate-and-release list to `stream` and hands `job` to the thread. Throws ZeError (an
    // event, or the list, the driver refused: nothing is queued then) or std::system_error (no thread).
    void enqueue(ZeStream& stream, Job job);

    // Runs `record` (an event record on the stream) between two jobs and returns the number of the next
    // job: the event stands for the jobs numbered below it.
    template <typename Record>
    uint64_t mark(Record&& record) {
        std::lock_guard lock(mutex_);
        record();
        return failures_.next_job();
    }
    // The number the next job will get: a wait takes it before waiting; every job below it has run, and
    // its failure is kept, once the queue is seen idle (the release is signalled after the failure is kept).
    [[nodiscard]] uint64_t next_job();
    // The kept failure of a job numbered below `end`, forgotten (stream synchronize and query).
    [[nodiscard]] std::optional<QuantFailure> take_failure(uint64_t end);
    // The kept failure if a job numbered below `end` found it (event synchronize and query); kept.
    [[nodiscard]] std::optional<QuantFailure> failure_before(uint64_t end);

    // Ends the thread once its tasks are done. Call after the stream's queue is idle (its destructor
    // waits for it): a task whose gate never comes (the queue was torn down) is abandoned.
    void stop() noexcept;

private:
    struct Task {
        uint64_t number = 0;
        std::shared_ptr<EventSlot> gate;
        std::shared_ptr<EventSlot> release;
        Job job;
    };
    void run();
    // Waits for the task's gate; false once the stream is stopping and the gate has not come.
    bool wait_for_gate(const Task& task);

    const ZeLibrary& ze_;
    ze_context_handle_t context_;
    ze_device_handle_t device_;
    Classify classify_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Task> tasks_;  // guarded by mutex_
    bool stopping_ = false;   // guarded by mutex_
    backend::JobFailures failures_;  // guarded by mutex_
    std::thread thread_;  // started by the first enqueue; declared last, so it ends before the rest goes
};

}  // namespace grey::level0
