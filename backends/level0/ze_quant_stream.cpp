#include "level0/ze_quant_stream.hpp"

#include <array>
#include <utility>

namespace grey::level0 {

StreamQuantizer::StreamQuantizer(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device, Classify classify)
    : ze_(ze), context_(context), device_(device), classify_(std::move(classify)) {}

StreamQuantizer::~StreamQuantizer() { stop(); }

void StreamQuantizer::enqueue(ZeStream& stream, Job job) {
    auto gate = std::make_shared<EventSlot>(ze_, context_, device_);
    auto release = std::make_shared<EventSlot>(ze_, context_, device_);
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    ze_event_handle_t released = release->event();
    // The list keeps both slots until it is destroyed, after a wait has seen it run (ze_stream.hpp).
    auto keep = std::make_shared<std::array<std::shared_ptr<const void>, 2>>(
        std::array<std::shared_ptr<const void>, 2>{EventSlot::use(gate), EventSlot::use(release)});
    ze_event_handle_t opened = gate->event();
    uint64_t* written = gate->timestamp();
    // The task goes first (the thread cannot take it before the lock is let go): once the list is queued,
    // the queue waits for the release, so the task must be there to give it.
    tasks_.push_back(Task{failures_.next_job(), std::move(gate), std::move(release), std::move(job)});
    try {
        stream.submit(
            [&](ze_command_list_handle_t list) {
                // The gate is a record as event_record makes one: a timestamp write that signals the event.
                ZeLibrary::check(ze_.zeCommandListAppendWriteGlobalTimestamp(list, written, opened, 0, nullptr),
                                 "zeCommandListAppendWriteGlobalTimestamp");
                ZeLibrary::check(ze_.zeCommandListAppendWaitOnEvents(list, 1, &released), "zeCommandListAppendWaitOnEvents");
            },
            std::move(keep));
    } catch (...) {
        tasks_.pop_back();  // nothing of the list was queued
        throw;
    }
    failures_.advance();
    wake_.notify_one();
}

uint64_t StreamQuantizer::next_job() {
    std::lock_guard lock(mutex_);
    return failures_.next_job();
}

std::optional<QuantFailure> StreamQuantizer::take_failure(uint64_t end) {
    std::lock_guard lock(mutex_);
    return failures_.take_before(end);
}

std::optional<QuantFailure> StreamQuantizer::failure_before(uint64_t end) {
    std::lock_guard lock(mutex_);
    return failures_.before(end);
}

bool StreamQuantizer::wait_for_gate(const Task& task) {
    // In slices, so that a stream torn down with its queue never reaching the gate does not keep the
    // thread forever.
    constexpr uint64_t kSliceNs = 10'000'000;
    for (;;) {
        const ze_result_t r = ze_.zeEventHostSynchronize(task.gate->event(), kSliceNs);
        if (r == ZE_RESULT_SUCCESS) return true;
        if (r != ZE_RESULT_NOT_READY) ZeLibrary::check(r, "zeEventHostSynchronize");
        std::lock_guard lock(mutex_);
        if (stopping_) return false;
    }
}

void StreamQuantizer::run() {
    for (;;) {
        Task task;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
            if (tasks_.empty()) return;
            task = std::move(tasks_.front());
            tasks_.pop_front();
        }
        std::optional<QuantFailure> failure;
        try {
            if (wait_for_gate(task)) task.job();
        } catch (...) {
            try {
                failure = classify_();
            } catch (...) {  // no memory for the message: the status alone
                failure = QuantFailure{GREY_ERROR_OUT_OF_MEMORY, std::string()};
            }
        }
        if (failure.has_value()) {
            std::lock_guard lock(mutex_);
            failures_.keep(task.number, std::move(*failure));
        }
        // Last: the queue goes on past the job only now, so whoever sees it idle sees the failure kept.
        (void)ze_.zeEventHostSignal(task.release->event());
    }
}

void StreamQuantizer::stop() noexcept {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

}  // namespace grey::level0
