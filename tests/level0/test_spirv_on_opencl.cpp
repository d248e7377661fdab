// The Level Zero backend's SPIR-V kernels, executed: the very file the plugin embeds is loaded through
// OpenCL (clCreateProgramWithIL) on a CPU device and run as the backend launches it, and its results
// must equal the host reference byte for byte. This is the evidence that the kernels compute the right
// thing; the fake Level Zero loader only emulates them. The OpenCL CPU runtime is Intel's from PyPI
// (intel-opencl-rt, scripts/requirements-test.txt); run_on_opencl.sh points the ICD loader at it.
#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>

#include "common/checksum.hpp"
#include "level0/checksum_kernel.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace {

std::vector<unsigned char> read_file(const char* path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// One CPU device with a program built from the embedded SPIR-V.
class OpenClCpu : public ::testing::Test {
protected:
    void SetUp() override {
        cl_uint platforms = 0;
        ASSERT_EQ(clGetPlatformIDs(0, nullptr, &platforms), CL_SUCCESS) << "no OpenCL platform: is the ICD file set (run_on_opencl.sh)?";
        std::vector<cl_platform_id> ids(platforms);
        ASSERT_EQ(clGetPlatformIDs(platforms, ids.data(), nullptr), CL_SUCCESS);
        for (cl_platform_id p : ids)
            if (clGetDeviceIDs(p, CL_DEVICE_TYPE_CPU, 1, &device_, nullptr) == CL_SUCCESS) break;
        ASSERT_NE(device_, nullptr) << "no OpenCL CPU device";
        cl_int error = CL_SUCCESS;
        context_ = clCreateContext(nullptr, 1, &device_, nullptr, nullptr, &error);
        ASSERT_EQ(error, CL_SUCCESS);
        queue_ = clCreateCommandQueueWithProperties(context_, device_, nullptr, &error);
        ASSERT_EQ(error, CL_SUCCESS);
        const std::vector<unsigned char> spirv = read_file(GREY_LEVEL0_CHECKSUM_SPIRV);
        ASSERT_GT(spirv.size(), 20u) << GREY_LEVEL0_CHECKSUM_SPIRV;
        program_ = clCreateProgramWithIL(context_, spirv.data(), spirv.size(), &error);
        ASSERT_EQ(error, CL_SUCCESS) << "clCreateProgramWithIL";
        ASSERT_EQ(clBuildProgram(program_, 1, &device_, "", nullptr, nullptr), CL_SUCCESS);
        kernel_ = clCreateKernel(program_, grey::level0::kChecksumKernelName, &error);
        ASSERT_EQ(error, CL_SUCCESS);
    }
    void TearDown() override {
        if (kernel_ != nullptr) clReleaseKernel(kernel_);
        if (program_ != nullptr) clReleaseProgram(program_);
        if (queue_ != nullptr) clReleaseCommandQueue(queue_);
        if (context_ != nullptr) clReleaseContext(context_);
    }

    // The checksum of `bytes`, computed as the Level Zero backend does: the kernel over the range at
    // `offset` of a device buffer, the host adding the partial sums.
    uint64_t checksum(const std::vector<unsigned char>& bytes, size_t offset) {
        cl_int error = CL_SUCCESS;
        const size_t n = bytes.size() - offset;
        cl_mem source = clCreateBuffer(context_, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes.size(),
                                       const_cast<unsigned char*>(bytes.data()), &error);
        EXPECT_EQ(error, CL_SUCCESS);
        // The backend passes a pointer into the buffer; OpenCL takes a sub-buffer for that.
        cl_buffer_region region{offset, n};
        cl_mem range = n > 0 ? clCreateSubBuffer(source, CL_MEM_READ_ONLY, CL_BUFFER_CREATE_TYPE_REGION, &region, &error) : source;
        EXPECT_EQ(error, CL_SUCCESS) << "sub-buffer (offset alignment)";
        const uint32_t groups = grey::level0::checksum_group_count(n);
        const size_t items = size_t{groups} * grey::level0::kChecksumGroupSize;
        std::vector<cl_ulong> partial(items);
        cl_mem sums = clCreateBuffer(context_, CL_MEM_WRITE_ONLY, items * sizeof(cl_ulong), nullptr, &error);
        const cl_ulong count = n, step = grey::common::kChecksumWeightStep, base = grey::common::kChecksumWeightBase;
        EXPECT_EQ(clSetKernelArg(kernel_, 0, sizeof range, &range), CL_SUCCESS);
        EXPECT_EQ(clSetKernelArg(kernel_, 1, sizeof count, &count), CL_SUCCESS);
        EXPECT_EQ(clSetKernelArg(kernel_, 2, sizeof step, &step), CL_SUCCESS);
        EXPECT_EQ(clSetKernelArg(kernel_, 3, sizeof base, &base), CL_SUCCESS);
        EXPECT_EQ(clSetKernelArg(kernel_, 4, sizeof sums, &sums), CL_SUCCESS);
        const size_t local = grey::level0::kChecksumGroupSize;
        EXPECT_EQ(clEnqueueNDRangeKernel(queue_, kernel_, 1, nullptr, &items, &local, 0, nullptr, nullptr), CL_SUCCESS);
        EXPECT_EQ(clEnqueueReadBuffer(queue_, sums, CL_TRUE, 0, items * sizeof(cl_ulong), partial.data(), 0, nullptr, nullptr), CL_SUCCESS);
        uint64_t total = 0;
        for (cl_ulong p : partial) total += p;
        clReleaseMemObject(sums);
        if (range != source) clReleaseMemObject(range);
        clReleaseMemObject(source);
        return total;
    }

    cl_device_id device_ = nullptr;
    cl_context context_ = nullptr;
    cl_command_queue queue_ = nullptr;
    cl_program program_ = nullptr;
    cl_kernel kernel_ = nullptr;
};

}  // namespace

TEST_F(OpenClCpu, ChecksumKernelEqualsTheHostReferenceOnRandomBytes) {
    std::mt19937_64 rng(std::random_device{}());
    // Sizes around the launch shape's edges: below one item's share, one group, many groups, the cap.
    for (size_t n : {size_t{0}, size_t{1}, size_t{255}, size_t{16384}, size_t{16385}, size_t{1000003}, size_t{3} << 21}) {
        std::vector<unsigned char> bytes(n + 128);
        for (auto& b : bytes) b = static_cast<unsigned char>(rng());
        const uint64_t expected = grey::common::checksum_accumulate(0, bytes.data() + 128, n, 0);
        EXPECT_EQ(checksum(bytes, 128), expected) << n << " bytes";
    }
}

TEST_F(OpenClCpu, ChecksumKernelOnConstantBytesEqualsTheHostReference) {
    for (unsigned char value : {0x00, 0xFF}) {
        const std::vector<unsigned char> bytes(1 << 20, value);
        EXPECT_EQ(checksum(bytes, 0), grey::common::checksum_accumulate(0, bytes.data(), bytes.size(), 0)) << int{value};
    }
}
