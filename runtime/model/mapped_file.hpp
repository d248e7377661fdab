// A read-only memory mapping of a whole file, unmapped when the object dies.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

namespace grey::model {

class MappedFile {
public:
    // Maps `path`; GREY_ERROR_NOT_FOUND, GREY_ERROR_PERMISSION_DENIED or GREY_ERROR_IO naming the file,
    // GREY_ERROR_INVALID_ARGUMENT when it is not a regular file (checked without blocking on a FIFO).
    explicit MappedFile(const std::filesystem::path& path);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&&) = delete;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

    // Drops the pages holding `range` (a part of bytes()) from the resident set; they are read from the
    // file again if touched.
    void evict(std::span<const std::byte> range) const noexcept;

private:
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace grey::model
