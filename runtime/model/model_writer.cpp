#include "model/model_writer.hpp"

#include "core/error.hpp"

#include <algorithm>

namespace grey::model {

void ModelWriter::require(State state, const char* doing) const {
    if (state_ == state) return;
    static constexpr const char* kWhy[] = {"before the writer is opened", "while the writer is open", "after the writer has finished",
                                           "after the writer failed to write (destroy it)"};
    fail(GREY_ERROR_INVALID_ARGUMENT, std::string("cannot ") + doing + " " + kWhy[static_cast<int>(state_)] + "; only " + kWhy[static_cast<int>(state)]);
}

void ModelWriter::copy_metadata(std::span<const MetadataEntry> entries) {
    require(State::building, "add metadata");
    for (const auto& entry : entries) set_metadata(entry);
}

void ModelWriter::set_metadata(MetadataEntry entry) {
    require(State::building, "add metadata");
    if (entry.key.size() > GREY_MODEL_NAME_MAX)
        fail(GREY_ERROR_INVALID_ARGUMENT, "a metadata key of " + std::to_string(entry.key.size()) + " bytes is longer than the limit of " +
                                              std::to_string(GREY_MODEL_NAME_MAX));
    const auto same = std::find_if(metadata_.begin(), metadata_.end(), [&](const auto& e) { return e.key == entry.key; });
    if (same != metadata_.end())
        same->value = std::move(entry.value);
    else
        metadata_.push_back(std::move(entry));
}

uint64_t ModelWriter::declare(std::string name, grey_dtype dtype, uint32_t file_type, std::vector<uint64_t> shape) {
    require(State::building, "add a tensor");
    // Checked now (type, size, name), so that the mistake is reported where it was made.
    DeclaredTensor tensor = model::declare_tensor(format_, std::move(name), dtype, file_type, std::move(shape));
    if (names_.contains(tensor.name)) fail(GREY_ERROR_INVALID_ARGUMENT, "tensor name '" + tensor.name + "' is used twice");
    names_.insert(tensor.name);
    tensors_.push_back(std::move(tensor));
    held_.emplace_back();
    return tensors_.size() - 1;
}

uint64_t ModelWriter::declare_tensor(std::string name, grey_dtype dtype, uint32_t file_type, std::vector<uint64_t> shape) {
    return declare(std::move(name), dtype, file_type, std::move(shape));
}

uint64_t ModelWriter::add_tensor(std::string name, grey_dtype dtype, uint32_t file_type, std::vector<uint64_t> shape, std::span<const std::byte> bytes) {
    require(State::building, "add a tensor");
    const DeclaredTensor check = model::declare_tensor(format_, name, dtype, file_type, shape);
    if (check.size_bytes != bytes.size())
        fail(GREY_ERROR_INVALID_ARGUMENT, "tensor '" + name + "' has " + std::to_string(bytes.size()) + " bytes; its shape needs " + std::to_string(check.size_bytes));
    const uint64_t index = declare(std::move(name), dtype, file_type, std::move(shape));
    held_[index].emplace(bytes.begin(), bytes.end());
    return index;
}

void ModelWriter::write_whole(const std::filesystem::path& path) const {
    require(State::building, "write the whole file");
    for (std::size_t i = 0; i < tensors_.size(); ++i)
        if (!held_[i])
            fail(GREY_ERROR_INVALID_ARGUMENT, "tensor '" + tensors_[i].name + "' was declared without its bytes: stream it (open, write_tensor, finish)");
    const FileLayout layout = layout_file(format_, metadata_, tensors_);
    ModelOutput output(path, layout.size, ModelOutput::Replace::yes);
    output.write_at(0, {reinterpret_cast<const std::byte*>(layout.header.data()), layout.header.size()});
    for (std::size_t i = 0; i < tensors_.size(); ++i) output.write_at(layout.offsets[i], *held_[i]);
    output.commit();
}

void ModelWriter::open(const std::filesystem::path& path, ModelOutput::Replace replace) {
    require(State::building, "open the output");
    layout_ = layout_file(format_, metadata_, tensors_);
    output_ = std::make_unique<ModelOutput>(path, layout_.size, replace);
    state_ = State::failed;  // until the header and the held tensors are written
    output_->write_at(0, {reinterpret_cast<const std::byte*>(layout_.header.data()), layout_.header.size()});
    written_.assign(tensors_.size(), 0);
    for (std::size_t i = 0; i < tensors_.size(); ++i)
        if (held_[i]) {
            output_->write_at(layout_.offsets[i], *held_[i]);
            written_[i] = held_[i]->size();
            held_[i].reset();
        }
    state_ = State::open;
}

void ModelWriter::write_tensor(uint64_t index, std::span<const std::byte> bytes) {
    require(State::open, "write a tensor's bytes");
    if (index >= tensors_.size())
        fail(GREY_ERROR_INVALID_ARGUMENT, "tensor index " + std::to_string(index) + " is out of range (" + std::to_string(tensors_.size()) + " tensors)");
    const DeclaredTensor& t = tensors_[index];
    if (bytes.size() > t.size_bytes - written_[index])
        fail(GREY_ERROR_INVALID_ARGUMENT, "tensor '" + t.name + "' takes " + std::to_string(t.size_bytes) + " bytes and has " +
                                              std::to_string(written_[index]) + "; " + std::to_string(bytes.size()) + " more are too many");
    state_ = State::failed;
    output_->write_at(layout_.offsets[index] + written_[index], bytes);
    written_[index] += bytes.size();
    state_ = State::open;
}

void ModelWriter::finish() {
    require(State::open, "finish");
    for (std::size_t i = 0; i < tensors_.size(); ++i)
        if (written_[i] != tensors_[i].size_bytes)
            fail(GREY_ERROR_INVALID_ARGUMENT, "tensor '" + tensors_[i].name + "' has " + std::to_string(written_[i]) + " of its " +
                                                  std::to_string(tensors_[i].size_bytes) + " bytes");
    state_ = State::failed;
    output_->commit();
    state_ = State::finished;
}

}  // namespace grey::model
