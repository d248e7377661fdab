// How the Level Zero backend runs the KV cache's block operations on kernels/opencl/grey_kv.clcpp, apart
// from the Level Zero calls themselves: which layouts the kernels take, their argument blocks, the tables
// they read (uploaded by the caller into scratch), the scratch they write, and the launch shapes. Used by
// the backend (device_queue.cpp) and by the test that runs the same SPIR-V through OpenCL on the CPU
// (tests/level0/test_kv_on_opencl.cpp), so that both launch the kernels alike.
#pragma once

#include "common/kv_layout.hpp"
#include "grey.h"
#include "kernels/opencl/kv_args.h"

#include <cstdint>
#include <span>
#include <vector>

namespace grey::level0 {

inline constexpr const char* kKvStoreKernelName = "grey_kvk_store";
inline constexpr const char* kKvParamsKernelName = "grey_kvk_params";
inline constexpr const char* kKvCodesKernelName = "grey_kvk_codes";
inline constexpr const char* kKvAttendKernelName = "grey_kvk_attend";
inline constexpr uint32_t kKvGroupSize = 64;
// The kernels are grid-stride loops: past this many groups each work item takes more.
inline constexpr uint32_t kKvMaxGroups = 4096;

// The layouts the kernels take. They index blocks in 64 bits and loop over any head_dim, tokens_per_block
// and context, so they add no size limit of their own to the runtime's; what they need is a layout the
// runtime could have made: every dimension at least 1, V's groups within head_dim, a format of
// grey_kv_format, head_dim a power of two when K is rotated (std::domain_error: UNSUPPORTED), and
// query_heads a non-zero multiple of kv_heads (std::invalid_argument).
void kv_check_layout(const common::KvLayout& layout, uint32_t query_heads);

// Groups of kKvGroupSize for `items` work items, at least one.
uint32_t kv_group_count(uint64_t items);

// --- kv_store: one launch of grey_kvk_store, a work item per (layer, token, KV head) row.
// K and V of `dtype` (F32, F16 or BF16; another throws std::invalid_argument); `checks` as the argument
// block says, or 0.
grey_kvl0_store_args kv_store_args(const common::KvLayout& layout, uint32_t layer_first, uint32_t layer_count, uint32_t tokens,
                                   uint64_t keys, uint64_t values, uint64_t block_table, uint64_t slot_table, uint64_t rotated,
                                   grey_dtype dtype = GREY_DTYPE_F32, uint64_t checks = 0);
uint64_t kv_store_items(const grey_kvl0_store_args& args);
// Scratch for the rotated K rows (0 when K is not rotated).
uint64_t kv_store_rotated_bytes(const common::KvLayout& layout, uint32_t layer_count, uint32_t tokens);
// The checks the kernel writes: two words a row.
uint64_t kv_store_checks_bytes(const grey_kvl0_store_args& args);
// grey_backend_kv_store_job.first_non_finite from the rows' checks: the first row's K channel, else the
// first row's V channel counted after every K value, else UINT64_MAX.
uint64_t kv_store_first_non_finite(const grey_kvl0_store_args& args, std::span<const uint32_t> checks);

// --- kv_compress: grey_kvk_params, then grey_kvk_codes (which reads the parameters the first wrote).
grey_kvl0_compress_args kv_compress_args(const common::KvLayout& layout, uint32_t count, uint64_t source_table, uint64_t destination_table);
uint64_t kv_params_items(const grey_kvl0_compress_args& args);
uint64_t kv_codes_items(const grey_kvl0_compress_args& args);

// --- kv_attend: one launch of grey_kvk_attend, a work item per (sequence, query head).
// The block table the kernel reads: each block's device address with bit 0 set when it is quantized.
std::vector<uint64_t> kv_block_entries(std::span<const uint64_t> addresses, std::span<const uint8_t> quantized);
std::vector<grey_kvl0_sequence> kv_sequences(std::span<const uint64_t> first, std::span<const uint64_t> last,
                                             std::span<const uint64_t> table_offsets);
grey_kvl0_attend_args kv_attend_args(const common::KvLayout& layout, uint32_t batch, uint32_t layer, uint32_t query_heads, float scale,
                                     uint64_t sequence_table, uint64_t block_table, uint64_t queries, uint64_t output, uint64_t rotated);
uint64_t kv_attend_items(const grey_kvl0_attend_args& args);
// Scratch for the rotated queries (0 when K is not rotated).
uint64_t kv_attend_rotated_bytes(const common::KvLayout& layout, uint32_t batch, uint32_t query_heads);

}  // namespace grey::level0
