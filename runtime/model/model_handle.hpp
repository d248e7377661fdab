// What a grey_model handle holds: the mapped file, the parsed view of it and the tensor descriptions
// grey_model_tensor.desc points to. Shared with the library's own whole-model calls (runtime/quant),
// which read ahead in the mapping while they work.
#pragma once

#include "core/mapped_file.hpp"
#include "grey.h"
#include "model/model_file.hpp"

#include <vector>

struct grey_model {
    explicit grey_model(const char* path);  // runtime/model/model_api.cpp
    grey::MappedFile file;
    grey::model::ModelFile contents;      // views into `file`
    std::vector<grey_tensor_desc> descs;  // one per tensor, what grey_model_tensor.desc points to
};
