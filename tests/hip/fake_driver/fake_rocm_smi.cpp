// A fake ROCm SMI (installed as librocm_smi64.so.5). It lists two GPUs in the opposite order to HIP
// (index 0 is at 0000:c2:00.0, index 1 at 0000:c1:00.0, the latter with partition bits set in the
// reserved part of its BDFID), so the backend must match devices by PCI address.
//   FAKE_RSMI_FAIL     "name:code[,...]": that entry point returns rsmi_status_t `code`
//   FAKE_RSMI_NO_EDGE  when set, the edge temperature sensor is not supported (as on MI200 and later)
//   FAKE_RSMI_VERSION  the library's major version (default 7); 5 and below lay rsmi_frequencies_t and
//                      rsmi_pcie_bandwidth_t out as ROCm 5 did (no has_deep_sleep, 32 entries)
// Variant FAKE_RSMI_OLD: no rsmi_dev_energy_count_get, no rsmi_dev_power_cap_set and no
// rsmi_dev_metrics_indep_throttle_status_get. Test hook: fake_rsmi_open_sessions().
#include "fake_common.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <mutex>

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr int kSuccess = 0, kInvalidArgs = 1, kNotSupported = 2, kPermission = 4, kInitError = 8;
int sessions = 0;
uint64_t cap_uw = 500000000;  // the first HIP GPU's power cap

#define FAKE_ENTER(name)                                                          \
    if (auto forced = fake::forced_failure("FAKE_RSMI_FAIL", name)) return *forced; \
    if (sessions == 0) return kInitError;
#define FAKE_INDEX(index) \
    if ((index) > 1) return kInvalidArgs;

// The GPU at 0000:c1:00.0 (HIP's device 0) is index 1.
bool is_first_hip_gpu(uint32_t index) { return index == 1; }

}  // namespace

FAKE_EXPORT int fake_rsmi_open_sessions() { return sessions; }

FAKE_EXPORT int rsmi_init(uint64_t) {
    if (auto forced = fake::forced_failure("FAKE_RSMI_FAIL", "rsmi_init")) return *forced;
    ++sessions;
    return kSuccess;
}

FAKE_EXPORT int rsmi_shut_down() {
    --sessions;
    return kSuccess;
}

FAKE_EXPORT int rsmi_status_string(int status, const char** text) {
    switch (status) {
        case kSuccess: *text = "RSMI_STATUS_SUCCESS: The function has been executed successfully."; break;
        case kNotSupported: *text = "RSMI_STATUS_NOT_SUPPORTED: The requested information or action is not available for the given input"; break;
        case kPermission: *text = "RSMI_STATUS_PERMISSION: The user ID of the calling process does not have sufficient permission"; break;
        default: *text = "RSMI_STATUS_UNKNOWN_ERROR"; break;
    }
    return kSuccess;
}

FAKE_EXPORT int rsmi_num_monitor_devices(uint32_t* count) {
    FAKE_ENTER("rsmi_num_monitor_devices")
    *count = 2;
    return kSuccess;
}

FAKE_EXPORT int rsmi_dev_pci_id_get(uint32_t index, uint64_t* bdfid) {
    FAKE_ENTER("rsmi_dev_pci_id_get")
    FAKE_INDEX(index)
    *bdfid = is_first_hip_gpu(index) ? (0xc1u << 8) | 0x10000000u : (0xc2u << 8);
    return kSuccess;
}

FAKE_EXPORT int rsmi_dev_power_cap_get(uint32_t index, uint32_t, uint64_t* cap) {
    FAKE_ENTER("rsmi_dev_power_cap_get")
    FAKE_INDEX(index)
    *cap = is_first_hip_gpu(index) ? cap_uw : 400000000;
    return kSuccess;
}

FAKE_EXPORT int rsmi_dev_power_cap_default_get(uint32_t index, uint64_t* cap) {
    FAKE_ENTER("rsmi_dev_power_cap_default_get")
    FAKE_INDEX(index)
    *cap = 560000000;
    return kSuccess;
}

FAKE_EXPORT int rsmi_dev_power_cap_range_get(uint32_t index, uint32_t, uint64_t* max, uint64_t* min) {
    FAKE_ENTER("rsmi_dev_power_cap_range_get")
    FAKE_INDEX(index)
    *max = 560000000;
    *min = 300000000;
    return kSuccess;
}

#ifndef FAKE_RSMI_OLD
// Caps outside [300 W, 560 W] are out of bounds, as the kernel driver's range.
FAKE_EXPORT int rsmi_dev_power_cap_set(uint32_t index, uint32_t, uint64_t cap) {
    FAKE_ENTER("rsmi_dev_power_cap_set")
    FAKE_INDEX(index)
    if (cap < 300000000 || cap > 560000000) return 7;  // RSMI_STATUS_INPUT_OUT_OF_BOUNDS
    if (is_first_hip_gpu(index)) cap_uw = cap;
    return kSuccess;
}
#endif

FAKE_EXPORT int rsmi_dev_power_ave_get(uint32_t index, uint32_t, uint64_t* power) {
    FAKE_ENTER("rsmi_dev_power_ave_get")
    FAKE_INDEX(index)
    *power = 123456000;
    return kSuccess;
}

#ifndef FAKE_RSMI_OLD
FAKE_EXPORT int rsmi_dev_energy_count_get(uint32_t index, uint64_t* counter, float* resolution, uint64_t* timestamp) {
    FAKE_ENTER("rsmi_dev_energy_count_get")
    FAKE_INDEX(index)
    *counter = 1000000;
    *resolution = 15.25f;  // microjoules per count
    *timestamp = 42;
    return kSuccess;
}
#endif

FAKE_EXPORT int rsmi_dev_temp_metric_get(uint32_t index, uint32_t sensor, int metric, int64_t* millidegrees) {
    FAKE_ENTER("rsmi_dev_temp_metric_get")
    FAKE_INDEX(index)
    if (sensor == 0 && std::getenv("FAKE_RSMI_NO_EDGE") != nullptr) return kNotSupported;
    static const int64_t table[3][8] = {
        // current, max, min, max_hyst, min_hyst, critical, critical_hyst, emergency
        {41000, 0, 0, 0, 0, 100000, 0, 105000},  // edge
        {45000, 0, 0, 0, 0, 110000, 0, 115000},  // junction
        {50000, 0, 0, 0, 0, 95000, 0, 0},        // memory
    };
    if (sensor > 2 || metric < 0 || metric > 7) return kInvalidArgs;
    if (table[sensor][metric] == 0) return kNotSupported;
    *millidegrees = table[sensor][metric];
    return kSuccess;
}

FAKE_EXPORT int rsmi_dev_busy_percent_get(uint32_t index, uint32_t* percent) {
    FAKE_ENTER("rsmi_dev_busy_percent_get")
    FAKE_INDEX(index)
    *percent = 37;
    return kSuccess;
}

FAKE_EXPORT int rsmi_dev_memory_busy_percent_get(uint32_t index, uint32_t* percent) {
    FAKE_ENTER("rsmi_dev_memory_busy_percent_get")
    FAKE_INDEX(index)
    *percent = 12;
    return kSuccess;
}

FAKE_EXPORT int rsmi_dev_memory_usage_get(uint32_t index, int type, uint64_t* used) {
    FAKE_ENTER("rsmi_dev_memory_usage_get")
    FAKE_INDEX(index)
    if (type != 0) return kInvalidArgs;
    *used = 8ull << 30;
    return kSuccess;
}

FAKE_EXPORT int rsmi_version_str_get(int component, char* text, uint32_t length) {
    FAKE_ENTER("rsmi_version_str_get")
    if (component != 0) return kInvalidArgs;
    std::snprintf(text, length, "6.8.5");
    return kSuccess;
}

namespace {

uint32_t major_version() { return static_cast<uint32_t>(fake::env_u64("FAKE_RSMI_VERSION", 7)); }

template <int kEntries, bool kDeepSleep>
struct Frequencies {
    uint32_t num_supported, current;
    uint64_t frequency[kEntries];
};
template <int kEntries>
struct Frequencies<kEntries, true> {
    bool has_deep_sleep;
    uint32_t num_supported, current;
    uint64_t frequency[kEntries];
};

// Writes a frequency list (and, for PCIe, the lanes after it) in the layout of the reported version.
template <int kEntries, bool kDeepSleep>
void write_list(void* out, std::initializer_list<uint64_t> values, uint32_t current, std::initializer_list<uint32_t> lanes) {
    struct WithLanes {
        Frequencies<kEntries, kDeepSleep> f;
        uint32_t lanes[kEntries];
    } list{};
    list.f.num_supported = static_cast<uint32_t>(values.size());
    list.f.current = current;
    int i = 0;
    for (uint64_t v : values) list.f.frequency[i++] = v;
    i = 0;
    for (uint32_t l : lanes) list.lanes[i++] = l;
    std::memcpy(out, &list, lanes.size() != 0 ? sizeof list : sizeof list.f);
}

void write_frequencies(void* out, std::initializer_list<uint64_t> values, uint32_t current, std::initializer_list<uint32_t> lanes = {}) {
    if (major_version() >= 6) write_list<33, true>(out, values, current, lanes);
    else write_list<32, false>(out, values, current, lanes);
}

}  // namespace

FAKE_EXPORT int rsmi_version_get(void* version) {
    struct {
        uint32_t major, minor, patch;
        const char* build;
    } v{major_version(), 0, 0, "fake"};
    std::memcpy(version, &v, sizeof v);
    return kSuccess;
}

// System clock 500 / 800 / 1700 MHz, now 800; memory clock 400 / 1600 MHz, now 1600 (HIP's GPU 0, index 1).
FAKE_EXPORT int rsmi_dev_gpu_clk_freq_get(uint32_t index, int type, void* frequencies) {
    FAKE_ENTER("rsmi_dev_gpu_clk_freq_get")
    FAKE_INDEX(index)
    const uint64_t mhz = 1000000;
    if (type == 0) write_frequencies(frequencies, {500 * mhz, 800 * mhz, 1700 * mhz}, is_first_hip_gpu(index) ? 1 : 0);
    else if (type == 4) write_frequencies(frequencies, {400 * mhz, 1600 * mhz}, 1);
    else return kNotSupported;
    return kSuccess;
}

// The link can run at 2.5 GT/s x8 or 16 GT/s x16, and runs at the first now (idle, as AMD GPUs do).
FAKE_EXPORT int rsmi_dev_pci_bandwidth_get(uint32_t index, void* bandwidth) {
    FAKE_ENTER("rsmi_dev_pci_bandwidth_get")
    FAKE_INDEX(index)
    write_frequencies(bandwidth, {2500000000ull, 16000000000ull}, 0, {8, 16});
    return kSuccess;
}

#ifndef FAKE_RSMI_OLD
// Held back by PPT0 (bit 0) and the hotspot temperature (bit 36).
FAKE_EXPORT int rsmi_dev_metrics_indep_throttle_status_get(uint32_t index, uint64_t* status) {
    FAKE_ENTER("rsmi_dev_metrics_indep_throttle_status_get")
    FAKE_INDEX(index)
    *status = (1ull << 0) | (1ull << 36);
    return kSuccess;
}
#endif
