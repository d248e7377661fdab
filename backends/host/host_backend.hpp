// The host backend: the CPU as a device, built into libgrey and always present. It is the reference
// every GPU backend is checked against, so its ops are written for clarity first.
#pragma once

#include "grey_backend.h"

namespace grey::host {

// Fills the vtable of the built-in host backend; same contract as a plugin's grey_backend_entry.
grey_status host_backend_entry(uint32_t host_abi_version, grey_backend_vtable* out_vtable);

}  // namespace grey::host
