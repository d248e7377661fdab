// The accounting of the memory tiers: every figure counted from what the tiers hold now.
#include "memory/buffer.hpp"
#include "memory/host_container.hpp"
#include "memory/tiers.hpp"

#include <cmath>
#include <set>

namespace grey::memory {

uint64_t Tiers::physical_locked(uint32_t device) {
    uint64_t total = 0;
    for (const grey_buffer* b : buffers_) {
        if (b->device != device) continue;
        const Residency& r = b->residency;
        if (r.kind == GREY_RESIDENCY_RAW) total += b->size;
        if (r.kind == GREY_RESIDENCY_COMPRESSED_DEVICE || r.kind == GREY_RESIDENCY_COMPRESSED_HOST) total += r.container_size;
    }
    if (const auto found = per_device_.find(device); found != per_device_.end())
        total += found->second.store->device_bytes() + found->second.store->host_bytes() + found->second.cache->bytes();
    return total;
}

void Tiers::stats(uint32_t device, const uint64_t* tenant, grey_memory_stats& stats) {
    std::lock_guard lock(mutex_);
    DeviceTiers& tiers = at(device);
    uint64_t device_bytes = 0, host_bytes = 0, deduplicated_bytes = 0;
    // A tenant's part of the stored blocks it holds: of their sizes, and of what they hold on the device
    // and in host memory (less than their sizes where compressed).
    double shared_share = 0, shared_device_share = 0, shared_host_share = 0;
    std::set<const SharedBlock*> blocks;
    for (const grey_buffer* b : buffers_) {
        if (b->device != device || (tenant != nullptr && b->traits.tenant != *tenant)) continue;
        const Residency& r = b->residency;
        ++stats.buffer_count;
        ++stats.buffers_by_residency[r.kind];
        stats.logical_bytes += std::max(b->size, b->traits.source_bytes);
        if (b->traits.source_bytes > b->size) stats.saved_quantization_bytes += b->traits.source_bytes - b->size;
        switch (r.kind) {
            case GREY_RESIDENCY_RAW: device_bytes += b->size; break;
            case GREY_RESIDENCY_DEDUPLICATED:
                deduplicated_bytes += b->size;
                for (const BlockRef& ref : r.blocks) {
                    if (ref.kind != BlockRef::Kind::shared) {
                        ++stats.constant_blocks;
                        continue;
                    }
                    blocks.insert(ref.block);
                    const auto holders = static_cast<double>(ref.block->references);
                    shared_share += static_cast<double>(ref.block->size) / holders;
                    (ref.block->tier == GREY_RESIDENCY_COMPRESSED_HOST ? shared_host_share : shared_device_share) +=
                        static_cast<double>(ref.block->stored_size) / holders;
                }
                break;
            case GREY_RESIDENCY_COMPRESSED_DEVICE:
            case GREY_RESIDENCY_COMPRESSED_HOST:
                (r.kind == GREY_RESIDENCY_COMPRESSED_HOST ? host_bytes : device_bytes) += r.container_size;
                if (r.kind == GREY_RESIDENCY_COMPRESSED_HOST && r.host_container->pinned()) stats.pinned_host_bytes += r.container_size;
                if (b->size > r.container_size) stats.saved_compression_bytes += b->size - r.container_size;
                break;
            default: break;
        }
    }
    const bool all = tenant == nullptr;
    const uint64_t stored = all ? tiers.store->stored_bytes() : static_cast<uint64_t>(std::llround(shared_share));
    const uint64_t stored_device = all ? tiers.store->device_bytes() : static_cast<uint64_t>(std::llround(shared_device_share));
    const uint64_t stored_host = all ? tiers.store->host_bytes() : static_cast<uint64_t>(std::llround(shared_host_share));
    stats.shared_blocks = all ? tiers.store->block_count() : blocks.size();
    stats.saved_dedup_bytes = deduplicated_bytes > stored ? deduplicated_bytes - stored : 0;
    // Stored blocks held compressed save their sizes less their containers, once for all their holders.
    if (stored > stored_device + stored_host) stats.saved_compression_bytes += stored - stored_device - stored_host;
    // The staging of async maps is the device's, no tenant's: page-locked all the same, and under the same cap.
    if (all) stats.pinned_host_bytes += tiers.staging->pinned_bytes();
    const WorkingSetCache::Counts cache = tenant == nullptr ? tiers.cache->counts() : tiers.cache->tenant_counts(*tenant);
    stats.cache_bytes = cache.bytes;
    stats.cache_capacity_bytes = tiers.cache->capacity();
    stats.cache_hits = cache.hits;
    stats.cache_misses = cache.misses;
    stats.cache_hit_rate = cache.hits + cache.misses == 0 ? 0.0 : static_cast<double>(cache.hits) / static_cast<double>(cache.hits + cache.misses);
    stats.physical_device_bytes = device_bytes + stored_device + cache.bytes;
    stats.physical_host_bytes = host_bytes + stored_host;
    stats.physical_bytes = stats.physical_device_bytes + stats.physical_host_bytes;
    stats.effective_multiplier =
        stats.physical_bytes == 0 ? 0.0 : static_cast<double>(stats.logical_bytes) / static_cast<double>(stats.physical_bytes);
}

void Tiers::info(const grey_buffer& buffer, grey_buffer_info& info) {
    std::lock_guard lock(mutex_);
    const Residency& r = buffer.residency;
    info.residency = r.kind;
    info.size_bytes = buffer.size;
    info.tenant = buffer.traits.tenant;
    info.sharing_domain = buffer.traits.sharing_domain;
    info.source_bytes = buffer.traits.source_bytes;
    info.dtype = buffer.traits.dtype;
    info.sealed = buffer.sealed.load() ? 1u : 0u;
    info.map_count = buffer.map_count.load();
    info.codec = r.codec;
    switch (r.kind) {
        case GREY_RESIDENCY_RAW: info.physical_bytes = buffer.size; break;
        case GREY_RESIDENCY_DEDUPLICATED:
            for (const BlockRef& ref : r.blocks) {
                if (ref.kind != BlockRef::Kind::shared) {
                    ++info.constant_blocks;
                    continue;
                }
                ++info.shared_blocks;
                info.physical_bytes += ref.block->stored_size;
                if (ref.block->references > 1) ++info.shared_with_others;
            }
            break;
        default: info.physical_bytes = r.container_size; break;
    }
    const auto found = per_device_.find(buffer.device);
    info.cached = found != per_device_.end() && found->second.cache->contains(&buffer) ? 1u : 0u;
}

}  // namespace grey::memory
