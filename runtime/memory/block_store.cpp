#include "memory/block_store.hpp"

#include "codec/container.hpp"
#include "codec/device_jobs.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"

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
        for (auto& block : blocks)
            if (block->storage != nullptr) backend_.buffer_free(block->storage);
}

uint64_t SharedBlockStore::seed(uint64_t domain) {
    const auto found = salts_.find(domain);
    if (found != salts_.end()) return found->second;
    std::random_device entropy;
    const uint64_t value = (uint64_t{entropy()} << 32) ^ entropy();
    salts_.emplace(domain, value);
    return value;
}

SharedBlock* SharedBlockStore::acquire(uint64_t domain, std::span<const std::byte> bytes) {
    return acquire_hashed(
        domain, hash_(bytes, seed(domain)), static_cast<uint32_t>(bytes.size()), [&] { return bytes; },
        [&] { return backend_.buffer_holding(device_, bytes); });
}

SharedBlock* SharedBlockStore::acquire_hashed(uint64_t domain, uint64_t hash, uint32_t size,
                                              const std::function<std::span<const std::byte>()>& incoming,
                                              const std::function<grey_backend_buffer*()>& store) {
    auto& candidates = index_[{domain, hash}];
    try {
        std::span<const std::byte> bytes;  // fetched at the first candidate of the same size
        for (auto& candidate : candidates) {
            if (candidate->size != size) continue;
            if (bytes.data() == nullptr) {
                bytes = incoming();
                if (bytes.size() != size) fail(GREY_ERROR_INTERNAL, "a block's bytes are not of its size");
                compare_.resize(size);
            }
            // The hash is only a filter: the stored bytes decide.
            try {
                read(*candidate, 0, compare_);
            } catch (const Error& e) {
                fail(e.status(), "the stored block of the same hash (" + std::to_string(candidate->size) + " bytes, held " +
                                     std::to_string(candidate->references) + " time(s)): " + e.what());
            }
            if (std::memcmp(compare_.data(), bytes.data(), size) == 0) {
                ++candidate->references;
                return candidate.get();
            }
            ++collisions_;
        }
        auto block = std::make_unique<SharedBlock>();
        block->size = size;
        block->stored_size = size;
        block->domain = domain;
        block->hash = hash;
        block->references = 1;
        grey_backend_buffer* storage = store();
        block->storage = storage;
        try {
            candidates.push_back(std::move(block));
        } catch (...) {
            backend_.buffer_free(storage);
            throw;
        }
    } catch (...) {
        if (candidates.empty()) index_.erase({domain, hash});
        throw;
    }
    stored_bytes_ += size;
    device_bytes_ += size;
    ++block_count_;
    return candidates.back().get();
}

void SharedBlockStore::free_storage(SharedBlock& block) noexcept {
    if (block.storage != nullptr) backend_.buffer_free(block.storage);
    block.storage = nullptr;
    std::vector<std::byte>().swap(block.host_container);
    block.device_job.reset();
    (block.tier == GREY_RESIDENCY_COMPRESSED_HOST ? host_bytes_ : device_bytes_) -= block.stored_size;
    block.stored_size = 0;
}

void SharedBlockStore::release(SharedBlock* block) noexcept {
    if (block == nullptr || --block->references > 0) return;
    const auto entry = index_.find(std::make_pair(block->domain, block->hash));
    if (entry == index_.end()) return;  // not this store's: nothing to free
    stored_bytes_ -= block->size;
    --block_count_;
    free_storage(*block);
    std::erase_if(entry->second, [block](const auto& c) { return c.get() == block; });
    if (entry->second.empty()) index_.erase(entry);
}

void SharedBlockStore::read(const SharedBlock& block, uint64_t offset, std::span<std::byte> out) {
    if (out.empty()) return;
    if (offset + out.size() > block.size) fail(GREY_ERROR_INTERNAL, "a read past the end of a stored block");
    if (block.tier == GREY_RESIDENCY_RAW) {
        backend_.buffer_read(block.storage, offset, out.data(), out.size());
        return;
    }
    std::vector<std::byte> staged;
    std::span<const std::byte> container = block.host_container;
    if (block.tier == GREY_RESIDENCY_COMPRESSED_DEVICE) {
        staged.resize(block.stored_size);
        backend_.buffer_read(block.storage, 0, staged.data(), staged.size());
        container = staged;
    }
    // One container block per stored block, decoded and checked whole.
    const codec::ContainerInfo info = codec::read_container_info(container);
    if (info.raw_size != block.size || info.blocks.size() != 1)
        fail(GREY_ERROR_CORRUPT, "the container holds " + std::to_string(info.raw_size) + " bytes in " + std::to_string(info.blocks.size()) +
                                     " block(s), not the stored block's " + std::to_string(block.size) + " in one");
    codec::decode_range(container, info, offset, out);
}

bool SharedBlockStore::compress(SharedBlock& block, grey_residency tier, grey_codec codec, const codec::EncodeOptions& options) {
    if (block.tier == tier && block.codec == codec) return false;
    if (block.tier == GREY_RESIDENCY_RAW && block.left_raw_by == codec) return false;
    std::vector<std::byte> bytes(block.size);
    read(block, 0, bytes);
    std::vector<std::byte> container = codec::encode(bytes, options);
    if (container.size() >= block.size) {
        // Compression does not pay: the block stays as it is (a block already compressed with another
        // codec or in the other tier stays so too).
        if (block.tier == GREY_RESIDENCY_RAW) block.left_raw_by = codec;
        return false;
    }
    std::optional<common::CodecBlockJob> device_job;
    if (tier == GREY_RESIDENCY_COMPRESSED_DEVICE) {
        const auto plan = codec::device_decode_plan(container, codec::read_container_info(container), 0, block.size);
        if (plan.jobs.size() == 1) device_job = plan.jobs.front();
    }
    // Last, so that nothing after it can fail and leave the new storage behind.
    grey_backend_buffer* storage = tier == GREY_RESIDENCY_COMPRESSED_DEVICE ? backend_.buffer_holding(device_, container) : nullptr;
    // The new storage holds the block: the old one goes.
    free_storage(block);
    block.device_job = device_job;
    block.tier = tier;
    block.codec = codec;
    block.storage = storage;
    block.stored_size = container.size();
    if (storage == nullptr) block.host_container = std::move(container);
    block.left_raw_by = GREY_CODEC_DEFAULT;
    (tier == GREY_RESIDENCY_COMPRESSED_HOST ? host_bytes_ : device_bytes_) += block.stored_size;
    return true;
}

}  // namespace grey::memory
