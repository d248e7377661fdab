// SHA-256 blocks of up to four messages interleaved on the SHA extensions (sha256_ni.hpp). A file of its
// own, outside the unity build, so that its target attributes stay here.
#include "audit/sha256_ni.hpp"

#include "audit/sha256_constants.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace grey::audit {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
namespace {
#define GREY_SHA_NI __attribute__((target("sha,sse4.1")))


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
        const __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kSha256RoundConstants + 4 * g));
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
    // CPUID itself: clang before 15 knows no "sha" for __builtin_cpu_supports. SHA is leaf 7's EBX bit
    // 29, SSE4.1 leaf 1's ECX bit 19; both use only the XMM state every x86-64 system saves.
    static const bool have = [] {
        unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
        if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || (ecx & (1u << 19)) == 0) return false;
        return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0 && (ebx & (1u << 29)) != 0;
    }();
    return have;
}
#else
bool have_sha256_ni() { return false; }
void sha256_ni_blocks(uint32_t* const*, const uint8_t* const*, size_t, size_t) {}
#endif

}  // namespace grey::audit
