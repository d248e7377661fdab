// The block codecs of the LT-Block container and their numbers on disk (docs/codecs.md). The numbers are
// part of the stream format: never renumber one, only add.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace grey::codec {

enum class CodecId : uint8_t {
    raw = 0,      // the bytes as they are (also the fallback when a codec would expand a block)
    zero = 1,     // every byte zero: no payload
    fill = 2,     // one element repeated: the element is the payload
    bitmask = 3,  // bitmask + pack: a bit per element, then the nonzero elements
    floats = 4,   // exponent symbols rANS-coded in 32 lanes, sign and mantissa stored raw
    lz4 = 5,      // an LZ4 block (liblz4)
    zstd = 6,     // a zstd frame (libzstd)
};
inline constexpr uint8_t kCodecIdCount = 7;

constexpr std::string_view codec_name(CodecId id) noexcept {
    switch (id) {
        case CodecId::raw: return "raw";
        case CodecId::zero: return "zero";
        case CodecId::fill: return "fill";
        case CodecId::bitmask: return "bitmask";
        case CodecId::floats: return "float";
        case CodecId::lz4: return "lz4";
        case CodecId::zstd: return "zstd";
    }
    return "unknown";
}

// The codec of a number read from a stream; nothing for a number no codec has.
constexpr std::optional<CodecId> codec_from_number(uint64_t number) noexcept {
    if (number >= kCodecIdCount) return std::nullopt;
    return static_cast<CodecId>(number);
}

// The codec a name (as codec_name spells it) stands for, e.g. memory.compression.algorithm's value.
constexpr std::optional<CodecId> codec_from_name(std::string_view name) noexcept {
    for (uint8_t n = 0; n < kCodecIdCount; ++n)
        if (codec_name(static_cast<CodecId>(n)) == name) return static_cast<CodecId>(n);
    return std::nullopt;
}

}  // namespace grey::codec
