// A read-only memory mapping of a whole file, unmapped when the object dies: model files and audit logs
// alike. The file is opened through open_regular_file (core/regular_file.hpp: never blocking on a FIFO,
// close-on-exec, refused unless fstat says it is a regular file). A mapping costs address space, not
// memory, so no size limit applies beyond the file's own; readers bound what they parse out of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace grey {

class MappedFile {
public:
    // When the pages are read from the file: as they are first touched (a model, of which a caller may
    // read a few tensors), or all while mapping (an audit log, every byte of which is read).
    enum class Paging { on_demand, up_front };

    // Maps `path`; `what` names it in messages ("model file", "audit log"). GREY_ERROR_NOT_FOUND,
    // GREY_ERROR_PERMISSION_DENIED or GREY_ERROR_IO naming the file, GREY_ERROR_INVALID_ARGUMENT when
    // it is not a regular file ("model file 'PATH' is not a regular file (it is a FIFO)").
    MappedFile(const std::string& path, const std::string& what, Paging paging = Paging::on_demand);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&&) = delete;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
    // The same bytes as unsigned integers, as the audit code reads them.
    [[nodiscard]] std::span<const uint8_t> octets() const noexcept { return {reinterpret_cast<const uint8_t*>(data_), size_}; }

    // Drops the pages holding `range` (a part of bytes()) from the resident set; they are read from the
    // file again if touched.
    void evict(std::span<const std::byte> range) const noexcept;

private:
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace grey
