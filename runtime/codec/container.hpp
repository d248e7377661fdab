// The codec layer's API for the memory tiers: a byte range in, an LT-Block container out, and back.
// Every block is checked for zero and single-value content first (no payload); otherwise it is stored
// with the codec asked for, or raw when that codec would not make it smaller. Decoding checks every
// header field and every block's checksum: a damaged container fails with GREY_ERROR_CORRUPT naming the
// block, never with wrong bytes. Thread-safe: no shared state (each call has its own codec contexts).
#pragma once

#include "codec/codec_id.hpp"
#include "codec/container_format.hpp"

#include "grey.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace grey::codec {

struct EncodeOptions {
    CodecId codec = CodecId::zstd;        // raw, bitmask, floats, lz4 or zstd (zero and fill are found, not chosen)
    grey_dtype dtype = GREY_DTYPE_U8;     // the element type: the element-aware codecs work per element
    uint32_t block_size = kDefaultBlockSize;  // kMinBlockSize..kMaxBlockSize, a multiple of the element width
    int zstd_level = 3;
};

// Whether the float codec can encode elements of `dtype` (it splits a float's exponent from the rest).
constexpr bool float_codec_takes(grey_dtype dtype) noexcept {
    return dtype == GREY_DTYPE_F16 || dtype == GREY_DTYPE_BF16 || dtype == GREY_DTYPE_F32 || dtype == GREY_DTYPE_F64;
}

// The container of `data`. GREY_ERROR_INVALID_ARGUMENT for a codec the dtype cannot use (floats needs
// F16, BF16, F32 or F64), a block size out of range or not a multiple of the element width, or data
// of more than 2^32 - 1 blocks.
std::vector<std::byte> encode(std::span<const std::byte> data, const EncodeOptions& options);

// The decoded bytes of `container`.
std::vector<std::byte> decode(std::span<const std::byte> container);

// Decodes into `out`, whose size must be the container's raw size (GREY_ERROR_INVALID_ARGUMENT
// otherwise). On failure `out` is zero-filled: the caller never holds half-verified bytes.
void decode_into(std::span<const std::byte> container, std::span<std::byte> out);

// Decodes block `index` of a container already read by read_container_info into `out` (its raw size),
// and checks its checksum: the memory tier maps a part of a buffer without decoding the rest.
void decode_block(std::span<const std::byte> container, const ContainerInfo& info, uint32_t index, std::span<std::byte> out);

// decode_block for a container whose header and table are `table` (read_container_table's input) and
// block `index`'s payload is `payload`, held apart (a container in device memory, read back a block at a time).
void decode_block_payload(std::span<const std::byte> table, const ContainerInfo& info, uint32_t index, std::span<const std::byte> payload,
                          std::span<std::byte> out);

// Decodes the raw bytes at `offset` into `out`: every block they touch is decoded and checked, those
// they cover whole straight into `out`. GREY_ERROR_INVALID_ARGUMENT for a range past the raw size.
void decode_range(std::span<const std::byte> container, const ContainerInfo& info, uint64_t offset, std::span<std::byte> out);

// The payload bytes [first, end) (offsets from the payload area's start) of the blocks that the `size`
// raw bytes at `offset` touch: they lie back to back. GREY_ERROR_INVALID_ARGUMENT for a range past the
// raw size.
struct PayloadRange {
    uint64_t first = 0;
    uint64_t end = 0;
};
PayloadRange payloads_of_range(const ContainerInfo& info, uint64_t offset, uint64_t size);

// decode_range for a container whose header and table are `table` (read_container_table's input) and
// whose payload bytes from `payloads_first` on are `payloads`, held apart (a container in device memory,
// read back only as far as a range needs): they must hold payloads_of_range of the range.
void decode_range_payloads(std::span<const std::byte> table, const ContainerInfo& info, uint64_t offset, std::span<const std::byte> payloads,
                           uint64_t payloads_first, std::span<std::byte> out);

// The sizes a container holds: raw bytes, container bytes and the blocks per codec.
struct ContainerSizes {
    uint64_t raw_size = 0;
    uint64_t container_size = 0;
    uint32_t block_count = 0;
    std::array<uint32_t, kCodecIdCount> blocks_by_codec{};
};
ContainerSizes container_sizes(std::span<const std::byte> container);

}  // namespace grey::codec
