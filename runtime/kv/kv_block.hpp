// One block of the KV cache: its memory on the cache's device, in window form or quantized
// (common/kv_layout.hpp), and what prefix sharing needs to name it.
#pragma once

#include "core/backend.hpp"

#include <cstdint>
#include <exception>
#include <list>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace grey::kv {

// A buffer of the cache's backend, freed with it, and the address it maps to (0 where the backend maps no
// buffers): what attention jobs hand the backend for it, looked up once.
class BlockMemory {
public:
    BlockMemory(const Backend& backend, uint32_t device, uint64_t bytes)
        : backend_(&backend), buffer_(backend.buffer_alloc(device, bytes)), size_(bytes), address_(address_of(backend, buffer_)) {}
    ~BlockMemory() {
        if (buffer_ != nullptr) backend_->buffer_free(buffer_);
    }
    BlockMemory(BlockMemory&& other) noexcept
        : backend_(other.backend_), buffer_(std::exchange(other.buffer_, nullptr)), size_(other.size_), address_(other.address_) {}
    BlockMemory& operator=(BlockMemory&& other) noexcept {
        std::swap(backend_, other.backend_);
        std::swap(buffer_, other.buffer_);
        std::swap(size_, other.size_);
        std::swap(address_, other.address_);
        return *this;
    }
    BlockMemory(const BlockMemory&) = delete;
    BlockMemory& operator=(const BlockMemory&) = delete;

    [[nodiscard]] grey_backend_buffer* get() const noexcept { return buffer_; }
    [[nodiscard]] uint64_t size() const noexcept { return size_; }
    [[nodiscard]] uint64_t address() const noexcept { return address_; }

private:
    static uint64_t address_of(const Backend& backend, grey_backend_buffer* buffer) noexcept {
        if (!backend.has_buffer_map()) return 0;
        grey_buffer_mapping mapping{};
        mapping.struct_size = sizeof mapping;
        try {
            backend.buffer_map(buffer, mapping);
        } catch (const std::exception&) {
            return 0;
        }
        // Bit 0 marks a quantized block in the job's addresses: an odd address cannot be given there.
        return mapping.address % 2 == 0 ? mapping.address : 0;
    }

    const Backend* backend_;
    grey_backend_buffer* buffer_;
    uint64_t size_;
    uint64_t address_;
};

// Block memory the cache let go of, by size (a window-form or a quantized block), kept for its next block
// of that size: a stream of appends then reuses device memory instead of allocating and freeing a buffer
// through the backend for every block it fills, compresses and drops. The cache bounds what it keeps
// here and in its blocks by its capacity.
class SpareBlocks {
public:
    // A kept buffer of `bytes`, if any.
    [[nodiscard]] std::optional<BlockMemory> take(uint64_t bytes) {
        auto it = kept_.find(bytes);
        if (it == kept_.end() || it->second.empty()) return std::nullopt;
        BlockMemory memory = std::move(it->second.back());
        it->second.pop_back();
        bytes_ -= memory.size();
        return memory;
    }
    void keep(BlockMemory memory) {
        bytes_ += memory.size();
        kept_[memory.size()].push_back(std::move(memory));
    }
    // Frees kept buffers until at most `bytes` are kept.
    void trim(uint64_t bytes) {
        for (auto& [size, memories] : kept_)
            while (bytes_ > bytes && !memories.empty()) {
                bytes_ -= size;
                memories.pop_back();
            }
    }
    [[nodiscard]] uint64_t bytes() const noexcept { return bytes_; }

private:
    std::unordered_map<uint64_t, std::vector<BlockMemory>> kept_;
    uint64_t bytes_ = 0;
};

struct KvBlock {
    explicit KvBlock(BlockMemory m) : memory(std::move(m)) {}

    BlockMemory memory;
    bool quantized = false;
    uint32_t filled = 0;      // tokens written
    uint32_t references = 0;  // sequences whose block table holds it
    bool named = false;       // full and entered in the prefix index under `hash`
    // Its place in the cache's list of blocks no sequence holds (kept for prefix sharing until evicted),
    // while it is there.
    std::optional<std::list<uint64_t>::iterator> cached;
    uint64_t hash = 0;
    uint64_t parent_hash = 0;
    uint64_t salt = 0;
    std::vector<int32_t> tokens;  // the ids of the filled tokens (the hash is checked against them)

    [[nodiscard]] uint64_t bytes() const noexcept { return memory.size(); }
};

}  // namespace grey::kv
