// Spec and telemetry of one HIP device: the HIP runtime (name, PCI bus id, attributes, memory) and ROCm
// SMI (power, energy, temperatures and their thresholds, activity, VRAM use). Every field is either set
// with its source or marked with its state and the reason. ROCm SMI numbers devices its own way, so a
// device is matched to its SMI index through its PCI address.
#pragma once

#include "grey_backend.h"
#include "hip/hip_runtime.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace grey::hip {

struct DeviceIdentity {
    int ordinal = 0;
    std::string pci_bus_id;            // as HIP formats it: "0000:c1:00.0"
    std::optional<uint32_t> smi;       // the ROCm SMI index, when ROCm SMI knows the device
    std::string smi_unavailable;       // why `smi` is empty
};

// Finds the ROCm SMI index of `identity`; sets smi_unavailable when there is none.
void attach_smi(const RocmSmi* smi, const std::string& smi_unavailable, DeviceIdentity& identity);

// The domain:bus:device.function of "0000:c1:00.0" as ROCm SMI's BDFID packs it; nullopt if unparsable.
std::optional<uint64_t> bdfid_of(const std::string& pci_bus_id);

void fill_spec(const HipRuntime& hip, const RocmSmi* smi, const DeviceIdentity& id, grey_device_spec& spec,
               const grey_field_reasons* reasons);
void fill_telemetry(const HipRuntime& hip, const RocmSmi* smi, const DeviceIdentity& id, grey_device_telemetry& telemetry,
                    const grey_field_reasons* reasons);

}  // namespace grey::hip
