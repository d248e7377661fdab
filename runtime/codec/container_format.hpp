// The LT-Block container's header and block table (docs/codecs.md, "Container"): reading and checking
// every field of untrusted bytes, and the per-block checksum. Decoding lives in container.hpp.
#pragma once

#include "codec/codec_id.hpp"

#include "grey.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace grey::codec {

inline constexpr uint32_t kContainerMagic = 0x544C5247u;  // "GRLT" in file order
inline constexpr uint16_t kContainerVersion = 1;
inline constexpr uint32_t kHeaderSize = 40;
inline constexpr uint32_t kEntrySize = 32;
inline constexpr uint32_t kDefaultBlockSize = 64 * 1024;
inline constexpr uint32_t kMinBlockSize = 16;
inline constexpr uint32_t kMaxBlockSize = 16u * 1024 * 1024;

struct BlockEntry {
    CodecId codec = CodecId::raw;
    uint32_t raw_size = 0;
    uint32_t stored_size = 0;
    uint64_t offset = 0;  // of the payload, from the start of the payload area
    uint64_t checksum = 0;
};

// What a container holds, read from its header and table after every field has been checked.
struct ContainerInfo {
    uint64_t raw_size = 0;
    uint32_t block_size = 0;
    grey_dtype dtype = GREY_DTYPE_U8;
    uint32_t element_width = 1;
    uint64_t payload_start = 0;  // where the payload area begins in the container
    uint64_t container_size = 0;
    std::vector<BlockEntry> blocks;
};

// The bytes an element of `dtype` takes for the element-aware codecs: the size of plain types, 1 for
// block-quantized and unknown ones (they are compressed as bytes). Nothing for a raw value outside the
// enum.
uint32_t element_width_of(int64_t dtype);

// Reads and checks the header and the table: magic, version, sizes, the header's checksum, each entry's
// codec, reserved bytes, raw size (the block size, the ragged rest for the last), stored size (what its
// codec allows), offset (the running sum of stored sizes, no overflow) and that the payloads end exactly
// at the end of `container`. GREY_ERROR_CORRUPT naming the field, and the block for a table entry.
ContainerInfo read_container_info(std::span<const std::byte> container);

// The same checks for a container of `container_size` bytes of which `container` holds at least the
// header and the table (a container in device memory, read back only that far): the bytes where the table
// ends are container_table_end(header), for a header read_container_table then checks.
ContainerInfo read_container_table(std::span<const std::byte> container, uint64_t container_size);
uint64_t container_table_end(std::span<const std::byte, kHeaderSize> header);

// Writes the 40-byte header (with its checksum) into `out[0, 40)`.
void write_container_header(std::span<std::byte> out, uint64_t raw_size, uint32_t block_size, grey_dtype dtype, uint32_t block_count);
// Writes block `index`'s 32-byte entry, computing its checksum from the raw bytes.
void write_block_entry(std::span<std::byte> out, uint32_t index, const BlockEntry& entry, std::span<const std::byte> raw);

// The checksum an entry must carry for raw bytes `raw`: xxh3-64 of the raw bytes, seeded with the xxh3
// of the entry's first 24 bytes seeded with the block index, so that a changed entry field or a block
// moved to another index is detected even when its payload still decodes.
uint64_t block_checksum(uint32_t index, std::span<const std::byte, 24> entry_fields, std::span<const std::byte> raw) noexcept;

}  // namespace grey::codec
