// A checked container as the jobs a GPU's block decoder takes (common/codec_decode.hpp): one per block
// whose codec a device decodes, with its checksum's seed worked out on the host from the entry. lz4 and
// zstd blocks are left for the host; the runtime decodes those, and any block the device gives up on.
#pragma once

#include "codec/container_format.hpp"
#include "common/codec_decode.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace grey::codec {

struct DeviceDecodePlan {
    std::vector<common::CodecBlockJob> jobs;  // for the device; job.output is the block's raw offset
    std::vector<uint32_t> job_blocks;         // the block index of each job
    std::vector<uint32_t> host_blocks;        // the blocks only the host decodes
};

// The plan for the blocks of `info` (read from `container` by read_container_info) that overlap raw
// bytes [first, first + size); `info.blocks`' payload offsets become offsets from the container's start.
DeviceDecodePlan device_decode_plan(std::span<const std::byte> container, const ContainerInfo& info, uint64_t first, uint64_t size);

}  // namespace grey::codec
