// What a grey_model handle holds: the mapped file and the parsed view of it. Shared with the library's
// own whole-model calls (runtime/quant), which read ahead in the mapping while they work.
#pragma once

#include "core/mapped_file.hpp"
#include "model/model_file.hpp"

struct grey_model {
    explicit grey_model(const char* path) : file(path, "model file"), contents(grey::model::parse_model(file.bytes())) {}
    grey::MappedFile file;
    grey::model::ModelFile contents;  // views into `file`
};
