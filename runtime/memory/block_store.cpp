#include "memory/block_store.hpp"

#include "core/backend.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace grey::memory {

uint64_t xxh3_block_hash(std::span<const std::byte> bytes, uint64_t seed) noexcept {
    return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

SharedBlockStore::SharedBlockStore(const Backend& backend, uint32_t device_in_backend, const BlockHash& hash)
    : backend_(backend), device_(device_in_backend), hash_(hash) {}

SharedBlockStore::~SharedBlockStore() {
    // Every buffer releases its blocks before the store goes; free whatever is left all the same.
    for (auto& [key, blocks] : index_)
        for (auto& block : blocks) backend_.buffer_free(block->storage);
}

uint64_t SharedBlockStore::salt(uint64_t domain) {
    const auto found = salts_.find(domain);
    if (found != salts_.end()) return found->second;
    std::random_device entropy;
    const uint64_t value = (uint64_t{entropy()} << 32) ^ entropy();
    salts_.emplace(domain, value);
    return value;
}

SharedBlock* SharedBlockStore::acquire(uint64_t domain, std::span<const std::byte> bytes) {
    const uint64_t hash = hash_(bytes, salt(domain));
    auto& candidates = index_[{domain, hash}];
    compare_.resize(bytes.size());
    for (auto& candidate : candidates) {
        if (candidate->size != bytes.size()) continue;
        // The hash is only a filter: the stored bytes decide.
        backend_.buffer_read(candidate->storage, 0, compare_.data(), bytes.size());
        if (std::memcmp(compare_.data(), bytes.data(), bytes.size()) == 0) {
            ++candidate->references;
            return candidate.get();
        }
        ++collisions_;
    }
    auto block = std::make_unique<SharedBlock>();
    block->size = static_cast<uint32_t>(bytes.size());
    block->domain = domain;
    block->hash = hash;
    block->references = 1;
    try {
        block->storage = backend_.buffer_alloc(device_, bytes.size());
        backend_.buffer_write(block->storage, 0, bytes.data(), bytes.size());
        candidates.push_back(std::move(block));
    } catch (...) {
        if (block && block->storage != nullptr) backend_.buffer_free(block->storage);
        if (candidates.empty()) index_.erase({domain, hash});
        throw;
    }
    stored_bytes_ += bytes.size();
    ++block_count_;
    return candidates.back().get();
}

void SharedBlockStore::release(SharedBlock* block) noexcept {
    if (block == nullptr || --block->references > 0) return;
    const auto entry = index_.find(std::make_pair(block->domain, block->hash));
    if (entry == index_.end()) return;  // not this store's: nothing to free
    stored_bytes_ -= block->size;
    --block_count_;
    backend_.buffer_free(block->storage);
    std::erase_if(entry->second, [block](const auto& c) { return c.get() == block; });
    if (entry->second.empty()) index_.erase(entry);
}

}  // namespace grey::memory
