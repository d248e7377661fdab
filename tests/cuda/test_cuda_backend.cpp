// The CUDA backend against fake driver libraries (tests/cuda/fake_driver): loading, fallbacks, field
// states and reasons, the pool, and error paths. Each suite runs in its own process with its own
// LD_LIBRARY_PATH (tests/cuda/CMakeLists.txt); switches the fakes read at each call are set per case.
// None of this is evidence that the kernels work: tests/gpu/run.sh checks those on a real GPU.
#include "grey.h"
#include "plugin_test_support.hpp"
#include "kv_launch_cases.hpp"
#include "quant_launch_cases.hpp"
#include "test_support.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <unistd.h>
#include <random>
#include <string>
#include <vector>

namespace {

using grey::test::contains;
using grey::test::ScopedEnv;

// A configuration with the background memory scan off, so that every residency change is the test's own;
// written for each context and removed once the context has read it.
const std::string& quiet_config_path() {
    static const std::string path = ::testing::TempDir() + "grey_cuda_test_" + std::to_string(::getpid()) + ".yaml";
    return path;
}

// `deduplication` adds lines under memory.deduplication (indented 4); `scan_interval_ms` above 0 turns
// the scan on (with compression off, so that it only deduplicates).
const char* quiet_config(const char* deduplication = "", int scan_interval_ms = 0) {
    std::ofstream(quiet_config_path()) << "memory:\n  deduplication:\n    scan_interval_ms: " << scan_interval_ms << "\n"
                                       << deduplication << (scan_interval_ms > 0 ? "  compression:\n    enabled: false\n" : "");
    return quiet_config_path().c_str();
}

// A context holding the CUDA plugin over the fake driver (the same as the other plugins' tests use).
struct Context : grey::test::PluginContext {
    explicit Context(const char* deduplication = "", int scan_interval_ms = 0)
        : PluginContext("cuda", GREY_TEST_PLUGIN_DIR, quiet_config(deduplication, scan_interval_ms)) {
        std::remove(quiet_config_path().c_str());
    }
    grey_backend_info cuda_report() const { return report(); }
    uint32_t device_count() const {
        uint32_t n = 0;
        EXPECT_EQ(grey_device_count(context, &n), GREY_OK);
        return n;
    }
};

// The fake driver's own view of itself (exported test hooks), through the library the backend uses;
// ~0 when the hook cannot be reached.
template <typename Result>
Result fake_hook(const char* name) {
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (lib == nullptr) return static_cast<Result>(~0ull);
    auto fn = reinterpret_cast<Result (*)()>(dlsym(lib, name));
    const Result value = fn != nullptr ? fn() : static_cast<Result>(~0ull);
    dlclose(lib);
    return value;
}

unsigned long long fake_physical_bytes() { return fake_hook<unsigned long long>("fake_cuda_physical_bytes"); }

std::vector<unsigned char> random_bytes(size_t n) {
    std::mt19937_64 rng(std::random_device{}());
    std::vector<unsigned char> out(n);
    for (auto& b : out) b = static_cast<unsigned char>(rng());
    return out;
}

// A sealed buffer made with `options` (its size that of `bytes`) holding `bytes`.
grey_buffer* sealed_with(grey_context* context, grey_buffer_options options, const std::vector<unsigned char>& bytes) {
    options.size_bytes = bytes.size();
    grey_buffer* b = nullptr;
    EXPECT_EQ(grey_buffer_create_with_options(context, &options, &b), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_buffer_write(b, 0, bytes.data(), bytes.size()), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_buffer_seal(b), GREY_OK);
    return b;
}

// A sealed buffer on the fake CUDA device (context device 1) holding `bytes`.
grey_buffer* sealed_on_cuda(grey_context* context, const std::vector<unsigned char>& bytes, uint64_t tenant,
                            grey_dtype dtype = GREY_DTYPE_U8) {
    grey_buffer_options options = GREY_BUFFER_OPTIONS_INIT;
    options.device = 1;
    options.tenant = tenant;
    options.dtype = dtype;
    return sealed_with(context, options, bytes);
}

}  // namespace

// ----- fake/full: every symbol present -----------------------------------------------------------

TEST(CudaFake, LoadsAndOffersTheDevice) {
    Context c;
    const auto info = c.cuda_report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_LOADED) << info.reason;
    EXPECT_EQ(info.device_count, 1u);
    EXPECT_EQ(c.device_count(), 2u);  // host + one fake GPU
}

TEST(CudaFake, SpecComesFromDriverAndNvml) {
    Context c;
    const grey_device_spec s = c.spec();
    EXPECT_STREQ(s.backend, "cuda");
    EXPECT_EQ(s.vendor, GREY_VENDOR_NVIDIA);
    EXPECT_EQ(s.type, GREY_DEVICE_GPU);
    EXPECT_STREQ(s.name.value, "Fake NVIDIA H100 80GB HBM3");
    EXPECT_EQ(s.name.source, GREY_SOURCE_CUDA_DRIVER);
    EXPECT_STREQ(s.compute_capability.value, "9.0");
    EXPECT_STREQ(s.architecture.value, "Hopper");
    EXPECT_EQ(s.architecture.source, GREY_SOURCE_TABLE);
    EXPECT_STREQ(s.uuid.value, "GPU-00102030-4050-6070-8090-a0b0c0d0e0f0");
    EXPECT_STREQ(s.pci_bus_id.value, "0000:3b:00.0");
    EXPECT_STREQ(s.driver_version.value, "580.159.04");
    EXPECT_EQ(s.driver_version.source, GREY_SOURCE_NVML);
    EXPECT_STREQ(s.runtime_version.value, "13.0");
    EXPECT_EQ(s.compute_units.value, 132u);  // SMs from the driver attribute
    EXPECT_EQ(s.compute_units.source, GREY_SOURCE_CUDA_DRIVER);
    EXPECT_EQ(s.l2_cache_bytes.value, 50u << 20);
    EXPECT_EQ(s.memory_bus_width_bits.value, 5120u);
    EXPECT_EQ(s.memory_clock_max_mhz.value, 2619u);
    EXPECT_EQ(s.memory_clock_max_mhz.source, GREY_SOURCE_NVML);
    // 2 (DDR) x 2619 MHz x 5120 bits / 8: an H100 80GB HBM3's 3352 GB/s.
    EXPECT_NEAR(s.peak_memory_bandwidth_gbps.value, 3352.32, 0.01);
    EXPECT_EQ(s.peak_memory_bandwidth_gbps.source, GREY_SOURCE_DERIVED);
    EXPECT_EQ(s.memory_total_bytes.value, 81559ull << 20);  // NVML's total, as nvidia-smi reports it
    EXPECT_EQ(s.memory_total_bytes.source, GREY_SOURCE_NVML);
    EXPECT_EQ(s.memory_free_bytes.value, (81559ull - 531ull) << 20);
    EXPECT_EQ(s.graphics_clock_max_mhz.value, 1980u);
    EXPECT_EQ(s.power_limit_mw.value, 700000u);
    EXPECT_EQ(s.power_limit_default_mw.value, 700000u);
    EXPECT_EQ(s.power_limit_min_mw.value, 200000u);
    EXPECT_EQ(s.power_limit_max_mw.value, 700000u);
    EXPECT_EQ(s.temperature_slowdown_c.value, 89.0);
    EXPECT_EQ(s.temperature_shutdown_c.value, 92.0);
    EXPECT_EQ(s.temperature_gpu_max_c.value, 87.0);
    EXPECT_EQ(s.temperature_memory_max_c.value, 95.0);
    EXPECT_EQ(s.pcie_generation_current.value, 5u);
    EXPECT_EQ(s.pcie_generation_max.value, 5u);
    EXPECT_EQ(s.pcie_width_current.value, 8u);
    EXPECT_EQ(s.pcie_width_max.value, 16u);
    // Every spec field is OK on this fake.
    for (int f = 0; f < GREY_FIELD_TEMPERATURE_C; ++f) EXPECT_EQ(c.reason(static_cast<grey_field>(f)), "") << "field " << f;
}

TEST(CudaFake, TelemetryDecodesReasonsAndCounters) {
    Context c;
    const grey_device_telemetry t = c.telemetry();
    EXPECT_GT(t.timestamp_ns, 0u);
    EXPECT_EQ(t.temperature_c.value, 35.0);
    EXPECT_EQ(t.memory_temperature_c.value, 41.0);
    EXPECT_EQ(t.power_draw_mw.value, 70123u);
    EXPECT_EQ(t.energy_total_mj.value, 123456789u);
    EXPECT_EQ(t.graphics_clock_mhz.value, 1750u);
    EXPECT_EQ(t.sm_clock_mhz.value, 1755u);
    EXPECT_EQ(t.memory_clock_mhz.value, 2619u);
    EXPECT_EQ(t.utilization_percent.value, 7u);
    EXPECT_EQ(t.memory_utilization_percent.value, 3u);
    EXPECT_EQ(t.memory_used_bytes.value, 531ull << 20);
    EXPECT_EQ(t.throttle_reasons.state, GREY_FIELD_OK);
    EXPECT_EQ(t.throttle_reasons.value, uint64_t{GREY_THROTTLE_IDLE | GREY_THROTTLE_SW_POWER_CAP | GREY_THROTTLE_OTHER});
    EXPECT_EQ(t.throttle_time_power_ns.value, 1000000u);
    EXPECT_EQ(t.throttle_time_thermal_ns.value, 2000u);
    // A counter at zero is a reading (no time throttled), not a missing value.
    EXPECT_EQ(t.throttle_time_sync_boost_ns.state, GREY_FIELD_OK);
    EXPECT_EQ(t.throttle_time_sync_boost_ns.value, 0u);
}

TEST(CudaFake, NvmlPermissionErrorMarksOnlyThatField) {
    ScopedEnv env{{"FAKE_NVML_FAIL", "nvmlDeviceGetEnforcedPowerLimit:4,nvmlDeviceGetTemperatureThreshold:3"},
            {"FAKE_NVML_FIELD_FAIL", "74:4"}};
    Context c;
    const grey_device_spec s = c.spec();
    EXPECT_EQ(s.power_limit_mw.state, GREY_FIELD_PERMISSION_DENIED);
    EXPECT_EQ(s.power_limit_mw.value, 0u);
    EXPECT_EQ(s.power_limit_mw.source, GREY_SOURCE_NONE);
    const std::string why = c.reason(GREY_FIELD_POWER_LIMIT_MW);
    EXPECT_TRUE(contains(why, "nvmlDeviceGetEnforcedPowerLimit") && contains(why, "Insufficient Permissions")) << why;
    EXPECT_EQ(s.power_limit_default_mw.state, GREY_FIELD_OK);
    EXPECT_EQ(s.temperature_slowdown_c.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_TEMPERATURE_SLOWDOWN_C), "Not Supported")) << c.reason(GREY_FIELD_TEMPERATURE_SLOWDOWN_C);
    const grey_device_telemetry t = c.telemetry();
    EXPECT_EQ(t.throttle_time_power_ns.state, GREY_FIELD_PERMISSION_DENIED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_THROTTLE_TIME_POWER_NS), "NVML_FI_DEV_PERF_POLICY_POWER"));
    EXPECT_EQ(t.throttle_time_thermal_ns.state, GREY_FIELD_OK);
}

TEST(CudaFake, DriverErrorOnAFieldIsReportedNotZero) {
    ScopedEnv env{{"FAKE_CUDA_FAIL", "cuDeviceGetAttribute:1"}};
    Context c;
    const grey_device_spec s = c.spec();
    EXPECT_EQ(s.compute_units.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_COMPUTE_UNITS), "cuDeviceGetAttribute failed: CUDA_ERROR_INVALID_VALUE"))
        << c.reason(GREY_FIELD_COMPUTE_UNITS);
    // The bandwidth needs the bus width, which the driver did not give.
    EXPECT_EQ(s.peak_memory_bandwidth_gbps.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(s.architecture.state, GREY_FIELD_UNSUPPORTED);
}

TEST(CudaFake, MissingDriverEntryPointSkipsTheBackend) {
    ScopedEnv env{{"FAKE_CUDA_HIDE", "cuMemCreate"}};
    Context c;
    const auto info = c.cuda_report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(contains(info.reason, "does not provide cuMemCreate")) << info.reason;
    EXPECT_EQ(c.device_count(), 1u);
}

TEST(CudaFake, DriverThatCannotStartSkipsTheBackend) {
    ScopedEnv env{{"FAKE_CUDA_FAIL", "cuInit:100"}};
    Context c;
    const auto info = c.cuda_report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(contains(info.reason, "cuInit failed: CUDA_ERROR_NO_DEVICE")) << info.reason;
}

TEST(CudaFake, NoDevicesSkipsTheBackend) {
    ScopedEnv env{{"FAKE_CUDA_DEVICE_COUNT", "0"}};
    Context c;
    const auto info = c.cuda_report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(contains(info.reason, "reports no device")) << info.reason;
}

TEST(CudaFake, NvmlThatCannotStartLeavesDriverFields) {
    ScopedEnv env{{"FAKE_NVML_FAIL", "nvmlInit_v2:9"}};
    Context c;
    const grey_device_spec s = c.spec();
    EXPECT_EQ(s.compute_units.state, GREY_FIELD_OK);
    EXPECT_EQ(s.power_limit_mw.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_POWER_LIMIT_MW), "NVML did not start")) << c.reason(GREY_FIELD_POWER_LIMIT_MW);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_POWER_LIMIT_MW), "Driver Not Loaded"));
    // The driver's attribute stands in for NVML's maximum memory clock.
    EXPECT_EQ(s.memory_clock_max_mhz.source, GREY_SOURCE_CUDA_DRIVER);
    EXPECT_NEAR(s.peak_memory_bandwidth_gbps.value, 3352.32, 0.01);
}

TEST(CudaFake, BuffersRoundTripFillCopyChecksum) {
    Context c;
    const size_t n = 3 * 1024 * 1024 + 17;  // spans two pool chunks, odd size
    const auto data = random_bytes(n);
    grey_buffer* a = nullptr;
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, n, &a), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_create(c.context, 1, n, &b), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_write(a, 0, data.data(), n), GREY_OK) << grey_last_error();
    std::vector<unsigned char> back(n);
    ASSERT_EQ(grey_buffer_read(a, 0, back.data(), n), GREY_OK);
    EXPECT_EQ(back, data);

    ASSERT_EQ(grey_buffer_copy(b, 5, a, 3, n - 10), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_fill(b, 0, 0xAB, 5), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_read(b, 0, back.data(), n), GREY_OK);
    for (size_t i = 0; i < 5; ++i) ASSERT_EQ(back[i], 0xAB);
    for (size_t i = 0; i < n - 10; ++i) ASSERT_EQ(back[5 + i], data[3 + i]) << i;

    // The checksum of equal bytes is equal on the host reference (device 0) and on the fake GPU.
    grey_buffer* h = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 0, n, &h), GREY_OK);
    ASSERT_EQ(grey_buffer_write(h, 0, data.data(), n), GREY_OK);
    uint64_t on_gpu = 0, on_host = 0;
    ASSERT_EQ(grey_buffer_checksum(a, 7, n - 7, &on_gpu), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_checksum(h, 7, n - 7, &on_host), GREY_OK);
    EXPECT_EQ(on_gpu, on_host);
    grey_buffer_destroy(h);
    grey_buffer_destroy(a);
    grey_buffer_destroy(b);
}

TEST(CudaFake, MappingGivesThePoolPointerAndTheCudaOrdinal) {
    // Two GPUs: libgrey's indices are 1 and 2 (0 is the host), their CUDA ordinals 0 and 1.
    ScopedEnv env{{"FAKE_CUDA_DEVICE_COUNT", "2"}};
    Context c;
    ASSERT_EQ(c.device_count(), 3u);
    const size_t n = 5000;
    const auto data = random_bytes(n);
    for (const uint32_t device : {1u, 2u}) {
        grey_buffer* b = nullptr;
        ASSERT_EQ(grey_buffer_create(c.context, device, n, &b), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_write(b, 0, data.data(), n), GREY_OK) << grey_last_error();
        grey_buffer_mapping m{};
        m.struct_size = sizeof m;
        ASSERT_EQ(grey_buffer_map(b, &m), GREY_OK) << grey_last_error();
        EXPECT_EQ(m.kind, GREY_MEMORY_CUDA_DEVICE);
        EXPECT_EQ(m.vendor_device, static_cast<int32_t>(device - 1)) << "the CUDA ordinal, not libgrey's index";
        EXPECT_EQ(m.size_bytes, n);
        // The fake's device memory is host memory at the device address, so the pointer can be checked
        // here: it holds what grey_buffer_write put there, and a write through it is what the next read sees.
        auto* bytes = reinterpret_cast<unsigned char*>(static_cast<uintptr_t>(m.address));
        EXPECT_EQ(std::vector<unsigned char>(bytes, bytes + n), data);
        bytes[n - 1] = static_cast<unsigned char>(~data[n - 1]);
        unsigned char last = 0;
        ASSERT_EQ(grey_buffer_read(b, n - 1, &last, 1), GREY_OK);
        EXPECT_EQ(last, static_cast<unsigned char>(~data[n - 1]));
        EXPECT_EQ(grey_buffer_unmap(b), GREY_OK);
        EXPECT_EQ(grey_buffer_unmap(b), GREY_ERROR_INVALID_ARGUMENT);
        grey_buffer_destroy(b);
    }
}

// Sealed buffers on a CUDA device: shared blocks, containers and cached copies are the backend's
// buffers, moved through its copies; the data read back and seen through mappings is the data written.
TEST(CudaFake, SealedBuffersDeduplicateCompressMapAndCopyOnWrite) {
    Context c;
    const size_t n = 5 * 65536 + 300;
    auto data = random_bytes(n);
    std::fill(data.begin() + 65536, data.begin() + 2 * 65536, 0);  // a zero block
    auto make = [&](uint64_t tenant) { return sealed_on_cuda(c.context, data, tenant); };
    grey_buffer* a = make(1);
    grey_buffer* b = make(2);
    grey_buffer* d = make(3);
    // The device runtime holds an allocation of its own from its first buffer on.
    const uint64_t allocations_before = c.stats().allocation_count - 3;
    const grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
    grey_compact_result result{};
    result.struct_size = sizeof result;
    ASSERT_EQ(grey_memory_compact(c.context, 1, &policy, &result), GREY_OK) << grey_last_error();
    EXPECT_EQ(result.buffers_deduplicated, 3u);
    EXPECT_EQ(result.physical_bytes_before, 3 * n);
    EXPECT_EQ(result.physical_bytes_after, n - 65536) << "one copy of the stored blocks, none of the zero block";
    auto stats = c.stats();
    EXPECT_EQ(stats.logical_bytes, 3 * n);
    EXPECT_EQ(stats.physical_device_bytes, n - 65536);
    EXPECT_GE(stats.allocated_bytes, n - 65536) << "the pool holds the stored blocks";
    ASSERT_EQ(grey_buffer_compress(d, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_ZSTD), GREY_OK) << grey_last_error();
    std::vector<unsigned char> back(n);
    for (grey_buffer* buffer : {a, b, d}) {
        ASSERT_EQ(grey_buffer_read(buffer, 0, back.data(), n), GREY_OK) << grey_last_error();
        EXPECT_EQ(back, data);
        grey_buffer_mapping m{};
        m.struct_size = sizeof m;
        ASSERT_EQ(grey_buffer_map(buffer, &m), GREY_OK) << grey_last_error();
        EXPECT_EQ(m.kind, GREY_MEMORY_CUDA_DEVICE);
        const auto* bytes = reinterpret_cast<const unsigned char*>(static_cast<uintptr_t>(m.address));
        EXPECT_EQ(std::vector<unsigned char>(bytes, bytes + n), data) << "the cache's dense copy on the device";
        ASSERT_EQ(grey_buffer_unmap(buffer), GREY_OK);
    }
    EXPECT_EQ(c.stats().cache_misses, 3u);
    // Copy on write: b gets its own memory; a still reads the original.
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    ASSERT_EQ(grey_buffer_map_access(b, GREY_MAP_WRITE, &m), GREY_OK) << grey_last_error();
    reinterpret_cast<unsigned char*>(static_cast<uintptr_t>(m.address))[0] ^= 0xFF;
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    ASSERT_EQ(grey_buffer_read(a, 0, back.data(), n), GREY_OK);
    EXPECT_EQ(back, data);
    ASSERT_EQ(grey_buffer_read(b, 0, back.data(), 1), GREY_OK);
    EXPECT_EQ(back[0], static_cast<unsigned char>(data[0] ^ 0xFF));
    grey_buffer_destroy(a);
    grey_buffer_destroy(b);
    grey_buffer_destroy(d);
    stats = c.stats();
    EXPECT_EQ(stats.physical_device_bytes, stats.cache_bytes) << "only cached copies are left";
    EXPECT_EQ(stats.cache_bytes, 0u) << "a destroyed buffer's cached copy goes with it";
    EXPECT_EQ(stats.allocation_count, allocations_before) << "every block, container and copy is given back";
}

// ----- Deduplication hashes on the device (the block_hashes slot) ----------------------------------

namespace {

unsigned long long fake_read_back_bytes() { return fake_hook<unsigned long long>("fake_cuda_read_back_bytes"); }
unsigned long long fake_block_hash_launches() { return fake_hook<unsigned long long>("fake_cuda_block_hash_launches"); }

// A sealed buffer on context device `device` (0: the host backend, 1: the fake CUDA device) in `domain`.
grey_buffer* sealed_in_domain(grey_context* context, uint32_t device, const std::vector<unsigned char>& bytes, uint64_t tenant, uint64_t domain) {
    grey_buffer_options options = GREY_BUFFER_OPTIONS_INIT;
    options.device = device;
    options.tenant = tenant;
    options.sharing_domain = domain;
    return sealed_with(context, options, bytes);
}

// What deduplication decides in a device's (or a tenant's) figures: the pool's own are left out.
std::vector<uint64_t> dedup_figures(const grey_memory_stats& s) {
    return {s.logical_bytes,     s.physical_bytes, s.physical_device_bytes, s.physical_host_bytes,
            s.saved_dedup_bytes, s.buffer_count,   s.buffers_by_residency[GREY_RESIDENCY_RAW],
            s.buffers_by_residency[GREY_RESIDENCY_DEDUPLICATED], s.shared_blocks, s.constant_blocks};
}

grey_buffer_info info_of(grey_buffer* b) {
    grey_buffer_info info{};
    info.struct_size = sizeof info;
    EXPECT_EQ(grey_buffer_info_get(b, &info), GREY_OK) << grey_last_error();
    return info;
}

std::vector<uint64_t> sharing_of(grey_buffer* b) {
    const grey_buffer_info i = info_of(b);
    return {static_cast<uint64_t>(i.residency), i.physical_bytes, i.shared_blocks, i.shared_with_others, i.constant_blocks};
}

std::vector<unsigned char> read_back(grey_buffer* b, size_t n) {
    std::vector<unsigned char> out(n, 0xEE);
    EXPECT_EQ(grey_buffer_read(b, 0, out.data(), n), GREY_OK) << grey_last_error();
    return out;
}

grey_compact_result compact(grey_context* context, uint32_t device) {
    const grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
    grey_compact_result result{};
    result.struct_size = sizeof result;
    EXPECT_EQ(grey_memory_compact(context, device, &policy, &result), GREY_OK) << grey_last_error();
    return result;
}

std::vector<uint64_t> figures_of(const grey_compact_result& r) {
    return {r.buffers_examined, r.buffers_deduplicated, r.buffers_skipped, r.physical_bytes_before, r.physical_bytes_after};
}

// Blocks of every kind deduplication tells apart (64 KiB each, the default block size): random ones,
// zeros, one repeated 8-byte value, one repeated fp32, a block whose 1 KiB parts are all alike but which
// is not constant, a block held twice, and a ragged end.
std::vector<unsigned char> mixed_blocks() {
    constexpr size_t kBlock = 65536;
    auto out = random_bytes(9 * kBlock + 300);
    std::fill(out.begin() + kBlock, out.begin() + 2 * kBlock, 0);
    for (size_t i = 0; i < kBlock; ++i) out[2 * kBlock + i] = static_cast<unsigned char>(1 + i % 8);
    const float value = 0.25f;
    for (size_t i = 0; i < kBlock; i += 4) std::memcpy(&out[3 * kBlock + i], &value, 4);
    for (size_t i = 1024; i < kBlock; ++i) out[4 * kBlock + i] = out[4 * kBlock + i % 1024];
    std::copy(out.begin(), out.begin() + kBlock, out.begin() + 6 * kBlock);  // block 6 is block 0
    return out;
}

}  // namespace

// A raw buffer on the CUDA device is deduplicated with its hashes computed on the device: two launches of
// the hash kernel per buffer (the blocks' hashes and their parts', for the constant-block test), and of
// buffers of unique random blocks only the hash tables and the ragged end cross to the host. The host
// backend (device 0) deduplicates the same buffers by reading them back and hashing there; both come to
// the same blocks shared, the same constant blocks and the same figures, and every byte reads back.
TEST(CudaFake, DeduplicationHashesDeviceBuffersOnTheDevice) {
    Context c;
    ASSERT_GE(c.device_count(), 2u);
    const size_t n = 8 * 65536 + 300;
    const std::vector<std::vector<unsigned char>> unique = {random_bytes(n), random_bytes(n)};
    std::vector<grey_buffer*> on_host, on_cuda;
    for (const auto& bytes : unique) {
        on_host.push_back(sealed_in_domain(c.context, 0, bytes, 1, 0));
        on_cuda.push_back(sealed_in_domain(c.context, 1, bytes, 1, 0));
    }
    const unsigned long long launches = fake_block_hash_launches(), crossed_before = fake_read_back_bytes();
    const grey_compact_result cuda_result = compact(c.context, 1);
    EXPECT_EQ(fake_block_hash_launches() - launches, 2u * unique.size()) << "two calls of the slot per buffer, none per block";
    const unsigned long long crossed = fake_read_back_bytes() - crossed_before;
    EXPECT_LT(crossed, 2 * n / 50) << "the hash tables and the ragged ends, not the blocks: " << crossed << " bytes";
    EXPECT_GT(crossed, 0u);
    const grey_compact_result host_result = compact(c.context, 0);
    EXPECT_EQ(figures_of(cuda_result), figures_of(host_result));
    EXPECT_EQ(cuda_result.buffers_deduplicated, 2u);
    EXPECT_EQ(dedup_figures(c.stats(1)), dedup_figures(c.stats(0)));
    for (size_t i = 0; i < unique.size(); ++i) {
        EXPECT_EQ(sharing_of(on_cuda[i]), sharing_of(on_host[i]));
        EXPECT_EQ(info_of(on_cuda[i]).shared_with_others, 0u);
        EXPECT_EQ(read_back(on_cuda[i], n), unique[i]);
    }

    // Mixed blocks in two buffers of domain 0 and one of domain 7 (tenant 2), on both devices.
    const auto mixed = mixed_blocks();
    const size_t m = mixed.size();
    const uint64_t tenants[] = {1, 1, 2}, domains[] = {0, 0, 7};
    std::vector<grey_buffer*> mixed_host, mixed_cuda;
    for (size_t i = 0; i < 3; ++i) {
        mixed_host.push_back(sealed_in_domain(c.context, 0, mixed, tenants[i], domains[i]));
        mixed_cuda.push_back(sealed_in_domain(c.context, 1, mixed, tenants[i], domains[i]));
    }
    const unsigned long long mixed_launches = fake_block_hash_launches();
    EXPECT_EQ(figures_of(compact(c.context, 1)), figures_of(compact(c.context, 0)));
    EXPECT_EQ(fake_block_hash_launches() - mixed_launches, 6u);
    EXPECT_EQ(dedup_figures(c.stats(1)), dedup_figures(c.stats(0)));
    for (const uint64_t tenant : {1ull, 2ull}) {
        grey_memory_stats on_device[2]{};
        for (uint32_t d = 0; d < 2; ++d) {
            on_device[d].struct_size = sizeof on_device[d];
            ASSERT_EQ(grey_device_memory_stats_tenant_get(c.context, d, tenant, &on_device[d]), GREY_OK) << grey_last_error();
        }
        EXPECT_EQ(dedup_figures(on_device[1]), dedup_figures(on_device[0])) << "tenant " << tenant;
    }
    // Blocks 0..8 and the end: zeros, the 8-byte value and the fp32 are constant; blocks 0 and 6 are one
    // stored block (counted for each in a buffer's physical bytes); domain 7 stores its own copies and
    // shares nothing with domain 0.
    const uint64_t stored = m - 3 * 65536 - 65536;
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(sharing_of(mixed_cuda[i]), sharing_of(mixed_host[i])) << "buffer " << i;
        EXPECT_EQ(info_of(mixed_cuda[i]).constant_blocks, 3u);
        EXPECT_EQ(info_of(mixed_cuda[i]).shared_blocks, 7u);
        EXPECT_EQ(info_of(mixed_cuda[i]).physical_bytes, stored + 65536);
        EXPECT_EQ(read_back(mixed_cuda[i], m), mixed);
    }
    EXPECT_EQ(info_of(mixed_cuda[0]).shared_with_others, 7u);
    EXPECT_EQ(info_of(mixed_cuda[2]).shared_with_others, 2u) << "only its blocks 0 and 6, one stored block: nothing of domain 0";
    grey_memory_stats domain7{};
    domain7.struct_size = sizeof domain7;
    ASSERT_EQ(grey_device_memory_stats_tenant_get(c.context, 1, 2, &domain7), GREY_OK);
    EXPECT_EQ(domain7.physical_bytes, stored) << "its own copy of every stored block";
    for (auto* list : {&on_host, &on_cuda, &mixed_host, &mixed_cuda})
        for (grey_buffer* b : *list) grey_buffer_destroy(b);
    EXPECT_EQ(c.stats(1).physical_bytes, 0u);
    EXPECT_EQ(c.stats(1).shared_blocks, 0u);
}

// A buffer of more blocks than one call of the slot takes (4096) is hashed range by range, two calls a
// range, with the same result as the host's; equal and constant blocks on either side of the range's
// edge are found.
TEST(CudaFake, ALargeBufferIsHashedRangeByRange) {
    Context c("    block_size_kb: 4\n");
    constexpr size_t kBlock = 4096;
    auto data = random_bytes(4097 * kBlock + 300);
    std::fill(data.begin() + 4095 * kBlock, data.begin() + 4096 * kBlock, 0);                  // the first range's last
    std::copy(data.begin(), data.begin() + kBlock, data.begin() + 4096 * kBlock);              // the second's first is block 0
    grey_buffer* on_host = sealed_in_domain(c.context, 0, data, 1, 0);
    grey_buffer* on_cuda = sealed_in_domain(c.context, 1, data, 1, 0);
    const unsigned long long launches = fake_block_hash_launches(), crossed_before = fake_read_back_bytes();
    EXPECT_EQ(figures_of(compact(c.context, 1)), figures_of(compact(c.context, 0)));
    EXPECT_EQ(fake_block_hash_launches() - launches, 4u) << "two ranges";
    EXPECT_LT(fake_read_back_bytes() - crossed_before, data.size() / 4) << "the tables (an eighth with 4 KiB blocks) and a few blocks";
    EXPECT_EQ(sharing_of(on_cuda), sharing_of(on_host));
    EXPECT_EQ(info_of(on_cuda).constant_blocks, 1u);
    EXPECT_EQ(info_of(on_cuda).shared_with_others, 2u) << "blocks 0 and 4096, one stored block";
    EXPECT_EQ(dedup_figures(c.stats(1)), dedup_figures(c.stats(0)));
    EXPECT_EQ(read_back(on_cuda, data.size()), data);
    grey_buffer_destroy(on_host);
    grey_buffer_destroy(on_cuda);
}

// The background scan deduplicates idle sealed buffers on the CUDA device with the device's hashes too
// (the tsan preset's run of this test checks the scan thread's calls of the slot).
TEST(CudaFake, TheBackgroundScanHashesOnTheDevice) {
    Context c("", 2);
    const auto data = mixed_blocks();
    const unsigned long long launches = fake_block_hash_launches();
    grey_buffer* a = sealed_on_cuda(c.context, data, 1);
    grey_buffer* b = sealed_on_cuda(c.context, data, 2);
    // A bound for a hung scan, not a timing claim; info does not count as a use of the buffer.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (info_of(b).residency != GREY_RESIDENCY_DEDUPLICATED || info_of(a).residency != GREY_RESIDENCY_DEDUPLICATED) {
        ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "the scan never deduplicated the buffers";
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(fake_block_hash_launches() - launches, 4u) << "two calls for each buffer, by the scan";
    EXPECT_EQ(info_of(a).shared_with_others, 7u);
    EXPECT_EQ(info_of(b).constant_blocks, 3u);
    EXPECT_EQ(read_back(a, data.size()), data);
    EXPECT_EQ(read_back(b, data.size()), data);
    grey_buffer_destroy(a);
    grey_buffer_destroy(b);
}

// The device's hashes are the host's: blocks stored from a buffer hashed on the host (one decoded from a
// compressed container) are found by a raw buffer hashed on the device, and the other way round.
TEST(CudaFake, BlocksHashedOnTheDeviceAndOnTheHostAreShared) {
    Context c;
    const auto data = mixed_blocks();
    const size_t n = data.size();
    grey_buffer* host_hashed = sealed_on_cuda(c.context, data, 1);
    ASSERT_EQ(grey_buffer_compress(host_hashed, GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_LZ4), GREY_OK) << grey_last_error();
    unsigned long long launches = fake_block_hash_launches();
    ASSERT_EQ(grey_buffer_compress(host_hashed, GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_block_hash_launches(), launches) << "a compressed buffer is hashed on the host";
    grey_buffer* device_hashed = sealed_on_cuda(c.context, data, 2);
    ASSERT_EQ(grey_buffer_compress(device_hashed, GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_block_hash_launches(), launches + 2);
    EXPECT_EQ(info_of(device_hashed).shared_with_others, 7u) << "every stored block found by its device hash";
    EXPECT_EQ(c.stats().shared_blocks, 6u);
    // And blocks stored from device hashes (in a domain of their own) are found by the host's.
    const std::vector<unsigned char> end(data.begin() + 7 * 65536, data.end());
    grey_buffer* first = sealed_in_domain(c.context, 1, end, 3, 5);
    ASSERT_EQ(grey_buffer_compress(first, GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_block_hash_launches(), launches + 4);
    grey_buffer* second = sealed_in_domain(c.context, 1, end, 3, 5);
    ASSERT_EQ(grey_buffer_compress(second, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_ZSTD), GREY_OK) << grey_last_error();
    launches = fake_block_hash_launches();
    ASSERT_EQ(grey_buffer_compress(second, GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_block_hash_launches(), launches);
    EXPECT_EQ(info_of(second).shared_with_others, 3u) << "blocks 7, 8 and the ragged end";
    EXPECT_EQ(c.stats().shared_blocks, 9u);
    for (grey_buffer* b : {host_hashed, device_hashed}) EXPECT_EQ(read_back(b, n), data);
    for (grey_buffer* b : {first, second}) EXPECT_EQ(read_back(b, end.size()), end);
    for (grey_buffer* b : {host_hashed, device_hashed, first, second}) grey_buffer_destroy(b);
    EXPECT_EQ(c.stats().physical_bytes, 0u);
}

// Device hashes that all collide (the fake's kernel made to give one value) still never merge different
// data: the byte comparison keeps the blocks apart and shares the equal ones.
TEST(CudaFake, DeviceHashCollisionsNeverMergeDifferentData) {
    Context c;
    ScopedEnv forced{{"FAKE_CUDA_BLOCK_HASH", "42"}};
    const size_t n = 3 * 65536 + 100;
    const auto first = random_bytes(n), second = random_bytes(n);
    grey_buffer* a = sealed_on_cuda(c.context, first, 1);
    grey_buffer* b = sealed_on_cuda(c.context, second, 1);
    grey_buffer* d = sealed_on_cuda(c.context, first, 1);
    const unsigned long long launches = fake_block_hash_launches();
    EXPECT_EQ(compact(c.context, 1).buffers_deduplicated, 3u);
    EXPECT_EQ(fake_block_hash_launches(), launches + 6) << "hashed on the device";
    EXPECT_EQ(read_back(a, n), first);
    EXPECT_EQ(read_back(b, n), second);
    EXPECT_EQ(read_back(d, n), first);
    EXPECT_EQ(c.stats().physical_bytes, 2 * n) << "equal blocks shared, different ones kept apart";
    EXPECT_EQ(info_of(d).shared_with_others, 4u);
    EXPECT_EQ(info_of(b).shared_with_others, 0u);
    for (grey_buffer* x : {a, b, d}) grey_buffer_destroy(x);
}

// A block_hashes slot that fails (here the driver refuses the kernel's launch) leaves the host path to do
// the work: the compaction succeeds with the same blocks shared, every block having been read back; the
// next compaction uses the slot again.
TEST(CudaFake, AFailingBlockHashSlotFallsBackToTheHostPath) {
    Context c;
    const auto data = mixed_blocks();
    const size_t n = data.size();
    grey_buffer* a = sealed_on_cuda(c.context, data, 1);
    grey_buffer* b = sealed_on_cuda(c.context, data, 1);
    const unsigned long long launches = fake_block_hash_launches(), read_back_before = fake_read_back_bytes();
    {
        ScopedEnv env{{"FAKE_CUDA_FAIL", "cuLaunchKernel:700"}};
        EXPECT_EQ(compact(c.context, 1).buffers_deduplicated, 2u) << grey_last_error();
    }
    EXPECT_EQ(fake_block_hash_launches(), launches) << "no hash kernel ran";
    EXPECT_GE(fake_read_back_bytes() - read_back_before, 2 * n) << "both buffers were read back and hashed on the host";
    EXPECT_EQ(info_of(b).shared_with_others, 7u);
    EXPECT_EQ(info_of(b).constant_blocks, 3u);
    EXPECT_EQ(read_back(a, n), data);
    EXPECT_EQ(read_back(b, n), data);
    grey_buffer* later = sealed_on_cuda(c.context, data, 1);
    EXPECT_EQ(compact(c.context, 1).buffers_deduplicated, 1u);
    EXPECT_EQ(fake_block_hash_launches(), launches + 2);
    EXPECT_EQ(info_of(later).shared_with_others, 7u) << "found the blocks the host path stored";
    for (grey_buffer* x : {a, b, later}) grey_buffer_destroy(x);
}

// Stored blocks shared by buffers on a CUDA device are compressed once, in device memory (containers are
// backend buffers written through its copies) or in host memory: each holder reads and maps every byte,
// ragged end, zero block and the random block left raw included; the figures follow from what is held,
// and every block goes back to the pool with its last holder.
TEST(CudaFake, SharedStoredBlocksCompressOnceAndReadBackFromEveryHolder) {
    Context c;
    const size_t n = 5 * 65536 + 300;
    auto data = random_bytes(n);
    for (size_t i = 0; i < n; ++i)
        if (i < 3 * 65536 || i >= 4 * 65536) data[i] &= 3;  // compressible, but block 3 (random) and ...
    std::fill(data.begin() + 65536, data.begin() + 2 * 65536, 0);  // ... block 1 (zeros)
    auto make = [&](uint64_t tenant) { return sealed_on_cuda(c.context, data, tenant); };
    grey_buffer* held[3] = {make(1), make(2), make(2)};
    const uint64_t allocations_before = c.stats().allocation_count - 3;
    const uint64_t stored = n - 65536;  // every block but the zero one, stored once
    for (const grey_residency tier : {GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_RESIDENCY_COMPRESSED_HOST}) {
        grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
        policy.compress = 1;
        policy.tier = tier;
        policy.codec = GREY_CODEC_ZSTD;
        grey_compact_result result{};
        result.struct_size = sizeof result;
        ASSERT_EQ(grey_memory_compact(c.context, 1, &policy, &result), GREY_OK) << grey_last_error();
        EXPECT_EQ(result.buffers_compressed, 1u) << "the first holder's blocks, compressed once for all three";
        grey_buffer_info info{};
        info.struct_size = sizeof info;
        ASSERT_EQ(grey_buffer_info_get(held[2], &info), GREY_OK);
        EXPECT_EQ(info.residency, GREY_RESIDENCY_DEDUPLICATED);
        EXPECT_EQ(info.shared_with_others, 5u) << "blocks 0, 2, 3, 4 and the ragged end";
        EXPECT_GT(info.physical_bytes, 65536u) << "the random block stays raw";
        EXPECT_LT(info.physical_bytes, stored / 2) << "the others are compressed";
        const auto stats = c.stats();
        // The maps of the first round left dense copies in the cache.
        EXPECT_EQ(stats.physical_bytes - stats.cache_bytes, info.physical_bytes) << "each block held once, whatever its holders";
        EXPECT_EQ(result.physical_bytes_after, stats.physical_bytes);
        EXPECT_EQ(stats.physical_host_bytes, tier == GREY_RESIDENCY_COMPRESSED_HOST ? info.physical_bytes - 65536 : 0u);
        EXPECT_EQ(stats.saved_dedup_bytes, 3 * n - stored);
        EXPECT_EQ(stats.saved_compression_bytes, stored - info.physical_bytes);
        std::vector<unsigned char> back(n);
        for (grey_buffer* buffer : held) {
            std::fill(back.begin(), back.end(), 0xEE);
            ASSERT_EQ(grey_buffer_read(buffer, 0, back.data(), n), GREY_OK) << grey_last_error();
            EXPECT_EQ(back, data);
            ASSERT_EQ(grey_buffer_read(buffer, 65536 - 7, back.data(), 3 * 65536), GREY_OK) << grey_last_error();
            EXPECT_TRUE(std::equal(back.begin(), back.begin() + 3 * 65536, data.begin() + 65536 - 7)) << "across block edges";
            grey_buffer_mapping m{};
            m.struct_size = sizeof m;
            ASSERT_EQ(grey_buffer_map(buffer, &m), GREY_OK) << grey_last_error();
            const auto* bytes = reinterpret_cast<const unsigned char*>(static_cast<uintptr_t>(m.address));
            EXPECT_EQ(std::vector<unsigned char>(bytes, bytes + n), data) << "the cache's dense copy on the device";
            ASSERT_EQ(grey_buffer_unmap(buffer), GREY_OK);
        }
    }
    // Copy on write of one holder: its own raw memory; the others keep the compressed blocks.
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    ASSERT_EQ(grey_buffer_map_access(held[0], GREY_MAP_WRITE, &m), GREY_OK) << grey_last_error();
    reinterpret_cast<unsigned char*>(static_cast<uintptr_t>(m.address))[n - 1] ^= 0xFF;
    ASSERT_EQ(grey_buffer_unmap(held[0]), GREY_OK);
    std::vector<unsigned char> back(n);
    ASSERT_EQ(grey_buffer_read(held[1], 0, back.data(), n), GREY_OK);
    EXPECT_EQ(back, data);
    ASSERT_EQ(grey_buffer_read(held[0], n - 1, back.data(), 1), GREY_OK);
    EXPECT_EQ(back[0], static_cast<unsigned char>(data[n - 1] ^ 0xFF));
    for (grey_buffer* buffer : held) grey_buffer_destroy(buffer);
    const auto stats = c.stats();
    EXPECT_EQ(stats.physical_bytes, 0u);
    EXPECT_EQ(stats.shared_blocks, 0u);
    EXPECT_EQ(stats.allocation_count, allocations_before) << "every block, container and copy is given back";
}

// A buffer compressed into device memory with the float or bitmask codec is decoded by the device when
// mapped (the fake runs the kernel's lane code): only the container's table crosses to the host, so a
// failed launch fails the map with the driver's error; the next map decodes it.
// A read of part of a buffer compressed in device memory brings back the container's header, table and
// the payloads of the blocks it touches, not the whole container; every byte read is still checked.
TEST(CudaFake, PartialReadsOfADeviceContainerReadBackOnlyTheirBlocks) {
    Context c;
    const size_t n = 32 * 65536 + 1000;
    const std::vector<unsigned char> data = random_bytes(n);
    grey_buffer* b = sealed_on_cuda(c.context, data, 0, GREY_DTYPE_U8);
    ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_LZ4), GREY_OK) << grey_last_error();
    const auto read_range = [&](uint64_t offset, size_t size, unsigned long long* crossed) {
        std::vector<unsigned char> out(size, 0xEE);
        const unsigned long long before = fake_read_back_bytes();
        EXPECT_EQ(grey_buffer_read(b, offset, out.data(), size), GREY_OK) << grey_last_error();
        *crossed = fake_read_back_bytes() - before;
        return out;
    };
    unsigned long long crossed = 0;
    // Four bytes inside block 5, then a range across blocks 9..11, then the ragged last block's end.
    EXPECT_EQ(read_range(5 * 65536 + 123, 4, &crossed), std::vector<unsigned char>(data.begin() + 5 * 65536 + 123, data.begin() + 5 * 65536 + 127));
    EXPECT_LT(crossed, 2 * 65536u + 4096u) << "the table and one payload (random bytes are stored raw): " << crossed;
    EXPECT_EQ(read_range(9 * 65536 + 7, 2 * 65536 + 50, &crossed),
              std::vector<unsigned char>(data.begin() + 9 * 65536 + 7, data.begin() + 11 * 65536 + 57));
    EXPECT_LT(crossed, 4 * 65536u + 4096u) << "the table and three payloads: " << crossed;
    EXPECT_EQ(read_range(n - 10, 10, &crossed), std::vector<unsigned char>(data.end() - 10, data.end()));
    EXPECT_EQ(read_range(0, n, &crossed), data) << "the whole buffer";
    // A range past the end is refused with its message; nothing is read back.
    std::vector<unsigned char> out(16);
    EXPECT_EQ(grey_buffer_read(b, n - 8, out.data(), out.size()), GREY_ERROR_INVALID_ARGUMENT);
    grey_buffer_destroy(b);
}

TEST(CudaFake, CompressedDeviceContainersDecodeOnTheDevice) {
    Context c;
    const size_t n = 7 * 65536 + 10;
    std::vector<unsigned char> weights(n), sparse(n, 0);
    for (size_t i = 0; i + 1 < n; i += 2) {
        const float v = std::sin(0.013f * static_cast<float>(i)) * 0.05f;
        uint32_t bits = 0;
        std::memcpy(&bits, &v, 4);
        weights[i] = static_cast<unsigned char>(bits >> 16);
        weights[i + 1] = static_cast<unsigned char>(bits >> 24);
        if (i % 14 == 0) std::memcpy(&sparse[i], &weights[i], 2);
    }
    auto make = [&](const std::vector<unsigned char>& bytes, grey_codec codec) {
        grey_buffer* b = sealed_on_cuda(c.context, bytes, 0, GREY_DTYPE_BF16);
        EXPECT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_COMPRESSED_DEVICE, codec), GREY_OK) << grey_last_error();
        return b;
    };
    grey_buffer* floats = make(weights, GREY_CODEC_FLOAT);
    grey_buffer* bitmask = make(sparse, GREY_CODEC_BITMASK);
    const auto mapped = [&](grey_buffer* b) {
        grey_buffer_mapping m{};
        m.struct_size = sizeof m;
        if (grey_buffer_map(b, &m) != GREY_OK) return std::vector<unsigned char>{};
        const auto* bytes = reinterpret_cast<const unsigned char*>(static_cast<uintptr_t>(m.address));
        std::vector<unsigned char> out(bytes, bytes + n);
        EXPECT_EQ(grey_buffer_unmap(b), GREY_OK);
        return out;
    };
    EXPECT_EQ(mapped(floats), weights);
    {
        ScopedEnv env{{"FAKE_CUDA_FAIL", "cuLaunchKernel:700"}};
        EXPECT_TRUE(mapped(bitmask).empty());
        EXPECT_NE(std::string(grey_last_error()).find("cuLaunchKernel"), std::string::npos) << grey_last_error();
    }
    EXPECT_EQ(mapped(bitmask), sparse);
    // An async map decodes on the stream straight into the working set; the fault bits it keeps for the
    // decode are given back once the stream has run it.
    ASSERT_EQ(grey_buffer_compress(floats, GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_compress(floats, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_FLOAT), GREY_OK) << grey_last_error();
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    const uint64_t allocations = c.stats().allocation_count;
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    ASSERT_EQ(grey_buffer_map_async(floats, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(c.stats().allocation_count, allocations + 2) << "the cached copy and the decode's fault bits";
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(static_cast<uintptr_t>(m.address));
    EXPECT_EQ(std::vector<unsigned char>(bytes, bytes + n), weights);
    ASSERT_EQ(grey_buffer_unmap(floats), GREY_OK);
    EXPECT_EQ(mapped(floats), weights) << "a hit, which settles the finished fill";
    EXPECT_EQ(c.stats().allocation_count, allocations + 1) << "only the cached copy is left";
    // Deduplicated buffers whose shared stored blocks are compressed in device memory are put together
    // there too.
    grey_buffer* twin = make(weights, GREY_CODEC_FLOAT);
    grey_buffer* other_twin = make(weights, GREY_CODEC_FLOAT);
    for (grey_buffer* t : {twin, other_twin}) {
        ASSERT_EQ(grey_buffer_compress(t, GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_compress(t, GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
    }
    grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
    policy.compress = 1;
    policy.codec = GREY_CODEC_FLOAT;
    grey_compact_result result{};
    result.struct_size = sizeof result;
    ASSERT_EQ(grey_memory_compact(c.context, 1, &policy, &result), GREY_OK) << grey_last_error();
    grey_buffer_info info{};
    info.struct_size = sizeof info;
    ASSERT_EQ(grey_buffer_info_get(twin, &info), GREY_OK);
    ASSERT_EQ(info.residency, GREY_RESIDENCY_DEDUPLICATED);
    EXPECT_LT(info.physical_bytes, n * 9 / 10) << "its stored blocks are compressed";
    const auto copies = fake_hook<unsigned long long>("fake_cuda_device_copies");
    const auto decodes = fake_hook<unsigned long long>("fake_cuda_codec_decode_launches");
    ASSERT_EQ(grey_buffer_map_async(twin, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_hook<unsigned long long>("fake_cuda_codec_decode_launches"), decodes + 1) << "its stored blocks decoded on the stream";
    EXPECT_EQ(fake_hook<unsigned long long>("fake_cuda_device_copies"), copies + 1)
        << "only the short last block, left raw (compression does not pay there), is copied";
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    bytes = reinterpret_cast<const unsigned char*>(static_cast<uintptr_t>(m.address));
    EXPECT_EQ(std::vector<unsigned char>(bytes, bytes + n), weights);
    ASSERT_EQ(grey_buffer_unmap(twin), GREY_OK);
    // A damaged stored block is named as the synchronous calls name it.
    {
        ScopedEnv env{{"FAKE_CUDA_CORRUPT_CODEC_JOB", "2"}};
        ASSERT_EQ(grey_buffer_map_async(other_twin, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    }
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_CORRUPT);
    EXPECT_TRUE(contains(grey_last_error(), "grey_buffer_map_async: stored block 2 of 8 of the buffer (bytes 131072..196608, compressed on the "
                                            "device with float) is corrupt"))
        << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(other_twin), GREY_OK);
    std::vector<unsigned char> back(n);
    EXPECT_EQ(grey_buffer_read(twin, 0, back.data(), n), GREY_ERROR_CORRUPT) << "the block both hold is damaged";
    EXPECT_TRUE(contains(grey_last_error(), "stored block 2 of 8")) << grey_last_error();
    grey_buffer_destroy(twin);
    grey_buffer_destroy(other_twin);
    grey_stream_destroy(stream);
    grey_buffer_destroy(floats);
    grey_buffer_destroy(bitmask);
}

// grey_buffer_map_async on a CUDA device: the fake's streams defer their work as a GPU does, so the
// mapped copy holds the buffer's bytes only once the stream has run the copy; a second stream that hits
// the copy while it is being filled waits for that fill; an early unmap frees nothing the stream writes.
TEST(CudaFake, AsyncMapFillsTheCachedCopyOnTheStream) {
    Context c;
    const size_t n = 3 * 65536 + 100;
    const auto data = random_bytes(n);
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, n, &b), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_write(b, 0, data.data(), n), GREY_OK);
    ASSERT_EQ(grey_buffer_seal(b), GREY_OK);
    ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_LZ4), GREY_OK) << grey_last_error();
    grey_stream *first = nullptr, *second = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &first), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_create(c.context, 1, &second), GREY_OK) << grey_last_error();
    grey_buffer_mapping m{}, hit{};
    m.struct_size = hit.struct_size = sizeof m;
    ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, first), GREY_OK) << grey_last_error();
    EXPECT_EQ(m.kind, GREY_MEMORY_CUDA_DEVICE);
    ASSERT_NE(m.address, 0u);
    const auto* bytes = reinterpret_cast<const unsigned char*>(static_cast<uintptr_t>(m.address));
    EXPECT_NE(std::vector<unsigned char>(bytes, bytes + n), data) << "the copy is queued on the stream, not done in the call";
    // The second stream hits the copy still being filled: its synchronize runs the first stream's fill.
    ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &hit, second), GREY_OK) << grey_last_error();
    EXPECT_EQ(hit.address, m.address);
    ASSERT_EQ(grey_stream_synchronize(second), GREY_OK) << grey_last_error();
    EXPECT_EQ(std::vector<unsigned char>(bytes, bytes + n), data);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    ASSERT_EQ(grey_stream_synchronize(first), GREY_OK) << grey_last_error();
    // Unmapped before its fill ran, then moved back to raw: the move waits for the fill to finish.
    grey_buffer_info info{};
    info.struct_size = sizeof info;
    ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_ZSTD), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, first), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_info_get(b, &info), GREY_OK);
    EXPECT_EQ(info.cached, 0u);
    std::vector<unsigned char> back(n);
    ASSERT_EQ(grey_buffer_read(b, 0, back.data(), n), GREY_OK);
    EXPECT_EQ(back, data);
    ASSERT_EQ(grey_stream_synchronize(first), GREY_OK) << grey_last_error();
    grey_stream_destroy(second);
    grey_stream_destroy(first);
    grey_buffer_destroy(b);
    EXPECT_EQ(c.stats().cache_bytes, 0u);
}

// --- Async maps of buffers compressed in device memory: one decode queued on the caller's stream,
// straight into the working-set copy, its fault bits checked once the stream has run it.

unsigned long long fake_queued_work() { return fake_hook<unsigned long long>("fake_cuda_queued_work"); }
unsigned long long fake_device_copies() { return fake_hook<unsigned long long>("fake_cuda_device_copies"); }
unsigned long long fake_decode_launches() { return fake_hook<unsigned long long>("fake_cuda_codec_decode_launches"); }
unsigned long long fake_stream_synchronizes() { return fake_hook<unsigned long long>("fake_cuda_stream_synchronizes"); }

// bf16-like bytes the float codec compresses; `seed` makes buffers differ.
std::vector<unsigned char> weight_bytes(size_t n, float seed) {
    std::vector<unsigned char> out(n);
    for (size_t i = 0; i + 1 < n; i += 2) {
        const float v = std::sin(seed + 0.013f * static_cast<float>(i)) * 0.05f;
        uint32_t bits = 0;
        std::memcpy(&bits, &v, 4);
        out[i] = static_cast<unsigned char>(bits >> 16);
        out[i + 1] = static_cast<unsigned char>(bits >> 24);
    }
    return out;
}

// A sealed bf16 buffer of `bytes` on the fake GPU, compressed in host memory with `codec`.
grey_buffer* host_compressed(grey_context* context, const std::vector<unsigned char>& bytes, grey_codec codec) {
    grey_buffer* b = sealed_on_cuda(context, bytes, 0, GREY_DTYPE_BF16);
    EXPECT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_COMPRESSED_HOST, codec), GREY_OK) << grey_last_error();
    return b;
}

grey_buffer* device_compressed(grey_context* context, const std::vector<unsigned char>& bytes) {
    grey_buffer* b = sealed_on_cuda(context, bytes, 0, GREY_DTYPE_BF16);
    EXPECT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_FLOAT), GREY_OK) << grey_last_error();
    return b;
}

std::vector<unsigned char> bytes_at(const grey_buffer_mapping& m) {
    const auto* p = reinterpret_cast<const unsigned char*>(static_cast<uintptr_t>(m.address));
    return {p, p + m.size_bytes};
}

// Maps `b` for reading on `stream`, runs `check` (what the call itself did), waits for the stream and
// expects the mapped bytes to be `data`; unmaps.
void expect_async_map_reads(grey_buffer* b, grey_stream* stream, const std::vector<unsigned char>& data, const std::function<void()>& check = [] {}) {
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    check();
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(bytes_at(m), data);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
}

TEST(CudaFake, AsyncMapOfADeviceCompressedBufferDecodesOnTheStream) {
    Context c;
    const size_t n = 5 * 65536 + 6;
    const auto data = weight_bytes(n, 0.5f);
    grey_buffer* b = device_compressed(c.context, data);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    const auto copies = fake_device_copies(), decodes = fake_decode_launches(), synchronizes = fake_stream_synchronizes();
    const auto queued = fake_queued_work();
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_decode_launches(), decodes + 1) << "one decode of every block";
    EXPECT_EQ(fake_device_copies(), copies) << "decoded into the working set: nothing to copy";
    EXPECT_EQ(fake_stream_synchronizes(), synchronizes) << "the map waits for nothing";
    EXPECT_GT(fake_queued_work(), queued) << "the decode is queued on the stream, not run in the call";
    EXPECT_NE(bytes_at(m), data);
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(bytes_at(m), data);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    // A hit decodes nothing.
    expect_async_map_reads(b, stream, data, [&] { EXPECT_EQ(fake_decode_launches(), decodes + 1); });
    // A container with a block only the host decodes (lz4) goes the old way: decoded on the calling
    // thread, then copied on the stream.
    ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_LZ4), GREY_OK) << grey_last_error();
    expect_async_map_reads(b, stream, data, [&] { EXPECT_EQ(fake_device_copies(), copies + 1); });
    grey_stream_destroy(stream);
    grey_buffer_destroy(b);
    EXPECT_EQ(c.stats().cache_bytes, 0u);
}

// A buffer compressed into device memory keeps its container's header, table and decode plan on the host,
// from its compression: a synchronous map, an async map and a read fetch nothing back before decoding
// (only the decoder's fault bits, and the payloads a read decodes on the host), and a block the device
// gives up on is still decoded on the host from its payload, named by the host decoder.
TEST(CudaFake, DeviceContainerMapsReadNothingBackBeforeTheDecode) {
    Context c;
    const size_t n = 5 * 65536 + 6;  // 6 blocks
    const auto data = weight_bytes(n, 0.65f);
    grey_buffer* b = device_compressed(c.context, data);
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    const auto decode_again = [&] {  // out of the cache, so that the next map decodes
        ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_FLOAT), GREY_OK) << grey_last_error();
    };
    auto read_back = fake_read_back_bytes();
    auto decodes = fake_decode_launches();
    ASSERT_EQ(grey_buffer_map(b, &m), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_decode_launches(), decodes + 1);
    EXPECT_EQ(fake_read_back_bytes() - read_back, 6 * sizeof(uint32_t)) << "the fault bits of the 6 blocks and nothing else";
    EXPECT_EQ(bytes_at(m), data);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);

    // On a stream: nothing at all crosses back during the call.
    decode_again();
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    read_back = fake_read_back_bytes();
    expect_async_map_reads(b, stream, data, [&] { EXPECT_EQ(fake_read_back_bytes(), read_back) << "nothing read back by the call"; });
    grey_stream_destroy(stream);

    // A read of one block brings back that block's payload only.
    std::vector<unsigned char> part(100);
    read_back = fake_read_back_bytes();
    ASSERT_EQ(grey_buffer_read(b, 2 * 65536 + 5, part.data(), part.size()), GREY_OK) << grey_last_error();
    EXPECT_TRUE(std::equal(part.begin(), part.end(), data.begin() + 2 * 65536 + 5));
    EXPECT_LT(fake_read_back_bytes() - read_back, 65536u) << "one compressed payload, no header or table";

    // Block 2 damaged in device memory: the device gives up on it, and the host decoder, reading back
    // that payload alone, names it.
    decode_again();
    {
        ScopedEnv env{{"FAKE_CUDA_CORRUPT_CODEC_JOB", "2"}};
        read_back = fake_read_back_bytes();
        EXPECT_EQ(grey_buffer_map(b, &m), GREY_ERROR_CORRUPT);
        EXPECT_EQ(std::string(grey_last_error()), "codec container: block 2 of 6 (float): the decoded bytes fail the block's checksum");
        EXPECT_GT(fake_read_back_bytes() - read_back, 6 * sizeof(uint32_t)) << "the fault bits and the damaged block's payload";
        EXPECT_LT(fake_read_back_bytes() - read_back, 65536u);
    }
    grey_buffer_destroy(b);
    EXPECT_EQ(c.stats().cache_bytes, 0u);
}

// A buffer compressed in host memory in a codec the device decodes: a map copies the compressed bytes to
// the device and decodes them there (synchronously, and on the stream for an async map), instead of
// decoding on the host and copying the raw bytes; a damaged block is named as held in host memory.
TEST(CudaFake, HostTierMapsDecodeOnTheDevice) {
    Context c;
    const size_t n = 5 * 65536 + 6;
    const auto data = weight_bytes(n, 0.75f);
    const auto host_tier = [&](grey_codec codec) { return host_compressed(c.context, data, codec); };
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    grey_buffer* b = host_tier(GREY_CODEC_FLOAT);
    auto decodes = fake_decode_launches();
    ASSERT_EQ(grey_buffer_map(b, &m), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_decode_launches(), decodes + 1) << "decoded by the device";
    EXPECT_EQ(bytes_at(m), data);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    grey_buffer_destroy(b);

    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    b = host_tier(GREY_CODEC_FLOAT);
    decodes = fake_decode_launches();
    const auto copies = fake_device_copies(), synchronizes = fake_stream_synchronizes();
    ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_decode_launches(), decodes + 1);
    EXPECT_EQ(fake_device_copies(), copies) << "decoded into the working set: nothing to copy";
    EXPECT_EQ(fake_stream_synchronizes(), synchronizes) << "the map waits for nothing on the stream";
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(bytes_at(m), data);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    grey_buffer_destroy(b);

    // The device copy of block 2 damaged on its way: the stream reports it, naming where the block is held.
    b = host_tier(GREY_CODEC_FLOAT);
    {
        ScopedEnv env{{"FAKE_CUDA_CORRUPT_CODEC_JOB", "2"}};
        ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    }
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_CORRUPT);
    EXPECT_TRUE(contains(grey_last_error(), "block 2 of 6 of the buffer's container (bytes 131072..196608, compressed in host memory "
                                            "with float) is corrupt"))
        << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    // The host container itself is intact: the next map decodes again, right.
    expect_async_map_reads(b, stream, data);
    grey_buffer_destroy(b);

    // A codec only the host decodes (zstd) goes the old way: decoded on the host.
    b = host_tier(GREY_CODEC_ZSTD);
    decodes = fake_decode_launches();
    expect_async_map_reads(b, stream, data, [&] { EXPECT_EQ(fake_decode_launches(), decodes); });
    grey_stream_destroy(stream);
    grey_buffer_destroy(b);
    EXPECT_EQ(c.stats().cache_bytes, 0u);
}

unsigned long long fake_pinned_allocations() { return fake_hook<unsigned long long>("fake_cuda_pinned_allocations"); }
unsigned long long fake_pinned_copies_queued() { return fake_hook<unsigned long long>("fake_cuda_pinned_copies_queued"); }
unsigned long long fake_pinned_copies_run() { return fake_hook<unsigned long long>("fake_cuda_pinned_copies_run"); }
unsigned long long fake_event_queries() { return fake_hook<unsigned long long>("fake_cuda_event_queries"); }

// A host-tier container the device decodes is held in pinned memory from the backend: an async map
// queues its copy to the device on the map's stream (a DMA the call does not wait for), and the decoder's
// job table's from pinned staging too, and the fill keeps both until the stream has run them; a
// synchronous map copies them from there too and plans its decode from the host's copy of the table, so
// nothing but the decoder's fault bits comes back from the device.
TEST(CudaFake, HostTierContainersArePinnedAndCopiedOnTheMapsStream) {
    Context c;
    const size_t n = 5 * 65536 + 6;
    const auto data = weight_bytes(n, 0.25f);
    const auto host_tier = [&](grey_codec codec) { return host_compressed(c.context, data, codec); };
    auto allocations = fake_pinned_allocations();
    grey_buffer* b = host_tier(GREY_CODEC_FLOAT);
    EXPECT_EQ(fake_pinned_allocations(), allocations + 1) << "the container is held in pinned memory";
    EXPECT_GT(c.stats().pinned_host_bytes, 0u);
    EXPECT_EQ(c.stats().pinned_host_bytes, c.stats().physical_host_bytes) << "all of it";

    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    auto queued = fake_pinned_copies_queued(), run = fake_pinned_copies_run();
    const auto synchronizes = fake_stream_synchronizes();
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_pinned_copies_queued(), queued + 2) << "the container's and the job table's copies are queued from pinned memory";
    EXPECT_EQ(fake_pinned_copies_run(), run) << "and not run during the call";
    EXPECT_EQ(fake_stream_synchronizes(), synchronizes);
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_pinned_copies_run(), run + 2);
    EXPECT_EQ(bytes_at(m), data);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    grey_buffer_destroy(b);

    // Unmapped and destroyed while the copy is still queued: the copy reads the container all the same.
    b = host_tier(GREY_CODEC_FLOAT);
    run = fake_pinned_copies_run();
    ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    grey_buffer_destroy(b);
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_pinned_copies_run(), run + 2);

    // A synchronous map: the copies come from pinned memory, and of the container nothing is read back.
    b = host_tier(GREY_CODEC_FLOAT);
    queued = fake_pinned_copies_queued();
    const auto decodes = fake_decode_launches(), read_back = fake_read_back_bytes();
    ASSERT_EQ(grey_buffer_map(b, &m), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_pinned_copies_queued(), queued + 2);
    EXPECT_EQ(fake_decode_launches(), decodes + 1);
    EXPECT_EQ(fake_read_back_bytes() - read_back, 6 * sizeof(uint32_t)) << "the fault bits of the 6 blocks and nothing else";
    EXPECT_EQ(bytes_at(m), data);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    grey_buffer_destroy(b);

    // A container only the host decodes (zstd) crosses to the device as decoded bytes: it is not pinned.
    allocations = fake_pinned_allocations();
    b = host_tier(GREY_CODEC_ZSTD);
    EXPECT_EQ(fake_pinned_allocations(), allocations);
    expect_async_map_reads(b, stream, data);
    grey_buffer_destroy(b);
    grey_stream_destroy(stream);
    EXPECT_EQ(c.stats().cache_bytes, 0u);
}

// Pinning refused (the driver's limit): the container is held in pageable memory, and every map reads
// the same bytes, decoded on the device; a block the device finds damaged is named as before.
TEST(CudaFake, HostTierContainersFallBackToPageableMemory) {
    Context c;
    const size_t n = 5 * 65536 + 6;
    const auto data = weight_bytes(n, 0.3f);
    const auto host_tier = [&](bool pinning_fails) {
        ScopedEnv env{{"FAKE_CUDA_FAIL", pinning_fails ? "cuMemAllocHost:2" : ""}};
        return host_compressed(c.context, data, GREY_CODEC_FLOAT);
    };
    const auto allocations = fake_pinned_allocations(), queued = fake_pinned_copies_queued();
    grey_buffer* b = host_tier(true);
    EXPECT_EQ(fake_pinned_allocations(), allocations);
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    auto decodes = fake_decode_launches();
    ASSERT_EQ(grey_buffer_map(b, &m), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_decode_launches(), decodes + 1) << "still decoded by the device";
    EXPECT_EQ(bytes_at(m), data);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    grey_buffer_destroy(b);

    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    b = host_tier(true);
    decodes = fake_decode_launches();
    expect_async_map_reads(b, stream, data, [&] { EXPECT_EQ(fake_decode_launches(), decodes + 1); });
    EXPECT_EQ(fake_pinned_copies_queued(), queued + 3)
        << "of the two maps, the decoders' job tables, and the async map's copy of the container through pinned staging (one piece)";

    // The same damaged block, pinned or not: the same failure, word for word.
    std::vector<std::string> sync_errors, async_errors;
    for (const bool pinning_fails : {true, false}) {
        grey_buffer* d = host_tier(pinning_fails);
        {
            ScopedEnv env{{"FAKE_CUDA_CORRUPT_CODEC_JOB", "2"}};
            EXPECT_EQ(grey_buffer_map(d, &m), GREY_ERROR_CORRUPT);
            sync_errors.push_back(grey_last_error());
            ASSERT_EQ(grey_buffer_map_async(d, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
        }
        EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_CORRUPT);
        async_errors.push_back(grey_last_error());
        ASSERT_EQ(grey_buffer_unmap(d), GREY_OK);
        expect_async_map_reads(d, stream, data);
        grey_buffer_destroy(d);
    }
    // The host decoder names the block the device gave up on, from its payload in the device copy.
    EXPECT_EQ(sync_errors[0], "codec container: block 2 of 6 (float): the decoded bytes fail the block's checksum");
    EXPECT_EQ(sync_errors[0], sync_errors[1]);
    EXPECT_TRUE(contains(async_errors[0], "block 2 of 6 of the buffer's container (bytes 131072..196608, compressed in host memory with float) is corrupt"))
        << async_errors[0];
    EXPECT_EQ(async_errors[0], async_errors[1]);
    grey_buffer_destroy(b);
    grey_stream_destroy(stream);
    EXPECT_EQ(c.stats().cache_bytes, 0u);
}

unsigned long long fake_host_waits() { return fake_hook<unsigned long long>("fake_cuda_host_waits"); }
unsigned long long fake_host_to_device_copies() { return fake_hook<unsigned long long>("fake_cuda_host_to_device_copies"); }
unsigned long long fake_pinned_bytes() { return fake_hook<unsigned long long>("fake_cuda_pinned_bytes"); }
// Host-to-device copies the fake saw queued on the CUstream under `stream`.
unsigned long long fake_host_to_device_copies_on(grey_stream* stream) {
    grey_memory_kind kind = GREY_MEMORY_HOST;
    uint64_t handle = 0;
    EXPECT_EQ(grey_stream_native_handle(stream, &kind, &handle), GREY_OK) << grey_last_error();
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (lib == nullptr) return ~0ull;
    auto fn = reinterpret_cast<unsigned long long (*)(void*)>(dlsym(lib, "fake_cuda_host_to_device_copies_on"));
    const unsigned long long value = fn != nullptr ? fn(reinterpret_cast<void*>(static_cast<uintptr_t>(handle))) : ~0ull;
    dlclose(lib);
    return value;
}

// A synchronous map of a host-tier container the device decodes queues the container's copy, the decode
// and the read-back of its fault bits on one stream and waits once, pinned or not; a corrupt block is
// still named by the host decoder.
TEST(CudaFake, ASynchronousHostTierMapWaitsOnce) {
    for (const bool pinned : {true, false}) {
        SCOPED_TRACE(pinned ? "pinned" : "pageable");
        Context c;
        const size_t n = 5 * 65536 + 6;
        const auto data = weight_bytes(n, 0.35f);
        const auto allocations = fake_pinned_allocations();
        // Pinning refused, for the pageable case, whenever the container is made.
        const auto compress_host = [&](grey_buffer* buffer) {
            ScopedEnv env{{"FAKE_CUDA_FAIL", pinned ? "" : "cuMemAllocHost:2"}};
            return grey_buffer_compress(buffer, GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_FLOAT);
        };
        grey_buffer* b = sealed_on_cuda(c.context, data, 0, GREY_DTYPE_BF16);
        ASSERT_EQ(compress_host(b), GREY_OK) << grey_last_error();
        EXPECT_EQ(fake_pinned_allocations(), allocations + (pinned ? 1 : 0));
        grey_buffer_mapping m{};
        m.struct_size = sizeof m;
        for (int round = 0; round < 2; ++round) {  // the second with the stream and the staging made already
            const auto waits = fake_host_waits(), decodes = fake_decode_launches(), read_back = fake_read_back_bytes();
            ASSERT_EQ(grey_buffer_map(b, &m), GREY_OK) << grey_last_error();
            EXPECT_EQ(fake_host_waits(), waits + 1) << "copy, decode and fault bits waited for once";
            EXPECT_EQ(fake_decode_launches(), decodes + 1);
            EXPECT_EQ(fake_read_back_bytes() - read_back, 6 * sizeof(uint32_t)) << "the fault bits of the 6 blocks and nothing else";
            EXPECT_EQ(fake_queued_work(), 0u) << "nothing left queued";
            EXPECT_EQ(bytes_at(m), data);
            ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
            // Out of the cache, so that the next map decodes again.
            ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
            ASSERT_EQ(compress_host(b), GREY_OK) << grey_last_error();
        }
        {
            ScopedEnv env{{"FAKE_CUDA_CORRUPT_CODEC_JOB", "2"}};
            EXPECT_EQ(grey_buffer_map(b, &m), GREY_ERROR_CORRUPT);
            EXPECT_EQ(std::string(grey_last_error()), "codec container: block 2 of 6 (float): the decoded bytes fail the block's checksum");
        }
        ASSERT_EQ(grey_buffer_map(b, &m), GREY_OK) << grey_last_error();
        EXPECT_EQ(bytes_at(m), data);
        ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
        grey_buffer_destroy(b);
    }
}

// An async map of a pinned host-tier container waits for nothing: the container's copy and the decoder's
// job table's upload are both queued on the caller's stream, from pinned memory, and the table's staging
// is reused by the next map.
TEST(CudaFake, AnAsyncHostTierMapQueuesEveryUploadOnTheCallersStream) {
    Context c;
    const size_t n = 5 * 65536 + 6;
    const auto data = weight_bytes(n, 0.45f);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    for (int round = 0; round < 2; ++round) {
        grey_buffer* b = host_compressed(c.context, data, GREY_CODEC_FLOAT);
        const auto waits = fake_host_waits(), copies = fake_host_to_device_copies(), on_stream = fake_host_to_device_copies_on(stream);
        const auto pinned_copies = fake_pinned_copies_queued(), allocations = fake_pinned_allocations();
        grey_buffer_mapping m{};
        m.struct_size = sizeof m;
        ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
        EXPECT_EQ(fake_host_waits(), waits) << "no wait, on any stream";
        EXPECT_EQ(fake_host_to_device_copies(), copies + 2) << "the container and the job table";
        EXPECT_EQ(fake_host_to_device_copies_on(stream), on_stream + 2) << "both on the caller's stream";
        EXPECT_EQ(fake_pinned_copies_queued(), pinned_copies + 2) << "both from pinned memory";
        if (round > 0) {
            EXPECT_EQ(fake_pinned_allocations(), allocations) << "the job table's staging is reused";
        }
        ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
        EXPECT_EQ(bytes_at(m), data);
        ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
        grey_buffer_destroy(b);
    }
    grey_stream_destroy(stream);
}

// Holds the fake driver loaded for its scope, so that its hooks can be asked before the first context
// loads it and after the last one unloads it (a test's figures from before and after a context).
struct FakeDriverLoaded {
    FakeDriverLoaded() : library(dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)) {}
    ~FakeDriverLoaded() {
        if (library != nullptr) dlclose(library);
    }
    FakeDriverLoaded(const FakeDriverLoaded&) = delete;
    FakeDriverLoaded& operator=(const FakeDriverLoaded&) = delete;
    void* library;
};

// memory.compression.pinned_host_mb bounds the bytes of host-tier containers held pinned on a device:
// past it a container is held in pageable memory; every byte reads the same either way, the statistics
// count every container, and a container that goes gives its bytes back to the budget.
TEST(CudaFake, PinnedHostContainersStayUnderTheCap) {
    const FakeDriverLoaded loaded;
    const uint64_t pinned_at_start = fake_pinned_bytes();
    {
        Context c("  compression:\n    pinned_host_mb: 1\n");
        constexpr uint64_t kCap = 1 << 20;
        const size_t n = 5 * 65536 + 6;
        grey_stream* stream = nullptr;
        ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
        std::vector<grey_buffer*> buffers;
        std::vector<std::vector<unsigned char>> contents;
        std::vector<uint64_t> sizes;
        std::vector<bool> pinned;
        uint64_t pinned_bytes = 0;
        // Containers of about 0.3 MiB each: a few fit under 1 MiB, then one does not.
        while (pinned.empty() || pinned.back()) {
            ASSERT_LT(buffers.size(), 16u) << "the cap is never reached";
            contents.push_back(weight_bytes(n, 0.1f * static_cast<float>(buffers.size())));
            const uint64_t host_before = c.stats().physical_host_bytes, allocations = fake_pinned_allocations(), fake_bytes = fake_pinned_bytes();
            buffers.push_back(host_compressed(c.context, contents.back(), GREY_CODEC_FLOAT));
            sizes.push_back(c.stats().physical_host_bytes - host_before);
            pinned.push_back(fake_pinned_allocations() == allocations + 1);
            if (pinned.back()) {
                pinned_bytes += sizes.back();
                EXPECT_EQ(fake_pinned_bytes(), fake_bytes + sizes.back()) << "the container's bytes, pinned";
            } else {
                EXPECT_EQ(fake_pinned_bytes(), fake_bytes) << "nothing pinned for it";
            }
        }
        EXPECT_GE(buffers.size(), 2u);
        EXPECT_LE(pinned_bytes, kCap);
        EXPECT_GT(pinned_bytes + sizes.back(), kCap - kCap / 4) << "the first container left pageable is the one past the cap less the "
                                                                   "quarter kept for staging";
        uint64_t held = 0;
        for (const uint64_t size : sizes) held += size;
        EXPECT_EQ(c.stats().physical_host_bytes, held) << "pinned or not, every container is counted";
        EXPECT_EQ(c.stats().pinned_host_bytes, pinned_bytes) << "and those pinned are counted as such";
        // Every byte reads the same, mapped synchronously, on a stream, and read back.
        grey_buffer_mapping m{};
        m.struct_size = sizeof m;
        for (size_t i = 0; i < buffers.size(); ++i) {
            ASSERT_EQ(grey_buffer_map(buffers[i], &m), GREY_OK) << grey_last_error();
            EXPECT_EQ(bytes_at(m), contents[i]) << i;
            ASSERT_EQ(grey_buffer_unmap(buffers[i]), GREY_OK);
            ASSERT_EQ(grey_buffer_compress(buffers[i], GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
            ASSERT_EQ(grey_buffer_compress(buffers[i], GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_FLOAT), GREY_OK) << grey_last_error();
            expect_async_map_reads(buffers[i], stream, contents[i]);
            std::vector<unsigned char> back(n);
            ASSERT_EQ(grey_buffer_read(buffers[i], 0, back.data(), back.size()), GREY_OK) << grey_last_error();
            EXPECT_EQ(back, contents[i]) << i;
        }
        // The maps' staging (job tables, the pageable containers' pieces) is pinned too, under the same
        // cap, and counted: every pinned byte of the context is in the statistics.
        const uint64_t pinned_now = c.stats().pinned_host_bytes;
        EXPECT_GT(pinned_now, pinned_bytes) << "the staging";
        EXPECT_LE(pinned_now, kCap);
        EXPECT_EQ(pinned_now, fake_pinned_bytes() - pinned_at_start);
        // A pinned container that goes gives its bytes back: the next one is pinned again.
        grey_buffer_destroy(buffers.front());
        buffers.erase(buffers.begin());
        const auto allocations = fake_pinned_allocations();
        EXPECT_EQ(c.stats().pinned_host_bytes, pinned_now - sizes.front());
        buffers.push_back(host_compressed(c.context, contents.front(), GREY_CODEC_FLOAT));
        EXPECT_EQ(fake_pinned_allocations(), allocations + 1);
        EXPECT_EQ(c.stats().pinned_host_bytes, pinned_now) << "the same container, pinned again";
        expect_async_map_reads(buffers.back(), stream, contents.front());
        for (grey_buffer* b : buffers) grey_buffer_destroy(b);
        grey_stream_destroy(stream);
    }
    EXPECT_EQ(fake_pinned_bytes(), pinned_at_start) << "every pinned byte, containers' and job tables', is given back with the context";
}

unsigned long long fake_host_tasks_queued() { return fake_hook<unsigned long long>("fake_cuda_host_tasks_queued"); }
unsigned long long fake_host_tasks_run() { return fake_hook<unsigned long long>("fake_cuda_host_tasks_run"); }

// The cap's minimum, 0: no container is pinned, nor any map's staging, and every map still reads every
// byte, decoded on the device.
TEST(CudaFake, APinnedHostCapOfZeroPinsNoContainer) {
    Context c("  compression:\n    pinned_host_mb: 0\n");
    const size_t n = 5 * 65536 + 6;
    const auto data = weight_bytes(n, 0.55f);
    const auto allocations = fake_pinned_allocations(), pinned_bytes = fake_pinned_bytes();
    grey_buffer* b = host_compressed(c.context, data, GREY_CODEC_FLOAT);
    EXPECT_EQ(fake_pinned_allocations(), allocations);
    EXPECT_EQ(fake_pinned_bytes(), pinned_bytes);
    EXPECT_EQ(c.stats().pinned_host_bytes, 0u);
    EXPECT_GT(c.stats().physical_host_bytes, 0u);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    auto decodes = fake_decode_launches();
    const auto tasks = fake_host_tasks_queued();
    expect_async_map_reads(b, stream, data);
    EXPECT_EQ(fake_decode_launches(), decodes + 1) << "decoded by the device all the same";
    EXPECT_EQ(fake_pinned_allocations(), allocations) << "nor is the map's staging pinned";
    EXPECT_EQ(fake_pinned_bytes(), pinned_bytes);
    EXPECT_EQ(c.stats().pinned_host_bytes, 0u);
    EXPECT_EQ(fake_host_tasks_queued(), tasks) << "no pinned staging to copy the container through: copied during the call";
    ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
    const auto recompressed = fake_pinned_allocations();
    ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_FLOAT), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_pinned_allocations(), recompressed);
    decodes = fake_decode_launches();
    const auto waits = fake_host_waits();
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    ASSERT_EQ(grey_buffer_map(b, &m), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_host_waits(), waits + 1) << "a synchronous map of a pageable container waits once too";
    EXPECT_EQ(fake_decode_launches(), decodes + 1);
    EXPECT_EQ(bytes_at(m), data);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    grey_buffer_destroy(b);
    grey_stream_destroy(stream);
}

// A host-tier container past the pinned cap is held in pageable memory; an async map still copies it to
// the device on the map's stream, not during the call: in pieces (an eighth of the cap here: half the
// quarter kept for staging), each put into pinned staging by a host task when the stream reaches it and
// then copied by a DMA, so that every byte arrives. A map queued while another's staging is still in
// use takes staging of its own; once the stream has passed them, the staging is reused.
TEST(CudaFake, AnAsyncMapCopiesAPageableHostContainerOnTheStreamInPieces) {
    const FakeDriverLoaded loaded;
    const uint64_t pinned_at_start = fake_pinned_bytes();
    {
        Context c("  compression:\n    pinned_host_mb: 1\n");
        constexpr uint64_t kPiece = (1 << 20) / 8;
        const size_t n = 32 * 65536 + 6;  // containers of about 1.3 MB, past the cap whatever part of it staging keeps
        const auto data = weight_bytes(n, 0.15f), other = weight_bytes(n, 0.95f);
        grey_buffer* b = host_compressed(c.context, data, GREY_CODEC_FLOAT);
        grey_buffer* d = host_compressed(c.context, other, GREY_CODEC_FLOAT);
        ASSERT_EQ(c.stats().pinned_host_bytes, 0u) << "both containers are past the cap: pageable";
        const uint64_t container = c.stats().physical_host_bytes / 2;
        ASSERT_GT(container, 6 * kPiece);
        grey_stream* stream = nullptr;
        grey_stream* second = nullptr;
        ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_stream_create(c.context, 1, &second), GREY_OK) << grey_last_error();
        grey_buffer_mapping m{}, dm{};
        m.struct_size = dm.struct_size = sizeof m;
        const auto decode_again = [&](grey_buffer* buffer) {  // out of the cache, so that the next map decodes
            ASSERT_EQ(grey_buffer_compress(buffer, GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
            ASSERT_EQ(grey_buffer_compress(buffer, GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_FLOAT), GREY_OK) << grey_last_error();
        };
        for (int round = 0; round < 2; ++round) {
            SCOPED_TRACE(round);
            const auto tasks = fake_host_tasks_queued(), run = fake_host_tasks_run(), waits = fake_host_waits();
            const auto pinned_copies = fake_pinned_copies_queued(), pinned_run = fake_pinned_copies_run();
            const auto allocations = fake_pinned_allocations(), decodes = fake_decode_launches();
            const uint64_t pieces = (container + kPiece - 1) / kPiece;
            ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
            EXPECT_EQ(fake_host_tasks_queued(), tasks + pieces) << "a host task a piece";
            EXPECT_EQ(fake_host_tasks_run(), run) << "none run during the call";
            EXPECT_EQ(fake_pinned_copies_queued(), pinned_copies + pieces + 1) << "each piece, and the job table, from pinned staging";
            EXPECT_EQ(fake_pinned_copies_run(), pinned_run) << "the copy has not run";
            EXPECT_EQ(fake_host_waits(), waits) << "the call waits for nothing";
            EXPECT_EQ(fake_decode_launches(), decodes + 1);
            EXPECT_EQ(fake_pinned_allocations(), allocations + (round == 0 ? 2 : 0)) << "the staging and the job table's; reused later";
            const uint64_t staged = c.stats().pinned_host_bytes;
            EXPECT_GE(staged, kPiece) << "the staging is counted";
            EXPECT_EQ(staged, fake_pinned_bytes() - pinned_at_start);
            // Another map, on another stream, while the first's staging waits for its stream: staging of its own.
            ASSERT_EQ(grey_buffer_map_async(d, GREY_MAP_READ, &dm, second), GREY_OK) << grey_last_error();
            EXPECT_EQ(fake_host_tasks_queued(), tasks + 2 * pieces);
            EXPECT_EQ(fake_pinned_allocations(), allocations + (round == 0 ? 4 : 0)) << "not the first map's staging";
            EXPECT_LE(c.stats().pinned_host_bytes, 1u << 20) << "under the cap";
            ASSERT_EQ(grey_stream_synchronize(second), GREY_OK) << grey_last_error();
            ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
            EXPECT_EQ(fake_host_tasks_run(), run + 2 * pieces);
            EXPECT_EQ(bytes_at(m), data);
            EXPECT_EQ(bytes_at(dm), other);
            ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
            ASSERT_EQ(grey_buffer_unmap(d), GREY_OK);
            decode_again(b);
            decode_again(d);
        }
        // A damaged piece of the device copy is named as before: the host container itself is intact.
        {
            ScopedEnv env{{"FAKE_CUDA_CORRUPT_CODEC_JOB", "2"}};
            ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
        }
        EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_CORRUPT);
        EXPECT_TRUE(contains(grey_last_error(), "block 2 of 33 of the buffer's container")) << grey_last_error();
        ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
        // Unmapped and destroyed while the pieces are still queued: they read the container all the same.
        ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
        grey_buffer_destroy(b);
        ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
        expect_async_map_reads(d, stream, other);
        grey_buffer_destroy(d);
        grey_stream_destroy(stream);
        grey_stream_destroy(second);
    }
    EXPECT_EQ(fake_pinned_bytes(), pinned_at_start) << "the staging is given back with the context";
}

// The staging of an async map's job table is page-locked memory too: counted in pinned_host_bytes beside
// the containers, and under the same cap (with a cap of 0, nothing at all is pinned: above).
TEST(CudaFake, TheJobTableStagingIsCountedAsPinned) {
    const FakeDriverLoaded loaded;
    const uint64_t pinned_at_start = fake_pinned_bytes();
    Context c;
    const size_t n = 5 * 65536 + 6;
    const auto data = weight_bytes(n, 0.85f);
    grey_buffer* b = host_compressed(c.context, data, GREY_CODEC_FLOAT);
    const uint64_t container = c.stats().pinned_host_bytes;
    ASSERT_EQ(container, c.stats().physical_host_bytes) << "pinned";
    EXPECT_EQ(fake_pinned_bytes() - pinned_at_start, container);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    expect_async_map_reads(b, stream, data);
    EXPECT_EQ(c.stats().pinned_host_bytes, container + 4096) << "the job table's staging (4 KiB, kept for reuse)";
    EXPECT_EQ(c.stats().pinned_host_bytes, fake_pinned_bytes() - pinned_at_start) << "every pinned byte";
    EXPECT_EQ(c.stats().physical_host_bytes, container) << "the staging holds no buffer's contents";
    grey_buffer_destroy(b);
    EXPECT_EQ(c.stats().pinned_host_bytes, 4096u);
    grey_stream_destroy(stream);
}

// A bad cap fails the context's creation, naming the key and its range.
TEST(CudaFake, ABadPinnedHostCapIsRefused) {
    std::ofstream(quiet_config_path()) << "memory:\n  compression:\n    pinned_host_mb: -5\n";
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backends = "cuda";
    options.backend_dir = GREY_TEST_PLUGIN_DIR;
    options.config_path = quiet_config_path().c_str();
    options.log_level = GREY_LOG_OFF;
    grey_context* context = nullptr;
    EXPECT_EQ(grey_context_create(&options, &context), GREY_ERROR_CONFIG);
    EXPECT_TRUE(contains(grey_last_error(), "memory.compression.pinned_host_mb: value -5 is out of range [0, 16777216]")) << grey_last_error();
    EXPECT_EQ(context, nullptr);
    std::remove(quiet_config_path().c_str());
}

// grey_stream_synchronize and grey_stream_query look for async decodes' failures only while a decode
// queued on a stream is unchecked or a failure is kept: with none, they leave the cache alone, even a
// fill still pending that decoded nothing on the device (its event is not queried).
TEST(CudaFake, StreamSynchronizeSkipsTheCacheWithNoDecodeToCheck) {
    Context c;
    const size_t n = 5 * 65536 + 6;
    const auto data = weight_bytes(n, 0.6f);
    grey_buffer* host_decoded = sealed_on_cuda(c.context, data, 0, GREY_DTYPE_BF16);
    ASSERT_EQ(grey_buffer_compress(host_decoded, GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_ZSTD), GREY_OK) << grey_last_error();
    grey_buffer* device_decoded = device_compressed(c.context, data);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    ASSERT_EQ(grey_buffer_map_async(host_decoded, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    auto queries = fake_event_queries();
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    uint32_t done = 0;
    ASSERT_EQ(grey_stream_query(stream, &done), GREY_OK) << grey_last_error();
    EXPECT_EQ(done, 1u);
    EXPECT_EQ(fake_event_queries(), queries) << "no decode to check: the cache's fills are not looked at";
    EXPECT_EQ(bytes_at(m), data);
    ASSERT_EQ(grey_buffer_unmap(host_decoded), GREY_OK);

    // A decode on the stream is checked at the next synchronize, and then nothing is left to look at.
    grey_buffer_mapping d{};
    d.struct_size = sizeof d;
    ASSERT_EQ(grey_buffer_map_async(device_decoded, GREY_MAP_READ, &d, stream), GREY_OK) << grey_last_error();
    queries = fake_event_queries();
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    EXPECT_GT(fake_event_queries(), queries) << "the decode's fill is looked at";
    EXPECT_EQ(bytes_at(d), data);
    queries = fake_event_queries();
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_event_queries(), queries);
    ASSERT_EQ(grey_buffer_unmap(device_decoded), GREY_OK);

    // A failure that another call's check found (a synchronous map of the same copy) is still reported
    // by the stream, once.
    grey_buffer* damaged = sealed_on_cuda(c.context, data, 0, GREY_DTYPE_BF16);
    ASSERT_EQ(grey_buffer_compress(damaged, GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_FLOAT), GREY_OK) << grey_last_error();
    {
        ScopedEnv env{{"FAKE_CUDA_CORRUPT_CODEC_JOB", "2"}};
        ASSERT_EQ(grey_buffer_map_async(damaged, GREY_MAP_READ, &d, stream), GREY_OK) << grey_last_error();
    }
    EXPECT_EQ(grey_buffer_map(damaged, &m), GREY_ERROR_CORRUPT);
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_CORRUPT);
    EXPECT_TRUE(contains(grey_last_error(), "block 2 of 6")) << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(damaged), GREY_OK);
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    grey_buffer_destroy(damaged);
    grey_stream_destroy(stream);
    grey_buffer_destroy(host_decoded);
    grey_buffer_destroy(device_decoded);
}

// A model larger than the working set streamed layer by layer: each map decodes on the stream into a
// copy the cache made room for, and every byte is right every time.
TEST(CudaFake, AsyncMapsCycleThroughACacheSmallerThanTheBuffers) {
    Context c("  cache:\n    working_set_mb: 2\n");
    const size_t n = (1u << 20) - 4096 + 10;  // two fit in the cache, not three
    std::vector<std::vector<unsigned char>> layers;
    std::vector<grey_buffer*> buffers;
    for (int i = 0; i < 5; ++i) {
        layers.push_back(weight_bytes(n, 0.1f * static_cast<float>(i)));
        buffers.push_back(device_compressed(c.context, layers.back()));
    }
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    const auto copies = fake_device_copies(), decodes = fake_decode_launches();
    // Layer k + 1 is mapped while layer k is still mapped (and read), as a compute loop would.
    const uint64_t maps = 3 * buffers.size();
    std::vector<grey_buffer_mapping> mapped(buffers.size());
    const auto map = [&](uint64_t k) {
        grey_buffer_mapping& m = mapped[k % buffers.size()];
        m = grey_buffer_mapping{};
        m.struct_size = sizeof m;
        EXPECT_EQ(grey_buffer_map_async(buffers[k % buffers.size()], GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
        EXPECT_NE(m.address, 0u);
    };
    map(0);
    for (uint64_t k = 0; k < maps; ++k) {
        if (k + 1 < maps) map(k + 1);
        ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
        const size_t i = k % buffers.size();
        EXPECT_EQ(bytes_at(mapped[i]), layers[i]) << "map " << k << ", layer " << i;
        ASSERT_EQ(grey_buffer_unmap(buffers[i]), GREY_OK);
    }
    EXPECT_EQ(fake_device_copies(), copies);
    const auto decoded = fake_decode_launches() - decodes;
    EXPECT_GE(decoded, maps - 3 * 2) << "at most two copies hit on a pass";
    EXPECT_LE(c.stats().cache_bytes, 2ull << 20);
    grey_stream_destroy(stream);
    for (grey_buffer* b : buffers) grey_buffer_destroy(b);
}

// A block the device's decoder finds damaged on the stream: the map itself succeeds (nothing is known
// yet), the stream's synchronize reports GREY_ERROR_CORRUPT naming the block, and no map is ever handed
// the wrong copy afterwards.
TEST(CudaFake, ACorruptBlockDecodedOnTheStreamIsReportedAtSynchronize) {
    Context c;
    const size_t n = 5 * 65536 + 6;
    const auto data = weight_bytes(n, 0.25f);
    grey_buffer* b = device_compressed(c.context, data);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    {
        ScopedEnv env{{"FAKE_CUDA_CORRUPT_CODEC_JOB", "3"}};  // block 3's payload damaged in device memory
        ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    }
    EXPECT_NE(m.address, 0u);
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_CORRUPT);
    const std::string message = grey_last_error();
    EXPECT_TRUE(contains(message, "grey_buffer_map_async: block 3 of 6 of the buffer's container (bytes 196608..262144, "
                                  "compressed on the device with float) is corrupt"))
        << message;
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << "reported once";
    // Still mapped: another map of it is refused with the same failure rather than given the copy.
    grey_buffer_mapping again{};
    again.struct_size = sizeof again;
    EXPECT_EQ(grey_buffer_map(b, &again), GREY_ERROR_CORRUPT);
    EXPECT_TRUE(contains(grey_last_error(), "block 3 of 6")) << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    EXPECT_EQ(c.stats().cache_bytes, 0u) << "the wrong copy went with its last mapping";
    // The container really is damaged now: a synchronous map decodes again and fails with the host
    // decoder's words, and an async one reports it again at the next synchronize.
    EXPECT_EQ(grey_buffer_map(b, &again), GREY_ERROR_CORRUPT);
    EXPECT_TRUE(contains(grey_last_error(), "block 3")) << grey_last_error();
    ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    uint32_t done = 0;
    EXPECT_EQ(grey_stream_query(stream, &done), GREY_ERROR_CORRUPT) << "a query that finds the stream done reports it too";
    EXPECT_TRUE(contains(grey_last_error(), "block 3 of 6")) << grey_last_error();
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK);
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    EXPECT_EQ(c.stats().cache_bytes, 0u);
    // Found by another call than the stream's synchronize (here the buffer's destruction waits for the
    // fill and checks it): still reported by the stream that mapped it.
    ASSERT_EQ(grey_buffer_compress(b, GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_ERROR_CORRUPT);
    grey_buffer* other = device_compressed(c.context, data);
    {
        ScopedEnv env{{"FAKE_CUDA_CORRUPT_CODEC_JOB", "0"}};
        ASSERT_EQ(grey_buffer_map_async(other, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    }
    ASSERT_EQ(grey_buffer_unmap(other), GREY_OK);
    grey_buffer_destroy(other);
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_CORRUPT);
    EXPECT_TRUE(contains(grey_last_error(), "block 0 of 6")) << grey_last_error();
    // A stream destroyed before its synchronize takes the failure with it (logged): none is left for a
    // stream made next, which may have its address.
    ASSERT_EQ(grey_buffer_map_async(b, GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(b), GREY_OK);
    grey_stream_destroy(stream);
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    grey_stream_destroy(stream);
    grey_buffer_destroy(b);
    EXPECT_EQ(c.stats().cache_bytes, 0u);
}

TEST(CudaFake, PoolGrowsInChunksAndReportsFragmentation) {
    Context c;
    const grey_memory_stats empty = c.stats();
    EXPECT_EQ(empty.committed_bytes, 0u);  // no buffer yet: no pool
    std::vector<grey_buffer*> buffers(8, nullptr);
    for (auto& b : buffers) ASSERT_EQ(grey_buffer_create(c.context, 1, 1 << 20, &b), GREY_OK) << grey_last_error();
    grey_memory_stats s = c.stats();
    EXPECT_EQ(s.granularity_bytes, 2u << 20);
    EXPECT_EQ(s.reserved_bytes, 1u << 30);
    EXPECT_EQ(s.committed_bytes % s.granularity_bytes, 0u);
    EXPECT_GE(s.committed_bytes, 8u << 20);
    EXPECT_EQ(s.allocation_count, 8u + 1u);  // + the checksum kernel's 8-byte slot
    EXPECT_EQ(s.allocated_bytes, (8u << 20) + 256u);
    EXPECT_EQ(s.free_bytes, s.committed_bytes - s.allocated_bytes);
    // Free every other buffer: equal holes, so fragmentation = 1 - largest / free.
    for (size_t i = 0; i < buffers.size(); i += 2) grey_buffer_destroy(buffers[i]);
    s = c.stats();
    EXPECT_GT(s.fragmentation, 0.0);
    EXPECT_NEAR(s.fragmentation, 1.0 - static_cast<double>(s.largest_free_bytes) / static_cast<double>(s.free_bytes), 1e-12);
    for (size_t i = 1; i < buffers.size(); i += 2) grey_buffer_destroy(buffers[i]);
    s = c.stats();
    EXPECT_EQ(s.allocation_count, 1u);
    EXPECT_EQ(s.fragmentation, 0.0);  // all merged again
}

TEST(CudaFake, OutOfMemoryNamesSizesAndKeepsThePoolConsistent) {
    Context c;
    grey_buffer* first = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4 << 20, &first), GREY_OK);
    const grey_memory_stats before = c.stats();
    const unsigned long long physical_before = fake_physical_bytes();

    grey_buffer* too_big = nullptr;
    EXPECT_EQ(grey_buffer_create(c.context, 1, 2ull << 30, &too_big), GREY_ERROR_OUT_OF_MEMORY);
    EXPECT_TRUE(contains(grey_last_error(), "2147483648 bytes")) << grey_last_error();
    EXPECT_EQ(too_big, nullptr);
    {
        // The device refuses physical memory: OOM with the sizes, and nothing half-made remains.
        ScopedEnv env{{"FAKE_CUDA_FAIL", "cuMemCreate:2"}};
        EXPECT_EQ(grey_buffer_create(c.context, 1, 64 << 20, &too_big), GREY_ERROR_OUT_OF_MEMORY);
        const std::string message = grey_last_error();
        EXPECT_TRUE(contains(message, "67108864 bytes") && contains(message, "bytes free")) << message;
    }
    const grey_memory_stats after = c.stats();
    EXPECT_EQ(after.committed_bytes, before.committed_bytes);
    EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
    EXPECT_EQ(after.allocation_count, before.allocation_count);
    EXPECT_EQ(fake_physical_bytes(), physical_before);
    // And the pool still works.
    ASSERT_EQ(grey_buffer_create(c.context, 1, 64 << 20, &too_big), GREY_OK) << grey_last_error();
    grey_buffer_destroy(too_big);
    grey_buffer_destroy(first);
}

TEST(CudaFake, DriverErrorWhileMappingIsABackendErrorAndRollsBack) {
    Context c;
    grey_buffer* seed = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 1000, &seed), GREY_OK);
    const unsigned long long physical_before = fake_physical_bytes();
    const grey_memory_stats before = c.stats();
    for (const char* failing : {"cuMemMap:999", "cuMemSetAccess:999"}) {
        ScopedEnv env{{"FAKE_CUDA_FAIL", failing}};
        grey_buffer* b = nullptr;
        EXPECT_EQ(grey_buffer_create(c.context, 1, 16 << 20, &b), GREY_ERROR_BACKEND) << failing;
        const std::string message = grey_last_error();
        EXPECT_TRUE(contains(message, std::string(failing).substr(0, std::string(failing).find(':')) + " failed: CUDA_ERROR_UNKNOWN"))
            << message;
        EXPECT_EQ(fake_physical_bytes(), physical_before) << failing << ": physical memory leaked";
        EXPECT_EQ(c.stats().committed_bytes, before.committed_bytes);
    }
    grey_buffer_destroy(seed);
}

TEST(CudaFake, CopyAndKernelErrorsAreReported) {
    Context c;
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &b), GREY_OK);
    {
        ScopedEnv env{{"FAKE_CUDA_FAIL", "cuMemcpyHtoDAsync:999"}};
        const std::vector<unsigned char> data(4096, 1);
        EXPECT_EQ(grey_buffer_write(b, 0, data.data(), data.size()), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "cuMemcpyHtoDAsync failed")) << grey_last_error();
    }
    {
        ScopedEnv env{{"FAKE_CUDA_FAIL", "cuLaunchKernel:2"}};
        EXPECT_EQ(grey_buffer_fill(b, 0, 1, 4096), GREY_ERROR_OUT_OF_MEMORY);
        EXPECT_TRUE(contains(grey_last_error(), "cuLaunchKernel failed")) << grey_last_error();
    }
    grey_buffer_destroy(b);
}

// The fake driver runs none of the quantization kernels (tests/gpu/quant_conformance.cpp checks those
// on a GPU): what is testable here is that a failure to load them is a clear backend error that leaves
// the buffers and the pool as they were, and that bad parameters never reach the backend.
TEST(CudaFake, QuantizationKernelsThatCannotLoadAreABackendErrorAndLeakNothing) {
    Context c;
    const grey_tensor_desc desc = grey::test::small_q4_0_desc();
    grey_quant_params params = grey::test::q4_0_params();
    grey_buffer* plain = nullptr;
    grey_buffer* packed = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4 * 128 * 4, &plain), GREY_OK);
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4 * 4 * 18, &packed), GREY_OK);
    const std::vector<float> values(4 * 128, 0.5f);
    ASSERT_EQ(grey_buffer_write(plain, 0, values.data(), values.size() * sizeof(float)), GREY_OK);
    const grey_memory_stats before = c.stats();

    EXPECT_EQ(grey_quantize_buffer(&desc, plain, 0, &params, packed, 0, nullptr), GREY_ERROR_BACKEND);
    EXPECT_TRUE(contains(grey_last_error(), "cuModuleGetFunction(grey_quant_")) << grey_last_error();
    EXPECT_EQ(grey_dequantize_buffer(&desc, &params, packed, 0, plain, 0), GREY_ERROR_BACKEND);

    params.format = GREY_QUANT_INT4;
    params.group_size = 100;
    EXPECT_EQ(grey_quantize_buffer(&desc, plain, 0, &params, packed, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "group_size 100")) << grey_last_error();

    const grey_memory_stats after = c.stats();
    EXPECT_EQ(after.allocation_count, before.allocation_count);
    EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
    std::vector<float> back(values.size());
    ASSERT_EQ(grey_buffer_read(plain, 0, back.data(), back.size() * sizeof(float)), GREY_OK);
    EXPECT_EQ(back, values);
    grey_buffer_destroy(packed);
    grey_buffer_destroy(plain);
}

// Streams on the CUDA plugin: the fake driver defers each stream's copies and kernels until something
// waits for them, so these fail if the plugin forgets a wait, an ordering or a synchronize.
TEST(CudaFake, StreamsOrderWorkAndEventsOrderStreams) {
    Context c;
    grey::test::expect_streams_order_work(c.context, 1, "cuEventElapsedTime");
}

TEST(CudaFake, StreamErrorsSurfaceAtSynchronize) {
    Context c;
    grey_buffer* plain = nullptr;
    grey_buffer* packed = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4 * 128 * 4, &plain), GREY_OK);
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &packed), GREY_OK);
    grey_stream* stream = nullptr;
    grey_event* after = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK);
    ASSERT_EQ(grey_event_create(c.context, 1, &after), GREY_OK);
    // A driver failure of the stream's work arrives at synchronize, in the driver's words.
    const std::vector<unsigned char> data(4096, 3);
    ASSERT_EQ(grey_buffer_write_async(packed, 0, data.data(), data.size(), stream), GREY_OK);
    {
        ScopedEnv env{{"FAKE_CUDA_FAIL", "cuStreamSynchronize:999"}};
        EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_BACKEND);
        EXPECT_TRUE(contains(grey_last_error(), "cuStreamSynchronize failed: CUDA_ERROR_UNKNOWN")) << grey_last_error();
    }
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    // Quantization kernels that cannot be loaded fail the async call itself, as a launch the driver
    // refuses does (the work is never enqueued), in the synchronous call's words; nothing is kept.
    const grey_tensor_desc desc = grey::test::small_q4_0_desc();
    const grey_quant_params params = grey::test::q4_0_params();
    ASSERT_EQ(grey_quantize_buffer(&desc, plain, 0, &params, packed, 0, nullptr), GREY_ERROR_BACKEND);
    const std::string synchronous_message = grey_last_error();
    EXPECT_EQ(grey_quantize_buffer_async(&desc, plain, 0, &params, packed, 0, stream), GREY_ERROR_BACKEND);
    EXPECT_EQ(grey_last_error(), synchronous_message);
    ASSERT_EQ(grey_event_record(after, stream), GREY_OK);
    EXPECT_EQ(grey_event_synchronize(after), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    // Work enqueued and never waited for completes when the stream is destroyed.
    std::vector<unsigned char> got(4096, 0);
    ASSERT_EQ(grey_buffer_fill_async(packed, 0, 0x77, 4096, stream), GREY_OK);
    ASSERT_EQ(grey_buffer_read_async(packed, 0, got.data(), got.size(), stream), GREY_OK);
    grey_stream_destroy(stream);
    EXPECT_EQ(got, std::vector<unsigned char>(4096, 0x77));
    grey_event_destroy(after);
    grey_buffer_destroy(packed);
    grey_buffer_destroy(plain);
}

// --- Quantization enqueued on CUDA streams. The fake's stand-in kernels (FAKE_CUDA_QUANT_KERNELS) flag
// non-finite input as the real ones do and write a hash of the input; what is tested is that the job is
// only enqueued, in order with the stream's other work, with its failure kept until synchronize.

using grey::test::fnv1a;

struct AsyncQuant {
    ScopedEnv env{{"FAKE_CUDA_QUANT_KERNELS", "1"}};
    Context c;
    grey_tensor_desc desc = grey::test::small_q4_0_desc();
    grey_quant_params params = grey::test::q4_0_params();
    static constexpr size_t kElements = 4 * 128;
    static constexpr size_t kPacked = 4 * 4 * 18;

    grey_buffer* buffer(uint64_t size) {
        grey_buffer* b = nullptr;
        EXPECT_EQ(grey_buffer_create(c.context, 1, size, &b), GREY_OK) << grey_last_error();
        return b;
    }
    static std::vector<float> values(float first) {
        std::vector<float> v(kElements);
        for (size_t i = 0; i < kElements; ++i) v[i] = first + 0.25f * static_cast<float>(i % 61);
        return v;
    }
};

TEST(CudaFake, AsyncQuantizeOnlyEnqueuesAndRunsInOrderOnSeveralStreams) {
    AsyncQuant q;
    grey_buffer* plain[2] = {q.buffer(AsyncQuant::kElements * 4), q.buffer(AsyncQuant::kElements * 4)};
    grey_buffer* packed[2] = {q.buffer(AsyncQuant::kPacked), q.buffer(AsyncQuant::kPacked)};
    grey_buffer* restored = q.buffer(AsyncQuant::kElements * 4);
    grey_stream* streams[2] = {};
    for (auto& s : streams) ASSERT_EQ(grey_stream_create(q.c.context, 1, &s), GREY_OK) << grey_last_error();
    grey_event* quantized = nullptr;
    ASSERT_EQ(grey_event_create(q.c.context, 1, &quantized), GREY_OK);
    const auto a = AsyncQuant::values(1.0f), b = AsyncQuant::values(-3.0f), d = AsyncQuant::values(7.5f);
    uint64_t got_a = 0, got_b = 0, got_d = 0, got_restored = 0;
    // Stream 0: A, then B through the same buffers; stream 1: D, and a dequantization of stream 0's B after
    // an event.
    ASSERT_EQ(grey_buffer_write_async(plain[0], 0, a.data(), a.size() * 4, streams[0]), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain[0], 0, &q.params, packed[0], 0, streams[0]), GREY_OK) << grey_last_error();
    // Enqueued, not run: the write before it is still waiting on the stream.
    EXPECT_GE(fake_queued_work(), 2u);
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
    EXPECT_EQ(got_a, 0u);  // nothing has run yet
    ASSERT_EQ(grey_stream_synchronize(streams[1]), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_synchronize(streams[0]), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_queued_work(), 0u);
    EXPECT_EQ(got_a, fnv1a(a.data(), a.size() * 4));
    EXPECT_EQ(got_b, fnv1a(b.data(), b.size() * 4));
    EXPECT_EQ(got_d, fnv1a(d.data(), d.size() * 4));
    EXPECT_EQ(got_restored, got_b);
    grey_event_destroy(quantized);
    for (auto* s : streams) grey_stream_destroy(s);
    for (auto* x : {plain[0], plain[1], packed[0], packed[1], restored}) grey_buffer_destroy(x);
}

TEST(CudaFake, AsyncQuantizeNanSurfacesAtSynchronizeWithTheSynchronousMessage) {
    AsyncQuant q;
    grey_buffer* plain = q.buffer(AsyncQuant::kElements * 4);
    grey_buffer* packed = q.buffer(AsyncQuant::kPacked);
    auto bad = AsyncQuant::values(0.0f);
    bad[300] = std::nanf("");
    bad[200] = INFINITY;  // the lowest non-finite element is named: infinite, though a NaN follows
    bad[100] = -INFINITY;
    bad[40] = std::nanf("");
    ASSERT_EQ(grey_buffer_write(plain, 0, bad.data(), bad.size() * 4), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer(&q.desc, plain, 0, &q.params, packed, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    const std::string synchronous_nan = grey_last_error();
    EXPECT_TRUE(contains(synchronous_nan, "element 40 is NaN; only finite values can be quantized")) << synchronous_nan;
    bad[40] = 1.0f;
    ASSERT_EQ(grey_buffer_write(plain, 0, bad.data(), bad.size() * 4), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer(&q.desc, plain, 0, &q.params, packed, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    const std::string synchronous_infinite = grey_last_error();
    EXPECT_TRUE(contains(synchronous_infinite, "element 100 is infinite")) << synchronous_infinite;
    bad[40] = std::nanf("");

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
    ASSERT_EQ(grey_buffer_write_async(plain, 0, bad.data(), bad.size() * 4, stream), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer_async(&q.desc, plain, 0, &q.params, packed, 0, stream), GREY_OK) << grey_last_error();
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
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_last_error(), synchronous_nan);
    EXPECT_EQ(hash_after, fnv1a(good.data(), good.size() * 4));
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();

    // The slot the bad job used is re-armed: good input through it is not refused; an infinite input is
    // named as such, and a query of the idle stream returns it.
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
    EXPECT_EQ(done, 7u);
    EXPECT_EQ(grey_stream_query(stream, &done), GREY_OK);
    EXPECT_EQ(done, 1u);
    grey_event_destroy(after);
    grey_event_destroy(before);
    grey_stream_destroy(stream);
    grey_buffer_destroy(packed);
    grey_buffer_destroy(plain);
}

// More jobs in flight than one chunk of flag slots holds, a bad one among them, then the stream is
// destroyed unsynchronized: the work completes, and the journal's memory goes back to the pool.
TEST(CudaFake, AsyncQuantizeDestroyWithWorkPendingCompletesAndGivesMemoryBack) {
    AsyncQuant q;
    grey_buffer* plain = q.buffer(AsyncQuant::kElements * 4);
    grey_buffer* packed = q.buffer(AsyncQuant::kPacked);
    auto bad = AsyncQuant::values(0.0f);
    bad[5] = std::nanf("");
    const auto good = AsyncQuant::values(4.0f);
    // The device's own flag slot comes with the kernels, on first use; it stays for the device's life.
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
    enqueue_batch(600);
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "element 5 is NaN")) << grey_last_error();
    const grey_memory_stats grown = q.c.stats();
    // A second batch reuses the slots the first one freed.
    enqueue_batch(600);
    EXPECT_EQ(grey_stream_synchronize(stream), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(q.c.stats().allocation_count, grown.allocation_count);
    last = 0;
    enqueue_batch(300);
    grey_stream_destroy(stream);
    EXPECT_EQ(last, fnv1a(good.data(), good.size() * 4));
    const grey_memory_stats after = q.c.stats();
    EXPECT_EQ(after.allocation_count, before.allocation_count);
    EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
    grey_buffer_destroy(packed);
    grey_buffer_destroy(plain);
}

// A CUDA stream's native handle is its CUstream: one per stream, the same at every call.
TEST(CudaFake, StreamNativeHandleIsItsCudaStream) {
    Context c;
    grey_stream *first = nullptr, *second = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &first), GREY_OK);
    ASSERT_EQ(grey_stream_create(c.context, 1, &second), GREY_OK);
    grey_memory_kind kind = GREY_MEMORY_HOST;
    uint64_t a = 0, again = 0, b = 0;
    ASSERT_EQ(grey_stream_native_handle(first, &kind, &a), GREY_OK) << grey_last_error();
    EXPECT_EQ(kind, GREY_MEMORY_CUDA_DEVICE);
    ASSERT_EQ(grey_stream_native_handle(first, &kind, &again), GREY_OK);
    ASSERT_EQ(grey_stream_native_handle(second, &kind, &b), GREY_OK);
    EXPECT_NE(a, 0u);
    EXPECT_EQ(a, again);
    EXPECT_NE(a, b);
    grey_stream_destroy(second);
    grey_stream_destroy(first);
}

// --- Streams of the caller's (grey_stream_wrap_native): another library's CUstream, used by libgrey.

int fake_live_streams() { return fake_hook<int>("fake_cuda_live_streams"); }

uint64_t native_of(grey_stream* stream) {
    grey_memory_kind kind = GREY_MEMORY_HOST;
    uint64_t handle = 0;
    EXPECT_EQ(grey_stream_native_handle(stream, &kind, &handle), GREY_OK) << grey_last_error();
    return handle;
}

// The wrapper enqueues on the caller's CUstream itself (in order with the stream's other work), and
// destroying it leaves the CUstream to its owner.
TEST(CudaFake, WrappedStreamRunsOnTheCallersStreamAndLeavesItAlive) {
    Context c;
    grey_stream* owner = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &owner), GREY_OK) << grey_last_error();
    const int live = fake_live_streams();
    grey_stream* wrapper = nullptr;
    ASSERT_EQ(grey_stream_wrap_native(c.context, 1, GREY_MEMORY_CUDA_DEVICE, native_of(owner), &wrapper), GREY_OK) << grey_last_error();
    EXPECT_EQ(fake_live_streams(), live);
    EXPECT_EQ(native_of(wrapper), native_of(owner));

    grey_buffer* buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 4096, &buffer), GREY_OK);
    const std::vector<unsigned char> data = random_bytes(4096);
    std::vector<unsigned char> back(4096, 0);
    ASSERT_EQ(grey_buffer_write_async(buffer, 0, data.data(), data.size(), wrapper), GREY_OK) << grey_last_error();
    // Read on the owner's grey_stream: the same CUstream, so after the wrapper's write.
    ASSERT_EQ(grey_buffer_read_async(buffer, 0, back.data(), back.size(), owner), GREY_OK);
    EXPECT_GT(fake_queued_work(), 0u);
    ASSERT_EQ(grey_stream_synchronize(owner), GREY_OK) << grey_last_error();
    EXPECT_EQ(back, data);

    ASSERT_EQ(grey_buffer_fill_async(buffer, 0, 7, 4096, wrapper), GREY_OK);
    grey_stream_destroy(wrapper);  // waits for the fill it carried
    EXPECT_EQ(fake_queued_work(), 0u);
    EXPECT_EQ(fake_live_streams(), live);
    ASSERT_EQ(grey_buffer_read(buffer, 0, back.data(), back.size()), GREY_OK);
    EXPECT_EQ(back, std::vector<unsigned char>(4096, 7));
    ASSERT_EQ(grey_buffer_write_async(buffer, 0, data.data(), data.size(), owner), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_synchronize(owner), GREY_OK);
    grey_buffer_destroy(buffer);
    grey_stream_destroy(owner);
    EXPECT_EQ(fake_live_streams(), live - 1);
}

// A wrapper made only to make the caller's stream wait for libgrey's work is destroyed without waiting:
// the producer's work is still queued after it, and runs when the caller's stream reaches the wait.
TEST(CudaFake, WrapperThatOnlyWaitsIsDestroyedWithoutBlocking) {
    Context c;
    grey_stream *producer = nullptr, *consumer = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &producer), GREY_OK);
    ASSERT_EQ(grey_stream_create(c.context, 1, &consumer), GREY_OK);
    grey_event* written = nullptr;
    ASSERT_EQ(grey_event_create(c.context, 1, &written), GREY_OK);
    grey_buffer* buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 1024, &buffer), GREY_OK);
    ASSERT_EQ(grey_buffer_fill_async(buffer, 0, 0x5a, 1024, producer), GREY_OK);
    ASSERT_EQ(grey_event_record(written, producer), GREY_OK);

    grey_stream* wrapper = nullptr;
    ASSERT_EQ(grey_stream_wrap_native(c.context, 1, GREY_MEMORY_CUDA_DEVICE, native_of(consumer), &wrapper), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_wait_event(wrapper, written), GREY_OK) << grey_last_error();
    const unsigned long long queued = fake_queued_work();
    grey_stream_destroy(wrapper);
    EXPECT_EQ(fake_queued_work(), queued);  // nothing was waited for
    EXPECT_GT(queued, 0u);

    std::vector<unsigned char> back(1024, 0);
    ASSERT_EQ(grey_buffer_read_async(buffer, 0, back.data(), back.size(), consumer), GREY_OK);
    ASSERT_EQ(grey_stream_synchronize(consumer), GREY_OK) << grey_last_error();
    EXPECT_EQ(back, std::vector<unsigned char>(1024, 0x5a));
    grey_buffer_destroy(buffer);
    grey_event_destroy(written);
    grey_stream_destroy(consumer);
    grey_stream_destroy(producer);
}

// CUDA's NULL, legacy and per-thread default streams (0, 1, 2) belong to whichever context is current,
// so they are taken as they are.
TEST(CudaFake, WrapsCudasDefaultStreams) {
    Context c;
    grey_buffer* buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, 256, &buffer), GREY_OK);
    for (uint64_t handle : {0ull, 1ull, 2ull}) {
        grey_stream* wrapper = nullptr;
        ASSERT_EQ(grey_stream_wrap_native(c.context, 1, GREY_MEMORY_CUDA_DEVICE, handle, &wrapper), GREY_OK) << handle << ": " << grey_last_error();
        EXPECT_EQ(native_of(wrapper), handle);
        const unsigned char value = static_cast<unsigned char>(handle + 1);
        ASSERT_EQ(grey_buffer_fill_async(buffer, 0, value, 256, wrapper), GREY_OK);
        ASSERT_EQ(grey_stream_synchronize(wrapper), GREY_OK) << grey_last_error();
        std::vector<unsigned char> back(256, 0);
        ASSERT_EQ(grey_buffer_read(buffer, 0, back.data(), back.size()), GREY_OK);
        EXPECT_EQ(back, std::vector<unsigned char>(256, value));
        grey_stream_destroy(wrapper);
    }
    grey_buffer_destroy(buffer);
}

TEST(CudaFake, WrappingRefusesWhatIsNotThisDevicesStream) {
    ScopedEnv env{{"FAKE_CUDA_DEVICE_COUNT", "2"}};
    Context c;
    grey_stream* sentinel = reinterpret_cast<grey_stream*>(0x1);
    grey_stream* out = sentinel;
    EXPECT_EQ(grey_stream_wrap_native(c.context, 1, GREY_MEMORY_HOST, 0x2000, &out), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "CUstreams (GREY_MEMORY_CUDA_DEVICE), not streams of memory kind 0")) << grey_last_error();
    EXPECT_EQ(grey_stream_wrap_native(c.context, 1, static_cast<grey_memory_kind>(77), 0x2000, &out), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "memory kind 77 does not exist")) << grey_last_error();
    EXPECT_EQ(grey_stream_wrap_native(c.context, 1, GREY_MEMORY_CUDA_DEVICE, 0xdead0000, &out), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "CUstream 3735879680 cannot be wrapped: cuStreamGetCtx failed")) << grey_last_error();

    // A stream of the other GPU's context.
    grey_stream* elsewhere = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 2, &elsewhere), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_stream_wrap_native(c.context, 1, GREY_MEMORY_CUDA_DEVICE, native_of(elsewhere), &out), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "belongs to another CUDA context than the primary context of CUDA device 0")) << grey_last_error();
    grey_stream_destroy(elsewhere);

    // The host device has no native streams; bad handles and devices.
    EXPECT_EQ(grey_stream_wrap_native(c.context, 0, GREY_MEMORY_CUDA_DEVICE, 1, &out), GREY_ERROR_UNSUPPORTED);
    EXPECT_TRUE(contains(grey_last_error(), "device 0 of backend 'host' has no native streams to wrap")) << grey_last_error();
    EXPECT_EQ(grey_stream_wrap_native(c.context, 9, GREY_MEMORY_CUDA_DEVICE, 1, &out), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_stream_wrap_native(nullptr, 1, GREY_MEMORY_CUDA_DEVICE, 1, &out), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_stream_wrap_native(c.context, 1, GREY_MEMORY_CUDA_DEVICE, 1, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(out, sentinel);
}

// A read enqueued from a sealed buffer, still queued when the buffer is compressed (or compacted), reads
// the buffer's bytes, not whatever the freed raw memory holds by the time the stream reaches it; work
// queued on other buffers is not waited for (the fake runs a stream's work only when something waits).
TEST(CudaFake, ResidencyChangesWaitForQueuedReadsOfTheBufferAndNoOtherWork) {
    Context c;
    const size_t n = 1 << 20;
    const std::vector<unsigned char> data = random_bytes(n);
    grey_buffer* unrelated = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, n, &unrelated), GREY_OK);
    grey_stream* other = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &other), GREY_OK);
    for (const bool compact : {false, true}) {
        grey_buffer* sealed = nullptr;
        ASSERT_EQ(grey_buffer_create(c.context, 1, n, &sealed), GREY_OK);
        ASSERT_EQ(grey_buffer_write(sealed, 0, data.data(), n), GREY_OK);
        ASSERT_EQ(grey_buffer_seal(sealed), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_fill_async(unrelated, 0, 0x11, n, other), GREY_OK) << grey_last_error();
        const auto others = fake_queued_work();
        ASSERT_GT(others, 0u);
        grey_stream* stream = nullptr;
        ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK);
        std::vector<unsigned char> back(n, 0);
        ASSERT_EQ(grey_buffer_read_async(sealed, 0, back.data(), n, stream), GREY_OK) << grey_last_error();
        ASSERT_GT(fake_queued_work(), others);
        if (compact) {
            grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
            policy.deduplicate = 0;
            policy.compress = 1;
            policy.tier = GREY_RESIDENCY_COMPRESSED_HOST;
            policy.codec = GREY_CODEC_LZ4;
            ASSERT_EQ(grey_memory_compact(c.context, 1, &policy, nullptr), GREY_OK) << grey_last_error();
        } else {
            ASSERT_EQ(grey_buffer_compress(sealed, GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_LZ4), GREY_OK) << grey_last_error();
        }
        EXPECT_EQ(fake_queued_work(), others) << "the other stream's work on another buffer is still queued";
        // Memory the pool hands out next, likely the range the raw buffer held, overwritten.
        grey_buffer* reuse = nullptr;
        ASSERT_EQ(grey_buffer_create(c.context, 1, n, &reuse), GREY_OK);
        ASSERT_EQ(grey_buffer_fill(reuse, 0, 0xEE, n), GREY_OK);
        ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
        EXPECT_EQ(back, data) << (compact ? "grey_memory_compact" : "grey_buffer_compress");
        ASSERT_EQ(grey_stream_synchronize(other), GREY_OK) << grey_last_error();
        grey_buffer_destroy(reuse);
        grey_stream_destroy(stream);
        grey_buffer_destroy(sealed);
    }
    grey_stream_destroy(other);
    grey_buffer_destroy(unrelated);
}

// An async call records one event for all the sealed buffers it uses (what a residency change of one of
// them waits for), an untimed one (cheaper to record), and later calls record spare events again rather
// than make new ones; a call on unsealed buffers, which never move, records none; destroying the stream
// gives every one back.
TEST(CudaFake, AsyncCallsRecordOneEventACallAndReuseThem) {
    Context c;
    const auto live = [] { return fake_hook<long long>("fake_cuda_live_events"); };
    const auto records = [] { return fake_hook<unsigned long long>("fake_cuda_event_records"); };
    const size_t n = 1 << 16;
    const std::vector<unsigned char> data = random_bytes(n);
    grey_buffer *a = nullptr, *b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, n, &a), GREY_OK);
    ASSERT_EQ(grey_buffer_create(c.context, 1, n, &b), GREY_OK);
    ASSERT_EQ(grey_buffer_write(a, 0, data.data(), n), GREY_OK);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK);
    const auto untimed = [] { return fake_hook<long long>("fake_cuda_live_untimed_events"); };
    const long long live_before = live(), untimed_before = untimed();
    const int calls = 100;
    const unsigned long long unsealed_before = records();
    for (int i = 0; i < calls; ++i) ASSERT_EQ(grey_buffer_copy_async(b, 0, a, 0, n, stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(records(), unsealed_before) << "unsealed buffers never move: no event";
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_seal(a), GREY_OK) << grey_last_error();
    const unsigned long long records_before = records();
    for (int i = 0; i < calls; ++i) ASSERT_EQ(grey_buffer_copy_async(b, 0, a, 0, n, stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(records() - records_before, static_cast<unsigned long long>(calls)) << "one record a call";
    EXPECT_LE(live() - live_before, 2) << "events are reused, not made a call";
    EXPECT_EQ(untimed() - untimed_before, live() - live_before) << "the runtime's own events are untimed";
    grey_event* user_event = nullptr;
    ASSERT_EQ(grey_event_create(c.context, 1, &user_event), GREY_OK) << grey_last_error();
    EXPECT_EQ(untimed() - untimed_before, live() - live_before - 1) << "a caller's event is timed (grey_event_elapsed_ms)";
    grey_event_destroy(user_event);
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    std::vector<unsigned char> back(n, 0);
    ASSERT_EQ(grey_buffer_read(b, 0, back.data(), n), GREY_OK);
    EXPECT_EQ(back, data);
    grey_stream_destroy(stream);
    EXPECT_EQ(live(), live_before) << "the stream's events go with it";
    grey_buffer_destroy(b);
    grey_buffer_destroy(a);
}

// A thread that has the device's primary context current (as a PyTorch or CUDA runtime thread has) keeps
// it, and the backend pushes no context for its calls; a thread with another context current gets that
// one back after each call.
TEST(CudaFake, AContextAlreadyCurrentIsUsedAndLeftCurrent) {
    Context c;
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    ASSERT_NE(lib, nullptr);
    const auto set_current = reinterpret_cast<void (*)(void*)>(dlsym(lib, "fake_cuda_set_current"));
    const auto current = reinterpret_cast<void* (*)()>(dlsym(lib, "fake_cuda_current"));
    ASSERT_TRUE(set_current != nullptr && current != nullptr);
    const auto pushes = [] { return fake_hook<unsigned long long>("fake_cuda_context_pushes"); };
    const size_t n = 4096;
    grey_buffer* buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, n, &buffer), GREY_OK);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK);
    void* const primary = reinterpret_cast<void*>(uintptr_t{0x1000});  // the fake's primary context of ordinal 0
    void* const other = reinterpret_cast<void*>(uintptr_t{0x7777});
    for (void* const caller : {primary, other}) {
        set_current(caller);
        const auto before = pushes();
        const unsigned char value = caller == primary ? 0x5A : 0xA5;
        ASSERT_EQ(grey_buffer_fill_async(buffer, 0, value, n, stream), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
        const auto pushed = pushes() - before;
        EXPECT_EQ(current(), caller) << "the caller's context is current again";
        set_current(nullptr);
        if (caller == primary) EXPECT_EQ(pushed, 0u) << "no push when the device's context is current";
        else EXPECT_GT(pushed, 0u) << "another context current: the device's is pushed";
        std::vector<unsigned char> back(n, 0);
        ASSERT_EQ(grey_buffer_read(buffer, 0, back.data(), n), GREY_OK) << grey_last_error();
        EXPECT_EQ(back, std::vector<unsigned char>(n, value));
    }
    EXPECT_EQ(current(), nullptr);
    grey_stream_destroy(stream);
    grey_buffer_destroy(buffer);
    dlclose(lib);
}

// A read queued while the buffer was still unsealed (no event then: an unsealed buffer never moves) is
// marked when the buffer is sealed, so compressing it afterwards still waits for the read.
TEST(CudaFake, WorkQueuedBeforeTheSealIsWaitedForByACompression) {
    Context c;
    const size_t n = 1 << 20;
    const std::vector<unsigned char> data = random_bytes(n);
    grey_buffer* buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, n, &buffer), GREY_OK);
    ASSERT_EQ(grey_buffer_write(buffer, 0, data.data(), n), GREY_OK);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK);
    std::vector<unsigned char> back(n, 0);
    ASSERT_EQ(grey_buffer_read_async(buffer, 0, back.data(), n, stream), GREY_OK) << grey_last_error();
    ASSERT_GT(fake_queued_work(), 0u) << "the fake runs the read only when something waits";
    ASSERT_EQ(grey_buffer_seal(buffer), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_compress(buffer, GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_LZ4), GREY_OK) << grey_last_error();
    grey_buffer* reuse = nullptr;  // likely the memory the raw buffer held, overwritten
    ASSERT_EQ(grey_buffer_create(c.context, 1, n, &reuse), GREY_OK);
    ASSERT_EQ(grey_buffer_fill(reuse, 0, 0xEE, n), GREY_OK);
    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(back, data);
    grey_buffer_destroy(reuse);
    grey_stream_destroy(stream);
    grey_buffer_destroy(buffer);
}

TEST(CudaFake, PinnedHostMemoryComesFromTheDriver) {
    Context c;
    void* memory = nullptr;
    ASSERT_EQ(grey_host_alloc(c.context, 1, 1 << 20, &memory), GREY_OK) << grey_last_error();
    std::memset(memory, 9, 1 << 20);
    ASSERT_EQ(grey_host_free(c.context, memory), GREY_OK) << grey_last_error();
    {
        ScopedEnv env{{"FAKE_CUDA_FAIL", "cuMemAllocHost:2"}};
        EXPECT_EQ(grey_host_alloc(c.context, 1, 4096, &memory), GREY_ERROR_OUT_OF_MEMORY);
        EXPECT_TRUE(contains(grey_last_error(), "cuMemAllocHost failed")) << grey_last_error();
    }
    {
        ScopedEnv env{{"FAKE_CUDA_FAIL", "cuStreamCreate:999"}};
        grey_stream* stream = nullptr;
        EXPECT_EQ(grey_stream_create(c.context, 1, &stream), GREY_ERROR_BACKEND);
        EXPECT_EQ(stream, nullptr);
    }
    ASSERT_EQ(grey_host_alloc(c.context, 1, 4096, &memory), GREY_OK);  // left for the context to free
}

TEST(CudaFake, EverythingIsGivenBackAtTheEnd) {
    {
        Context c;
        grey_buffer* b = nullptr;
        ASSERT_EQ(grey_buffer_create(c.context, 1, 10 << 20, &b), GREY_OK);
        EXPECT_GE(fake_physical_bytes(), 10u << 20);
        // Left for the context to free.
    }
    EXPECT_EQ(fake_physical_bytes(), 0u);
}

// ----- fake/old_nvml: only the original NVML names, some functions missing ----------------------

// ----- the power-limit request path (off by default), against the fake NVML's limit file -----------

// A fresh limit file holding `limit_mw`, and the history of what the backend set ("set <mW>" lines).
struct PowerFile {
    explicit PowerFile(unsigned limit_mw) {
        std::ofstream(path) << limit_mw;
        std::remove((path + ".log").c_str());
    }
    ~PowerFile() {
        std::remove(path.c_str());
        std::remove((path + ".log").c_str());
    }
    [[nodiscard]] unsigned limit() const {
        unsigned mw = 0;
        std::ifstream(path) >> mw;
        return mw;
    }
    [[nodiscard]] std::string history() const {
        std::ifstream in(path + ".log");
        return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    std::string path = ::testing::TempDir() + "grey_fake_nvml_power_" + std::to_string(getpid());
};

// A context whose fake GPU (device 1) keeps its power limit, 650 W at first, in a PowerFile.
struct FakePowerGpu {
    explicit FakePowerGpu(const char* nvml_fail = "") : env{{"FAKE_NVML_POWER_FILE", file.path.c_str()}, {"FAKE_NVML_FAIL", nvml_fail}} {}
    PowerFile file{650000};
    ScopedEnv env;
    Context c;
};

grey_governor* governor(grey_context* context, uint64_t power_limit_mw, grey_status expected = GREY_OK) {
    grey_governor_options options = GREY_GOVERNOR_OPTIONS_INIT;
    options.sample_period_ms = 0;
    options.power_limit_mw = power_limit_mw;
    grey_governor* g = nullptr;
    EXPECT_EQ(grey_governor_create(context, &options, &g), expected) << grey_last_error();
    return g;
}

grey_govern_device_state device_state(grey_governor* g, uint32_t device) {
    grey_govern_device_state s{};
    s.struct_size = sizeof s;
    EXPECT_EQ(grey_governor_device_state_get(g, device, &s), GREY_OK) << grey_last_error();
    return s;
}

TEST(CudaFake, PowerLimitIsSetOnlyOnRequestAndRestoredGivingThePrevious) {
    FakePowerGpu gpu;
    auto& [file, env, c] = gpu;
    uint64_t previous = 0;
    ASSERT_EQ(grey_device_power_limit_set(c.context, 1, 300000, &previous), GREY_OK) << grey_last_error();
    EXPECT_EQ(previous, 650000u);
    EXPECT_EQ(file.limit(), 300000u);
    ASSERT_EQ(grey_device_power_limit_set(c.context, 1, previous, nullptr), GREY_OK);
    EXPECT_EQ(file.history(), "set 300000\nset 650000\n");
    // The host CPU has no power limit; 0 and limits outside the device's range are refused, naming why.
    EXPECT_EQ(grey_device_power_limit_set(c.context, 0, 300000, nullptr), GREY_ERROR_UNSUPPORTED);
    EXPECT_TRUE(contains(grey_last_error(), "setting a power limit")) << grey_last_error();
    EXPECT_EQ(grey_device_power_limit_set(c.context, 1, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_device_power_limit_set(c.context, 1, 100000, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(contains(grey_last_error(), "nvmlDeviceSetPowerManagementLimit failed")) << grey_last_error();
    EXPECT_EQ(grey_device_power_limit_set(c.context, 7, 300000, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(file.history(), "set 300000\nset 650000\n");
}

TEST(CudaFake, GovernorNeverTouchesThePowerLimitByDefault) {
    FakePowerGpu gpu;
    auto& [file, env, c] = gpu;
    grey_governor* g = governor(c.context, 0);
    ASSERT_EQ(grey_governor_step(g), GREY_OK);
    EXPECT_EQ(device_state(g, 1).power_limit_held_mw, 0u);
    ASSERT_EQ(grey_governor_emergency_stop(g, "test"), GREY_OK);
    ASSERT_EQ(grey_governor_resume(g), GREY_OK);
    grey_governor_destroy(g);
    EXPECT_EQ(file.history(), "");
    EXPECT_EQ(file.limit(), 650000u);
}

TEST(CudaFake, GovernorOptInHoldsTheLimitAndRestoresItWhenItGoes) {
    FakePowerGpu gpu;
    auto& [file, env, c] = gpu;
    grey_governor* g = governor(c.context, 300000);
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(file.limit(), 300000u);
    const grey_govern_device_state held = device_state(g, 1);
    EXPECT_EQ(held.power_limit_held_mw, 300000u);
    EXPECT_EQ(held.power_limit_restore_mw, 650000u);
    EXPECT_EQ(device_state(g, 0).power_limit_held_mw, 0u);  // the host CPU: left alone
    ASSERT_EQ(grey_governor_step(g), GREY_OK);
    grey_governor_destroy(g);
    EXPECT_EQ(file.limit(), 650000u);
    EXPECT_EQ(file.history(), "set 300000\nset 650000\n");
}

TEST(CudaFake, EmergencyStopRestoresThePowerLimitAndResumeDoesNotSetItAgain) {
    FakePowerGpu gpu;
    auto& [file, env, c] = gpu;
    grey_governor* g = governor(c.context, 300000);
    ASSERT_NE(g, nullptr);
    ASSERT_EQ(grey_governor_emergency_stop(g, "overheating"), GREY_OK) << grey_last_error();
    EXPECT_EQ(file.limit(), 650000u);
    EXPECT_EQ(device_state(g, 1).power_limit_held_mw, 0u);
    ASSERT_EQ(grey_governor_resume(g), GREY_OK);
    grey_governor_destroy(g);
    EXPECT_EQ(file.history(), "set 300000\nset 650000\n");  // restored once, never set again
    EXPECT_EQ(file.limit(), 650000u);
}

TEST(CudaFake, GovernorOptInRefusedByTheDriverCreatesNothingAndChangesNothing) {
    FakePowerGpu gpu("nvmlDeviceSetPowerManagementLimit:4");
    auto& [file, env, c] = gpu;
    EXPECT_EQ(governor(c.context, 300000, GREY_ERROR_PERMISSION_DENIED), nullptr);
    EXPECT_TRUE(contains(grey_last_error(), "options->power_limit_mw: device 1 cannot hold 300000 mW")) << grey_last_error();
    EXPECT_TRUE(contains(grey_last_error(), "Insufficient Permissions")) << grey_last_error();
    EXPECT_EQ(governor(c.context, 900000, GREY_ERROR_PERMISSION_DENIED), nullptr);
    EXPECT_EQ(file.history(), "");
    EXPECT_EQ(file.limit(), 650000u);
}

TEST(CudaFake, GovernorOptInOutsideTheRangeIsRefused) {
    FakePowerGpu gpu;
    auto& [file, env, c] = gpu;
    EXPECT_EQ(governor(c.context, 900000, GREY_ERROR_INVALID_ARGUMENT), nullptr);
    EXPECT_EQ(file.history(), "");
}

TEST(CudaOldNvml, FallsBackToOlderNamesAndNamesMissingSymbols) {
    Context c;
    EXPECT_EQ(grey_device_power_limit_set(c.context, 1, 300000, nullptr), GREY_ERROR_UNSUPPORTED);
    EXPECT_TRUE(contains(grey_last_error(), "nvmlDeviceGetPowerManagementLimit or nvmlDeviceSetPowerManagementLimit not found"))
        << grey_last_error();
    const grey_device_spec s = c.spec();
    EXPECT_EQ(s.memory_free_bytes.state, GREY_FIELD_OK);  // nvmlDeviceGetMemoryInfo (v1)
    EXPECT_EQ(s.power_limit_mw.value, 700000u);
    const grey_device_telemetry t = c.telemetry();
    EXPECT_EQ(t.temperature_c.value, 36.0);  // nvmlDeviceGetTemperature
    EXPECT_EQ(t.throttle_reasons.value, uint64_t{GREY_THROTTLE_SW_THERMAL});  // ...ClocksThrottleReasons
    EXPECT_EQ(t.memory_used_bytes.value, 531ull << 20);
    EXPECT_EQ(t.power_draw_mw.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(c.reason(GREY_FIELD_POWER_DRAW_MW), "NVML: nvmlDeviceGetPowerUsage not found in libnvidia-ml.so.1");
    EXPECT_EQ(t.throttle_time_power_ns.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_THROTTLE_TIME_POWER_NS), "nvmlDeviceGetFieldValues not found"));
    EXPECT_EQ(t.memory_temperature_c.state, GREY_FIELD_UNSUPPORTED);
}

// ----- fake/no_nvml: the driver alone ------------------------------------------------------------

TEST(CudaNoNvml, DriverFieldsStayAndNvmlFieldsSayWhy) {
    Context c;
    EXPECT_EQ(c.cuda_report().outcome, GREY_BACKEND_LOADED);
    const grey_device_spec s = c.spec();
    EXPECT_EQ(s.compute_units.value, 132u);
    EXPECT_EQ(s.memory_total_bytes.value, 1u << 30);
    EXPECT_EQ(s.memory_total_bytes.source, GREY_SOURCE_CUDA_DRIVER);
    // Free memory from the driver, inside the device's context, instead of NVML.
    EXPECT_EQ(s.memory_free_bytes.state, GREY_FIELD_OK);
    EXPECT_EQ(s.memory_free_bytes.source, GREY_SOURCE_CUDA_DRIVER);
    EXPECT_EQ(s.memory_clock_max_mhz.source, GREY_SOURCE_CUDA_DRIVER);
    EXPECT_EQ(s.driver_version.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_DRIVER_VERSION), "libnvidia-ml.so.1")) << c.reason(GREY_FIELD_DRIVER_VERSION);
    EXPECT_EQ(s.power_limit_mw.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(s.pcie_width_max.state, GREY_FIELD_UNSUPPORTED);
    const grey_device_telemetry t = c.telemetry();
    EXPECT_EQ(t.power_draw_mw.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_TRUE(contains(c.reason(GREY_FIELD_POWER_DRAW_MW), "NVML is not available"));
    EXPECT_EQ(t.memory_used_bytes.source, GREY_SOURCE_CUDA_DRIVER);
}

// ----- fake/ancient and fake/empty ---------------------------------------------------------------

TEST(CudaAncientDriver, WithoutGetProcAddressTheBackendIsSkipped) {
    Context c;
    const auto info = c.cuda_report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(contains(info.reason, "exports neither cuGetProcAddress_v2 nor cuGetProcAddress")) << info.reason;
}

TEST(CudaNoDriver, WithoutLibcudaTheBackendIsSkippedAndSaysWhy) {
    if (void* system_driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)) {
        dlclose(system_driver);
        GTEST_SKIP() << "this machine has a CUDA driver installed, so 'no driver' cannot be simulated here";
    }
    Context c;
    const auto info = c.cuda_report();
    EXPECT_EQ(info.outcome, GREY_BACKEND_SKIPPED);
    EXPECT_TRUE(contains(info.reason, "the CUDA driver is not installed") && contains(info.reason, "libcuda.so.1")) << info.reason;
    EXPECT_EQ(c.device_count(), 1u);
}

// The kernels, grids and arguments the plugin launches for a set of jobs covering every quantizer path,
// pinned by a file the HIP plugin's test compares against too (tests/backends/quant_launch_cases.hpp).
// GREY_UPDATE_LAUNCH_PLAN=1 rewrites the file from this run.
TEST(CudaFake, QuantizationLaunchesThePinnedPlan) {
    const std::string log = ::testing::TempDir() + "cuda_quant_launches.log";
    ScopedEnv env{{"FAKE_CUDA_QUANT_KERNELS", "1"}, {"FAKE_QUANT_LAUNCH_LOG", log.c_str()}};
    Context c;
    const std::string launched = grey::test::run_quant_launch_cases(c.context, log);
    const std::string golden = GREY_TEST_SOURCE_DIR "/tests/backends/quant_launch_plan.golden";
    if (std::getenv("GREY_UPDATE_LAUNCH_PLAN") != nullptr) std::ofstream(golden) << launched;
    EXPECT_EQ(launched, grey::test::read_text(golden));
}

// The KV cache's block operations: the kernels, grids, arguments and tables the plugin launches for a set
// of jobs covering every launch path (tests/backends/kv_launch_cases.hpp), pinned by a file the HIP
// plugin's test compares against too (GREY_CUDA_KV_TENSOR_CORES=0: the SIMT attention both vendors have);
// the fake's host stand-in of the kernels gives the host backend's stored bytes and attention.
// GREY_UPDATE_KV_LAUNCH_PLAN=1 rewrites the files from this run.
TEST(CudaFake, KvLaunchesThePinnedPlan) {
    const std::string log = ::testing::TempDir() + "cuda_kv_launches.log";
    ScopedEnv env{{"FAKE_CUDA_KV_KERNELS", "1"}, {"FAKE_KV_LAUNCH_LOG", log.c_str()}, {"GREY_CUDA_KV_TENSOR_CORES", "0"}};
    Context c;
    const std::string launched = grey::test::run_kv_launch_cases(c.context, 1, 0, log);
    const std::string golden = GREY_TEST_SOURCE_DIR "/tests/backends/kv_launch_plan.golden";
    if (std::getenv("GREY_UPDATE_KV_LAUNCH_PLAN") != nullptr) std::ofstream(golden) << launched;
    EXPECT_EQ(launched, grey::test::read_text(golden));
}

// A cache on the plugin's device (1 layer, 2 KV heads of 64 channels, a window of 16 tokens) with two
// sequences of 40 and 7 tokens, and what grey_kv_attend gives for 8 query heads: the set-up of the tests
// of attention from device buffers.
struct TwoSequenceKv {
    grey_kv_cache* cache = nullptr;
    uint64_t sequences[2] = {};
    grey_kv_attend_params params = GREY_KV_ATTEND_PARAMS_INIT;
    std::vector<float> queries = grey::test::kv_test_values(2 * 8 * 64, 77);
    uint64_t bytes = queries.size() * 4;
    std::vector<float> expected = std::vector<float>(queries.size());

    explicit TwoSequenceKv(grey_context* context) {
        grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
        config.layers = 1;
        config.kv_heads = 2;
        config.head_dim = 64;
        config.window_tokens = 16;
        config.capacity_bytes = 1u << 22;
        EXPECT_EQ(grey_kv_cache_create(context, 1, &config, &cache), GREY_OK) << grey_last_error();
        const uint32_t lengths[2] = {40, 7};
        for (int i = 0; cache != nullptr && i < 2; ++i) {
            EXPECT_EQ(grey_kv_sequence_create(cache, 0, &sequences[i]), GREY_OK);
            const std::vector<int32_t> ids(lengths[i], 3 + i);
            const auto kv = grey::test::kv_test_values(size_t{lengths[i]} * 2 * 64, 10 + i);
            EXPECT_EQ(grey_kv_append(cache, sequences[i], ids.data(), lengths[i], GREY_DTYPE_F32, kv.data(), kv.data(), kv.size() * 4), GREY_OK)
                << grey_last_error();
        }
        params.query_heads = 8;
        if (cache != nullptr) {
            EXPECT_EQ(grey_kv_attend(cache, &params, sequences, 2, queries.data(), expected.data(), bytes), GREY_OK) << grey_last_error();
        }
    }
    ~TwoSequenceKv() { grey_kv_cache_destroy(cache); }
    TwoSequenceKv(const TwoSequenceKv&) = delete;
    TwoSequenceKv& operator=(const TwoSequenceKv&) = delete;
};

// grey_kv_attend_buffer on the plugin: the queries and the output in device buffers, at offsets, reach the
// kernels as those buffers' addresses (the fake's host stand-in of the kernels reads and writes them there),
// and give what grey_kv_attend gives from host arrays.
TEST(CudaFake, KvAttendsFromDeviceBuffers) {
    ScopedEnv env{{"FAKE_CUDA_KV_KERNELS", "1"}};
    Context c;
    TwoSequenceKv k(c.context);
    ASSERT_FALSE(::testing::Test::HasFailure());
    std::vector<float> got(k.queries.size());
    grey_buffer *query_buffer = nullptr, *output_buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, k.bytes + 8, &query_buffer), GREY_OK);
    ASSERT_EQ(grey_buffer_create(c.context, 1, k.bytes + 24, &output_buffer), GREY_OK);
    EXPECT_EQ(grey_buffer_write(query_buffer, 8, k.queries.data(), k.bytes), GREY_OK);
    EXPECT_EQ(grey_kv_attend_buffer(k.cache, &k.params, k.sequences, 2, query_buffer, 8, output_buffer, 24, k.bytes), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_buffer_read(output_buffer, 24, got.data(), k.bytes), GREY_OK);
    EXPECT_EQ(std::memcmp(got.data(), k.expected.data(), k.bytes), 0);
    // A buffer of the host device is not the cache's.
    grey_buffer* host_buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 0, k.bytes, &host_buffer), GREY_OK);
    EXPECT_EQ(grey_kv_attend_buffer(k.cache, &k.params, k.sequences, 2, host_buffer, 0, output_buffer, 24, k.bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(grey_last_error(), "the cache is on device 1"), nullptr) << grey_last_error();
    grey_buffer_destroy(host_buffer);
    grey_buffer_destroy(query_buffer);
    grey_buffer_destroy(output_buffer);
}

// grey_kv_attend_async on the plugin: queued on the caller's stream without a wait of the host, its tables
// copied up from page-locked staging on that stream, and run when the stream is waited for (the fake runs
// a stream's work only then), giving what grey_kv_attend gives. A truncation and an append after the call
// first wait for it: the fake's kernels read the blocks when they run, so a cache that let the call read
// blocks it had changed since would give other values here.
TEST(CudaFake, KvAttendsOnACallersStreamWithoutWaiting) {
    ScopedEnv env{{"FAKE_CUDA_KV_KERNELS", "1"}};
    Context c;
    TwoSequenceKv k(c.context);
    ASSERT_FALSE(::testing::Test::HasFailure());
    std::vector<float> got(k.queries.size());
    grey_buffer *query_buffer = nullptr, *output_buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 1, k.bytes, &query_buffer), GREY_OK);
    ASSERT_EQ(grey_buffer_create(c.context, 1, 3 * k.bytes, &output_buffer), GREY_OK);
    ASSERT_EQ(grey_buffer_write(query_buffer, 0, k.queries.data(), k.bytes), GREY_OK);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(c.context, 1, &stream), GREY_OK) << grey_last_error();

    const auto waits = fake_host_waits(), pinned = fake_pinned_copies_queued(), queued = fake_queued_work();
    for (uint64_t i = 0; i < 3; ++i)
        ASSERT_EQ(grey_kv_attend_async(k.cache, &k.params, k.sequences, 2, query_buffer, 0, output_buffer, i * k.bytes, k.bytes, stream), GREY_OK)
            << grey_last_error();
    EXPECT_EQ(fake_host_waits(), waits);
    EXPECT_EQ(fake_pinned_copies_queued() - pinned, 6u);  // each call's two tables, from the runtime's staging
    // The last call's copies and kernels wait on the stream. (The earlier calls' ran when the next one
    // asked whether they were done: the fake runs a stream's work up to an event that is queried.)
    EXPECT_GE(fake_queued_work() - queued, 4u);

    // Other tokens where the first sequence's were: the queued calls run first.
    ASSERT_EQ(grey_kv_sequence_truncate(k.cache, k.sequences[0], 5), GREY_OK) << grey_last_error();
    EXPECT_GT(fake_host_waits(), waits);
    const std::vector<int32_t> ids(35, 9);
    const auto other = grey::test::kv_test_values(size_t{35} * 2 * 64, 99);
    ASSERT_EQ(grey_kv_append(k.cache, k.sequences[0], ids.data(), 35, GREY_DTYPE_F32, other.data(), other.data(), other.size() * 4), GREY_OK)
        << grey_last_error();
    std::vector<float> changed(k.queries.size());
    ASSERT_EQ(grey_kv_attend(k.cache, &k.params, k.sequences, 2, k.queries.data(), changed.data(), k.bytes), GREY_OK) << grey_last_error();
    ASSERT_NE(changed, k.expected);

    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
    for (uint64_t i = 0; i < 3; ++i) {
        ASSERT_EQ(grey_buffer_read(output_buffer, i * k.bytes, got.data(), k.bytes), GREY_OK);
        EXPECT_EQ(std::memcmp(got.data(), k.expected.data(), k.bytes), 0) << "call " << i;
    }
    grey_stream_destroy(stream);
    grey_buffer_destroy(query_buffer);
    grey_buffer_destroy(output_buffer);
}

// The same jobs on a device with tensor cores (the fake reports compute capability 9.0): attention goes to
// grey_kv_attend_mma (head_dim up to 128), with its staging buffers' size in the argument block.
TEST(CudaFake, KvLaunchesThePinnedPlanOnTensorCores) {
    const std::string log = ::testing::TempDir() + "cuda_kv_mma_launches.log";
    ScopedEnv env{{"FAKE_CUDA_KV_KERNELS", "1"}, {"FAKE_KV_LAUNCH_LOG", log.c_str()}};
    Context c;
    const std::string launched = grey::test::run_kv_launch_cases(c.context, 1, 0, log);
    const std::string golden = GREY_TEST_SOURCE_DIR "/tests/backends/kv_launch_plan_mma.golden";
    if (std::getenv("GREY_UPDATE_KV_LAUNCH_PLAN") != nullptr) std::ofstream(golden) << launched;
    EXPECT_EQ(launched, grey::test::read_text(golden));
}
