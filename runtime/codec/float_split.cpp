#include "codec/float_split.hpp"

#include "codec/byte_io.hpp"
#include "codec/rans.hpp"

#include <cstring>

namespace grey::codec {
namespace {

constexpr const char* kFloatPayload = "float payload";

// The per-element loops, with the width a constant so that every copy compiles to a plain load or store.
template <uint32_t W>
void split(std::span<const std::byte> block, uint64_t elements, uint8_t* symbols, std::byte* remainders) {
    for (uint64_t e = 0; e < elements; ++e) {
        uint64_t element = 0;
        std::memcpy(&element, block.data() + e * W, W);
        symbols[e] = static_cast<uint8_t>(float_symbol(element, W));
        const uint64_t rest = float_remainder(element, W);
        std::memcpy(remainders + e * (W - 1), &rest, W - 1);
    }
}

template <uint32_t W>
void join(const uint8_t* symbols, const std::byte* remainders, uint64_t elements, std::span<std::byte> block) {
    for (uint64_t e = 0; e < elements; ++e) {
        uint64_t rest = 0;
        std::memcpy(&rest, remainders + e * (W - 1), W - 1);
        const uint64_t element = float_join(symbols[e], rest, W);
        std::memcpy(block.data() + e * W, &element, W);
    }
}

}  // namespace

void encode_floats(std::span<const std::byte> block, uint32_t element_width, std::vector<std::byte>& out) {
    const uint64_t elements = block.size() / element_width;
    const uint32_t remainder_bytes = element_width - 1;
    put<uint8_t>(out, static_cast<uint8_t>(element_width));
    put<uint8_t>(out, static_cast<uint8_t>(kRansLanes));
    put<uint8_t>(out, static_cast<uint8_t>(kRansProbBits));
    put<uint8_t>(out, 0);
    put<uint32_t>(out, static_cast<uint32_t>(elements));

    std::vector<uint8_t> symbols(elements);
    std::vector<std::byte> remainders(elements * remainder_bytes);
    switch (element_width) {
        case 2: split<2>(block, elements, symbols.data(), remainders.data()); break;
        case 4: split<4>(block, elements, symbols.data(), remainders.data()); break;
        default: split<8>(block, elements, symbols.data(), remainders.data()); break;
    }
    encode_rans(symbols, out);
    out.insert(out.end(), remainders.begin(), remainders.end());
    out.insert(out.end(), block.begin() + static_cast<std::ptrdiff_t>(elements * element_width), block.end());
}

void decode_floats(std::span<const std::byte> payload, uint32_t element_width, std::span<std::byte> block) {
    FieldReader in(payload, kFloatPayload);
    const auto width = in.read<uint8_t>("element width");
    if (width != element_width || !float_codec_width(width))
        corrupt(kFloatPayload, "element width " + std::to_string(width) + " differs from the container's " + std::to_string(element_width));
    if (in.read<uint8_t>("lane count") != kRansLanes) corrupt(kFloatPayload, "the lane count is not " + std::to_string(kRansLanes));
    if (in.read<uint8_t>("probability bits") != kRansProbBits)
        corrupt(kFloatPayload, "the probability precision is not " + std::to_string(kRansProbBits) + " bits");
    if (in.read<uint8_t>("reserved") != 0) corrupt(kFloatPayload, "the reserved byte is not zero");
    const uint32_t elements = in.read<uint32_t>("element count");
    if (elements != block.size() / element_width)
        corrupt(kFloatPayload, "element count " + std::to_string(elements) + " does not match the block's " +
                           std::to_string(block.size() / element_width));
    std::vector<uint8_t> symbols(elements);
    decode_rans(in, symbols);
    const uint32_t remainder_bytes = element_width - 1;
    const auto remainders = in.take(uint64_t{elements} * remainder_bytes, "sign and mantissa bytes");
    const auto tail = in.take(block.size() % element_width, "ragged end");
    in.expect_end();
    switch (element_width) {
        case 2: join<2>(symbols.data(), remainders.data(), elements, block); break;
        case 4: join<4>(symbols.data(), remainders.data(), elements, block); break;
        default: join<8>(symbols.data(), remainders.data(), elements, block); break;
    }
    if (!tail.empty()) std::memcpy(block.data() + uint64_t{elements} * element_width, tail.data(), tail.size());
}

}  // namespace grey::codec
