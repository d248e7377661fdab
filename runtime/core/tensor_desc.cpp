#include "core/tensor_desc.hpp"

#include "common/dtype.hpp"
#include "core/error.hpp"

#include <string>

namespace grey {

std::vector<uint64_t> checked_shape(const grey_tensor_desc& desc) {
    if (desc.struct_size < sizeof(grey_tensor_desc))
        fail(GREY_ERROR_INVALID_ARGUMENT, "grey_tensor_desc.struct_size is " + std::to_string(desc.struct_size) + "; initialise it with GREY_TENSOR_DESC_INIT");
    if (desc.rank > GREY_TENSOR_MAX_RANK)
        fail(GREY_ERROR_INVALID_ARGUMENT, "grey_tensor_desc.rank is " + std::to_string(desc.rank) + " (at most " + std::to_string(GREY_TENSOR_MAX_RANK) + ")");
    if (desc.reserved0 != 0) fail(GREY_ERROR_INVALID_ARGUMENT, "grey_tensor_desc.reserved0 must be 0");
    for (uint32_t d = desc.rank; d < GREY_TENSOR_MAX_RANK; ++d)
        if (desc.shape[d] != 0) fail(GREY_ERROR_INVALID_ARGUMENT, "grey_tensor_desc.shape[" + std::to_string(d) + "] lies past rank and must be 0");
    if (common::dtype_name(raw_enum(desc.dtype)) == nullptr)
        fail(GREY_ERROR_INVALID_ARGUMENT, "grey_tensor_desc.dtype " + std::to_string(raw_enum(desc.dtype)) + " is not a grey_dtype");
    return {desc.shape, desc.shape + desc.rank};
}

}  // namespace grey
