// Writes a model's tensors on a thread of its own, one tensor behind the caller, so that writing tensor
// i overlaps quantizing tensor i + 1 (grey_model_quantize: the file is read ahead, quantized on the
// context's pool, and written behind). One write is in flight at a time and writes keep their order;
// the writer is used from this thread only (grey.h: one thread at a time) until wait() has returned.
#pragma once

#include "grey.h"

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

namespace grey::quant {

class WriteBehind {
public:
    WriteBehind(grey_model_writer* writer, const grey_model* model);
    // Stops the thread; a write not yet started is dropped (the caller is failing anyway).
    ~WriteBehind();
    WriteBehind(const WriteBehind&) = delete;
    WriteBehind& operator=(const WriteBehind&) = delete;

    // Waits for the previous write, then hands tensor `index`'s `size` bytes at `data` to the thread;
    // they must stay valid and unchanged until the next submit() or wait() returns. With
    // `evict_after`, the tensor's pages in the input model are dropped once written.
    void submit(uint64_t index, const void* data, uint64_t size, bool evict_after);
    // Waits for the write in flight; rethrows its failure (grey::Error naming what failed).
    void wait();

private:
    struct Job {
        uint64_t index;
        const void* data;
        uint64_t size;
        bool evict_after;
    };
    void loop(std::stop_token stop);

    grey_model_writer* writer_;
    const grey_model* model_;
    std::mutex mutex_;
    std::condition_variable_any posted_;  // a job was posted, or the thread is stopping
    std::condition_variable done_;        // the job finished
    std::optional<Job> job_;              // posted and not yet finished
    std::exception_ptr error_;
    std::jthread thread_;  // last: stopped and joined first
};

}  // namespace grey::quant
