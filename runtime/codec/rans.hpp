// Byte symbols entropy-coded with rANS in 32 interleaved lanes and a per-block frequency table: symbol i
// belongs to lane i % 32, and each lane has its own state and its own stream of 16-bit words, so a GPU
// warp decodes a block with one thread per lane and no dependency between threads (DietGPU's layout,
// with separate lane streams in place of its warp-ballot shared stream). Probabilities are quantized to
// 12 bits; states are 32 bits, renormalized 16 bits at a time. docs/codecs.md gives the byte layout.
#pragma once

#include "codec/byte_io.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace grey::codec {

inline constexpr uint32_t kRansLanes = 32;
inline constexpr uint32_t kRansProbBits = 12;
inline constexpr uint32_t kRansProbTotal = 1u << kRansProbBits;
inline constexpr uint32_t kRansStateLow = 1u << 16;  // states live in [kRansStateLow, 2^32)

// Each symbol's quantized frequency (0 = absent; the present ones sum to kRansProbTotal unless there are
// no symbols at all) and cumulative start.
struct RansTable {
    std::array<uint16_t, 256> frequency{};
    std::array<uint16_t, 256> start{};
};

// The table for `symbols`: every symbol that occurs gets at least 1/4096, the rest in proportion.
RansTable rans_table_for(std::span<const uint8_t> symbols);

// Appends the table, the lanes' final states and word counts, and the lanes' words.
void encode_rans(std::span<const uint8_t> symbols, std::vector<std::byte>& out);

// Reads what encode_rans wrote for `symbols.size()` symbols and decodes them; GREY_ERROR_CORRUPT for an
// invalid table, a state out of range, a lane that reads past its words or does not end where its
// encoder began.
void decode_rans(FieldReader& in, std::span<uint8_t> symbols);

}  // namespace grey::codec
