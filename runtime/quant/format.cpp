#include "quant/format.hpp"

#include "common/dtype.hpp"
#include "common/quant_coding.hpp"
#include "common/quant_text.hpp"
#include "core/error.hpp"

#include <string>

namespace grey::quant {

const char* format_name(int64_t format) noexcept { return common::format_name(format); }

std::span<const NamedParams> named_params() noexcept {
    static constexpr NamedParams kNamed[] = {
        {"int8", GREY_QUANT_INT8, 0},         {"int8-token", GREY_QUANT_INT8_TOKEN, 0},    {"int4-g32", GREY_QUANT_INT4, 32},
        {"int4-g64", GREY_QUANT_INT4, 64},    {"int4-g128", GREY_QUANT_INT4, 128},         {"int4-sym-g128", GREY_QUANT_INT4_SYM, 128},
        {"fp8-e4m3", GREY_QUANT_FP8_E4M3, 0}, {"fp8-e5m2", GREY_QUANT_FP8_E5M2, 0},        {"nf4", GREY_QUANT_NF4, 0},
        {"q8_0", GREY_QUANT_Q8_0, 0},         {"q4_0", GREY_QUANT_Q4_0, 0},                {"q4_1", GREY_QUANT_Q4_1, 0},
    };
    return kNamed;
}

grey_quant_layout make_layout(std::span<const uint64_t> shape, const grey_quant_params& params) {
    if (params.struct_size < sizeof(grey_quant_params))
        fail(GREY_ERROR_INVALID_ARGUMENT, "grey_quant_params.struct_size is " + std::to_string(params.struct_size) + "; initialise it with GREY_QUANT_PARAMS_INIT");
    if (params.reserved0 != 0) fail(GREY_ERROR_INVALID_ARGUMENT, "grey_quant_params.reserved0 must be 0");
    const int64_t format = raw_enum(params.format);
    const char* name = format_name(format);
    if (name == nullptr) fail(GREY_ERROR_INVALID_ARGUMENT, "grey_quant_params.format " + std::to_string(format) + " is not a grey_quant_format");
    const int64_t calibration = raw_enum(params.calibration);
    if (calibration != GREY_CALIBRATION_RTN && calibration != GREY_CALIBRATION_MSE)
        fail(GREY_ERROR_INVALID_ARGUMENT, "grey_quant_params.calibration " + std::to_string(calibration) + " is neither RTN nor MSE");

    grey_quant_layout plan{};
    plan.struct_size = sizeof plan;
    plan.format = params.format;
    plan.calibration = params.calibration;
    const auto elements = common::element_count(shape);
    if (!elements) fail(GREY_ERROR_INVALID_ARGUMENT, "the tensor's element count overflows 64 bits");
    if (*elements == 0) fail(GREY_ERROR_INVALID_ARGUMENT, "the tensor is empty; there is nothing to quantize");
    // Far beyond any real tensor; keeps every size computed below free of overflow.
    if (*elements > (uint64_t{1} << 56)) fail(GREY_ERROR_INVALID_ARGUMENT, "the tensor has more than 2^56 elements");
    plan.elements = *elements;
    const uint64_t innermost = shape.empty() ? 1 : shape.back();
    const std::string what = std::string(name) + ": ";

    const bool grouped = params.format == GREY_QUANT_INT4 || params.format == GREY_QUANT_INT4_SYM;
    const bool has_axis = params.format == GREY_QUANT_INT8 || params.format == GREY_QUANT_FP8_E4M3 || params.format == GREY_QUANT_FP8_E5M2;
    if (!grouped && params.group_size != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, what + "group_size must be 0 (the format's block is fixed)");
    if (!has_axis && params.axis != 0) fail(GREY_ERROR_INVALID_ARGUMENT, what + "axis must be 0 (the format has no channel axis)");

    uint64_t group = 0;
    if (grouped) {
        group = params.group_size == 0 ? 128 : params.group_size;
        if (group != 32 && group != 64 && group != 128)
            fail(GREY_ERROR_INVALID_ARGUMENT, what + "group_size " + std::to_string(params.group_size) + " is not 32, 64 or 128");
    } else if (params.format == GREY_QUANT_NF4) {
        group = 64;
    } else if (common::is_ggml(params.format)) {
        group = 32;
    }

    if (common::is_ggml(params.format)) {
        if (innermost % group != 0)
            fail(GREY_ERROR_INVALID_ARGUMENT, what + "the innermost dimension " + std::to_string(innermost) + " is not a multiple of " +
                                                  std::to_string(group) + " (ggml's block, which llama.cpp reads along the innermost dimension)");
        plan.run_length = group;
        plan.param_count = plan.elements / group;
    } else if (group != 0) {
        // Rows as common/quant_layout.h defines them: the first dimension, and everything else in a row.
        const uint64_t rows = shape.size() >= 2 ? shape.front() : 1;
        const uint64_t row_length = plan.elements / rows;
        plan.run_length = group;
        if (row_length % group == 0) {  // the groups tile the tensor: the flat layout
            plan.param_count = plan.elements / group;
        } else {
            plan.required_features = GREY_QUANT_LAYOUT_ROWS;
            plan.row_length = row_length;
            plan.param_count = rows * grey_quant_layout_groups_per_row(&plan);
        }
    } else if (params.format == GREY_QUANT_INT8_TOKEN) {
        plan.run_length = innermost;
        plan.param_count = plan.elements / innermost;
    } else {  // per channel or per tensor
        if (params.axis == GREY_QUANT_PER_TENSOR && params.format != GREY_QUANT_INT8) {
            plan.run_length = plan.elements;
            plan.param_count = 1;
        } else {
            if (params.axis < 0 || static_cast<uint64_t>(params.axis) >= shape.size())
                fail(GREY_ERROR_INVALID_ARGUMENT, what + "axis " + std::to_string(params.axis) + " does not exist in a tensor of rank " + std::to_string(shape.size()) +
                                                      (params.format == GREY_QUANT_INT8 ? "" : " (use GREY_QUANT_PER_TENSOR for one scale)"));
            uint64_t inner = 1;
            for (std::size_t d = static_cast<std::size_t>(params.axis) + 1; d < shape.size(); ++d) inner *= shape[d];
            plan.run_length = inner;
            plan.param_count = shape[static_cast<std::size_t>(params.axis)];
        }
    }

    const uint64_t n = plan.elements;
    const uint64_t p = plan.param_count;
    // 4-bit codes, two to a byte; with rows, every row starts on a byte.
    const uint64_t nibble_bytes = grey_quant_layout_has_rows(&plan) ? (n / plan.row_length) * grey_quant_layout_row_bytes(&plan) : n / 2;
    switch (params.format) {
        case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN: case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2:
            plan.codes_bytes = n;
            plan.bytes = n + 4 * p;  // fp32 scales
            break;
        case GREY_QUANT_INT4:
            plan.codes_bytes = nibble_bytes;
            plan.bytes = nibble_bytes + 4 * p;  // fp16 scales, then fp16 mins
            break;
        case GREY_QUANT_INT4_SYM:
            plan.codes_bytes = nibble_bytes;
            plan.bytes = nibble_bytes + 2 * p;  // fp16 scales
            break;
        case GREY_QUANT_NF4:
            plan.codes_bytes = nibble_bytes;
            plan.bytes = nibble_bytes + 4 * p;  // fp32 absmax per block
            break;
        case GREY_QUANT_Q8_0: case GREY_QUANT_Q4_0: case GREY_QUANT_Q4_1:
            plan.bytes = plan.codes_bytes = common::ggml_block_bytes(params.format) * p;
            break;
        default: fail(GREY_ERROR_INTERNAL, "unhandled format");
    }
    return plan;
}

}  // namespace grey::quant
