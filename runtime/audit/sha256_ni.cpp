// SHA-256 blocks of up to four messages interleaved on the SHA extensions (sha256_ni.hpp). A file of its
// own, outside the unity build, so that its target attributes stay here.
#include "audit/sha256_ni.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

namespace grey::audit {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
namespace {
#define GREY_SHA_NI __attribute__((target("sha,sse4.1")))

alignas(16) constexpr uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
    0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
    0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
    0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
    0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

// OpenSSL's order (a..h) to the round instruction's (ABEF, CDGH), and back.
GREY_SHA_NI inline __attribute__((always_inline)) void to_rounds_order(const uint32_t* state, __m128i& abef, __m128i& cdgh) {
    const __m128i cdab = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0xb1);
    const __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4)), 0x1b);
    abef = _mm_alignr_epi8(cdab, efgh, 8);
    cdgh = _mm_blend_epi16(efgh, cdab, 0xf0);
}
// abcd = words a..d (lane 0 = a), efgh = e..h.
GREY_SHA_NI inline __attribute__((always_inline)) void to_words(__m128i abef, __m128i cdgh, __m128i& abcd, __m128i& efgh) {
    const __m128i feba = _mm_shuffle_epi32(abef, 0x1b);
    const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xb1);
    abcd = _mm_blend_epi16(feba, dchg, 0xf0);
    efgh = _mm_alignr_epi8(dchg, feba, 8);
}

// One block in each of N streams, given its first sixteen message words (w[s][0] = words 0..3, lane 0
// first), written as the usual SHA-NI block loop (Intel's white paper "New Instructions Supporting the
// Secure Hash Algorithm on Intel Architecture Processors"); the loop over streams is unrolled into one
// instruction stream, which the core interleaves.
template <int N>
GREY_SHA_NI inline __attribute__((always_inline)) void rounds(__m128i (&abef)[N], __m128i (&cdgh)[N], __m128i (&w)[N][4]) {
    __m128i abef_in[N], cdgh_in[N];
#pragma GCC unroll 4
    for (int s = 0; s < N; ++s) {
        abef_in[s] = abef[s];
        cdgh_in[s] = cdgh[s];
    }
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {  // four rounds a step
        const __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(round_constants + 4 * g));
#pragma GCC unroll 4
        for (int s = 0; s < N; ++s) {
            __m128i& word = w[s][g & 3];
            if (g >= 4) {
                // w[g] = msg2(msg1(w[g-4], w[g-3]) + (w[g-1]:w[g-2] >> 4 bytes), w[g-1]); w[g-4] is the slot it replaces.
                const __m128i tail = _mm_alignr_epi8(w[s][(g - 1) & 3], w[s][(g - 2) & 3], 4);
                word = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(word, w[s][(g - 3) & 3]), tail), w[s][(g - 1) & 3]);
            }
            const __m128i message = _mm_add_epi32(word, k);
            cdgh[s] = _mm_sha256rnds2_epu32(cdgh[s], abef[s], message);
            abef[s] = _mm_sha256rnds2_epu32(abef[s], cdgh[s], _mm_shuffle_epi32(message, 0x0e));
        }
    }
#pragma GCC unroll 4
    for (int s = 0; s < N; ++s) {
        abef[s] = _mm_add_epi32(abef[s], abef_in[s]);
        cdgh[s] = _mm_add_epi32(cdgh[s], cdgh_in[s]);
    }
}

GREY_SHA_NI inline __attribute__((always_inline)) __m128i load_words(const uint8_t* p) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);  // big-endian words
    return _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), swap);
}

// N streams of `blocks` blocks each.
template <int N>
GREY_SHA_NI void compress(uint32_t* const* state, const uint8_t* const* data, size_t blocks) {
    __m128i abef[N], cdgh[N];
#pragma GCC unroll 4
    for (int s = 0; s < N; ++s) to_rounds_order(state[s], abef[s], cdgh[s]);
    for (size_t b = 0; b < blocks; ++b) {
        __m128i w[N][4];
#pragma GCC unroll 4
        for (int s = 0; s < N; ++s)
#pragma GCC unroll 4
            for (int g = 0; g < 4; ++g) w[s][g] = load_words(data[s] + 64 * b + 16 * g);
        rounds<N>(abef, cdgh, w);
    }
#pragma GCC unroll 4
    for (int s = 0; s < N; ++s) {
        __m128i abcd, efgh;
        to_words(abef[s], cdgh[s], abcd, efgh);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(state[s]), abcd);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(state[s] + 4), efgh);
    }
}

}  // namespace

void sha256_ni_blocks(uint32_t* const* state, const uint8_t* const* data, size_t count, size_t blocks) {
    switch (count) {
        case 1: compress<1>(state, data, blocks); break;
        case 2: compress<2>(state, data, blocks); break;
        case 3: compress<3>(state, data, blocks); break;
        case 4:
            // Four streams' words and states outgrow the sixteen registers the SHA instructions can name
            // (the round instruction's message is always xmm0); two pairs measured as fast on the
            // records' hashes and faster on long runs of blocks (102 against 114 TSC ticks a block pair).
            compress<2>(state, data, blocks);
            compress<2>(state + 2, data + 2, blocks);
            break;
        default: break;
    }
}

bool have_sha256_ni() {
    // __builtin_cpu_supports reads what the CPU reported at start-up; the answer never changes.
    static const bool have = __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1");
    return have;
}
#else
bool have_sha256_ni() { return false; }
void sha256_ni_blocks(uint32_t* const*, const uint8_t* const*, size_t, size_t) {}
#endif

}  // namespace grey::audit
