// The host probe against a fabricated /proc and /sys, so every parsed value is known exactly.
#include "host/host_probe.hpp"
#include "test_support.hpp"

#include <cerrno>
#include <map>
#include <string>

using grey::host::HostProbe;
using grey::test::TempDir;

namespace {

struct Reasons {
    std::map<grey_field, std::string> by_field;
    grey_field_reasons sink{this, [](void* self, grey_field f, const char* r) { static_cast<Reasons*>(self)->by_field[f] = r; }};
};

void write_machine(const TempDir& root) {
    root.write("proc/cpuinfo",
               "processor\t: 0\nmodel name\t: Test CPU 9000 @ 3.00GHz\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n\n"
               "processor\t: 1\nmodel name\t: Test CPU 9000 @ 3.00GHz\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n");
    root.write("proc/meminfo", "MemTotal:       16384000 kB\nMemFree:         1000000 kB\nMemAvailable:    8192000 kB\n");
    root.write("proc/stat", "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\n");
    root.write("proc/sys/kernel/osrelease", "6.1.0-test\n");
    root.write("sys/devices/system/cpu/online", "0-3,6\n");
    // Two cores, each with a private L2 of 1 MiB listed under both of its hyperthreads.
    root.write("sys/devices/system/cpu/cpu0/cache/index2/level", "2\n");
    root.write("sys/devices/system/cpu/cpu0/cache/index2/size", "1024K\n");
    root.write("sys/devices/system/cpu/cpu0/cache/index2/shared_cpu_list", "0,2\n");
    root.write("sys/devices/system/cpu/cpu2/cache/index2/level", "2\n");
    root.write("sys/devices/system/cpu/cpu2/cache/index2/size", "1024K\n");
    root.write("sys/devices/system/cpu/cpu2/cache/index2/shared_cpu_list", "0,2\n");
    root.write("sys/devices/system/cpu/cpu1/cache/index2/level", "2\n");
    root.write("sys/devices/system/cpu/cpu1/cache/index2/size", "1M\n");
    root.write("sys/devices/system/cpu/cpu1/cache/index2/shared_cpu_list", "1,3\n");
    root.write("sys/devices/system/cpu/cpu1/cache/index3/level", "3\n");
    root.write("sys/devices/system/cpu/cpu1/cache/index3/size", "32M\n");
    root.write("sys/devices/system/cpu/cpu1/cache/index3/shared_cpu_list", "0-3\n");
    root.write("sys/class/hwmon/hwmon0/name", "nvme\n");
    root.write("sys/class/hwmon/hwmon1/name", "coretemp\n");
    root.write("sys/class/hwmon/hwmon1/temp1_label", "Package id 0\n");
    root.write("sys/class/hwmon/hwmon1/temp1_input", "61500\n");
    root.write("sys/class/hwmon/hwmon1/temp1_max", "100000\n");
    root.write("sys/class/hwmon/hwmon1/temp1_crit", "105000\n");
    root.write("sys/class/powercap/intel-rapl:0/energy_uj", "5000000\n");
    root.write("sys/class/powercap/intel-rapl:0/max_energy_range_uj", "262143328850\n");
    root.write("sys/class/powercap/intel-rapl:0/constraint_0_power_limit_uw", "125000000\n");
    root.write("sys/class/powercap/intel-rapl:0/constraint_0_max_power_uw", "250000000\n");
}

}  // namespace

TEST(HostProbe, ReadsEveryFactFromTheOs) {
    TempDir root;
    write_machine(root);
    HostProbe probe(root.path());
    grey_device_spec spec{};
    Reasons reasons;
    probe.fill_spec(spec, &reasons.sink);
    EXPECT_STREQ(spec.name.value, "Test CPU 9000 @ 3.00GHz");
    EXPECT_EQ(spec.name.source, GREY_SOURCE_OS);
    EXPECT_STREQ(spec.compute_capability.value, "sse4_2 avx avx2 fma avx512f");
    EXPECT_STREQ(spec.driver_version.value, "Linux 6.1.0-test");
    EXPECT_EQ(spec.memory_total_bytes.value, 16384000ull * 1024);
    EXPECT_EQ(spec.memory_free_bytes.value, 8192000ull * 1024);
    EXPECT_EQ(spec.compute_units.value, 5u) << "0-3 and 6 are online";
    EXPECT_EQ(spec.l2_cache_bytes.value, 2ull << 20) << "two distinct L2 instances of 1 MiB";
    EXPECT_EQ(spec.power_limit_mw.value, 125000u);
    EXPECT_EQ(spec.power_limit_max_mw.value, 250000u);
    EXPECT_EQ(spec.power_limit_default_mw.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_DOUBLE_EQ(spec.temperature_slowdown_c.value, 100.0);
    EXPECT_DOUBLE_EQ(spec.temperature_shutdown_c.value, 105.0);
    EXPECT_EQ(spec.pcie_width_max.state, GREY_FIELD_NOT_APPLICABLE);
    EXPECT_EQ(reasons.by_field[GREY_FIELD_PCIE_WIDTH_MAX], "a host CPU is not a PCIe device");
    EXPECT_EQ(reasons.by_field.count(GREY_FIELD_NAME), 0u);
}

TEST(HostProbe, CgroupLimitCapsMemory) {
    TempDir root;
    write_machine(root);
    root.write("sys/fs/cgroup/memory.max", "4294967296\n");
    root.write("sys/fs/cgroup/memory.current", "1073741824\n");
    HostProbe probe(root.path());
    grey_device_spec spec{};
    probe.fill_spec(spec, nullptr);
    EXPECT_EQ(spec.memory_total_bytes.value, 4ull << 30);
    EXPECT_EQ(spec.memory_free_bytes.value, 3ull << 30);
    root.write("sys/fs/cgroup/memory.max", "max\n");
    probe.fill_spec(spec, nullptr);
    EXPECT_EQ(spec.memory_total_bytes.value, 16384000ull * 1024) << "'max' means no limit";
}

TEST(HostProbe, TelemetryRatesAreMeasuredBetweenSamples) {
    TempDir root;
    write_machine(root);
    HostProbe probe(root.path());  // takes the first CPU and energy samples
    root.write("proc/stat", "cpu  400 0 100 800 100 0 0 0 0 0\n");  // +300 busy of +400 total
    root.write("sys/class/powercap/intel-rapl:0/energy_uj", "6000000\n");
    grey_device_telemetry t{};
    Reasons reasons;
    probe.fill_telemetry(t, &reasons.sink);
    EXPECT_EQ(t.utilization_percent.value, 75u);
    EXPECT_EQ(t.energy_total_mj.value, 6000u);
    EXPECT_EQ(t.power_draw_mw.state, GREY_FIELD_OK);
    EXPECT_GT(t.power_draw_mw.value, 0u);
    EXPECT_EQ(t.power_draw_mw.source, GREY_SOURCE_DERIVED);
    EXPECT_DOUBLE_EQ(t.temperature_c.value, 61.5);
    EXPECT_EQ(t.memory_used_bytes.value, (16384000ull - 8192000ull) * 1024);
    EXPECT_EQ(t.graphics_clock_mhz.state, GREY_FIELD_NOT_APPLICABLE);

    // The RAPL counter wraps: energy keeps increasing by the counter's range.
    root.write("sys/class/powercap/intel-rapl:0/energy_uj", "1000\n");
    probe.fill_telemetry(t, &reasons.sink);
    EXPECT_EQ(t.energy_total_mj.value, (262143328850ull + 1000) / 1000);
}

TEST(HostProbe, RestrictedEnergyCounterIsPermissionDenied) {
    TempDir root;
    write_machine(root);
    HostProbe probe(root.path(), [](const std::filesystem::path& file, int& error) -> std::optional<std::string> {
        error = EACCES;
        (void)file;
        return std::nullopt;
    });
    grey_device_telemetry t{};
    Reasons reasons;
    probe.fill_telemetry(t, &reasons.sink);
    EXPECT_EQ(t.energy_total_mj.state, GREY_FIELD_PERMISSION_DENIED);
    EXPECT_EQ(t.power_draw_mw.state, GREY_FIELD_PERMISSION_DENIED);
    EXPECT_NE(reasons.by_field[GREY_FIELD_ENERGY_TOTAL_MJ].find("restricts RAPL energy counters to root"), std::string::npos)
        << reasons.by_field[GREY_FIELD_ENERGY_TOTAL_MJ];
    EXPECT_EQ(t.energy_total_mj.value, 0u);
}

TEST(HostProbe, AnEmptyMachineReportsEverythingUnavailableWithReasons) {
    TempDir root;
    HostProbe probe(root.path());
    grey_device_spec spec{};
    grey_device_telemetry t{};
    Reasons reasons;
    probe.fill_spec(spec, &reasons.sink);
    probe.fill_telemetry(t, &reasons.sink);
    EXPECT_EQ(spec.memory_total_bytes.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(spec.compute_units.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(spec.l2_cache_bytes.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(t.utilization_percent.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(t.energy_total_mj.state, GREY_FIELD_UNSUPPORTED);
    for (auto field : {GREY_FIELD_MEMORY_TOTAL_BYTES, GREY_FIELD_COMPUTE_UNITS, GREY_FIELD_L2_CACHE_BYTES,
                       GREY_FIELD_UTILIZATION_PERCENT, GREY_FIELD_ENERGY_TOTAL_MJ, GREY_FIELD_TEMPERATURE_C})
        EXPECT_FALSE(reasons.by_field[field].empty()) << field;
}

TEST(HostProbe, MalformedFilesAreUnavailableNotGarbage) {
    TempDir root;
    write_machine(root);
    root.write("proc/meminfo", "MemTotal: lots kB\nMemAvailable: -5 kB\n");
    root.write("sys/devices/system/cpu/online", "3-1\n");
    root.write("proc/stat", "cpu  1 2 three\n");
    root.write("sys/class/hwmon/hwmon1/temp1_input", "warm\n");
    HostProbe probe(root.path());
    grey_device_spec spec{};
    grey_device_telemetry t{};
    probe.fill_spec(spec, nullptr);
    probe.fill_telemetry(t, nullptr);
    EXPECT_EQ(spec.memory_total_bytes.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(spec.memory_free_bytes.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(spec.compute_units.value, 2u) << "falls back to counting /proc/cpuinfo processors";
    EXPECT_EQ(t.utilization_percent.state, GREY_FIELD_UNSUPPORTED);
    EXPECT_EQ(t.temperature_c.state, GREY_FIELD_UNSUPPORTED);
}
