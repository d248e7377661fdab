// The backend that works on host memory for the calls that take no context (grey_quantize,
// grey_dequantize): the built-in host backend, started once per process, so that those calls take the
// same route through the backend contract as every call on a device buffer.
#pragma once

#include "core/backend.hpp"

namespace grey {

// Started on first use (thread-safe); fails with the host backend's status if it cannot start.
const Backend& host_memory_backend();

}  // namespace grey
