// A growable device memory pool on CUDA virtual memory management: one range of device address space
// is reserved up front (as large as the device's memory), physical memory is created and mapped into
// it at the end, in multiples of the allocation granularity, only when a request finds no free block,
// and buffers are carved out of the mapped part by the best-fit Suballocator. Because the range is
// contiguous, neighbouring chunks form one free block and a buffer may span chunks.
//
// allocate/release of a block that fits take one mutex and two tree operations; no driver call.
#pragma once

#include "common/pool_scratch.hpp"
#include "common/suballocator.hpp"
#include "cuda/driver.hpp"
#include "grey.h"

#include <mutex>
#include <stdexcept>
#include <vector>

namespace grey::cuda {

// The pool cannot satisfy a request because device memory (or the reserved range) is exhausted. The
// message names the sizes.
class PoolOutOfMemory : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

class VmmPool {
public:
    // Every buffer starts on this boundary, as cudaMalloc's do.
    static constexpr uint64_t kAlignment = 256;

    // Reserves `reserve_bytes` (rounded up to the granularity) of address space for `device`, whose
    // `context` must stay alive as long as the pool.
    VmmPool(const Driver& driver, CUdevice device, CUcontext context, uint64_t reserve_bytes);
    ~VmmPool();
    VmmPool(const VmmPool&) = delete;
    VmmPool& operator=(const VmmPool&) = delete;

    // A device pointer to at least `size` bytes. Throws PoolOutOfMemory or DriverError; either way the
    // pool is as it was before the call.
    [[nodiscard]] CUdeviceptr allocate(uint64_t size);
    // Returns a block from allocate(); throws std::invalid_argument for any other pointer.
    void release(CUdeviceptr pointer);

    // Everything after struct_size.
    void stats(grey_memory_stats& out) const;

    [[nodiscard]] uint64_t granularity() const noexcept { return granularity_; }

private:
    // Maps `bytes` (a multiple of the granularity) more physical memory at the end of the mapped part.
    void grow(uint64_t bytes, uint64_t request);

    struct Segment {
        uint64_t offset;
        uint64_t size;
    };

    const Driver& driver_;
    CUcontext context_;
    CUmemAllocationProp prop_{};
    uint64_t granularity_ = 0;
    uint64_t reserved_ = 0;
    CUdeviceptr base_ = 0;
    mutable std::mutex mutex_;
    backend::Suballocator blocks_{kAlignment};
    std::vector<Segment> segments_;  // mapped pieces, in address order, covering [0, capacity)
    uint64_t growth_count_ = 0;
};

// Pool memory for the length of one job (none for 0 bytes: common/pool_scratch.hpp).
using PoolScratch = backend::PoolScratch<VmmPool>;

}  // namespace grey::cuda
