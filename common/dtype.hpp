// Element types as both sides of the plugin boundary need them: each grey_dtype's name and storage
// (elements and bytes per block), and the overflow-checked element count of a shape. Host C++; the
// model files' own type tables (GGUF numbers, safetensors spellings) stay in runtime/model/dtype.
#pragma once

#include "common/numeric.hpp"
#include "grey.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace grey::common {

// How a libgrey dtype is stored: elements per block and bytes per block (1 and the element size for
// plain types).
struct Storage {
    uint32_t block_elements;
    uint32_t block_bytes;
};

struct DtypeRow {
    grey_dtype dtype;
    const char* name;      // also the safetensors spelling where safetensors has the type
    bool in_safetensors;
    Storage storage;
};

inline constexpr std::array<DtypeRow, 18> kDtypes = {{
    {GREY_DTYPE_F32, "F32", true, {1, 4}},          {GREY_DTYPE_F16, "F16", true, {1, 2}},
    {GREY_DTYPE_BF16, "BF16", true, {1, 2}},        {GREY_DTYPE_F64, "F64", true, {1, 8}},
    {GREY_DTYPE_I8, "I8", true, {1, 1}},            {GREY_DTYPE_U8, "U8", true, {1, 1}},
    {GREY_DTYPE_I16, "I16", true, {1, 2}},          {GREY_DTYPE_U16, "U16", true, {1, 2}},
    {GREY_DTYPE_I32, "I32", true, {1, 4}},          {GREY_DTYPE_U32, "U32", true, {1, 4}},
    {GREY_DTYPE_I64, "I64", true, {1, 8}},          {GREY_DTYPE_U64, "U64", true, {1, 8}},
    {GREY_DTYPE_BOOL, "BOOL", true, {1, 1}},        {GREY_DTYPE_F8_E4M3, "F8_E4M3", true, {1, 1}},
    {GREY_DTYPE_F8_E5M2, "F8_E5M2", true, {1, 1}},  {GREY_DTYPE_Q8_0, "Q8_0", false, {32, 34}},
    {GREY_DTYPE_Q4_0, "Q4_0", false, {32, 18}},     {GREY_DTYPE_Q4_1, "Q4_1", false, {32, 20}},
}};

// The row of `dtype` (a raw value: callers may pass anything), nullptr outside the table.
constexpr const DtypeRow* dtype_row(int64_t dtype) noexcept {
    for (const auto& row : kDtypes)
        if (row.dtype == dtype) return &row;
    return nullptr;
}

// "F32", "Q4_0", ...; "OTHER" for GREY_DTYPE_OTHER; nullptr for a value outside the enum.
constexpr const char* dtype_name(int64_t dtype) noexcept {
    if (dtype == GREY_DTYPE_OTHER) return "OTHER";
    const DtypeRow* row = dtype_row(dtype);
    return row != nullptr ? row->name : nullptr;
}

// Nothing for GREY_DTYPE_OTHER or an unknown value.
constexpr std::optional<Storage> storage_of(int64_t dtype) noexcept {
    const DtypeRow* row = dtype_row(dtype);
    if (row == nullptr) return std::nullopt;
    return row->storage;
}

// The plain element types a quantizer reads and a dequantizer writes, and their sizes.
constexpr bool is_float_input(grey_dtype dtype) noexcept {
    return dtype == GREY_DTYPE_F32 || dtype == GREY_DTYPE_F16 || dtype == GREY_DTYPE_BF16;
}
constexpr uint32_t float_input_size(grey_dtype dtype) noexcept { return dtype == GREY_DTYPE_F32 ? 4 : 2; }

// The first out.size() elements of `in`, a plain float input of `dtype` (is_float_input) at any
// alignment, as floats.
inline void float_input_to_f32(std::span<const std::byte> in, grey_dtype dtype, std::span<float> out) noexcept {
    if (dtype == GREY_DTYPE_F32) {
        std::memcpy(out.data(), in.data(), out.size_bytes());
        return;
    }
    for (size_t i = 0; i < out.size(); ++i) {
        uint16_t bits = 0;
        std::memcpy(&bits, in.data() + 2 * i, 2);
        out[i] = dtype == GREY_DTYPE_BF16 ? bf16_to_f32(bits) : f16_to_f32(bits);
    }
}

// The element count of `shape`; nothing when it overflows 64 bits.
inline std::optional<uint64_t> element_count(std::span<const uint64_t> shape) noexcept {
    uint64_t count = 1;
    for (uint64_t d : shape)
        if (__builtin_mul_overflow(count, d, &count)) return std::nullopt;
    return count;
}

}  // namespace grey::common
