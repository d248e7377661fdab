// The LT-Block container on the GPU: decoding blocks (raw, zero, fill, bitmask, float) with their
// checksums checked, and the deduplication hash of a buffer's blocks. One warp per block; the decoders
// are common/codec_decode.hpp's lane functions, the hash is common/xxh3.hpp's long path with the stripes
// of each 1 KiB block shared among the lanes. Compiled into a fatbin like grey_kernels.cu.

#include "common/codec_decode.hpp"
#include "common/xxh3.hpp"

#include <stdint.h>

namespace {

using namespace grey::common;

constexpr uint32_t kFullMask = 0xFFFFFFFFu;
constexpr uint32_t kWarpsPerBlock = 4;

struct WarpScratch {
    RansWorkspace rans;
    uint8_t secret[kXxh3SecretSize];
};

__device__ uint64_t load_u64(const uint8_t* p, bool aligned) {
    return aligned ? *reinterpret_cast<const uint64_t*>(p) : xxh_read64(p);
}

// XXH3-64 of `len` bytes by the 32 lanes of a warp, every lane getting the result. The lane's
// accumulator is number lane % 8 (four copies of the eight); in each 1 KiB block lane l takes the
// words l, l + 32, l + 64 and l + 96, all at stripe position l % 8, and the copies sum their shares.
__device__ uint64_t warp_xxh3(const uint8_t* input, uint64_t len, uint64_t seed, uint8_t* secret, uint32_t lane) {
    if (len <= kXxh3ShortMax) return xxh3_short(input, len, seed);
    if (lane < kXxh3SecretSize / 8) {
        const uint64_t word = xxh_read64(kXxh3DefaultSecret + 8 * lane) + ((lane & 1u) == 0 ? seed : 0 - seed);
        for (uint32_t b = 0; b < 8; ++b) secret[8 * lane + b] = static_cast<uint8_t>(word >> (8 * b));
    }
    __syncwarp();
    const uint32_t position = lane % 8;
    const bool aligned = (reinterpret_cast<uintptr_t>(input) & 7u) == 0;
    uint64_t acc = xxh3_initial_accumulator(position);
    // Adds the words of stripes [0, stripes) of `block` with the secret from offset 0.
    const auto accumulate = [&](const uint8_t* block, uint32_t stripes) {
        uint64_t products = 0, values = 0;
        for (uint32_t k = lane; k < stripes * 8; k += 32) {
            const uint64_t value = load_u64(block + 8 * k, aligned);
            products += xxh3_word_product(value, xxh_read64(secret + 8 * (k / 8) + 8 * position));
            values += value;
        }
        products += __shfl_xor_sync(kFullMask, products, 8);
        products += __shfl_xor_sync(kFullMask, products, 16);
        values += __shfl_xor_sync(kFullMask, values, 8);
        values += __shfl_xor_sync(kFullMask, values, 16);
        acc += products + __shfl_xor_sync(kFullMask, values, 1);  // a word also adds to its neighbour's accumulator
    };
    const uint64_t blocks = xxh3_full_blocks(len);
    for (uint64_t b = 0; b < blocks; ++b) {
        accumulate(input + b * kXxh3BlockBytes, kXxh3BlockStripes);
        acc = xxh3_scramble(acc, xxh_read64(secret + kXxh3ScrambleAt + 8 * position));
    }
    accumulate(input + blocks * kXxh3BlockBytes, static_cast<uint32_t>(xxh3_tail_stripes(len)));
    // The last stripe: each copy computes its own word (no sharing needed).
    const uint64_t value = xxh_read64(input + len - kXxh3StripeBytes + 8 * position);
    const uint64_t product = xxh3_word_product(value, xxh_read64(secret + kXxh3LastStripeAt + 8 * position));
    acc += product + __shfl_xor_sync(kFullMask, value, 1);
    uint64_t all[8];
    for (uint32_t i = 0; i < 8; ++i) all[i] = __shfl_sync(kFullMask, acc, i);
    return xxh3_merge(all, secret, len);
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

// One block's lanes: the decoder of its codec, then the checksum over what they wrote.
__device__ uint32_t decode_block(uint8_t* output, const CodecBlockJob& job, WarpScratch* scratch, uint32_t lane) {
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
            if (fault == kFaultNone) fault = bitmask_decode_lane_any(lane, job, layout, payload, out);
            break;
        }
        case kCodecFloat: {
            FloatLayout layout{};
            fault = float_layout(payload, job, &layout);
            if (fault != kFaultNone) break;  // the same for every lane: they leave together
            fault = rans_read_frequencies(lane, payload, layout, &scratch->rans);
            __syncwarp();
            fault |= rans_starts(lane, layout, &scratch->rans);
            fault = __reduce_or_sync(kFullMask, fault);
            if (fault != kFaultNone) break;
            __syncwarp();
            rans_fill_slots(lane, layout, &scratch->rans);
            __syncwarp();
            fault = float_decode_lane_any(lane, job, layout, payload, &scratch->rans, out);
            break;
        }
        default: fault = kFaultCodec;
    }
    fault = __reduce_or_sync(kFullMask, fault);
    if (fault != kFaultNone) return fault;
    __syncwarp();  // the lanes' writes are visible to the whole warp before it hashes them
    return warp_xxh3(out, job.raw_size, job.checksum_seed, scratch->secret, lane) == job.checksum ? kFaultNone : kFaultChecksum;
}

}  // namespace

// Decodes `count` blocks, each job's payload at the address in job.payload, its raw bytes at job.output
// from `output`, and writes each block's faults (0 when it decoded and its checksum held). Launched with
// kWarpsPerBlock warps a thread block and ceil(count / kWarpsPerBlock) thread blocks.
extern "C" __global__ void __launch_bounds__(32 * kWarpsPerBlock)
    grey_codec_decode(unsigned char* output, const CodecBlockJob* jobs, unsigned int count, unsigned int* faults) {
    __shared__ WarpScratch scratch[kWarpsPerBlock];
    const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const uint64_t index = static_cast<uint64_t>(blockIdx.x) * kWarpsPerBlock + warp;
    if (index >= count) return;
    const CodecBlockJob job = jobs[index];
    const uint32_t fault = decode_block(output, job, &scratch[warp], lane);
    if (lane == 0) faults[index] = fault;
}

// hashes[i] = XXH3-64 of bytes [i * block_size, min(size, (i + 1) * block_size)) of `data`, seeded with
// `seed`: the deduplication filter of runtime/memory/block_store.hpp. Same launch shape as above, one
// warp per block of the buffer.
extern "C" __global__ void __launch_bounds__(32 * kWarpsPerBlock)
    grey_block_hash(const unsigned char* data, unsigned long long size, unsigned int block_size, unsigned long long seed,
                    unsigned long long* hashes) {
    __shared__ uint8_t secrets[kWarpsPerBlock][kXxh3SecretSize];
    const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const uint64_t index = static_cast<uint64_t>(blockIdx.x) * kWarpsPerBlock + warp;
    const uint64_t first = index * block_size;
    if (first >= size) return;
    const uint64_t length = size - first < block_size ? size - first : block_size;
    const uint64_t hash = warp_xxh3(data + first, length, seed, secrets[warp], lane);
    if (lane == 0) hashes[index] = hash;
}
