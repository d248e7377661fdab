// The lossless float codec (bf16, fp16, fp32, fp64): each element is split into an 8-bit symbol, the
// byte below the sign (bf16, fp32: the exponent; fp16: its 5 exponent bits and top 3 mantissa bits;
// fp64: the top 8 of 11 exponent bits), which is rANS-coded in 32 lanes with the block's own frequency
// table, and the sign with the remaining mantissa bits, stored raw in (width - 1) bytes. Weights spend
// few distinct exponents, so the symbols' entropy is well under 8 bits while the mantissa is close to
// random: coding only the symbols approaches the order-0 bound of the whole at the speed of a copy for
// the raw part (DFloat11 and DietGPU's float mode are the references). Layout: docs/codecs.md, "float".
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace grey::codec {

// The element widths the float codec takes: 2, 4 and 8 bytes.
constexpr bool float_codec_width(uint32_t width) noexcept { return width == 2 || width == 4 || width == 8; }

// The element's symbol and its raw remainder (sign above the mantissa bits), and back.
constexpr uint32_t float_symbol(uint64_t element, uint32_t width) noexcept {
    return static_cast<uint32_t>((element >> (8 * width - 9)) & 0xFFu);
}
constexpr uint64_t float_remainder(uint64_t element, uint32_t width) noexcept {
    const uint32_t mantissa_bits = 8 * width - 9;
    return ((element >> (8 * width - 1)) << mantissa_bits) | (element & ((uint64_t{1} << mantissa_bits) - 1));
}
constexpr uint64_t float_join(uint32_t symbol, uint64_t remainder, uint32_t width) noexcept {
    const uint32_t mantissa_bits = 8 * width - 9;
    return ((remainder >> mantissa_bits) << (8 * width - 1)) | (uint64_t{symbol} << mantissa_bits) |
           (remainder & ((uint64_t{1} << mantissa_bits) - 1));
}

void encode_floats(std::span<const std::byte> block, uint32_t element_width, std::vector<std::byte>& out);
void decode_floats(std::span<const std::byte> payload, uint32_t element_width, std::span<std::byte> block);

}  // namespace grey::codec
