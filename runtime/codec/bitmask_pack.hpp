// Bitmask + pack for sparse data (post-ReLU activations, pruned weights): one bit per element says
// whether it is nonzero, and only the nonzero elements are stored, in order. An element is zero when
// all its bytes are (so -0.0 is kept: decoding is bit-exact). A GPU decodes it with one thread per mask
// word: the exclusive prefix sum of the words' popcounts is where each word's elements start in the
// packed array (docs/codecs.md, "bitmask").
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace grey::codec {

// Appends the payload of `block` (elements of `element_width` bytes; a ragged end shorter than one
// element is stored raw after the packed elements).
void encode_bitmask(std::span<const std::byte> block, uint32_t element_width, std::vector<std::byte>& out);

// Decodes a payload into `block` (whose size is the block's raw size); GREY_ERROR_CORRUPT for any
// payload that does not describe exactly `block.size()` bytes.
void decode_bitmask(std::span<const std::byte> payload, uint32_t element_width, std::span<std::byte> block);

}  // namespace grey::codec
