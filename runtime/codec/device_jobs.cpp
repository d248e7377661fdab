#include "codec/device_jobs.hpp"

#include <algorithm>

#include <xxhash.h>

namespace grey::codec {

// The device decoders name the codecs by the container's numbers.
static_assert(static_cast<uint32_t>(CodecId::raw) == common::kCodecRaw && static_cast<uint32_t>(CodecId::zero) == common::kCodecZero &&
              static_cast<uint32_t>(CodecId::fill) == common::kCodecFill && static_cast<uint32_t>(CodecId::bitmask) == common::kCodecBitmask &&
              static_cast<uint32_t>(CodecId::floats) == common::kCodecFloat);

DeviceDecodePlan device_decode_plan(std::span<const std::byte> container, const ContainerInfo& info, uint64_t first, uint64_t size) {
    DeviceDecodePlan plan;
    if (size == 0 || info.blocks.empty()) return plan;
    const uint64_t lo = first / info.block_size;
    const uint64_t hi = std::min<uint64_t>((first + size - 1) / info.block_size + 1, info.blocks.size());
    for (uint64_t b = lo; b < hi; ++b) {
        const BlockEntry& entry = info.blocks[b];
        const auto index = static_cast<uint32_t>(b);
        if (!common::device_decodes(static_cast<uint32_t>(entry.codec))) {
            plan.host_blocks.push_back(index);
            continue;
        }
        const std::byte* fields = container.data() + kHeaderSize + b * kEntrySize;
        common::CodecBlockJob job{};
        job.payload = info.payload_start + entry.offset;
        job.output = b * info.block_size;
        job.checksum = entry.checksum;
        job.checksum_seed = XXH3_64bits_withSeed(fields, 24, index);
        job.raw_size = entry.raw_size;
        job.stored_size = entry.stored_size;
        job.codec = static_cast<uint32_t>(entry.codec);
        job.element_width = info.element_width;
        plan.jobs.push_back(job);
        plan.job_blocks.push_back(index);
    }
    return plan;
}

}  // namespace grey::codec
