// Best-fit suballocation of one growable address range, in offsets: no device memory is touched here,
// so the policy (best fit, splitting, merging of free neighbours, statistics) is tested on the host and
// shared by every GPU backend's pool. The range only grows at its end; the pool maps physical memory
// for the new part before calling grow().
//
// Cost: allocate and release are O(log n) in the number of blocks. Tree nodes freed by a merge are kept
// and reused by the next split, so a steady alloc/free pattern does not touch the heap.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace grey::backend {

struct SuballocatorStats {
    uint64_t capacity_bytes = 0;     // the range managed so far
    uint64_t allocated_bytes = 0;    // in live blocks, after rounding
    uint64_t free_bytes = 0;         // capacity - allocated
    uint64_t largest_free_bytes = 0;
    uint64_t allocation_count = 0;
    double fragmentation = 0.0;      // 1 - largest_free / free; 0 when nothing is free
};

class Suballocator {
public:
    // Every block starts and ends on a multiple of `alignment` (a power of two).
    explicit Suballocator(uint64_t alignment);

    [[nodiscard]] uint64_t alignment() const noexcept { return alignment_; }
    [[nodiscard]] uint64_t capacity() const noexcept { return capacity_; }

    // `size` rounded up to the alignment; nullopt when that overflows.
    [[nodiscard]] std::optional<uint64_t> round(uint64_t size) const noexcept;

    // The offset of a block of at least `size` bytes from the smallest free block that holds it (ties:
    // the lowest offset), or nullopt when none does. `size` must be > 0.
    [[nodiscard]] std::optional<uint64_t> allocate(uint64_t size);

    // How many bytes grow() must add at the end before allocate(size) can succeed, counting a free
    // block already at the end; 0 when it would succeed now; nullopt when `size` cannot be rounded.
    [[nodiscard]] std::optional<uint64_t> growth_needed(uint64_t size) const;

    // Appends `bytes` (a multiple of the alignment) of free space at the end, merged with a free tail.
    void grow(uint64_t bytes);

    // Releases the block at `offset` and merges it with free neighbours. Returns false (and changes
    // nothing) when no live block starts there.
    bool release(uint64_t offset);

    // The size of the live block at `offset`, or nullopt.
    [[nodiscard]] std::optional<uint64_t> block_size(uint64_t offset) const;

    [[nodiscard]] SuballocatorStats stats() const noexcept;

    // Walks every block and index: blocks tile [0, capacity) without gaps, no two free blocks touch,
    // the free index matches the free blocks, and the byte counts add up. For tests and debug checks.
    [[nodiscard]] bool consistent() const;

private:
    struct Block {
        uint64_t size;
        bool free;
    };
    using BlockMap = std::map<uint64_t, Block>;        // offset -> block, covers [0, capacity)
    using FreeSet = std::set<std::pair<uint64_t, uint64_t>>;  // (size, offset) of free blocks

    void insert_free(uint64_t offset, uint64_t size);
    void erase_free(uint64_t offset, uint64_t size);
    BlockMap::iterator insert_block(uint64_t offset, Block block);
    void erase_block(BlockMap::iterator it);

    uint64_t alignment_;
    uint64_t capacity_ = 0;
    uint64_t allocated_ = 0;
    uint64_t live_ = 0;
    BlockMap blocks_;
    FreeSet free_;
    // Nodes kept for reuse (see the header comment).
    std::vector<BlockMap::node_type> spare_blocks_;
    std::vector<FreeSet::node_type> spare_free_;
};

}  // namespace grey::backend
