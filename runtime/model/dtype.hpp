// Element types of tensors in model files: their names, their storage (elements per block, bytes per
// block), and the mapping to GGUF's ggml type numbers and safetensors' dtype strings.
#pragma once

#include "common/dtype.hpp"
#include "grey.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace grey::model {

// How a GGUF tensor type is stored: ggml's block size and block bytes (the table of the `gguf`
// package's GGML_QUANT_SIZES), and the libgrey dtype when libgrey decodes it (GREY_DTYPE_OTHER if not).
struct GgmlType {
    uint32_t id;
    const char* name;
    uint32_t block_elements;
    uint32_t block_bytes;
    grey_dtype dtype;
};

// The ggml type with number `id`, or nothing for a number ggml does not define.
std::optional<GgmlType> ggml_type(uint32_t id) noexcept;
// The ggml type number libgrey writes for `dtype`, or nothing when GGUF has none (U8, BOOL, fp8...).
std::optional<uint32_t> ggml_type_of(grey_dtype dtype) noexcept;

// safetensors dtype strings ("F32", "BF16", "F8_E4M3", ...).
std::optional<grey_dtype> safetensors_dtype(std::string_view name) noexcept;
std::optional<std::string_view> safetensors_name(grey_dtype dtype) noexcept;

using common::dtype_name;
using common::element_count;
using common::Storage;
using common::storage_of;

// The bytes a tensor of `shape` takes in `storage`, with blocks running along the innermost (last)
// dimension. Fails with `status` and a message naming `what` on overflow or a last dimension that is not
// a whole number of blocks.
uint64_t tensor_bytes(Storage storage, std::span<const uint64_t> shape, grey_status status, const std::string& what);

}  // namespace grey::model
