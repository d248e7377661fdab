#include "host/host_probe.hpp"

#include "common/clock.hpp"
#include "common/fields.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <vector>

namespace grey::host {
namespace fs = std::filesystem;
using backend::mark;
using backend::set_f64;
using backend::set_text;
using backend::set_u64;

namespace {

// Reads a whole small file; nullopt and the errno value in `error` if it cannot be opened.
std::optional<std::string> read_file(const fs::path& file, int& error) {
    errno = 0;
    std::ifstream in(file);
    if (!in) {
        error = errno != 0 ? errno : ENOENT;
        return std::nullopt;
    }
    error = 0;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(first, last - first + 1));
}

std::optional<uint64_t> parse_u64(std::string_view text) {
    const std::string t = trim(text);
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) return std::nullopt;
    return v;
}

std::optional<int64_t> parse_i64(std::string_view text) {
    const std::string t = trim(text);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) return std::nullopt;
    return v;
}

// "key<sep>value" lines: the first line whose key matches.
std::optional<std::string> field_of(std::string_view text, std::string_view key, char separator) {
    std::istringstream in{std::string(text)};
    for (std::string line; std::getline(in, line);) {
        const auto sep = line.find(separator);
        if (sep == std::string::npos) continue;
        if (trim(std::string_view(line).substr(0, sep)) == key) return trim(std::string_view(line).substr(sep + 1));
    }
    return std::nullopt;
}

// /proc/meminfo values are "12345 kB".
std::optional<uint64_t> meminfo_bytes(std::string_view meminfo, std::string_view key) {
    auto value = field_of(meminfo, key, ':');
    if (!value) return std::nullopt;
    std::string number = *value;
    const bool kb = number.size() > 3 && number.ends_with(" kB");
    if (kb) number.resize(number.size() - 3);
    auto v = parse_u64(number);
    if (!v) return std::nullopt;
    return kb ? *v * 1024 : *v;
}

// "0-3,8,10-11" -> 7
std::optional<uint64_t> count_cpu_list(std::string_view list) {
    uint64_t count = 0;
    std::string text = trim(list);
    if (text.empty()) return std::nullopt;
    std::istringstream in(text);
    for (std::string part; std::getline(in, part, ',');) {
        const auto dash = part.find('-');
        if (dash == std::string::npos) {
            if (!parse_u64(part)) return std::nullopt;
            ++count;
        } else {
            auto lo = parse_u64(part.substr(0, dash));
            auto hi = parse_u64(part.substr(dash + 1));
            if (!lo || !hi || *hi < *lo) return std::nullopt;
            count += *hi - *lo + 1;
        }
    }
    return count;
}

// Cache sizes are "2048K" or "32M".
std::optional<uint64_t> parse_cache_size(std::string_view text) {
    std::string t = trim(text);
    uint64_t multiplier = 1;
    if (!t.empty() && (t.back() == 'K' || t.back() == 'M' || t.back() == 'G')) {
        multiplier = t.back() == 'K' ? 1024ull : t.back() == 'M' ? 1024ull * 1024 : 1024ull * 1024 * 1024;
        t.pop_back();
    }
    auto v = parse_u64(t);
    return v ? std::optional<uint64_t>(*v * multiplier) : std::nullopt;
}

std::vector<fs::path> sorted_entries(const fs::path& dir, std::string_view prefix) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->path().filename().string().starts_with(prefix)) out.push_back(it->path());
    std::sort(out.begin(), out.end());
    return out;
}

// The SIMD levels that matter for libgrey's host kernels, from /proc/cpuinfo flags.
std::string isa_summary(std::string_view flags_line) {
    std::set<std::string> flags;
    std::istringstream in{std::string(flags_line)};
    for (std::string f; in >> f;) flags.insert(f);
    std::string out;
    for (const char* f : {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_bf16", "avx512_fp16", "amx_bf16"})
        if (flags.count(f)) {
            if (!out.empty()) out += ' ';
            out += f;
        }
    return out;
}

}  // namespace

HostProbe::HostProbe(fs::path root, FileReader reader) : root_(std::move(root)), reader_(std::move(reader)) {
    if (!reader_) reader_ = &read_file;
    previous_times_ = read_cpu_times();
    std::string problem;
    grey_field_state state{};
    if (auto uj = read_energy_uj(problem, state)) previous_energy_ = EnergySample{*uj, *uj, grey::common::monotonic_ns()};
}

std::optional<std::string> HostProbe::read(const fs::path& file) const {
    int error = 0;
    return reader_(file, error);
}

std::optional<uint64_t> HostProbe::read_number(const fs::path& file) const {
    auto text = read(file);
    return text ? parse_u64(*text) : std::nullopt;
}

std::optional<HostProbe::CpuSensor> HostProbe::cpu_sensor() const {
    static constexpr std::string_view kCpuDrivers[] = {"coretemp", "k10temp", "zenpower", "cpu_thermal"};
    for (const auto& dir : sorted_entries(path("sys/class/hwmon"), "hwmon")) {
        auto name = read(dir / "name");
        if (!name || std::find(std::begin(kCpuDrivers), std::end(kCpuDrivers), trim(*name)) == std::end(kCpuDrivers)) continue;
        // Prefer the labelled package sensor ("Package id 0", "Tctl"), else temp1.
        for (const auto& label_file : sorted_entries(dir, "temp")) {
            const std::string file = label_file.filename().string();
            if (!file.ends_with("_label")) continue;
            auto label = read(label_file);
            if (label && (trim(*label).starts_with("Package") || trim(*label) == "Tctl" || trim(*label) == "Tdie"))
                return CpuSensor{dir, file.substr(4, file.size() - 4 - 6)};
        }
        if (fs::exists(dir / "temp1_input")) return CpuSensor{dir, "1"};
    }
    return std::nullopt;
}

std::optional<HostProbe::CpuTimes> HostProbe::read_cpu_times() const {
    auto stat = read(path("proc/stat"));
    if (!stat) return std::nullopt;
    std::istringstream in(*stat);
    std::string label;
    in >> label;
    if (label != "cpu") return std::nullopt;
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    uint64_t v[8] = {};
    for (auto& x : v)
        if (!(in >> x)) return std::nullopt;
    CpuTimes t;
    const uint64_t idle = v[3] + v[4];
    for (auto x : v) t.total += x;
    t.busy = t.total - idle;
    return t;
}

std::optional<uint64_t> HostProbe::read_energy_uj(std::string& problem, grey_field_state& state) const {
    const fs::path file = path("sys/class/powercap/intel-rapl:0/energy_uj");
    int error = 0;
    auto text = reader_(file, error);
    if (!text) {
        const bool denied = error == EACCES || error == EPERM;
        if (error == ENOENT) problem = "no RAPL package energy counter (" + file.string() + " does not exist)";
        else problem = file.string() + ": " + std::strerror(error) + (denied ? " (the kernel restricts RAPL energy counters to root)" : "");
        state = denied ? GREY_FIELD_PERMISSION_DENIED : GREY_FIELD_UNSUPPORTED;
        return std::nullopt;
    }
    auto value = parse_u64(*text);
    if (!value) {
        problem = file.string() + ": not a number";
        state = GREY_FIELD_UNSUPPORTED;
    }
    return value;
}

void HostProbe::fill_spec(grey_device_spec& spec, const grey_field_reasons* reasons) const {
    const std::string cpuinfo = read(path("proc/cpuinfo")).value_or("");

    // Name: x86 "model name"; Arm "Model" or "Hardware"; else the architecture.
    std::optional<std::string> name;
    for (const char* key : {"model name", "Model", "Hardware", "cpu model"})
        if (!name) name = field_of(cpuinfo, key, ':');
    utsname uts{};
    const bool have_uts = uname(&uts) == 0;
    if (name && !name->empty()) set_text(spec.name, *name, GREY_SOURCE_OS);
    else if (have_uts) set_text(spec.name, std::string(uts.machine) + " processor", GREY_SOURCE_OS);
    else mark(spec.name, GREY_FIELD_NAME, GREY_FIELD_UNSUPPORTED, reasons, "no model name in /proc/cpuinfo");

    if (have_uts) set_text(spec.architecture, uts.machine, GREY_SOURCE_OS);
    else mark(spec.architecture, GREY_FIELD_ARCHITECTURE, GREY_FIELD_UNSUPPORTED, reasons, "uname() failed");

    if (auto flags = field_of(cpuinfo, "flags", ':')) set_text(spec.compute_capability, isa_summary(*flags), GREY_SOURCE_OS);
    else mark(spec.compute_capability, GREY_FIELD_COMPUTE_CAPABILITY, GREY_FIELD_UNSUPPORTED, reasons, "no flags line in /proc/cpuinfo");

    if (auto release = read(path("proc/sys/kernel/osrelease")))
        set_text(spec.driver_version, "Linux " + trim(*release), GREY_SOURCE_OS);
    else mark(spec.driver_version, GREY_FIELD_DRIVER_VERSION, GREY_FIELD_UNSUPPORTED, reasons, "cannot read /proc/sys/kernel/osrelease");

    const char* na_device = "a host CPU has no such identifier";
    mark(spec.uuid, GREY_FIELD_UUID, GREY_FIELD_NOT_APPLICABLE, reasons, na_device);
    mark(spec.pci_bus_id, GREY_FIELD_PCI_BUS_ID, GREY_FIELD_NOT_APPLICABLE, reasons, "a host CPU is not a PCIe device");
    mark(spec.runtime_version, GREY_FIELD_RUNTIME_VERSION, GREY_FIELD_NOT_APPLICABLE, reasons, "the host backend needs no device runtime");

    // Memory: the smaller of physical RAM and this process's cgroup limit, since that is what it can use.
    const std::string meminfo = read(path("proc/meminfo")).value_or("");
    auto total = meminfo_bytes(meminfo, "MemTotal");
    auto available = meminfo_bytes(meminfo, "MemAvailable");
    if (auto limit_text = read(path("sys/fs/cgroup/memory.max")); limit_text && total) {
        if (auto limit = parse_u64(*limit_text); limit && *limit < *total) {
            total = limit;
            if (auto current = read_number(path("sys/fs/cgroup/memory.current")))
                available = std::min(available.value_or(*limit), *limit > *current ? *limit - *current : 0);
        }
    }
    if (total) set_u64(spec.memory_total_bytes, *total, GREY_SOURCE_OS);
    else mark(spec.memory_total_bytes, GREY_FIELD_MEMORY_TOTAL_BYTES, GREY_FIELD_UNSUPPORTED, reasons, "no MemTotal in /proc/meminfo");
    if (available) set_u64(spec.memory_free_bytes, *available, GREY_SOURCE_OS);
    else mark(spec.memory_free_bytes, GREY_FIELD_MEMORY_FREE_BYTES, GREY_FIELD_UNSUPPORTED, reasons, "no MemAvailable in /proc/meminfo");

    const char* dmi = "DRAM width and speed are only in the SMBIOS tables, which only root can read; libgrey does not parse them yet";
    mark(spec.memory_bus_width_bits, GREY_FIELD_MEMORY_BUS_WIDTH_BITS, GREY_FIELD_UNSUPPORTED, reasons, dmi);
    mark(spec.memory_clock_max_mhz, GREY_FIELD_MEMORY_CLOCK_MAX_MHZ, GREY_FIELD_UNSUPPORTED, reasons, dmi);
    mark(spec.peak_memory_bandwidth_gbps, GREY_FIELD_PEAK_MEMORY_BANDWIDTH_GBPS, GREY_FIELD_UNSUPPORTED, reasons,
         "derived from bus width and memory clock, which are unavailable");

    // Logical cores online.
    std::optional<uint64_t> cores;
    if (auto online = read(path("sys/devices/system/cpu/online"))) cores = count_cpu_list(*online);
    if (!cores) {
        uint64_t n = 0;
        std::istringstream in(cpuinfo);
        for (std::string line; std::getline(in, line);)
            if (line.starts_with("processor")) ++n;
        if (n > 0) cores = n;
    }
    if (cores) set_u64(spec.compute_units, *cores, GREY_SOURCE_OS);
    else mark(spec.compute_units, GREY_FIELD_COMPUTE_UNITS, GREY_FIELD_UNSUPPORTED, reasons, "neither /sys/devices/system/cpu/online nor /proc/cpuinfo lists the CPUs");

    // Total L2: the sum over distinct L2 instances (each listed by the CPUs that share it).
    uint64_t l2_total = 0;
    std::set<std::string> seen_instances;
    for (const auto& cpu : sorted_entries(path("sys/devices/system/cpu"), "cpu")) {
        const std::string cpu_name = cpu.filename().string();
        if (cpu_name.size() <= 3 || !std::isdigit(static_cast<unsigned char>(cpu_name[3]))) continue;
        for (const auto& index : sorted_entries(cpu / "cache", "index")) {
            if (read_number(index / "level") != 2u) continue;
            auto shared = read(index / "shared_cpu_list");
            auto size = read(index / "size");
            if (!shared || !size) continue;
            if (!seen_instances.insert(trim(*shared)).second) continue;
            if (auto bytes = parse_cache_size(*size)) l2_total += *bytes;
        }
    }
    if (l2_total > 0) set_u64(spec.l2_cache_bytes, l2_total, GREY_SOURCE_OS);
    else mark(spec.l2_cache_bytes, GREY_FIELD_L2_CACHE_BYTES, GREY_FIELD_UNSUPPORTED, reasons, "no level-2 cache under /sys/devices/system/cpu/cpu*/cache");

    mark(spec.graphics_clock_max_mhz, GREY_FIELD_GRAPHICS_CLOCK_MAX_MHZ, GREY_FIELD_NOT_APPLICABLE, reasons, "a CPU has no graphics clock");

    // RAPL package power limit (long-term constraint).
    const fs::path rapl = path("sys/class/powercap/intel-rapl:0");
    if (auto uw = read_number(rapl / "constraint_0_power_limit_uw")) set_u64(spec.power_limit_mw, *uw / 1000, GREY_SOURCE_OS);
    else mark(spec.power_limit_mw, GREY_FIELD_POWER_LIMIT_MW, GREY_FIELD_UNSUPPORTED, reasons, "no RAPL package power limit (" + (rapl / "constraint_0_power_limit_uw").string() + ")");
    if (auto uw = read_number(rapl / "constraint_0_max_power_uw"); uw && *uw > 0) set_u64(spec.power_limit_max_mw, *uw / 1000, GREY_SOURCE_OS);
    else mark(spec.power_limit_max_mw, GREY_FIELD_POWER_LIMIT_MAX_MW, GREY_FIELD_UNSUPPORTED, reasons, "RAPL reports no maximum power");
    mark(spec.power_limit_default_mw, GREY_FIELD_POWER_LIMIT_DEFAULT_MW, GREY_FIELD_UNSUPPORTED, reasons, "RAPL has no default power limit");
    mark(spec.power_limit_min_mw, GREY_FIELD_POWER_LIMIT_MIN_MW, GREY_FIELD_UNSUPPORTED, reasons, "RAPL has no minimum power limit");

    // Thresholds of the CPU package sensor: *_max is where the CPU starts to throttle, *_crit shutdown.
    if (auto sensor = cpu_sensor()) {
        const std::string base = "temp" + sensor->index;
        if (auto m = read_number(sensor->dir / (base + "_max"))) set_f64(spec.temperature_slowdown_c, *m / 1000.0, GREY_SOURCE_OS);
        else mark(spec.temperature_slowdown_c, GREY_FIELD_TEMPERATURE_SLOWDOWN_C, GREY_FIELD_UNSUPPORTED, reasons, "the CPU sensor reports no maximum (" + base + "_max)");
        if (auto c = read_number(sensor->dir / (base + "_crit"))) set_f64(spec.temperature_shutdown_c, *c / 1000.0, GREY_SOURCE_OS);
        else mark(spec.temperature_shutdown_c, GREY_FIELD_TEMPERATURE_SHUTDOWN_C, GREY_FIELD_UNSUPPORTED, reasons, "the CPU sensor reports no critical temperature (" + base + "_crit)");
    } else {
        mark(spec.temperature_slowdown_c, GREY_FIELD_TEMPERATURE_SLOWDOWN_C, GREY_FIELD_UNSUPPORTED, reasons, "no CPU temperature sensor under /sys/class/hwmon");
        mark(spec.temperature_shutdown_c, GREY_FIELD_TEMPERATURE_SHUTDOWN_C, GREY_FIELD_UNSUPPORTED, reasons, "no CPU temperature sensor under /sys/class/hwmon");
    }
    mark(spec.temperature_gpu_max_c, GREY_FIELD_TEMPERATURE_GPU_MAX_C, GREY_FIELD_NOT_APPLICABLE, reasons, "not a GPU");
    mark(spec.temperature_memory_max_c, GREY_FIELD_TEMPERATURE_MEMORY_MAX_C, GREY_FIELD_UNSUPPORTED, reasons, "the OS reports no DRAM temperature limit");

    const char* no_pcie = "a host CPU is not a PCIe device";
    mark(spec.pcie_generation_current, GREY_FIELD_PCIE_GENERATION_CURRENT, GREY_FIELD_NOT_APPLICABLE, reasons, no_pcie);
    mark(spec.pcie_generation_max, GREY_FIELD_PCIE_GENERATION_MAX, GREY_FIELD_NOT_APPLICABLE, reasons, no_pcie);
    mark(spec.pcie_width_current, GREY_FIELD_PCIE_WIDTH_CURRENT, GREY_FIELD_NOT_APPLICABLE, reasons, no_pcie);
    mark(spec.pcie_width_max, GREY_FIELD_PCIE_WIDTH_MAX, GREY_FIELD_NOT_APPLICABLE, reasons, no_pcie);
}

void HostProbe::fill_telemetry(grey_device_telemetry& t, const grey_field_reasons* reasons) {
    const uint64_t now = grey::common::monotonic_ns();
    t.timestamp_ns = now;

    // Package temperature: hwmon first, then the thermal zone the kernel calls x86_pkg_temp.
    std::optional<double> temperature;
    if (auto sensor = cpu_sensor())
        if (auto v = read(sensor->dir / ("temp" + sensor->index + "_input")))
            if (auto m = parse_i64(*v)) temperature = *m / 1000.0;
    if (!temperature)
        for (const auto& zone : sorted_entries(path("sys/class/thermal"), "thermal_zone")) {
            auto type = read(zone / "type");
            if (!type || (trim(*type) != "x86_pkg_temp" && trim(*type) != "cpu-thermal")) continue;
            if (auto v = read(zone / "temp"))
                if (auto m = parse_i64(*v)) temperature = *m / 1000.0;
            break;
        }
    if (temperature) set_f64(t.temperature_c, *temperature, GREY_SOURCE_OS);
    else mark(t.temperature_c, GREY_FIELD_TEMPERATURE_C, GREY_FIELD_UNSUPPORTED, reasons, "no CPU temperature sensor under /sys/class/hwmon or /sys/class/thermal");
    mark(t.memory_temperature_c, GREY_FIELD_MEMORY_TEMPERATURE_C, GREY_FIELD_UNSUPPORTED, reasons, "the OS reports no DRAM temperature");

    {
        std::lock_guard lock(mutex_);
        // Energy and power from the RAPL package counter, which wraps at max_energy_range_uj.
        std::string problem;
        grey_field_state state = GREY_FIELD_UNSUPPORTED;
        if (auto uj = read_energy_uj(problem, state)) {
            if (previous_energy_ && *uj < previous_energy_->raw_uj)
                energy_wraps_uj_ += read_number(path("sys/class/powercap/intel-rapl:0/max_energy_range_uj")).value_or(0);
            const uint64_t total_uj = *uj + energy_wraps_uj_;
            set_u64(t.energy_total_mj, total_uj / 1000, GREY_SOURCE_OS);
            if (previous_energy_ && now > previous_energy_->timestamp_ns && total_uj >= previous_energy_->total_uj) {
                // microjoules per microsecond are watts
                const double watts = static_cast<double>(total_uj - previous_energy_->total_uj) /
                                     (static_cast<double>(now - previous_energy_->timestamp_ns) / 1e3);
                set_u64(t.power_draw_mw, static_cast<uint64_t>(watts * 1000.0 + 0.5), GREY_SOURCE_DERIVED);
            } else {
                mark(t.power_draw_mw, GREY_FIELD_POWER_DRAW_MW, GREY_FIELD_UNSUPPORTED, reasons, "power is derived from two energy samples; take another sample");
            }
            previous_energy_ = EnergySample{*uj, total_uj, now};
        } else {
            mark(t.energy_total_mj, GREY_FIELD_ENERGY_TOTAL_MJ, state, reasons, problem);
            mark(t.power_draw_mw, GREY_FIELD_POWER_DRAW_MW, state, reasons, "derived from the energy counter: " + problem);
        }

        // Utilisation: busy share of CPU time since the previous sample.
        auto times = read_cpu_times();
        if (times && previous_times_ && times->total > previous_times_->total) {
            const uint64_t busy = times->busy - std::min(times->busy, previous_times_->busy);
            set_u64(t.utilization_percent, (busy * 100 + (times->total - previous_times_->total) / 2) / (times->total - previous_times_->total), GREY_SOURCE_OS);
        } else if (times && previous_times_) {
            // No tick elapsed since the last sample: report the long-run share rather than nothing.
            set_u64(t.utilization_percent, times->total ? times->busy * 100 / times->total : 0, GREY_SOURCE_OS);
        } else {
            mark(t.utilization_percent, GREY_FIELD_UTILIZATION_PERCENT, GREY_FIELD_UNSUPPORTED, reasons, "cannot parse the cpu line of /proc/stat");
        }
        if (times) previous_times_ = times;
    }
    mark(t.memory_utilization_percent, GREY_FIELD_MEMORY_UTILIZATION_PERCENT, GREY_FIELD_UNSUPPORTED, reasons, "the OS reports no memory-controller utilisation");

    const std::string meminfo = read(path("proc/meminfo")).value_or("");
    auto total = meminfo_bytes(meminfo, "MemTotal");
    auto available = meminfo_bytes(meminfo, "MemAvailable");
    if (total && available && *total >= *available) set_u64(t.memory_used_bytes, *total - *available, GREY_SOURCE_OS);
    else mark(t.memory_used_bytes, GREY_FIELD_MEMORY_USED_BYTES, GREY_FIELD_UNSUPPORTED, reasons, "no MemTotal/MemAvailable in /proc/meminfo");

    mark(t.graphics_clock_mhz, GREY_FIELD_GRAPHICS_CLOCK_MHZ, GREY_FIELD_NOT_APPLICABLE, reasons, "a CPU has no graphics clock");
    mark(t.sm_clock_mhz, GREY_FIELD_SM_CLOCK_MHZ, GREY_FIELD_NOT_APPLICABLE, reasons, "a CPU has no SM clock");
    mark(t.memory_clock_mhz, GREY_FIELD_MEMORY_CLOCK_MHZ, GREY_FIELD_UNSUPPORTED, reasons, "the OS reports no DRAM clock");
    const char* no_throttle = "Linux exposes no CPU throttle reasons in a portable form";
    mark(t.throttle_reasons, GREY_FIELD_THROTTLE_REASONS, GREY_FIELD_UNSUPPORTED, reasons, no_throttle);
    mark(t.throttle_time_power_ns, GREY_FIELD_THROTTLE_TIME_POWER_NS, GREY_FIELD_UNSUPPORTED, reasons, no_throttle);
    mark(t.throttle_time_thermal_ns, GREY_FIELD_THROTTLE_TIME_THERMAL_NS, GREY_FIELD_UNSUPPORTED, reasons, no_throttle);
    mark(t.throttle_time_sync_boost_ns, GREY_FIELD_THROTTLE_TIME_SYNC_BOOST_NS, GREY_FIELD_NOT_APPLICABLE, reasons, "sync boost is an NVIDIA multi-GPU feature");
}

}  // namespace grey::host
