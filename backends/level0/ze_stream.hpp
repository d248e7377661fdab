// The stream slots on Level Zero (API 1.4: no zeCommandListHostSynchronize, so no asynchronous
// immediate lists to wait on): a stream is an asynchronous, in-order command queue, and each enqueued
// operation a regular command list, closed and executed on it at once, kept until a wait has seen the
// queue idle. An event's record is an EventSlot: an event of its own one-slot host-visible pool and eight
// bytes of host memory; recording appends a write of the device's global timestamp there that signals
// the event, waiting appends a wait on it.
//
// Level Zero forbids destroying an event (or its pool) the device may still reference, where CUDA and
// HIP let an event go at any time. So every command list that names a slot holds a reference to it, given
// back only when the list is destroyed (after a synchronize or idle query of its queue has seen it run);
// ZeEvent holds one more, for its latest record. The Level Zero objects go with the last reference: never
// under a queued wait, and destroying a grey event never blocks.
#pragma once

#include "level0/ze_library.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
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

    // One command list of what `append(list)` appends, executed on the queue; `keep` (the objects the
    // list names) lives until the list is destroyed. Throws ZeError naming the call that failed (the list
    // is destroyed then, nothing of it having run).
    template <typename Append>
    void submit(Append&& append, std::shared_ptr<const void> keep = nullptr) {
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
        submitted_.push_back({list, std::move(keep)});
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
    struct Submitted {
        ze_command_list_handle_t list;
        std::shared_ptr<const void> keep;  // released after the list is destroyed
    };
    std::vector<Submitted> submitted_;
};

// One record's Level Zero objects: the event, its pool, and the host memory its timestamp goes to.
// Destroyed by the last reference (see above), in the order Level Zero requires.
class EventSlot {
public:
    // Throws ZeError naming the call that failed (what was made before is given back).
    EventSlot(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device);
    ~EventSlot();
    EventSlot(const EventSlot&) = delete;
    EventSlot& operator=(const EventSlot&) = delete;

    [[nodiscard]] ze_event_handle_t event() const noexcept { return event_; }
    // Where the record's global timestamp is written; read only after the event has completed.
    [[nodiscard]] uint64_t* timestamp() const noexcept { return timestamp_; }
    // What a command list naming the slot keeps: the slot, counted in lists() until the list is destroyed.
    [[nodiscard]] static std::shared_ptr<const void> use(std::shared_ptr<EventSlot> slot);
    // How many command lists naming the slot are not destroyed yet (acquire: their work happened before).
    [[nodiscard]] int lists() const noexcept { return lists_.load(std::memory_order_acquire); }

private:
    void release() noexcept;

    const ZeLibrary& ze_;
    ze_context_handle_t context_;
    ze_event_pool_handle_t pool_ = nullptr;
    ze_event_handle_t event_ = nullptr;
    uint64_t* timestamp_ = nullptr;
    std::atomic<int> lists_{0};
};

// How a device's global timestamps turn into time (zeDeviceGetProperties).
struct DeviceTimer {
    double nanoseconds_per_tick = 0;
    uint32_t valid_bits = 0;
};
// Throws ZeError naming the call that failed, std::domain_error when the device states no usable timer.
DeviceTimer device_timer(const ZeLibrary& ze, ze_driver_handle_t driver, ze_device_handle_t device);
// Milliseconds from timestamp `start` to `end` of a timer with `valid_bits` bits: the difference is taken
// modulo 2^valid_bits and read as signed, so one wrap of the counter between them is undone and `end`
// before `start` is negative (right while they are less than half a wrap apart).
double elapsed_ms(const DeviceTimer& timer, uint64_t start, uint64_t end);

class ZeEvent {
public:
    ZeEvent(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device);
    // Gives back only this event's reference: lists still queued keep their slots alive.
    ~ZeEvent() = default;
    ZeEvent(const ZeEvent&) = delete;
    ZeEvent& operator=(const ZeEvent&) = delete;

    // Stands for the work submitted to `stream` so far.
    void record(ZeStream& stream);
    // Work submitted to `stream` after this waits for the latest record.
    void wait_on(ZeStream& stream);
    // Both answer at once for an event never recorded (it stands for no work).
    void synchronize();
    [[nodiscard]] bool query();
    // Waits for the latest record and gives the device's global timestamp it wrote. Throws
    // std::invalid_argument for an event never recorded, ZeError for a failed wait.
    [[nodiscard]] uint64_t completed_timestamp(const char* which);

private:
    // The slot for a new record: the current one when nothing queued still names it, else a new one.
    std::shared_ptr<EventSlot> slot_for_record();
    // The latest record's slot, or nullptr when never recorded.
    [[nodiscard]] std::shared_ptr<EventSlot> recorded_slot();

    const ZeLibrary& ze_;
    ze_context_handle_t context_;
    ze_device_handle_t device_;
    std::mutex mutex_;
    std::shared_ptr<EventSlot> slot_;  // guarded by mutex_; every copy made under it
    bool recorded_ = false;            // guarded by mutex_
};

}  // namespace grey::level0
