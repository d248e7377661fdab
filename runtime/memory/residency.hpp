// Where a sealed buffer's contents are held (grey_residency) and the storage each residency owns. The
// memory tiers (memory/tiers.hpp) are the only code that changes it, under their mutex.
#pragma once

#include "grey_backend.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace grey::memory {

struct SharedBlock;
class HostContainer;
struct DeviceContainerPlan;

// One block of a deduplicated buffer: a block of zeros, a block of one repeated 8-byte value, or a
// reference to a block stored once in the device's shared store.
struct BlockRef {
    enum class Kind : uint8_t { zero, fill, shared };
    Kind kind = Kind::zero;
    uint64_t fill_value = 0;        // fill: the 8 bytes repeated, in memory order
    SharedBlock* block = nullptr;   // shared: one reference held
};

struct Residency {
    grey_residency kind = GREY_RESIDENCY_RAW;
    grey_codec codec = GREY_CODEC_DEFAULT;           // a compressed residency's codec
    uint32_t block_size = 0;                          // deduplicated: bytes per block (the last may be short)
    std::vector<BlockRef> blocks;                     // deduplicated
    grey_backend_buffer* device_container = nullptr;  // compressed_device: the LT-Block container
    // compressed_device: its header, table and decode plan, kept on the host (memory/device_decode.hpp)
    std::shared_ptr<const DeviceContainerPlan> device_plan;
    uint64_t container_size = 0;                      // both compressed residencies
    std::shared_ptr<const HostContainer> host_container;  // compressed_host: the LT-Block container (memory/host_container.hpp)
};

// What grey_buffer_options says of a buffer, beyond its device and size.
struct BufferTraits {
    uint64_t tenant = 0;
    uint64_t sharing_domain = 0;
    uint64_t source_bytes = 0;  // 0: not a quantized replacement
    grey_dtype dtype = GREY_DTYPE_U8;
};

}  // namespace grey::memory
