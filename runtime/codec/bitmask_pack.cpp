#include "codec/bitmask_pack.hpp"

#include "codec/byte_io.hpp"

#include <bit>
#include <cstring>

namespace grey::codec {
namespace {

constexpr const char* kBitmaskPayload = "bitmask payload";

bool is_zero_element(const std::byte* element, uint32_t width) noexcept {
    for (uint32_t i = 0; i < width; ++i)
        if (element[i] != std::byte{0}) return false;
    return true;
}

}  // namespace

void encode_bitmask(std::span<const std::byte> block, uint32_t element_width, std::vector<std::byte>& out) {
    const uint64_t elements = block.size() / element_width;
    const uint64_t words = (elements + 31) / 32;
    const size_t header_at = out.size();
    put<uint8_t>(out, static_cast<uint8_t>(element_width));
    put<uint8_t>(out, 0);
    put<uint16_t>(out, 0);
    put<uint32_t>(out, 0);  // nonzero count, patched below
    const size_t mask_at = out.size();
    out.resize(mask_at + words * 4, std::byte{0});
    uint32_t nonzero = 0;
    for (uint64_t e = 0; e < elements; ++e) {
        const std::byte* element = block.data() + e * element_width;
        if (is_zero_element(element, element_width)) continue;
        const size_t word_at = mask_at + (e / 32) * 4;
        put_at<uint32_t>(out, word_at, load<uint32_t>(out.data() + word_at) | (1u << (e % 32)));
        out.insert(out.end(), element, element + element_width);
        ++nonzero;
    }
    out.insert(out.end(), block.begin() + static_cast<std::ptrdiff_t>(elements * element_width), block.end());
    put_at<uint32_t>(out, header_at + 4, nonzero);
}

void decode_bitmask(std::span<const std::byte> payload, uint32_t element_width, std::span<std::byte> block) {
    FieldReader in(payload, kBitmaskPayload);
    const auto width = in.read<uint8_t>("element width");
    if (width != element_width)
        corrupt(kBitmaskPayload, "element width " + std::to_string(width) + " differs from the container's " + std::to_string(element_width));
    if (in.read<uint8_t>("reserved") != 0 || in.read<uint16_t>("reserved") != 0) corrupt(kBitmaskPayload, "reserved bytes are not zero");
    const uint32_t nonzero = in.read<uint32_t>("nonzero count");
    const uint64_t elements = block.size() / element_width;
    const uint64_t tail = block.size() % element_width;
    const uint64_t words = (elements + 31) / 32;
    if (nonzero > elements)
        corrupt(kBitmaskPayload, "nonzero count " + std::to_string(nonzero) + " exceeds the block's " + std::to_string(elements) + " elements");
    const auto mask = in.take(words * 4, "mask");
    const auto packed = in.take(uint64_t{nonzero} * element_width, "packed elements");
    const auto tail_bytes = in.take(tail, "ragged end");
    in.expect_end();

    uint64_t set_bits = 0;
    for (uint64_t w = 0; w < words; ++w) {
        uint32_t word = load<uint32_t>(mask.data() + w * 4);
        const uint64_t valid = elements - w * 32 < 32 ? elements - w * 32 : 32;
        if (valid < 32 && (word >> valid) != 0) corrupt(kBitmaskPayload, "mask bits are set past the last element");
        set_bits += static_cast<uint64_t>(std::popcount(word));
    }
    if (set_bits != nonzero)
        corrupt(kBitmaskPayload, "the mask has " + std::to_string(set_bits) + " bits set but the count says " + std::to_string(nonzero));

    const std::byte* next = packed.data();
    for (uint64_t e = 0; e < elements; ++e) {
        std::byte* element = block.data() + e * element_width;
        const uint32_t word = load<uint32_t>(mask.data() + (e / 32) * 4);
        if ((word >> (e % 32)) & 1u) {
            if (is_zero_element(next, element_width)) corrupt(kBitmaskPayload, "a packed element marked nonzero is zero");
            std::memcpy(element, next, element_width);
            next += element_width;
        } else {
            std::memset(element, 0, element_width);
        }
    }
    if (tail != 0) std::memcpy(block.data() + elements * element_width, tail_bytes.data(), tail);
}

}  // namespace grey::codec
