// The KV cache's block operations on one CUDA device (the backend's kv_store, kv_compress and kv_attend
// slots), given device addresses: the kernels are kernels/cuda/kv_cache.cu, launched by the plan the HIP
// backend launches too (backends/common/kv_plan.hpp).
#pragma once

#include "common/kv_layout.hpp"
#include "common/kv_plan.hpp"
#include "cuda/device_runtime.hpp"
#include "cuda/quant_journal.hpp"

#include <cstdint>
#include <span>

namespace grey::cuda {

// Throws std::domain_error naming what the attention kernels do not take (head_dim, the query group).
void kv_check_layout(const common::KvLayout& layout, uint32_t query_heads);

// Token i of the input's K and V into slot slots[i] of blocks[i] (checked when the input asks).
void kv_store(DeviceRuntime& device, const common::KvLayout& layout, const backend::kv::StoreInput& input, std::span<const CUdeviceptr> blocks,
              std::span<const uint32_t> slots);

// The quantized form of window-form blocks sources[i] into destinations[i].
void kv_compress(DeviceRuntime& device, const common::KvLayout& layout, std::span<const CUdeviceptr> sources,
                 std::span<const CUdeviceptr> destinations);

using KvAttendTables = backend::kv::AttendTables;

// Decode attention (grey_backend_kv_attend_job) with queries and output F32 at device addresses.
void kv_attend(DeviceRuntime& device, const common::KvLayout& layout, const KvAttendTables& tables, uint32_t layer,
               uint32_t query_heads, float scale, CUdeviceptr queries, CUdeviceptr output);

// The same queued on the caller's `stream` behind its work (kv_attend_async): the device memory is the
// stream's scratch (`journal`'s), the tables go up from `staging` (host memory of
// GREY_BACKEND_KV_ATTEND_STAGING_BYTES that the runtime keeps until the stream has passed the work), and
// nothing is waited for.
void kv_attend_on(DeviceRuntime& device, QuantJournal& journal, CUstream stream, const common::KvLayout& layout, const KvAttendTables& tables,
                  uint32_t layer, uint32_t query_heads, float scale, CUdeviceptr queries, CUdeviceptr output, void* staging);

}  // namespace grey::cuda
