// The machine a plan is made for: its devices, each with the memory the plan may use, its bandwidth,
// its host link and its thermal limits, either detected on this machine or read from a devices file
// describing another one (docs/plan.md, "Devices files").
#pragma once

#include "grey.h"

#include <cstdint>
#include <string>
#include <vector>

namespace grey::plan {

struct Device {
    std::string name;                 // llama.cpp's buffer type name: "CUDA0", "ROCm1", "CPU"
    grey_device_type type = GREY_DEVICE_CPU;
    uint64_t memory_free_bytes = 0;
    double bandwidth_gbps = 0;        // memory bandwidth; 0 when unknown
    double link_gbps = 0;             // host link (PCIe) of a GPU; 0 when unknown or a CPU
    double safety_margin = 0;         // fraction of memory_free_bytes left unused
    double thermal_slowdown_c = 0;    // the device's own slowdown temperature; 0 when unknown
};

struct Machine {
    std::string source;               // "detected" or the devices file's path
    std::vector<Device> devices;      // exactly one CPU
};

// The safety margins used when nothing says otherwise: a GPU keeps 5% for the driver, fragmentation and
// other processes' growth; the host keeps 20% for the operating system and the program itself.
inline constexpr double kGpuSafetyMargin = 0.05;
inline constexpr double kCpuSafetyMargin = 0.20;

// Reads a devices file (YAML, `version: 1`): GREY_ERROR_CONFIG with "FILE:LINE: problem" for every
// problem found (unknown keys, missing or mistyped values, names used twice, not exactly one CPU).
Machine read_devices_file(const std::string& path);

// The devices `context` detected (every backend's devices and the host).
Machine detect_machine(grey_context* context);

}  // namespace grey::plan
