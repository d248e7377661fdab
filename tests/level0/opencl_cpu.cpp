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

struct OpenClCpu::Session {
    cl_device_id device = nullptr;
    cl_context context = nullptr;
    cl_command_queue queue = nullptr;
    std::vector<std::pair<std::string, cl_program>> programs;
    std::string failure;  // why there is no device, for every test of the suite to report

    Session() {
        cl_uint platforms = 0;
        if (clGetPlatformIDs(0, nullptr, &platforms) != CL_SUCCESS || platforms == 0) {
            failure = "no OpenCL platform: is the ICD file set (run_on_opencl.sh)?";
            return;
        }
        std::vector<cl_platform_id> ids(platforms);
        clGetPlatformIDs(platforms, ids.data(), nullptr);
        for (cl_platform_id p : ids)
            if (clGetDeviceIDs(p, CL_DEVICE_TYPE_CPU, 1, &device, nullptr) == CL_SUCCESS) break;
        if (device == nullptr) {
            failure = "no OpenCL CPU device";
            return;
        }
        cl_int error = CL_SUCCESS;
        context = clCreateContext(nullptr, 1, &device, nullptr, nullptr, &error);
        if (error == CL_SUCCESS) queue = clCreateCommandQueueWithProperties(context, device, nullptr, &error);
        if (error != CL_SUCCESS) failure = "clCreateContext or clCreateCommandQueueWithProperties: " + std::to_string(error);
    }
    ~Session() {
        for (const auto& [path, program] : programs) clReleaseProgram(program);
        if (queue != nullptr) clReleaseCommandQueue(queue);
        if (context != nullptr) clReleaseContext(context);
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
};

std::unique_ptr<OpenClCpu::Session> OpenClCpu::session_;

void OpenClCpu::SetUpTestSuite() { session_ = std::make_unique<Session>(); }

void OpenClCpu::TearDownTestSuite() { session_.reset(); }

void OpenClCpu::SetUp() {
    ASSERT_NE(session_, nullptr);
    ASSERT_EQ(session_->failure, "");
    device_ = session_->device;
    context_ = session_->context;
    queue_ = session_->queue;
}

void OpenClCpu::TearDown() {
    for (cl_kernel k : kernels_) clReleaseKernel(k);
}

cl_kernel OpenClCpu::kernel(const char* path, const char* name, const char* options) {
    cl_program program = nullptr;
    for (const auto& [known, built] : session_->programs)
        if (known == path) program = built;
    cl_int error = CL_SUCCESS;
    if (program == nullptr) {
        const std::vector<unsigned char> spirv = read_file(path);
        EXPECT_GT(spirv.size(), 20u) << path;
        program = clCreateProgramWithIL(context_, spirv.data(), spirv.size(), &error);
        EXPECT_EQ(error, CL_SUCCESS) << "clCreateProgramWithIL " << path;
        const cl_int built = clBuildProgram(program, 1, &device_, options, nullptr, nullptr);
        if (built != CL_SUCCESS) {
            std::size_t length = 0;
            clGetProgramBuildInfo(program, device_, CL_PROGRAM_BUILD_LOG, 0, nullptr, &length);
            std::string log(length, '\0');
            clGetProgramBuildInfo(program, device_, CL_PROGRAM_BUILD_LOG, length, log.data(), nullptr);
            ADD_FAILURE() << "clBuildProgram " << path << ": " << built << "\n" << log;
        }
        session_->programs.emplace_back(path, program);
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
