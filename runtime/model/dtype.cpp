#include "model/dtype.hpp"

#include "core/error.hpp"

#include <array>

namespace grey::model {
namespace {

constexpr std::array<GgmlType, 34> kGgmlTypes = {{
    {0, "F32", 1, 4, GREY_DTYPE_F32},         {1, "F16", 1, 2, GREY_DTYPE_F16},
    {2, "Q4_0", 32, 18, GREY_DTYPE_Q4_0},     {3, "Q4_1", 32, 20, GREY_DTYPE_Q4_1},
    {6, "Q5_0", 32, 22, GREY_DTYPE_OTHER},    {7, "Q5_1", 32, 24, GREY_DTYPE_OTHER},
    {8, "Q8_0", 32, 34, GREY_DTYPE_Q8_0},     {9, "Q8_1", 32, 40, GREY_DTYPE_OTHER},
    {10, "Q2_K", 256, 84, GREY_DTYPE_OTHER},  {11, "Q3_K", 256, 110, GREY_DTYPE_OTHER},
    {12, "Q4_K", 256, 144, GREY_DTYPE_OTHER}, {13, "Q5_K", 256, 176, GREY_DTYPE_OTHER},
    {14, "Q6_K", 256, 210, GREY_DTYPE_OTHER}, {15, "Q8_K", 256, 292, GREY_DTYPE_OTHER},
    {16, "IQ2_XXS", 256, 66, GREY_DTYPE_OTHER}, {17, "IQ2_XS", 256, 74, GREY_DTYPE_OTHER},
    {18, "IQ3_XXS", 256, 98, GREY_DTYPE_OTHER}, {19, "IQ1_S", 256, 50, GREY_DTYPE_OTHER},
    {20, "IQ4_NL", 32, 18, GREY_DTYPE_OTHER}, {21, "IQ3_S", 256, 110, GREY_DTYPE_OTHER},
    {22, "IQ2_S", 256, 82, GREY_DTYPE_OTHER}, {23, "IQ4_XS", 256, 136, GREY_DTYPE_OTHER},
    {24, "I8", 1, 1, GREY_DTYPE_I8},          {25, "I16", 1, 2, GREY_DTYPE_I16},
    {26, "I32", 1, 4, GREY_DTYPE_I32},        {27, "I64", 1, 8, GREY_DTYPE_I64},
    {28, "F64", 1, 8, GREY_DTYPE_F64},        {29, "IQ1_M", 256, 56, GREY_DTYPE_OTHER},
    {30, "BF16", 1, 2, GREY_DTYPE_BF16},      {34, "TQ1_0", 256, 54, GREY_DTYPE_OTHER},
    {35, "TQ2_0", 256, 66, GREY_DTYPE_OTHER}, {39, "MXFP4", 32, 17, GREY_DTYPE_OTHER},
    {40, "NVFP4", 64, 36, GREY_DTYPE_OTHER},  {41, "Q1_0", 128, 18, GREY_DTYPE_OTHER},
}};

using common::kDtypes;

}  // namespace

std::optional<GgmlType> ggml_type(uint32_t id) noexcept {
    for (const auto& t : kGgmlTypes)
        if (t.id == id) return t;
    return std::nullopt;
}

std::optional<uint32_t> ggml_type_of(grey_dtype dtype) noexcept {
    if (dtype == GREY_DTYPE_OTHER) return std::nullopt;
    for (const auto& t : kGgmlTypes)
        if (t.dtype == dtype) return t.id;
    return std::nullopt;
}

std::optional<grey_dtype> safetensors_dtype(std::string_view name) noexcept {
    for (const auto& row : kDtypes)
        if (row.in_safetensors && name == row.name) return row.dtype;
    return std::nullopt;
}

std::optional<std::string_view> safetensors_name(grey_dtype dtype) noexcept {
    const auto* row = common::dtype_row(dtype);
    if (row == nullptr || !row->in_safetensors) return std::nullopt;
    return row->name;
}

uint64_t tensor_bytes(Storage storage, std::span<const uint64_t> shape, grey_status status, const std::string& what) {
    const auto elements = element_count(shape);
    if (!elements) fail(status, what + ": its element count overflows 64 bits");
    if (storage.block_elements > 1) {
        const uint64_t innermost = shape.empty() ? 1 : shape.back();
        if (innermost % storage.block_elements != 0)
            fail(status, what + ": its innermost dimension " + std::to_string(innermost) + " is not a multiple of the block size " +
                             std::to_string(storage.block_elements));
    }
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(*elements / storage.block_elements, uint64_t{storage.block_bytes}, &bytes))
        fail(status, what + ": its byte size overflows 64 bits");
    return bytes;
}

}  // namespace grey::model
