// Spec and telemetry of one CUDA device, read from the driver API and NVML. Every field is either set
// with its source or marked with the state and the reason it could not be read; none is left as a bare
// 0. NVML's numbering of devices differs from CUDA's, so a device is matched to its NVML handle through
// its PCI bus id.
#pragma once

#include "cuda/driver.hpp"
#include "cuda/nvml.hpp"
#include "grey_backend.h"

#include <cstdint>
#include <functional>
#include <string>

namespace grey::cuda {

struct DeviceIdentity {
    CUdevice device = 0;
    std::string pci_bus_id;           // as the driver formats it: "0000:3b:00.0"
    nvml::Device nvml = nullptr;      // NULL when NVML is unavailable or does not know the device
    std::string nvml_unavailable;     // why `nvml` is NULL
};

// Finds the NVML handle of `identity.device`; sets nvml_unavailable when there is none.
void attach_nvml(const Driver& driver, const Nvml* nvml, const std::string& nvml_unavailable, DeviceIdentity& identity);

// Reads free and total memory through the driver (which needs the device's context); false if it
// cannot. Used only where NVML cannot say.
using DriverMemoryInfo = std::function<bool(uint64_t& free, uint64_t& total, std::string& why)>;

void fill_spec(const Driver& driver, const Nvml* nvml, const DeviceIdentity& identity, const DriverMemoryInfo& memory_info,
               grey_device_spec& spec, const grey_field_reasons* reasons);
void fill_telemetry(const Driver& driver, const Nvml* nvml, const DeviceIdentity& identity,
                    const DriverMemoryInfo& memory_info, grey_device_telemetry& telemetry, const grey_field_reasons* reasons);

// The architecture of a compute capability ("Hopper" for 9.0), or "" when libgrey's table lacks it.
std::string architecture_name(int major, int minor);
// Peak memory bandwidth in GB/s: two transfers per clock (DDR) across the bus.
double peak_bandwidth_gbps(uint64_t memory_clock_mhz, uint64_t bus_width_bits);

}  // namespace grey::cuda
