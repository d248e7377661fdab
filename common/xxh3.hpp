// XXH3-64 (xxHash 0.8's XXH3_64bits_withSeed) written once for the host and the device: the LT-Block
// container's block checksums (docs/codecs.md) are this hash, and a GPU that decodes a container checks
// each block against it before the bytes count as decoded. The host's own code uses libxxhash; this
// header is what a kernel (and the fake CUDA driver that stands in for one) computes, and
// tests/codec/test_device_codec.cpp checks it against libxxhash for every length class and many seeds.
//
// The long-input path is spelt as its parts (an accumulator, a stripe, a scramble, the merge) because
// a warp computes it differently from one thread: the sums of one 1 KiB block's stripes commute, so 32
// lanes each add a share of them and combine before the block's scramble (kernels/cuda/codec_decode.cu).
#pragma once

#include "common/hostdevice.h"

#include <stdint.h>

namespace grey::common {

inline constexpr uint32_t kXxh3SecretSize = 192;
inline constexpr uint32_t kXxh3StripeBytes = 64;
inline constexpr uint32_t kXxh3BlockBytes = 1024;      // 16 stripes, then a scramble
inline constexpr uint32_t kXxh3BlockStripes = 16;
inline constexpr uint32_t kXxh3ShortMax = 240;         // longer inputs take the accumulator path
inline constexpr uint32_t kXxh3ScrambleAt = kXxh3SecretSize - kXxh3StripeBytes;   // 128
inline constexpr uint32_t kXxh3LastStripeAt = kXxh3ScrambleAt - 7;               // 121
inline constexpr uint32_t kXxh3MergeAt = 11;

inline constexpr uint64_t kXxhPrime32_1 = 0x9E3779B1u;
inline constexpr uint64_t kXxhPrime32_2 = 0x85EBCA77u;
inline constexpr uint64_t kXxhPrime32_3 = 0xC2B2AE3Du;
inline constexpr uint64_t kXxhPrime64_1 = 0x9E3779B185EBCA87ull;
inline constexpr uint64_t kXxhPrime64_2 = 0xC2B2AE3D27D4EB4Full;
inline constexpr uint64_t kXxhPrime64_3 = 0x165667B19E3779F9ull;
inline constexpr uint64_t kXxhPrime64_4 = 0x85EBCA77C2B2AE63ull;
inline constexpr uint64_t kXxhPrime64_5 = 0x27D4EB2F165667C5ull;

// The default secret (xxHash's kSecret); a seed other than 0 derives another from it for long inputs.
GREY_TABLE(uint8_t, kXxh3DefaultSecret, kXxh3SecretSize) = {
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
};

// Byte-wise little-endian reads: container payloads and secret offsets are not aligned.
GREY_FN_FORCE uint64_t xxh_read64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
GREY_FN_FORCE uint32_t xxh_read32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
           static_cast<uint32_t>(p[3]) << 24;
}
GREY_FN_FORCE uint64_t xxh_rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
GREY_FN_FORCE uint64_t xxh_swap64(uint64_t x) {
    uint64_t r = 0;
    for (int i = 0; i < 8; ++i) r = (r << 8) | ((x >> (8 * i)) & 0xFFu);
    return r;
}
GREY_FN_FORCE uint32_t xxh_swap32(uint32_t x) {
    return (x >> 24) | ((x >> 8) & 0xFF00u) | ((x << 8) & 0xFF0000u) | (x << 24);
}

// The low and high halves of the 128-bit product, xored.
GREY_FN_FORCE uint64_t xxh_mul128_fold64(uint64_t a, uint64_t b) {
#if defined(__CUDA_ARCH__)
    return (a * b) ^ __umul64hi(a, b);
#else
    __extension__ using u128 = unsigned __int128;  // GCC and Clang: one 64x64 -> 128-bit multiply
    const u128 product = static_cast<u128>(a) * b;
    return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
#endif
}

GREY_FN_FORCE uint64_t xxh64_avalanche(uint64_t h) {
    h ^= h >> 33;
    h *= kXxhPrime64_2;
    h ^= h >> 29;
    h *= kXxhPrime64_3;
    return h ^ (h >> 32);
}
GREY_FN_FORCE uint64_t xxh3_avalanche(uint64_t h) {
    h ^= h >> 37;
    h *= 0x165667919E3779F9ull;
    return h ^ (h >> 32);
}
GREY_FN_FORCE uint64_t xxh3_rrmxmx(uint64_t h, uint64_t len) {
    h ^= xxh_rotl64(h, 49) ^ xxh_rotl64(h, 24);
    h *= 0x9FB21C651E98DF25ull;
    h ^= (h >> 35) + len;
    h *= 0x9FB21C651E98DF25ull;
    return h ^ (h >> 28);
}
GREY_FN_FORCE uint64_t xxh3_mix16(const uint8_t* input, const uint8_t* secret, uint64_t seed) {
    return xxh_mul128_fold64(xxh_read64(input) ^ (xxh_read64(secret) + seed), xxh_read64(input + 8) ^ (xxh_read64(secret + 8) - seed));
}

// Inputs of at most 240 bytes, with the default secret.
GREY_FN uint64_t xxh3_short(const uint8_t* input, uint64_t len, uint64_t seed) {
    const uint8_t* secret = kXxh3DefaultSecret;
    if (len <= 16) {
        if (len > 8) {
            const uint64_t lo = xxh_read64(input) ^ ((xxh_read64(secret + 24) ^ xxh_read64(secret + 32)) + seed);
            const uint64_t hi = xxh_read64(input + len - 8) ^ ((xxh_read64(secret + 40) ^ xxh_read64(secret + 48)) - seed);
            return xxh3_avalanche(len + xxh_swap64(lo) + hi + xxh_mul128_fold64(lo, hi));
        }
        if (len >= 4) {
            const uint64_t s = seed ^ (static_cast<uint64_t>(xxh_swap32(static_cast<uint32_t>(seed))) << 32);
            const uint64_t joined = xxh_read32(input + len - 4) + (static_cast<uint64_t>(xxh_read32(input)) << 32);
            return xxh3_rrmxmx(joined ^ ((xxh_read64(secret + 8) ^ xxh_read64(secret + 16)) - s), len);
        }
        if (len > 0) {
            const uint32_t combined = static_cast<uint32_t>(input[0]) << 16 | static_cast<uint32_t>(input[len >> 1]) << 24 |
                                      static_cast<uint32_t>(input[len - 1]) | static_cast<uint32_t>(len) << 8;
            return xxh64_avalanche(combined ^ ((xxh_read32(secret) ^ xxh_read32(secret + 4)) + seed));
        }
        return xxh64_avalanche(seed ^ xxh_read64(secret + 56) ^ xxh_read64(secret + 64));
    }
    uint64_t acc = len * kXxhPrime64_1;
    if (len <= 128) {
        if (len > 32) {
            if (len > 64) {
                if (len > 96) {
                    acc += xxh3_mix16(input + 48, secret + 96, seed);
                    acc += xxh3_mix16(input + len - 64, secret + 112, seed);
                }
                acc += xxh3_mix16(input + 32, secret + 64, seed);
                acc += xxh3_mix16(input + len - 48, secret + 80, seed);
            }
            acc += xxh3_mix16(input + 16, secret + 32, seed);
            acc += xxh3_mix16(input + len - 32, secret + 48, seed);
        }
        acc += xxh3_mix16(input, secret, seed);
        acc += xxh3_mix16(input + len - 16, secret + 16, seed);
        return xxh3_avalanche(acc);
    }
    for (uint32_t i = 0; i < 8; ++i) acc += xxh3_mix16(input + 16 * i, secret + 16 * i, seed);
    acc = xxh3_avalanche(acc);
    for (uint32_t i = 8; i < len / 16; ++i) acc += xxh3_mix16(input + 16 * i, secret + 16 * (i - 8) + 3, seed);
    acc += xxh3_mix16(input + len - 16, secret + 136 - 17, seed);
    return xxh3_avalanche(acc);
}

// The secret of long inputs for `seed` (the default one for seed 0).
GREY_FN void xxh3_derive_secret(uint64_t seed, uint8_t* out) {
    for (uint32_t i = 0; i < kXxh3SecretSize / 16; ++i) {
        const uint64_t lo = xxh_read64(kXxh3DefaultSecret + 16 * i) + seed;
        const uint64_t hi = xxh_read64(kXxh3DefaultSecret + 16 * i + 8) - seed;
        for (uint32_t b = 0; b < 8; ++b) {
            out[16 * i + b] = static_cast<uint8_t>(lo >> (8 * b));
            out[16 * i + 8 + b] = static_cast<uint8_t>(hi >> (8 * b));
        }
    }
}

// The long path's eight accumulators start here.
GREY_FN_FORCE uint64_t xxh3_initial_accumulator(uint32_t i) {
    switch (i) {
        case 0: return kXxhPrime32_3;
        case 1: return kXxhPrime64_1;
        case 2: return kXxhPrime64_2;
        case 3: return kXxhPrime64_3;
        case 4: return kXxhPrime64_4;
        case 5: return kXxhPrime32_2;
        case 6: return kXxhPrime64_5;
        default: return kXxhPrime32_1;
    }
}

// What the 8-byte word `value` at position i (0..7) of a stripe adds: `product` to accumulator i, the
// word itself to accumulator i ^ 1. `key` is the secret's word for that position.
GREY_FN_FORCE uint64_t xxh3_word_product(uint64_t value, uint64_t key) {
    const uint64_t keyed = value ^ key;
    return (keyed & 0xFFFFFFFFu) * (keyed >> 32);
}

GREY_FN_FORCE uint64_t xxh3_scramble(uint64_t accumulator, uint64_t key) {
    accumulator ^= accumulator >> 47;
    accumulator ^= key;
    return accumulator * kXxhPrime32_1;
}

GREY_FN uint64_t xxh3_merge(const uint64_t* acc, const uint8_t* secret, uint64_t len) {
    uint64_t result = len * kXxhPrime64_1;
    for (uint32_t i = 0; i < 4; ++i)
        result += xxh_mul128_fold64(acc[2 * i] ^ xxh_read64(secret + kXxh3MergeAt + 16 * i),
                                    acc[2 * i + 1] ^ xxh_read64(secret + kXxh3MergeAt + 16 * i + 8));
    return xxh3_avalanche(result);
}

GREY_FN_FORCE void xxh3_stripe(uint64_t* acc, const uint8_t* input, const uint8_t* secret) {
    for (uint32_t i = 0; i < 8; ++i) {
        const uint64_t value = xxh_read64(input + 8 * i);
        acc[i ^ 1] += value;
        acc[i] += xxh3_word_product(value, xxh_read64(secret + 8 * i));
    }
}

// The stripes a long input accumulates before its last one (which is always at len - 64): whole 1 KiB
// blocks, each followed by a scramble, and then the stripes of the last partial block.
GREY_FN_FORCE uint64_t xxh3_full_blocks(uint64_t len) { return (len - 1) / kXxh3BlockBytes; }
GREY_FN_FORCE uint64_t xxh3_tail_stripes(uint64_t len) {
    return ((len - 1) - kXxh3BlockBytes * xxh3_full_blocks(len)) / kXxh3StripeBytes;
}

// The rest of a long input from accumulators that already hold its first `from_block` 1 KiB blocks
// (a decoder that hashed those while it wrote them).
GREY_FN uint64_t xxh3_long_from(uint64_t* acc, const uint8_t* input, uint64_t len, uint64_t from_block, const uint8_t* secret) {
    const uint64_t blocks = xxh3_full_blocks(len);
    for (uint64_t b = from_block; b < blocks; ++b) {
        for (uint32_t s = 0; s < kXxh3BlockStripes; ++s)
            xxh3_stripe(acc, input + b * kXxh3BlockBytes + s * kXxh3StripeBytes, secret + 8 * s);
        for (uint32_t i = 0; i < 8; ++i) acc[i] = xxh3_scramble(acc[i], xxh_read64(secret + kXxh3ScrambleAt + 8 * i));
    }
    const uint64_t stripes = xxh3_tail_stripes(len);
    for (uint64_t s = 0; s < stripes; ++s) xxh3_stripe(acc, input + blocks * kXxh3BlockBytes + s * kXxh3StripeBytes, secret + 8 * s);
    xxh3_stripe(acc, input + len - kXxh3StripeBytes, secret + kXxh3LastStripeAt);
    return xxh3_merge(acc, secret, len);
}
// Inputs longer than 240 bytes, with a secret from xxh3_derive_secret.
GREY_FN uint64_t xxh3_long(const uint8_t* input, uint64_t len, const uint8_t* secret) {
    uint64_t acc[8];
    for (uint32_t i = 0; i < 8; ++i) acc[i] = xxh3_initial_accumulator(i);
    return xxh3_long_from(acc, input, len, 0, secret);
}

// XXH3_64bits_withSeed(input, len, seed).
GREY_FN uint64_t xxh3_64(const uint8_t* input, uint64_t len, uint64_t seed) {
    if (len <= kXxh3ShortMax) return xxh3_short(input, len, seed);
    uint8_t secret[kXxh3SecretSize];
    xxh3_derive_secret(seed, secret);
    return xxh3_long(input, len, secret);
}

}  // namespace grey::common
