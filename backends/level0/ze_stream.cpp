#include "level0/ze_stream.hpp"

#include <cstddef>
#include <cstdint>

namespace grey::level0 {

ZeStream::ZeStream(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device) : ze_(ze), context_(context), device_(device) {
    ze_command_queue_desc_t desc{};
    desc.stype = ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC;
    desc.ordinal = 0;  // the first queue group: compute, which also copies
    desc.mode = ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS;
    desc.priority = ZE_COMMAND_QUEUE_PRIORITY_NORMAL;
    ZeLibrary::check(ze_.zeCommandQueueCreate(context_, device_, &desc, &queue_), "zeCommandQueueCreate");
}

ZeStream::~ZeStream() {
    (void)ze_.zeCommandQueueSynchronize(queue_, UINT64_MAX);
    std::lock_guard lock(mutex_);
    release_lists(submitted_.size());
    (void)ze_.zeCommandQueueDestroy(queue_);
}

ze_command_list_handle_t ZeStream::create_list() {
    ze_command_list_desc_t desc{};
    desc.stype = ZE_STRUCTURE_TYPE_COMMAND_LIST_DESC;
    desc.commandQueueGroupOrdinal = 0;
    ze_command_list_handle_t list = nullptr;
    ZeLibrary::check(ze_.zeCommandListCreate(context_, device_, &desc, &list), "zeCommandListCreate");
    return list;
}

void ZeStream::release_lists(size_t count) {
    for (size_t i = 0; i < count; ++i) (void)ze_.zeCommandListDestroy(submitted_[i]);
    submitted_.erase(submitted_.begin(), submitted_.begin() + static_cast<std::ptrdiff_t>(count));
}

size_t ZeStream::submitted_count() {
    std::lock_guard lock(mutex_);
    return submitted_.size();
}

// Only the lists submitted before the wait began are known to have run: another thread may submit
// while this one waits.
void ZeStream::synchronize() {
    const size_t done = submitted_count();
    ZeLibrary::check(ze_.zeCommandQueueSynchronize(queue_, UINT64_MAX), "zeCommandQueueSynchronize");
    std::lock_guard lock(mutex_);
    release_lists(done);
}

bool ZeStream::query() {
    const size_t done = submitted_count();
    const ze_result_t r = ze_.zeCommandQueueSynchronize(queue_, 0);
    if (r == ZE_RESULT_NOT_READY) return false;
    ZeLibrary::check(r, "zeCommandQueueSynchronize");
    std::lock_guard lock(mutex_);
    release_lists(done);
    return true;
}

ZeEvent::ZeEvent(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device) : ze_(ze) {
    ze_event_pool_desc_t pool{};
    pool.stype = ZE_STRUCTURE_TYPE_EVENT_POOL_DESC;
    pool.flags = ZE_EVENT_POOL_FLAG_HOST_VISIBLE;
    pool.count = 1;
    ZeLibrary::check(ze_.zeEventPoolCreate(context, &pool, 1, &device, &pool_), "zeEventPoolCreate");
    ze_event_desc_t desc{};
    desc.stype = ZE_STRUCTURE_TYPE_EVENT_DESC;
    desc.index = 0;
    desc.signal = ZE_EVENT_SCOPE_FLAG_HOST;  // the host waits on it
    desc.wait = ZE_EVENT_SCOPE_FLAG_HOST;
    if (const ze_result_t r = ze_.zeEventCreate(pool_, &desc, &event_); r != ZE_RESULT_SUCCESS) {
        (void)ze_.zeEventPoolDestroy(pool_);
        ZeLibrary::check(r, "zeEventCreate");
    }
}

// Level Zero forbids destroying an event a queue may still signal: wait for the latest record first.
ZeEvent::~ZeEvent() {
    if (recorded_) (void)ze_.zeEventHostSynchronize(event_, UINT64_MAX);
    (void)ze_.zeEventDestroy(event_);
    (void)ze_.zeEventPoolDestroy(pool_);
}

// Reset first on the stream itself: a host reset could race a signal of the previous record still queued.
void ZeEvent::record(ZeStream& stream) {
    stream.submit([&](ze_command_list_handle_t list) {
        ZeLibrary::check(ze_.zeCommandListAppendEventReset(list, event_), "zeCommandListAppendEventReset");
        ZeLibrary::check(ze_.zeCommandListAppendSignalEvent(list, event_), "zeCommandListAppendSignalEvent");
    });
    recorded_ = true;
}

void ZeEvent::wait_on(ZeStream& stream) {
    if (!recorded_) return;
    stream.submit([&](ze_command_list_handle_t list) {
        ZeLibrary::check(ze_.zeCommandListAppendWaitOnEvents(list, 1, &event_), "zeCommandListAppendWaitOnEvents");
    });
}

void ZeEvent::synchronize() {
    if (recorded_) ZeLibrary::check(ze_.zeEventHostSynchronize(event_, UINT64_MAX), "zeEventHostSynchronize");
}

bool ZeEvent::query() {
    if (!recorded_) return true;
    const ze_result_t r = ze_.zeEventQueryStatus(event_);
    if (r == ZE_RESULT_NOT_READY) return false;
    ZeLibrary::check(r, "zeEventQueryStatus");
    return true;
}

}  // namespace grey::level0
