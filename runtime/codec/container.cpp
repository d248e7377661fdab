#include "codec/container.hpp"

#include "codec/bitmask_pack.hpp"
#include "codec/byte_io.hpp"
#include "codec/constant_block.hpp"
#include "codec/float_split.hpp"
#include "codec/library_codecs.hpp"

#include <algorithm>
#include <cstring>
#include <string>

namespace grey::codec {
namespace {

void check_options(const EncodeOptions& options, uint32_t width) {
    if (options.codec == CodecId::zero || options.codec == CodecId::fill)
        fail(GREY_ERROR_INVALID_ARGUMENT, "codec '" + std::string(codec_name(options.codec)) +
                                              "' is chosen per block by content, not asked for; ask for raw, bitmask, float, lz4 or zstd");
    if (static_cast<uint8_t>(options.codec) >= kCodecIdCount)
        fail(GREY_ERROR_INVALID_ARGUMENT, "codec " + std::to_string(static_cast<unsigned>(options.codec)) + " is unknown");
    if (options.codec == CodecId::floats && !float_codec_takes(options.dtype))
        fail(GREY_ERROR_INVALID_ARGUMENT, "the float codec needs dtype F16, BF16, F32 or F64");
    if (options.block_size < kMinBlockSize || options.block_size > kMaxBlockSize || options.block_size % width != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, "block size " + std::to_string(options.block_size) + " must lie in " +
                                              std::to_string(kMinBlockSize) + ".." + std::to_string(kMaxBlockSize) +
                                              " and be a multiple of the element width " + std::to_string(width));
    if (options.zstd_level < kZstdMinLevel || options.zstd_level > kZstdMaxLevel)
        fail(GREY_ERROR_INVALID_ARGUMENT, "zstd level " + std::to_string(options.zstd_level) + " lies outside " +
                                              std::to_string(kZstdMinLevel) + ".." + std::to_string(kZstdMaxLevel));
}

}  // namespace

std::vector<std::byte> encode(std::span<const std::byte> data, const EncodeOptions& options) {
    const uint32_t width = element_width_of(raw_enum(options.dtype));
    check_options(options, width);
    const uint64_t block_count = data.size() / options.block_size + (data.size() % options.block_size != 0 ? 1 : 0);
    if (block_count > UINT32_MAX) fail(GREY_ERROR_INVALID_ARGUMENT, "the data needs more than 2^32 - 1 blocks; use a larger block size");
    const auto count = static_cast<uint32_t>(block_count);

    std::vector<BlockEntry> entries(count);
    std::vector<std::byte> payloads;
    std::vector<std::byte> scratch;
    ZstdContexts zstd;
    for (uint32_t i = 0; i < count; ++i) {
        const auto block = data.subspan(uint64_t{i} * options.block_size, std::min<uint64_t>(options.block_size, data.size() - uint64_t{i} * options.block_size));
        BlockEntry& entry = entries[i];
        entry.raw_size = static_cast<uint32_t>(block.size());
        entry.offset = payloads.size();
        if (const auto constant = constant_kind(block, width)) {
            entry.codec = *constant;
            if (entry.codec == CodecId::fill) payloads.insert(payloads.end(), block.begin(), block.begin() + width);
        } else {
            scratch.clear();
            switch (options.codec) {
                case CodecId::bitmask: encode_bitmask(block, width, scratch); break;
                case CodecId::floats: encode_floats(block, width, scratch); break;
                case CodecId::lz4: encode_lz4(block, scratch); break;
                case CodecId::zstd: zstd.encode(block, options.zstd_level, scratch); break;
                default: break;
            }
            if (options.codec != CodecId::raw && !scratch.empty() && scratch.size() < block.size()) {
                entry.codec = options.codec;
                payloads.insert(payloads.end(), scratch.begin(), scratch.end());
            } else {
                entry.codec = CodecId::raw;
                payloads.insert(payloads.end(), block.begin(), block.end());
            }
        }
        entry.stored_size = static_cast<uint32_t>(payloads.size() - entry.offset);
    }

    const uint64_t table_end = kHeaderSize + uint64_t{count} * kEntrySize;
    std::vector<std::byte> out(table_end + payloads.size());
    write_container_header(out, data.size(), options.block_size, options.dtype, count);
    for (uint32_t i = 0; i < count; ++i)
        write_block_entry(out, i, entries[i], data.subspan(uint64_t{i} * options.block_size, entries[i].raw_size));
    std::copy(payloads.begin(), payloads.end(), out.begin() + static_cast<std::ptrdiff_t>(table_end));
    return out;
}

namespace {

void decode_payload(const BlockEntry& entry, std::span<const std::byte> payload, uint32_t width, ZstdContexts& zstd,
                    std::span<std::byte> out) {
    switch (entry.codec) {
        case CodecId::raw: std::memcpy(out.data(), payload.data(), out.size()); break;
        case CodecId::zero: std::memset(out.data(), 0, out.size()); break;
        case CodecId::fill: decode_fill(payload, width, out); break;
        case CodecId::bitmask: decode_bitmask(payload, width, out); break;
        case CodecId::floats:
            if (!float_codec_width(width)) corrupt("float payload", "the container's element width " + std::to_string(width) + " has no float codec");
            decode_floats(payload, width, out);
            break;
        case CodecId::lz4: decode_lz4(payload, out); break;
        case CodecId::zstd: zstd.decode(payload, out); break;
    }
}

// `table` holds at least the container's header and table; `payload` is the block's.
void decode_checked(std::span<const std::byte> table, const ContainerInfo& info, uint32_t index, std::span<const std::byte> payload,
                    ZstdContexts& zstd, std::span<std::byte> out) {
    const BlockEntry& entry = info.blocks.at(index);
    const std::string where = "codec container: block " + std::to_string(index) + " of " + std::to_string(info.blocks.size()) +
                              " (" + std::string(codec_name(entry.codec)) + ")";
    if (out.size() != entry.raw_size)
        fail(GREY_ERROR_INVALID_ARGUMENT, where + ": the output holds " + std::to_string(out.size()) + " bytes, the block " +
                                              std::to_string(entry.raw_size));
    if (payload.size() != entry.stored_size)
        fail(GREY_ERROR_INVALID_ARGUMENT, where + ": the payload holds " + std::to_string(payload.size()) + " bytes, the block " +
                                              std::to_string(entry.stored_size));
    try {
        decode_payload(entry, payload, info.element_width, zstd, out);
    } catch (const Error& e) {
        fail(e.status(), where + ": " + e.what());
    }
    const auto* entry_bytes = table.data() + kHeaderSize + uint64_t{index} * kEntrySize;
    if (block_checksum(index, std::span<const std::byte, 24>(entry_bytes, 24), out) != entry.checksum)
        fail(GREY_ERROR_CORRUPT, where + ": the decoded bytes fail the block's checksum");
}

std::span<const std::byte> payload_of(std::span<const std::byte> container, const ContainerInfo& info, uint32_t index) {
    return container.subspan(info.payload_start + info.blocks[index].offset, info.blocks[index].stored_size);
}

}  // namespace

void decode_block(std::span<const std::byte> container, const ContainerInfo& info, uint32_t index, std::span<std::byte> out) {
    if (index >= info.blocks.size())
        fail(GREY_ERROR_INVALID_ARGUMENT, "block " + std::to_string(index) + " does not exist (the container has " +
                                              std::to_string(info.blocks.size()) + ")");
    if (container.size() != info.container_size) fail(GREY_ERROR_INVALID_ARGUMENT, "the container is not the one `info` was read from");
    ZstdContexts zstd;
    decode_checked(container, info, index, payload_of(container, info, index), zstd, out);
}

void decode_block_payload(std::span<const std::byte> table, const ContainerInfo& info, uint32_t index, std::span<const std::byte> payload,
                          std::span<std::byte> out) {
    if (index >= info.blocks.size())
        fail(GREY_ERROR_INVALID_ARGUMENT, "block " + std::to_string(index) + " does not exist (the container has " +
                                              std::to_string(info.blocks.size()) + ")");
    if (table.size() < info.payload_start) fail(GREY_ERROR_INVALID_ARGUMENT, "the table bytes end before the container's table does");
    ZstdContexts zstd;
    decode_checked(table, info, index, payload, zstd, out);
}

PayloadRange payloads_of_range(const ContainerInfo& info, uint64_t offset, uint64_t size) {
    if (offset > info.raw_size || size > info.raw_size - offset)
        fail(GREY_ERROR_INVALID_ARGUMENT, "bytes " + std::to_string(offset) + ".." + std::to_string(offset + size) +
                                              " lie past the container's " + std::to_string(info.raw_size));
    if (size == 0) return {};
    const BlockEntry& first = info.blocks[offset / info.block_size];
    const BlockEntry& last = info.blocks[(offset + size - 1) / info.block_size];
    return {first.offset, last.offset + last.stored_size};
}

void decode_range_payloads(std::span<const std::byte> table, const ContainerInfo& info, uint64_t offset, std::span<const std::byte> payloads,
                           uint64_t payloads_first, std::span<std::byte> out) {
    if (table.size() < info.payload_start) fail(GREY_ERROR_INVALID_ARGUMENT, "the table bytes end before the container's table does");
    const PayloadRange needed = payloads_of_range(info, offset, out.size());
    if (needed.first < payloads_first || needed.end - payloads_first > payloads.size())
        fail(GREY_ERROR_INVALID_ARGUMENT, "the payload bytes given do not hold the blocks of the range");
    if (out.empty()) return;
    ZstdContexts zstd;
    const uint64_t end = offset + out.size();
    std::vector<std::byte> partial;
    for (uint64_t b = offset / info.block_size; b * info.block_size < end; ++b) {
        const auto index = static_cast<uint32_t>(b);
        const BlockEntry& entry = info.blocks[index];
        const auto payload = payloads.subspan(entry.offset - payloads_first, entry.stored_size);
        const uint64_t start = b * info.block_size, raw = entry.raw_size;
        const uint64_t lo = std::max(offset, start), hi = std::min(end, start + raw);
        if (lo == start && hi == start + raw) {
            decode_checked(table, info, index, payload, zstd, out.subspan(lo - offset, raw));
            continue;
        }
        partial.resize(raw);
        decode_checked(table, info, index, payload, zstd, partial);
        std::memcpy(out.data() + (lo - offset), partial.data() + (lo - start), hi - lo);
    }
}

void decode_range(std::span<const std::byte> container, const ContainerInfo& info, uint64_t offset, std::span<std::byte> out) {
    if (container.size() != info.container_size) fail(GREY_ERROR_INVALID_ARGUMENT, "the container is not the one `info` was read from");
    decode_range_payloads(container, info, offset, container.subspan(info.payload_start), 0, out);
}

namespace {

void decode_all(std::span<const std::byte> container, const ContainerInfo& info, std::span<std::byte> out) {
    if (out.size() != info.raw_size)
        fail(GREY_ERROR_INVALID_ARGUMENT, "the output holds " + std::to_string(out.size()) + " bytes; the container decodes to " +
                                              std::to_string(info.raw_size));
    ZstdContexts zstd;
    try {
        for (uint32_t i = 0; i < info.blocks.size(); ++i)
            decode_checked(container, info, i, payload_of(container, info, i), zstd, out.subspan(uint64_t{i} * info.block_size, info.blocks[i].raw_size));
    } catch (...) {
        if (!out.empty()) std::memset(out.data(), 0, out.size());
        throw;
    }
}

}  // namespace

void decode_into(std::span<const std::byte> container, std::span<std::byte> out) {
    decode_all(container, read_container_info(container), out);
}

std::vector<std::byte> decode(std::span<const std::byte> container) {
    const ContainerInfo info = read_container_info(container);
    std::vector<std::byte> out(info.raw_size);
    decode_all(container, info, out);
    return out;
}

ContainerSizes container_sizes(std::span<const std::byte> container) {
    const ContainerInfo info = read_container_info(container);
    ContainerSizes sizes;
    sizes.raw_size = info.raw_size;
    sizes.container_size = info.container_size;
    sizes.block_count = static_cast<uint32_t>(info.blocks.size());
    for (const auto& block : info.blocks) ++sizes.blocks_by_codec[static_cast<uint8_t>(block.codec)];
    return sizes;
}

}  // namespace grey::codec
