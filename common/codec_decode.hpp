// Decoding the LT-Block container's block formats on a GPU (docs/codecs.md), written once for the
// kernel (kernels/cuda/codec_decode.cu) and for the host, where the fake CUDA driver runs the same code
// and tests/codec/device_codec_test.cpp and the codec fuzzer compare it with the host codecs.
//
// A block is decoded by one 32-lane warp. Each decoder is written as the work of one lane, in phases
// separated by a warp barrier; the host runs a phase for lanes 0..31 in turn, the GPU runs them at once.
// Nothing a lane does depends on another lane's work within a phase, so both orders give the same bytes.
//
// The decoders never read outside the payload or write outside the block's raw bytes, whatever the
// payload says: every offset is checked against the stored size first. A payload they cannot decode
// gives a fault code, not a message; the runtime then decodes that block on the host, whose decoder
// names the problem (runtime/codec), so a device and a host failure read the same.
#pragma once

#include "common/hostdevice.h"
#include "common/xxh3.hpp"

#include <stdint.h>

namespace grey::common {

inline constexpr uint32_t kCodecLanes = 32;
inline constexpr uint32_t kCodecProbBits = 12;
inline constexpr uint32_t kCodecProbTotal = 1u << kCodecProbBits;
inline constexpr uint32_t kCodecStateLow = 1u << 16;

// The container's codec ids a device decodes (runtime/codec/codec_id.hpp has them all; lz4 and zstd
// blocks stay with the host).
enum CodecBlockId : uint32_t { kCodecRaw = 0, kCodecZero = 1, kCodecFill = 2, kCodecBitmask = 3, kCodecFloat = 4 };

GREY_FN_FORCE bool device_decodes(uint32_t codec) { return codec <= kCodecFloat; }

// Why a block was not decoded (zero: it was). Faults of the lanes of a block are or-ed together.
enum CodecFault : uint32_t {
    kFaultNone = 0,
    kFaultLayout = 1u << 0,    // a header field, or sizes that do not add up to the stored size
    kFaultTable = 1u << 1,     // an rANS frequency table that is not a distribution
    kFaultLane = 1u << 2,      // an rANS lane that reads past its words or does not end where it began
    kFaultBitmask = 1u << 3,   // a mask or a packed element that contradicts the count
    kFaultChecksum = 1u << 4,  // the decoded bytes fail the entry's checksum
    kFaultCodec = 1u << 5,     // a codec id no device decoder has
};

// One container block to decode: where its payload is, where its raw bytes go, what they must hash to.
struct CodecBlockJob {
    uint64_t payload;        // offset of the payload from the container's first byte (the kernel: its address)
    uint64_t output;         // offset of the block's raw bytes from the output's first byte
    uint64_t checksum;       // the entry's checksum
    uint64_t checksum_seed;  // its seed: xxh3-64 of the entry's bytes 0..23 seeded with the block index
    uint32_t raw_size;
    uint32_t stored_size;
    uint32_t codec;
    uint32_t element_width;
};

GREY_FN_FORCE uint32_t popcount32(uint32_t x) {
#if defined(__CUDA_ARCH__)
    return static_cast<uint32_t>(__popc(x));
#else
    return static_cast<uint32_t>(__builtin_popcount(x));
#endif
}
GREY_FN_FORCE uint32_t read_u16(const uint8_t* p) { return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8; }

// ---- raw, zero, fill: lane l writes bytes l, l + 32, ...

GREY_FN void constant_decode_lane(uint32_t lane, const CodecBlockJob& job, const uint8_t* payload, uint8_t* out) {
    for (uint32_t i = lane; i < job.raw_size; i += kCodecLanes)
        out[i] = job.codec == kCodecZero ? 0 : job.codec == kCodecRaw ? payload[i] : payload[i % job.element_width];
}

GREY_FN uint32_t constant_layout_fault(const CodecBlockJob& job) {
    switch (job.codec) {
        case kCodecRaw: return job.stored_size == job.raw_size ? kFaultNone : kFaultLayout;
        case kCodecZero: return job.stored_size == 0 ? kFaultNone : kFaultLayout;
        default: return job.stored_size == job.element_width && job.raw_size >= job.element_width ? kFaultNone : kFaultLayout;
    }
}

// ---- bitmask + pack

struct BitmaskLayout {
    uint32_t elements;
    uint32_t nonzero;
    uint32_t words;
    uint32_t packed;  // offsets from the payload's start
    uint32_t tail;
};

GREY_FN uint32_t bitmask_layout(const uint8_t* payload, const CodecBlockJob& job, BitmaskLayout* layout) {
    const uint32_t width = job.element_width;
    if (width == 0 || job.stored_size < 8 || payload[0] != width || payload[1] != 0 || read_u16(payload + 2) != 0) return kFaultLayout;
    layout->elements = job.raw_size / width;
    layout->nonzero = xxh_read32(payload + 4);
    layout->words = (layout->elements + 31) / 32;
    layout->packed = 8 + 4 * layout->words;
    const uint64_t tail = layout->packed + uint64_t{layout->nonzero} * width;
    if (layout->nonzero > layout->elements || tail + job.raw_size % width != job.stored_size) return kFaultLayout;
    layout->tail = static_cast<uint32_t>(tail);
    return kFaultNone;
}

// Lane l writes elements 32k + l: word k of the mask is read by every lane, and the packed index of a
// set bit is the popcount of the words before (which every lane sums alike) and of the bits below it.
// The GPU's tiled decoder (kernels/cuda/codec_decode.cu) decodes whole tiles itself and leaves the rest
// of the block here: `first_word` is where it stopped and `before` the set bits of the words before.
template <uint32_t W>
GREY_FN uint32_t bitmask_decode_lane(uint32_t lane, const CodecBlockJob& job, const BitmaskLayout& layout, const uint8_t* payload, uint8_t* out,
                                     uint32_t first_word = 0, uint32_t before = 0) {
    uint32_t fault = kFaultNone;
    const uint8_t* packed = payload + layout.packed;
    for (uint32_t k = first_word; k < layout.words; ++k) {
        const uint32_t word = xxh_read32(payload + 8 + 4 * k);
        const uint32_t valid = layout.elements - 32 * k < 32 ? layout.elements - 32 * k : 32;
        if (valid < 32 && (word >> valid) != 0) fault |= kFaultBitmask;
        if (lane < valid) {
            uint8_t* element = out + (uint64_t{32} * k + lane) * W;
            if ((word >> lane) & 1u) {
                const uint32_t index = before + popcount32(word & ((1u << lane) - 1u));
                uint32_t any = 0;
                if (index < layout.nonzero) {
                    for (uint32_t b = 0; b < W; ++b) {
                        element[b] = packed[uint64_t{index} * W + b];
                        any |= element[b];
                    }
                }
                if (any == 0) fault |= kFaultBitmask;  // past the count, or a zero stored as nonzero
            } else {
                for (uint32_t b = 0; b < W; ++b) element[b] = 0;
            }
        }
        before += popcount32(word);
    }
    if (before != layout.nonzero) fault |= kFaultBitmask;
    if (lane == 0)
        for (uint32_t b = 0; b < job.raw_size % W; ++b) out[uint64_t{layout.elements} * W + b] = payload[layout.tail + b];
    return fault;
}

// bitmask_decode_lane for the block's element width (1, 2, 4 or 8 bytes; anything else is a layout fault).
GREY_FN uint32_t bitmask_decode_lane_any(uint32_t lane, const CodecBlockJob& job, const BitmaskLayout& layout, const uint8_t* payload, uint8_t* out) {
    switch (job.element_width) {
        case 1: return bitmask_decode_lane<1>(lane, job, layout, payload, out);
        case 2: return bitmask_decode_lane<2>(lane, job, layout, payload, out);
        case 4: return bitmask_decode_lane<4>(lane, job, layout, payload, out);
        case 8: return bitmask_decode_lane<8>(lane, job, layout, payload, out);
        default: return kFaultLayout;
    }
}

// ---- bitmask + pack in tiles (the GPU's decoder of blocks of 2 KiB and more)
//
// A tile is 2 KiB of output: four rows of 512 bytes, 16 bytes a lane a row. Lane l scans the mask bits
// of the tile's elements [64/W·l, 64/W·(l+1)) (its segment: the bits of chunks 4l..4l+3); the warp's
// exclusive scan of the segments' popcounts gives each lane the packed index of its segment's first
// element. Chunk c = 32·row + l (16 bytes, elements [16/W·c, 16/W·(c+1))) takes its bits and first
// index from segment c / 4. The tile's packed elements are one contiguous range, which the kernel
// copies into shared memory a tile ahead; each lane writes a chunk as one 16-byte store and adds it to
// the block checksum (BitmaskTileHash) while it is in registers. What the whole tiles leave goes
// through bitmask_decode_lane. decode_block_by_lanes runs the same functions a lane at a time.

inline constexpr uint32_t kBitmaskTileBytes = 2048;
inline constexpr uint32_t kBitmaskTileRows = kBitmaskTileBytes / 512;

// A register of 64 bits where `Wide`, 32 otherwise.
template <bool Wide>
struct RegisterOf {
    using type = uint32_t;
};
template <>
struct RegisterOf<true> {
    using type = uint64_t;
};

// A lane's segment: 64/W bits (a u64 for 1-byte elements).
template <uint32_t W>
using BitmaskSegment = typename RegisterOf<W == 1>::type;

GREY_FN_FORCE uint32_t popcount_bits(uint32_t x) { return popcount32(x); }
GREY_FN_FORCE uint32_t popcount_bits(uint64_t x) { return popcount32(static_cast<uint32_t>(x)) + popcount32(static_cast<uint32_t>(x >> 32)); }

// Whether a block takes the tiles: output aligned for 16-byte stores and at least one whole tile.
GREY_FN_FORCE bool bitmask_tiles_apply(const CodecBlockJob& job, const uint8_t* out) {
    const uint32_t w = job.element_width;
    return (reinterpret_cast<uintptr_t>(out) & 15u) == 0 && job.raw_size >= kBitmaskTileBytes && (w == 1 || w == 2 || w == 4 || w == 8);
}

// Mask word k; `alignment` is the payload's address mod 4 (the device reads the word in one load when 0).
GREY_FN_FORCE uint32_t bitmask_mask_word(const uint8_t* payload, uint32_t k, uint32_t alignment) {
    const uint8_t* p = payload + 8 + 4 * k;
#if defined(__CUDA_ARCH__)
    if (alignment == 0) return __ldg(reinterpret_cast<const unsigned int*>(p));
    if (alignment == 2)
        return __ldg(reinterpret_cast<const unsigned short*>(p)) | static_cast<uint32_t>(__ldg(reinterpret_cast<const unsigned short*>(p + 2))) << 16;
    return __ldg(p) | static_cast<uint32_t>(__ldg(p + 1)) << 8 | static_cast<uint32_t>(__ldg(p + 2)) << 16 | static_cast<uint32_t>(__ldg(p + 3)) << 24;
#else
    (void)alignment;
    return xxh_read32(p);
#endif
}

template <uint32_t W>
GREY_FN_FORCE BitmaskSegment<W> bitmask_tile_segment(const uint8_t* payload, uint32_t tile, uint32_t alignment, uint32_t lane) {
    const uint32_t first = tile * (64 / W);  // the tile's first mask word
    if constexpr (W == 1)
        return bitmask_mask_word(payload, first + 2 * lane, alignment) | uint64_t{bitmask_mask_word(payload, first + 2 * lane + 1, alignment)} << 32;
    else if constexpr (W == 2) return bitmask_mask_word(payload, first + lane, alignment);
    else if constexpr (W == 4) return (bitmask_mask_word(payload, first + lane / 2, alignment) >> (16 * (lane & 1))) & 0xFFFFu;
    else return (bitmask_mask_word(payload, first + lane / 4, alignment) >> (8 * (lane & 3))) & 0xFFu;
}

// The lane's chunk of a row: segment 8·row + l/4 (`owner`, scanned by that lane, with `owner_first`, the
// packed index of its first element within the tile). Its bits, and the index of its first element.
template <uint32_t W>
GREY_FN_FORCE uint32_t bitmask_chunk_bits(BitmaskSegment<W> owner, uint32_t lane) {
    constexpr uint32_t kElements = 16 / W;
    return static_cast<uint32_t>(owner >> ((lane & 3) * kElements)) & ((1u << kElements) - 1);
}
template <uint32_t W>
GREY_FN_FORCE uint32_t bitmask_chunk_first(BitmaskSegment<W> owner, uint32_t owner_first, uint32_t lane) {
    return owner_first + popcount_bits(owner & ((BitmaskSegment<W>{1} << ((lane & 3) * (16 / W))) - 1));
}

// The tile's packed elements [first, first + count) as offsets from the payload, cut at the K stored
// (a count past them is a fault, which bitmask_decode_lane's final check reports).
GREY_FN_FORCE void bitmask_tile_range(const BitmaskLayout& layout, uint32_t width, uint32_t first, uint32_t count, uint32_t* low, uint32_t* high) {
    const uint32_t from = first < layout.nonzero ? first : layout.nonzero;
    const uint32_t to = count < layout.nonzero - from ? from + count : layout.nonzero;
    *low = layout.packed + from * width;
    *high = layout.packed + to * width;
}

// A chunk's 16 bytes as four words: set bit e takes the next element from `from` (W-aligned when
// `Aligned`), a clear one leaves zeros. Returns whether a taken element is zero (a fault). `available`:
// the bytes that may be read from `from` (the host, reading the payload in place, stops there; the
// kernel reads its staging, which always has room).
template <uint32_t W, bool Aligned>
GREY_FN_FORCE uint32_t bitmask_chunk_expand(uint32_t bits, const uint8_t* from, uint32_t available, uint32_t word[4]) {
    constexpr uint32_t kElements = 16 / W;
    uint32_t zero = 0;
    for (uint32_t q = 0; q < 4; ++q) word[q] = 0;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (uint32_t e = 0; e < kElements; ++e) {
        if ((bits >> e) & 1u) {
            uint64_t element = 0;
#if defined(__CUDA_ARCH__)
            (void)available;
            if constexpr (Aligned && W == 1) element = *from;
            else if constexpr (Aligned && W == 2) element = *reinterpret_cast<const uint16_t*>(from);
            else if constexpr (Aligned && W == 4) element = *reinterpret_cast<const uint32_t*>(from);
            else if constexpr (Aligned && W == 8) element = *reinterpret_cast<const uint64_t*>(from);
            else
                for (uint32_t b = 0; b < W; ++b) element |= uint64_t{from[b]} << (8 * b);
#else
            if (available >= W) {
                for (uint32_t b = 0; b < W; ++b) element |= uint64_t{from[b]} << (8 * b);
                available -= W;
                from += W;
            }
#endif
#if defined(__CUDA_ARCH__)
            from += W;
#endif
            zero |= element == 0;
            if constexpr (W == 8) {
                word[2 * e] = static_cast<uint32_t>(element);
                word[2 * e + 1] = static_cast<uint32_t>(element >> 32);
            } else {
                word[e * W / 4] |= static_cast<uint32_t>(element) << (8 * ((e * W) % 4));
            }
        }
    }
    return zero;
}

// The checksum's share of a lane. Its 16 bytes of a row are words 2j and 2j + 1 (j = lane % 4) of
// stripe 8·(row % 2) + lane / 4 of the row's 1 KiB block, so the lane adds to accumulators 2j and
// 2j + 1 both the products and the words (a word adds itself to its neighbour's accumulator); at each
// 1 KiB block's end the eight lanes of the same j add up their sums (`total`) before the scramble, after
// which each of them holds accumulators 2j and 2j + 1.
struct BitmaskTileHash {
    uint64_t acc[2];
    uint64_t sum[2];
};

GREY_FN_FORCE void bitmask_hash_begin(BitmaskTileHash& h, uint32_t lane) {
    h.acc[0] = xxh3_initial_accumulator(2 * (lane & 3));
    h.acc[1] = xxh3_initial_accumulator(2 * (lane & 3) + 1);
    h.sum[0] = h.sum[1] = 0;
}
GREY_FN_FORCE void bitmask_hash_add(BitmaskTileHash& h, const uint32_t word[4], uint32_t row, const uint64_t* keys, uint32_t lane) {
    const uint64_t low = word[0] | uint64_t{word[1]} << 32, high = word[2] | uint64_t{word[3]} << 32;
    const uint32_t key = 8 * (row & 1) + lane / 4 + 2 * (lane & 3);
    h.sum[0] += xxh3_word_product(low, keys[key]) + high;
    h.sum[1] += xxh3_word_product(high, keys[key + 1]) + low;
}
GREY_FN_FORCE void bitmask_hash_scramble(BitmaskTileHash& h, const uint64_t total[2], const uint64_t* keys, uint32_t lane) {
    h.acc[0] = xxh3_scramble(h.acc[0] + total[0], keys[kXxh3ScrambleAt / 8 + 2 * (lane & 3)]);
    h.acc[1] = xxh3_scramble(h.acc[1] + total[1], keys[kXxh3ScrambleAt / 8 + 2 * (lane & 3) + 1]);
    h.sum[0] = h.sum[1] = 0;
}

// The 1 KiB blocks of the checksum the tiles cover (the rest is read back from the output).
GREY_FN_FORCE uint64_t bitmask_fused_blocks(const CodecBlockJob& job, uint32_t tiles) {
    if (job.raw_size <= kXxh3ShortMax) return 0;
    const uint64_t covered = uint64_t{2} * tiles, blocks = xxh3_full_blocks(job.raw_size);
    return covered < blocks ? covered : blocks;
}

#if !defined(__CUDA_ARCH__)
// The tiles of a bitmask block a lane at a time, as the kernel runs them (the shuffles become arrays),
// reading the packed elements in place; then the rest by bitmask_decode_lane and the checksum from the
// tiles' accumulators. Returns the block's faults (the checksum's included).
template <uint32_t W>
uint32_t bitmask_tiles_by_lanes(const CodecBlockJob& job, const BitmaskLayout& layout, const uint8_t* payload, uint8_t* out) {
    constexpr uint32_t kTileElements = kBitmaskTileBytes / W;
    const uint32_t tiles = layout.elements / kTileElements;
    const uint64_t fused = bitmask_fused_blocks(job, tiles);
    uint8_t secret[kXxh3SecretSize];
    xxh3_derive_secret(job.checksum_seed, secret);
    uint64_t keys[kXxh3SecretSize / 8];
    for (uint32_t i = 0; i < kXxh3SecretSize / 8; ++i) keys[i] = xxh_read64(secret + 8 * i);
    BitmaskTileHash hash[kCodecLanes];
    for (uint32_t lane = 0; lane < kCodecLanes; ++lane) bitmask_hash_begin(hash[lane], lane);
    const uint32_t alignment = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(payload) & 3u);
    uint32_t fault = kFaultNone, before = 0;
    for (uint32_t t = 0; t < tiles; ++t) {
        BitmaskSegment<W> segment[kCodecLanes];
        uint32_t first[kCodecLanes], count = 0;
        for (uint32_t lane = 0; lane < kCodecLanes; ++lane) {
            segment[lane] = bitmask_tile_segment<W>(payload, t, alignment, lane);
            first[lane] = count;
            count += popcount_bits(segment[lane]);
        }
        uint32_t low = 0, high = 0;
        bitmask_tile_range(layout, W, before, count, &low, &high);
        for (uint32_t row = 0; row < kBitmaskTileRows; ++row) {
            for (uint32_t lane = 0; lane < kCodecLanes; ++lane) {
                const uint32_t owner = 8 * row + lane / 4;
                const uint32_t bits = bitmask_chunk_bits<W>(segment[owner], lane);
                const uint32_t at = bitmask_chunk_first<W>(segment[owner], first[owner], lane);
                uint32_t word[4];
                const uint32_t from = low + at * W, available = from < high ? high - from : 0;
                fault |= bitmask_chunk_expand<W, false>(bits, payload + (from < high ? from : high), available, word) ? kFaultBitmask : kFaultNone;
                for (uint32_t q = 0; q < 4; ++q)
                    for (uint32_t b = 0; b < 4; ++b)
                        out[uint64_t{t} * kBitmaskTileBytes + 512 * row + 16 * lane + 4 * q + b] = static_cast<uint8_t>(word[q] >> (8 * b));
                bitmask_hash_add(hash[lane], word, row, keys, lane);
            }
            if ((row & 1) == 1) {
                const bool hashed = 2 * t + row / 2 < fused;
                uint64_t total[4][2] = {};
                for (uint32_t lane = 0; lane < kCodecLanes; ++lane) {
                    total[lane & 3][0] += hash[lane].sum[0];
                    total[lane & 3][1] += hash[lane].sum[1];
                }
                for (uint32_t lane = 0; lane < kCodecLanes; ++lane) {
                    if (hashed) bitmask_hash_scramble(hash[lane], total[lane & 3], keys, lane);
                    hash[lane].sum[0] = hash[lane].sum[1] = 0;
                }
            }
        }
        before += count;
    }
    for (uint32_t lane = 0; lane < kCodecLanes; ++lane) fault |= bitmask_decode_lane<W>(lane, job, layout, payload, out, tiles * (64 / W), before);
    if (fault != kFaultNone) return fault;
    uint64_t checksum = 0;
    if (job.raw_size <= kXxh3ShortMax) {
        checksum = xxh3_short(out, job.raw_size, job.checksum_seed);
    } else {
        uint64_t acc[8];
        for (uint32_t i = 0; i < 8; ++i) acc[i] = hash[i / 2].acc[i % 2];  // lane i / 2 holds accumulators i & ~1 and i | 1
        checksum = xxh3_long_from(acc, out, job.raw_size, fused, secret);
    }
    return checksum == job.checksum ? kFaultNone : kFaultChecksum;
}
#endif

// ---- split float: rANS-coded symbols in 32 lanes, remainders raw

struct FloatLayout {
    uint32_t elements;
    uint32_t frequencies;  // offsets from the payload's start
    uint32_t states;
    uint32_t counts;
    uint32_t words;
    uint32_t remainders;
    uint32_t tail;
};

// The lanes decode a block in groups of 1 KiB, the checksum's blocks: a lane decodes elements l,
// l + 32, ... of a group (the format's order, 1 KiB / W / 32 steps), and the warp then puts the
// group together as 8-byte words, lane l owning words l, l + 32, l + 64 and l + 96: it gathers those
// words' symbols from the lanes that decoded them, joins them with the remainders it loaded a group
// earlier, and stores each word as it is, without staging it. The words' positions in the checksum's
// stripes are the lane's own (word k sits at position k % 8 = l % 8).
template <uint32_t W>
inline constexpr uint32_t kFloatGroupSteps = 1024 / W / kCodecLanes;
template <uint32_t W>
inline constexpr uint32_t kFloatGroupElements = kFloatGroupSteps<W> * kCodecLanes;
inline constexpr uint32_t kFloatGroupBytes = 1024;
inline constexpr uint32_t kFloatLaneWords = kFloatGroupBytes / 8 / kCodecLanes;
template <uint32_t W>
inline constexpr uint32_t kFloatWordElements = 8 / W;
template <uint32_t W>
inline constexpr uint32_t kFloatWordRemainderBytes = kFloatWordElements<W> * (W - 1);
// A lane's symbols of one group, four to a register (step s in byte s % 4 of register s / 4).
template <uint32_t W>
inline constexpr uint32_t kFloatPackedSymbols = (kFloatGroupSteps<W> + 3) / 4;

// What a warp keeps in shared memory for a float block: 5.6 KiB. The frequencies are needed only while
// the table is built.
struct RansWorkspace {
    uint32_t range[256];  // start | frequency << 16: one load a decoded symbol instead of two
    alignas(8) uint8_t slot_symbol[kCodecProbTotal];
    struct TableBuild {
        uint16_t frequency[256];
        uint32_t lane_total[kCodecLanes];
    };
    TableBuild build;
};

// Loads of N = 1, 2 or 4 bytes of a payload, at an address that is a multiple of N, little-endian. On the
// GPU through the read-only path, asking L2 for the 256 bytes around each miss (a lane's stream and the
// remainders are read front to back), and prefetches into L2 of what a lane reads a few groups later.
// On the host, plain reads; a prefetch does nothing.
template <uint32_t N>
GREY_FN_FORCE uint32_t payload_load(const uint8_t* p) {
    static_assert(N == 1 || N == 2 || N == 4);
    uint32_t v = 0;
#if defined(__CUDA_ARCH__)
    if constexpr (N == 1) asm("ld.global.nc.L2::256B.u8 %0, [%1];" : "=r"(v) : "l"(p));
    else if constexpr (N == 2) asm("ld.global.nc.L2::256B.u16 %0, [%1];" : "=r"(v) : "l"(p));
    else asm("ld.global.nc.L2::256B.u32 %0, [%1];" : "=r"(v) : "l"(p));
#else
    for (uint32_t b = 0; b < N; ++b) v |= static_cast<uint32_t>(p[b]) << (8 * b);
#endif
    return v;
}
GREY_FN_FORCE void payload_prefetch(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
#else
    (void)p;
#endif
}

GREY_FN uint32_t float_layout(const uint8_t* payload, const CodecBlockJob& job, FloatLayout* layout) {
    const uint32_t width = job.element_width;
    if ((width != 2 && width != 4 && width != 8) || job.stored_size < 8 + 32 || payload[0] != width || payload[1] != kCodecLanes ||
        payload[2] != kCodecProbBits || payload[3] != 0)
        return kFaultLayout;
    layout->elements = xxh_read32(payload + 4);
    if (layout->elements != job.raw_size / width) return kFaultLayout;
    uint32_t present = 0;
    for (uint32_t i = 0; i < 32; ++i) present += popcount32(payload[8 + i]);
    layout->frequencies = 8 + 32;
    layout->states = layout->frequencies + 2 * present;
    layout->counts = layout->states + 4 * kCodecLanes;
    layout->words = layout->counts + 4 * kCodecLanes;
    if (layout->words > job.stored_size) return kFaultLayout;
    uint64_t words = 0;
    for (uint32_t l = 0; l < kCodecLanes; ++l) words += xxh_read32(payload + layout->counts + 4 * l);
    const uint64_t remainders = layout->words + 2 * words;
    const uint64_t tail = remainders + uint64_t{layout->elements} * (width - 1);
    if (tail + job.raw_size % width != job.stored_size) return kFaultLayout;
    layout->remainders = static_cast<uint32_t>(remainders);
    layout->tail = static_cast<uint32_t>(tail);
    return kFaultNone;
}

// Phase 1: lane l reads the frequencies of symbols 8l..8l+7 (byte l of the presence bitmap; its first
// frequency's index is the popcount of the bytes before).
GREY_FN uint32_t rans_read_frequencies(uint32_t lane, const uint8_t* payload, const FloatLayout& layout, RansWorkspace* ws) {
    uint32_t index = 0;
    for (uint32_t i = 0; i < lane; ++i) index += popcount32(payload[8 + i]);
    const uint32_t present = payload[8 + lane];
    uint32_t fault = kFaultNone, total = 0;
    for (uint32_t b = 0; b < 8; ++b) {
        uint32_t frequency = 0;
        if ((present >> b) & 1u) {
            frequency = read_u16(payload + layout.frequencies + 2 * index++);
            if (frequency == 0 || frequency > kCodecProbTotal) fault |= kFaultTable;
        }
        ws->build.frequency[8 * lane + b] = static_cast<uint16_t>(frequency);
        total += frequency;
    }
    ws->build.lane_total[lane] = total;
    return fault;
}

// Phase 2: each symbol's cumulative start; the frequencies must sum to 4096 (0 for an empty block).
GREY_FN uint32_t rans_starts(uint32_t lane, const FloatLayout& layout, RansWorkspace* ws) {
    uint32_t start = 0, all = 0;
    for (uint32_t i = 0; i < kCodecLanes; ++i) {
        if (i < lane) start += ws->build.lane_total[i];
        all += ws->build.lane_total[i];
    }
    for (uint32_t b = 0; b < 8; ++b) {
        const uint32_t frequency = ws->build.frequency[8 * lane + b];
        ws->range[8 * lane + b] = (start & 0xFFFFu) | frequency << 16;
        start += frequency;
    }
    return all == (layout.elements == 0 ? 0 : kCodecProbTotal) ? kFaultNone : kFaultTable;
}

GREY_FN_FORCE uint32_t range_start(uint32_t range) { return range & 0xFFFFu; }
GREY_FN_FORCE uint32_t range_end(uint32_t range) { return (range & 0xFFFFu) + (range >> 16); }

// Phase 3 (only for a valid table): lane l fills slots 128l..128l+127 of the slot-to-symbol table, four
// slots a store. The lanes go round their slots from different places (lane l from its word l), so that
// at every step the 32 stores fall in 32 different banks of shared memory. Each run starts from the last
// symbol whose start is at or below its first slot (a present one: an absent symbol shares its start
// with the next). An empty block has no table to fill.
GREY_FN void rans_fill_slots(uint32_t lane, const FloatLayout& layout, RansWorkspace* ws) {
    if (layout.elements == 0) return;
    constexpr uint32_t kSlotsPerLane = kCodecProbTotal / kCodecLanes;
    const uint32_t chunk = lane * kSlotsPerLane, turn = chunk + 4 * lane;
    for (uint32_t run = 0; run < 2; ++run) {
        const uint32_t from = run == 0 ? turn : chunk, to = run == 0 ? chunk + kSlotsPerLane : turn;
        uint32_t low = 0, high = 255;
        while (low < high) {
            const uint32_t middle = (low + high + 1) / 2;
            if (range_start(ws->range[middle]) <= from) low = middle;
            else high = middle - 1;
        }
        uint32_t symbol = low;
        for (uint32_t slot = from; slot < to; slot += 4) {
            uint32_t packed = 0;
            for (uint32_t b = 0; b < 4; ++b) {
                while (slot + b >= range_end(ws->range[symbol])) ++symbol;
                packed |= symbol << (8 * b);
            }
#if defined(__CUDA_ARCH__)
            *reinterpret_cast<uint32_t*>(ws->slot_symbol + slot) = packed;
#else
            for (uint32_t b = 0; b < 4; ++b) ws->slot_symbol[slot + b] = static_cast<uint8_t>(packed >> (8 * b));
#endif
        }
    }
}

// An element of W bytes in a register.
template <uint32_t W>
using FloatBits = typename RegisterOf<W == 8>::type;

// One lane's rANS stream between barriers: its state, the next two words of its stream (loaded two
// refills ahead of the one that takes them, so that their latency is off the state's dependency chain
// even when a lane refills at consecutive steps), the first one's offset from the payload and the
// stream's end. Past its last word a lane reloads that word, which it can never take, so the loads need
// no test. A lane that runs out of words or starts from an impossible state goes on decoding (the warp's
// barriers need every lane) and reports the fault at the end.
struct FloatLane {
    uint32_t state;
    uint32_t word[2];       // their low bytes, and
    uint32_t word_high[2];  // their high bytes where the payload's address is odd (joined when taken)
    uint32_t next;
    uint32_t end;
    uint32_t fault;
};

// Loads the word at offset `at` into the lane's slot i. `Aligned`: the payload starts at an even address
// (the words are at even offsets from it), so the device reads a word in one load; otherwise its two
// bytes stay apart until the word is taken, so that no instruction waits for them before then.
template <bool Aligned>
GREY_FN_FORCE void float_load_word(const uint8_t* payload, uint32_t at, FloatLane& l, uint32_t i) {
    const uint32_t last = l.end - 2;
    const uint8_t* p = payload + (at < last ? at : last);
    if constexpr (Aligned) {
        l.word[i] = payload_load<2>(p);
        l.word_high[i] = 0;
    } else {
        l.word[i] = payload_load<1>(p);
        l.word_high[i] = payload_load<1>(p + 1);
    }
}

template <bool Aligned>
GREY_FN void float_lane_begin(uint32_t lane, const uint8_t* payload, const FloatLayout& layout, FloatLane* l) {
    l->state = xxh_read32(payload + layout.states + 4 * lane);
    uint32_t next = layout.words;  // float_layout has checked that every stream ends inside the payload
    for (uint32_t i = 0; i < lane; ++i) next += 2 * xxh_read32(payload + layout.counts + 4 * i);
    l->next = next;
    l->end = next + 2 * xxh_read32(payload + layout.counts + 4 * lane);
    l->word[0] = l->word[1] = l->word_high[0] = l->word_high[1] = 0;
    if (next < l->end) {
        float_load_word<Aligned>(payload, next, *l, 0);
        float_load_word<Aligned>(payload, next + 2, *l, 1);
    }
    l->fault = l->state < kCodecStateLow ? kFaultLane : kFaultNone;
}

// One rANS step: the symbol of the lane's next element. The refill is a selection, not a branch, so the
// lanes of a warp never diverge here. A lane that refills past its last word takes that word again
// (float_load_word stops there) and ends with `next` beyond `end`, which float_decode_tail reports.
template <bool Aligned>
GREY_FN_FORCE uint32_t float_step(const RansWorkspace* ws, const uint8_t* payload, FloatLane& l) {
    const uint32_t slot = l.state & (kCodecProbTotal - 1);
    const uint32_t symbol = ws->slot_symbol[slot];
    const uint32_t range = ws->range[symbol];
    const uint32_t state = (range >> 16) * (l.state >> kCodecProbBits) + slot - (range & 0xFFFFu);
    const bool refill = state < kCodecStateLow;
    l.state = refill ? (state << 16) | l.word[0] | l.word_high[0] << 8 : state;
    l.next += refill ? 2 : 0;
    l.word[0] = refill ? l.word[1] : l.word[0];
    l.word_high[0] = refill ? l.word_high[1] : l.word_high[0];
    if (refill) float_load_word<Aligned>(payload, l.next + 2, l, 1);
    return symbol;
}

// Element i's remainder (sign above the low mantissa bits, W - 1 bytes) and the element it makes with
// its symbol (as runtime/codec/float_split.hpp splits it).
template <uint32_t W>
GREY_FN_FORCE FloatBits<W> float_remainder_at(const uint8_t* payload, const FloatLayout& layout, uint32_t i) {
    FloatBits<W> remainder = 0;
    const uint8_t* at = payload + layout.remainders + i * (W - 1);
    for (uint32_t b = 0; b < W - 1; ++b) remainder |= static_cast<FloatBits<W>>(payload_load<1>(at + b)) << (8 * b);
    return remainder;
}
template <uint32_t W>
GREY_FN_FORCE FloatBits<W> float_join(uint32_t symbol, FloatBits<W> remainder) {
    constexpr uint32_t kMantissaBits = 8 * W - 9;
    constexpr FloatBits<W> kMantissa = (FloatBits<W>{1} << kMantissaBits) - 1;
    // A 2-byte element's remainder is one byte: its copy a byte higher puts the sign in place.
    if constexpr (W == 2) return ((remainder * 0x101u) & (0x8000u | kMantissa)) | symbol << kMantissaBits;
    return ((remainder >> kMantissaBits) << (8 * W - 1)) | (static_cast<FloatBits<W>>(symbol) << kMantissaBits) | (remainder & kMantissa);
}

// Where element j of a lane's word m (word 32m + l of a group) was decoded: by lane `source`, at a step
// whose symbol is byte `byte` of that lane's packed register `packed` (kFloatPackedSymbols). The element
// is (8 / W)(32m + l) + j of the group: a lane's step s decodes element 32s + its lane. `packed` does not
// depend on the lane, so a GPU exchanges a register the whole warp names alike.
struct FloatSymbolSource {
    uint32_t source;
    uint32_t packed;
    uint32_t byte;
};
template <uint32_t W>
GREY_FN_FORCE FloatSymbolSource float_symbol_source(uint32_t lane, uint32_t m, uint32_t j) {
    constexpr uint32_t e = kFloatWordElements<W>;
    // Step e * m + e * lane / 32, and e * m % 4 + e * lane / 32 < 4 because e divides 4.
    return {(e * lane + j) % kCodecLanes, e * m / 4, e * m % 4 + e * lane / kCodecLanes};
}

// The remainder bytes of a word's elements, which the format keeps together: kFloatWordRemainderBytes
// (4, 6 or 7) in the low bytes of a register.
template <uint32_t W>
using FloatWordRemainders = typename RegisterOf<(W > 2)>::type;

// Word q's remainders (q counted from the block's first element). `A`: the remainders start at an
// address that is a multiple of A (1, 2 or 4), which allows wider loads.
template <uint32_t W, uint32_t A>
GREY_FN_FORCE FloatWordRemainders<W> float_word_remainders(const uint8_t* payload, const FloatLayout& layout, uint32_t q) {
    using R = FloatWordRemainders<W>;
    constexpr uint32_t n = kFloatWordRemainderBytes<W>;
    const uint8_t* at = payload + layout.remainders + q * n;
    if constexpr (n == 4 && A == 4) return payload_load<4>(at);
    R r = 0;
    if constexpr (n % 2 == 0 && A >= 2) {
        for (uint32_t b = 0; b < n; b += 2) r |= static_cast<R>(payload_load<2>(at + b)) << (8 * b);
    } else {
        for (uint32_t b = 0; b < n; ++b) r |= static_cast<R>(payload_load<1>(at + b)) << (8 * b);
    }
    return r;
}

// A word from its elements' symbols and remainders.
template <uint32_t W>
GREY_FN_FORCE uint64_t float_join_word(const uint32_t (&symbols)[kFloatWordElements<W>], FloatWordRemainders<W> remainders) {
    uint64_t word = 0;
    for (uint32_t j = 0; j < kFloatWordElements<W>; ++j) {
        const auto remainder = static_cast<FloatBits<W>>((remainders >> (8 * (W - 1) * j)) & ((FloatBits<W>{1} << (8 * (W - 1))) - 1));
        word |= static_cast<uint64_t>(float_join<W>(symbols[j], remainder)) << (8 * W * j);
    }
    return word;
}

// Phase 4, once per whole group: the lane's kFloatGroupSteps steps, their symbols packed.
template <uint32_t W, bool Aligned>
GREY_FN_FORCE void float_group_symbols(const RansWorkspace* ws, const uint8_t* payload, FloatLane& l, uint32_t (&packed)[kFloatPackedSymbols<W>]) {
    for (uint32_t s = 0; s < kFloatGroupSteps<W>; ++s) {
        const uint32_t symbol = float_step<Aligned>(ws, payload, l);
        packed[s / 4] = s % 4 == 0 ? symbol : packed[s / 4] | symbol << (8 * (s % 4));
    }
}

// Phase 6: the elements after the last whole group (from element `first`), written straight to the
// output, and the bytes after the last whole element (lane 0). Returns the lane's faults, including a
// stream that does not end exactly where its state began.
template <uint32_t W, bool Aligned>
GREY_FN uint32_t float_decode_tail(uint32_t lane, const CodecBlockJob& job, const uint8_t* payload, const FloatLayout& layout,
                                   const RansWorkspace* ws, FloatLane& l, uint32_t first, uint8_t* out) {
    for (uint32_t i = first + lane; i < layout.elements; i += kCodecLanes) {
        const FloatBits<W> element = float_join<W>(float_step<Aligned>(ws, payload, l), float_remainder_at<W>(payload, layout, i));
        for (uint32_t b = 0; b < W; ++b) out[uint64_t{i} * W + b] = static_cast<uint8_t>(element >> (8 * b));
    }
    if (lane == 0)
        for (uint32_t b = 0; b < job.raw_size % W; ++b) out[uint64_t{layout.elements} * W + b] = payload[layout.tail + b];
    return l.fault | (l.next != l.end || l.state != kCodecStateLow ? kFaultLane : kFaultNone);
}

#if !defined(__CUDA_ARCH__)
// Phases 4 to 6 of a float block, one lane after another within each phase.
template <uint32_t W>
uint32_t float_decode_by_lanes(const CodecBlockJob& job, const uint8_t* payload, const FloatLayout& layout, RansWorkspace* ws, uint8_t* out) {
    FloatLane lanes[kCodecLanes];
    uint32_t packed[kCodecLanes][kFloatPackedSymbols<W>] = {};
    const uint32_t groups = layout.elements / kFloatGroupElements<W>;
    for (uint32_t lane = 0; lane < kCodecLanes; ++lane) float_lane_begin<false>(lane, payload, layout, &lanes[lane]);
    for (uint32_t g = 0; g < groups; ++g) {
        for (uint32_t lane = 0; lane < kCodecLanes; ++lane) float_group_symbols<W, false>(ws, payload, lanes[lane], packed[lane]);
        for (uint32_t lane = 0; lane < kCodecLanes; ++lane)
            for (uint32_t m = 0; m < kFloatLaneWords; ++m) {
                const uint32_t q = kCodecLanes * m + lane;
                uint32_t symbols[kFloatWordElements<W>];
                for (uint32_t j = 0; j < kFloatWordElements<W>; ++j) {
                    const FloatSymbolSource from = float_symbol_source<W>(lane, m, j);
                    symbols[j] = (packed[from.source][from.packed] >> (8 * from.byte)) & 0xFFu;
                }
                const uint64_t word = float_join_word<W>(symbols, float_word_remainders<W, 1>(payload, layout, g * (kFloatGroupBytes / 8) + q));
                for (uint32_t b = 0; b < 8; ++b) out[uint64_t{g} * kFloatGroupBytes + 8 * q + b] = static_cast<uint8_t>(word >> (8 * b));
            }
    }
    uint32_t fault = kFaultNone;
    for (uint32_t lane = 0; lane < kCodecLanes; ++lane)
        fault |= float_decode_tail<W, false>(lane, job, payload, layout, ws, lanes[lane], groups * kFloatGroupElements<W>, out);
    return fault;
}

// The block decoded as a warp would, one lane after another (the fake CUDA driver's kernel, and the
// tests' reference for the kernel's logic); `workspace` is scratch. Returns the block's faults.
inline uint32_t decode_block_by_lanes(const uint8_t* container, uint8_t* output, const CodecBlockJob& job, RansWorkspace* workspace) {
    const uint8_t* payload = container + job.payload;
    uint8_t* out = output + job.output;
    uint32_t fault = kFaultNone;
    switch (job.codec) {
        case kCodecRaw:
        case kCodecZero:
        case kCodecFill:
            fault = constant_layout_fault(job);
            if (fault == kFaultNone)
                for (uint32_t lane = 0; lane < kCodecLanes; ++lane) constant_decode_lane(lane, job, payload, out);
            break;
        case kCodecBitmask: {
            BitmaskLayout layout{};
            fault = bitmask_layout(payload, job, &layout);
            if (fault == kFaultNone && bitmask_tiles_apply(job, out)) {
                switch (job.element_width) {  // the checksum is the tiles' own: it returns
                    case 1: return bitmask_tiles_by_lanes<1>(job, layout, payload, out);
                    case 2: return bitmask_tiles_by_lanes<2>(job, layout, payload, out);
                    case 4: return bitmask_tiles_by_lanes<4>(job, layout, payload, out);
                    default: return bitmask_tiles_by_lanes<8>(job, layout, payload, out);
                }
            }
            for (uint32_t lane = 0; fault == kFaultNone && lane < kCodecLanes; ++lane)
                fault |= bitmask_decode_lane_any(lane, job, layout, payload, out);
            break;
        }
        case kCodecFloat: {
            FloatLayout layout{};
            fault = float_layout(payload, job, &layout);
            if (fault != kFaultNone) break;
            for (uint32_t lane = 0; lane < kCodecLanes; ++lane) fault |= rans_read_frequencies(lane, payload, layout, workspace);
            for (uint32_t lane = 0; lane < kCodecLanes; ++lane) fault |= rans_starts(lane, layout, workspace);
            if (fault != kFaultNone) break;
            for (uint32_t lane = 0; lane < kCodecLanes; ++lane) rans_fill_slots(lane, layout, workspace);
            switch (job.element_width) {
                case 2: fault = float_decode_by_lanes<2>(job, payload, layout, workspace, out); break;
                case 4: fault = float_decode_by_lanes<4>(job, payload, layout, workspace, out); break;
                default: fault = float_decode_by_lanes<8>(job, payload, layout, workspace, out); break;
            }
            break;
        }
        default: fault = kFaultCodec;
    }
    if (fault == kFaultNone && xxh3_64(out, job.raw_size, job.checksum_seed) != job.checksum) fault = kFaultChecksum;
    return fault;
}
#endif

}  // namespace grey::common
