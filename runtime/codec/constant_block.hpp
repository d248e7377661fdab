// Zero and single-value blocks: found before any codec runs, stored without payload (zero) or with one
// element (fill), so that a block of padding or of one repeated value costs only its table entry.
#pragma once

#include "codec/codec_id.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace grey::codec {

// zero when every byte is 0, fill when the block is its first `element_width` bytes repeated (the
// last repetition may be cut short by a ragged end), nothing otherwise. A block shorter than one
// element, or empty, is never constant.
std::optional<CodecId> constant_kind(std::span<const std::byte> block, uint32_t element_width) noexcept;

// Writes the block a fill payload (one element) stands for; the payload must be `element_width` bytes.
void decode_fill(std::span<const std::byte> payload, uint32_t element_width, std::span<std::byte> block);

}  // namespace grey::codec
