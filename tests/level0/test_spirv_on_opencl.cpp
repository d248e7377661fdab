// The Level Zero backend's checksum kernel, executed: the very SPIR-V file the plugin embeds is loaded
// through OpenCL (clCreateProgramWithIL) on a CPU device and run as the backend launches it, and its
// results must equal the host reference byte for byte. This is the evidence that the kernel computes the
// right thing; the fake Level Zero loader only records launches. test_fill_copy_on_opencl.cpp and
// test_quant_on_opencl.cpp do the same for the other kernels.
#include "opencl_cpu.hpp"

#include "common/checksum.hpp"
#include "level0/checksum_kernel.hpp"

#include <cstring>
#include <random>

namespace {

class ChecksumOnOpenCl : public grey::test::OpenClCpu {
protected:
    // The checksum of `bytes` from `offset` on, computed as the Level Zero backend does: the kernel over
    // the range, the host adding the partial sums. The backend passes a pointer into a buffer; OpenCL
    // takes a sub-buffer for that.
    uint64_t checksum(const std::vector<unsigned char>& bytes, size_t offset) {
        const cl_kernel k = kernel(GREY_LEVEL0_CHECKSUM_SPIRV, grey::level0::kChecksumKernelName);
        cl_int error = CL_SUCCESS;
        const size_t n = bytes.size() - offset;
        const grey::test::ClBuffer source(context_, bytes.size(), bytes.data());
        cl_buffer_region region{offset, n};
        cl_mem range = n > 0 ? clCreateSubBuffer(source.handle(), CL_MEM_READ_ONLY, CL_BUFFER_CREATE_TYPE_REGION, &region, &error) : source.handle();
        EXPECT_EQ(error, CL_SUCCESS) << "sub-buffer (offset alignment)";
        const uint32_t groups = grey::level0::checksum_group_count(n);
        const size_t items = size_t{groups} * grey::level0::kChecksumGroupSize;
        const grey::test::ClBuffer sums(context_, items * sizeof(cl_ulong));
        const cl_ulong count = n, step = grey::common::kChecksumWeightStep, base = grey::common::kChecksumWeightBase;
        run(k, groups, grey::level0::kChecksumGroupSize,
            {{sizeof range, &range}, value_argument(count), value_argument(step), value_argument(base), buffer_argument(sums)});
        const std::vector<unsigned char> partial = read(sums, 0, items * sizeof(cl_ulong));
        uint64_t total = 0;
        for (size_t i = 0; i < items; ++i) {
            cl_ulong p = 0;
            std::memcpy(&p, partial.data() + i * sizeof p, sizeof p);
            total += p;
        }
        if (range != source.handle()) clReleaseMemObject(range);
        return total;
    }
};

}  // namespace

TEST_F(ChecksumOnOpenCl, ChecksumKernelEqualsTheHostReferenceOnRandomBytes) {
    std::mt19937_64 rng(std::random_device{}());
    // Sizes around the launch shape's edges: below one item's share, one group, many groups, the cap.
    for (size_t n : {size_t{0}, size_t{1}, size_t{255}, size_t{16384}, size_t{16385}, size_t{1000003}, size_t{3} << 21}) {
        std::vector<unsigned char> bytes(n + 128);
        for (auto& b : bytes) b = static_cast<unsigned char>(rng());
        const uint64_t expected = grey::common::checksum_accumulate(0, bytes.data() + 128, n, 0);
        EXPECT_EQ(checksum(bytes, 128), expected) << n << " bytes";
    }
}

TEST_F(ChecksumOnOpenCl, ChecksumKernelOnConstantBytesEqualsTheHostReference) {
    for (unsigned char value : {0x00, 0xFF}) {
        const std::vector<unsigned char> bytes(1 << 20, value);
        EXPECT_EQ(checksum(bytes, 0), grey::common::checksum_accumulate(0, bytes.data(), bytes.size(), 0)) << int{value};
    }
}
