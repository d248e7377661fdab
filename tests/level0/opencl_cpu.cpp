#include "opencl_cpu.hpp"

#include <fstream>
#include <iterator>

namespace grey::test {

namespace {

std::vector<unsigned char> read_file(const char* path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

ClBuffer::ClBuffer(cl_context context, std::size_t bytes, const void* initial) {
    cl_int error = CL_SUCCESS;
    const cl_mem_flags flags = CL_MEM_READ_WRITE | (initial != nullptr ? CL_MEM_COPY_HOST_PTR : 0);
    memory_ = clCreateBuffer(context, flags, bytes == 0 ? 1 : bytes, const_cast<void*>(initial), &error);
    EXPECT_EQ(error, CL_SUCCESS) << "clCreateBuffer of " << bytes << " bytes";
}

ClBuffer::~ClBuffer() {
    if (memory_ != nullptr) clReleaseMemObject(memory_);
}

void OpenClCpu::SetUp() {
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
}

void OpenClCpu::TearDown() {
    for (cl_kernel k : kernels_) clReleaseKernel(k);
    for (const auto& [path, program] : programs_) clReleaseProgram(program);
    if (queue_ != nullptr) clReleaseCommandQueue(queue_);
    if (context_ != nullptr) clReleaseContext(context_);
}

cl_kernel OpenClCpu::kernel(const char* path, const char* name) {
    cl_program program = nullptr;
    for (const auto& [known, built] : programs_)
        if (known == path) program = built;
    cl_int error = CL_SUCCESS;
    if (program == nullptr) {
        const std::vector<unsigned char> spirv = read_file(path);
        EXPECT_GT(spirv.size(), 20u) << path;
        program = clCreateProgramWithIL(context_, spirv.data(), spirv.size(), &error);
        EXPECT_EQ(error, CL_SUCCESS) << "clCreateProgramWithIL " << path;
        // The build flag the backend passes to zeModuleCreate (none).
        const cl_int built = clBuildProgram(program, 1, &device_, "", nullptr, nullptr);
        if (built != CL_SUCCESS) {
            std::size_t length = 0;
            clGetProgramBuildInfo(program, device_, CL_PROGRAM_BUILD_LOG, 0, nullptr, &length);
            std::string log(length, '\0');
            clGetProgramBuildInfo(program, device_, CL_PROGRAM_BUILD_LOG, length, log.data(), nullptr);
            ADD_FAILURE() << "clBuildProgram " << path << ": " << built << "\n" << log;
        }
        programs_.emplace_back(path, program);
    }
    cl_kernel k = clCreateKernel(program, name, &error);
    EXPECT_EQ(error, CL_SUCCESS) << "clCreateKernel " << name;
    kernels_.push_back(k);
    return k;
}

void OpenClCpu::run(cl_kernel kernel, uint32_t groups, uint32_t group_size, std::initializer_list<Argument> arguments) {
    cl_uint index = 0;
    for (const Argument& a : arguments) ASSERT_EQ(clSetKernelArg(kernel, index++, a.size, a.value), CL_SUCCESS) << "argument " << index - 1;
    const std::size_t global = std::size_t{groups} * group_size, local = group_size;
    ASSERT_EQ(clEnqueueNDRangeKernel(queue_, kernel, 1, nullptr, &global, &local, 0, nullptr, nullptr), CL_SUCCESS);
    ASSERT_EQ(clFinish(queue_), CL_SUCCESS);
}

void OpenClCpu::write(const ClBuffer& b, std::size_t offset, const void* data, std::size_t bytes) {
    if (bytes == 0) return;
    ASSERT_EQ(clEnqueueWriteBuffer(queue_, b.handle(), CL_TRUE, offset, bytes, data, 0, nullptr, nullptr), CL_SUCCESS);
}

std::vector<unsigned char> OpenClCpu::read(const ClBuffer& b, std::size_t offset, std::size_t bytes) {
    std::vector<unsigned char> out(bytes);
    if (bytes > 0) {
        EXPECT_EQ(clEnqueueReadBuffer(queue_, b.handle(), CL_TRUE, offset, bytes, out.data(), 0, nullptr, nullptr), CL_SUCCESS);
    }
    return out;
}

}  // namespace grey::test
