#include "common/suballocator.hpp"

#include <stdexcept>

namespace grey::backend {

namespace {
// Enough spare nodes for the splits of a burst of allocations; more would only hold heap memory.
constexpr size_t kMaxSpareNodes = 64;
}  // namespace

Suballocator::Suballocator(uint64_t alignment) : alignment_(alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        throw std::invalid_argument("suballocator alignment must be a power of two");
    // With room reserved, keeping a spare node never allocates: erasing is then free of exceptions,
    // and every operation below inserts first and erases after, so a bad_alloc changes nothing.
    spare_blocks_.reserve(kMaxSpareNodes);
    spare_free_.reserve(kMaxSpareNodes);
}

std::optional<uint64_t> Suballocator::round(uint64_t size) const noexcept {
    const uint64_t rounded = (size + alignment_ - 1) & ~(alignment_ - 1);
    if (rounded < size) return std::nullopt;
    return rounded;
}

void Suballocator::insert_free(uint64_t offset, uint64_t size) {
    if (!spare_free_.empty()) {
        auto node = std::move(spare_free_.back());
        spare_free_.pop_back();
        node.value() = {size, offset};
        free_.insert(std::move(node));
    } else {
        free_.emplace(size, offset);
    }
}

void Suballocator::erase_free(uint64_t offset, uint64_t size) {
    auto node = free_.extract({size, offset});
    if (spare_free_.size() < kMaxSpareNodes) spare_free_.push_back(std::move(node));
}

Suballocator::BlockMap::iterator Suballocator::insert_block(uint64_t offset, Block block) {
    if (!spare_blocks_.empty()) {
        auto node = std::move(spare_blocks_.back());
        spare_blocks_.pop_back();
        node.key() = offset;
        node.mapped() = block;
        return blocks_.insert(std::move(node)).position;
    }
    return blocks_.emplace(offset, block).first;
}

void Suballocator::erase_block(BlockMap::iterator it) {
    auto node = blocks_.extract(it);
    if (spare_blocks_.size() < kMaxSpareNodes) spare_blocks_.push_back(std::move(node));
}

std::optional<uint64_t> Suballocator::allocate(uint64_t size) {
    const auto rounded = round(size == 0 ? 1 : size);
    if (!rounded) return std::nullopt;
    auto best = free_.lower_bound({*rounded, 0});
    if (best == free_.end()) return std::nullopt;
    const auto [free_size, offset] = *best;
    if (free_size > *rounded) {
        auto remainder = insert_block(offset + *rounded, {free_size - *rounded, true});
        try {
            insert_free(offset + *rounded, free_size - *rounded);
        } catch (...) {
            blocks_.erase(remainder);
            throw;
        }
    }
    erase_free(offset, free_size);
    blocks_.find(offset)->second = {*rounded, false};
    allocated_ += *rounded;
    live_ += 1;
    return offset;
}

std::optional<uint64_t> Suballocator::growth_needed(uint64_t size) const {
    const auto rounded = round(size == 0 ? 1 : size);
    if (!rounded) return std::nullopt;
    if (auto best = free_.lower_bound({*rounded, 0}); best != free_.end()) return 0;
    uint64_t tail = 0;
    if (!blocks_.empty()) {
        const auto& [offset, last] = *blocks_.rbegin();
        (void)offset;
        if (last.free) tail = last.size;
    }
    return *rounded - tail;
}

void Suballocator::grow(uint64_t bytes) {
    if (bytes == 0) return;
    if ((bytes & (alignment_ - 1)) != 0) throw std::invalid_argument("suballocator growth must be a multiple of the alignment");
    if (capacity_ + bytes < capacity_) throw std::overflow_error("suballocator capacity overflows");
    if (!blocks_.empty()) {
        auto last = std::prev(blocks_.end());
        if (last->second.free) {
            insert_free(last->first, last->second.size + bytes);
            erase_free(last->first, last->second.size);
            last->second.size += bytes;
            capacity_ += bytes;
            return;
        }
    }
    auto added = insert_block(capacity_, {bytes, true});
    try {
        insert_free(capacity_, bytes);
    } catch (...) {
        blocks_.erase(added);
        throw;
    }
    capacity_ += bytes;
}

bool Suballocator::release(uint64_t offset) {
    auto it = blocks_.find(offset);
    if (it == blocks_.end() || it->second.free) return false;
    auto next = std::next(it);
    const bool merge_next = next != blocks_.end() && next->second.free;
    const bool merge_prev = it != blocks_.begin() && std::prev(it)->second.free;
    auto first = merge_prev ? std::prev(it) : it;
    const uint64_t start = first->first;
    const uint64_t size = (merge_prev ? first->second.size : 0) + it->second.size + (merge_next ? next->second.size : 0);
    // The merged entry is new (larger than either neighbour's), so it is inserted before anything is
    // erased: the only step that can throw comes first.
    insert_free(start, size);
    allocated_ -= it->second.size;
    live_ -= 1;
    if (merge_next) {
        erase_free(next->first, next->second.size);
        erase_block(next);
    }
    if (merge_prev) {
        erase_free(first->first, first->second.size);
        erase_block(it);
    }
    first->second = {size, true};
    return true;
}

std::optional<uint64_t> Suballocator::block_size(uint64_t offset) const {
    auto it = blocks_.find(offset);
    if (it == blocks_.end() || it->second.free) return std::nullopt;
    return it->second.size;
}

SuballocatorStats Suballocator::stats() const noexcept {
    SuballocatorStats s;
    s.capacity_bytes = capacity_;
    s.allocated_bytes = allocated_;
    s.free_bytes = capacity_ - allocated_;
    s.largest_free_bytes = free_.empty() ? 0 : free_.rbegin()->first;
    s.allocation_count = live_;
    s.fragmentation = s.free_bytes == 0 ? 0.0
                                        : 1.0 - static_cast<double>(s.largest_free_bytes) / static_cast<double>(s.free_bytes);
    return s;
}

bool Suballocator::consistent() const {
    uint64_t expected = 0;
    uint64_t allocated = 0;
    uint64_t live = 0;
    size_t free_blocks = 0;
    bool previous_free = false;
    for (const auto& [offset, block] : blocks_) {
        if (offset != expected || block.size == 0 || (block.size & (alignment_ - 1)) != 0) return false;
        if (block.free) {
            if (previous_free || free_.count({block.size, offset}) != 1) return false;
            ++free_blocks;
        } else {
            allocated += block.size;
            ++live;
        }
        previous_free = block.free;
        expected = offset + block.size;
    }
    return expected == capacity_ && allocated == allocated_ && live == live_ && free_blocks == free_.size();
}

}  // namespace grey::backend
