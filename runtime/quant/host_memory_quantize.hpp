// Quantization of host memory through a backend whose quantization slot takes host memory
// (GREY_BACKEND_CAP_QUANT_HOST_MEMORY and _QUANT_ERROR): the context-free host backend for grey_quantize,
// a context's host backend (and so its worker pool) for grey_model_quantize with a context. The checks
// and the outcome are grey_quantize's.
#pragma once

#include "core/backend.hpp"
#include "grey.h"

namespace grey::quant {

// True when `backend` can run quantize_host_memory.
bool quantizes_host_memory(const Backend& backend) noexcept;

void quantize_host_memory(const Backend& backend, const grey_tensor_desc* desc, const void* source, uint64_t source_bytes,
                          const grey_quant_params* params, void* destination, uint64_t destination_bytes, grey_quant_report* out_report);

}  // namespace grey::quant
