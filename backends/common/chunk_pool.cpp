#include "common/chunk_pool.hpp"

#include <algorithm>
#include <string>

namespace grey::backend {

ChunkPool::ChunkPool(AllocateChunk allocate_chunk, FreeChunk free_chunk)
    : allocate_chunk_(std::move(allocate_chunk)), free_chunk_(std::move(free_chunk)) {}

ChunkPool::~ChunkPool() {
    for (const auto& [address, chunk] : chunks_) free_chunk_(address);
}

uint64_t ChunkPool::allocate(uint64_t size) {
    if (size == 0) throw std::invalid_argument("a pool block of 0 bytes");
    std::lock_guard lock(mutex_);
    // The smallest fitting free block of all chunks, so big free blocks stay whole.
    uint64_t best_base = 0, best_size = UINT64_MAX;
    for (const auto& [base, chunk] : chunks_) {
        const auto s = chunk->blocks.stats();
        if (s.largest_free_bytes >= size && s.largest_free_bytes < best_size) {
            best_base = base;
            best_size = s.largest_free_bytes;
        }
    }
    if (best_size != UINT64_MAX)
        if (auto offset = chunks_.at(best_base)->blocks.allocate(size)) return best_base + *offset;

    const uint64_t rounded = (size + kChunkBytes - 1) / kChunkBytes * kChunkBytes;
    if (rounded < size) throw PoolOutOfMemory("a buffer of " + std::to_string(size) + " bytes is larger than any device memory");
    uint64_t base = 0;
    try {
        base = allocate_chunk_(rounded);
    } catch (const PoolOutOfMemory& e) {
        throw PoolOutOfMemory("out of device memory: a buffer of " + std::to_string(size) + " bytes needs a new chunk of " +
                              std::to_string(rounded) + " bytes, and the driver has no memory for it (" + e.what() + ")");
    }
    auto chunk = std::make_unique<Chunk>();
    chunk->size = rounded;
    chunk->blocks.grow(rounded);
    const auto offset = chunk->blocks.allocate(size);
    chunks_.emplace(base, std::move(chunk));
    ++growth_count_;
    return base + *offset;
}

void ChunkPool::release(uint64_t address) {
    std::lock_guard lock(mutex_);
    auto it = chunks_.upper_bound(address);
    if (it != chunks_.begin()) {
        --it;
        if (address < it->first + it->second->size && it->second->blocks.release(address - it->first)) return;
    }
    throw std::invalid_argument("address " + std::to_string(address) + " is no block of this pool");
}

void ChunkPool::stats(grey_memory_stats& out) const {
    std::lock_guard lock(mutex_);
    uint64_t committed = 0, allocated = 0, free = 0, largest = 0, count = 0;
    for (const auto& [base, chunk] : chunks_) {
        const auto s = chunk->blocks.stats();
        committed += s.capacity_bytes;
        allocated += s.allocated_bytes;
        free += s.free_bytes;
        largest = std::max(largest, s.largest_free_bytes);
        count += s.allocation_count;
    }
    out.reserved_bytes = committed;  // no address space is set aside beyond the chunks
    out.committed_bytes = committed;
    out.allocated_bytes = allocated;
    out.free_bytes = free;
    out.largest_free_bytes = largest;
    out.allocation_count = count;
    out.growth_count = growth_count_;
    out.granularity_bytes = kChunkBytes;
    out.fragmentation = free == 0 ? 0.0 : 1.0 - static_cast<double>(largest) / static_cast<double>(free);
}

}  // namespace grey::backend
