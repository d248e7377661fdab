// A model file being written, either all at once (tensors added with their bytes, then write_whole) or
// streamed (tensors declared, open, each tensor's bytes written as they come, finish). Both lay the
// file out with the same function, so they give the same bytes. The C API's grey_model_writer wraps
// one; the runtime can use one directly to write a model tensor by tensor.
#pragma once

#include "model/model_file.hpp"
#include "model/model_output.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

namespace grey::model {

class ModelWriter {
public:
    explicit ModelWriter(grey_model_format format) : format_(format) {}

    // Before open: metadata (a key set again replaces its value) and tensors, in file order. Mistakes
    // fail with GREY_ERROR_INVALID_ARGUMENT where they are made.
    void copy_metadata(std::span<const MetadataEntry> entries);
    void set_metadata(MetadataEntry entry);
    // Returns the tensor's index. add_tensor copies the bytes, which must be what the tensor needs.
    uint64_t add_tensor(std::string name, grey_dtype dtype, uint32_t file_type, std::vector<uint64_t> shape, std::span<const std::byte> bytes);
    uint64_t declare_tensor(std::string name, grey_dtype dtype, uint32_t file_type, std::vector<uint64_t> shape);

    // The whole file at once, replacing `path`; every tensor must have been added with its bytes. The
    // writer is unchanged and can write again.
    void write_whole(const std::filesystem::path& path) const;

    // Streaming: writes the header (and the bytes of tensors added with them, freeing those), then each
    // declared tensor's bytes, in pieces, any tensor order; finish completes and names the file.
    void open(const std::filesystem::path& path, ModelOutput::Replace replace);
    void write_tensor(uint64_t index, std::span<const std::byte> bytes);
    void finish();

private:
    enum class State { building, open, finished, failed };
    void require(State state, const char* doing) const;
    uint64_t declare(std::string name, grey_dtype dtype, uint32_t file_type, std::vector<uint64_t> shape);

    grey_model_format format_;
    State state_ = State::building;
    std::vector<MetadataEntry> metadata_;
    std::vector<DeclaredTensor> tensors_;
    std::unordered_set<std::string> names_;
    std::vector<std::optional<std::vector<std::byte>>> held_;  // the bytes of tensors added with them
    // While open:
    FileLayout layout_;
    std::unique_ptr<ModelOutput> output_;
    std::vector<uint64_t> written_;  // bytes of each tensor written so far
};

}  // namespace grey::model
