// An OpenCL CPU device for the tests that run the Level Zero backend's SPIR-V (tests/level0): a context,
// an in-order queue, programs built from the very files the plugin embeds, and buffers. The OpenCL CPU
// runtime is Intel's from PyPI (intel-opencl-rt, scripts/requirements-test.txt); run_on_opencl.sh
// points the ICD loader at it.
#pragma once

#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace grey::test {

// A buffer of the context, released with it.
class ClBuffer {
public:
    ClBuffer(cl_context context, std::size_t bytes, const void* initial = nullptr);
    ~ClBuffer();
    ClBuffer(const ClBuffer&) = delete;
    ClBuffer& operator=(const ClBuffer&) = delete;
    [[nodiscard]] const cl_mem& handle() const noexcept { return memory_; }

private:
    cl_mem memory_ = nullptr;
};

// The device, context, queue and built programs are made once per test suite: building a module is most
// of a short test's time.
class OpenClCpu : public ::testing::Test {
public:
    static void SetUpTestSuite();
    static void TearDownTestSuite();

protected:
    void SetUp() override;
    void TearDown() override;

    // The program built from the SPIR-V file at `path` (once per suite, with the build `options` the
    // backend gives zeModuleCreate for it) and its kernel `name`.
    cl_kernel kernel(const char* path, const char* name, const char* options = "");

    // An argument of a launch: a buffer, or a value of any size.
    struct Argument {
        std::size_t size;
        const void* value;
    };
    static Argument buffer_argument(const ClBuffer& b) { return {sizeof(cl_mem), &b.handle()}; }
    template <typename T>
    static Argument value_argument(const T& v) {
        return {sizeof v, &v};
    }
    // Runs `groups` work groups of `group_size` work items and waits for them.
    void run(cl_kernel kernel, uint32_t groups, uint32_t group_size, std::initializer_list<Argument> arguments);

    void write(const ClBuffer& b, std::size_t offset, const void* data, std::size_t bytes);
    [[nodiscard]] std::vector<unsigned char> read(const ClBuffer& b, std::size_t offset, std::size_t bytes);

    cl_device_id device_ = nullptr;
    cl_context context_ = nullptr;
    cl_command_queue queue_ = nullptr;

private:
    struct Session;
    static std::unique_ptr<Session> session_;  // the suite's, between SetUpTestSuite and TearDownTestSuite
    std::vector<cl_kernel> kernels_;
};

}  // namespace grey::test
