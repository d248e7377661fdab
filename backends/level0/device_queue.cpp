#include "level0/device_queue.hpp"

namespace grey::level0 {

namespace {

backend::ChunkPool::AllocateChunk chunk_allocator(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device) {
    return [&ze, context, device](uint64_t bytes) {
        ze_device_mem_alloc_desc_t desc{};
        desc.stype = ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC;
        void* memory = nullptr;
        const ze_result_t r = ze.zeMemAllocDevice(context, &desc, bytes, backend::ChunkPool::kAlignment, device, &memory);
        if (r == ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY || r == ZE_RESULT_ERROR_UNSUPPORTED_SIZE)
            throw backend::PoolOutOfMemory(ZeLibrary::describe(r, "zeMemAllocDevice"));
        ZeLibrary::check(r, "zeMemAllocDevice");
        return reinterpret_cast<uint64_t>(memory);
    };
}

}  // namespace

DeviceQueue::DeviceQueue(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device)
    : ze_(ze), context_(context), device_(device),
      pool_(chunk_allocator(ze, context, device), [&ze, context](uint64_t address) {
          (void)ze.zeMemFree(context, reinterpret_cast<void*>(address));
      }) {
    ze_command_queue_desc_t desc{};
    desc.stype = ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC;
    desc.ordinal = 0;  // the first queue group, which Level Zero drivers give compute and copy
    desc.mode = ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS;
    desc.priority = ZE_COMMAND_QUEUE_PRIORITY_NORMAL;
    ZeLibrary::check(ze_.zeCommandListCreateImmediate(context_, device_, &desc, &list_), "zeCommandListCreateImmediate");
}

DeviceQueue::~DeviceQueue() {
    if (list_ != nullptr) (void)ze_.zeCommandListDestroy(list_);
}

void DeviceQueue::append_copy(void* destination, const void* source, uint64_t size) {
    std::lock_guard lock(mutex_);
    ZeLibrary::check(ze_.zeCommandListAppendMemoryCopy(list_, destination, source, size, nullptr, 0, nullptr), "zeCommandListAppendMemoryCopy");
}

void DeviceQueue::write(uint64_t destination, const void* source, uint64_t size) {
    append_copy(reinterpret_cast<void*>(destination), source, size);
}

void DeviceQueue::read(void* destination, uint64_t source, uint64_t size) {
    append_copy(destination, reinterpret_cast<const void*>(source), size);
}

void DeviceQueue::copy(uint64_t destination, uint64_t source, uint64_t size) {
    append_copy(reinterpret_cast<void*>(destination), reinterpret_cast<const void*>(source), size);
}

void DeviceQueue::fill(uint64_t destination, uint8_t value, uint64_t size) {
    std::lock_guard lock(mutex_);
    ZeLibrary::check(ze_.zeCommandListAppendMemoryFill(list_, reinterpret_cast<void*>(destination), &value, 1, size, nullptr, 0, nullptr),
                     "zeCommandListAppendMemoryFill");
}

}  // namespace grey::level0
