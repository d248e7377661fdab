// How the Level Zero backend runs a quantization job on kernels/opencl/grey_quant*.clcpp, apart from
// the Level Zero calls themselves: which jobs the kernels take, their argument block, the launch
// shapes, and the host's part between the kernels (the pieces' statistics combined in the host's order,
// every parameter set chosen by common/quant_coding.hpp's make_coding, and MSE calibration's choices
// from the kernels' float64 error sums, as the host backend makes them). The sequence is written once
// here (quantize) over QuantKernels, which the backend implements with Level Zero and the test that runs
// the same SPIR-V through OpenCL on the CPU (tests/level0) with OpenCL.
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
inline constexpr const char* kQuantSearchKernelName = "grey_quant_search";  // grey_quant_mse.clcpp
inline constexpr const char* kQuantRefitKernelName = "grey_quant_refit";    // grey_quant_mse.clcpp
inline constexpr uint32_t kQuantGroupSize = 64;
// The kernels are grid-stride loops: past this many groups each work item takes more.
inline constexpr uint32_t kQuantMaxGroups = 4096;
// Elements of a run one statistics work item scans: whole ggml blocks (a multiple of 32).
inline constexpr uint64_t kQuantPiece = 4096;

// Throws std::domain_error (the backend answers GREY_ERROR_UNSUPPORTED) for a job these kernels do not
// take: a layout feature this backend does not know, or a format or calibration outside grey.h's.
// Throws std::invalid_argument for a plain dtype other than F32, F16 and BF16.
void check_supported(const grey_quant_layout& layout, grey_dtype plain_dtype);

// The kernels' argument block for a job whose tensors lie at the given byte offsets of the buffers the
// kernels are given.
grey_ql0_args quant_args(const grey_quant_layout& layout, grey_dtype plain_dtype, uint64_t plain_offset, uint64_t quantized_offset);

// Work items each kernel covers.
uint64_t stats_items(const grey_ql0_args& args);  // one grey_ql0_stats each
uint64_t encode_items(const grey_quant_layout& layout);
uint64_t decode_items(const grey_quant_layout& layout);
// Groups of kQuantGroupSize for `items` work items, at least one.
uint32_t quant_group_count(uint64_t items);

// The kernels of one quantize job, launched and read back (each call returns once its kernel is done).
class QuantKernels {
public:
    virtual ~QuantKernels() = default;
    // grey_quant_stats: stats_items(args) findings.
    virtual std::vector<grey_ql0_stats> statistics(const grey_ql0_args& args) = 0;
    // grey_quant_search (grey_quant_mse.clcpp): for every run r and step s < steps, the squared error of
    // run r under codings[s * param_count + r % param_count], at [r * steps + s].
    virtual std::vector<double> search(const grey_ql0_args& args, std::span<const common::Coding> codings, uint32_t steps) = 0;
    // grey_quant_refit (grey_quant_mse.clcpp): for every INT4 group r, its codes under codings[r]
    // summed as sum q, sum x, sum q^2, sum q x, at [4r .. 4r + 3].
    virtual std::vector<double> refit_sums(const grey_ql0_args& args, std::span<const common::Coding> codings) = 0;
    // Writes `parameters` at the quantized tensor's byte layout.codes_bytes (when not empty), then runs
    // grey_quant_encode with `codings` (param_count of them).
    virtual void encode(const grey_ql0_args& args, std::span<const common::Coding> codings, std::span<const std::byte> parameters) = 0;
};

// A whole quantize job on `kernels`. A NaN or infinite element, or a group too large for fp16
// parameters, throws std::invalid_argument in the host backend's words (common/quant_text.hpp): the
// lowest non-finite element first, then the lowest overflowing group; nothing is encoded then.
void quantize(QuantKernels& kernels, const grey_ql0_args& args);

}  // namespace grey::level0
