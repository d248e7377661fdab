// The Level Zero backend's fill and copy kernels (kernels/opencl/grey_fill_copy.cl), executed on the CPU
// through OpenCL as the backend launches them: every byte of the range written, none outside it, at
// every alignment of the range's start and end around the kernels' 16-byte body.
#include "opencl_cpu.hpp"

#include "level0/fill_copy_kernels.hpp"

#include <algorithm>
#include <cstring>
#include <random>

namespace {

using grey::test::ClBuffer;
namespace l0 = grey::level0;

class FillCopyOnOpenCl : public grey::test::OpenClCpu {};

std::vector<unsigned char> random_bytes(std::size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<unsigned char> out(n);
    for (auto& b : out) b = static_cast<unsigned char>(rng());
    return out;
}

const std::size_t kLengths[] = {0, 1, 2, 15, 16, 17, 31, 33, 4095, 4096, 65537, 1 << 20};

}  // namespace

TEST_F(FillCopyOnOpenCl, FillWritesExactlyTheRangeAtEveryAlignment) {
    const cl_kernel fill = kernel(GREY_LEVEL0_FILL_COPY_SPIRV, l0::kFillKernelName);
    uint32_t seed = 1;
    for (std::size_t n : kLengths)
        for (std::size_t offset : {0, 1, 7, 15, 16, 17}) {
            std::vector<unsigned char> expected = random_bytes(n + 64, seed++);
            const ClBuffer buffer(context_, expected.size(), expected.data());
            const unsigned char value = static_cast<unsigned char>(0xA5 ^ n ^ offset);
            const cl_ulong at = offset, count = n;
            const cl_uint byte = value;
            run(fill, l0::fill_copy_group_count(n), l0::kFillCopyGroupSize,
                {buffer_argument(buffer), value_argument(at), value_argument(count), value_argument(byte)});
            std::fill_n(expected.begin() + static_cast<std::ptrdiff_t>(offset), n, value);
            EXPECT_EQ(read(buffer, 0, expected.size()), expected) << n << " bytes at offset " << offset;
        }
}

TEST_F(FillCopyOnOpenCl, CopyMovesExactlyTheRangeAtEveryAlignment) {
    const cl_kernel copy = kernel(GREY_LEVEL0_FILL_COPY_SPIRV, l0::kCopyKernelName);
    uint32_t seed = 100;
    for (std::size_t n : kLengths)
        for (const auto& [to, from] : {std::pair<std::size_t, std::size_t>{0, 0}, {16, 32}, {3, 3}, {1, 2}, {15, 0}, {0, 17}}) {
            const std::vector<unsigned char> source = random_bytes(n + 64, seed++);
            std::vector<unsigned char> expected = random_bytes(n + 64, seed++);
            const ClBuffer from_buffer(context_, source.size(), source.data());
            const ClBuffer to_buffer(context_, expected.size(), expected.data());
            const cl_ulong to_offset = to, from_offset = from, count = n;
            run(copy, l0::fill_copy_group_count(n), l0::kFillCopyGroupSize,
                {buffer_argument(to_buffer), value_argument(to_offset), buffer_argument(from_buffer), value_argument(from_offset),
                 value_argument(count)});
            std::copy_n(source.begin() + static_cast<std::ptrdiff_t>(from), n, expected.begin() + static_cast<std::ptrdiff_t>(to));
            EXPECT_EQ(read(to_buffer, 0, expected.size()), expected) << n << " bytes from " << from << " to " << to;
        }
}
