// The plain run of a JSON string (json_scan.hpp). A file of its own, outside the unity build, so that
// the target attributes stay here.
#include "audit/json_scan.hpp"

#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// GCC 12's AVX-512 headers make their "undefined" registers by self-initialisation (GCC bug 105593),
// which its own uninitialised-use warnings then flag wherever an intrinsic is inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#define GREY_JSON_AVX512 1
#endif

namespace grey::audit {

namespace {
// Whether any of the eight bytes of `word` needs a closer look: a quote, a backslash, a control
// character, or a byte of a multi-byte UTF-8 sequence. (Each test is exact for "any byte": a borrow can
// only mark a byte above one that already matched.)
bool needs_a_look(uint64_t word) {
    constexpr uint64_t ones = 0x0101010101010101ull;
    constexpr uint64_t high_bits = 0x8080808080808080ull;
    auto any_zero = [&](uint64_t v) { return (v - ones) & ~v & high_bits; };
    const uint64_t below_space = (word - ones * 0x20) & ~word & high_bits;
    return (any_zero(word ^ (ones * '"')) | any_zero(word ^ (ones * '\\')) | below_space | (word & high_bits)) != 0;
}

bool plain(uint8_t c) { return c != '"' && c != '\\' && c >= 0x20 && c < 0x80; }

size_t plain_run_words(const uint8_t* p, size_t n) {
    size_t i = 0;
    for (uint64_t word = 0; n - i >= 8; i += 8) {
        std::memcpy(&word, p + i, sizeof word);
        if (needs_a_look(word)) break;
    }
    while (i < n && plain(p[i])) ++i;
    return i;
}

#if defined(GREY_JSON_AVX512)
__attribute__((target("avx512f,avx512bw"))) size_t plain_run_avx512(const uint8_t* p, size_t n) {
    const __m512i quote = _mm512_set1_epi8('"'), backslash = _mm512_set1_epi8('\\'), space = _mm512_set1_epi8(0x20);
    for (size_t i = 0; i < n; i += 64) {
        // The last piece is loaded under a mask: bytes past the end are never read (nor fault).
        const __mmask64 valid = n - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (n - i)) - 1;
        const __m512i bytes = _mm512_maskz_loadu_epi8(valid, p + i);
        const __mmask64 look = (_mm512_cmpeq_epi8_mask(bytes, quote) | _mm512_cmpeq_epi8_mask(bytes, backslash) |
                                _mm512_cmplt_epu8_mask(bytes, space) | _mm512_movepi8_mask(bytes)) &
                               valid;
        if (look != 0) return i + static_cast<size_t>(__builtin_ctzll(look));
    }
    return n;
}

bool have_avx512() {
    // __builtin_cpu_supports reads what the CPU reported at start-up; the answer never changes.
    static const bool have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    return have;
}
#endif
}  // namespace

size_t plain_run(const uint8_t* p, size_t n, JsonScan scan) {
#if defined(GREY_JSON_AVX512)
    if (scan == JsonScan::Any && have_avx512()) return plain_run_avx512(p, n);
#endif
    (void)scan;
    return plain_run_words(p, n);
}

}  // namespace grey::audit
