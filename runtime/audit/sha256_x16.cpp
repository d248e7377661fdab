// SHA-256 of up to 16 short messages at once in AVX-512 registers (sha256_x16.hpp). A file of its own,
// outside the unity build, so that the pragmas below and the target attributes stay here.
#include "audit/sha256_x16.hpp"

#include "audit/sha256_constants.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// GCC 12's AVX-512 headers make their "undefined" registers by self-initialisation (GCC bug 105593),
// which its own uninitialised-use warnings then flag wherever an intrinsic is inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace grey::audit {

namespace {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GREY_SHA_X16 __attribute__((target("avx512f,avx512bw")))


// The 64 rounds of one block in each of the 16 lanes, on the message words `w` (big-endian words, as
// loaded), added into `state`.
GREY_SHA_X16 inline __attribute__((always_inline)) void rounds_x16(__m512i state[8], __m512i (&w)[16]) {
    __m512i a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6], h = state[7];
    // Unrolled, so that the schedule's sixteen words stay in registers (their indices become constants).
#pragma GCC unroll 64
    for (int t = 0; t < 64; ++t) {
        if (t >= 16) {
            const __m512i w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
            const __m512i s0 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(w15, 7), _mm512_ror_epi32(w15, 18), _mm512_srli_epi32(w15, 3), 0x96);
            const __m512i s1 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(w2, 17), _mm512_ror_epi32(w2, 19), _mm512_srli_epi32(w2, 10), 0x96);
            w[t & 15] = _mm512_add_epi32(_mm512_add_epi32(w[t & 15], s0), _mm512_add_epi32(s1, w[(t - 7) & 15]));
        }
        const __m512i big_s1 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25), 0x96);
        const __m512i ch = _mm512_ternarylogic_epi32(e, f, g, 0xca);
        const __m512i t1 = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(h, big_s1), _mm512_add_epi32(ch, w[t & 15])),
                                            _mm512_set1_epi32(static_cast<int>(kSha256RoundConstants[t])));
        const __m512i big_s0 = _mm512_ternarylogic_epi32(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22), 0x96);
        const __m512i maj = _mm512_ternarylogic_epi32(a, b, c, 0xe8);
        h = g;
        g = f;
        f = e;
        e = _mm512_add_epi32(d, t1);
        d = c;
        c = b;
        b = a;
        a = _mm512_add_epi32(t1, _mm512_add_epi32(big_s0, maj));
    }
    state[0] = _mm512_add_epi32(state[0], a);
    state[1] = _mm512_add_epi32(state[1], b);
    state[2] = _mm512_add_epi32(state[2], c);
    state[3] = _mm512_add_epi32(state[3], d);
    state[4] = _mm512_add_epi32(state[4], e);
    state[5] = _mm512_add_epi32(state[5], f);
    state[6] = _mm512_add_epi32(state[6], g);
    state[7] = _mm512_add_epi32(state[7], h);
}

// One 64-byte block for each of the 16 lanes; lane l's block starts at base + l * stride.
GREY_SHA_X16 void compress_x16(__m512i state[8], const uint8_t* base, int stride) {
    const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(stride / 4));
    const __m512i swap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);  // big-endian words
    __m512i w[16];
#pragma GCC unroll 16
    for (int t = 0; t < 16; ++t)
        w[t] = _mm512_shuffle_epi8(_mm512_i32gather_epi32(_mm512_add_epi32(index, _mm512_set1_epi32(t)), base, 4), swap);
    rounds_x16(state, w);
}

// One 64-byte block for each of the 16 lanes, lane l's at base + at[l] (byte offsets, scale 1): gathered
// straight from the records, which may have any lengths and places, with no copy. `first_byte` >= 0:
// the block is that byte followed by the 63 bytes at base + at[l] + 1 (at[l] then points one byte
// before them; that byte is never read).
GREY_SHA_X16 void compress_x16_at(__m512i state[8], const uint8_t* base, __m512i at, int first_byte) {
    const __m512i swap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    __m512i w[16];
#pragma GCC unroll 16
    for (int t = 0; t < 16; ++t) {
        // Word 0 with a leading byte is read one byte on (bytes 1..4, of which 1..3 are used), so that
        // nothing before the message is read.
        const int shift = t == 0 && first_byte >= 0 ? 1 : 0;
        w[t] = _mm512_shuffle_epi8(_mm512_i32gather_epi32(_mm512_add_epi32(at, _mm512_set1_epi32(4 * t + shift)), base, 1), swap);
    }
    if (first_byte >= 0)
        w[0] = _mm512_or_si512(_mm512_srli_epi32(w[0], 8), _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(first_byte) << 24)));
    rounds_x16(state, w);
}

// out[l] = the digest of messages[l] (`length` bytes, at most multi_max_length) hashed on from the
// chaining value `iv`, which has absorbed `prior_bytes` (a multiple of 64) already; l < count <= 16.
GREY_SHA_X16 void sha256_x16_avx512(const uint32_t iv[8], uint64_t prior_bytes, const uint8_t* const* messages, size_t count, size_t length,
                                    Hash* out, bool secret) {
    const size_t blocks = (length + 9 + SHA256_CBLOCK - 1) / SHA256_CBLOCK;
    const int stride = static_cast<int>(blocks * SHA256_CBLOCK);
    alignas(64) std::array<uint8_t, sha256_x16_lanes * 4 * SHA256_CBLOCK> padded;
    const uint64_t bits_be = __builtin_bswap64((prior_bytes + length) * 8);
    for (size_t l = 0; l < sha256_x16_lanes; ++l) {
        uint8_t* p = padded.data() + l * static_cast<size_t>(stride);
        std::memcpy(p, messages[l < count ? l : 0], length);  // idle lanes hash a copy of lane 0
        p[length] = 0x80;
        std::memset(p + length + 1, 0, static_cast<size_t>(stride) - 8 - length - 1);
        std::memcpy(p + stride - 8, &bits_be, 8);
    }
    __m512i state[8];
    for (int i = 0; i < 8; ++i) state[i] = _mm512_set1_epi32(static_cast<int>(iv[i]));
    for (size_t b = 0; b < blocks; ++b) compress_x16(state, padded.data() + b * SHA256_CBLOCK, stride);
    alignas(64) std::array<uint32_t, 8 * sha256_x16_lanes> words;
    for (int i = 0; i < 8; ++i) _mm512_store_si512(words.data() + i * sha256_x16_lanes, state[i]);
    for (size_t l = 0; l < count; ++l)
        for (size_t i = 0; i < 8; ++i) {
            const uint32_t word = __builtin_bswap32(words[i * sha256_x16_lanes + l]);
            std::memcpy(out[l].data() + 4 * i, &word, 4);
        }
    if (secret) {
        // The states continue a key's pads: wiped like every working copy of them.
        OPENSSL_cleanse(words.data(), sizeof words);
        OPENSSL_cleanse(padded.data(), sha256_x16_lanes * static_cast<size_t>(stride));
    }
}

GREY_SHA_X16 void sha256_x16_blocks_avx512(const uint32_t iv[8], const uint8_t* base, const int32_t* offsets, size_t count, int first_byte,
                                           size_t blocks, uint32_t (&out)[8][sha256_x16_lanes]) {
    alignas(64) std::array<int32_t, sha256_x16_lanes> start;
    for (size_t l = 0; l < sha256_x16_lanes; ++l) start[l] = offsets[l < count ? l : 0] - (first_byte >= 0 ? 1 : 0);  // idle lanes: lane 0's
    __m512i at = _mm512_load_si512(start.data());
    __m512i state[8];
    for (int i = 0; i < 8; ++i) state[i] = _mm512_set1_epi32(static_cast<int>(iv[i]));
    if (blocks > 0) {
        compress_x16_at(state, base, at, first_byte);
        for (size_t b = 1; b < blocks; ++b) {
            at = _mm512_add_epi32(at, _mm512_set1_epi32(64));
            compress_x16_at(state, base, at, -1);
        }
    }
    for (int i = 0; i < 8; ++i) _mm512_storeu_si512(out[i], state[i]);
}

}  // namespace

void sha256_x16_blocks(const uint32_t iv[8], const uint8_t* base, const int32_t* offsets, size_t count, int first_byte, size_t blocks,
                       uint32_t (&state)[8][sha256_x16_lanes]) {
    sha256_x16_blocks_avx512(iv, base, offsets, count, first_byte, blocks, state);
}

void sha256_x16(const uint32_t iv[8], uint64_t prior_bytes, const uint8_t* const* messages, size_t count, size_t length, Hash* out,
                bool secret) {
    sha256_x16_avx512(iv, prior_bytes, messages, count, length, out, secret);
}

bool have_sha256_x16() {
    // __builtin_cpu_supports reads what the CPU reported at start-up; the answer never changes.
    static const bool have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    return have;
}
#else
}  // namespace

bool have_sha256_x16() { return false; }
void sha256_x16(const uint32_t*, uint64_t, const uint8_t* const*, size_t, size_t, Hash*, bool) {}
void sha256_x16_blocks(const uint32_t*, const uint8_t*, const int32_t*, size_t, int, size_t, uint32_t (&)[8][sha256_x16_lanes]) {}
#endif

}  // namespace grey::audit
