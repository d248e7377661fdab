// Deterministic inputs for the codec tests and the GPU codec conformance: random bytes and element
// patterns. No test framework, so that tests/gpu builds it without GoogleTest.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace grey::codec::test {

inline std::vector<std::byte> random_bytes(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::byte> out(n);
    for (auto& b : out) b = static_cast<std::byte>(rng() & 0xFFu);
    return out;
}

// `n` elements of `pattern(i)` (as many bytes as the element type T has), cut to `bytes` bytes.
template <typename T, typename Pattern>
std::vector<std::byte> elements(size_t bytes, Pattern pattern) {
    std::vector<std::byte> out(bytes);
    for (size_t i = 0; i * sizeof(T) < bytes; ++i) {
        const T value = pattern(i);
        std::memcpy(out.data() + i * sizeof(T), &value, std::min(sizeof(T), bytes - i * sizeof(T)));
    }
    return out;
}

}  // namespace grey::codec::test
