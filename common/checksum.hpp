// The buffer checksum that grey.h's grey_buffer_checksum defines: sum over i of (byte[i] + 1) times the
// weight i * kChecksumWeightStep + kChecksumWeightBase, modulo 2^64. The constants are read by the host
// (the host backend, and the runtime's fallback for a backend without a checksum slot) and by the CUDA
// kernel (kernels/cuda/grey_kernels.cu), so they exist once; the conformance programs compare the sums.
#pragma once

#include "common/hostdevice.h"

#include <stdint.h>

#include <cstddef>
#include <span>

namespace grey::common {

inline constexpr uint64_t kChecksumWeightStep = 0x9E3779B97F4A7C15ull;
inline constexpr uint64_t kChecksumWeightBase = 0xD6E8FEB86659FD93ull;

// Adds the contribution of `n` bytes, whose first has index `first_index` within the checksummed range,
// to `sum`. Summing is order-free, so a range may be processed in pieces (and on GPUs, in parallel);
// the weight makes the position of every byte count.
GREY_FN uint64_t checksum_accumulate(uint64_t sum, const unsigned char* bytes, uint64_t n, uint64_t first_index) {
    uint64_t weight = first_index * kChecksumWeightStep + kChecksumWeightBase;
    for (uint64_t i = 0; i < n; ++i) {
        sum += (static_cast<uint64_t>(bytes[i]) + 1u) * weight;
        weight += kChecksumWeightStep;
    }
    return sum;
}

inline uint64_t checksum_accumulate(uint64_t sum, std::span<const std::byte> bytes, uint64_t first_index) {
    return checksum_accumulate(sum, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), first_index);
}

}  // namespace grey::common
