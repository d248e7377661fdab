#include "codec/constant_block.hpp"

#include "codec/byte_io.hpp"

#include <algorithm>
#include <cstring>

namespace grey::codec {

std::optional<CodecId> constant_kind(std::span<const std::byte> block, uint32_t element_width) noexcept {
    if (block.empty() || block.size() < element_width) return std::nullopt;
    if (std::all_of(block.begin(), block.end(), [](std::byte b) { return b == std::byte{0}; })) return CodecId::zero;
    // Repeated iff the block equals itself shifted by one element.
    if (std::memcmp(block.data(), block.data() + element_width, block.size() - element_width) == 0) return CodecId::fill;
    return std::nullopt;
}

void decode_fill(std::span<const std::byte> payload, uint32_t element_width, std::span<std::byte> block) {
    if (payload.size() != element_width)
        corrupt("fill payload", "holds " + std::to_string(payload.size()) + " bytes, expected one element of " +
                                    std::to_string(element_width));
    if (block.size() < element_width) corrupt("fill payload", "the block is shorter than one element");
    for (size_t i = 0; i < block.size(); ++i) block[i] = payload[i % element_width];
}

}  // namespace grey::codec
