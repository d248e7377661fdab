#include "level0/device_queue.hpp"

#include "common/checksum.hpp"
#include "level0/checksum_kernel.hpp"
#include "level0/kernel_images.hpp"

#include <string>
#include <vector>

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
    if (checksum_kernel_ != nullptr) (void)ze_.zeKernelDestroy(checksum_kernel_);
    if (module_ != nullptr) (void)ze_.zeModuleDestroy(module_);
    if (list_ != nullptr) (void)ze_.zeCommandListDestroy(list_);
}

void DeviceQueue::copy_locked(void* destination, const void* source, uint64_t size) {
    ZeLibrary::check(ze_.zeCommandListAppendMemoryCopy(list_, destination, source, size, nullptr, 0, nullptr), "zeCommandListAppendMemoryCopy");
}

void DeviceQueue::append_copy(void* destination, const void* source, uint64_t size) {
    std::lock_guard lock(mutex_);
    copy_locked(destination, source, size);
}

ze_kernel_handle_t DeviceQueue::checksum_kernel_locked() {
    if (checksum_kernel_ != nullptr) return checksum_kernel_;
    const auto spirv = checksum_spirv();
    ze_module_desc_t desc{};
    desc.stype = ZE_STRUCTURE_TYPE_MODULE_DESC;
    desc.format = ZE_MODULE_FORMAT_IL_SPIRV;
    desc.inputSize = spirv.size();
    desc.pInputModule = spirv.data();
    desc.pBuildFlags = "";
    ze_module_build_log_handle_t log = nullptr;
    const ze_result_t r = ze_.zeModuleCreate(context_, device_, &desc, &module_, &log);
    std::string text;
    if (log != nullptr) {
        size_t length = 0;
        if (ze_.zeModuleBuildLogGetString(log, &length, nullptr) == ZE_RESULT_SUCCESS && length > 1) {
            text.resize(length);
            if (ze_.zeModuleBuildLogGetString(log, &length, text.data()) != ZE_RESULT_SUCCESS) text.clear();
            text.resize(text.empty() ? 0 : length - 1);  // the terminating NUL
        }
        (void)ze_.zeModuleBuildLogDestroy(log);
    }
    if (r != ZE_RESULT_SUCCESS) {
        module_ = nullptr;
        throw ZeError(r, ZeLibrary::describe(r, "zeModuleCreate") + " for the checksum kernel (SPIR-V, " + std::to_string(spirv.size()) +
                             " bytes)" + (text.empty() ? std::string() : "; build log: " + text));
    }
    ze_kernel_desc_t kernel{};
    kernel.stype = ZE_STRUCTURE_TYPE_KERNEL_DESC;
    kernel.pKernelName = kChecksumKernelName;
    if (const ze_result_t k = ze_.zeKernelCreate(module_, &kernel, &checksum_kernel_); k != ZE_RESULT_SUCCESS) {
        checksum_kernel_ = nullptr;
        (void)ze_.zeModuleDestroy(module_);
        module_ = nullptr;
        throw ZeError(k, ZeLibrary::describe(k, "zeKernelCreate") + " (" + kChecksumKernelName + ")");
    }
    ZeLibrary::check(ze_.zeKernelSetGroupSize(checksum_kernel_, kChecksumGroupSize, 1, 1), "zeKernelSetGroupSize");
    return checksum_kernel_;
}

uint64_t DeviceQueue::checksum(uint64_t source, uint64_t size) {
    const uint32_t groups = checksum_group_count(size);
    const uint64_t items = uint64_t{groups} * kChecksumGroupSize;
    std::vector<uint64_t> partial(items);
    // The partial sums live in pool memory for the length of the call.
    struct Scratch {
        backend::ChunkPool& pool;
        uint64_t address;
        ~Scratch() { pool.release(address); }
    } scratch{pool_, pool_.allocate(items * sizeof(uint64_t))};
    {
        std::lock_guard lock(mutex_);
        const ze_kernel_handle_t kernel = checksum_kernel_locked();
        const void* source_pointer = reinterpret_cast<const void*>(source);
        const void* partial_pointer = reinterpret_cast<const void*>(scratch.address);
        const uint64_t n = size, step = common::kChecksumWeightStep, base = common::kChecksumWeightBase;
        ZeLibrary::check(ze_.zeKernelSetArgumentValue(kernel, 0, sizeof source_pointer, &source_pointer), "zeKernelSetArgumentValue");
        ZeLibrary::check(ze_.zeKernelSetArgumentValue(kernel, 1, sizeof n, &n), "zeKernelSetArgumentValue");
        ZeLibrary::check(ze_.zeKernelSetArgumentValue(kernel, 2, sizeof step, &step), "zeKernelSetArgumentValue");
        ZeLibrary::check(ze_.zeKernelSetArgumentValue(kernel, 3, sizeof base, &base), "zeKernelSetArgumentValue");
        ZeLibrary::check(ze_.zeKernelSetArgumentValue(kernel, 4, sizeof partial_pointer, &partial_pointer), "zeKernelSetArgumentValue");
        const ze_group_count_t launch{groups, 1, 1};
        ZeLibrary::check(ze_.zeCommandListAppendLaunchKernel(list_, kernel, &launch, nullptr, 0, nullptr), "zeCommandListAppendLaunchKernel");
        copy_locked(partial.data(), partial_pointer, items * sizeof(uint64_t));
    }
    uint64_t sum = 0;
    for (uint64_t p : partial) sum += p;  // modulo 2^64, in any order
    return sum;
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
