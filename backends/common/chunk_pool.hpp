// A growing device memory pool over separate allocations, for drivers that offer no virtual memory
// reservation (Level Zero's zeMemAllocDevice, HIP's hipMalloc): the pool asks the driver for chunks (a multiple of kChunkBytes, larger when one request
// needs it) and carves buffers out of them with the best-fit Suballocator of backends/common. Chunks are
// kept until the pool goes, like the CUDA pool's mapped memory: a steady alloc/free pattern makes no
// driver call. Unlike the CUDA pool, a buffer never spans two chunks (they are not contiguous).
//
// The pool knows no vendor API: it is given the calls that allocate and free a chunk, so its
// policy is tested on the host.
#pragma once

#include "common/pool_scratch.hpp"
#include "common/suballocator.hpp"
#include "grey.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace grey::backend {

// The pool cannot satisfy a request: the driver has no memory for another chunk. Names the sizes.
class PoolOutOfMemory : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

class ChunkPool {
public:
    static constexpr uint64_t kAlignment = 256;
    static constexpr uint64_t kChunkBytes = 64ull << 20;

    // Returns the address of `bytes` of device memory; throws (the pool then changes nothing). It throws
    // PoolOutOfMemory when the driver is out of memory; the pool adds the sizes to the message.
    using AllocateChunk = std::function<uint64_t(uint64_t bytes)>;
    using FreeChunk = std::function<void(uint64_t address)>;

    ChunkPool(AllocateChunk allocate_chunk, FreeChunk free_chunk);
    ~ChunkPool();
    ChunkPool(const ChunkPool&) = delete;
    ChunkPool& operator=(const ChunkPool&) = delete;

    // The address of at least `size` (> 0) bytes, aligned to kAlignment.
    [[nodiscard]] uint64_t allocate(uint64_t size);
    // Returns a block from allocate(); throws std::invalid_argument for any other address.
    void release(uint64_t address);
    // Everything after struct_size that the pool knows (the tier members are left as they are).
    void stats(grey_memory_stats& out) const;

private:
    struct Chunk {
        uint64_t size;
        Suballocator blocks{kAlignment};
    };

    AllocateChunk allocate_chunk_;
    FreeChunk free_chunk_;
    mutable std::mutex mutex_;
    std::map<uint64_t, std::unique_ptr<Chunk>> chunks_;  // by base address
    uint64_t growth_count_ = 0;
};

// A block of the pool for one job (common/pool_scratch.hpp).
using ChunkScratch = PoolScratch<ChunkPool>;

}  // namespace grey::backend
