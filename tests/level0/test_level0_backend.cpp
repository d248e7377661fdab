// The Level Zero backend against a fake loader (tests/level0/fake_driver): loading, Sysman through the
// core handle, field states and reasons, the pool, and error paths. Each suite runs in its own process
// with its own LD_LIBRARY_PATH (tests/level0/CMakeLists.txt); switches the fake reads at each call are
// set per case. None of this is evidence that a real Intel GPU answers the same: docs/backends.md.
#include "plugin_test_support.hpp"
#include "quant_launch_cases.hpp"

#include "kernels/opencl/kv_args.h"
#include "kernels/opencl/quant_args.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <level_zero/ze_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

// ze_result_t codes, as the fake's FAKE_ZE_FAIL list takes them (decimal).
constexpr const char* kInsufficientPermissions = "1879113728";  // 0x70010000
constexpr const char* kDeviceLost = "1879048193";               // 0x70000001
constexpr const char* kUninitialized = "2013265921";            // 0x78000001

using grey::test::contains;
using grey::test::ScopedEnv;

struct Level0Context : grey::test::PluginContext {
    Level0Context() : PluginContext("level0", GREY_TEST_PLUGIN_DIR) {}
};

}  // namespace

// ----- fake/full: every entry point, Sysman included ---------------------------------------------

TEST(Level0Fake, LoadsAndOffersTheDevice) {
    Level0Context c;
    const auto info = c.report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_LOADED) << info.reason;
    EXPECT_EQ(info.device_count, 1u);
    uint32_t devices = 0;
    ASSERT_EQ(grey_device_count(c.context, &devices), GREY_OK);
    EXPECT_EQ(devices, 2u);  // host + one fake GPU
}

TEST(Level0Fake, SpecComesFromTheCoreApiAndSysman) {
    Level0Context c;
    const grey_device_spec s = c.spec();
    EXPECT_STREQ(s.backend, "level0");
    EXPECT_EQ(s.vendor, GREY_VENDOR_INTEL);
    EXPECT_EQ(s.type, GREY_DEVICE_GPU);
    EXPECT_STREQ(s.name.value, "Fake Intel Data Center GPU Max 1550");
    EXPECT_EQ(s.name.source, GREY_SOURCE_LEVEL_ZERO);
    EXPECT_STREQ(s.uuid.value, "00112233-4455-6677-8899-aabbccddeeff");
    EXPECT_STREQ(s.pci_bus_id.value, "0000:29:00.0");
    EXPECT_STREQ(s.driver_version.value, "1.3.27642.40");  // Sysman's text, not the core API's number
    EXPECT_STREQ(s.runtime_version.value, "1.3");
    EXPECT_EQ(s.compute_units.value, 128u);  // 8 slices x 16 sub-slices (Xe cores)
    EXPECT_EQ(s.memory_total_bytes.value, 128ull << 30);
    EXPECT_EQ(s.memory_free_bytes.value, (128ull << 30) - (512ull << 20));
    EXPECT_EQ(s.memory_bus_width_bits.value, 8192u);
    EXPECT_EQ(s.memory_clock_max_mhz.value, 3200u);
    EXPECT_DOUBLE_EQ(s.peak_memory_bandwidth_gbps.value, 3276.8);
    EXPECT_EQ(s.peak_memory_bandwidth_gbps.source, GREY_SOURCE_LEVEL_ZERO);
    EXPECT_EQ(s.l2_cache_bytes.value, 408ull << 20);
    EXPECT_EQ(s.graphics_clock_max_mhz.value, 1600u);  // the whole device's domain, not the tile's 1500
    EXPECT_EQ(s.power_limit_mw.value, 550000u);
    EXPECT_EQ(s.power_limit_default_mw.value, 600000u);
    EXPECT_EQ(s.power_limit_min_mw.value, 300000u);
    EXPECT_EQ(s.temperature_gpu_max_c.value, 100.0);
    EXPECT_EQ(s.temperature_memory_max_c.value, 95.0);
    EXPECT_EQ(s.pcie_generation_max.value, 5u);
    EXPECT_EQ(s.pcie_width_max.value, 16u);
    EXPECT_EQ(s.pcie_generation_current.value, 4u);

    // What Level Zero does not say is marked, with the reason, never left as 0.
    EXPECT_EQ(s.power_limit_max_mw.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(c.reason(GREY_FIELD_POWER_LIMIT_MAX_MW), "Level Zero: zesPowerGetProperties maxLimit reported -1, which means the driver does not know it");
    EXPECT_EQ(s.pcie_width_current.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_PCIE_WIDTH_CURRENT), "speed.width reported -1"));
    EXPECT_EQ(s.temperature_slowdown_c.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_TEMPERATURE_SLOWDOWN_C), "no slowdown or shutdown temperature"));
    EXPECT_EQ(s.architecture.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_FALSE(c.reason(GREY_FIELD_ARCHITECTURE).empty());
    EXPECT_EQ(c.reason(GREY_FIELD_NAME), "");
    EXPECT_EQ(c.reason(GREY_FIELD_POWER_LIMIT_MW), "");
}

TEST(Level0Fake, TelemetryDecodesSensorsClocksAndEnergy) {
    Level0Context c;
    const grey_device_telemetry first = c.telemetry();
    EXPECT_GT(first.timestamp_ns, 0u);
    EXPECT_EQ(first.temperature_c.value, 45.0);  // the GPU sensor, not the global one
    EXPECT_EQ(first.memory_temperature_c.value, 50.0);
    EXPECT_EQ(first.energy_total_mj.value, 5000000u);  // 5 x 10^9 uJ
    // Level Zero has energy, not power: the first sample cannot say, and says why.
    EXPECT_EQ(first.power_draw_mw.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_POWER_DRAW_MW), "energy used between two telemetry samples"));
    EXPECT_EQ(first.graphics_clock_mhz.value, 1550u);
    EXPECT_EQ(first.memory_clock_mhz.value, 3200u);
    EXPECT_EQ(first.sm_clock_mhz.state, GREY_FIELD_NOT_APPLICABLE);
    EXPECT_EQ(first.throttle_reasons.state, GREY_FIELD_OK);
    EXPECT_EQ(first.throttle_reasons.value, uint64_t{GREY_THROTTLE_SW_POWER_CAP | GREY_THROTTLE_OTHER});
    EXPECT_EQ(first.memory_used_bytes.value, 512ull << 20);
    EXPECT_EQ(first.throttle_time_power_ns.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_THROTTLE_TIME_POWER_NS), "zesFrequencyGetThrottleTime"));
    EXPECT_EQ(first.utilization_percent.state, GREY_FIELD_UNSUPPORTED);

    // The fake's counter advances 300 J per second of its clock between reads: 300 W.
    const grey_device_telemetry second = c.telemetry();
    EXPECT_EQ(second.energy_total_mj.value, 5300000u);
    EXPECT_EQ(second.power_draw_mw.state, GREY_FIELD_OK);
    EXPECT_EQ(second.power_draw_mw.value, 300000u);
    EXPECT_EQ(second.power_draw_mw.source, GREY_SOURCE_DERIVED);
}

TEST(Level0Fake, PermissionDeniedOnTelemetryMarksOnlyThoseFields) {
    const std::string fail = std::string("zesPowerGetEnergyCounter:") + kInsufficientPermissions + ",zesMemoryGetBandwidth:" +
                             kInsufficientPermissions;
    ScopedEnv env{{"FAKE_ZE_FAIL", fail.c_str()}};
    Level0Context c;
    const grey_device_telemetry t = c.telemetry();
    EXPECT_EQ(t.energy_total_mj.state, GREY_FIELD_PERMISSION_DENIED);
    EXPECT_EQ(t.energy_total_mj.value, 0u);
    EXPECT_EQ(t.energy_total_mj.source, GREY_SOURCE_NONE);
    EXPECT_EQ(c.reason(GREY_FIELD_ENERGY_TOTAL_MJ), "Level Zero: zesPowerGetEnergyCounter failed: ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS");
    EXPECT_EQ(t.power_draw_mw.state, GREY_FIELD_PERMISSION_DENIED);
    EXPECT_EQ(t.temperature_c.state, GREY_FIELD_OK);
    EXPECT_EQ(t.memory_used_bytes.state, GREY_FIELD_OK);
    const grey_device_spec s = c.spec();
    EXPECT_EQ(s.peak_memory_bandwidth_gbps.state, GREY_FIELD_PERMISSION_DENIED);
    EXPECT_EQ(s.memory_free_bytes.state, GREY_FIELD_OK);
    EXPECT_EQ(s.power_limit_mw.state, GREY_FIELD_OK);
}

TEST(Level0Fake, SysmanIsEnabledBeforeZeInit) {
    // Sysman answers on the core handle only if ZES_ENABLE_SYSMAN=1 was set when zeInit ran: the
    // backend sets it itself when the process has not chosen.
    ScopedEnv env{{"ZES_ENABLE_SYSMAN", nullptr}};
    Level0Context c;
    EXPECT_EQ(c.spec().power_limit_mw.state, GREY_FIELD_OK) << c.reason(GREY_FIELD_POWER_LIMIT_MW);
    EXPECT_STREQ(std::getenv("ZES_ENABLE_SYSMAN"), "1");
}

TEST(Level0Fake, SysmanTurnedOffByTheProcessIsRespectedAndNamed) {
    ScopedEnv env{{"ZES_ENABLE_SYSMAN", "0"}};
    Level0Context c;
    const grey_device_spec s = c.spec();
    EXPECT_STREQ(s.name.value, "Fake Intel Data Center GPU Max 1550");  // the core API still answers
    EXPECT_EQ(s.memory_total_bytes.state, GREY_FIELD_OK);
    EXPECT_EQ(s.power_limit_mw.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_POWER_LIMIT_MW), "ZES_ENABLE_SYSMAN=0")) << c.reason(GREY_FIELD_POWER_LIMIT_MW);
    EXPECT_EQ(s.pci_bus_id.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(c.telemetry().temperature_c.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_STREQ(std::getenv("ZES_ENABLE_SYSMAN"), "0");
}

TEST(Level0Fake, BuffersRoundTripFillCopyChecksum) {
    Level0Context c;
    grey::test::expect_buffers_round_trip(c.context, 1);
}

TEST(Level0Fake, PoolGrowsInChunksAndReusesFreedBlocks) {
    Level0Context c;
    EXPECT_EQ(c.stats().committed_bytes, 0u);
    std::vector<grey_buffer*> small(4, nullptr);
    for (auto& b : small) ASSERT_EQ(grey_buffer_create(c.context, 1, 1 << 20, &b), GREY_OK) << grey_last_error();
    grey_memory_stats s = c.stats();
    EXPECT_EQ(s.granularity_bytes, 64u << 20);
    EXPECT_EQ(s.committed_bytes, 64u << 20);  // one chunk holds all four
    EXPECT_EQ(s.growth_count, 1u);
    EXPECT_EQ(s.allocation_count, 4u);
    EXPECT_EQ(s.allocated_bytes, 4u << 20);
    // A buffer larger than a chunk gets a chunk of its own, rounded to the chunk size.
    grey_buffer* big = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 100 << 20, &big), GREY_OK) << grey_last_error();
    s = c.stats();
    EXPECT_EQ(s.committed_bytes, (64u << 20) + (128u << 20));
    EXPECT_EQ(s.growth_count, 2u);
    EXPECT_EQ(s.largest_free_bytes, 60u << 20);
    // Device memory as Sysman sees it includes the chunks.
    EXPECT_EQ(c.telemetry().memory_used_bytes.value, (512ull << 20) + (192ull << 20));
    grey_buffer_destroy(big);
    for (size_t i = 0; i < small.size(); i += 2) grey_buffer_destroy(small[i]);
    s = c.stats();
    EXPECT_GT(s.fragmentation, 0.0);
    EXPECT_NEAR(s.fragmentation, 1.0 - static_cast<double>(s.largest_free_bytes) / static_cast<double>(s.free_bytes), 1e-12);
    // A freed block is reused without growing.
    grey_buffer* again = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 1 << 20, &again), GREY_OK);
    EXPECT_EQ(c.stats().growth_count, 2u);
    grey_buffer_destroy(again);
    for (size_t i = 1; i < small.size(); i += 2) grey_buffer_destroy(small[i]);
    EXPECT_EQ(c.stats().allocation_count, 0u);
}

TEST(Level0Fake, AllocationFailureIsOutOfMemoryNamingSizesAndThePoolStillWorks) {
    ScopedEnv env{{"FAKE_ZE_MEMORY", "134217728"}};  // 128 MiB of device memory
    Level0Context c;
    grey_buffer* first = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 1 << 20, &first), GREY_OK) << grey_last_error();
    const grey_memory_stats before = c.stats();
    grey_buffer* too_big = nullptr;
    EXPECT_EQ(grey_buffer_create(c.context, 1, 100 << 20, &too_big), GREY_ERROR_OUT_OF_MEMORY);
    const std::string message = grey_last_error();
    EXPECT_TRUE(contains(message, "104857600 bytes") && contains(message, "134217728 bytes") &&
                contains(message, "ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY"))
        << message;
    EXPECT_EQ(too_big, nullptr);
    const grey_memory_stats after = c.stats();
    EXPECT_EQ(after.committed_bytes, before.committed_bytes);
    EXPECT_EQ(after.allocation_count, before.allocation_count);
    ASSERT_EQ(grey_buffer_create(c.context, 1, 32 << 20, &too_big), GREY_OK) << grey_last_error();
    grey_buffer_destroy(too_big);
    grey_buffer_destroy(first);
}

TEST(Level0Fake, CopyFailureIsABackendErrorNamingTheCall) {
    Level0Context c;
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &b), GREY_OK) << grey_last_error();
    const std::vector<unsigned char> data(4096, 7);
    {
        const std::string fail = std::string("zeCommandListAppendMemoryCopy:") + kDeviceLost;
        ScopedEnv env{{"FAKE_ZE_FAIL", fail.c_str()}};
        EXPECT_EQ(grey_buffer_write(b, 0, data.data(), data.size()), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeCommandListAppendMemoryCopy failed: ZE_RESULT_ERROR_DEVICE_LOST")) << grey_last_error();
    }
    EXPECT_EQ(grey_buffer_write(b, 0, data.data(), data.size()), GREY_OK);
    grey_buffer_destroy(b);
}

TEST(Level0Fake, ChecksumRunsTheEmbeddedSpirvKernelAndEqualsTheHost) {
    Level0Context c;
    const size_t n = (1 << 20) + 333;
    std::mt19937_64 rng(5);
    std::vector<unsigned char> data(n);
    for (auto& byte : data) byte = static_cast<unsigned char>(rng());
    grey_buffer* gpu = nullptr;
    grey_buffer* host = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, n, &gpu), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_create(c.context, 0, n, &host), GREY_OK);
    ASSERT_EQ(grey_buffer_write(gpu, 0, data.data(), n), GREY_OK);
    ASSERT_EQ(grey_buffer_write(host, 0, data.data(), n), GREY_OK);
    const grey_memory_stats before = c.stats();
    for (const auto& [offset, size] : {std::pair<size_t, size_t>{0, n}, {1, n - 1}, {4099, 5}, {n, 0}, {17, 300000}}) {
        uint64_t on_gpu = 1, on_host = 2;
        ASSERT_EQ(grey_buffer_checksum(gpu, offset, size, &on_gpu), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_checksum(host, offset, size, &on_host), GREY_OK);
        EXPECT_EQ(on_gpu, on_host) << offset << " + " << size;
    }
    // The partial sums' scratch memory went back to the pool.
    EXPECT_EQ(c.stats().allocation_count, before.allocation_count);
    grey_buffer_destroy(host);
    grey_buffer_destroy(gpu);
}

TEST(Level0Fake, AKernelTheDriverCannotBuildIsABackendErrorWithTheBuildLog) {
    Level0Context c;
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &b), GREY_OK) << grey_last_error();
    const grey_memory_stats before = c.stats();
    uint64_t sum = 0;
    {
        ScopedEnv env{{"FAKE_ZE_FAIL", "zeModuleCreate:1879048196"},  // ZE_RESULT_ERROR_MODULE_BUILD_FAILURE
                      {"FAKE_ZE_BUILD_LOG", "error: unsupported SPIR-V capability Int64"}};
        EXPECT_EQ(grey_buffer_checksum(b, 0, 4096, &sum), GREY_ERROR_BACKEND);
        const std::string message = grey_last_error();
        EXPECT_TRUE(contains(message, "zeModuleCreate failed: ZE_RESULT_ERROR_MODULE_BUILD_FAILURE") &&
                    contains(message, "build log: error: unsupported SPIR-V capability Int64"))
            << message;
    }
    {
        ScopedEnv env{{"FAKE_ZE_FAIL", "zeKernelCreate:2013265937"}};  // ZE_RESULT_ERROR_INVALID_KERNEL_NAME
        EXPECT_EQ(grey_buffer_checksum(b, 0, 4096, &sum), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeKernelCreate failed: ZE_RESULT_ERROR_INVALID_KERNEL_NAME (grey_checksum_partial of grey_checksum.cl)"))
            << grey_last_error();
    }
    EXPECT_EQ(c.stats().allocation_count, before.allocation_count);  // no scratch left behind
    // The next call builds the module again, and works.
    EXPECT_EQ(grey_buffer_checksum(b, 0, 4096, &sum), GREY_OK) << grey_last_error();
    grey_buffer_destroy(b);
}

TEST(Level0Fake, QuantizationAndKvSlots) {
    // The vtable declares the quantization slots (kernels/opencl/grey_quant.clcpp) and the KV cache's
    // (kernels/opencl/grey_kv.clcpp), K rotation included.
    const grey_backend_vtable vt = grey::test::plugin_vtable(GREY_TEST_PLUGIN_DIR "/libgrey-backend-level0.so");
    EXPECT_NE(vt.buffer_checksum, nullptr);
    EXPECT_NE(vt.buffer_fill, nullptr);
    EXPECT_NE(vt.buffer_copy, nullptr);
    EXPECT_NE(vt.quantize, nullptr);
    EXPECT_NE(vt.dequantize, nullptr);
    EXPECT_NE(vt.power_limit_set, nullptr);
    EXPECT_NE(vt.kv_store, nullptr);
    EXPECT_NE(vt.kv_compress, nullptr);
    EXPECT_NE(vt.kv_attend, nullptr);
    EXPECT_NE(vt.quantize_async, nullptr) << "quantization enqueues on a Level Zero stream";
    EXPECT_NE(vt.dequantize_async, nullptr);
    EXPECT_NE(vt.stream_create, nullptr);
    EXPECT_EQ(vt.stream_wrap_native, nullptr);
    EXPECT_EQ(vt.capabilities, uint64_t{GREY_BACKEND_CAP_STREAMS | GREY_BACKEND_CAP_KV_HADAMARD_K | GREY_BACKEND_CAP_KV_STORE_CHECKED});
}

// ----- streams: command queues, whose command lists the fake runs only when something waits ---------

TEST(Level0Fake, StreamsOrderWorkAndEventsOrderStreams) {
    Level0Context c;
    grey::test::expect_streams_order_work(c.context, 1, "", GREY_OK, true);  // an event to itself: 0 ms
}

// Writes and a fill on a stream run only when the stream is waited for, in order, reading the caller's
// memory then; a failure of the work is the synchronize's error; "not ready" is an answer; destroying a
// stream with queued work completes it; every queue, list, event and pool is given back.
TEST(Level0Fake, StreamWorkRunsAtTheWaitAndFailuresSurfaceThere) {
    void* fake = dlopen("libze_loader.so.1", RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(fake, nullptr) << dlerror();
    auto live = reinterpret_cast<int (*)()>(dlsym(fake, "fake_ze_live_objects"));
    ASSERT_NE(live, nullptr);
    {
        Level0Context c;
        grey_buffer* b = nullptr;
        ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &b), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_fill(b, 0, 0, 4096), GREY_OK);
        const int before = live();
        grey_stream* stream = nullptr;
        ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
        std::vector<unsigned char> data(4096, 0x11);
        ASSERT_EQ(grey_buffer_write_async(b, 0, data.data(), data.size(), stream), GREY_OK) << grey_last_error();
        std::fill(data.begin(), data.end(), 0x22);  // read by the copy when it runs, not when it was enqueued
        ASSERT_EQ(grey_buffer_fill_async(b, 0, 0x33, 8, stream), GREY_OK) << grey_last_error();
        std::vector<unsigned char> back(4096);
        ASSERT_EQ(grey_buffer_read(b, 0, back.data(), back.size()), GREY_OK);
        EXPECT_EQ(back, std::vector<unsigned char>(4096, 0)) << "nothing ran before a wait";
        {
            ScopedEnv env{{"FAKE_ZE_FAIL", "zeCommandQueueSynchronize:1879048193"}};  // ZE_RESULT_ERROR_DEVICE_LOST
            EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_BACKEND);
            EXPECT_TRUE(contains(grey_last_error(), "zeCommandQueueSynchronize failed: ZE_RESULT_ERROR_DEVICE_LOST")) << grey_last_error();
        }
        {
            ScopedEnv env{{"FAKE_ZE_FAIL", "zeCommandQueueSynchronize:1"}};  // ZE_RESULT_NOT_READY
            uint32_t done = 1;
            EXPECT_EQ(grey_stream_query(stream, &done), GREY_OK) << grey_last_error();
            EXPECT_EQ(done, 0u);
        }
        {
            ScopedEnv env{{"FAKE_ZE_FAIL", "zeCommandQueueExecuteCommandLists:1879048193"}};
            EXPECT_EQ(grey_buffer_fill_async(b, 0, 0x44, 8, stream), GREY_ERROR_BACKEND);
            EXPECT_TRUE(contains(grey_last_error(), "zeCommandQueueExecuteCommandLists failed")) << grey_last_error();
        }
        ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_read(b, 0, back.data(), back.size()), GREY_OK);
        auto expected = std::vector<unsigned char>(4096, 0x22);
        std::fill_n(expected.begin(), 8, 0x33);
        EXPECT_EQ(back, expected);

        ASSERT_EQ(grey_buffer_write_async(b, 0, data.data(), 16, stream), GREY_OK);
        ASSERT_EQ(grey_buffer_fill_async(b, 16, 0x55, 16, stream), GREY_OK);
        grey_stream_destroy(stream);  // with its work queued: it runs first
        ASSERT_EQ(grey_buffer_read(b, 0, back.data(), 32), GREY_OK);
        EXPECT_EQ(std::vector<unsigned char>(back.begin(), back.begin() + 32),
                  [] {
                      std::vector<unsigned char> v(32, 0x22);
                      std::fill_n(v.begin() + 16, 16, 0x55);
                      return v;
                  }());
        grey_event* event = nullptr;
        ASSERT_EQ(grey_event_create(c.context, 1, &event), GREY_OK) << grey_last_error();
        grey_event_destroy(event);
        EXPECT_EQ(live(), before) << "the queue, its lists, the event and its pool are given back";
        grey_buffer_destroy(b);
    }
    EXPECT_EQ(live(), 0);
    dlclose(fake);
}

namespace {

constexpr double kFakeHz = 19200000.0;  // the fake's default clock (FAKE_ZE_TIMER_HZ)

// The fake's lifetime violations so far (fake_ze_violations), one line each; "" when this process did not
// load the fake. They accumulate over the process, so a test compares before and after.
std::string violations() {
    void* fake = dlopen("libze_loader.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (fake == nullptr) return "";
    auto record = reinterpret_cast<const char* (*)()>(dlsym(fake, "fake_ze_violations"));
    std::string text = record != nullptr ? record() : "";
    dlclose(fake);
    return text;
}

// A stream and two events on the fake GPU (device 1), and a buffer to give the stream work.
struct Timed {
    grey_buffer* buffer = nullptr;
    grey_stream* stream = nullptr;
    grey_event* start = nullptr;
    grey_event* end = nullptr;
    explicit Timed(grey_context* context) {
        EXPECT_EQ(grey_buffer_create(context, 1, 4096, &buffer), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_stream_create(context, 1, &stream), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_event_create(context, 1, &start), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_event_create(context, 1, &end), GREY_OK) << grey_last_error();
    }
    ~Timed() {
        grey_event_destroy(end);
        grey_event_destroy(start);
        grey_stream_destroy(stream);
        grey_buffer_destroy(buffer);
    }
    Timed(const Timed&) = delete;
    Timed& operator=(const Timed&) = delete;
    // `count` fills on the stream: each advances the fake's clock FAKE_ZE_TICKS_PER_COMMAND when it runs.
    void fills(int count) {
        for (int i = 0; i < count; ++i) EXPECT_EQ(grey_buffer_fill_async(buffer, 0, static_cast<uint8_t>(i), 64, stream), GREY_OK) << grey_last_error();
    }
    double elapsed(grey_event* from, grey_event* to) {
        double ms = 12345;
        EXPECT_EQ(grey_event_elapsed_ms(from, to, &ms), GREY_OK) << grey_last_error();
        return ms;
    }
};

}  // namespace

// A record writes the device's clock when the queue reaches it (the fake's clock moves only as the
// queue's work runs, which is when something waits), and the difference is converted with the clock
// rate the driver states: ticks per second for an API 1.2+ driver, whole nanoseconds per tick before.
TEST(Level0Fake, ElapsedTimeIsTheDeviceClockBetweenTheRecords) {
    const std::string violations_before = violations();
    ScopedEnv env{{"FAKE_ZE_TICKS_PER_COMMAND", "1000"}, {"FAKE_ZE_CLOCK_START", "777"}};
    Level0Context c;
    Timed t(c.context);
    ASSERT_EQ(grey_event_record(t.start, t.stream), GREY_OK) << grey_last_error();
    t.fills(3);
    ASSERT_EQ(grey_event_record(t.end, t.stream), GREY_OK) << grey_last_error();
    const double three = 3000 / kFakeHz * 1e3;  // 0.15625 ms
    EXPECT_NEAR(t.elapsed(t.start, t.end), three, 1e-12);
    EXPECT_NEAR(t.elapsed(t.end, t.start), -three, 1e-12) << "end before start is negative";
    EXPECT_EQ(t.elapsed(t.start, t.start), 0.0);
    {
        ScopedEnv old_driver{{"FAKE_ZE_API_MINOR", "1"}};  // timerResolution in whole nanoseconds: 52
        EXPECT_NEAR(t.elapsed(t.start, t.end), 3000 * 52 / 1e6, 1e-12);
    }
    // Recording again replaces what the event stands for, while the earlier record's list is still held
    // (a new slot), and after the stream was seen idle (the slot is reset and reused).
    // (zeEventPoolCreate failing shows which: only a new slot needs a pool).
    t.fills(2);
    {
        ScopedEnv no_pool{{"FAKE_ZE_FAIL", "zeEventPoolCreate:1879048194"}};
        EXPECT_EQ(grey_event_record(t.end, t.stream), GREY_ERROR_OUT_OF_MEMORY) << "the earlier record's list still names the slot";
        EXPECT_TRUE(contains(grey_last_error(), "zeEventPoolCreate failed")) << grey_last_error();
    }
    ASSERT_EQ(grey_event_record(t.end, t.stream), GREY_OK);
    EXPECT_NEAR(t.elapsed(t.start, t.end), 5000 / kFakeHz * 1e3, 1e-12);
    ASSERT_EQ(grey_stream_synchronize(t.stream), GREY_OK);
    t.fills(1);
    {
        ScopedEnv no_pool{{"FAKE_ZE_FAIL", "zeEventPoolCreate:1879048194"}};
        ASSERT_EQ(grey_event_record(t.end, t.stream), GREY_OK) << "reused: " << grey_last_error();
    }
    uint32_t done = 1;
    ASSERT_EQ(grey_event_query(t.end, &done), GREY_OK);  // the fake runs the queue at the query
    EXPECT_EQ(done, 1u);
    EXPECT_NEAR(t.elapsed(t.start, t.end), 6000 / kFakeHz * 1e3, 1e-12);
    // Two streams of one device share its clock.
    grey_stream* other = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &other), GREY_OK);
    ASSERT_EQ(grey_event_record(t.start, other), GREY_OK);
    EXPECT_NEAR(t.elapsed(t.start, t.end), 0.0, 1e-12) << "the other stream's record runs after all of the first stream's work";
    grey_stream_destroy(other);
    EXPECT_EQ(violations(), violations_before);
}

// The timestamp counter has timestampValidBits bits: a record after it wrapped still gives the time since
// the one before.
TEST(Level0Fake, ElapsedTimeUndoesOneWrapOfTheTimestampCounter) {
    ScopedEnv env{{"FAKE_ZE_TICKS_PER_COMMAND", "1000"}, {"FAKE_ZE_TIMESTAMP_BITS", "32"}, {"FAKE_ZE_CLOCK_START", "4294965796"}};  // 2^32 - 1500
    Level0Context c;
    Timed t(c.context);
    ASSERT_EQ(grey_event_record(t.start, t.stream), GREY_OK) << grey_last_error();
    t.fills(3);  // the counter reads 4294965796, then 1500
    ASSERT_EQ(grey_event_record(t.end, t.stream), GREY_OK) << grey_last_error();
    EXPECT_NEAR(t.elapsed(t.start, t.end), 3000 / kFakeHz * 1e3, 1e-12);
    EXPECT_NEAR(t.elapsed(t.end, t.start), -3000 / kFakeHz * 1e3, 1e-12);
}

TEST(Level0Fake, ElapsedTimeErrorsAreNamed) {
    Level0Context c;
    Timed t(c.context);
    double ms = 0;
    EXPECT_EQ(grey_event_elapsed_ms(t.start, t.end, &ms), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "start has never been recorded")) << grey_last_error();
    ASSERT_EQ(grey_event_record(t.start, t.stream), GREY_OK);
    EXPECT_EQ(grey_event_elapsed_ms(t.start, t.end, &ms), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "end has never been recorded")) << grey_last_error();
    ASSERT_EQ(grey_event_record(t.end, t.stream), GREY_OK);
    EXPECT_EQ(grey_event_elapsed_ms(t.start, t.end, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    {
        ScopedEnv env{{"FAKE_ZE_TIMER_HZ", "0"}};
        EXPECT_EQ(grey_event_elapsed_ms(t.start, t.end, &ms), GREY_ERROR_UNSUPPORTED);
        EXPECT_TRUE(contains(grey_last_error(), "zeDeviceGetProperties states a timer resolution of 0")) << grey_last_error();
    }
    {
        ScopedEnv env{{"FAKE_ZE_TIMESTAMP_BITS", "0"}};
        EXPECT_EQ(grey_event_elapsed_ms(t.start, t.end, &ms), GREY_ERROR_UNSUPPORTED);
        EXPECT_TRUE(contains(grey_last_error(), "states 0 valid timestamp bits")) << grey_last_error();
    }
    {
        ScopedEnv env{{"FAKE_ZE_FAIL", "zeEventHostSynchronize:1879048193"}};  // ZE_RESULT_ERROR_DEVICE_LOST
        EXPECT_EQ(grey_event_elapsed_ms(t.start, t.end, &ms), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeEventHostSynchronize failed: ZE_RESULT_ERROR_DEVICE_LOST")) << grey_last_error();
    }
    {
        ScopedEnv env{{"FAKE_ZE_FAIL", "zeDriverGetApiVersion:1879048193"}};
        EXPECT_EQ(grey_event_elapsed_ms(t.start, t.end, &ms), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeDriverGetApiVersion failed")) << grey_last_error();
    }
    ASSERT_EQ(grey_event_elapsed_ms(t.start, t.end, &ms), GREY_OK) << grey_last_error();
    EXPECT_EQ(ms, 0.0);

    // A record that cannot be appended is the record's error; the event still stands for the record
    // before it (here the slot is reused: the stream was seen idle, so the slot was reset and must be
    // signalled again).
    ASSERT_EQ(grey_stream_synchronize(t.stream), GREY_OK);
    t.fills(2);
    {
        ScopedEnv env{{"FAKE_ZE_FAIL", "zeCommandListAppendWriteGlobalTimestamp:1879048193"}};
        EXPECT_EQ(grey_event_record(t.end, t.stream), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeCommandListAppendWriteGlobalTimestamp failed: ZE_RESULT_ERROR_DEVICE_LOST")) << grey_last_error();
    }
    uint32_t done = 0;
    ASSERT_EQ(grey_event_query(t.end, &done), GREY_OK) << grey_last_error();
    EXPECT_EQ(done, 1u);
    EXPECT_EQ(t.elapsed(t.start, t.end), 0.0) << "the earlier record's timestamp";
}

TEST(Level0Fake, ElapsedTimeBetweenDevicesIsRefused) {
    ScopedEnv env{{"FAKE_ZE_DEVICES", "2"}};
    Level0Context c;
    grey_stream *one = nullptr, *two = nullptr;
    grey_event *a = nullptr, *b = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &one), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_create(c.context, 2, &two), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_event_create(c.context, 1, &a), GREY_OK);
    ASSERT_EQ(grey_event_create(c.context, 2, &b), GREY_OK);
    ASSERT_EQ(grey_event_record(a, one), GREY_OK);
    ASSERT_EQ(grey_event_record(b, two), GREY_OK);
    double ms = 0;
    EXPECT_EQ(grey_event_elapsed_ms(a, b, &ms), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "must be on one device")) << grey_last_error();
    grey_event_destroy(b);
    grey_event_destroy(a);
    grey_stream_destroy(two);
    grey_stream_destroy(one);
}

// grey_event_destroy is allowed at any time, as on CUDA and HIP, while Level Zero forbids destroying an
// event a queued command still names: the queued wait keeps the event's Level Zero objects until its
// queue was seen past it. The fake reports any destroy under a queued command as a violation.
TEST(Level0Fake, AnEventDestroyedUnderAQueuedWaitStaysUntilTheWaitHasRun) {
    void* fake = dlopen("libze_loader.so.1", RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(fake, nullptr) << dlerror();
    auto live = reinterpret_cast<int (*)()>(dlsym(fake, "fake_ze_live_objects"));
    ASSERT_NE(live, nullptr);
    const std::string violations_before = violations();
    {
        Level0Context c;
        grey_buffer* b = nullptr;
        ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &b), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_fill(b, 0, 0, 4096), GREY_OK);
        const int before = live();
        grey_stream *producer = nullptr, *consumer = nullptr;
        ASSERT_EQ(grey_stream_create(c.context, 1, &producer), GREY_OK);
        ASSERT_EQ(grey_stream_create(c.context, 1, &consumer), GREY_OK);
        std::vector<unsigned char> data(4096), got(4096, 0xFF), after(4096, 0xFF);
        for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 7);
        for (int round = 0; round < 2; ++round) {
            grey_event* ready = nullptr;
            ASSERT_EQ(grey_event_create(c.context, 1, &ready), GREY_OK);
            ASSERT_EQ(grey_buffer_write_async(b, 0, data.data(), data.size(), producer), GREY_OK);
            ASSERT_EQ(grey_event_record(ready, producer), GREY_OK);
            ASSERT_EQ(grey_stream_wait_event(consumer, ready), GREY_OK);
            ASSERT_EQ(grey_buffer_read_async(b, 0, got.data(), got.size(), consumer), GREY_OK);
            ASSERT_EQ(grey_buffer_fill_async(b, 0, 0x5A, 16, consumer), GREY_OK);
            ASSERT_EQ(grey_buffer_read_async(b, 0, after.data(), after.size(), consumer), GREY_OK);
            if (round == 1) {
                ASSERT_EQ(grey_stream_synchronize(producer), GREY_OK);  // only the consumer's wait names it now
            }
            grey_event_destroy(ready);  // nothing of the consumer's has run yet
            EXPECT_EQ(violations(), violations_before);
            EXPECT_EQ(got, std::vector<unsigned char>(4096, 0xFF)) << "the consumer's read waits for the wait";
            ASSERT_EQ(grey_stream_synchronize(consumer), GREY_OK) << grey_last_error();
            EXPECT_EQ(got, data) << "the read ran after the producer's write, through the destroyed event";
            auto expected = data;
            std::fill_n(expected.begin(), 16, 0x5A);
            EXPECT_EQ(after, expected) << "and the consumer's work in its order";
            std::fill(got.begin(), got.end(), 0xFF);
            std::fill(after.begin(), after.end(), 0xFF);
            ASSERT_EQ(grey_buffer_fill(b, 0, 0, 4096), GREY_OK);
        }
        grey_stream_destroy(consumer);
        grey_stream_destroy(producer);
        EXPECT_EQ(live(), before) << "the queues, their lists, the events, their pools and timestamp memory are given back";
        grey_buffer_destroy(b);
    }
    EXPECT_EQ(live(), 0);
    EXPECT_EQ(violations(), violations_before);
    dlclose(fake);
}

// An event whose timestamp memory cannot be had is refused at creation, naming the call, and what was
// made for it (its pool and event) is given back.
TEST(Level0Fake, AnEventThatCannotBeMadeGivesBackWhatWasMade) {
    void* fake = dlopen("libze_loader.so.1", RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(fake, nullptr) << dlerror();
    auto live = reinterpret_cast<int (*)()>(dlsym(fake, "fake_ze_live_objects"));
    ASSERT_NE(live, nullptr);
    {
        Level0Context c;
        const int before = live();
        grey_event* event = nullptr;
        {
            ScopedEnv env{{"FAKE_ZE_FAIL", "zeMemAllocHost:1879048194"}};  // ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY
            EXPECT_EQ(grey_event_create(c.context, 1, &event), GREY_ERROR_OUT_OF_MEMORY);
            EXPECT_TRUE(contains(grey_last_error(), "zeMemAllocHost failed: ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY")) << grey_last_error();
        }
        EXPECT_EQ(live(), before);
        {
            ScopedEnv env{{"FAKE_ZE_FAIL", "zeEventCreate:1879048193"}};
            EXPECT_EQ(grey_event_create(c.context, 1, &event), GREY_ERROR_BACKEND);
            EXPECT_TRUE(contains(grey_last_error(), "zeEventCreate failed")) << grey_last_error();
        }
        EXPECT_EQ(live(), before);
    }
    dlclose(fake);
}

// The check above means something only if the fake catches the misuse: the loader's own calls, destroying
// an event a queued wait names.
TEST(Level0Fake, TheFakeReportsAnEventDestroyedUnderAQueuedWait) {
    void* fake = dlopen("libze_loader.so.1", RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(fake, nullptr) << dlerror();
    auto fn = [&](const char* name) {
        void* f = dlsym(fake, name);
        EXPECT_NE(f, nullptr) << name;
        return f;
    };
    auto init = reinterpret_cast<decltype(&zeInit)>(fn("zeInit"));
    auto driver_get = reinterpret_cast<decltype(&zeDriverGet)>(fn("zeDriverGet"));
    auto device_get = reinterpret_cast<decltype(&zeDeviceGet)>(fn("zeDeviceGet"));
    auto context_create = reinterpret_cast<decltype(&zeContextCreate)>(fn("zeContextCreate"));
    auto context_destroy = reinterpret_cast<decltype(&zeContextDestroy)>(fn("zeContextDestroy"));
    auto queue_create = reinterpret_cast<decltype(&zeCommandQueueCreate)>(fn("zeCommandQueueCreate"));
    auto queue_destroy = reinterpret_cast<decltype(&zeCommandQueueDestroy)>(fn("zeCommandQueueDestroy"));
    auto queue_execute = reinterpret_cast<decltype(&zeCommandQueueExecuteCommandLists)>(fn("zeCommandQueueExecuteCommandLists"));
    auto queue_synchronize = reinterpret_cast<decltype(&zeCommandQueueSynchronize)>(fn("zeCommandQueueSynchronize"));
    auto list_create = reinterpret_cast<decltype(&zeCommandListCreate)>(fn("zeCommandListCreate"));
    auto list_close = reinterpret_cast<decltype(&zeCommandListClose)>(fn("zeCommandListClose"));
    auto list_destroy = reinterpret_cast<decltype(&zeCommandListDestroy)>(fn("zeCommandListDestroy"));
    auto append_wait = reinterpret_cast<decltype(&zeCommandListAppendWaitOnEvents)>(fn("zeCommandListAppendWaitOnEvents"));
    auto pool_create = reinterpret_cast<decltype(&zeEventPoolCreate)>(fn("zeEventPoolCreate"));
    auto pool_destroy = reinterpret_cast<decltype(&zeEventPoolDestroy)>(fn("zeEventPoolDestroy"));
    auto event_create = reinterpret_cast<decltype(&zeEventCreate)>(fn("zeEventCreate"));
    auto event_destroy = reinterpret_cast<decltype(&zeEventDestroy)>(fn("zeEventDestroy"));
    auto host_signal = reinterpret_cast<decltype(&zeEventHostSignal)>(fn("zeEventHostSignal"));
    ASSERT_FALSE(HasFailure());
    const std::string before = violations();
    ASSERT_EQ(init(ZE_INIT_FLAG_GPU_ONLY), ZE_RESULT_SUCCESS);
    uint32_t count = 1;
    ze_driver_handle_t driver = nullptr;
    ze_device_handle_t device = nullptr;
    ASSERT_EQ(driver_get(&count, &driver), ZE_RESULT_SUCCESS);
    ASSERT_EQ(device_get(driver, &count, &device), ZE_RESULT_SUCCESS);
    ze_context_desc_t context_desc{ZE_STRUCTURE_TYPE_CONTEXT_DESC, nullptr, 0};
    ze_context_handle_t context = nullptr;
    ASSERT_EQ(context_create(driver, &context_desc, &context), ZE_RESULT_SUCCESS);
    ze_command_queue_desc_t queue_desc{};
    queue_desc.stype = ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC;
    queue_desc.mode = ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS;
    ze_command_queue_handle_t queue = nullptr;
    ASSERT_EQ(queue_create(context, device, &queue_desc, &queue), ZE_RESULT_SUCCESS);
    ze_event_pool_desc_t pool_desc{ZE_STRUCTURE_TYPE_EVENT_POOL_DESC, nullptr, ZE_EVENT_POOL_FLAG_HOST_VISIBLE, 1};
    ze_event_pool_handle_t pool = nullptr;
    ASSERT_EQ(pool_create(context, &pool_desc, 1, &device, &pool), ZE_RESULT_SUCCESS);
    ze_event_desc_t event_desc{ZE_STRUCTURE_TYPE_EVENT_DESC, nullptr, 0, ZE_EVENT_SCOPE_FLAG_HOST, ZE_EVENT_SCOPE_FLAG_HOST};
    ze_event_handle_t event = nullptr;
    ASSERT_EQ(event_create(pool, &event_desc, &event), ZE_RESULT_SUCCESS);
    ze_command_list_desc_t list_desc{};
    list_desc.stype = ZE_STRUCTURE_TYPE_COMMAND_LIST_DESC;
    ze_command_list_handle_t list = nullptr;
    ASSERT_EQ(list_create(context, device, &list_desc, &list), ZE_RESULT_SUCCESS);
    ASSERT_EQ(append_wait(list, 1, &event), ZE_RESULT_SUCCESS);
    ASSERT_EQ(list_close(list), ZE_RESULT_SUCCESS);
    ASSERT_EQ(queue_execute(queue, 1, &list, nullptr), ZE_RESULT_SUCCESS);
    ASSERT_EQ(host_signal(event), ZE_RESULT_SUCCESS);  // so the wait itself would pass
    ASSERT_EQ(pool_destroy(pool), ZE_RESULT_SUCCESS);
    EXPECT_TRUE(contains(violations().substr(before.size()), "zeEventPoolDestroy of a pool with 1 event(s) not destroyed")) << violations();
    ASSERT_EQ(event_destroy(event), ZE_RESULT_SUCCESS);
    EXPECT_TRUE(contains(violations().substr(before.size()), "zeEventDestroy of an event 1 queued command(s) not yet executed still name"))
        << violations();
    ASSERT_EQ(queue_synchronize(queue, UINT64_MAX), ZE_RESULT_SUCCESS);  // the wait runs on the kept event
    EXPECT_EQ(pool_destroy(pool), ZE_RESULT_SUCCESS);
    EXPECT_EQ(list_destroy(list), ZE_RESULT_SUCCESS);
    EXPECT_EQ(queue_destroy(queue), ZE_RESULT_SUCCESS);
    EXPECT_EQ(context_destroy(context), ZE_RESULT_SUCCESS);
    dlclose(fake);
}

namespace {

// The fake's record of the launches so far ("name(argument sizes)xgroups;..."), or "" when this process
// did not load the fake.
std::string launches() {
    void* fake = dlopen("libze_loader.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (fake == nullptr) return "";
    auto record = reinterpret_cast<const char* (*)()>(dlsym(fake, "fake_ze_launches"));
    std::string text = record != nullptr ? record() : "";
    dlclose(fake);
    return text;
}

// The launches of a record, sorted: which kernels ran how, whatever order they were appended in.
std::vector<std::string> sorted_launches(const std::string& record) {
    std::vector<std::string> out;
    for (size_t at = 0, end = 0; (end = record.find(';', at)) != std::string::npos; at = end + 1) out.push_back(record.substr(at, end - at));
    std::sort(out.begin(), out.end());
    return out;
}

// How often `needle` occurs in `text`.
size_t occurrences(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
}

// A plain F32 [4, 128] tensor and room for its quantized form, on the Level Zero device.
struct QuantBuffers {
    grey_tensor_desc desc = grey::test::small_q4_0_desc();
    grey_quant_params params = GREY_QUANT_PARAMS_INIT;
    grey_buffer* plain = nullptr;
    grey_buffer* packed = nullptr;
    explicit QuantBuffers(grey_context* context) {
        EXPECT_EQ(grey_buffer_create(context, 1, 4 * 128 * 4, &plain), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_buffer_create(context, 1, 4 * 128 * 4, &packed), GREY_OK) << grey_last_error();
        const std::vector<float> values(4 * 128, 0.5f);
        EXPECT_EQ(grey_buffer_write(plain, 0, values.data(), values.size() * sizeof(float)), GREY_OK);
        EXPECT_EQ(grey_buffer_fill(packed, 0, 0xEE, 4 * 128 * 4), GREY_OK) << grey_last_error();
    }
    ~QuantBuffers() {
        grey_buffer_destroy(packed);
        grey_buffer_destroy(plain);
    }
    QuantBuffers(const QuantBuffers&) = delete;
    QuantBuffers& operator=(const QuantBuffers&) = delete;
};

}  // namespace

TEST(Level0Fake, FillAndCopyRunTheirKernels) {
    Level0Context c;
    grey_buffer* a = nullptr;
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 100000, &a), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_create(c.context, 1, 100000, &b), GREY_OK) << grey_last_error();
    const std::string before = launches();
    ASSERT_EQ(grey_buffer_fill(a, 3, 0x5A, 99990), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_copy(b, 1, a, 7, 5000), GREY_OK) << grey_last_error();
    const std::string after = launches().substr(before.size());
    // (buffer, offset, n, value) and (to, to offset, from, from offset, n), in groups of 256 work items
    // moving 16 bytes each.
    EXPECT_EQ(after, "grey_fill(8,8,8,4)x25;grey_copy(8,8,8,8,8)x2;");
    std::vector<unsigned char> back(5002);
    ASSERT_EQ(grey_buffer_read(b, 0, back.data(), back.size()), GREY_OK);
    EXPECT_EQ(back[1], 0x5A);
    EXPECT_EQ(back[5000], 0x5A);
    grey_buffer_destroy(b);
    grey_buffer_destroy(a);
}

TEST(Level0Fake, QuantizeAndDequantizeLaunchTheSpirvKernelsAndTheHostWritesTheScales) {
    Level0Context c;
    QuantBuffers q(c.context);
    q.params.format = GREY_QUANT_INT8;  // one fp32 scale per row: 512 code bytes, then 16 bytes of scales
    const std::string before = launches();
    ASSERT_EQ(grey_quantize_buffer(&q.desc, q.plain, 0, &q.params, q.packed, 0, nullptr), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_dequantize_buffer(&q.desc, &q.params, q.packed, 0, q.plain, 0), GREY_OK) << grey_last_error();
    const std::string size = std::to_string(sizeof(grey_ql0_args));
    // Statistics over 4 runs of one piece each, the encoder over 512 elements, the decoder over 512.
    EXPECT_EQ(launches().substr(before.size()),
              "grey_quant_stats(8,8," + size + ")x1;grey_quant_encode(8,8,8," + size + ")x8;grey_quant_decode(8,8," + size + ")x8;");
    // The fake's statistics say every element is 0, so every scale the host chose is 0, written after
    // the codes; the fake's encoder wrote no code.
    std::vector<unsigned char> packed(512 + 16 + 1);
    ASSERT_EQ(grey_buffer_read(q.packed, 0, packed.data(), packed.size()), GREY_OK);
    EXPECT_EQ(std::vector<unsigned char>(packed.begin(), packed.begin() + 512), std::vector<unsigned char>(512, 0xEE));
    EXPECT_EQ(std::vector<unsigned char>(packed.begin() + 512, packed.begin() + 528), std::vector<unsigned char>(16, 0));
    EXPECT_EQ(packed[528], 0xEE);
}

TEST(Level0Fake, ANonFiniteElementTheKernelFindsIsRefusedInTheHostBackendsWords) {
    Level0Context c;
    QuantBuffers q(c.context);
    q.params.format = GREY_QUANT_Q4_0;
    const grey_memory_stats before = c.stats();
    const std::string launched = launches();
    {
        ScopedEnv env{{"FAKE_ZE_NON_FINITE", "77"}};
        EXPECT_EQ(grey_quantize_buffer(&q.desc, q.plain, 0, &q.params, q.packed, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_TRUE(contains(grey_last_error(), "element 77 is NaN; only finite values can be quantized")) << grey_last_error();
    }
    EXPECT_EQ(occurrences(launches().substr(launched.size()), "grey_quant_encode"), 0u) << "nothing is encoded from a refused tensor";
    EXPECT_EQ(c.stats().allocation_count, before.allocation_count);  // the scratch went back
}

TEST(Level0Fake, MseCalibrationRunsTheSearchAndTheInt4RefitKernels) {
    Level0Context c;
    QuantBuffers q(c.context);
    q.params.format = GREY_QUANT_INT4;
    q.params.group_size = 32;
    q.params.calibration = GREY_CALIBRATION_MSE;
    const grey_memory_stats before = c.stats();
    const std::string launched = launches();
    ASSERT_EQ(grey_quantize_buffer(&q.desc, q.plain, 0, &q.params, q.packed, 0, nullptr), GREY_OK) << grey_last_error();
    const std::string size = std::to_string(sizeof(grey_ql0_args));
    // 16 groups: their statistics, the search over 26 clipping fractions (16 x 26 work items), one refit
    // whose sums say every code is equal (the fake's zeros), so nothing is fitted, then the encoder.
    EXPECT_EQ(launches().substr(launched.size()), "grey_quant_stats(8,8," + size + ")x1;grey_quant_search(8,8,8," + size + ",4)x7;grey_quant_refit(8,8,8," +
                                                      size + ")x1;grey_quant_encode(8,8,8," + size + ")x4;");
    EXPECT_EQ(c.stats().allocation_count, before.allocation_count);  // every scratch went back
}

TEST(Level0Fake, QuantizationKernelsThatCannotLoadAreABackendErrorAndLeakNothing) {
    Level0Context c;
    QuantBuffers q(c.context);
    q.params.format = GREY_QUANT_NF4;
    const grey_memory_stats before = c.stats();
    {
        ScopedEnv env{{"FAKE_ZE_FAIL", "zeModuleCreate:1879048196"},  // ZE_RESULT_ERROR_MODULE_BUILD_FAILURE
                      {"FAKE_ZE_BUILD_LOG", "error: unsupported SPIR-V capability GenericPointer"}};
        EXPECT_EQ(grey_quantize_buffer(&q.desc, q.plain, 0, &q.params, q.packed, 0, nullptr), GREY_ERROR_BACKEND);
        const std::string message = grey_last_error();
        EXPECT_TRUE(contains(message, "zeModuleCreate failed: ZE_RESULT_ERROR_MODULE_BUILD_FAILURE for grey_quant.clcpp") &&
                    contains(message, "build log: error: unsupported SPIR-V capability GenericPointer"))
            << message;
        EXPECT_EQ(grey_dequantize_buffer(&q.desc, &q.params, q.packed, 0, q.plain, 0), GREY_ERROR_BACKEND);
    }
    {
        ScopedEnv env{{"FAKE_ZE_FAIL", "zeKernelCreate:2013265937"}};  // ZE_RESULT_ERROR_INVALID_KERNEL_NAME
        EXPECT_EQ(grey_quantize_buffer(&q.desc, q.plain, 0, &q.params, q.packed, 0, nullptr), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "(grey_quant_stats of grey_quant.clcpp)")) << grey_last_error();
    }
    {
        const std::string fail = std::string("zeCommandListAppendLaunchKernel:") + kDeviceLost;
        ScopedEnv env{{"FAKE_ZE_FAIL", fail.c_str()}};
        EXPECT_EQ(grey_quantize_buffer(&q.desc, q.plain, 0, &q.params, q.packed, 0, nullptr), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeCommandListAppendLaunchKernel failed: ZE_RESULT_ERROR_DEVICE_LOST")) << grey_last_error();
        EXPECT_EQ(grey_buffer_fill(q.packed, 0, 1, 16), GREY_ERROR_BACKEND);
    }
    const grey_memory_stats after = c.stats();
    EXPECT_EQ(after.allocation_count, before.allocation_count);
    EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
    // The next call builds the module again, and works.
    EXPECT_EQ(grey_quantize_buffer(&q.desc, q.plain, 0, &q.params, q.packed, 0, nullptr), GREY_OK) << grey_last_error();
}

namespace {

// One KV cache shape on the host device (0) and on the fake Level Zero device (1), a sequence in each:
// 2 layers, 2 KV heads, head_dim 64, blocks of 16 tokens, a window of 16 tokens (so that blocks are
// quantized as they leave it), INT4.
struct KvPair {
    grey_kv_cache* host = nullptr;
    grey_kv_cache* device = nullptr;
    uint64_t host_sequence = 0, device_sequence = 0;
    grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
    std::mt19937 rng{21};
    uint32_t next_id = 0;

    KvPair(grey_context* context, uint32_t flags) {
        config.layers = 2;
        config.kv_heads = 2;
        config.head_dim = 64;
        config.tokens_per_block = 16;
        config.window_tokens = 16;
        config.format = GREY_KV_INT4;
        config.flags = flags;
        config.capacity_bytes = 8u << 20;
        EXPECT_EQ(grey_kv_cache_create(context, 0, &config, &host), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_kv_cache_create(context, 1, &config, &device), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_kv_sequence_create(host, 0, &host_sequence), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_kv_sequence_create(device, 0, &device_sequence), GREY_OK) << grey_last_error();
    }
    ~KvPair() {
        grey_kv_cache_destroy(device);
        grey_kv_cache_destroy(host);
    }
    KvPair(const KvPair&) = delete;
    KvPair& operator=(const KvPair&) = delete;

    // Appends `n` tokens of random K/V to the device's sequence, and to the host's when that worked.
    grey_status append(uint32_t n) {
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> keys(size_t{config.layers} * n * config.kv_heads * config.head_dim), values(keys.size());
        for (auto& k : keys) k = normal(rng);
        for (auto& v : values) v = normal(rng);
        std::vector<int32_t> ids(n);
        for (auto& id : ids) id = static_cast<int32_t>(next_id++);
        const uint64_t bytes = keys.size() * sizeof(float);
        const grey_status status = grey_kv_append(device, device_sequence, ids.data(), n, GREY_DTYPE_F32, keys.data(), values.data(), bytes);
        if (status == GREY_OK) {
            EXPECT_EQ(grey_kv_append(host, host_sequence, ids.data(), n, GREY_DTYPE_F32, keys.data(), values.data(), bytes), GREY_OK);
        }
        return status;
    }

    // Both sequences' K and V of every layer, as stored, bit for bit.
    void expect_same_contents() {
        uint64_t length = 0;
        ASSERT_EQ(grey_kv_sequence_length(device, device_sequence, &length), GREY_OK);
        const size_t count = length * config.kv_heads * config.head_dim;
        for (uint32_t layer = 0; layer < config.layers; ++layer) {
            std::vector<float> dk(count), dv(count), hk(count), hv(count);
            ASSERT_EQ(grey_kv_gather(device, device_sequence, layer, dk.data(), dv.data(), count * 4), GREY_OK) << grey_last_error();
            ASSERT_EQ(grey_kv_gather(host, host_sequence, layer, hk.data(), hv.data(), count * 4), GREY_OK) << grey_last_error();
            EXPECT_EQ(std::memcmp(dk.data(), hk.data(), count * 4), 0) << "layer " << layer;
            EXPECT_EQ(std::memcmp(dv.data(), hv.data(), count * 4), 0) << "layer " << layer;
        }
    }

    // Attention of 8 query heads on `layer`: the device's status, its output compared with the host's.
    grey_status attend(uint32_t layer, double* worst) {
        grey_kv_attend_params params = GREY_KV_ATTEND_PARAMS_INIT;
        params.layer = layer;
        params.query_heads = 8;
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> queries(size_t{8} * config.head_dim), on_device(queries.size()), on_host(queries.size());
        for (auto& q : queries) q = normal(rng);
        const uint64_t bytes = queries.size() * sizeof(float);
        const grey_status status = grey_kv_attend(device, &params, &device_sequence, 1, queries.data(), on_device.data(), bytes);
        if (status != GREY_OK) return status;
        EXPECT_EQ(grey_kv_attend(host, &params, &host_sequence, 1, queries.data(), on_host.data(), bytes), GREY_OK);
        *worst = 0;
        for (size_t i = 0; i < queries.size(); ++i)
            *worst = std::max(*worst, std::fabs(static_cast<double>(on_device[i]) - on_host[i]) / (1.0 + std::fabs(on_host[i])));
        return status;
    }
};

}  // namespace

TEST(Level0Fake, KvCacheRunsTheKvKernelsAndHoldsWhatTheHostHolds) {
    // The fake computes the KV kernels by common/kv_layout.hpp's rule, so this proves the plumbing
    // (addresses, slots, block tables, sequences, scratch), not the kernels: test_kv_on_opencl.cpp runs
    // the SPIR-V itself.
    Level0Context c;
    const grey_memory_stats before = c.stats();
    {
        KvPair kv(c.context, GREY_KV_HADAMARD_K);
        const std::string launched = launches();
        ASSERT_EQ(kv.append(23), GREY_OK) << grey_last_error();
        ASSERT_EQ(kv.append(1), GREY_OK) << grey_last_error();
        ASSERT_EQ(kv.append(17), GREY_OK) << grey_last_error();  // 41 tokens: the first block leaves the window
        grey_kv_stats stats{};
        stats.struct_size = sizeof stats;
        ASSERT_EQ(grey_kv_cache_stats_get(kv.device, &stats), GREY_OK);
        EXPECT_EQ(stats.blocks_compressed, 1u);
        kv.expect_same_contents();
        for (uint32_t layer : {0u, 1u}) {
            double worst = 1;
            ASSERT_EQ(kv.attend(layer, &worst), GREY_OK) << grey_last_error();
            EXPECT_LE(worst, 1e-6) << "layer " << layer;
        }
        const std::string ran = launches().substr(launched.size());
        const auto launch = [](const char* name, size_t size) { return std::string(name) + "(" + std::to_string(size) + ")"; };
        EXPECT_EQ(occurrences(ran, launch("grey_kvk_store", sizeof(grey_kvl0_store_args))), 3u) << ran;
        EXPECT_EQ(occurrences(ran, launch("grey_kvk_params", sizeof(grey_kvl0_compress_args))), 1u) << ran;
        EXPECT_EQ(occurrences(ran, launch("grey_kvk_codes", sizeof(grey_kvl0_compress_args))), 1u) << ran;
        EXPECT_EQ(occurrences(ran, launch("grey_kvk_attend", sizeof(grey_kvl0_attend_args))), 2u) << ran;
    }
    EXPECT_EQ(c.stats().allocation_count, before.allocation_count);  // every block and scratch went back
}

// K/V in device buffers, BF16: the store kernel reads them there and notes each row's first NaN or
// infinity; the plugin reads the rows' notes back, so the call names the first, appends nothing, and
// otherwise stores what an append of host arrays stores.
TEST(Level0Fake, KvAppendFromDeviceBuffersIsCheckedByTheKernel) {
    Level0Context c;
    KvPair kv(c.context, 0);
    ASSERT_EQ(kv.append(5), GREY_OK) << grey_last_error();
    const uint32_t n = 20;
    const size_t count = size_t{kv.config.layers} * n * kv.config.kv_heads * kv.config.head_dim;
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<uint16_t> halves(2 * count);  // BF16 keys, then values
    for (auto& h : halves) {
        const float x = normal(kv.rng);
        uint32_t bits;
        std::memcpy(&bits, &x, 4);
        h = static_cast<uint16_t>(bits >> 16);
    }
    std::vector<int32_t> ids(n);
    for (auto& id : ids) id = static_cast<int32_t>(kv.next_id++);
    const uint64_t bytes = count * 2;
    grey_buffer* input = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 2 + 2 * bytes, &input), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_write(input, 2, halves.data(), 2 * bytes), GREY_OK);

    const uint16_t kept = halves[10];
    halves[10] = 0x7FC0;  // keys[10]: NaN
    ASSERT_EQ(grey_buffer_write(input, 2 + 20, &halves[10], 2), GREY_OK);
    EXPECT_EQ(grey_kv_append_buffer(kv.device, kv.device_sequence, ids.data(), n, GREY_DTYPE_BF16, input, 2, input, 2 + bytes, bytes),
              GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "keys[10] is not finite")) << grey_last_error();
    uint64_t length = 0;
    ASSERT_EQ(grey_kv_sequence_length(kv.device, kv.device_sequence, &length), GREY_OK);
    EXPECT_EQ(length, 5u);

    halves[10] = kept;
    ASSERT_EQ(grey_buffer_write(input, 2 + 20, &halves[10], 2), GREY_OK);
    ASSERT_EQ(grey_kv_append_buffer(kv.device, kv.device_sequence, ids.data(), n, GREY_DTYPE_BF16, input, 2, input, 2 + bytes, bytes), GREY_OK)
        << grey_last_error();
    ASSERT_EQ(grey_kv_append(kv.host, kv.host_sequence, ids.data(), n, GREY_DTYPE_BF16, halves.data(), halves.data() + count, bytes), GREY_OK);
    kv.expect_same_contents();
    grey_buffer_destroy(input);
}

TEST(Level0Fake, KvKernelsThatFailAreABackendErrorNamingTheCallAndTheKernelAndTheNextJobRuns) {
    Level0Context c;
    KvPair kv(c.context, 0);
    ASSERT_NE(kv.device, nullptr);
    const auto allocations = [&] { return c.stats().allocation_count; };
    const uint64_t empty = allocations();
    {
        ScopedEnv env{{"FAKE_ZE_FAIL", "zeModuleCreate:1879048196"},  // ZE_RESULT_ERROR_MODULE_BUILD_FAILURE
                      {"FAKE_ZE_BUILD_LOG", "error: unsupported SPIR-V capability GenericPointer"}};
        EXPECT_EQ(kv.append(5), GREY_ERROR_BACKEND);
        const std::string message = grey_last_error();
        EXPECT_TRUE(contains(message, "zeModuleCreate failed: ZE_RESULT_ERROR_MODULE_BUILD_FAILURE for grey_kv.clcpp") &&
                    contains(message, "build log: error: unsupported SPIR-V capability GenericPointer"))
            << message;
    }
    // The cache keeps the failed append's block memory for its next block (its capacity allows it).
    EXPECT_EQ(allocations(), empty + 1) << "the failed append's staging went back, and its block to the cache";
    {
        ScopedEnv env{{"FAKE_ZE_FAIL", "zeKernelCreate:2013265937"}};  // ZE_RESULT_ERROR_INVALID_KERNEL_NAME
        EXPECT_EQ(kv.append(5), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeKernelCreate failed: ZE_RESULT_ERROR_INVALID_KERNEL_NAME (grey_kvk_store of grey_kv.clcpp)"))
            << grey_last_error();
    }
    {
        const std::string fail = std::string("zeKernelSetIndirectAccess:") + kDeviceLost;
        ScopedEnv env{{"FAKE_ZE_FAIL", fail.c_str()}};
        EXPECT_EQ(kv.append(5), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeKernelSetIndirectAccess failed: ZE_RESULT_ERROR_DEVICE_LOST (grey_kvk_store of grey_kv.clcpp)"))
            << grey_last_error();
    }
    {
        const std::string fail = std::string("zeCommandListAppendLaunchKernel:") + kDeviceLost;
        ScopedEnv env{{"FAKE_ZE_FAIL", fail.c_str()}};
        EXPECT_EQ(kv.append(5), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeCommandListAppendLaunchKernel failed: ZE_RESULT_ERROR_DEVICE_LOST (grey_kvk_store)"))
            << grey_last_error();
    }
    EXPECT_EQ(allocations(), empty + 1) << "each failed append took the kept block and gave it back";
    uint64_t length = 1;
    ASSERT_EQ(grey_kv_sequence_length(kv.device, kv.device_sequence, &length), GREY_OK);
    EXPECT_EQ(length, 0u) << "a failed append appends nothing";
    // The next job builds the module again, and works.
    ASSERT_EQ(kv.append(20), GREY_OK) << grey_last_error();
    kv.expect_same_contents();
    // Compression (the next append fills a second block: the first leaves the window) with its kernel
    // missing: the append stands, its block stays in window form, and the next append quantizes it.
    {
        ScopedEnv env{{"FAKE_ZE_FAIL", "zeKernelCreate:2013265937"}};
        EXPECT_EQ(kv.append(12), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "(grey_kvk_params of grey_kv.clcpp)")) << grey_last_error();
    }
    // The host's sequence did not take the failed append's tokens: drop them, and append the same to both.
    ASSERT_EQ(grey_kv_sequence_truncate(kv.device, kv.device_sequence, 20), GREY_OK) << grey_last_error();
    ASSERT_EQ(kv.append(12), GREY_OK) << grey_last_error();
    kv.expect_same_contents();
    double worst = 1;
    {
        const std::string fail = std::string("zeCommandListAppendLaunchKernel:") + kDeviceLost;
        ScopedEnv env{{"FAKE_ZE_FAIL", fail.c_str()}};
        EXPECT_EQ(kv.attend(1, &worst), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeCommandListAppendLaunchKernel failed: ZE_RESULT_ERROR_DEVICE_LOST (grey_kvk_attend)"))
            << grey_last_error();
    }
    ASSERT_EQ(kv.attend(1, &worst), GREY_OK) << grey_last_error();
    EXPECT_LE(worst, 1e-6);
}

TEST(Level0Fake, PowerLimitIsTheSustainedLimitAndGivesThePrevious) {
    Level0Context c;
    uint64_t previous = 0;
    ASSERT_EQ(grey_device_power_limit_set(c.context, 1, 400000, &previous), GREY_OK) << grey_last_error();
    EXPECT_EQ(previous, 550000u);
    EXPECT_EQ(c.spec().power_limit_mw.value, 400000u);
    // Below the stated minimum: refused before the driver is asked; above what the driver takes: its refusal.
    EXPECT_EQ(grey_device_power_limit_set(c.context, 1, 100000, &previous), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "outside the device's range (zesPowerGetProperties: min 300000")) << grey_last_error();
    EXPECT_EQ(grey_device_power_limit_set(c.context, 1, 650000, &previous), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "zesPowerSetLimits failed: ZE_RESULT_ERROR_INVALID_ARGUMENT")) << grey_last_error();
    {
        const std::string fail = std::string("zesPowerSetLimits:") + kInsufficientPermissions;
        ScopedEnv env{{"FAKE_ZE_FAIL", fail.c_str()}};
        EXPECT_EQ(grey_device_power_limit_set(c.context, 1, 500000, &previous), GREY_ERROR_PERMISSION_DENIED);
    }
    ASSERT_EQ(grey_device_power_limit_set(c.context, 1, 550000, &previous), GREY_OK) << grey_last_error();
    EXPECT_EQ(previous, 400000u);
    EXPECT_EQ(c.spec().power_limit_mw.value, 550000u);
}

TEST(Level0Fake, NoDevicesSkipsTheBackend) {
    ScopedEnv env{{"FAKE_ZE_DEVICES", "0"}};
    Level0Context c;
    const auto info = c.report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(contains(info.reason, "not offered on this machine") && contains(info.reason, "reports no GPU")) << info.reason;
}

TEST(Level0Fake, LoaderWithoutAGpuDriverSkipsTheBackend) {
    const std::string fail = std::string("zeInit:") + kUninitialized;
    ScopedEnv env{{"FAKE_ZE_FAIL", fail.c_str()}};
    Level0Context c;
    const auto info = c.report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(contains(info.reason, "found no usable GPU driver") && contains(info.reason, "zeInit failed: ZE_RESULT_ERROR_UNINITIALIZED"))
        << info.reason;
}

TEST(Level0Fake, EverythingIsGivenBackAtTheEnd) {
    // Keep the fake loaded past the context so its counters can be read after.
    void* fake = dlopen("libze_loader.so.1", RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(fake, nullptr) << dlerror();
    auto live = reinterpret_cast<int (*)()>(dlsym(fake, "fake_ze_live_objects"));
    ASSERT_NE(live, nullptr) << "not the fake loader";
    {
        Level0Context c;
        grey_buffer* b = nullptr;
        ASSERT_EQ(grey_buffer_create(c.context, 1, 200 << 20, &b), GREY_OK) << grey_last_error();
        uint64_t sum = 0;
        ASSERT_EQ(grey_buffer_checksum(b, 0, 1 << 20, &sum), GREY_OK) << grey_last_error();
        EXPECT_GE(live(), 5);  // a context, a command list, a module, a kernel, chunks
        grey_buffer_destroy(b);
        // The KV module and its four kernels, blocks and scratch too.
        KvPair kv(c.context, GREY_KV_HADAMARD_K);
        ASSERT_EQ(kv.append(40), GREY_OK) << grey_last_error();
        double worst = 1;
        ASSERT_EQ(kv.attend(0, &worst), GREY_OK) << grey_last_error();
    }
    EXPECT_EQ(live(), 0);
    dlclose(fake);
}

// ----- quantization on a stream (quantize_async: ze_quant_stream.hpp; dequantize_async) ---------------

// Every case of the launch-plan set, enqueued on a stream: the same kernels with the same arguments and
// groups as the synchronous calls (the fake's launch record), the same bytes in both tensors, and
// nothing read back before the wait (the stream's host thread runs a job only up to its release, and
// the reads come after it).
TEST(Level0Fake, AsyncQuantizationLaunchesAndWritesWhatTheSynchronousCallsDo) {
    const std::string before = violations();
    Level0Context c;
    const std::string start = launches();
    const auto synchronous = grey::test::run_quant_cases(c.context, nullptr);
    const std::string middle = launches();
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    const auto on_stream = grey::test::run_quant_cases(c.context, stream, true);
    const std::string synchronous_launches = middle.substr(start.size()), stream_launches = launches().substr(middle.size());
    EXPECT_NE(synchronous_launches.find("grey_quant_encode"), std::string::npos);
    // The fake records a launch when it is appended: a dequantization's at its call, a quantization's
    // kernels when the stream's thread runs the job, so the order between jobs may differ.
    EXPECT_EQ(sorted_launches(stream_launches), sorted_launches(synchronous_launches));
    ASSERT_EQ(on_stream.size(), synchronous.size());
    for (size_t i = 0; i < on_stream.size(); ++i) EXPECT_TRUE(on_stream[i] == synchronous[i]) << "case " << i;
    grey_stream_destroy(stream);
    EXPECT_EQ(violations(), before);
}

// One stream: a fill of the quantized buffer, the quantization (whose host step writes the INT8 scales
// after the codes, the fake's encoder writing no code), a read, another fill, another read: each read
// sees exactly the work before it. A dequantization on a second stream waits for an event.
TEST(Level0Fake, AsyncQuantizeIsOrderedWithTheStreamsWork) {
    const std::string before = violations();
    Level0Context c;
    QuantBuffers q(c.context);
    q.params.format = GREY_QUANT_INT8;  // 512 code bytes, then 16 bytes of scales
    grey_stream *stream = nullptr, *other = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_create(c.context, 1, &other), GREY_OK) << grey_last_error();
    grey_event* quantized = nullptr;
    ASSERT_EQ(grey_event_create(c.context, 1, &quantized), GREY_OK);
    std::vector<unsigned char> first(529, 0x11), second(529, 0x11);
    const std::string launched = launches();
    ASSERT_EQ(grey_buffer_fill_async(q.packed, 0, 0xAB, 4 * 128 * 4, stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, q.plain, 0, &q.params, q.packed, 0, stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_read_async(q.packed, 0, first.data(), first.size(), stream), GREY_OK);
    ASSERT_EQ(grey_event_record(quantized, stream), GREY_OK);
    ASSERT_EQ(grey_buffer_fill_async(q.packed, 0, 0xCD, 4 * 128 * 4, stream), GREY_OK);
    ASSERT_EQ(grey_buffer_read_async(q.packed, 0, second.data(), second.size(), stream), GREY_OK);
    ASSERT_EQ(grey_stream_wait_event(other, quantized), GREY_OK);
    ASSERT_EQ(grey_dequantize_buffer_async(&q.desc, &q.params, q.packed, 0, q.plain, 0, other), GREY_OK) << grey_last_error();
    EXPECT_EQ(first, std::vector<unsigned char>(529, 0x11)) << "nothing after the quantization has run before a wait";
    // The stream's thread runs the job by itself once the queue reaches it (the fake's queue runs up to a
    // gate its waiter asks for): wait until it has, before anything else waits on the stream, so that a
    // job run before the fill ahead of it would be overwritten by the fill and seen below.
    for (int waited = 0; waited < 10000 && launches().find("grey_quant_encode", launched.size()) == std::string::npos; ++waited)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_NE(launches().find("grey_quant_encode", launched.size()), std::string::npos) << "the stream's thread ran the job";
    ASSERT_EQ(grey_stream_synchronize(other), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(std::vector<unsigned char>(first.begin(), first.begin() + 512), std::vector<unsigned char>(512, 0xAB));
    EXPECT_EQ(std::vector<unsigned char>(first.begin() + 512, first.begin() + 528), std::vector<unsigned char>(16, 0));
    EXPECT_EQ(first[528], 0xAB);
    EXPECT_EQ(second, std::vector<unsigned char>(529, 0xCD));
    const std::string size = std::to_string(sizeof(grey_ql0_args));
    EXPECT_EQ(sorted_launches(launches().substr(launched.size())),
              sorted_launches("grey_quant_stats(8,8," + size + ")x1;grey_quant_encode(8,8,8," + size + ")x8;grey_quant_decode(8,8," + size + ")x8;"));
    grey_event_destroy(quantized);
    grey_stream_destroy(other);
    grey_stream_destroy(stream);
    EXPECT_EQ(violations(), before);
}

// A NaN the statistics kernel finds in an enqueued job: the enqueue succeeds; the next synchronize, an
// event recorded after the job and an idle query fail with the synchronous call's status and message;
// the quantized tensor is left as the synchronous call leaves it (untouched: nothing is encoded); work
// after the failure still runs; an event recorded before it completes without it.
TEST(Level0Fake, AsyncQuantizeNanSurfacesAtSynchronizeWithTheSynchronousMessage) {
    const std::string before = violations();
    Level0Context c;
    QuantBuffers q(c.context);
    q.params.format = GREY_QUANT_Q4_0;
    std::string synchronous;
    std::vector<unsigned char> synchronous_bytes(4 * 128 * 4), stream_bytes(4 * 128 * 4);
    {
        ScopedEnv env{{"FAKE_ZE_NON_FINITE", "77"}};
        ASSERT_EQ(grey_quantize_buffer(&q.desc, q.plain, 0, &q.params, q.packed, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
        synchronous = grey_last_error();
    }
    EXPECT_TRUE(contains(synchronous, "element 77 is NaN; only finite values can be quantized")) << synchronous;
    ASSERT_EQ(grey_buffer_read(q.packed, 0, synchronous_bytes.data(), synchronous_bytes.size()), GREY_OK);
    EXPECT_EQ(synchronous_bytes, std::vector<unsigned char>(4 * 128 * 4, 0xEE));
    grey_stream* stream = nullptr;
    grey_event *early = nullptr, *late = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_event_create(c.context, 1, &early), GREY_OK);
    ASSERT_EQ(grey_event_create(c.context, 1, &late), GREY_OK);
    std::vector<unsigned char> after(16, 0);
    {
        ScopedEnv env{{"FAKE_ZE_NON_FINITE", "77"}};  // read when the statistics kernel runs: kept until the waits below
        ASSERT_EQ(grey_event_record(early, stream), GREY_OK);
        ASSERT_EQ(grey_quantize_buffer_async(&q.desc, q.plain, 0, &q.params, q.packed, 0, stream), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_read_async(q.packed, 0, stream_bytes.data(), stream_bytes.size(), stream), GREY_OK);
        ASSERT_EQ(grey_buffer_fill_async(q.packed, 0, 0x42, 16, stream), GREY_OK);
        ASSERT_EQ(grey_buffer_read_async(q.packed, 0, after.data(), after.size(), stream), GREY_OK);
        ASSERT_EQ(grey_event_record(late, stream), GREY_OK);
        EXPECT_EQ(grey_event_synchronize(early), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_event_synchronize(late), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_EQ(grey_last_error(), synchronous);
        uint32_t done = 0;
        EXPECT_EQ(grey_event_query(late, &done), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_EQ(grey_last_error(), synchronous);
    }
    EXPECT_EQ(stream_bytes, synchronous_bytes) << "nothing is encoded from a refused tensor, on a stream too";
    EXPECT_EQ(after, std::vector<unsigned char>(16, 0x42)) << "work after the failure runs";
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << "the failure is returned once: " << grey_last_error();
    // Good input after it is not refused; a failure is returned by a query that finds the stream idle.
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, q.plain, 0, &q.params, q.packed, 0, stream), GREY_OK);
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    {
        ScopedEnv env{{"FAKE_ZE_NON_FINITE", "5"}};
        ASSERT_EQ(grey_quantize_buffer_async(&q.desc, q.plain, 0, &q.params, q.packed, 0, stream), GREY_OK);
        uint32_t done = 7;
        EXPECT_EQ(grey_stream_query(stream, &done), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_TRUE(contains(grey_last_error(), "element 5 is NaN")) << grey_last_error();
        EXPECT_EQ(done, 7u);
    }
    uint32_t done = 0;
    EXPECT_EQ(grey_stream_query(stream, &done), GREY_OK);
    EXPECT_EQ(done, 1u);
    grey_event_destroy(late);
    grey_event_destroy(early);
    grey_stream_destroy(stream);
    EXPECT_EQ(violations(), before);
}

// Jobs still queued when the stream is destroyed: they run (the last read sees them), the thread ends,
// and every queue, list, event and pool is given back.
TEST(Level0Fake, AsyncQuantizeDestroyWithWorkPendingCompletesAndGivesEverythingBack) {
    void* fake = dlopen("libze_loader.so.1", RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(fake, nullptr) << dlerror();
    auto live = reinterpret_cast<int (*)()>(dlsym(fake, "fake_ze_live_objects"));
    ASSERT_NE(live, nullptr);
    const std::string before = violations();
    {
        Level0Context c;
        QuantBuffers q(c.context);
        q.params.format = GREY_QUANT_INT8;
        ASSERT_EQ(grey_quantize_buffer(&q.desc, q.plain, 0, &q.params, q.packed, 0, nullptr), GREY_OK) << grey_last_error();
        const int objects = live();
        const grey_memory_stats stats = c.stats();
        grey_stream* stream = nullptr;
        ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK);
        std::vector<unsigned char> last(529, 0x11);
        for (int i = 0; i < 20; ++i) {
            ASSERT_EQ(grey_buffer_fill_async(q.packed, 0, static_cast<uint8_t>(i), 4 * 128 * 4, stream), GREY_OK);
            ASSERT_EQ(grey_quantize_buffer_async(&q.desc, q.plain, 0, &q.params, q.packed, 0, stream), GREY_OK) << grey_last_error();
        }
        ASSERT_EQ(grey_buffer_read_async(q.packed, 0, last.data(), last.size(), stream), GREY_OK);
        grey_stream_destroy(stream);
        EXPECT_EQ(std::vector<unsigned char>(last.begin(), last.begin() + 512), std::vector<unsigned char>(512, 19));
        EXPECT_EQ(std::vector<unsigned char>(last.begin() + 512, last.begin() + 528), std::vector<unsigned char>(16, 0));
        EXPECT_EQ(live(), objects);
        EXPECT_EQ(c.stats().allocation_count, stats.allocation_count);
    }
    EXPECT_EQ(live(), 0);
    EXPECT_EQ(violations(), before);
    dlclose(fake);
}

// What the enqueue refuses, each with a status and a message, leaving the stream working: a stream of
// another device, a range beyond the buffer, a shape the format cannot hold, an event or a command list
// the driver refuses. A failure of the job itself on the stream's thread (a kernel the driver cannot
// append) is kept for the next synchronize, in the synchronous call's words.
TEST(Level0Fake, AsyncQuantizeRefusesBadArgumentsWithAStatusAndAMessage) {
    ScopedEnv devices{{"FAKE_ZE_DEVICES", "2"}};
    const std::string before = violations();
    Level0Context c;
    QuantBuffers q(c.context);
    q.params.format = GREY_QUANT_Q8_0;
    grey_stream *stream = nullptr, *other = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_create(c.context, 2, &other), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_quantize_buffer_async(&q.desc, q.plain, 0, &q.params, q.packed, 0, other), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "the stream is on device 2 and the buffer on device 1")) << grey_last_error();
    EXPECT_EQ(grey_dequantize_buffer_async(&q.desc, &q.params, q.packed, 0, q.plain, 0, other), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_quantize_buffer_async(&q.desc, q.plain, 4, &q.params, q.packed, 0, stream), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_FALSE(std::string(grey_last_error()).empty());
    grey_tensor_desc odd = q.desc;
    odd.shape[1] = 100;  // Q8_0 blocks need a multiple of 32
    EXPECT_EQ(grey_quantize_buffer_async(&odd, q.plain, 0, &q.params, q.packed, 0, stream), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "32")) << grey_last_error();
    const std::pair<const char*, const char*> refusals[] = {{"zeEventPoolCreate:2013265921", "zeEventPoolCreate failed"},
                                                            {"zeCommandListAppendWaitOnEvents:2013265921", "zeCommandListAppendWaitOnEvents failed"},
                                                            {"zeCommandQueueExecuteCommandLists:2013265921", "zeCommandQueueExecuteCommandLists failed"}};
    for (const auto& [failure, expected] : refusals) {
        SCOPED_TRACE(failure);
        ScopedEnv env{{"FAKE_ZE_FAIL", failure}};
        EXPECT_EQ(grey_quantize_buffer_async(&q.desc, q.plain, 0, &q.params, q.packed, 0, stream), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), expected)) << grey_last_error();
    }
    {
        ScopedEnv env{{"FAKE_ZE_FAIL", "zeCommandListAppendLaunchKernel:2013265921"}};
        EXPECT_EQ(grey_dequantize_buffer_async(&q.desc, &q.params, q.packed, 0, q.plain, 0, stream), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeCommandListAppendLaunchKernel failed")) << grey_last_error();
        ASSERT_EQ(grey_quantize_buffer_async(&q.desc, q.plain, 0, &q.params, q.packed, 0, stream), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "zeCommandListAppendLaunchKernel failed")) << grey_last_error();
    }
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, q.plain, 0, &q.params, q.packed, 0, stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_dequantize_buffer_async(&q.desc, &q.params, q.packed, 0, q.plain, 0, stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    grey_stream_destroy(other);
    grey_stream_destroy(stream);
    EXPECT_EQ(violations(), before);
}

// ----- fake/no_sysman: a loader without Sysman --------------------------------------------------------

TEST(Level0NoSysman, CoreFieldsStayAndSysmanFieldsNameTheMissingEntryPoint) {
    Level0Context c;
    EXPECT_EQ(c.report().outcome, GREY_BACKEND_LOADED);
    const grey_device_spec s = c.spec();
    EXPECT_EQ(s.memory_total_bytes.value, 128ull << 30);
    EXPECT_EQ(s.graphics_clock_max_mhz.value, 1600u);  // zeDeviceGetProperties coreClockRate instead
    EXPECT_STREQ(s.driver_version.value, "16900000");   // the core API's number instead of Sysman's text
    EXPECT_EQ(s.pci_bus_id.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(c.reason(GREY_FIELD_PCI_BUS_ID), "Level Zero: zesDevicePciGetProperties not found in libze_loader.so.1");
    EXPECT_EQ(s.memory_free_bytes.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_MEMORY_FREE_BYTES), "zesDeviceEnumMemoryModules not found"));
    const grey_device_telemetry t = c.telemetry();
    EXPECT_EQ(t.energy_total_mj.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_ENERGY_TOTAL_MJ), "zesDeviceEnumPowerDomains not found"));
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &b), GREY_OK) << grey_last_error();
    grey_buffer_destroy(b);
    EXPECT_EQ(grey_device_power_limit_set(c.context, 1, 400000, nullptr), GREY_ERROR_UNSUPPORTED);
    EXPECT_TRUE(contains(grey_last_error(), "cannot set a power limit: Level Zero: zesDeviceEnumPowerDomains not found")) << grey_last_error();
}

// ----- fake/no_alloc: a loader missing a core entry point ----------------------------------------

TEST(Level0MissingSymbol, ACoreEntryPointMissingSkipsTheBackendNamingIt) {
    Level0Context c;
    const auto info = c.report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(contains(info.reason, "libze_loader.so.1 does not export zeMemAllocDevice")) << info.reason;
}

// ----- fake/empty: no fake loader ----------------------------------------------------------------

TEST(Level0NoLoader, WithoutALoaderOrDriverTheBackendIsSkippedAndSaysWhy) {
    Level0Context c;
    const auto info = c.report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_SKIPPED);
    // Where Debian's libze1 is installed the real loader is found and finds no GPU driver; elsewhere
    // there is no loader at all. Either way the reason names the loader.
    EXPECT_TRUE(contains(info.reason, "libze_loader.so")) << info.reason;
    uint32_t devices = 0;
    ASSERT_EQ(grey_device_count(c.context, &devices), GREY_OK);
    EXPECT_EQ(devices, 1u);
}
