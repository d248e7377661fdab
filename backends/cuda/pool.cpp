#include "cuda/pool.hpp"

#include <algorithm>
#include <string>

namespace grey::cuda {

namespace {
uint64_t round_up(uint64_t value, uint64_t multiple) { return (value + multiple - 1) / multiple * multiple; }
}  // namespace

VmmPool::VmmPool(const Driver& driver, CUdevice device, CUcontext context, uint64_t reserve_bytes)
    : driver_(driver), context_(context) {
    prop_.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop_.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop_.location.id = device;
    size_t granularity = 0;
    driver_.check(driver_.cuMemGetAllocationGranularity(&granularity, &prop_, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
                  "cuMemGetAllocationGranularity");
    if (granularity == 0 || granularity % kAlignment != 0)
        throw DriverError(CUDA_ERROR_INVALID_VALUE, "the driver reports an allocation granularity of " +
                                                        std::to_string(granularity) + " bytes, not a multiple of 256");
    granularity_ = granularity;
    reserved_ = round_up(std::max<uint64_t>(reserve_bytes, granularity_), granularity_);
    ContextScope scope(driver_, context_);
    driver_.check(driver_.cuMemAddressReserve(&base_, reserved_, granularity_, 0, 0), "cuMemAddressReserve");
}

VmmPool::~VmmPool() {
    try {
        ContextScope scope(driver_, context_);
        for (const Segment& s : segments_) (void)driver_.cuMemUnmap(base_ + s.offset, s.size);
        (void)driver_.cuMemAddressFree(base_, reserved_);
    } catch (const DriverError&) {
        // The context could not be made current (the driver is shutting down): nothing more to do.
    }
}

void VmmPool::grow(uint64_t bytes, uint64_t request) {
    const uint64_t capacity = blocks_.capacity();
    const auto committed_text = [&] {
        const auto s = blocks_.stats();
        return std::to_string(s.capacity_bytes) + " bytes committed, " + std::to_string(s.allocated_bytes) +
               " allocated, largest free block " + std::to_string(s.largest_free_bytes);
    };
    if (bytes > reserved_ - capacity)
        throw PoolOutOfMemory("out of device memory: a buffer of " + std::to_string(request) + " bytes needs " +
                              std::to_string(bytes) + " more bytes in the pool, but its reserved range of " +
                              std::to_string(reserved_) + " bytes has only " + std::to_string(reserved_ - capacity) +
                              " left (" + committed_text() + ")");
    ContextScope scope(driver_, context_);
    CUmemGenericAllocationHandle handle{};
    if (CUresult r = driver_.cuMemCreate(&handle, bytes, &prop_, 0); r != CUDA_SUCCESS) {
        if (r == CUDA_ERROR_OUT_OF_MEMORY) {
            size_t free = 0, total = 0;
            const bool known = driver_.cuMemGetInfo(&free, &total) == CUDA_SUCCESS;
            throw PoolOutOfMemory("out of device memory: a buffer of " + std::to_string(request) + " bytes needs " +
                                  std::to_string(bytes) + " more bytes of device memory; the device has " +
                                  (known ? std::to_string(free) + " of " + std::to_string(total) + " bytes free"
                                         : std::string("an unknown amount free")) +
                                  "; the pool holds " + committed_text());
        }
        driver_.check(r, "cuMemCreate");
    }
    const CUdeviceptr at = base_ + capacity;
    if (CUresult r = driver_.cuMemMap(at, bytes, 0, handle, 0); r != CUDA_SUCCESS) {
        (void)driver_.cuMemRelease(handle);
        driver_.check(r, "cuMemMap");
    }
    // The mapping keeps the physical memory alive; releasing the handle now means unmapping frees it.
    (void)driver_.cuMemRelease(handle);
    CUmemAccessDesc access{};
    access.location = prop_.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    if (CUresult r = driver_.cuMemSetAccess(at, bytes, &access, 1); r != CUDA_SUCCESS) {
        (void)driver_.cuMemUnmap(at, bytes);
        driver_.check(r, "cuMemSetAccess");
    }
    try {
        segments_.push_back({capacity, bytes});
        blocks_.grow(bytes);
    } catch (...) {
        if (!segments_.empty() && segments_.back().offset == capacity) segments_.pop_back();
        (void)driver_.cuMemUnmap(at, bytes);
        throw;
    }
    ++growth_count_;
}

CUdeviceptr VmmPool::allocate(uint64_t size) {
    std::lock_guard lock(mutex_);
    if (auto offset = blocks_.allocate(size)) return base_ + *offset;
    const auto needed = blocks_.growth_needed(size);
    if (!needed || *needed > reserved_)
        throw PoolOutOfMemory("out of device memory: a buffer of " + std::to_string(size) +
                              " bytes is larger than the device's whole pool range of " + std::to_string(reserved_) + " bytes");
    grow(round_up(*needed, granularity_), size);
    auto offset = blocks_.allocate(size);
    if (!offset) throw std::logic_error("the pool grew but still has no block for the request");
    return base_ + *offset;
}

void VmmPool::release(CUdeviceptr pointer) {
    std::lock_guard lock(mutex_);
    if (pointer < base_ || !blocks_.release(pointer - base_))
        throw std::invalid_argument("pointer " + std::to_string(pointer) + " is not a live block of this pool");
}

void VmmPool::stats(grey_memory_stats& out) const {
    std::lock_guard lock(mutex_);
    const auto s = blocks_.stats();
    out.reserved_bytes = reserved_;
    out.committed_bytes = s.capacity_bytes;
    out.allocated_bytes = s.allocated_bytes;
    out.free_bytes = s.free_bytes;
    out.largest_free_bytes = s.largest_free_bytes;
    out.allocation_count = s.allocation_count;
    out.growth_count = growth_count_;
    out.granularity_bytes = granularity_;
    out.fragmentation = s.fragmentation;
}

}  // namespace grey::cuda
