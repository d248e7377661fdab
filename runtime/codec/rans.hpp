// Byte symbols entropy-coded with rANS in L interleaved lanes (L = 32, 64 or 128) and a per-block
// frequency table: symbol i belongs to lane i % L, and each lane has its own state and its own stream of
// 16-bit words, so a GPU warp decodes a block with no dependency between lanes: thread t of the warp owns
// lanes t, t + 32, ... and advances them together, L / 32 independent dependency chains a thread
// (DietGPU's interleaving, with separate lane streams in place of its warp-ballot shared stream).
// Probabilities are quantized to 12 bits; states are 32 bits, renormalized 16 bits at a time.
// docs/codecs.md gives the byte layout: with 32 lanes (the first format) a lane's word count is a u32,
// with more a u16, which keeps the per-lane cost at 6 bytes.
#pragma once

#include "codec/byte_io.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace grey::codec {

// The lane counts a stream may have. 32 is the first format's (u32 word counts); 64 and 128 give each
// GPU thread 2 or 4 states to interleave (u16 word counts). kRansDefaultLanes is what the encoder writes
// (docs/codecs.md says why 128: on real bf16 weights it keeps 98.7% of the order-0 bound, 32 lanes 99.7%,
// inside the 2% the codec aims at, with four independent chains a GPU thread).
inline constexpr uint32_t kRansLegacyLanes = 32;
inline constexpr uint32_t kRansMaxLanes = 128;
inline constexpr uint32_t kRansDefaultLanes = 128;
constexpr bool rans_lanes_valid(uint32_t lanes) noexcept { return lanes == 32 || lanes == 64 || lanes == 128; }

// The lane count the encoder writes for `symbols` symbols when asked for `asked`: halved (down to 32)
// while a lane would get fewer than kRansMinSymbolsPerLane symbols. A lane's state and count cost 6
// bytes and its last word is partly empty, so in small blocks more lanes cost more than they are
// worth; on a GPU, small blocks are many warps, whose number hides the latency the lanes would.
inline constexpr uint32_t kRansMinSymbolsPerLane = 128;
constexpr uint32_t rans_lanes_for(uint64_t symbols, uint32_t asked) noexcept {
    uint32_t lanes = asked;
    while (lanes > kRansLegacyLanes && symbols < uint64_t{kRansMinSymbolsPerLane} * lanes) lanes /= 2;
    return lanes;
}
// The bytes of a lane's word count: 4 in the 32-lane format, 2 otherwise.
constexpr uint32_t rans_count_bytes(uint32_t lanes) noexcept { return lanes == kRansLegacyLanes ? 4 : 2; }
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

// Appends the table, the lanes' final states and word counts, and the lanes' words, in `lanes` lanes
// (rans_lanes_valid). Returns false, with `out` as it was, when a lane's word count does not fit its
// field (a u16 with 64 or 128 lanes: only blocks of more than 4 MiB can need that many); the caller
// then encodes in 32 lanes.
bool encode_rans(std::span<const uint8_t> symbols, uint32_t lanes, std::vector<std::byte>& out);

// Reads what encode_rans wrote in `lanes` lanes for `symbols.size()` symbols and decodes them;
// GREY_ERROR_CORRUPT for an invalid table, a state out of range, a lane that reads past its words or
// does not end where its encoder began.
void decode_rans(FieldReader& in, uint32_t lanes, std::span<uint8_t> symbols);

}  // namespace grey::codec
