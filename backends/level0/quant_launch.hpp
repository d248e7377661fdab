// How the Level Zero backend runs a quantization job on kernels/opencl/grey_quant.clcpp, apart from the
// Level Zero calls themselves: which jobs the kernels take, their argument block, the launch shapes, and
// the host's step between the statistics kernel and the encoder (the pieces' findings combined in the
// host's order, and the parameter sets chosen by common/quant_coding.hpp's make_coding, the host
// backend's own rule). Shared with the test that runs the same SPIR-V through OpenCL on the CPU
// (tests/level0), so both run a job alike.
#pragma once

#include "common/quant_coding.hpp"
#include "grey.h"
#include "kernels/opencl/quant_args.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace grey::level0 {

inline constexpr const char* kQuantStatsKernelName = "grey_quant_stats";
inline constexpr const char* kQuantEncodeKernelName = "grey_quant_encode";
inline constexpr const char* kQuantDecodeKernelName = "grey_quant_decode";
inline constexpr uint32_t kQuantGroupSize = 64;
// The kernels are grid-stride loops: past this many groups each work item takes more.
inline constexpr uint32_t kQuantMaxGroups = 4096;
// Elements of a run one statistics work item scans: whole ggml blocks (a multiple of 32).
inline constexpr uint64_t kQuantPiece = 4096;

// Throws std::domain_error (the backend answers GREY_ERROR_UNSUPPORTED) for a job these kernels do not
// take: a layout feature this backend does not know, a format outside grey_quant_format, or MSE
// calibration (its search is not ported to the Level Zero kernels). Throws std::invalid_argument for a
// plain dtype other than F32, F16 and BF16.
void check_supported(const grey_quant_layout& layout, grey_dtype plain_dtype);

// The kernels' argument block for a job whose tensors lie at the given byte offsets of the buffers the
// kernels are given.
grey_ql0_args quant_args(const grey_quant_layout& layout, grey_dtype plain_dtype, uint64_t plain_offset, uint64_t quantized_offset);

// Work items each kernel covers (the stats kernel writes one grey_ql0_stats per item).
uint64_t stats_items(const grey_ql0_args& args);
uint64_t encode_items(const grey_quant_layout& layout);
uint64_t decode_items(const grey_quant_layout& layout);
// Groups of kQuantGroupSize for `items` work items, at least one.
uint32_t quant_group_count(uint64_t items);

// The parameter sets for the statistics kernel's findings (stats_items(args) of them), as the host
// backend chooses them. A NaN or infinite element, or a group too large for fp16 parameters, throws
// std::invalid_argument in the host backend's words (common/quant_text.hpp): the lowest non-finite
// element first, then the lowest overflowing group.
std::vector<common::Coding> choose_codings(const grey_ql0_args& args, std::span<const grey_ql0_stats> stats);

// The planar formats' parameter arrays, bytes layout.codes_bytes .. layout.bytes of the quantized
// tensor, which the host writes (empty for the ggml formats, whose blocks carry theirs).
std::vector<std::byte> parameter_bytes(const grey_quant_layout& layout, std::span<const common::Coding> codings);

}  // namespace grey::level0
