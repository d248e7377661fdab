#include "quant/write_behind.hpp"

#include "quant/model_api_support.hpp"

#include <utility>

namespace grey::quant {

WriteBehind::WriteBehind(grey_model_writer* writer, const grey_model* model)
    : writer_(writer), model_(model), thread_([this](std::stop_token stop) { loop(std::move(stop)); }) {}

WriteBehind::~WriteBehind() {
    thread_.request_stop();
    thread_.join();
}

void WriteBehind::submit(uint64_t index, const void* data, uint64_t size, bool evict_after) {
    wait();
    {
        const std::lock_guard lock(mutex_);
        job_ = Job{index, data, size, evict_after};
    }
    posted_.notify_one();
}

void WriteBehind::wait() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return !job_.has_value(); });
    if (std::exception_ptr error = std::exchange(error_, nullptr)) std::rethrow_exception(error);
}

void WriteBehind::loop(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    for (;;) {
        if (!posted_.wait(lock, stop, [&] { return job_.has_value(); })) return;
        const Job job = *job_;
        lock.unlock();
        std::exception_ptr error;
        try {
            // grey_last_error() is this thread's: check_api reads it here, and the exception carries it.
            check_api(grey_model_writer_write_tensor(writer_, job.index, job.data, job.size));
            if (job.evict_after) check_api(grey_model_tensor_evict(model_, job.index));
        } catch (...) {
            error = std::current_exception();
        }
        lock.lock();
        error_ = error;
        job_.reset();
        done_.notify_all();
    }
}

}  // namespace grey::quant
