// The HIP backend against a fake HIP runtime and a fake ROCm SMI (tests/hip/fake_driver): loading
// through the soname candidates, matching devices by PCI address, field states and reasons, the pool,
// and error paths. Each suite runs in its own process with its own LD_LIBRARY_PATH
// (tests/hip/CMakeLists.txt). None of this is evidence that a real AMD GPU answers the same:
// docs/backends.md.
#include "kv_launch_cases.hpp"
#include "plugin_test_support.hpp"
#include "quant_launch_cases.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using grey::test::contains;
using grey::test::ScopedEnv;

struct HipContext : grey::test::PluginContext {
    HipContext() : PluginContext("hip", GREY_TEST_PLUGIN_DIR) {}
};

}  // namespace

// ----- fake/full: the HIP runtime (libamdhip64.so.6) and ROCm SMI (librocm_smi64.so.5) -------------

TEST(HipFake, LoadsThroughTheSonameCandidatesAndOffersTheDevice) {
    HipContext c;
    const auto info = c.report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_LOADED) << info.reason;
    EXPECT_EQ(info.device_count, 1u);
}

TEST(HipFake, SpecComesFromHipAttributesAndRocmSmi) {
    HipContext c;
    const grey_device_spec s = c.spec();
    EXPECT_STREQ(s.backend, "hip");
    EXPECT_EQ(s.vendor, GREY_VENDOR_AMD);
    EXPECT_STREQ(s.name.value, "Fake AMD Instinct MI250X");
    EXPECT_EQ(s.name.source, GREY_SOURCE_HIP);
    EXPECT_STREQ(s.pci_bus_id.value, "0000:c1:00.0");
    EXPECT_STREQ(s.uuid.value, "GPU-a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    EXPECT_STREQ(s.runtime_version.value, "6.0");
    EXPECT_STREQ(s.driver_version.value, "6.8.5");  // the kernel driver, from ROCm SMI
    EXPECT_EQ(s.driver_version.source, GREY_SOURCE_AMD_SMI);
    EXPECT_EQ(s.compute_units.value, 110u);
    EXPECT_EQ(s.l2_cache_bytes.value, 8u << 20);
    EXPECT_EQ(s.memory_bus_width_bits.value, 4096u);
    EXPECT_EQ(s.memory_clock_max_mhz.value, 1600u);
    EXPECT_EQ(s.graphics_clock_max_mhz.value, 1700u);
    // 2 x 1600 MHz x 4096 bits / 8: one MI250X GCD's 1638.4 GB/s.
    EXPECT_NEAR(s.peak_memory_bandwidth_gbps.value, 1638.4, 1e-9);
    EXPECT_EQ(s.peak_memory_bandwidth_gbps.source, GREY_SOURCE_DERIVED);
    EXPECT_EQ(s.memory_total_bytes.value, 64ull << 30);
    EXPECT_EQ(s.memory_free_bytes.value, (64ull << 30) - (256ull << 20));
    // ROCm SMI's index 1, matched by PCI address (its index 0 is another GPU).
    EXPECT_EQ(s.power_limit_mw.value, 500000u);
    EXPECT_EQ(s.power_limit_mw.source, GREY_SOURCE_AMD_SMI);
    EXPECT_EQ(s.power_limit_default_mw.value, 560000u);
    EXPECT_EQ(s.power_limit_min_mw.value, 300000u);
    EXPECT_EQ(s.power_limit_max_mw.value, 560000u);
    EXPECT_EQ(s.temperature_slowdown_c.value, 110.0);
    EXPECT_EQ(s.temperature_shutdown_c.value, 115.0);
    EXPECT_EQ(s.temperature_gpu_max_c.value, 100.0);
    EXPECT_EQ(s.temperature_memory_max_c.value, 95.0);
    // The gfx target from gcnArchName (hipGetDevicePropertiesR0000), without its feature suffixes.
    EXPECT_STREQ(s.compute_capability.value, "gfx90a");
    EXPECT_EQ(s.compute_capability.source, GREY_SOURCE_HIP);
    EXPECT_STREQ(s.architecture.value, "CDNA 2");
    EXPECT_EQ(s.architecture.source, GREY_SOURCE_TABLE);
    // The PCIe link ROCm SMI lists: 2.5 GT/s x8 now, 16 GT/s x16 at most.
    EXPECT_EQ(s.pcie_generation_current.value, 1u);
    EXPECT_EQ(s.pcie_generation_max.value, 4u);
    EXPECT_EQ(s.pcie_width_current.value, 8u);
    EXPECT_EQ(s.pcie_width_max.value, 16u);
    EXPECT_EQ(s.pcie_width_max.source, GREY_SOURCE_AMD_SMI);
    EXPECT_EQ(c.reason(GREY_FIELD_POWER_LIMIT_MW), "");
}

TEST(HipFake, TelemetryComesFromRocmSmi) {
    HipContext c;
    const grey_device_telemetry t = c.telemetry();
    EXPECT_GT(t.timestamp_ns, 0u);
    EXPECT_EQ(t.temperature_c.value, 41.0);  // edge
    EXPECT_EQ(t.memory_temperature_c.value, 50.0);
    EXPECT_EQ(t.power_draw_mw.value, 123456u);
    EXPECT_EQ(t.energy_total_mj.value, 15250u);  // 10^6 counts x 15.25 uJ
    EXPECT_EQ(t.utilization_percent.value, 37u);
    EXPECT_EQ(t.memory_utilization_percent.value, 12u);
    EXPECT_EQ(t.memory_used_bytes.value, 8ull << 30);
    EXPECT_EQ(t.memory_used_bytes.source, GREY_SOURCE_AMD_SMI);
    // The present entries of ROCm SMI's clock lists.
    EXPECT_EQ(t.graphics_clock_mhz.value, 800u);
    EXPECT_EQ(t.sm_clock_mhz.value, 800u);
    EXPECT_EQ(t.memory_clock_mhz.value, 1600u);
    EXPECT_EQ(t.memory_clock_mhz.source, GREY_SOURCE_AMD_SMI);
    // PPT0 and the hotspot temperature hold the clocks back.
    EXPECT_EQ(t.throttle_reasons.value, uint64_t{GREY_THROTTLE_SW_POWER_CAP | GREY_THROTTLE_SW_THERMAL});
    EXPECT_EQ(t.throttle_reasons.source, GREY_SOURCE_AMD_SMI);
    EXPECT_EQ(t.throttle_time_power_ns.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_THROTTLE_TIME_POWER_NS), "no throttle times"));
}

TEST(HipFake, RocmSmi5FrequencyListsAreReadInTheirOwnLayout) {
    ScopedEnv env{{"FAKE_RSMI_VERSION", "5"}};  // no has_deep_sleep, 32 entries
    HipContext c;
    const grey_device_telemetry t = c.telemetry();
    EXPECT_EQ(t.graphics_clock_mhz.value, 800u);
    EXPECT_EQ(t.memory_clock_mhz.value, 1600u);
    const grey_device_spec s = c.spec();
    EXPECT_EQ(s.pcie_generation_current.value, 1u);
    EXPECT_EQ(s.pcie_width_max.value, 16u);
}

TEST(HipFake, ClocksAndLinkSayWhyWhenRocmSmiRefuses) {
    ScopedEnv env{{"FAKE_RSMI_FAIL", "rsmi_dev_gpu_clk_freq_get:2,rsmi_dev_pci_bandwidth_get:4,rsmi_dev_metrics_indep_throttle_status_get:2"}};
    HipContext c;
    const grey_device_telemetry t = c.telemetry();
    EXPECT_EQ(t.sm_clock_mhz.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_SM_CLOCK_MHZ), "rsmi_dev_gpu_clk_freq_get(SYS) failed: RSMI_STATUS_NOT_SUPPORTED"))
        << c.reason(GREY_FIELD_SM_CLOCK_MHZ);
    EXPECT_EQ(t.throttle_reasons.state, GREY_FIELD_UNSUPPORTED);
    const grey_device_spec s = c.spec();
    EXPECT_EQ(s.pcie_generation_current.state, GREY_FIELD_PERMISSION_DENIED);
    EXPECT_EQ(s.pcie_width_max.state, GREY_FIELD_PERMISSION_DENIED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_PCIE_GENERATION_CURRENT), "rsmi_dev_pci_bandwidth_get failed: RSMI_STATUS_PERMISSION"));
}

TEST(HipFake, WithoutAnEdgeSensorTheHotspotIsTheTemperature) {
    ScopedEnv env{{"FAKE_RSMI_NO_EDGE", "1"}};
    HipContext c;
    const grey_device_telemetry t = c.telemetry();
    EXPECT_EQ(t.temperature_c.state, GREY_FIELD_OK);
    EXPECT_EQ(t.temperature_c.value, 45.0);
    EXPECT_EQ(c.reason(GREY_FIELD_TEMPERATURE_C), "");
    EXPECT_EQ(c.spec().temperature_gpu_max_c.state, GREY_FIELD_UNSUPPORTED);
}

TEST(HipFake, PermissionDeniedOnTelemetryMarksOnlyThatField) {
    ScopedEnv env{{"FAKE_RSMI_FAIL", "rsmi_dev_power_ave_get:4,rsmi_dev_power_cap_get:2"}};
    HipContext c;
    const grey_device_telemetry t = c.telemetry();
    EXPECT_EQ(t.power_draw_mw.state, GREY_FIELD_PERMISSION_DENIED);
    EXPECT_EQ(t.power_draw_mw.value, 0u);
    EXPECT_EQ(t.power_draw_mw.source, GREY_SOURCE_NONE);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_POWER_DRAW_MW), "rsmi_dev_power_ave_get failed: RSMI_STATUS_PERMISSION")) << c.reason(GREY_FIELD_POWER_DRAW_MW);
    EXPECT_EQ(t.energy_total_mj.state, GREY_FIELD_OK);
    const grey_device_spec s = c.spec();
    EXPECT_EQ(s.power_limit_mw.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_POWER_LIMIT_MW), "RSMI_STATUS_NOT_SUPPORTED"));
    EXPECT_EQ(s.power_limit_default_mw.state, GREY_FIELD_OK);
}

TEST(HipFake, BuffersRoundTripFillCopyChecksum) {
    HipContext c;
    grey::test::expect_buffers_round_trip(c.context, 1);
}

TEST(HipFake, EachDeviceHasItsOwnPoolOnItsOwnDevice) {
    ScopedEnv env{{"FAKE_HIP_DEVICES", "2"}};
    HipContext c;
    EXPECT_EQ(c.report().device_count, 2u);
    grey_buffer* first = nullptr;
    grey_buffer* second = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 1 << 20, &first), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_create(c.context, 2, 1 << 20, &second), GREY_OK) << grey_last_error();
    EXPECT_EQ(c.stats(1).committed_bytes, 64u << 20);
    EXPECT_EQ(c.stats(2).committed_bytes, 64u << 20);
    // hipMemGetInfo is asked with each device current: each sees only its own chunk.
    EXPECT_EQ(c.spec(2).memory_free_bytes.value, (64ull << 30) - (256ull << 20) - (64ull << 20));
    EXPECT_STREQ(c.spec(2).pci_bus_id.value, "0000:c2:00.0");
    EXPECT_EQ(c.spec(2).power_limit_mw.value, 400000u);  // ROCm SMI's index 0
    grey_buffer_destroy(first);
    grey_buffer_destroy(second);
}

TEST(HipFake, AllocationFailureIsOutOfMemoryNamingSizes) {
    ScopedEnv env{{"FAKE_HIP_MEMORY", "134217728"}};
    HipContext c;
    grey_buffer* first = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 1 << 20, &first), GREY_OK) << grey_last_error();
    grey_buffer* too_big = nullptr;
    EXPECT_EQ(grey_buffer_create(c.context, 1, 100 << 20, &too_big), GREY_ERROR_OUT_OF_MEMORY);
    const std::string message = grey_last_error();
    EXPECT_TRUE(contains(message, "104857600 bytes") && contains(message, "hipMalloc failed: hipErrorOutOfMemory")) << message;
    EXPECT_EQ(too_big, nullptr);
    EXPECT_EQ(c.stats().allocation_count, 1u);
    ASSERT_EQ(grey_buffer_create(c.context, 1, 32 << 20, &too_big), GREY_OK) << grey_last_error();
    grey_buffer_destroy(too_big);
    grey_buffer_destroy(first);
}

TEST(HipFake, CopyFailureIsABackendErrorNamingTheCall) {
    HipContext c;
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &b), GREY_OK) << grey_last_error();
    std::vector<unsigned char> data(4096, 3);
    {
        ScopedEnv env{{"FAKE_HIP_FAIL", "hipMemcpy:719"}};
        EXPECT_EQ(grey_buffer_read(b, 0, data.data(), data.size()), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "hipMemcpy failed: hipErrorLaunchFailure")) << grey_last_error();
    }
    grey_buffer_destroy(b);
}

TEST(HipFake, ChecksumQuantizationAndTheKvCacheRunOnTheDevice) {
    const grey_backend_vtable vt = grey::test::plugin_vtable(GREY_TEST_PLUGIN_DIR "/libgrey-backend-hip.so");
    EXPECT_NE(vt.power_limit_set, nullptr);
    EXPECT_NE(vt.buffer_checksum, nullptr);
    EXPECT_NE(vt.quantize, nullptr);
    EXPECT_NE(vt.dequantize, nullptr);
    EXPECT_NE(vt.quantize_async, nullptr) << "quantization enqueues on a HIP stream";
    EXPECT_NE(vt.dequantize_async, nullptr);
    EXPECT_NE(vt.stream_create, nullptr);
    EXPECT_NE(vt.buffer_checksum_async, nullptr);
    EXPECT_EQ(vt.stream_wrap_native, nullptr);
    EXPECT_NE(vt.kv_store, nullptr);
    EXPECT_NE(vt.kv_compress, nullptr);
    EXPECT_NE(vt.kv_attend, nullptr);
    EXPECT_EQ(vt.capabilities, uint64_t{GREY_BACKEND_CAP_QUANT_ERROR | GREY_BACKEND_CAP_STREAMS | GREY_BACKEND_CAP_KV_HADAMARD_K |
                                        GREY_BACKEND_CAP_KV_STORE_CHECKED})
        << "device buffers only; the KV kernels rotate K themselves and check what they store";
}

// ----- the kernels: AMD code objects embedded in the plugin, loaded for the device's gfx target ------

namespace {

// The fake runtime's record of modules and launches (tests/hip/fake_driver/fake_hip.cpp).
struct FakeHip {
    FakeHip() : library(dlopen("libamdhip64.so.6", RTLD_NOW | RTLD_LOCAL)) { EXPECT_NE(library, nullptr); }
    ~FakeHip() { dlclose(library); }
    FakeHip(const FakeHip&) = delete;
    FakeHip& operator=(const FakeHip&) = delete;
    template <typename Fn>
    Fn hook(const char* name) const {
        return reinterpret_cast<Fn>(dlsym(library, name));
    }
    int launches() const { return hook<int (*)()>("fake_hip_launches")(); }
    int live_modules() const { return hook<int (*)()>("fake_hip_live_modules")(); }
    std::string last_kernel() const {
        char name[64] = {};
        unsigned int grid = 0, block = 0, shared = 0;
        hook<void (*)(char*, size_t, unsigned int*, unsigned int*, unsigned int*)>("fake_hip_last_launch")(name, sizeof name, &grid, &block, &shared);
        return name;
    }
    std::string last_module_target() const {
        char target[32] = {};
        hook<void (*)(char*, size_t)>("fake_hip_last_module_target")(target, sizeof target);
        return target;
    }
    void* library;
};

}  // namespace

TEST(HipFake, FillCopyAndChecksumLaunchTheKernelsOfTheDevicesTarget) {
    for (const char* arch : {"gfx90a:sramecc+:xnack-", "gfx942:sramecc+:xnack-", "gfx1100"}) {
        SCOPED_TRACE(arch);
        ScopedEnv env{{"FAKE_HIP_ARCH", arch}};
        FakeHip fake;
        const int before = fake.launches();
        {
            HipContext c;
            grey::test::expect_buffers_round_trip(c.context, 1);
            EXPECT_EQ(fake.last_module_target(), std::string(arch).substr(0, std::string(arch).find(':')));
            EXPECT_EQ(fake.launches() - before, 3) << "fill, copy and checksum, each a kernel";
            EXPECT_EQ(fake.last_kernel(), "grey_checksum");
            EXPECT_STREQ(c.spec().compute_capability.value, std::string(arch).substr(0, std::string(arch).find(':')).c_str());
        }
        EXPECT_EQ(fake.live_modules(), 0) << "the module is unloaded with the backend";
    }
}

TEST(HipFake, AGpuWithoutACodeObjectFillsAndCopiesWithHipAndSaysWhyItCannotChecksum) {
    ScopedEnv env{{"FAKE_HIP_ARCH", "gfx908:sramecc+:xnack-"}};
    FakeHip fake;
    const int before = fake.launches();
    HipContext c;
    EXPECT_STREQ(c.spec().architecture.value, "CDNA");
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &b), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_fill(b, 0, 0x11, 4096), GREY_OK) << grey_last_error();
    std::vector<unsigned char> back(4096);
    ASSERT_EQ(grey_buffer_read(b, 0, back.data(), back.size()), GREY_OK);
    EXPECT_EQ(back, std::vector<unsigned char>(4096, 0x11));
    uint64_t sum = 0;
    EXPECT_EQ(grey_buffer_checksum(b, 0, 4096, &sum), GREY_ERROR_UNSUPPORTED);
    const std::string message = grey_last_error();
    EXPECT_TRUE(contains(message, "AMD code objects for gfx90a, gfx942, gfx1100, not for gfx908")) << message;
    EXPECT_EQ(fake.launches(), before);
    grey_buffer_destroy(b);
}

// A code object the runtime refuses, and a launch that fails: each a backend error naming the call.
TEST(HipFake, ARefusedCodeObjectOrAFailedLaunchIsABackendErrorNamingIt) {
    const std::pair<const char*, const char*> cases[] = {
        {"hipModuleLoadData:200", "hipModuleLoadData failed: hipErrorInvalidImage (the gfx90a code object of module kernels)"},
        {"hipModuleLaunchKernel:719", "hipModuleLaunchKernel failed: hipErrorLaunchFailure"}};
    for (const auto& [failure, expected] : cases) {
        ScopedEnv env{{"FAKE_HIP_FAIL", failure}};
        HipContext c;
        grey_buffer* b = nullptr;
        ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &b), GREY_OK) << grey_last_error();
        uint64_t sum = 0;
        EXPECT_EQ(grey_buffer_checksum(b, 0, 4096, &sum), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), expected)) << grey_last_error();
        EXPECT_EQ(grey_buffer_fill(b, 0, 0x11, 4096), GREY_ERROR_BACKEND);
        grey_buffer_destroy(b);
    }
}

// ----- quantization: the plan the CUDA plugin launches, through hipModuleLaunchKernel ----------------

// The same launches, grids and arguments as the CUDA plugin for every quantizer path, on each target
// (the fake gives both vendors 132 multiprocessors and 2048 / block size resident blocks on each): the
// file is tests/cuda's too. The fake also finds each kernel by name in the real code objects.
TEST(HipFake, QuantizationLaunchesThePlanTheCudaPluginLaunches) {
    for (const char* arch : {"gfx90a:sramecc+:xnack-", "gfx942:sramecc+:xnack-", "gfx1100"}) {
        SCOPED_TRACE(arch);
        const std::string log = ::testing::TempDir() + "hip_quant_launches.log";
        ScopedEnv env{{"FAKE_HIP_ARCH", arch}, {"FAKE_HIP_COMPUTE_UNITS", "132"}, {"FAKE_QUANT_LAUNCH_LOG", log.c_str()}};
        HipContext c;
        EXPECT_EQ(grey::test::run_quant_launch_cases(c.context, log),
                  grey::test::read_text(GREY_TEST_SOURCE_DIR "/tests/backends/quant_launch_plan.golden"));
    }
}

namespace {

// A Q4_0 job of 4 x 128 F32 on the HIP device, with buffers for both tensors.
struct HipQuantJob {
    HipContext c;
    grey_tensor_desc desc = grey::test::small_q4_0_desc();
    grey_quant_params params = grey::test::q4_0_params();
    std::vector<float> values = std::vector<float>(4 * 128, 0.5f);
    grey_buffer* plain = nullptr;
    grey_buffer* packed = nullptr;

    HipQuantJob() {
        EXPECT_EQ(grey_buffer_create(c.context, 1, values.size() * sizeof(float), &plain), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_buffer_create(c.context, 1, 4096, &packed), GREY_OK) << grey_last_error();  // room for any format
        for (size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * static_cast<float>(i % 61);
        write();
    }
    ~HipQuantJob() {
        grey_buffer_destroy(packed);
        grey_buffer_destroy(plain);
    }
    HipQuantJob(const HipQuantJob&) = delete;
    HipQuantJob& operator=(const HipQuantJob&) = delete;
    void write() { EXPECT_EQ(grey_buffer_write(plain, 0, values.data(), values.size() * sizeof(float)), GREY_OK); }
    grey_status quantize() { return grey_quantize_buffer(&desc, plain, 0, &params, packed, 0, nullptr); }
    grey_status dequantize() { return grey_dequantize_buffer(&desc, &params, packed, 0, plain, 0); }
};

using grey::test::fnv1a;

}  // namespace

// The fake's stand-in kernels hash the plain tensor into the quantized one and copy the hash back: the
// quantizer was given the plain tensor's address and the dequantizer wrote to it. Then a NaN is refused
// with the host backend's message (the flag read back from the device), and the next job, with good
// input again, succeeds: the flags were re-armed.
TEST(HipFake, QuantizeAndDequantizeRunTheKernelsAndRefuseNanWithTheHostsMessage) {
    HipQuantJob q;
    ASSERT_EQ(q.quantize(), GREY_OK) << grey_last_error();
    ASSERT_EQ(q.dequantize(), GREY_OK) << grey_last_error();
    uint64_t restored = 0;
    ASSERT_EQ(grey_buffer_read(q.plain, 0, &restored, sizeof restored), GREY_OK);
    EXPECT_EQ(restored, fnv1a(q.values.data(), q.values.size() * sizeof(float)));

    q.values[40] = std::nanf("");
    q.values[70] = INFINITY;
    q.write();
    EXPECT_EQ(q.quantize(), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "element 40 is NaN; only finite values can be quantized")) << grey_last_error();
    q.values[40] = 1.0f;
    q.write();
    EXPECT_EQ(q.quantize(), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "element 70 is")) << grey_last_error();
    q.values[70] = 2.0f;
    q.write();
    EXPECT_EQ(q.quantize(), GREY_OK) << grey_last_error();
}

// A kernel missing from its code object, a code object the runtime refuses, a failed launch, a failed
// occupancy query: each a backend error naming the call and the kernel or module, and the next job
// (the failure gone) runs.
TEST(HipFake, QuantizationLoadAndLaunchFailuresAreBackendErrorsNamingThem) {
    const std::pair<const char*, const char*> cases[] = {
        {"hipModuleGetFunction:500", "hipModuleGetFunction failed: hipErrorNotFound (grey_quant_blocks in the gfx90a code object of module quant_blocks)"},
        {"hipModuleLoadData:200", "hipModuleLoadData failed: hipErrorInvalidImage (the gfx90a code object of module quant_blocks)"},
        {"hipModuleLaunchKernel:719", "hipModuleLaunchKernel failed: hipErrorLaunchFailure"},
        {"hipModuleOccupancyMaxActiveBlocksPerMultiprocessor:1", "hipModuleOccupancyMaxActiveBlocksPerMultiprocessor failed"}};
    for (const auto& [failure, expected] : cases) {
        SCOPED_TRACE(failure);
        HipQuantJob q;
        q.params.format = GREY_QUANT_INT8;  // the occupancy query sizes the rows path's grid
        {
            ScopedEnv env{{"FAKE_HIP_FAIL", failure}};
            EXPECT_EQ(q.quantize(), GREY_ERROR_BACKEND);
            EXPECT_TRUE(contains(grey_last_error(), expected)) << grey_last_error();
        }
        EXPECT_EQ(q.quantize(), GREY_OK) << grey_last_error();
        EXPECT_EQ(q.dequantize(), GREY_OK) << grey_last_error();
    }
}

TEST(HipFake, AGpuWithoutACodeObjectCannotQuantizeAndSaysWhy) {
    ScopedEnv env{{"FAKE_HIP_ARCH", "gfx908:sramecc+:xnack-"}};
    FakeHip fake;
    const int before = fake.launches();
    HipQuantJob q;
    for (int attempt = 0; attempt < 2; ++attempt) {
        EXPECT_EQ(q.quantize(), GREY_ERROR_UNSUPPORTED);
        EXPECT_TRUE(contains(grey_last_error(), "cannot quantize on the device: no kernels for this GPU")) << grey_last_error();
        EXPECT_TRUE(contains(grey_last_error(), "not for gfx908")) << grey_last_error();
    }
    EXPECT_EQ(q.dequantize(), GREY_ERROR_UNSUPPORTED);
    EXPECT_EQ(fake.launches(), before);
}

// ----- the KV cache: kernels/cuda/kv_cache.cu by the plan the CUDA plugin launches ---------------------

// The launches, grids, argument blocks and tables of every KV launch path, on each target (both fakes:
// 132 multiprocessors, 2048 / block size resident blocks on each), pinned by kv_launch_plan_hip.golden
// (GREY_UPDATE_KV_LAUNCH_PLAN=1 rewrites it). They are the CUDA plugin's (tests/cuda's
// kv_launch_plan.golden) but for the compression, which CUDA stages in shared memory and HIP reads in
// place. The fake finds each kernel by name in the real "kv" code object of the target, and its host
// stand-in of the kernels gives the host backend's stored bytes and attention; every scratch block goes
// back to the pool.
TEST(HipFake, KvLaunchesThePlanTheCudaPluginLaunches) {
    const auto but_compression = [](const std::string& launches) {
        std::istringstream lines(launches);
        std::string kept;
        for (std::string line; std::getline(lines, line);)
            if (!line.starts_with("grey_kv_compress ")) kept += line + "\n";
        return kept;
    };
    const std::string golden = GREY_TEST_SOURCE_DIR "/tests/backends/kv_launch_plan_hip.golden";
    for (const char* arch : {"gfx90a:sramecc+:xnack-", "gfx942:sramecc+:xnack-", "gfx1100"}) {
        SCOPED_TRACE(arch);
        const std::string log = ::testing::TempDir() + "hip_kv_launches.log";
        ScopedEnv env{{"FAKE_HIP_ARCH", arch}, {"FAKE_HIP_COMPUTE_UNITS", "132"}, {"FAKE_KV_LAUNCH_LOG", log.c_str()}};
        FakeHip fake;
        HipContext c;
        const std::string launched = grey::test::run_kv_launch_cases(c.context, 1, 0, log);
        if (std::getenv("GREY_UPDATE_KV_LAUNCH_PLAN") != nullptr) std::ofstream(golden) << launched;
        EXPECT_EQ(launched, grey::test::read_text(golden));
        EXPECT_EQ(but_compression(launched), but_compression(grey::test::read_text(GREY_TEST_SOURCE_DIR "/tests/backends/kv_launch_plan.golden")));
        EXPECT_EQ(fake.last_module_target(), std::string(arch).substr(0, std::string(arch).find(':')));
        EXPECT_EQ(c.stats().allocation_count, 0u) << "the caches' blocks and every job's scratch went back to the pool";
    }
}

namespace {

// A small cache on the HIP device with one sequence, for the error paths.
struct HipKvCache {
    HipContext c;
    grey_kv_cache* cache = nullptr;
    uint64_t sequence = 0;
    static constexpr uint32_t kHeads = 2, kDim = 64, kLayers = 1;

    explicit HipKvCache(uint32_t head_dim = kDim) {
        grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
        config.layers = kLayers;
        config.kv_heads = kHeads;
        config.head_dim = head_dim;
        config.window_tokens = 16;
        config.capacity_bytes = 16ull << 20;
        create_status = grey_kv_cache_create(c.context, 1, &config, &cache);
        if (cache != nullptr) {
            EXPECT_EQ(grey_kv_sequence_create(cache, 1, &sequence), GREY_OK) << grey_last_error();
        }
    }
    ~HipKvCache() { grey_kv_cache_destroy(cache); }
    HipKvCache(const HipKvCache&) = delete;
    HipKvCache& operator=(const HipKvCache&) = delete;

    grey_status append(uint32_t tokens) {
        std::vector<int32_t> ids(tokens);
        for (uint32_t i = 0; i < tokens; ++i) ids[i] = static_cast<int32_t>(next_id++);
        const std::vector<float> kv = grey::test::kv_test_values(size_t{kLayers} * tokens * kHeads * kDim, next_id);
        return grey_kv_append(cache, sequence, ids.data(), tokens, GREY_DTYPE_F32, kv.data(), kv.data(), kv.size() * sizeof(float));
    }
    grey_status attend() {
        grey_kv_attend_params params = GREY_KV_ATTEND_PARAMS_INIT;
        params.query_heads = 8;
        const std::vector<float> queries = grey::test::kv_test_values(8 * kDim, 5);
        output.assign(queries.size(), 0.0f);
        return grey_kv_attend(cache, &params, &sequence, 1, queries.data(), output.data(), queries.size() * sizeof(float));
    }
    grey_status create_status = GREY_OK;
    uint32_t next_id = 1;
    std::vector<float> output;
};

}  // namespace

// A kernel missing from the KV code object, a code object the runtime refuses, a failed launch, a failed
// occupancy query: each a backend error naming the call and the kernel or module, nothing of the job's
// scratch kept, and the next job (the failure gone) runs.
TEST(HipFake, KvLoadAndLaunchFailuresAreBackendErrorsNamingThem) {
    const std::pair<const char*, const char*> load_cases[] = {
        {"hipModuleGetFunction:500", "hipModuleGetFunction failed: hipErrorNotFound (grey_kv_store in the gfx90a code object of module kv)"},
        {"hipModuleLoadData:200", "hipModuleLoadData failed: hipErrorInvalidImage (the gfx90a code object of module kv)"},
        {"hipModuleLaunchKernel:719", "hipModuleLaunchKernel failed: hipErrorLaunchFailure (grey_kv_store)"}};
    for (const auto& [failure, expected] : load_cases) {
        SCOPED_TRACE(failure);
        HipKvCache k;
        ASSERT_EQ(k.create_status, GREY_OK) << grey_last_error();
        {
            ScopedEnv env{{"FAKE_HIP_FAIL", failure}};
            EXPECT_EQ(k.append(3), GREY_ERROR_BACKEND);
            EXPECT_TRUE(contains(grey_last_error(), expected)) << grey_last_error();
        }
        EXPECT_EQ(k.append(3), GREY_OK) << grey_last_error();
        EXPECT_EQ(k.attend(), GREY_OK) << grey_last_error();
    }
    // Attention: the occupancy query that sizes the split, and the launches of both kernels.
    const std::pair<const char*, const char*> attend_cases[] = {
        {"hipModuleOccupancyMaxActiveBlocksPerMultiprocessor:1",
         "hipModuleOccupancyMaxActiveBlocksPerMultiprocessor failed: hipErrorInvalidValue (grey_kv_attend_split_2_4)"},
        {"hipModuleLaunchKernel:719", "hipModuleLaunchKernel failed: hipErrorLaunchFailure (grey_kv_attend_split_2_4)"}};
    for (const auto& [failure, expected] : attend_cases) {
        SCOPED_TRACE(failure);
        HipKvCache k;
        ASSERT_EQ(k.append(40), GREY_OK) << grey_last_error();  // window-form and quantized blocks
        const uint64_t allocations = k.c.stats().allocation_count;
        {
            ScopedEnv env{{"FAKE_HIP_FAIL", failure}};
            EXPECT_EQ(k.attend(), GREY_ERROR_BACKEND);
            EXPECT_TRUE(contains(grey_last_error(), expected)) << grey_last_error();
        }
        EXPECT_EQ(k.c.stats().allocation_count, allocations) << "the job's scratch went back to the pool";
        EXPECT_EQ(k.attend(), GREY_OK) << grey_last_error();
        EXPECT_EQ(k.c.stats().allocation_count, allocations);
    }
}

// Scratch the pool cannot grow for: with device memory for one chunk, filled but for room for the
// attention's input and output, its scratch (the two tables, 16-byte aligned, then the partial results:
// 32 + 32 + 1 x 8 query heads x 3 splits x 66 floats) is out of memory naming its size and hipMalloc,
// nothing is kept, and with room again the next attention runs.
TEST(HipFake, KvScratchOutOfMemoryIsCleanAndTheNextJobRuns) {
    ScopedEnv env{{"FAKE_HIP_MEMORY", "67108864"}};
    HipKvCache k;
    ASSERT_EQ(k.append(40), GREY_OK) << grey_last_error();
    ASSERT_EQ(k.attend(), GREY_OK) << grey_last_error();
    const uint64_t allocations = k.c.stats().allocation_count;
    constexpr uint64_t kRoom = 8192;  // io (2 x 2048) fits, the scratch (6400) not
    std::vector<grey_buffer*> fillers;
    for (grey_memory_stats s = k.c.stats(); s.free_bytes > kRoom; s = k.c.stats()) {
        const uint64_t take = std::min(s.largest_free_bytes, s.free_bytes - kRoom) / 256 * 256;
        if (take == 0) break;
        grey_buffer* b = nullptr;
        ASSERT_EQ(grey_buffer_create(k.c.context, 1, take, &b), GREY_OK) << grey_last_error();
        fillers.push_back(b);
    }
    EXPECT_EQ(k.attend(), GREY_ERROR_OUT_OF_MEMORY);
    const std::string message = grey_last_error();
    EXPECT_TRUE(contains(message, "a buffer of 6400 bytes") && contains(message, "hipMalloc failed: hipErrorOutOfMemory")) << message;
    EXPECT_EQ(k.c.stats().allocation_count, allocations + fillers.size()) << "the job's scratch went back to the pool";
    for (grey_buffer* b : fillers) grey_buffer_destroy(b);
    EXPECT_EQ(k.attend(), GREY_OK) << grey_last_error();
    EXPECT_EQ(k.c.stats().allocation_count, allocations);
}

// The attention kernels' limits are the CUDA plugin's (head_dim a multiple of 16 up to 256): a cache the
// kernels cannot serve is refused when it is created, naming why.
TEST(HipFake, AKvLayoutTheKernelsDoNotTakeIsRefusedAtCreation) {
    HipKvCache k(24);
    EXPECT_EQ(k.create_status, GREY_ERROR_UNSUPPORTED);
    EXPECT_TRUE(contains(grey_last_error(), "the KV cache kernels take head_dim a multiple of 16 up to 256, not 24")) << grey_last_error();
}

// On a GPU this build has no code object for, the cache's first store says why, every time, and nothing
// is launched.
TEST(HipFake, AGpuWithoutACodeObjectHasNoKvCacheAndSaysWhy) {
    ScopedEnv env{{"FAKE_HIP_ARCH", "gfx908:sramecc+:xnack-"}};
    FakeHip fake;
    const int before = fake.launches();
    HipKvCache k;
    ASSERT_EQ(k.create_status, GREY_OK) << grey_last_error();
    for (int attempt = 0; attempt < 2; ++attempt) {
        EXPECT_EQ(k.append(3), GREY_ERROR_UNSUPPORTED);
        EXPECT_TRUE(contains(grey_last_error(), "no KV cache on the device: no kernels for this GPU")) << grey_last_error();
        EXPECT_TRUE(contains(grey_last_error(), "not for gfx908")) << grey_last_error();
    }
    EXPECT_EQ(fake.launches(), before);
}

// ----- streams and events: hipStreamCreate's, whose work the fake defers until something waits ------

TEST(HipFake, StreamsOrderWorkAndEventsOrderStreams) {
    HipContext c;
    grey::test::expect_streams_order_work(c.context, 1, "hipEventElapsedTime failed: hipErrorNotSupported");
}

// A failure the runtime reports at a wait is the wait's error, naming the call; "not ready" is an answer.
TEST(HipFake, StreamErrorsSurfaceAtSynchronizeAndNotReadyIsNotAnError) {
    HipContext c;
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &b), GREY_OK);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_fill_async(b, 0, 7, 4096, stream), GREY_OK);
    {
        ScopedEnv env{{"FAKE_HIP_FAIL", "hipStreamSynchronize:719,hipStreamQuery:600"}};
        EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "hipStreamSynchronize failed: hipErrorLaunchFailure")) << grey_last_error();
        uint32_t done = 1;
        EXPECT_EQ(grey_stream_query(stream, &done), GREY_OK) << grey_last_error();
        EXPECT_EQ(done, 0u);
    }
    {
        ScopedEnv env{{"FAKE_HIP_FAIL", "hipMemsetAsync:1"}};
        EXPECT_EQ(grey_buffer_fill_async(b, 0, 9, 4096, stream), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "hipMemsetAsync failed")) << grey_last_error();
    }
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    std::vector<unsigned char> back(4096);
    ASSERT_EQ(grey_buffer_read(b, 0, back.data(), back.size()), GREY_OK);
    EXPECT_EQ(back, std::vector<unsigned char>(4096, 7));
    grey_stream_destroy(stream);
    grey_buffer_destroy(b);
}

// Destroying a stream with work queued runs the work first (host memory it reads stays the caller's
// until then), and gives its checksum slot back to the pool.
TEST(HipFake, DestroyingAStreamWithQueuedWorkCompletesItAndGivesMemoryBack) {
    HipContext c;
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &b), GREY_OK);
    const grey_memory_stats before = c.stats();
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    std::vector<unsigned char> data(4096, 0x33);
    ASSERT_EQ(grey_buffer_write_async(b, 0, data.data(), data.size(), stream), GREY_OK);
    ASSERT_EQ(grey_buffer_fill_async(b, 0, 0x44, 16, stream), GREY_OK);
    grey_stream_destroy(stream);
    std::vector<unsigned char> back(4096);
    ASSERT_EQ(grey_buffer_read(b, 0, back.data(), back.size()), GREY_OK);
    auto expected = data;
    std::fill_n(expected.begin(), 16, 0x44);
    EXPECT_EQ(back, expected);
    EXPECT_EQ(c.stats().allocation_count, before.allocation_count);
    grey_buffer_destroy(b);
}

// Quantization on a HIP stream (quantize_async) comes after the stream's earlier work (the plain
// tensor's write here), so the kernels see the written tensor.
TEST(HipFake, QuantizeOnAStreamSeesTheStreamsEarlierWork) {
    HipQuantJob q;
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(q.c.context, 1, &stream), GREY_OK) << grey_last_error();
    std::vector<float> fresh(q.values.size(), 3.0f);
    ASSERT_EQ(grey_buffer_write_async(q.plain, 0, fresh.data(), fresh.size() * sizeof(float), stream), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, q.plain, 0, &q.params, q.packed, 0, stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    uint64_t hash = 0;
    ASSERT_EQ(grey_buffer_read(q.packed, 0, &hash, sizeof hash), GREY_OK);
    EXPECT_EQ(hash, fnv1a(fresh.data(), fresh.size() * sizeof(float)));
    grey_stream_destroy(stream);
}

// ----- quantization on a stream (quantize_async, dequantize_async: hip_quant_journal.hpp) -------------

// Every kernel path, enqueued on a stream: the same launches with the same arguments as the synchronous
// calls (the fake's log), and the same bytes in both tensors; nothing reached the host before the wait.
TEST(HipFake, AsyncQuantizationLaunchesAndWritesWhatTheSynchronousCallsDo) {
    const std::string log = ::testing::TempDir() + "hip_async_quant_launches.log";
    ScopedEnv env{{"FAKE_QUANT_LAUNCH_LOG", log.c_str()}};
    HipContext c;
    std::remove(log.c_str());
    const auto synchronous = grey::test::run_quant_cases(c.context, nullptr);
    const std::string synchronous_log = grey::test::read_text(log);
    std::remove(log.c_str());
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    const auto on_stream = grey::test::run_quant_cases(c.context, stream, true);
    const std::string stream_log = grey::test::read_text(log);
    EXPECT_FALSE(synchronous_log.empty());
    EXPECT_EQ(stream_log, synchronous_log);
    ASSERT_EQ(on_stream.size(), synchronous.size());
    for (size_t i = 0; i < on_stream.size(); ++i) EXPECT_TRUE(on_stream[i] == synchronous[i]) << "case " << i;
    grey_stream_destroy(stream);
}

namespace {

// Buffers on the HIP device for the stream tests below: a Q4_0 job of 4 x 128 F32.
struct AsyncQuant {
    static constexpr size_t kElements = 4 * 128;
    static constexpr size_t kPacked = 4 * 128 / 32 * 18;
    HipContext c;
    grey_tensor_desc desc = grey::test::small_q4_0_desc();
    grey_quant_params params = grey::test::q4_0_params();
    std::vector<grey_buffer*> buffers;

    ~AsyncQuant() {
        for (grey_buffer* b : buffers) grey_buffer_destroy(b);
    }
    grey_buffer* buffer(uint64_t size, uint32_t device = 1) {
        grey_buffer* b = nullptr;
        EXPECT_EQ(grey_buffer_create(c.context, device, size, &b), GREY_OK) << grey_last_error();
        buffers.push_back(b);
        return b;
    }
    static std::vector<float> values(float first) {
        std::vector<float> v(kElements);
        for (size_t i = 0; i < kElements; ++i) v[i] = first + 0.25f * static_cast<float>(i % 61);
        return v;
    }
};

}  // namespace

// Two streams: each quantization runs after the write before it and before the read after it, reusing
// the same buffers; a dequantization on the other stream waits for an event. The calls return before
// anything has run (the fake runs stream work only when something waits).
TEST(HipFake, AsyncQuantizeIsOrderedWithTheStreamsWorkAndAcrossStreamsByEvents) {
    AsyncQuant q;
    FakeHip fake;
    grey_buffer* plain[2] = {q.buffer(AsyncQuant::kElements * 4), q.buffer(AsyncQuant::kElements * 4)};
    grey_buffer* packed[2] = {q.buffer(AsyncQuant::kPacked), q.buffer(AsyncQuant::kPacked)};
    grey_buffer* restored = q.buffer(AsyncQuant::kElements * 4);
    grey_stream* streams[2] = {};
    for (auto& s : streams) ASSERT_EQ(grey_stream_create(q.c.context, 1, &s), GREY_OK) << grey_last_error();
    grey_event* quantized = nullptr;
    ASSERT_EQ(grey_event_create(q.c.context, 1, &quantized), GREY_OK);
    auto a = AsyncQuant::values(1.0f);
    const auto b = AsyncQuant::values(-3.0f), d = AsyncQuant::values(7.5f);
    uint64_t got_a = 0, got_b = 0, got_d = 0, got_restored = 0;
    const int launches = fake.launches();
    ASSERT_EQ(grey_buffer_write_async(plain[0], 0, a.data(), a.size() * 4, streams[0]), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain[0], 0, &q.params, packed[0], 0, streams[0]), GREY_OK) << grey_last_error();
    EXPECT_GT(fake.launches(), launches) << "the kernels are launched at enqueue";
    // The write has not run: host memory stays the caller's until the stream reaches it, so what the
    // caller puts there now is what the stream writes and the quantization reads (a runtime that waited
    // for the stream before quantizing would have written the old values).
    a[0] = 42.0f;
    ASSERT_EQ(grey_buffer_read_async(packed[0], 0, &got_a, 8, streams[0]), GREY_OK);
    ASSERT_EQ(grey_buffer_write_async(plain[1], 0, d.data(), d.size() * 4, streams[1]), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain[1], 0, &q.params, packed[1], 0, streams[1]), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_read_async(packed[1], 0, &got_d, 8, streams[1]), GREY_OK);
    ASSERT_EQ(grey_buffer_write_async(plain[0], 0, b.data(), b.size() * 4, streams[0]), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain[0], 0, &q.params, packed[0], 0, streams[0]), GREY_OK);
    ASSERT_EQ(grey_buffer_read_async(packed[0], 0, &got_b, 8, streams[0]), GREY_OK);
    ASSERT_EQ(grey_event_record(quantized, streams[0]), GREY_OK);
    ASSERT_EQ(grey_stream_wait_event(streams[1], quantized), GREY_OK);
    ASSERT_EQ(grey_dequantize_buffer_async(&q.desc, &q.params, packed[0], 0, restored, 0, streams[1]), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_read_async(restored, 0, &got_restored, 8, streams[1]), GREY_OK);
    EXPECT_EQ(got_a, 0u) << "nothing has run yet";
    EXPECT_EQ(got_restored, 0u);
    ASSERT_EQ(grey_stream_synchronize(streams[1]), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_synchronize(streams[0]), GREY_OK) << grey_last_error();
    EXPECT_EQ(got_a, fnv1a(a.data(), a.size() * 4));
    EXPECT_EQ(got_b, fnv1a(b.data(), b.size() * 4));
    EXPECT_EQ(got_d, fnv1a(d.data(), d.size() * 4));
    EXPECT_EQ(got_restored, got_b);
    grey_event_destroy(quantized);
    for (auto* s : streams) grey_stream_destroy(s);
}

// A NaN or infinite input found by the kernels of an enqueued job: the enqueue succeeds, and the next
// synchronize (or an event recorded after it, or a query of the idle stream) fails with the synchronous
// call's status and message; the quantized tensor holds what the synchronous call leaves there; work
// after the failure still runs; the job's memory goes back to the pool.
TEST(HipFake, AsyncQuantizeNanSurfacesAtSynchronizeWithTheSynchronousMessage) {
    AsyncQuant q;
    grey_buffer* plain = q.buffer(AsyncQuant::kElements * 4);
    grey_buffer* packed = q.buffer(AsyncQuant::kPacked);
    auto bad = AsyncQuant::values(0.0f);
    bad[300] = std::nanf("");
    bad[200] = INFINITY;
    bad[100] = -INFINITY;
    bad[40] = std::nanf("");
    const std::vector<unsigned char> before_bytes(AsyncQuant::kPacked, 0x5C);
    std::vector<unsigned char> synchronous_bytes(AsyncQuant::kPacked), stream_bytes(AsyncQuant::kPacked);
    ASSERT_EQ(grey_buffer_write(packed, 0, before_bytes.data(), before_bytes.size()), GREY_OK);
    ASSERT_EQ(grey_buffer_write(plain, 0, bad.data(), bad.size() * 4), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer(&q.desc, plain, 0, &q.params, packed, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    const std::string synchronous_nan = grey_last_error();
    EXPECT_TRUE(contains(synchronous_nan, "element 40 is NaN; only finite values can be quantized")) << synchronous_nan;
    ASSERT_EQ(grey_buffer_read(packed, 0, synchronous_bytes.data(), synchronous_bytes.size()), GREY_OK);
    bad[40] = 1.0f;
    ASSERT_EQ(grey_buffer_write(plain, 0, bad.data(), bad.size() * 4), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer(&q.desc, plain, 0, &q.params, packed, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    const std::string synchronous_infinite = grey_last_error();
    EXPECT_TRUE(contains(synchronous_infinite, "element 100 is infinite")) << synchronous_infinite;
    bad[40] = std::nanf("");
    const grey_memory_stats baseline = q.c.stats();

    grey_stream* stream = nullptr;
    grey_event *before = nullptr, *after = nullptr;
    ASSERT_EQ(grey_stream_create(q.c.context, 1, &stream), GREY_OK);
    ASSERT_EQ(grey_event_create(q.c.context, 1, &before), GREY_OK);
    ASSERT_EQ(grey_event_create(q.c.context, 1, &after), GREY_OK);
    const auto good = AsyncQuant::values(2.0f);
    uint64_t hash_after = 0;
    ASSERT_EQ(grey_buffer_write_async(plain, 0, good.data(), good.size() * 4, stream), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, stream), GREY_OK);
    ASSERT_EQ(grey_event_record(before, stream), GREY_OK);
    ASSERT_EQ(grey_buffer_write_async(packed, 0, before_bytes.data(), before_bytes.size(), stream), GREY_OK);
    ASSERT_EQ(grey_buffer_write_async(plain, 0, bad.data(), bad.size() * 4, stream), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_read_async(packed, 0, stream_bytes.data(), stream_bytes.size(), stream), GREY_OK);
    // Work after the failure still runs.
    ASSERT_EQ(grey_buffer_write_async(plain, 0, good.data(), good.size() * 4, stream), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, stream), GREY_OK);
    ASSERT_EQ(grey_buffer_read_async(packed, 0, &hash_after, 8, stream), GREY_OK);
    ASSERT_EQ(grey_event_record(after, stream), GREY_OK);
    // An event recorded before the bad job completes without it; one recorded after carries it.
    EXPECT_EQ(grey_event_synchronize(before), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_event_synchronize(after), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_last_error(), synchronous_nan);
    uint32_t done = 0;
    EXPECT_EQ(grey_event_query(after, &done), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_last_error(), synchronous_nan);
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_last_error(), synchronous_nan);
    EXPECT_EQ(stream_bytes, synchronous_bytes) << "the bad job leaves the quantized tensor as the synchronous call does";
    EXPECT_EQ(hash_after, fnv1a(good.data(), good.size() * 4));
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << "the failure is returned once: " << grey_last_error();

    // Good input after it is not refused (each job has its own flags); an infinite input is named as
    // such, and a query of the idle stream returns it.
    for (int round = 0; round < 3; ++round) {
        ASSERT_EQ(grey_buffer_write_async(plain, 0, good.data(), good.size() * 4, stream), GREY_OK);
        ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, stream), GREY_OK);
        EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    }
    bad[40] = 1.0f;
    ASSERT_EQ(grey_buffer_write_async(plain, 0, bad.data(), bad.size() * 4, stream), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, stream), GREY_OK);
    done = 7;
    EXPECT_EQ(grey_stream_query(stream, &done), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_last_error(), synchronous_infinite);
    EXPECT_EQ(done, 7u) << "out-parameters are left alone on failure";
    EXPECT_EQ(grey_stream_query(stream, &done), GREY_OK);
    EXPECT_EQ(done, 1u);
    grey_event_destroy(after);
    grey_event_destroy(before);
    grey_stream_destroy(stream);
    const grey_memory_stats end = q.c.stats();
    EXPECT_EQ(end.allocation_count, baseline.allocation_count);
    EXPECT_EQ(end.allocated_bytes, baseline.allocated_bytes);
}

// Many jobs in flight, a bad one among them, then the stream destroyed unsynchronized: the work
// completes (the last read sees the last job) and every job's memory goes back to the pool.
TEST(HipFake, AsyncQuantizeDestroyWithWorkPendingCompletesAndGivesMemoryBack) {
    AsyncQuant q;
    grey_buffer* plain = q.buffer(AsyncQuant::kElements * 4);
    grey_buffer* packed = q.buffer(AsyncQuant::kPacked);
    auto bad = AsyncQuant::values(0.0f);
    bad[5] = std::nanf("");
    const auto good = AsyncQuant::values(4.0f);
    ASSERT_EQ(grey_quantize_buffer(&q.desc, plain, 0, &q.params, packed, 0, nullptr), GREY_OK) << grey_last_error();
    const grey_memory_stats before = q.c.stats();
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(q.c.context, 1, &stream), GREY_OK);
    uint64_t last = 0;
    auto enqueue_batch = [&](size_t jobs) {
        for (size_t i = 0; i < jobs; ++i) {
            const auto& input = i == jobs / 2 ? bad : good;
            ASSERT_EQ(grey_buffer_write_async(plain, 0, input.data(), input.size() * 4, stream), GREY_OK);
            ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, stream), GREY_OK) << grey_last_error();
        }
        ASSERT_EQ(grey_buffer_read_async(packed, 0, &last, 8, stream), GREY_OK);
    };
    enqueue_batch(300);
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "element 5 is NaN")) << grey_last_error();
    last = 0;
    enqueue_batch(300);
    grey_stream_destroy(stream);
    EXPECT_EQ(last, fnv1a(good.data(), good.size() * 4));
    const grey_memory_stats after = q.c.stats();
    EXPECT_EQ(after.allocation_count, before.allocation_count);
    EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
}

// What the enqueue itself refuses, each with a status and a message and nothing left queued or held: a
// stream of another device, a range beyond the buffer, a shape the format cannot hold, a GPU without
// code objects, a launch or a fill the runtime refuses, no memory for the job's flags. The stream goes
// on working after each.
TEST(HipFake, AsyncQuantizeRefusesBadArgumentsWithAStatusAndAMessage) {
    ScopedEnv devices{{"FAKE_HIP_DEVICES", "2"}, {"FAKE_HIP_MEMORY", "134217728"}};
    AsyncQuant q;
    grey_buffer* plain = q.buffer(AsyncQuant::kElements * 4);
    grey_buffer* packed = q.buffer(AsyncQuant::kPacked);
    const auto good = AsyncQuant::values(1.0f);
    ASSERT_EQ(grey_buffer_write(plain, 0, good.data(), good.size() * 4), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer(&q.desc, plain, 0, &q.params, packed, 0, nullptr), GREY_OK) << grey_last_error();
    const grey_memory_stats baseline = q.c.stats();
    grey_stream *stream = nullptr, *other = nullptr;
    ASSERT_EQ(grey_stream_create(q.c.context, 1, &stream), GREY_OK);
    ASSERT_EQ(grey_stream_create(q.c.context, 2, &other), GREY_OK);

    EXPECT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, other), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "the stream is on device 2 and the buffer on device 1")) << grey_last_error();
    EXPECT_EQ(grey_dequantize_buffer_async(&q.desc, &q.params, packed, 0, plain, 0, other), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_quantize_buffer_async(&q.desc, plain, 4, &q.params, packed, 0, stream), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_FALSE(std::string(grey_last_error()).empty());
    grey_tensor_desc odd = q.desc;
    odd.shape[1] = 100;  // Q4_0 blocks need a multiple of 32
    EXPECT_EQ(grey_quantize_buffer_async(&odd, plain, 0, &q.params, packed, 0, stream), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "32")) << grey_last_error();
    EXPECT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    const std::pair<const char*, const char*> refusals[] = {{"hipModuleLaunchKernel:719", "hipModuleLaunchKernel failed: hipErrorLaunchFailure"},
                                                            {"hipMemsetAsync:1", "hipMemsetAsync failed: hipErrorInvalidValue"}};
    for (const auto& [failure, expected] : refusals) {
        SCOPED_TRACE(failure);
        ScopedEnv env{{"FAKE_HIP_FAIL", failure}};
        EXPECT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, stream), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), expected)) << grey_last_error();
    }
    {
        ScopedEnv env{{"FAKE_HIP_FAIL", "hipModuleLaunchKernel:719"}};
        EXPECT_EQ(grey_dequantize_buffer_async(&q.desc, &q.params, packed, 0, plain, 0, stream), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "hipModuleLaunchKernel failed")) << grey_last_error();
    }
    // The pool's one chunk is 64 MiB of the 128 the fake has; a buffer takes the rest of the chunk, and
    // the fake refuses a second chunk: the job's flag block finds no room.
    {
        const grey_memory_stats now = q.c.stats();
        grey_buffer* filler = q.buffer(now.committed_bytes - now.allocated_bytes - 256 * 4);
        std::vector<grey_buffer*> small;
        for (;;) {
            grey_buffer* b = nullptr;
            if (grey_buffer_create(q.c.context, 1, 256, &b) != GREY_OK) break;
            small.push_back(b);
        }
        EXPECT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, stream), GREY_ERROR_OUT_OF_MEMORY);
        EXPECT_TRUE(contains(grey_last_error(), "hipMalloc failed: hipErrorOutOfMemory")) << grey_last_error();
        for (grey_buffer* b : small) grey_buffer_destroy(b);
        q.buffers.pop_back();
        grey_buffer_destroy(filler);
    }
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    uint64_t hash = 0;
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_read_async(packed, 0, &hash, 8, stream), GREY_OK);
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(hash, fnv1a(good.data(), good.size() * 4));
    grey_stream_destroy(other);
    grey_stream_destroy(stream);
    const grey_memory_stats end = q.c.stats();
    EXPECT_EQ(end.allocation_count, baseline.allocation_count);
    EXPECT_EQ(end.allocated_bytes, baseline.allocated_bytes);
}

TEST(HipFake, AGpuWithoutACodeObjectCannotQuantizeOnAStreamAndSaysWhy) {
    ScopedEnv env{{"FAKE_HIP_ARCH", "gfx908:sramecc+:xnack-"}};
    AsyncQuant q;
    grey_buffer* plain = q.buffer(AsyncQuant::kElements * 4);
    grey_buffer* packed = q.buffer(AsyncQuant::kPacked);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(q.c.context, 1, &stream), GREY_OK);
    EXPECT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, stream), GREY_ERROR_UNSUPPORTED);
    EXPECT_TRUE(contains(grey_last_error(), "cannot quantize on the device: no kernels for this GPU")) << grey_last_error();
    EXPECT_EQ(grey_dequantize_buffer_async(&q.desc, &q.params, packed, 0, plain, 0, stream), GREY_ERROR_UNSUPPORTED);
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    grey_stream_destroy(stream);
}

// ----- fake/no_smi: the HIP runtime alone -----------------------------------------------------------

TEST(HipNoSmi, HipFieldsStayAndSmiFieldsSayWhy) {
    HipContext c;
    EXPECT_EQ(c.report().outcome, GREY_BACKEND_LOADED);
    const grey_device_spec s = c.spec();
    EXPECT_EQ(s.compute_units.value, 110u);
    EXPECT_EQ(s.power_limit_mw.state, GREY_FIELD_UNSUPPORTED);
    const std::string why = c.reason(GREY_FIELD_POWER_LIMIT_MW);
    EXPECT_TRUE(contains(why, "ROCm SMI is not installed") && contains(why, "librocm_smi64.so.7") && contains(why, "librocm_smi64.so:")) << why;
    const grey_device_telemetry t = c.telemetry();
    EXPECT_EQ(t.memory_used_bytes.state, GREY_FIELD_OK);  // from hipMemGetInfo instead
    EXPECT_EQ(t.memory_used_bytes.source, GREY_SOURCE_HIP);
    EXPECT_EQ(t.memory_used_bytes.value, 256ull << 20);
}

// ----- fake/old_smi: ROCm SMI without the energy counter ----------------------------------------

TEST(HipOldSmi, AMissingSmiEntryPointMarksOnlyItsField) {
    HipContext c;
    const grey_device_telemetry t = c.telemetry();
    EXPECT_EQ(t.energy_total_mj.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(c.reason(GREY_FIELD_ENERGY_TOTAL_MJ), "ROCm SMI: rsmi_dev_energy_count_get not found in librocm_smi64.so.5");
    EXPECT_EQ(t.power_draw_mw.state, GREY_FIELD_OK);
    EXPECT_EQ(t.throttle_reasons.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(c.reason(GREY_FIELD_THROTTLE_REASONS), "ROCm SMI: rsmi_dev_metrics_indep_throttle_status_get not found in librocm_smi64.so.5");
    EXPECT_EQ(t.sm_clock_mhz.state, GREY_FIELD_OK);
    EXPECT_EQ(grey_device_power_limit_set(c.context, 1, 400000, nullptr), GREY_ERROR_UNSUPPORTED);
    EXPECT_TRUE(contains(grey_last_error(), "rsmi_dev_power_cap_set not found in librocm_smi64.so.5")) << grey_last_error();
}

// ----- fake/old_hip: a runtime missing a required entry point ------------------------------------

TEST(HipMissingSymbol, ARequiredEntryPointMissingSkipsTheBackendNamingIt) {
    HipContext c;
    const auto info = c.report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(contains(info.reason, "libamdhip64.so.6 does not export hipMemGetInfo")) << info.reason;
}

// ----- fake/empty: no HIP runtime ------------------------------------------------------------------

TEST(HipNoRuntime, WithoutLibamdhipTheBackendIsSkippedAndNamesEveryCandidate) {
    if (void* system_hip = dlopen("libamdhip64.so", RTLD_NOW | RTLD_LOCAL)) {
        dlclose(system_hip);
        GTEST_SKIP() << "this machine has a HIP runtime installed, so 'no runtime' cannot be simulated here";
    }
    HipContext c;
    const auto info = c.report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(contains(info.reason, "not offered on this machine") && contains(info.reason, "the HIP runtime is not installed") &&
                contains(info.reason, "libamdhip64.so.7") && contains(info.reason, "libamdhip64.so.5"))
        << info.reason;
}
