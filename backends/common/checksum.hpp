// The buffer checksum that grey_buffer_checksum defines, on the host. GPU kernels compute the same sum
// (kernels/cuda/grey_kernels.cu); the runtime's fallback and the host backend use this one, so the
// constants live in exactly two places and the conformance suite compares them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace grey::backend {

inline constexpr uint64_t kChecksumWeightStep = 0x9E3779B97F4A7C15ull;
inline constexpr uint64_t kChecksumWeightBase = 0xD6E8FEB86659FD93ull;

// Adds the contribution of `bytes`, whose first byte has index `first_index` within the checksummed
// range, to `sum`. Summing is order-free, so a range may be processed in pieces (and on GPUs, in
// parallel); the weight makes the position of every byte count.
inline uint64_t checksum_accumulate(uint64_t sum, std::span<const std::byte> bytes, uint64_t first_index) noexcept {
    uint64_t weight = first_index * kChecksumWeightStep + kChecksumWeightBase;
    for (std::byte b : bytes) {
        sum += (static_cast<uint64_t>(b) + 1u) * weight;
        weight += kChecksumWeightStep;
    }
    return sum;
}

}  // namespace grey::backend
