// divider_for: the multiplier and shift the fast quantization kernels divide by (n * m) >> s must give
// n / d exactly for every n below 2^31, which is what those kernels index with.
#include "cuda/quantizer.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

namespace {

uint64_t divide(uint64_t n, const grey::cuda::Divider& d) { return (n * d.multiplier) >> d.shift; }  // as the kernels do

std::vector<uint64_t> hard_numerators(uint64_t d) {
    constexpr uint64_t kLimit = uint64_t{1} << 31;
    std::vector<uint64_t> n = {0, 1, d - 1, d, d + 1, kLimit - 1, kLimit - 2, kLimit - d};
    // Just below and at the largest multiples of d, where a multiplier that is slightly off shows.
    const uint64_t top = (kLimit - 1) / d * d;
    for (uint64_t k : {top, top - 1, top + d - 1 < kLimit ? top + d - 1 : top, top - d, top - d + 1}) n.push_back(k);
    return n;
}

TEST(CudaDivider, ExactForEveryIndexTheKernelsUse) {
    std::vector<uint64_t> divisors;
    for (uint64_t d = 1; d <= 5000; ++d) divisors.push_back(d);
    for (int b = 12; b <= 31; ++b) {
        const uint64_t p = uint64_t{1} << b;
        divisors.insert(divisors.end(), {p - 1, p, 3 * (p / 4) + 1});
        if (b < 31) divisors.push_back(p + 1);
    }
    std::mt19937_64 random(20261201);
    for (int i = 0; i < 2000; ++i) divisors.push_back(1 + random() % (uint64_t{1} << 31));
    for (const uint64_t d : divisors) {
        const auto divider = grey::cuda::divider_for(d);
        ASSERT_LT(divider.multiplier, uint64_t{1} << 33) << "d = " << d;  // n * multiplier must fit 64 bits
        for (const uint64_t n : hard_numerators(d)) {
            if (n >= (uint64_t{1} << 31)) continue;
            ASSERT_EQ(divide(n, divider), n / d) << "n = " << n << ", d = " << d;
        }
        for (int k = 0; k < 64; ++k) {
            const uint64_t n = random() % (uint64_t{1} << 31);
            ASSERT_EQ(divide(n, divider), n / d) << "n = " << n << ", d = " << d;
        }
    }
}

TEST(CudaDivider, ExhaustiveForSmallDivisorsOverTheFirstMillion) {
    for (uint64_t d : {3u, 7u, 12u, 384u, 768u, 1000u, 1536u}) {
        const auto divider = grey::cuda::divider_for(d);
        for (uint64_t n = 0; n < 1000000; ++n) ASSERT_EQ(divide(n, divider), n / d) << "n = " << n << ", d = " << d;
    }
}

TEST(CudaDivider, RefusesDivisorsOutsideItsRange) {
    EXPECT_THROW(grey::cuda::divider_for(0), std::invalid_argument);
    EXPECT_THROW(grey::cuda::divider_for((uint64_t{1} << 31) + 1), std::invalid_argument);
    EXPECT_NO_THROW(grey::cuda::divider_for(uint64_t{1} << 31));
}

}  // namespace
