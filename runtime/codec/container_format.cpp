#include "codec/container_format.hpp"

#include "codec/byte_io.hpp"
#include "common/dtype.hpp"

#include <xxhash.h>

namespace grey::codec {
namespace {

constexpr const char* kContainer = "codec container";

std::string block_name(uint64_t index, uint64_t count) {
    return "block " + std::to_string(index) + " of " + std::to_string(count);
}

// Stored sizes a codec may have: what decoding it reads, and compressing codecs strictly smaller than
// raw (the encoder stores raw otherwise).
bool stored_size_allowed(CodecId codec, uint32_t stored, uint32_t raw, uint32_t width) {
    switch (codec) {
        case CodecId::raw: return stored == raw;
        case CodecId::zero: return stored == 0;
        case CodecId::fill: return stored == width && raw >= width;
        default: return stored > 0 && stored < raw;
    }
}

}  // namespace

uint32_t element_width_of(int64_t dtype) {
    if (dtype == GREY_DTYPE_OTHER) return 1;
    const auto storage = common::storage_of(dtype);
    if (!storage) fail(GREY_ERROR_INVALID_ARGUMENT, "dtype " + std::to_string(dtype) + " is not a grey_dtype");
    return storage->block_elements == 1 ? storage->block_bytes : 1;
}

uint64_t block_checksum(uint32_t index, std::span<const std::byte, 24> entry_fields, std::span<const std::byte> raw) noexcept {
    const uint64_t seed = XXH3_64bits_withSeed(entry_fields.data(), entry_fields.size(), index);
    return XXH3_64bits_withSeed(raw.data(), raw.size(), seed);
}

void write_container_header(std::span<std::byte> out, uint64_t raw_size, uint32_t block_size, grey_dtype dtype, uint32_t block_count) {
    put_at<uint32_t>(out, 0, kContainerMagic);
    put_at<uint16_t>(out, 4, kContainerVersion);
    put_at<uint16_t>(out, 6, static_cast<uint16_t>(kHeaderSize));
    put_at<uint32_t>(out, 8, block_size);
    put_at<uint32_t>(out, 12, static_cast<uint32_t>(dtype));
    put_at<uint64_t>(out, 16, raw_size);
    put_at<uint32_t>(out, 24, block_count);
    put_at<uint32_t>(out, 28, kEntrySize);
    put_at<uint64_t>(out, 32, XXH3_64bits(out.data(), 32));
}

void write_block_entry(std::span<std::byte> out, uint32_t index, const BlockEntry& entry, std::span<const std::byte> raw) {
    std::span<std::byte> at = out.subspan(kHeaderSize + uint64_t{index} * kEntrySize, kEntrySize);
    put_at<uint8_t>(at, 0, static_cast<uint8_t>(entry.codec));
    put_at<uint8_t>(at, 1, 0);
    put_at<uint16_t>(at, 2, 0);
    put_at<uint32_t>(at, 4, entry.raw_size);
    put_at<uint32_t>(at, 8, entry.stored_size);
    put_at<uint32_t>(at, 12, 0);
    put_at<uint64_t>(at, 16, entry.offset);
    put_at<uint64_t>(at, 24, block_checksum(index, at.first<24>(), raw));
}

ContainerInfo read_container_info(std::span<const std::byte> container) { return read_container_table(container, container.size()); }

uint64_t container_table_end(std::span<const std::byte, kHeaderSize> header) {
    return kHeaderSize + uint64_t{load<uint32_t>(header.data() + 24)} * kEntrySize;
}

ContainerInfo read_container_table(std::span<const std::byte> container, uint64_t container_size) {
    FieldReader in(container, kContainer);
    if (in.read<uint32_t>("magic") != kContainerMagic) corrupt(kContainer, "not an LT-Block container (bad magic)");
    const auto version = in.read<uint16_t>("version");
    if (version != kContainerVersion)
        corrupt(kContainer, "version " + std::to_string(version) + " is not supported (this libgrey reads version " +
                           std::to_string(kContainerVersion) + ")");
    const auto header_size = in.read<uint16_t>("header size");
    if (header_size != kHeaderSize) corrupt(kContainer, "header size " + std::to_string(header_size) + ", expected " + std::to_string(kHeaderSize));
    ContainerInfo info;
    info.block_size = in.read<uint32_t>("block size");
    const uint32_t dtype = in.read<uint32_t>("dtype");
    info.raw_size = in.read<uint64_t>("raw size");
    const uint32_t block_count = in.read<uint32_t>("block count");
    const uint32_t entry_size = in.read<uint32_t>("entry size");
    const uint64_t header_checksum = in.read<uint64_t>("header checksum");
    // A fuzzer build skips the header's checksum, so that mutated header fields reach the checks below
    // (as libpng skips its CRCs); every product build checks it.
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    if (header_checksum != XXH3_64bits(container.data(), 32)) corrupt(kContainer, "the header fails its checksum");
#else
    (void)header_checksum;
#endif
    if (entry_size != kEntrySize) corrupt(kContainer, "entry size " + std::to_string(entry_size) + ", expected " + std::to_string(kEntrySize));
    if (info.block_size < kMinBlockSize || info.block_size > kMaxBlockSize)
        corrupt(kContainer, "block size " + std::to_string(info.block_size) + " lies outside " + std::to_string(kMinBlockSize) + ".." +
                           std::to_string(kMaxBlockSize));
    if (dtype != GREY_DTYPE_OTHER && !common::storage_of(dtype)) corrupt(kContainer, "dtype " + std::to_string(dtype) + " is not a grey_dtype");
    info.dtype = static_cast<grey_dtype>(dtype);
    info.element_width = element_width_of(dtype);
    if (info.block_size % info.element_width != 0)
        corrupt(kContainer, "block size " + std::to_string(info.block_size) + " is not a multiple of the element width " +
                           std::to_string(info.element_width));
    const uint64_t expected_blocks = info.raw_size / info.block_size + (info.raw_size % info.block_size != 0 ? 1 : 0);
    if (block_count != expected_blocks)
        corrupt(kContainer, "block count " + std::to_string(block_count) + " does not match raw size " + std::to_string(info.raw_size) +
                           " in blocks of " + std::to_string(info.block_size));
    const auto table = in.take(uint64_t{block_count} * kEntrySize, "block table");
    info.payload_start = in.offset();
    info.container_size = container_size;
    if (container_size < info.payload_start) corrupt(kContainer, "the container ends inside its block table");
    const uint64_t payload_bytes = container_size - info.payload_start;

    info.blocks.reserve(block_count);
    uint64_t next_offset = 0;
    for (uint32_t i = 0; i < block_count; ++i) {
        const std::byte* at = table.data() + uint64_t{i} * kEntrySize;
        const auto fail_block = [&](const std::string& detail) { corrupt(kContainer, block_name(i, block_count) + ": " + detail); };
        const auto codec = codec_from_number(load<uint8_t>(at));
        if (!codec) fail_block("codec id " + std::to_string(load<uint8_t>(at)) + " is unknown");
        if (load<uint8_t>(at + 1) != 0 || load<uint16_t>(at + 2) != 0 || load<uint32_t>(at + 12) != 0)
            fail_block("reserved bytes of its entry are not zero");
        BlockEntry entry{*codec, load<uint32_t>(at + 4), load<uint32_t>(at + 8), load<uint64_t>(at + 16), load<uint64_t>(at + 24)};
        const uint64_t expected_raw = std::min<uint64_t>(info.block_size, info.raw_size - uint64_t{i} * info.block_size);
        if (entry.raw_size != expected_raw)
            fail_block("raw size " + std::to_string(entry.raw_size) + ", expected " + std::to_string(expected_raw));
        if (!stored_size_allowed(entry.codec, entry.stored_size, entry.raw_size, info.element_width))
            fail_block("stored size " + std::to_string(entry.stored_size) + " is impossible for codec " +
                       std::string(codec_name(entry.codec)) + " and raw size " + std::to_string(entry.raw_size));
        // Payloads follow each other, so a wrong offset and a wrong stored size before it look alike:
        // the message names both blocks.
        if (entry.offset != next_offset)
            corrupt(kContainer, (i == 0 ? block_name(i, block_count) + ": payload offset " + std::to_string(entry.offset) + ", expected 0"
                                   : block_name(i - 1, block_count) + " ends its payload at " + std::to_string(next_offset) +
                                         " where " + block_name(i, block_count) + " starts at " + std::to_string(entry.offset)));
        next_offset += entry.stored_size;  // at most 2^32 * 2^32: cannot overflow 64 bits
        if (next_offset > payload_bytes) fail_block("its payload runs past the end of the container");
        if (i + 1 == block_count && next_offset != payload_bytes)
            fail_block("it is the last block, but " + std::to_string(payload_bytes - next_offset) + " bytes follow its payload");
        info.blocks.push_back(entry);
    }
    if (block_count == 0 && payload_bytes != 0) corrupt(kContainer, std::to_string(payload_bytes) + " unexpected bytes after an empty table");
    return info;
}

}  // namespace grey::codec
