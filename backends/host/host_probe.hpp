// Reads the host CPU's facts and live state from the OS (/proc and /sys under a root directory, so
// tests can point it at a fabricated tree).
#pragma once

#include "grey_backend.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace grey::host {

class HostProbe {
public:
    // Reads a whole file; on failure returns nullopt and sets `error` to the errno value. Injectable so
    // that tests can produce errors (EACCES) that a root test runner would never see.
    using FileReader = std::function<std::optional<std::string>(const std::filesystem::path&, int& error)>;

    explicit HostProbe(std::filesystem::path root = "/", FileReader reader = {});

    void fill_spec(grey_device_spec& spec, const grey_field_reasons* reasons) const;
    // Rates (utilisation, power) are averages since the previous call, or since construction.
    void fill_telemetry(grey_device_telemetry& telemetry, const grey_field_reasons* reasons);

private:
    struct CpuTimes {
        uint64_t busy = 0;
        uint64_t total = 0;
    };
    struct EnergySample {
        uint64_t raw_uj = 0;    // the counter as read
        uint64_t total_uj = 0;  // raw plus the ranges of every wrap seen so far
        uint64_t timestamp_ns = 0;
    };

    // The hwmon sensor of the CPU package: its directory and the N of its tempN_* files.
    struct CpuSensor {
        std::filesystem::path dir;
        std::string index;
    };

    std::filesystem::path path(const char* relative) const { return root_ / relative; }
    // Every file is read through reader_, so an injected reader sees (and can fail) all of them.
    std::optional<std::string> read(const std::filesystem::path& file) const;
    std::optional<uint64_t> read_number(const std::filesystem::path& file) const;
    std::optional<CpuSensor> cpu_sensor() const;
    std::optional<CpuTimes> read_cpu_times() const;
    std::optional<uint64_t> read_energy_uj(std::string& problem, grey_field_state& state) const;

    std::filesystem::path root_;
    FileReader reader_;
    std::mutex mutex_;  // guards the previous samples below
    std::optional<CpuTimes> previous_times_;
    std::optional<EnergySample> previous_energy_;
    uint64_t energy_wraps_uj_ = 0;  // accumulated counter range, for wrap-around
};

}  // namespace grey::host
