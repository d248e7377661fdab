// The stream slots on Level Zero (API 1.4: no zeCommandListHostSynchronize, so no asynchronous
// immediate lists to wait on): a stream is an asynchronous, in-order command queue, and each enqueued
// operation a regular command list, closed and executed on it at once, kept until a wait has seen the
// queue idle. An event is an event of its own one-slot host-visible pool; recording appends a reset and a
// signal on the stream, waiting appends a wait on it.
#pragma once

#include "level0/ze_library.hpp"

#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

namespace grey::level0 {

class ZeStream {
public:
    // Throws ZeError naming zeCommandQueueCreate.
    ZeStream(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device);
    // Waits for the queue's work (a queue must be idle when destroyed), then frees the lists and the queue.
    ~ZeStream();
    ZeStream(const ZeStream&) = delete;
    ZeStream& operator=(const ZeStream&) = delete;

    // One command list of what `append(list)` appends, executed on the queue. Throws ZeError naming the
    // call that failed (the list is destroyed then, nothing of it having run).
    template <typename Append>
    void submit(Append&& append) {
        std::lock_guard lock(mutex_);
        ze_command_list_handle_t list = create_list();
        try {
            append(list);
            ZeLibrary::check(ze_.zeCommandListClose(list), "zeCommandListClose");
            ZeLibrary::check(ze_.zeCommandQueueExecuteCommandLists(queue_, 1, &list, nullptr), "zeCommandQueueExecuteCommandLists");
        } catch (...) {
            (void)ze_.zeCommandListDestroy(list);
            throw;
        }
        submitted_.push_back(list);
    }
    // Waits for everything submitted; throws ZeError (zeCommandQueueSynchronize's failure: the work's).
    void synchronize();
    // Whether everything submitted has finished (ZE_RESULT_NOT_READY: not yet); throws ZeError.
    [[nodiscard]] bool query();

private:
    ze_command_list_handle_t create_list();
    [[nodiscard]] size_t submitted_count();
    void release_lists(size_t count);  // the first `count` lists have run; with mutex_ held

    const ZeLibrary& ze_;
    ze_context_handle_t context_;
    ze_device_handle_t device_;
    ze_command_queue_handle_t queue_ = nullptr;
    std::mutex mutex_;
    std::vector<ze_command_list_handle_t> submitted_;
};

class ZeEvent {
public:
    ZeEvent(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device);
    ~ZeEvent();
    ZeEvent(const ZeEvent&) = delete;
    ZeEvent& operator=(const ZeEvent&) = delete;

    // Stands for the work submitted to `stream` so far.
    void record(ZeStream& stream);
    // Work submitted to `stream` after this waits for the latest record.
    void wait_on(ZeStream& stream);
    // Both answer at once for an event never recorded (it stands for no work).
    void synchronize();
    [[nodiscard]] bool query();

private:
    const ZeLibrary& ze_;
    ze_event_pool_handle_t pool_ = nullptr;
    ze_event_handle_t event_ = nullptr;
    std::atomic<bool> recorded_{false};
};

}  // namespace grey::level0
