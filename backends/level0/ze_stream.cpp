#include "level0/ze_stream.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

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

// Each list goes before what it keeps: no list ever names a destroyed event.
void ZeStream::release_lists(size_t count) {
    for (size_t i = 0; i < count; ++i) {
        (void)ze_.zeCommandListDestroy(submitted_[i].list);
        submitted_[i].keep.reset();
    }
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

EventSlot::EventSlot(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device) : ze_(ze), context_(context) {
    try {
        ze_event_pool_desc_t pool{};
        pool.stype = ZE_STRUCTURE_TYPE_EVENT_POOL_DESC;
        pool.flags = ZE_EVENT_POOL_FLAG_HOST_VISIBLE;
        pool.count = 1;
        ZeLibrary::check(ze_.zeEventPoolCreate(context, &pool, 1, &device, &pool_), "zeEventPoolCreate");
        ze_event_desc_t desc{};
        desc.stype = ZE_STRUCTURE_TYPE_EVENT_DESC;
        desc.index = 0;
        // Host scope: the host waits on it, and the timestamp written before the signal must be visible
        // to the host once the event is.
        desc.signal = ZE_EVENT_SCOPE_FLAG_HOST;
        desc.wait = ZE_EVENT_SCOPE_FLAG_HOST;
        ZeLibrary::check(ze_.zeEventCreate(pool_, &desc, &event_), "zeEventCreate");
        ze_host_mem_alloc_desc_t host{};
        host.stype = ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC;
        void* memory = nullptr;
        ZeLibrary::check(ze_.zeMemAllocHost(context, &host, sizeof(uint64_t), alignof(uint64_t), &memory), "zeMemAllocHost");
        timestamp_ = static_cast<uint64_t*>(memory);
        *timestamp_ = 0;
    } catch (...) {
        release();
        throw;
    }
}

EventSlot::~EventSlot() { release(); }

// Level Zero's order: the event before its pool (nothing names either any more: see the header).
void EventSlot::release() noexcept {
    if (timestamp_ != nullptr) (void)ze_.zeMemFree(context_, timestamp_);
    if (event_ != nullptr) (void)ze_.zeEventDestroy(event_);
    if (pool_ != nullptr) (void)ze_.zeEventPoolDestroy(pool_);
    timestamp_ = nullptr;
    event_ = nullptr;
    pool_ = nullptr;
}

namespace {

// Counts one command list in its slot's lists() for as long as the list lives (ZeStream drops it after
// destroying the list); release, so the list's work and destruction happen before a reader sees 0.
struct SlotUse {
    std::shared_ptr<EventSlot> slot;
    std::atomic<int>& count;
    SlotUse(std::shared_ptr<EventSlot> s, std::atomic<int>& c) : slot(std::move(s)), count(c) { count.fetch_add(1, std::memory_order_relaxed); }
    ~SlotUse() { count.fetch_sub(1, std::memory_order_release); }
    SlotUse(const SlotUse&) = delete;
    SlotUse& operator=(const SlotUse&) = delete;
};

}  // namespace

std::shared_ptr<const void> EventSlot::use(std::shared_ptr<EventSlot> slot) {
    std::atomic<int>& count = slot->lists_;
    return std::make_shared<SlotUse>(std::move(slot), count);
}

// API 1.4 gives two ways to time a point of a queue: a kernel-timestamp event pool
// (ZE_EVENT_POOL_FLAG_KERNEL_TIMESTAMP, read with zeEventQueryKernelTimestamp) and
// zeCommandListAppendWriteGlobalTimestamp. The first times the kernel that signals the event; for a bare
// zeCommandListAppendSignalEvent, which a record is, the specification says nothing of what is written,
// and its counter has only kernelTimestampValidBits (32 on many Intel GPUs: a wrap every few minutes).
// The second writes the device's global clock when the queue reaches it, which is what a record means,
// and it signals the event once the value is written, so an event seen complete has its timestamp.
DeviceTimer device_timer(const ZeLibrary& ze, ze_driver_handle_t driver, ze_device_handle_t device) {
    ze_api_version_t version{};
    ZeLibrary::check(ze.zeDriverGetApiVersion(driver, &version), "zeDriverGetApiVersion");
    // timerResolution is nanoseconds per tick in the 1.0 properties (an integer: 52 for a 19.2 MHz
    // clock, whose tick is 52.083 ns) and ticks per second with the 1.2 structure type, which only a
    // driver of API 1.2 or later knows (an older one would fill in nanoseconds whatever the type says).
    const bool per_second = version >= ZE_API_VERSION_1_2;
    ze_device_properties_t props{};
    props.stype = per_second ? ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES_1_2 : ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES;
    ZeLibrary::check(ze.zeDeviceGetProperties(device, &props), "zeDeviceGetProperties");
    if (props.timerResolution == 0)
        throw std::domain_error("Level Zero: zeDeviceGetProperties states a timer resolution of 0, so the device's timestamps cannot be turned into time");
    if (props.timestampValidBits == 0 || props.timestampValidBits > 64)
        throw std::domain_error("Level Zero: zeDeviceGetProperties states " + std::to_string(props.timestampValidBits) +
                                " valid timestamp bits, so the device's timestamps cannot be compared");
    DeviceTimer timer;
    timer.nanoseconds_per_tick = per_second ? 1e9 / static_cast<double>(props.timerResolution) : static_cast<double>(props.timerResolution);
    timer.valid_bits = props.timestampValidBits;
    return timer;
}

double elapsed_ms(const DeviceTimer& timer, uint64_t start, uint64_t end) {
    const uint64_t mask = timer.valid_bits >= 64 ? UINT64_MAX : (uint64_t{1} << timer.valid_bits) - 1;
    const uint64_t forward = (end - start) & mask;
    const double ticks = forward > (mask >> 1) ? -static_cast<double>(mask - forward + 1) : static_cast<double>(forward);
    return ticks * timer.nanoseconds_per_tick / 1e6;
}

ZeEvent::ZeEvent(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device)
    : ze_(ze), context_(context), device_(device), slot_(std::make_shared<EventSlot>(ze, context, device)) {}

std::shared_ptr<EventSlot> ZeEvent::slot_for_record() {
    // Lists take a slot only under mutex_, so a count of 0 cannot grow behind this read: no list names
    // the slot any more, so its last record (if any) ran and every wait on it passed.
    if (slot_->lists() == 0) {
        ZeLibrary::check(ze_.zeEventHostReset(slot_->event()), "zeEventHostReset");
        return slot_;
    }
    return std::make_shared<EventSlot>(ze_, context_, device_);
}

std::shared_ptr<EventSlot> ZeEvent::recorded_slot() {
    std::lock_guard lock(mutex_);
    return recorded_ ? slot_ : nullptr;
}

// A record that could not be submitted leaves the event standing for the record before it: a reused
// slot, whose previous record had completed, is signalled again from the host.
void ZeEvent::record(ZeStream& stream) {
    std::lock_guard lock(mutex_);
    std::shared_ptr<EventSlot> slot = slot_for_record();
    const bool reused = slot == slot_;
    try {
        stream.submit(
            [&](ze_command_list_handle_t list) {
                ZeLibrary::check(ze_.zeCommandListAppendWriteGlobalTimestamp(list, slot->timestamp(), slot->event(), 0, nullptr),
                                 "zeCommandListAppendWriteGlobalTimestamp");
            },
            EventSlot::use(slot));
    } catch (...) {
        if (reused && recorded_) (void)ze_.zeEventHostSignal(slot->event());
        throw;
    }
    slot_ = std::move(slot);
    recorded_ = true;
}

void ZeEvent::wait_on(ZeStream& stream) {
    std::lock_guard lock(mutex_);
    if (!recorded_) return;
    ze_event_handle_t event = slot_->event();
    stream.submit(
        [&](ze_command_list_handle_t list) {
            ZeLibrary::check(ze_.zeCommandListAppendWaitOnEvents(list, 1, &event), "zeCommandListAppendWaitOnEvents");
        },
        EventSlot::use(slot_));
}

void ZeEvent::synchronize() {
    if (const std::shared_ptr<EventSlot> slot = recorded_slot())
        ZeLibrary::check(ze_.zeEventHostSynchronize(slot->event(), UINT64_MAX), "zeEventHostSynchronize");
}

bool ZeEvent::query() {
    const std::shared_ptr<EventSlot> slot = recorded_slot();
    if (!slot) return true;
    const ze_result_t r = ze_.zeEventQueryStatus(slot->event());
    if (r == ZE_RESULT_NOT_READY) return false;
    ZeLibrary::check(r, "zeEventQueryStatus");
    return true;
}

uint64_t ZeEvent::completed_timestamp(const char* which) {
    const std::shared_ptr<EventSlot> slot = recorded_slot();
    if (!slot) throw std::invalid_argument(std::string(which) + " has never been recorded on a Level Zero stream");
    ZeLibrary::check(ze_.zeEventHostSynchronize(slot->event(), UINT64_MAX), "zeEventHostSynchronize");
    return *slot->timestamp();
}

}  // namespace grey::level0
