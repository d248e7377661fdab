// The LT-Block container on the GPU: decoding blocks (raw, zero, fill, bitmask, float) with their
// checksums checked, and the deduplication hash of a buffer's blocks. One warp per block; the decoders
// are common/codec_decode.hpp's lane functions (bitmask blocks: in 2 KiB tiles here, the lane function
// taking what the tiles leave), the hash is common/xxh3.hpp's long path with the stripes of each 1 KiB
// block shared among the lanes. Compiled into a fatbin like grey_kernels.cu.

#include "common/codec_decode.hpp"
#include "common/xxh3.hpp"

#include <stdint.h>

namespace {

using namespace grey::common;

constexpr uint32_t kFullMask = 0xFFFFFFFFu;
// The decode kernel runs a warp a thread block, so that its shared tables sit at fixed addresses (the
// lookups of a rANS step need no address arithmetic); the hash kernel runs four.
constexpr uint32_t kDecodeWarpsPerBlock = 1;
constexpr uint32_t kHashWarpsPerBlock = 4;

// A bitmask tile's packed elements (at most 2 KiB) go into one of two staging buffers, 16-byte aligned
// as in global memory (up to 15 bytes before the tile's first packed byte).
constexpr uint32_t kTileStagingVectors = (kBitmaskTileBytes + 15) / 16 + 1;

struct WarpScratch {
    union {
        RansWorkspace rans;
        uint4 tile[2][kTileStagingVectors];
    };
    uint64_t keys[kXxh3SecretSize / 8];  // the checksum's secret for the block's seed, as aligned words
};

__device__ uint64_t load_u64(const uint8_t* p, bool aligned) {
    return aligned ? *reinterpret_cast<const uint64_t*>(p) : xxh_read64(p);
}

// XXH3-64's long path by the 32 lanes of a warp. The lane's accumulator is number lane % 8 (four copies
// of the eight); within a 1 KiB block the words a lane adds are any it is given at its stripe position
// (word k of the block at position k % 8 = lane % 8), because a block's sums commute: the copies add up
// their shares before the block's scramble. So the words can come from memory (the lanes take words l,
// l + 32, l + 64, l + 96 of each block) or straight from a decoder's registers.
struct WarpXxh3 {
    uint64_t acc, products, values;
    uint32_t position;

    __device__ explicit WarpXxh3(uint32_t lane) : acc(xxh3_initial_accumulator(lane % 8)), products(0), values(0), position(lane % 8) {}

    // Word k of the current 1 KiB block (k % 8 == position).
    __device__ void add(uint64_t value, uint32_t k, const uint64_t* keys) {
        products += xxh3_word_product(value, keys[k / 8 + position]);
        values += value;
    }
    // The lanes' shares of the stripes added since the last call; a word also adds to its neighbour's accumulator.
    __device__ void gather() {
        products += __shfl_xor_sync(kFullMask, products, 8);
        products += __shfl_xor_sync(kFullMask, products, 16);
        values += __shfl_xor_sync(kFullMask, values, 8);
        values += __shfl_xor_sync(kFullMask, values, 16);
        acc += products + __shfl_xor_sync(kFullMask, values, 1);
        products = values = 0;
    }
    __device__ void end_block(const uint64_t* keys) {
        gather();
        acc = xxh3_scramble(acc, keys[kXxh3ScrambleAt / 8 + position]);
    }
    // Stripes [0, stripes) of `block` from memory.
    __device__ void add_stripes(const uint8_t* block, uint32_t stripes, bool aligned, const uint64_t* keys, uint32_t lane) {
        for (uint32_t k = lane; k < stripes * 8; k += 32) add(load_u64(block + 8 * k, aligned), k, keys);
    }
    // The rest of a `len`-byte input from memory, its 1 KiB blocks before `from_block` already added.
    __device__ uint64_t finish(const uint8_t* input, uint64_t len, uint64_t from_block, const uint64_t* keys, uint32_t lane) {
        const bool aligned = (reinterpret_cast<uintptr_t>(input) & 7u) == 0;
        const uint64_t blocks = xxh3_full_blocks(len);
        for (uint64_t b = from_block; b < blocks; ++b) {
            add_stripes(input + b * kXxh3BlockBytes, kXxh3BlockStripes, aligned, keys, lane);
            end_block(keys);
        }
        add_stripes(input + blocks * kXxh3BlockBytes, static_cast<uint32_t>(xxh3_tail_stripes(len)), aligned, keys, lane);
        gather();
        // The last stripe: each copy computes its own word (no sharing needed).
        const auto* secret = reinterpret_cast<const uint8_t*>(keys);
        const uint64_t value = xxh_read64(input + len - kXxh3StripeBytes + 8 * position);
        acc += xxh3_word_product(value, xxh_read64(secret + kXxh3LastStripeAt + 8 * position)) + __shfl_xor_sync(kFullMask, value, 1);
        uint64_t all[8];
        for (uint32_t i = 0; i < 8; ++i) all[i] = __shfl_sync(kFullMask, acc, i);
        return xxh3_merge(all, secret, len);
    }
};

// The secret of `seed` as words (xxh3_derive_secret), one lane a word.
__device__ void derive_keys(uint64_t seed, uint64_t* keys, uint32_t lane) {
    if (lane < kXxh3SecretSize / 8) keys[lane] = xxh_read64(kXxh3DefaultSecret + 8 * lane) + ((lane & 1u) == 0 ? seed : 0 - seed);
    __syncwarp();
}

// XXH3-64 of `len` bytes by the 32 lanes of a warp, every lane getting the result.
__device__ uint64_t warp_xxh3(const uint8_t* input, uint64_t len, uint64_t seed, uint64_t* keys, uint32_t lane) {
    if (len <= kXxh3ShortMax) return xxh3_short(input, len, seed);
    derive_keys(seed, keys, lane);
    return WarpXxh3(lane).finish(input, len, 0, keys, lane);
}

// A float block (phases 4 to 6 of common/codec_decode.hpp) and its checksum. After a group's steps the
// lanes exchange their packed symbols by shuffles, so that each lane joins and stores whole words and
// adds them to the checksum while they are in registers, for every group that is one of the checksum's
// full 1 KiB blocks; the rest of the checksum (the last block, the tail) reads those bytes back. `A`:
// the remainders' address is a multiple of A (1, 2 or 4); at 2 or more the lanes' words are read two
// bytes at a time.
template <uint32_t W, uint32_t A>
__device__ uint32_t float_block(const CodecBlockJob& job, const FloatLayout& layout, const uint8_t* payload, WarpScratch* scratch,
                                uint8_t* out, uint32_t lane) {
    constexpr bool kAligned = A >= 2;
    constexpr uint32_t kGroupWords = kFloatGroupBytes / 8, kGroupRemainderBytes = kFloatGroupElements<W> * (W - 1);
    FloatLane stream;
    float_lane_begin<kAligned>(lane, payload, layout, &stream);
    const uint32_t groups = layout.elements / kFloatGroupElements<W>;
    FloatWordRemainders<W> ahead[kFloatLaneWords];
    if (groups > 0)
        for (uint32_t m = 0; m < kFloatLaneWords; ++m) ahead[m] = float_word_remainders<W, A>(payload, layout, kCodecLanes * m + lane);
    const bool long_input = job.raw_size > kXxh3ShortMax;
    const uint64_t blocks = xxh3_full_blocks(job.raw_size);
    const uint32_t fused_blocks = long_input ? static_cast<uint32_t>(groups < blocks ? groups : blocks) : 0;
    if (long_input) derive_keys(job.checksum_seed, scratch->keys, lane);
    const bool out_aligned = (reinterpret_cast<uintptr_t>(out) & 7u) == 0;
    WarpXxh3 hash(lane);
    for (uint32_t g = 0; g < groups; ++g) {
        FloatWordRemainders<W> remainders[kFloatLaneWords];
        for (uint32_t m = 0; m < kFloatLaneWords; ++m) remainders[m] = ahead[m];
        if (g + 1 < groups)
            for (uint32_t m = 0; m < kFloatLaneWords; ++m)
                ahead[m] = float_word_remainders<W, A>(payload, layout, (g + 1) * kGroupWords + kCodecLanes * m + lane);
        // Asks L2 for what comes later: the next 64 bytes of the lane's stream, and (a lane per 128
        // bytes) the remainders three groups on.
        const uint32_t stream_ahead = stream.next + 64, remainders_ahead = layout.remainders + (g + 3) * kGroupRemainderBytes + 128 * lane;
        if (stream_ahead < stream.end) payload_prefetch(payload + stream_ahead);
        if (128 * lane < kGroupRemainderBytes && remainders_ahead < layout.tail) payload_prefetch(payload + remainders_ahead);

        uint32_t packed[kFloatPackedSymbols<W>];
        float_group_symbols<W, kAligned>(&scratch->rans, payload, stream, packed);
        uint8_t* group_out = out + g * kFloatGroupBytes;
        const bool hashed = g < fused_blocks;
        for (uint32_t m = 0; m < kFloatLaneWords; ++m) {
            uint32_t symbols[kFloatWordElements<W>];
            for (uint32_t j = 0; j < kFloatWordElements<W>; ++j) {
                const FloatSymbolSource from = float_symbol_source<W>(lane, m, j);
                const uint32_t held = W == 8 ? packed[from.packed] : __shfl_sync(kFullMask, packed[from.packed], from.source);
                symbols[j] = __byte_perm(held, 0, 0x4440u | from.byte);
            }
            const uint64_t word = float_join_word<W>(symbols, remainders[m]);
            const uint32_t q = kCodecLanes * m + lane;
            if (out_aligned) reinterpret_cast<uint64_t*>(group_out)[q] = word;
            else
                for (uint32_t b = 0; b < 8; ++b) group_out[8 * q + b] = static_cast<uint8_t>(word >> (8 * b));
            if (hashed) hash.add(word, q, scratch->keys);
        }
        if (hashed) hash.end_block(scratch->keys);
    }
    uint32_t fault = float_decode_tail<W, kAligned>(lane, job, payload, layout, &scratch->rans, stream, groups * kFloatGroupElements<W>, out);
    fault = __reduce_or_sync(kFullMask, fault);
    if (fault != kFaultNone) return fault;
    __syncwarp();  // the lanes' writes are visible to the whole warp before it hashes them
    const uint64_t checksum = long_input ? hash.finish(out, job.raw_size, fused_blocks, scratch->keys, lane)
                                         : xxh3_short(out, job.raw_size, job.checksum_seed);
    return checksum == job.checksum ? kFaultNone : kFaultChecksum;
}

// The instance for the block's element width and the alignment of its remainders (4 matters only
// where a word's remainders are 4 bytes: 2-byte elements).
__device__ __forceinline__ uint32_t float_block_any(const CodecBlockJob& job, const FloatLayout& layout, const uint8_t* payload, WarpScratch* scratch,
                                                    uint8_t* out, uint32_t lane) {
    const uintptr_t remainders = reinterpret_cast<uintptr_t>(payload) + layout.remainders;
    const bool even = (remainders & 1u) == 0;
    switch (job.element_width) {
        case 2:
            if ((remainders & 3u) == 0) return float_block<2, 4>(job, layout, payload, scratch, out, lane);
            return even ? float_block<2, 2>(job, layout, payload, scratch, out, lane) : float_block<2, 1>(job, layout, payload, scratch, out, lane);
        case 4: return even ? float_block<4, 2>(job, layout, payload, scratch, out, lane) : float_block<4, 1>(job, layout, payload, scratch, out, lane);
        default: return even ? float_block<8, 2>(job, layout, payload, scratch, out, lane) : float_block<8, 1>(job, layout, payload, scratch, out, lane);
    }
}

// raw and zero blocks as the lanes' widest common stores: the same bytes as constant_decode_lane, which
// moves one byte a lane at a time (payloads are packed back to back, so a raw payload is aligned only as
// far as the stored sizes before it happen to be).
template <typename Word>
__device__ void copy_or_zero_words(uint8_t* out, const uint8_t* payload, uint32_t size, bool zero, uint32_t lane) {
    const uint32_t words = size / sizeof(Word);
    for (uint32_t i = lane; i < words; i += 32)
        reinterpret_cast<Word*>(out)[i] = zero ? Word{} : reinterpret_cast<const Word*>(payload)[i];
    for (uint32_t i = words * static_cast<uint32_t>(sizeof(Word)) + lane; i < size; i += 32) out[i] = zero ? 0 : payload[i];
}

__device__ void raw_or_zero_lane(const CodecBlockJob& job, const uint8_t* payload, uint8_t* out, uint32_t lane) {
    const bool zero = job.codec == kCodecZero;
    const uintptr_t alignment = reinterpret_cast<uintptr_t>(out) | (zero ? 0 : reinterpret_cast<uintptr_t>(payload));
    if ((alignment & 15u) == 0) copy_or_zero_words<uint4>(out, payload, job.raw_size, zero, lane);
    else if ((alignment & 7u) == 0) copy_or_zero_words<uint2>(out, payload, job.raw_size, zero, lane);
    else if ((alignment & 3u) == 0) copy_or_zero_words<uint32_t>(out, payload, job.raw_size, zero, lane);
    else constant_decode_lane(lane, job, payload, out);
}

// ---- bitmask blocks in tiles (common/codec_decode.hpp says what a tile is)
//
// bitmask_decode_lane writes W bytes a lane a store (2 for bf16) and at every mask word waits on that
// word and then on the packed elements it points to, and the checksum is a second pass over the block.
// Here the warp scans a tile's mask in 5 shuffles, the tile's packed range is copied into shared memory
// by cp.async while the warp expands the tile before it, the output goes out as 16-byte stores and
// into the checksum from registers, and the masks are read two tiles ahead.

template <typename T>
__device__ __forceinline__ T shfl_segment(T segment, uint32_t from) {
    if constexpr (sizeof(T) == 8)
        return __shfl_sync(kFullMask, static_cast<uint32_t>(segment), from) |
               uint64_t{__shfl_sync(kFullMask, static_cast<uint32_t>(segment >> 32), from)} << 32;
    else return __shfl_sync(kFullMask, segment, from);
}

// The popcounts of the lanes' segments before this lane's, and of all of them.
template <typename T>
__device__ __forceinline__ uint32_t scan_segments(T segment, uint32_t lane, uint32_t* total) {
    const uint32_t count = popcount_bits(segment);
    uint32_t inclusive = count;
    for (uint32_t d = 1; d < 32; d *= 2) {
        const uint32_t below = __shfl_up_sync(kFullMask, inclusive, d);
        if (lane >= d) inclusive += below;
    }
    *total = __shfl_sync(kFullMask, inclusive, 31);
    return inclusive - count;
}

// Queues the copy of a tile's packed elements [first, first + count) into `staging`: the 16-byte
// vectors that hold them, the last one cut at the payload's end (cp.async fills the rest with zeros), so
// no byte outside the payload is read. Returns the offset of the first element's byte in `staging`.
template <uint32_t W>
__device__ __forceinline__ uint32_t tile_copy(const uint8_t* payload, const CodecBlockJob& job, const BitmaskLayout& layout, uint32_t first,
                                              uint32_t count, uint4* staging, uint32_t lane) {
    uint32_t low_offset = 0, high_offset = 0;
    bitmask_tile_range(layout, W, first, count, &low_offset, &high_offset);
    const uintptr_t low = reinterpret_cast<uintptr_t>(payload) + low_offset, high = reinterpret_cast<uintptr_t>(payload) + high_offset;
    const uintptr_t end = reinterpret_cast<uintptr_t>(payload) + job.stored_size;
    const uintptr_t base = low & ~uintptr_t{15};  // at or after the payload's start: the mask comes first
    const uint32_t vectors = static_cast<uint32_t>((high - base + 15) / 16);
    const uint32_t to_shared = static_cast<uint32_t>(__cvta_generic_to_shared(staging));
    const uint64_t to_global = static_cast<uint64_t>(__cvta_generic_to_global(reinterpret_cast<const void*>(base))) - base;
    for (uint32_t v = lane; v < vectors; v += 32) {
        const uintptr_t at = base + 16 * v;
        const uint32_t bytes = end - at < 16 ? static_cast<uint32_t>(end - at) : 16;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(to_shared + 16 * v), "l"(to_global + at), "r"(bytes) : "memory");
    }
    return static_cast<uint32_t>(low - base);
}

// One tile from its staging: the lane's four chunks, each as one 16-byte store and into the checksum.
template <uint32_t W, bool Aligned>
__device__ __forceinline__ uint32_t tile_expand(BitmaskSegment<W> segment, uint32_t first, const uint8_t* staged, uint8_t* tile_out,
                                                uint32_t tile, uint64_t fused_blocks, BitmaskTileHash& hash, const uint64_t* keys, uint32_t lane) {
    uint32_t zero = 0;
#pragma unroll
    for (uint32_t row = 0; row < kBitmaskTileRows; ++row) {
        const uint32_t owner = 8 * row + lane / 4;
        const BitmaskSegment<W> bits_of_owner = shfl_segment(segment, owner);
        const uint32_t at = bitmask_chunk_first<W>(bits_of_owner, __shfl_sync(kFullMask, first, owner), lane);
        uint32_t word[4];
        zero |= bitmask_chunk_expand<W, Aligned>(bitmask_chunk_bits<W>(bits_of_owner, lane), staged + at * W, 0, word);
        *reinterpret_cast<uint4*>(tile_out + 512 * row + 16 * lane) = make_uint4(word[0], word[1], word[2], word[3]);
        bitmask_hash_add(hash, word, row, keys, lane);
        if ((row & 1) == 1) {
            if (2 * tile + row / 2 < fused_blocks) {
                uint64_t total[2] = {hash.sum[0], hash.sum[1]};
                for (uint32_t d = 4; d < 32; d *= 2) {
                    total[0] += __shfl_xor_sync(kFullMask, total[0], d);
                    total[1] += __shfl_xor_sync(kFullMask, total[1], d);
                }
                bitmask_hash_scramble(hash, total, keys, lane);
            }
            hash.sum[0] = hash.sum[1] = 0;
        }
    }
    return zero != 0 ? kFaultBitmask : kFaultNone;
}

// A block that bitmask_tiles_apply takes, and its checksum.
template <uint32_t W, bool Aligned>
__device__ uint32_t bitmask_block(const CodecBlockJob& job, const BitmaskLayout& layout, const uint8_t* payload, WarpScratch* scratch,
                                  uint8_t* out, uint32_t lane) {
    const uint32_t tiles = layout.elements / (kBitmaskTileBytes / W);
    const uint32_t alignment = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(payload) & 3u);
    const uint64_t fused_blocks = bitmask_fused_blocks(job, tiles);
    derive_keys(job.checksum_seed, scratch->keys, lane);  // a tile is longer than xxh3's short inputs
    BitmaskTileHash hash;
    bitmask_hash_begin(hash, lane);
    uint32_t fault = kFaultNone;

    BitmaskSegment<W> segment = bitmask_tile_segment<W>(payload, 0, alignment, lane);
    BitmaskSegment<W> next_segment = tiles > 1 ? bitmask_tile_segment<W>(payload, 1, alignment, lane) : 0;
    uint32_t count = 0;
    uint32_t first = scan_segments(segment, lane, &count);
    uint32_t before = 0;  // the tile's first packed element
    uint32_t offset = tile_copy<W>(payload, job, layout, 0, count, scratch->tile[0], lane);
    asm volatile("cp.async.commit_group;" ::: "memory");
    for (uint32_t t = 0; t < tiles; ++t) {
        uint32_t next_count = 0, next_first = 0, next_offset = 0;
        BitmaskSegment<W> after = 0;
        if (t + 1 < tiles) {
            next_first = scan_segments(next_segment, lane, &next_count);
            next_offset = tile_copy<W>(payload, job, layout, before + count, next_count, scratch->tile[(t + 1) & 1], lane);
        }
        asm volatile("cp.async.commit_group;" ::: "memory");
        if (t + 2 < tiles) after = bitmask_tile_segment<W>(payload, t + 2, alignment, lane);
        asm volatile("cp.async.wait_group 1;" ::: "memory");
        __syncwarp();  // every lane's copies of tile t have landed
        const auto* staged = reinterpret_cast<const uint8_t*>(scratch->tile[t & 1]) + offset;
        fault |= tile_expand<W, Aligned>(segment, first, staged, out + uint64_t{t} * kBitmaskTileBytes, t, fused_blocks, hash, scratch->keys, lane);
        __syncwarp();  // the staging of tile t is free for tile t + 2
        before += count;
        segment = next_segment;
        next_segment = after;
        count = next_count;
        first = next_first;
        offset = next_offset;
    }
    asm volatile("cp.async.wait_all;" ::: "memory");
    fault |= bitmask_decode_lane<W>(lane, job, layout, payload, out, tiles * (64 / W), before);
    fault = __reduce_or_sync(kFullMask, fault);
    if (fault != kFaultNone) return fault;
    __syncwarp();  // the lanes' writes are visible to the whole warp before it hashes the rest
    // WarpXxh3's lane l holds accumulator l % 8, which lane (l % 8) / 2 has.
    const uint32_t position = lane % 8;
    const uint64_t even = __shfl_sync(kFullMask, hash.acc[0], position / 2), odd = __shfl_sync(kFullMask, hash.acc[1], position / 2);
    WarpXxh3 rest(lane);
    rest.acc = (position & 1) ? odd : even;
    return rest.finish(out, job.raw_size, fused_blocks, scratch->keys, lane) == job.checksum ? kFaultNone : kFaultChecksum;
}

template <uint32_t W>
__device__ __forceinline__ uint32_t bitmask_block_any_alignment(const CodecBlockJob& job, const BitmaskLayout& layout, const uint8_t* payload,
                                                                WarpScratch* scratch, uint8_t* out, uint32_t lane) {
    const bool aligned = ((reinterpret_cast<uintptr_t>(payload) + layout.packed) % W) == 0;
    return aligned ? bitmask_block<W, true>(job, layout, payload, scratch, out, lane) : bitmask_block<W, false>(job, layout, payload, scratch, out, lane);
}

__device__ __forceinline__ uint32_t bitmask_tiles(const CodecBlockJob& job, const BitmaskLayout& layout, const uint8_t* payload, WarpScratch* scratch,
                                                  uint8_t* out, uint32_t lane) {
    switch (job.element_width) {
        case 1: return bitmask_block_any_alignment<1>(job, layout, payload, scratch, out, lane);
        case 2: return bitmask_block_any_alignment<2>(job, layout, payload, scratch, out, lane);
        case 4: return bitmask_block_any_alignment<4>(job, layout, payload, scratch, out, lane);
        default: return bitmask_block_any_alignment<8>(job, layout, payload, scratch, out, lane);
    }
}

// One block's lanes: the decoder of its codec, then the checksum over what they wrote.
__device__ __forceinline__ uint32_t decode_block(uint8_t* output, const CodecBlockJob& job, WarpScratch* scratch, uint32_t lane) {
    const auto* payload = reinterpret_cast<const uint8_t*>(job.payload);
    uint8_t* out = output + job.output;
    uint32_t fault = kFaultNone;
    switch (job.codec) {
        case kCodecRaw:
        case kCodecZero:
            fault = constant_layout_fault(job);
            if (fault == kFaultNone) raw_or_zero_lane(job, payload, out, lane);
            break;
        case kCodecFill:
            fault = constant_layout_fault(job);
            if (fault == kFaultNone) constant_decode_lane(lane, job, payload, out);
            break;
        case kCodecBitmask: {
            BitmaskLayout layout{};
            fault = bitmask_layout(payload, job, &layout);
            if (fault == kFaultNone && bitmask_tiles_apply(job, out)) return bitmask_tiles(job, layout, payload, scratch, out, lane);
            if (fault == kFaultNone) fault = bitmask_decode_lane_any(lane, job, layout, payload, out);
            break;
        }
        case kCodecFloat: {
            FloatLayout layout{};
            fault = float_layout(payload, job, &layout);
            if (fault != kFaultNone) return fault;  // the same for every lane: they leave together
            fault = rans_read_frequencies(lane, payload, layout, &scratch->rans);
            __syncwarp();
            fault |= rans_starts(lane, layout, &scratch->rans);
            fault = __reduce_or_sync(kFullMask, fault);
            if (fault != kFaultNone) return fault;
            __syncwarp();
            rans_fill_slots(lane, layout, &scratch->rans);
            __syncwarp();
            return float_block_any(job, layout, payload, scratch, out, lane);
        }
        default: fault = kFaultCodec;
    }
    fault = __reduce_or_sync(kFullMask, fault);
    if (fault != kFaultNone) return fault;
    __syncwarp();  // the lanes' writes are visible to the whole warp before it hashes them
    return warp_xxh3(out, job.raw_size, job.checksum_seed, scratch->keys, lane) == job.checksum ? kFaultNone : kFaultChecksum;
}

}  // namespace

// Decodes `count` blocks, each job's payload at the address in job.payload, its raw bytes at job.output
// from `output`, and writes each block's faults (0 when it decoded and its checksum held). Launched with
// kDecodeWarpsPerBlock warps a thread block and ceil(count / kDecodeWarpsPerBlock) thread blocks. 32 thread
// blocks an SM hold it to 64 registers: the float path needs no more, and the bitmask tiles would
// otherwise take 80 and cost both a third of their warps.
extern "C" __global__ void __launch_bounds__(32 * kDecodeWarpsPerBlock, 32)
    grey_codec_decode(unsigned char* output, const CodecBlockJob* jobs, unsigned int count, unsigned int* faults) {
    __shared__ WarpScratch scratch[kDecodeWarpsPerBlock];
    const uint32_t warp = kDecodeWarpsPerBlock == 1 ? 0 : threadIdx.x / 32, lane = threadIdx.x % 32;
    const uint64_t index = static_cast<uint64_t>(blockIdx.x) * kDecodeWarpsPerBlock + warp;
    if (index >= count) return;
    const CodecBlockJob job = jobs[index];
    const uint32_t fault = decode_block(output, job, &scratch[warp], lane);
    if (lane == 0) faults[index] = fault;
}

// hashes[i] = XXH3-64 of bytes [i * block_size, min(size, (i + 1) * block_size)) of `data`, seeded with
// `seed`: the deduplication filter of runtime/memory/block_store.hpp. One warp per block of the buffer,
// kHashWarpsPerBlock warps a thread block.
extern "C" __global__ void __launch_bounds__(32 * kHashWarpsPerBlock)
    grey_block_hash(const unsigned char* data, unsigned long long size, unsigned int block_size, unsigned long long seed,
                    unsigned long long* hashes) {
    __shared__ uint64_t keys[kHashWarpsPerBlock][kXxh3SecretSize / 8];
    const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const uint64_t index = static_cast<uint64_t>(blockIdx.x) * kHashWarpsPerBlock + warp;
    const uint64_t first = index * block_size;
    if (first >= size) return;
    const uint64_t length = size - first < block_size ? size - first : block_size;
    const uint64_t hash = warp_xxh3(data + first, length, seed, keys[warp], lane);
    if (lane == 0) hashes[index] = hash;
}
